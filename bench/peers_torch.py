"""The torch peers of bench/peers.py: snnTorch BPTT and SpikingJelly BPTT, OTTT and SLTT,
on the same task as edgelearn (see peers_edge.py), plus the saved-tensor memory meter.

Every peer starts from edgelearn's initial weights (dequantised int16 -> float32), uses
the same LIF (threshold 1, leak 0.875, reset by subtraction, reset path detached), the
same direct input (pixel / 256 every step), the same loss (1/2 |s_L[t] - y|^2 summed over
steps, averaged over the batch) and plain SGD (no momentum, so no optimizer state).
"""
from __future__ import annotations

import weakref

import numpy as np
import torch
import torch.nn as nn

from peers_edge import INPUT_SCALE, LEAK, SURROGATE_HALFWIDTH, THRESHOLD, make_model

# edgelearn's learning rates at T = 8 (2^-shift), for weights, thresholds and the leak;
# BPTT sums the T per-step gradients before one update, so the rates scale with 8 / T,
# the same schedule as edgelearn's (peers_edge.lr_weight_shift).
LR_W, LR_TH, LR_LEAK = 2.0 ** -6, 2.0 ** -8, 2.0 ** -12


def lr_for(T: int, base: float) -> float:
    return base * min(1.0, 8.0 / T)


class TriangleSpike(torch.autograd.Function):
    """Heaviside forward (U - th >= 0, as edgelearn), triangle surrogate backward:
    max(0, 1 - |U - th| / 2), edgelearn's surrogate with surrogate_shift = 1."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.clamp(1.0 - x.abs() / SURROGATE_HALFWIDTH, min=0.0)


def initial_weights(net_name: str, T: int) -> list[torch.Tensor]:
    """edgelearn's seeded initial weights, dequantised: the same starting point for all."""
    model = make_model(net_name, T)
    return [torch.tensor(model.params[l.name].weight.astype(np.float64) / (1 << l.weight_frac),
                         dtype=torch.float32) for l in model.layers]


def one_hot(y: np.ndarray, n: int) -> torch.Tensor:
    out = torch.zeros(len(y), n)
    out[torch.arange(len(y)), torch.as_tensor(y.astype(np.int64))] = 1.0
    return out


def as_input(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x.astype(np.float32)) * INPUT_SCALE


def _linear(w: torch.Tensor, cls=nn.Linear) -> nn.Module:
    lin = cls(w.shape[1], w.shape[0], bias=False)
    with torch.no_grad():
        lin.weight.copy_(w)
    return lin


# -- peers -------------------------------------------------------------------------------
class Peer:
    """One training method: ``train_batch(x uint8 [B, n], y [B])`` does one update;
    ``predict(x)`` returns spike counts [B, classes]. ``lr_scale`` multiplies edgelearn's
    rates; each peer's default is the best of 1/16, 1/4, 1, 4 (and 16 for OTTT/SLTT) in a 10-second digits
    run (64-128-10, T = 8, batch 1; see bench/README.md): BPTT diverges at edgelearn's
    rates (one readout neuron fires always), SpikingJelly's half-height surrogate wants
    larger ones for OTTT/SLTT."""
    name = ""
    notes = ""
    lr_scale = 1.0

    def __init__(self, net_name: str, T: int, lr_scale: float | None = None):
        self.T = T
        self.weights = initial_weights(net_name, T)
        self.n_out = self.weights[-1].shape[0]
        if lr_scale is not None:
            self.lr_scale = lr_scale

    def parameters(self) -> list[torch.Tensor]:
        return [p for group in self.opt.param_groups for p in group["params"]]

    def _sgd(self, weights, thresholds=(), leaks=()):
        s = self.lr_scale
        groups = [{"params": list(weights), "lr": s * lr_for(self.T, LR_W)}]
        if thresholds:
            groups.append({"params": list(thresholds), "lr": s * lr_for(self.T, LR_TH)})
        if leaks:
            groups.append({"params": list(leaks), "lr": s * lr_for(self.T, LR_LEAK)})
        self.opt = torch.optim.SGD(groups, lr=s * lr_for(self.T, LR_W))


class SnnTorchBPTT(Peer):
    name = "snntorch-bptt"
    lr_scale = 0.25
    notes = ("snn.Leaky(beta=0.875, threshold=ones(n), reset_mechanism='subtract', learn_beta, "
             "learn_threshold), edgelearn's triangle surrogate; BPTT over T, one SGD step per batch. "
             "snnTorch's LIF subtracts the threshold after the leak: U[t] = b U[t-1] + I - th s[t-1] "
             "(edgelearn leaks it: U[t] = a (U[t-1] - th s[t-1]) + I), and learns thresholds and leak "
             "like edgelearn.")

    def __init__(self, net_name, T, lr_scale=None):
        super().__init__(net_name, T, lr_scale)
        import snntorch as snn
        self.fcs = [_linear(w) for w in self.weights]
        self.lifs = [snn.Leaky(beta=LEAK, threshold=torch.full((w.shape[0],), THRESHOLD),
                               spike_grad=TriangleSpike.apply, learn_beta=True, learn_threshold=True,
                               reset_mechanism="subtract") for w in self.weights]
        self._sgd([fc.weight for fc in self.fcs], [l.threshold for l in self.lifs], [l.beta for l in self.lifs])

    def _run(self, x, y=None):
        mems = [torch.zeros(x.shape[0], fc.weight.shape[0]) for fc in self.fcs]
        loss, counts = 0.0, 0.0
        for _ in range(self.T):
            h = x
            for i, (fc, lif) in enumerate(zip(self.fcs, self.lifs)):
                h, mems[i] = lif(fc(h), mems[i])
            counts = counts + h
            if y is not None:
                loss = loss + 0.5 * ((h - y) ** 2).sum() / x.shape[0]
        return loss, counts

    def train_batch(self, x, y):
        loss, _ = self._run(as_input(x), one_hot(y, self.n_out))
        self.opt.zero_grad(set_to_none=False)
        loss.backward()
        self.opt.step()

    def predict(self, x):
        with torch.no_grad():
            return self._run(as_input(x))[1].numpy()


def _sj_surrogate():
    # SpikingJelly's own triangle: gradient (alpha - alpha^2 |x|)^+, i.e. height alpha and
    # half-width 1/alpha; alpha = 0.5 gives edgelearn's support (half-width 2) at half its
    # height. A built-in surrogate keeps SpikingJelly on its fused LIF path (a custom one
    # would drop it to the slower autograd reference).
    from spikingjelly.activation_based import surrogate
    return surrogate.PiecewiseQuadratic(alpha=0.5)


def _sj_lif(cls, step_mode):
    # tau = 8 gives the leak 1 - 1/tau = 0.875; decay_input=False and v_reset=None give
    # H[t] = a V[t-1] + X[t], spike H >= th, V = H - th s: exactly edgelearn's LIF.
    return cls(tau=1.0 / (1.0 - LEAK), decay_input=False, v_threshold=THRESHOLD, v_reset=None,
               surrogate_function=_sj_surrogate(), detach_reset=True, step_mode=step_mode)


class SpikingJellyBPTT(Peer):
    name = "spikingjelly-bptt"
    lr_scale = 0.25
    notes = ("layer.Linear + neuron.LIFNode(tau=8, decay_input=False, v_reset=None, detach_reset) in "
             "multi-step mode (the whole sequence per layer, SpikingJelly's fused LIF), "
             "PiecewiseQuadratic(alpha=0.5) surrogate; BPTT, one SGD step per batch. Thresholds and leak "
             "are not learned (LIFNode has no learnable threshold). Multi-step mode materialises the input "
             "sequence [T, B, n], which the first Linear saves for backward.")

    def __init__(self, net_name, T, lr_scale=None):
        super().__init__(net_name, T, lr_scale)
        from spikingjelly.activation_based import functional, layer, neuron
        self.functional = functional
        mods = []
        for w in self.weights:
            mods += [_linear(w, lambda i, o, bias: layer.Linear(i, o, bias=bias, step_mode="m")),
                     _sj_lif(neuron.LIFNode, "m")]
        self.net = nn.Sequential(*mods)
        self._sgd([m.weight for m in self.net if isinstance(m, nn.Linear)])

    def _run(self, x):
        self.functional.reset_net(self.net)
        return self.net(x.unsqueeze(0).expand(self.T, *x.shape).contiguous())     # [T, B, classes]

    def train_batch(self, x, y):
        out = self._run(as_input(x))
        loss = 0.5 * ((out - one_hot(y, self.n_out)) ** 2).sum() / x.shape[0]
        self.opt.zero_grad(set_to_none=False)
        loss.backward()
        self.opt.step()

    def predict(self, x):
        with torch.no_grad():
            return self._run(as_input(x)).sum(0).numpy()


class _SpikingJellyOnline(Peer):
    """Online training: forward one step, backward that step's loss at once (the graph
    spans one step, so memory does not grow with T), gradients summed over the T steps,
    one SGD step per batch (as SpikingJelly's OTTT/SLTT examples do)."""

    def _build(self, net):
        self.net = net
        self._sgd([m.weight for m in self.net.modules() if isinstance(m, nn.Linear)])

    def _step(self, x):
        out = self.net(x)
        return out[0] if isinstance(out, (list, tuple)) else out

    def train_batch(self, x, y):
        self.functional.reset_net(self.net)
        self.net.train()
        x, y = as_input(x), one_hot(y, self.n_out)
        self.opt.zero_grad(set_to_none=False)
        for _ in range(self.T):
            loss = 0.5 * ((self._step(x) - y) ** 2).sum() / x.shape[0]
            loss.backward()
        self.opt.step()

    def predict(self, x):
        self.functional.reset_net(self.net)
        self.net.eval()
        with torch.no_grad():
            x = as_input(x)
            counts = sum(self._step(x) for _ in range(self.T))
        self.net.train()
        return counts.numpy()


class SpikingJellyOTTT(_SpikingJellyOnline):
    name = "spikingjelly-ottt"
    lr_scale = 4.0
    notes = ("layer.OTTTSequential(Linear, OTTTLIFNode(tau=8, decay_input=False, v_reset=None), ...): "
             "presynaptic traces carry the temporal credit, per-step backward; thresholds/leak fixed.")

    def __init__(self, net_name, T, lr_scale=None):
        super().__init__(net_name, T, lr_scale)
        from spikingjelly.activation_based import functional, layer, neuron
        self.functional = functional
        mods = []
        for w in self.weights:
            mods += [_linear(w, lambda i, o, bias: layer.Linear(i, o, bias=bias)), _sj_lif(neuron.OTTTLIFNode, "s")]
        self._build(layer.OTTTSequential(*mods))


class SpikingJellySLTT(_SpikingJellyOnline):
    name = "spikingjelly-sltt"
    lr_scale = 4.0
    notes = ("nn.Sequential(Linear, SLTTLIFNode(tau=8, decay_input=False, v_reset=None), ...): the temporal "
             "gradient is truncated (membrane detached), per-step backward; thresholds/leak fixed.")

    def __init__(self, net_name, T, lr_scale=None):
        super().__init__(net_name, T, lr_scale)
        from spikingjelly.activation_based import functional, layer, neuron
        self.functional = functional
        mods = []
        for w in self.weights:
            mods += [_linear(w, lambda i, o, bias: layer.Linear(i, o, bias=bias)), _sj_lif(neuron.SLTTLIFNode, "s")]
        self._build(nn.Sequential(*mods))


PEERS = {cls.name: cls for cls in (SnnTorchBPTT, SpikingJellyBPTT, SpikingJellyOTTT, SpikingJellySLTT)}


# -- memory --------------------------------------------------------------------------------
class _Held:
    """What autograd keeps in place of a saved tensor while the meter is on; its
    finalizer reports when autograd lets go of it."""
    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor):
        self.tensor = tensor


class SavedTensorMeter:
    """Peak bytes of the tensors autograd saves for backward, live at once.

    Inside ``torch.autograd.graph.saved_tensors_hooks`` every tensor saved for backward
    passes through ``pack``; it is counted by its storage (a storage saved by several
    ops counts once, views count their whole storage) and uncounted when autograd frees
    the saved variable (after backward, or when the graph is dropped). Parameters are
    excluded: they are counted once, as parameters."""

    def __init__(self, exclude: list[torch.Tensor]):
        self.exclude = {p.untyped_storage().data_ptr() for p in exclude}
        self.live: dict[int, list[int]] = {}     # storage ptr -> [references, bytes]
        self.current = self.peak = 0

    def _release(self, key):
        entry = self.live[key]
        entry[0] -= 1
        if entry[0] == 0:
            self.current -= entry[1]
            del self.live[key]

    def pack(self, t):
        storage = t.untyped_storage()
        key = storage.data_ptr()
        if key in self.exclude or key == 0:
            return t
        entry = self.live.setdefault(key, [0, storage.nbytes()])
        if entry[0] == 0:
            self.current += entry[1]
            self.peak = max(self.peak, self.current)
        entry[0] += 1
        held = _Held(t)
        weakref.finalize(held, self._release, key)
        return held

    @staticmethod
    def unpack(held):
        return held.tensor if isinstance(held, _Held) else held

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self.pack, self.unpack)


def torch_memory(peer: Peer, x: np.ndarray, y: np.ndarray) -> dict:
    """Training memory of one update of ``peer`` on batch (x, y): parameters + their
    gradients + the peak of tensors saved for backward. Grads are allocated during
    backward while saved tensors are being freed, so the sum is a slight upper bound of
    the simultaneous peak; backward's own temporaries and the live membrane states are
    not counted (the states are O(B * neurons) and mostly saved anyway)."""
    params = peer.parameters()
    meter = SavedTensorMeter(params)
    with meter.hooks():
        peer.train_batch(x, y)
    p_bytes = sum(p.nbytes for p in params)
    g_bytes = sum(p.grad.nbytes for p in params if p.grad is not None)
    return {"total": p_bytes + g_bytes + meter.peak, "parameters": p_bytes, "grads": g_bytes,
            "saved_for_backward": meter.peak, "training_state": g_bytes + meter.peak,
            "leaked_saved": meter.current}

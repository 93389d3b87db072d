"""Networks of multiplication-free channel-wise parallel spiking neurons (edgelearn/ops/layers/psn.py;
docs/psn.md): a stack of PSN layers, each a dense synapse matrix then per channel a dilated filter of
power-of-two taps and a threshold, and a non-spiking readout (the last layer: its filtered current U
is the output, scores are sum_t U, E[t] = 1/2 |U[t] - y|^2).

The executors of the same network:

- ``FloatPSN``: the float64 twin; online per-step learning of W (and, on the host, of the latent
  taps through the power-of-two projection with a straight-through estimate); edgelearn/psn_bptt.py
  trains it on the host through time instead (batched, every temporal path, learned thresholds);
- the device's: ``to_model`` makes it a model of registered kinds (psn layers, edgelearn/ops), which
  the STOP runtimes run like any model (``runtime``: the fixed reference or the C runtime, bit for
  bit alike), the blob carries to a board, and the board learns online: W per step, taps frozen.

The online rule (docs/psn.md §3): per step, errors top-down with the layers above detached in time
(only their lag-0 tap carries an error down, as STOP detaches the temporal paths above a learning
layer), d_L = U_L - y, d_l = (W_{l+1}^T (c_{l+1,0} d_{l+1})) phi(U_l - th_l); then
W_l -= lr d_l e_l^T with the eligibility e_l[j, i] = sum_k c_l[j, k] x_l,i[t - k D_l] (a ring of
the layer's recent inputs; taps: dc_l[j, k] = d_l,j I_l,j[t - k D_l], the ring of its currents)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .contract import INPUT, MAX_LR_SHIFT
from .encoders import CODES, as_rows
from .model import Edge, Filter, InputSpec, Layer as ModelLayer, LayerParams, Learning, Model, Neuron, Schedule
from .executors import make_learner
from .numerics import INT32_MAX, ONE, to_fixed
from .ops.layers import psn


@dataclass
class Layer:
    n_in: int
    n_out: int
    taps: np.ndarray            # int8 [n_out, K]: tap codes (psn.tap_values)
    dilation: int
    weights: np.ndarray         # int16 [n_out, n_in], Q w_frac
    thresholds: np.ndarray      # int32 [n_out], Q16 (the readout's: never read)
    w_frac: int = 12

    @property
    def K(self) -> int:
        return int(self.taps.shape[1])

    @property
    def ring(self) -> int:
        return psn.ring_length(self.K, self.dilation)


@dataclass
class PSNNet:
    """A PSN network: hidden PSN layers, then the readout layer (non-spiking)."""
    layers: list[Layer]
    encoding: str = "sequence"
    T: int = 32
    lr_weight_shift: int = 6
    surrogate_shift: int = 1
    seed: int = 1

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out

    def copy(self) -> PSNNet:
        return replace(self, layers=[replace(l, taps=l.taps.copy(), weights=l.weights.copy(),
                                             thresholds=l.thresholds.copy()) for l in self.layers])

    def check(self) -> None:
        if self.encoding not in CODES:
            raise ValueError(f"encoding {self.encoding!r}: one of {tuple(CODES)}")
        for l, ly in enumerate(self.layers):
            if not 1 <= ly.K <= psn.MAX_TAPS or not 1 <= ly.dilation <= psn.MAX_DILATION:
                raise ValueError(f"layer {l}: 1..{psn.MAX_TAPS} taps and dilation 1..{psn.MAX_DILATION}")
            if np.abs(ly.taps.astype(int)).max(initial=0) > psn.MAX_TAP_SHIFT + 1:
                raise ValueError(f"layer {l}: tap codes within +-{psn.MAX_TAP_SHIFT + 1}")
            if l and ly.n_in != self.layers[l - 1].n_out:
                raise ValueError(f"layer {l}: {ly.n_in} inputs, the layer below has {self.layers[l - 1].n_out}")
            if ly.weights.shape != (ly.n_out, ly.n_in) or ly.thresholds.shape != (ly.n_out,):
                raise ValueError(f"layer {l}: weights {ly.weights.shape}, thresholds {ly.thresholds.shape}")


def make_net(sizes: list[int], taps: int = 4, dilations: list[int] | None = None, seed: int = 0,
             encoding: str = "sequence", T: int = 32, w_frac: int = 12, threshold: float = 1.0,
             weight_scale: float = 1.0, tap_code: int | None = None, **kw) -> PSNNet:
    """A network of the given sizes (inputs, hidden..., outputs), random weights, every hidden
    tap 2^-1 (or ``tap_code``), the readout one tap of 1 (an instantaneous readout)."""
    rng = np.random.default_rng(seed)
    hidden = len(sizes) - 2
    dilations = psn.sawtooth(hidden, taps) if dilations is None else dilations
    layers = []
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = l == len(sizes) - 2
        K = 1 if last else taps
        q = np.full((n_out, K), 1 if last else (2 if tap_code is None else tap_code), dtype=np.int8)
        w = rng.normal(0, weight_scale / np.sqrt(n_in), (n_out, n_in))
        th = np.full(n_out, INT32_MAX if last else to_fixed(threshold, 16), dtype=np.int32)
        layers.append(Layer(n_in, n_out, q, 1 if last else dilations[l],
                            to_fixed(w, w_frac, -32768, 32767, np.int16), th, w_frac))
    net = PSNNet(layers, encoding=encoding, T=T, seed=seed, **kw)
    net.check()
    return net


def to_model(net: PSNNet, name: str = "psn") -> Model:
    """The network as a model of registered kinds (a chain of psn layers: the STOP runtimes run it,
    the blob carries it to a board): hidden layers of threshold units, the readout of leak-0 leaky
    integrators (U = H, the readout's filter output), the rule's constants as the model's learning.
    Thresholds, taps and leaks do not learn on the device (model.py refuses it for psn layers)."""
    net.check()
    layers, params, prev = [], {}, INPUT
    for l, ly in enumerate(net.layers):
        last = l == len(net.layers) - 1
        lname = "readout" if last else f"psn{l + 1}"
        th = float(ly.thresholds[0]) / ONE              # (the readout's is never read)
        neuron = Neuron("li", th, leak=0.0, learn_threshold=False, learn_leak=False) if last else \
            Neuron("threshold", th, leak=1.0, learn_threshold=False, learn_leak=False)
        layers.append(ModelLayer(lname, "psn", (Edge(prev),), (ly.n_out,), neuron, ly.w_frac,
                                 filter=Filter(ly.K, ly.dilation, float(psn.tap_values(ly.taps[0, 0])))))
        params[lname] = LayerParams(ly.weights.astype(np.int16).copy(), ly.thresholds.astype(np.int32).copy(),
                                    0 if last else ONE, ly.taps.astype(np.int8).copy())
        prev = lname
    learning = Learning(rule="stop", T=net.T, lr_weight_shift=net.lr_weight_shift,
                        surrogate_shift=net.surrogate_shift, update="step", seed=net.seed)
    return Model(name, InputSpec((net.n_in,), net.encoding), tuple(layers), learning, params).validate()


def from_model(model: Model) -> PSNNet:
    """The network of a model of psn layers (``to_model``'s inverse): a ValueError naming what
    a PSN network does not have."""
    model.validate()
    for l, layer in enumerate(model.layers):
        if layer.kind != "psn" or len(layer.inputs) != 1 or layer.inputs[0].delay:
            raise ValueError(f"layer {layer.name!r}: a PSN network is a chain of psn layers")
        last = l == len(model.layers) - 1
        if layer.neuron.kind != ("li" if last else "threshold") or last and model.params[layer.name].leak != 0:
            raise ValueError(f"layer {layer.name!r}: a PSN network's hidden neurons are threshold units and its "
                             "readout li neurons of leak 0 (U = H)")
    if model.learning.rule != "stop" or model.learning.update != "step":
        raise ValueError("a PSN network learns with rule 'stop', per step")
    layers = [Layer(model.fan_in(ly), ly.size, model.params[ly.name].taps.copy(), ly.filter.dilation,
                    model.params[ly.name].weight.copy(), model.params[ly.name].threshold.copy(), ly.weight_frac)
              for ly in model.layers]
    lr = model.learning
    net = PSNNet(layers, encoding=model.input.encoding, T=lr.T, lr_weight_shift=lr.lr_weight_shift,
                 surrogate_shift=lr.surrogate_shift, seed=lr.seed)
    net.check()
    return net


def runtime(net: PSNNet, executor: str = "fixed", epoch_samples: int = 0, epochs: int = 1):
    """The device's runtime of the network: the STOP runtime of its model (``to_model``) on
    ``executor`` (fixed: the bit-exact reference; c: the C runtime, bit for bit the same), both PRNG
    streams kept across samples. With ``epoch_samples`` the weight rate halves after each epoch of
    that many learned samples, ``epochs - 1`` times (the device's own schedule, numerics.md §6c)."""
    model = to_model(net)
    steps = min(epochs - 1, MAX_LR_SHIFT - net.lr_weight_shift)      # a rate never below 2^-MAX_LR_SHIFT
    if epoch_samples and steps >= 1:
        model.schedule = Schedule(every=epoch_samples, steps=steps)
    return make_learner(model.validate(), executor)


def trained(learner) -> PSNNet:
    """The network a runtime holds now (its learned weights), at the spec's rate (no schedule)."""
    return from_model(learner.to_model())


# -- the float64 twin ---------------------------------------------------------------------------------

def phi(x: np.ndarray, k: int) -> np.ndarray:
    """The triangle surrogate of half-width 2^k (numerics.md §5), in real units."""
    return np.maximum(0.0, 1.0 - np.abs(x) / 2.0 ** k)


@dataclass
class FloatPSN:
    """The float64 twin: W in real units, latent taps c (learned through P(c) when ``learn_taps``),
    thresholds in real units. ``project_taps``: the forward reads P(c), the device's taps."""
    W: list
    c: list
    dilation: list
    th: list
    encoding: str = "sequence"
    T: int = 32
    lr: float = 2.0 ** -6
    lr_taps: float = 2.0 ** -8
    k: int = 1
    learn_taps: bool = True
    project_taps: bool = True
    seed: int = 1
    _rng: np.random.Generator = field(default=None, repr=False)

    @classmethod
    def of(cls, net: PSNNet, **kw) -> FloatPSN:
        """The twin of a network (its learning rate 2^-lr_weight_shift unless ``lr`` is given)."""
        kw = {"lr": 2.0 ** -net.lr_weight_shift, **kw}
        return cls(W=[ly.weights / 2.0 ** ly.w_frac for ly in net.layers],
                   c=[psn.tap_values(ly.taps) for ly in net.layers], dilation=[ly.dilation for ly in net.layers],
                   th=[ly.thresholds / ONE for ly in net.layers], encoding=net.encoding, T=net.T,
                   k=net.surrogate_shift, seed=net.seed, **kw)

    def taps(self) -> list:
        return [psn.project(c) if self.project_taps else c for c in self.c]

    def inputs(self, sample: np.ndarray) -> np.ndarray:
        """The encoder's input [T, n] in real units (direct, sequence: byte / 256; events: 0/1;
        rate: Bernoulli from the twin's own generator)."""
        rows = as_rows(np.asarray(sample))
        T, n = self.T, rows.shape[1]
        if self.encoding == "direct":
            return np.repeat(rows[:1] / 256.0, T, axis=0)
        if self.encoding == "rate":
            self._rng = self._rng or np.random.default_rng(self.seed)
            return (self._rng.integers(0, 256, (T, n)) < rows[:1]).astype(float)
        out = np.zeros((T, n))
        m = min(T, rows.shape[0])
        out[:m] = rows[:m] / 256.0 if self.encoding == "sequence" else (rows[:m] != 0)
        return out

    def run_sample(self, sample, label, learn: bool, apply: bool = True):
        """One sample, online: per step the forward, the errors, and (``apply``) the updates
        W -= lr d e^T, c -= lr_taps d I_lag; returns (scores, loss, summed W grads, summed tap grads)."""
        X = self.inputs(sample)
        nl, T = len(self.W), self.T
        c = self.taps()
        rings = [np.zeros((T, w.shape[0])) for w in self.W]   # I history (the last (K-1) D + 1 are read)
        xhist = [np.zeros((T, w.shape[1])) for w in self.W]
        gW = [np.zeros_like(w) for w in self.W]
        gc = [np.zeros_like(cl) for cl in self.c]
        scores = np.zeros(self.W[-1].shape[0])
        loss = 0.0
        for t in range(T):
            H, s, inp = [], [], X[t]
            for l in range(nl):
                xhist[l][t] = inp
                rings[l][t] = self.W[l] @ inp
                h = sum(c[l][:, kk] * rings[l][t - kk * self.dilation[l]]
                        for kk in range(c[l].shape[1]) if t - kk * self.dilation[l] >= 0)
                H.append(h)
                s.append((h >= self.th[l]).astype(float))
                inp = s[-1]
            U = H[-1]
            scores += U
            y = np.zeros_like(U)
            if label is not None and label >= 0:
                y[label] = 1.0
            loss += 0.5 * np.sum((U - y) ** 2)
            if not learn:
                continue
            d = [None] * nl
            d[-1] = U - y
            for l in range(nl - 2, -1, -1):
                d[l] = (self.W[l + 1].T @ (c[l + 1][:, 0] * d[l + 1])) * phi(H[l] - self.th[l], self.k)
            for l in range(nl):
                lags = [t - kk * self.dilation[l] for kk in range(c[l].shape[1])]
                e = sum(c[l][:, kk:kk + 1] * xhist[l][tt][None, :] for kk, tt in enumerate(lags) if tt >= 0)
                gw = np.outer(d[l], np.ones(self.W[l].shape[1])) * e
                g_c = np.stack([d[l] * (rings[l][tt] if tt >= 0 else 0.0) for tt in lags], axis=1)
                gW[l] += gw
                gc[l] += g_c
                if apply:
                    self.W[l] = self.W[l] - self.lr * gw
                    if self.learn_taps and l < nl - 1:
                        # straight through P, clipped to P's range [-1, 1] (the largest tap is 2^0)
                        self.c[l] = np.clip(self.c[l] - self.lr_taps * g_c, -1.0, 1.0)
        return scores, loss, gW, gc

    def run(self, samples, labels, learn: bool) -> np.ndarray:
        out = np.zeros((len(samples), self.W[-1].shape[0]))
        for b, x in enumerate(samples):
            out[b] = self.run_sample(x, None if labels is None else int(labels[b]), learn and labels is not None)[0]
        return out

    def to_net(self, like: PSNNet) -> PSNNet:
        """The device's network: taps projected onto powers of two (codes), weights to Q w_frac,
        the hidden layers' thresholds to Q16 (learned on the host by psn_bptt; the readout's is never read)."""
        net = like.copy()
        for l, ly in enumerate(net.layers):
            if l < len(net.layers) - 1:
                ly.taps = psn.tap_codes(self.c[l])
                ly.thresholds = to_fixed(self.th[l], 16)
            ly.weights = to_fixed(self.W[l], ly.w_frac, -32768, 32767, np.int16)
        return net

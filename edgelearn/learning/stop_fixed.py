"""STOP in fixed point: the bit-exact reference of the numeric contract.

The network lives in flat arenas, the way the C runtime lays it out: one int16 weight
arena, one int32 arena per neuron quantity, a layer table of offsets. ``run_sample``
is the device's per-sample loop; it calls the kernels of ``edgelearn.kernels`` in the
order docs/numerics.md specifies (forward, errors top-down, updates bottom-up).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from numba import njit

from .. import kernels as k
from .. import numerics as nx
from ..encoders import CODES, as_rows, encode_step
from ..model import NEURON_KINDS, SPIKING_NEURONS, Model
from .stop_float import THRESHOLD_FLOOR, check_stop_model

# layer-table columns
N_IN, N_OUT, W_OFF, N_OFF, IN_OFF, W_FRAC, NEURON, FLAGS = range(8)
LIF, IF, LI = (NEURON_KINDS.index(n) for n in ("lif", "if", "li"))
LEARN_TH, LEARN_LEAK, TRAINABLE = 1, 2, 4

FIXED_THRESHOLD_FLOOR = int(THRESHOLD_FLOOR * nx.ONE)
LEARN_STREAM_XOR = 0xA5A5A5A5        # the learning stream's seed is seed ^ this


@njit(cache=True)
def forward_layer(table, l, weights, thresholds, leaks, V, s, U, cur, th_tr, a_tr, x_tr, nonzero,
                  x, x_frac, learn):
    """One layer's step: traces (trainable layers, when learning), current, neuron."""
    n_in, n_out, w_off, n_off, in_off, w_frac, kind, flags = table[l]
    W = weights[w_off:w_off + n_out * n_in].reshape((n_out, n_in))
    a = leaks[l]
    e = n_off + n_out
    if learn and flags & TRAINABLE:
        k.input_trace_step(a, x, x_frac, x_tr[in_off:in_off + n_in])
        k.neuron_trace_step(a, V[n_off:e], s[n_off:e], th_tr[n_off:e], a_tr[n_off:e])
    k.dense_current(W, x, x_frac, w_frac, nonzero, cur[n_off:e])
    if kind == LI:
        k.li_step(cur[n_off:e], a, V[n_off:e], U[n_off:e])
    else:
        k.lif_step(cur[n_off:e], a, thresholds[n_off:e], V[n_off:e], s[n_off:e], U[n_off:e])


@njit(cache=True)
def run_sample(table, weights, thresholds, leaks, V, s, U, cur, th_tr, a_tr, x_tr, d,
               g_w, g_th, g_leak, x_in, nonzero, back, sample, code, label, T, learn,
               per_step, surrogate_k, lr_shifts, rng_in, rng_learn, scores, raster):
    """Present one sample for T steps from a zero state; learn when ``learn``.
    With ``per_step`` updates are applied every step, else accumulated in the g_*
    buffers (the caller applies them). ``scores`` receives spike counts (or summed
    membranes for an 'li' readout). ``raster`` [steps, neurons] records the spikes of
    the first ``len(raster)`` steps (pass zero rows to record nothing)."""
    L = table.shape[0]
    V[:] = 0
    s[:] = 0
    th_tr[:] = 0
    a_tr[:] = 0
    x_tr[:] = 0
    scores[:] = 0
    lowest = L
    for l in range(L):
        if table[l, FLAGS] & TRAINABLE:
            lowest = min(lowest, l)
    learn = learn and lowest < L
    for t in range(T):
        x_frac = encode_step(code, sample, t, rng_in, x_in)
        # forward, bottom-up (layer 0 reads the encoder, the others the spikes below)
        forward_layer(table, 0, weights, thresholds, leaks, V, s, U, cur, th_tr, a_tr, x_tr,
                      nonzero, x_in, x_frac, learn)
        for l in range(1, L):
            below = table[l - 1, N_OFF]
            forward_layer(table, l, weights, thresholds, leaks, V, s, U, cur, th_tr, a_tr, x_tr,
                          nonzero, s[below:below + table[l, N_IN]], 0, learn)
        if t < raster.shape[0]:
            raster[t, :] = s
        ts, te = table[L - 1, N_OFF], table[L - 1, N_OFF] + table[L - 1, N_OUT]
        readout_li = table[L - 1, NEURON] == LI
        for j in range(ts, te):
            scores[j - ts] += U[j] if readout_li else s[j]
        if not learn:
            continue
        # spatial errors, top-down
        if readout_li:
            k.li_output_error(U[ts:te], label, d[ts:te])
        else:
            k.spiking_output_error(s[ts:te], U[ts:te], thresholds[ts:te], label, surrogate_k, d[ts:te])
        for l in range(L - 2, lowest - 1, -1):
            up = table[l + 1]
            W_up = weights[up[W_OFF]:up[W_OFF] + up[N_OUT] * up[N_IN]].reshape((up[N_OUT], up[N_IN]))
            n_off, e = table[l, N_OFF], table[l, N_OFF] + table[l, N_OUT]
            k.hidden_error(W_up, d[up[N_OFF]:up[N_OFF] + up[N_OUT]], U[n_off:e], thresholds[n_off:e],
                           up[W_FRAC], surrogate_k, back[:e - n_off], d[n_off:e])
        # updates, bottom-up: weights, thresholds, leak per layer
        for l in range(lowest, L):
            n_in, n_out, w_off, n_off, in_off, w_frac, kind, flags = table[l]
            if not flags & TRAINABLE:
                continue
            W = weights[w_off:w_off + n_out * n_in].reshape((n_out, n_in))
            e = n_off + n_out
            xt = x_tr[in_off:in_off + n_in]
            w_shift = 2 * nx.STATE_FRAC - w_frac + lr_shifts[0]
            if per_step:
                k.update_weights(W, d[n_off:e], xt, w_shift, rng_learn)
            else:
                k.accumulate_weight_grads(g_w[w_off:w_off + n_out * n_in].reshape((n_out, n_in)), d[n_off:e], xt)
            if flags & LEARN_TH:
                k.threshold_grads(d[n_off:e], th_tr[n_off:e], g_th[n_off:e])
                if per_step:
                    k.apply_threshold_grads(thresholds[n_off:e], g_th[n_off:e], nx.STATE_FRAC + lr_shifts[1],
                                            FIXED_THRESHOLD_FLOOR, rng_learn)
            if flags & LEARN_LEAK:
                g_leak[l] = k.sat_sum(g_leak[l], k.leak_grad(d[n_off:e], a_tr[n_off:e]))
                if per_step:
                    leaks[l] = k.apply_leak_grad(leaks[l], g_leak[l], nx.STATE_FRAC + lr_shifts[2], rng_learn)
                    g_leak[l] = 0


@njit(cache=True)
def apply_accumulated(table, weights, thresholds, leaks, g_w, g_th, g_leak, lr_shifts, extra_shift, rng_learn):
    """Apply gradients accumulated over a sample or a batch (``extra_shift`` = log2 B),
    layer by layer bottom-up, in the same order as per-step updates."""
    for l in range(table.shape[0]):
        n_in, n_out, w_off, n_off, in_off, w_frac, kind, flags = table[l]
        if not flags & TRAINABLE:
            continue
        w_shift = 2 * nx.STATE_FRAC - w_frac + lr_shifts[0] + extra_shift
        k.apply_weight_grads(weights[w_off:w_off + n_out * n_in].reshape((n_out, n_in)),
                             g_w[w_off:w_off + n_out * n_in].reshape((n_out, n_in)), w_shift, rng_learn)
        e = n_off + n_out
        if flags & LEARN_TH:
            k.apply_threshold_grads(thresholds[n_off:e], g_th[n_off:e], nx.STATE_FRAC + lr_shifts[1] + extra_shift,
                                    FIXED_THRESHOLD_FLOOR, rng_learn)
        if flags & LEARN_LEAK:
            leaks[l] = k.apply_leak_grad(leaks[l], g_leak[l], nx.STATE_FRAC + lr_shifts[2] + extra_shift, rng_learn)
            g_leak[l] = 0


class FixedSTOP:
    """The fixed-point STOP runtime over flat arenas (what the device holds)."""

    exactness = "bit-exact: the reference implementation of docs/numerics.md"

    def __init__(self, model: Model):
        check_stop_model(model)
        self.model = model
        cfg = model.learning
        layers = model.layers
        L = len(layers)
        trainable = set(range(L)) if cfg.rule == "stop" else {L - 1} if cfg.rule == "readout" else set()
        self.table = np.zeros((L, 8), dtype=np.int64)
        w_off = n_off = in_off = 0
        for l, layer in enumerate(layers):
            n_in, n_out = model.fan_in(layer), layer.size
            kind = NEURON_KINDS.index(layer.neuron.kind)
            flags = TRAINABLE if l in trainable else 0
            if flags and layer.neuron.learn_threshold and layer.neuron.kind in SPIKING_NEURONS:
                flags |= LEARN_TH
            if flags and layer.neuron.learn_leak and layer.neuron.kind != "if":
                flags |= LEARN_LEAK
            self.table[l] = (n_in, n_out, w_off, n_off, in_off, layer.weight_frac, kind, flags)
            w_off, n_off, in_off = w_off + n_in * n_out, n_off + n_out, in_off + n_in
        self.per_step = cfg.update == "step"
        self.weights = np.concatenate([model.params[l.name].weight.ravel() for l in layers])
        self.thresholds = np.concatenate([model.params[l.name].threshold for l in layers])
        self.leaks = np.array([model.params[l.name].leak for l in layers], dtype=np.int64)
        n_neurons, max_width = n_off, max(max(t[N_IN], t[N_OUT]) for t in self.table)
        i32 = lambda n: np.zeros(n, dtype=np.int32)
        self.state = {
            "membrane": i32(n_neurons), "spikes": np.zeros(n_neurons, dtype=np.uint8),
            "potential": i32(n_neurons), "current": i32(n_neurons),
            "threshold_trace": i32(n_neurons), "leak_trace": i32(n_neurons),
            "input_trace": i32(in_off), "error": i32(n_neurons),
            "input": i32(model.input.size), "nonzero_index": i32(max_width),
            "error_backprop": np.zeros(max_width, dtype=np.int64),
            "threshold_grad": np.zeros(n_neurons, dtype=np.int64),
            "leak_grad": np.zeros(L, dtype=np.int64),
        }
        # A per-step device needs no weight-gradient buffer: that is the point of STOP.
        self.state["weight_grad"] = np.zeros(0 if self.per_step else w_off, dtype=np.int64)
        self.rng_input = nx.new_rng(cfg.seed)
        self.rng_learn = nx.new_rng(cfg.seed ^ LEARN_STREAM_XOR)
        self.scores = np.zeros(layers[-1].size, dtype=np.int64)
        self.lr_shifts = np.array([cfg.lr_weight_shift, cfg.lr_threshold_shift, cfg.lr_leak_shift], dtype=np.int64)
        self.code = CODES[model.input.encoding]
        self._no_raster = np.zeros((0, n_neurons), dtype=np.uint8)

    def buffers(self) -> dict[str, np.ndarray]:
        """Every array the runtime holds while training, by name."""
        return {"weights": self.weights, "thresholds": self.thresholds, "leaks": self.leaks,
                "layer_table": self.table, **self.state, "scores": self.scores,
                "rng_input": self.rng_input, "rng_learn": self.rng_learn}

    def _run(self, sample, label: int, learn: bool, per_step: bool, raster=None) -> np.ndarray:
        st = self.state
        if raster is None:
            raster = self._no_raster
        run_sample(self.table, self.weights, self.thresholds, self.leaks, st["membrane"], st["spikes"],
                   st["potential"], st["current"], st["threshold_trace"], st["leak_trace"],
                   st["input_trace"], st["error"], st["weight_grad"], st["threshold_grad"], st["leak_grad"],
                   st["input"], st["nonzero_index"], st["error_backprop"], as_rows(sample), self.code,
                   label, self.model.learning.T, learn, per_step, self.model.learning.surrogate_shift,
                   self.lr_shifts, self.rng_input, self.rng_learn, self.scores, raster)
        return self.scores.copy()

    def spike_raster(self, sample) -> np.ndarray:
        """Inference on one sample, recording every neuron's spikes: uint8 [T, neurons]."""
        raster = np.zeros((self.model.learning.T, self.state["spikes"].size), dtype=np.uint8)
        self._run(sample, -1, False, False, raster)
        return raster

    def run(self, samples: np.ndarray, labels: np.ndarray | None, learn: bool) -> np.ndarray:
        """Present a batch (one sample: online learning); return scores [B, classes].
        A batch of B > 1 accumulates and applies once, B must be a power of two."""
        B = len(samples)
        if learn and B > 1 and B & (B - 1):
            raise ValueError(f"fixed-point batches must be a power of two, got {B}")
        borrowed = learn and B > 1 and self.per_step   # a per-step learner has no gW of its own
        if borrowed:
            self.state["weight_grad"] = np.zeros(self.weights.size, dtype=np.int64)
        per_step = self.per_step and B == 1
        out = np.stack([self._run(samples[b], int(labels[b]) if learn else -1, learn, per_step)
                        for b in range(B)])
        if learn and not per_step:
            apply_accumulated(self.table, self.weights, self.thresholds, self.leaks, self.state["weight_grad"],
                              self.state["threshold_grad"], self.state["leak_grad"], self.lr_shifts,
                              B.bit_length() - 1, self.rng_learn)
        if borrowed:
            self.state["weight_grad"] = np.zeros(0, dtype=np.int64)
        return out

    def slow_down(self) -> None:
        """Halve every learning rate: one more right shift."""
        self.lr_shifts += 1

    def to_model(self) -> Model:
        out = self.model.copy()
        for l, layer in enumerate(out.layers):
            n_in, n_out, w_off, n_off = self.table[l, :4]
            p = out.params[layer.name]
            p.weight = self.weights[w_off:w_off + n_in * n_out].reshape(n_out, n_in).copy()
            p.threshold = self.thresholds[n_off:n_off + n_out].copy()
            p.leak = int(self.leaks[l])
        out.learning = replace(out.learning, lr_weight_shift=int(self.lr_shifts[0]),
                               lr_threshold_shift=int(self.lr_shifts[1]), lr_leak_shift=int(self.lr_shifts[2]))
        return out.validate()

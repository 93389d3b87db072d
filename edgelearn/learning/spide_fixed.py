"""SPIDE in fixed point: the bit-exact reference of docs/spide.md.

Flat arenas and a layer table as in STOP, plus an edge table (a SPIDE layer may read the
input, earlier layers and, one step late, any layer). ``run_sample`` is the device's
per-sample loop: ``forward_pass`` (the equilibrium, the readout, the mask),
``backward_pass`` (output gradient, gradient scale, ternary couples), ``note_health``,
``apply_updates`` (bottom-up, readout last) and ``guard`` (the feedback loop's gain).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from numba import njit

from .. import kernels_spide as ks
from .. import numerics as nx
from ..encoders import CODES, DIRECT, as_rows, encode_step
from ..kernels import dense_current, li_output_error, update_weights
from ..model import Model
from .spide_float import (DEAD_WINDOW, GUARD_GAIN, HEALTH_KEYS, MAX_GUARD_HALVINGS, MAX_SCALE_RETRIES,
                          check_spide_model, dead_equilibrium, diverged, edge_table, health_report, not_contractive)

# layer-table columns; the readout is the last row, spiking layers come first in the neuron arena
N_IN, N_OUT, W_OFF, N_OFF, E_START, E_COUNT, W_FRAC, RESET_SHIFT, VD_LOG2 = range(9)
# edge-table columns: source layer (-1: the input), delay, first weight column, source size and offset
SRC, DELAY, COL, N_SRC, SRC_OFF = range(5)
# health counters (int64 slots)
H_SAMPLES, H_NEURONS, H_MASKED, H_OSCILLATION, H_SATURATED, H_SILENT, H_RETRIES, H_HALVINGS, H_DEAD_RUN = range(9)

LEARN_STREAM_XOR = 0xA5A5A5A5         # as STOP: the learning stream's seed is seed ^ this
GUARD_GAIN_Q16 = int(GUARD_GAIN * nx.ONE)


@njit(cache=True)
def layer_weights(table, weights, l):
    n_in, n_out, w_off = table[l, N_IN], table[l, N_OUT], table[l, W_OFF]
    return weights[w_off:w_off + n_out * n_in].reshape((n_out, n_in))


@njit(cache=True)
def input_currents(table, edges, weights, x, x_frac, nonzero, part, static):
    """static = sum of each spiking layer's input edges' currents (F x)."""
    for l in range(table.shape[0] - 1):
        n_out, n_off, wf = table[l, N_OUT], table[l, N_OFF], table[l, W_FRAC]
        W = layer_weights(table, weights, l)
        static[n_off:n_off + n_out] = 0
        for e in range(table[l, E_START], table[l, E_START] + table[l, E_COUNT]):
            if edges[e, SRC] < 0:
                col = edges[e, COL]
                dense_current(W[:, col:col + edges[e, N_SRC]], x, x_frac, wf, nonzero, part[:n_out])
                ks.add_current(part[:n_out], static[n_off:n_off + n_out])


@njit(cache=True)
def forward_pass(table, edges, weights, thresholds, leaks, V, s, s_prev, count, half, cur, static, part,
                 nonzero, x, x_sum, mask, sample, code, log2T, rng_in):
    """T steps from a zero state, the readout o = W_R (count / T) into ``cur`` of the
    readout, and the mask. Returns the fractional bits of ``x_sum`` (the input's mean
    numerator: the constant direct input itself, or the sum of T coded inputs)."""
    R = table.shape[0] - 1
    T = 1 << log2T
    V[:] = 0
    s[:] = 0
    count[:] = 0
    x_sum[:] = 0
    x_frac = 0
    for t in range(T):
        if t == 0 or code != DIRECT:       # a direct input is one constant current: computed once
            x_frac = encode_step(code, sample, t, rng_in, x)
            input_currents(table, edges, weights, x, x_frac, nonzero, part, static)
            for i in range(x.shape[0]):
                x_sum[i] += x[i]
        s_prev[:] = s                      # delay-1 edges read the spikes of step t-1
        for l in range(R):
            n_out, n_off, wf = table[l, N_OUT], table[l, N_OFF], table[l, W_FRAC]
            W = layer_weights(table, weights, l)
            e_ = n_off + n_out
            cur[n_off:e_] = static[n_off:e_]
            for e in range(table[l, E_START], table[l, E_START] + table[l, E_COUNT]):
                src = edges[e, SRC]
                if src < 0:
                    continue
                so, ns, col = edges[e, SRC_OFF], edges[e, N_SRC], edges[e, COL]
                z = s[so:so + ns] if edges[e, DELAY] == 0 else s_prev[so:so + ns]
                dense_current(W[:, col:col + ns], z, 0, wf, nonzero, part[:n_out])
                ks.add_current(part[:n_out], cur[n_off:e_])
            ks.equilibrium_step(cur[n_off:e_], leaks[l], thresholds[n_off:e_], table[l, RESET_SHIFT],
                                V[n_off:e_], s[n_off:e_], count[n_off:e_])
        if t == T // 2 - 1:
            half[:] = count
    n_r, r_off, wf_r = table[R, N_OUT], table[R, N_OFF], table[R, W_FRAC]
    W_r = layer_weights(table, weights, R)
    cur[r_off:r_off + n_r] = 0
    for e in range(table[R, E_START], table[R, E_START] + table[R, E_COUNT]):
        so, ns, col = edges[e, SRC_OFF], edges[e, N_SRC], edges[e, COL]
        dense_current(W_r[:, col:col + ns], count[so:so + ns], log2T, wf_r, nonzero, part[:n_r])
        ks.add_current(part[:n_r], cur[r_off:r_off + n_r])
    ks.equilibrium_mask(count[:r_off], T, mask[:r_off])
    return x_frac if code == DIRECT else log2T


@njit(cache=True)
def couples(table, edges, weights, mask, drive, ub, sb, sb_prev, bcount, inp, acc, log2Tb):
    """Tb steps of the ternary couples from a zero state; layers top-down; readers at
    delay 0 pass this step's spikes, readers at delay 1 the previous step's."""
    R = table.shape[0] - 1
    n = table[R, N_OFF]
    ub[:n] = 0
    sb[:n] = 0
    bcount[:n] = 0
    for t in range(1 << log2Tb):
        sb_prev[:n] = sb[:n]
        for l in range(R - 1, -1, -1):
            n_out, n_off = table[l, N_OUT], table[l, N_OFF]
            for j in range(n_out):
                inp[j] = drive[n_off + j]
            for k in range(R):
                ko, kn = table[k, N_OFF], table[k, N_OUT]
                shift = table[k, W_FRAC] + table[k, VD_LOG2] - nx.STATE_FRAC
                W = layer_weights(table, weights, k)
                for e in range(table[k, E_START], table[k, E_START] + table[k, E_COUNT]):
                    if edges[e, SRC] == l:
                        up = sb[ko:ko + kn] if edges[e, DELAY] == 0 else sb_prev[ko:ko + kn]
                        col = edges[e, COL]
                        ks.backward_input(W[:, col:col + n_out], mask[ko:ko + kn], up, shift, acc[:n_out],
                                          inp[:n_out])
            ks.couple_step(inp[:n_out], ub[n_off:n_off + n_out], sb[n_off:n_off + n_out],
                           bcount[n_off:n_off + n_out])


@njit(cache=True)
def backward_pass(table, edges, weights, cur, mask, label, err, g, drive, ub, sb, sb_prev, bcount, inp, acc,
                  log2Tb):
    """e = o - y; g = W_R^T e; the gradient-scale rule; the couples, run again with the
    scale halved while a count saturates (at most MAX_SCALE_RETRIES times). Returns
    (gs, retries, saturated counts of the last run)."""
    R = table.shape[0] - 1
    n = table[R, N_OFF]
    n_r, wf_r = table[R, N_OUT], table[R, W_FRAC]
    li_output_error(cur[n:n + n_r], label, err)
    g[:n] = 0
    W_r = layer_weights(table, weights, R)
    for e in range(table[R, E_START], table[R, E_START] + table[R, E_COUNT]):
        so, ns, col = edges[e, SRC_OFF], edges[e, N_SRC], edges[e, COL]
        ks.readout_gradient(W_r[:, col:col + ns], err, wf_r, acc[:ns], g[so:so + ns])
    bcount[:n] = 0
    if not np.any(g[:n] != 0):
        return 0, 0, 0
    gs = ks.gradient_scale(g[:n])
    Tb = 1 << log2Tb
    retries = 0
    while True:
        ks.scale_drive(g[:n], gs, drive[:n])
        couples(table, edges, weights, mask, drive, ub, sb, sb_prev, bcount, inp, acc, log2Tb)
        saturated = 0
        for j in range(n):
            if abs(bcount[j]) == Tb:
                saturated += 1
        if saturated == 0 or retries == MAX_SCALE_RETRIES:
            return gs, retries, saturated
        gs -= 1
        retries += 1


@njit(cache=True)
def note_health(count, half, mask, bcount, n, retries, saturated, health):
    """Counters of the health signals (docs/spide.md); before the counts are gated."""
    masked = 0
    for j in range(n):
        health[H_OSCILLATION] += abs(np.int64(count[j]) - 2 * np.int64(half[j]))
        if mask[j]:
            masked += 1
            if bcount[j] == 0:
                health[H_SILENT] += 1
    health[H_SAMPLES] += 1
    health[H_NEURONS] += n
    health[H_MASKED] += masked
    health[H_SATURATED] += saturated
    health[H_RETRIES] += retries
    health[H_DEAD_RUN] = health[H_DEAD_RUN] + 1 if masked == 0 else 0


@njit(cache=True)
def apply_updates(table, edges, weights, count, x_sum, in_frac, mask, bcount, err, gs, lr_shift, log2T, log2Tb,
                  rng_learn):
    """Spiking layers bottom-up, W_le -= SR((m b) z_e^T); then the readout, W_Re -= SR(e c^T).
    Edges in table order; update_weights draws per non-zero product, rows then columns."""
    R = table.shape[0] - 1
    n = table[R, N_OFF]
    ks.gate_counts(mask[:n], bcount[:n])
    for l in range(R + 1):
        n_out, n_off, wf = table[l, N_OUT], table[l, N_OFF], table[l, W_FRAC]
        W = layer_weights(table, weights, l)
        for e in range(table[l, E_START], table[l, E_START] + table[l, E_COUNT]):
            src, col, ns, so = edges[e, SRC], edges[e, COL], edges[e, N_SRC], edges[e, SRC_OFF]
            z = x_sum if src < 0 else count[so:so + ns]
            frac = in_frac if src < 0 else log2T
            if l < R:       # grad = (m beta / V_d) a^T, beta = b / Tb * 2^-gs, a = z * 2^-frac
                shift = lr_shift + log2Tb + gs + frac + table[l, VD_LOG2] - wf
                update_weights(W[:, col:col + ns], bcount[n_off:n_off + n_out], z, shift, rng_learn)
            else:           # grad = e a^T, e in Q16
                update_weights(W[:, col:col + ns], err, z, nx.STATE_FRAC + frac - wf + lr_shift, rng_learn)


@njit(cache=True)
def loop_gain(table, edges, weights, sums, rows, gains):
    """The feedback loop's gain bound in Q16 (0 without feedback edges): G_l = max_j
    sum_e G_e |W_le[j, :]|_1 / V_d,l with G_e = ONE for a feedback edge, G_k for a
    same-step edge from layer k; the loop gain is the largest G of a feedback source."""
    R = table.shape[0] - 1
    rho = np.int64(0)
    for l in range(R):
        n_out, wf, vd = table[l, N_OUT], table[l, W_FRAC], table[l, VD_LOG2]
        W = layer_weights(table, weights, l)
        rows[:n_out] = 0
        for e in range(table[l, E_START], table[l, E_START] + table[l, E_COUNT]):
            src = edges[e, SRC]
            if src < 0:
                continue
            G = np.int64(nx.ONE) if edges[e, DELAY] > 0 else gains[src]
            if G == 0:
                continue
            col = edges[e, COL]
            ks.row_abs_sums(W[:, col:col + edges[e, N_SRC]], sums[:n_out])
            for j in range(n_out):
                rows[j] += nx.round_shift(G * sums[j], wf + vd)
        gains[l] = min(np.max(rows[:n_out]), nx.INT32_MAX)
    for l in range(R):
        for e in range(table[l, E_START], table[l, E_START] + table[l, E_COUNT]):
            if edges[e, DELAY] > 0:
                rho = max(rho, gains[edges[e, SRC]])
    return rho


@njit(cache=True)
def guard(table, edges, weights, sums, rows, gains):
    """Halve every feedback weight while the loop gain is >= GUARD_GAIN; returns the halvings."""
    R = table.shape[0] - 1
    h = 0
    while h < MAX_GUARD_HALVINGS and loop_gain(table, edges, weights, sums, rows, gains) >= GUARD_GAIN_Q16:
        for l in range(R):
            W = layer_weights(table, weights, l)
            for e in range(table[l, E_START], table[l, E_START] + table[l, E_COUNT]):
                if edges[e, DELAY] > 0:
                    col = edges[e, COL]
                    ks.halve_weights(W[:, col:col + edges[e, N_SRC]])
        h += 1
    return h


@njit(cache=True)
def run_sample(table, edges, weights, thresholds, leaks, V, s, s_prev, count, half, cur, static, part, nonzero,
               x, x_sum, mask, err, g, drive, ub, sb, sb_prev, bcount, inp, acc, sums, rows, gains,
               sample, code, label, log2T, log2Tb, learn, lr_shift, feedback, rng_in, rng_learn, health, scores):
    """Present one sample: the equilibrium and the scores; when learning, the spiking
    adjoint, the health counters, the updates and the guard."""
    R = table.shape[0] - 1
    in_frac = forward_pass(table, edges, weights, thresholds, leaks, V, s, s_prev, count, half, cur, static, part,
                           nonzero, x, x_sum, mask, sample, code, log2T, rng_in)
    n = table[R, N_OFF]                       # spiking neurons; the readout's come after them
    scores[:] = cur[n:n + table[R, N_OUT]]
    if not learn:
        return
    gs, retries, saturated = backward_pass(table, edges, weights, cur, mask, label, err, g, drive, ub, sb, sb_prev,
                                           bcount, inp, acc, log2Tb)
    note_health(count, half, mask, bcount, n, retries, saturated, health)
    apply_updates(table, edges, weights, count, x_sum, in_frac, mask, bcount, err, gs, lr_shift, log2T, log2Tb,
                  rng_learn)
    if feedback:
        health[H_HALVINGS] += guard(table, edges, weights, sums, rows, gains)


def read_health(counters: np.ndarray, T: int, loop_gain: float, reset: bool) -> dict:
    """The health report from a runtime's counter array (Python's or the C arena's);
    ``reset`` clears the per-period counters, not the run of dead samples."""
    report = health_report({key: int(counters[i]) for i, key in enumerate(HEALTH_KEYS)}, T, loop_gain)
    if reset:
        counters[:H_DEAD_RUN] = 0
    return report


class FixedSPIDE:
    """The fixed-point SPIDE runtime over flat arenas (what the device holds)."""

    exactness = "bit-exact: the reference implementation of docs/spide.md"

    def __init__(self, model: Model):
        check_spide_model(model)
        self.model = model
        layers = model.layers
        R = len(layers) - 1
        info = edge_table(model)
        n_off = np.cumsum([0] + [layer.size for layer in layers])
        self.table = np.zeros((R + 1, 9), dtype=np.int64)
        self.edges = np.zeros((sum(len(e) for e in info), 5), dtype=np.int64)
        w_off = e_start = 0
        for l, layer in enumerate(layers):
            n_in, n_out = model.fan_in(layer), layer.size
            reset_shift = 1 if layer.neuron.reset == "modified" else 0
            th = int(model.params[layer.name].threshold[0])
            vd_log2 = th.bit_length() - 1 - nx.STATE_FRAC + reset_shift if l < R else 0
            self.table[l] = (n_in, n_out, w_off, n_off[l], e_start, len(info[l]), layer.weight_frac,
                             reset_shift, vd_log2)
            for e in info[l]:
                size = model.input.size if e.source < 0 else layers[e.source].size
                self.edges[e_start] = (e.source, e.delay, e.cols.start, size, 0 if e.source < 0 else n_off[e.source])
                e_start += 1
            w_off += n_in * n_out
        self.weights = np.concatenate([model.params[l.name].weight.ravel() for l in layers])
        self.thresholds = np.concatenate([model.params[l.name].threshold for l in layers])
        self.leaks = np.array([model.params[l.name].leak for l in layers], dtype=np.int64)
        n_neurons = int(n_off[-1])
        width = max(model.input.size, max(layer.size for layer in layers))
        i32 = lambda k: np.zeros(k, dtype=np.int32)
        i64 = lambda k: np.zeros(k, dtype=np.int64)
        self.state = {
            "membrane": i32(n_neurons), "spikes": np.zeros(n_neurons, dtype=np.uint8),
            "spikes_prev": np.zeros(n_neurons, dtype=np.uint8), "count": i32(n_neurons),
            "half_count": i32(n_neurons), "current": i32(n_neurons), "input_current": i32(n_neurons),
            "edge_current": i32(width), "nonzero_index": i32(width),
            "input": i32(model.input.size), "input_sum": i32(model.input.size),
            "mask": np.zeros(n_neurons, dtype=np.uint8), "error": i32(layers[-1].size),
            "output_gradient": i32(n_neurons), "drive": i32(n_neurons),
            "back_membrane": i32(n_neurons), "back_spikes": np.zeros(n_neurons, dtype=np.int8),
            "back_spikes_prev": np.zeros(n_neurons, dtype=np.int8), "back_count": i32(n_neurons),
            "back_input": i64(width), "back_sum": i64(width),
            "row_sums": i64(width), "row_gains": i64(width), "loop_gains": i64(R + 1),
            "health": i64(len(HEALTH_KEYS) + 1),
        }
        cfg = model.learning
        self.rng_input = nx.new_rng(cfg.seed)
        self.rng_learn = nx.new_rng(cfg.seed ^ LEARN_STREAM_XOR)
        self.scores = np.zeros(layers[-1].size, dtype=np.int64)
        self.lr_shift = cfg.lr_weight_shift
        self.log2T, self.log2Tb = cfg.T.bit_length() - 1, cfg.Tb.bit_length() - 1
        self.code = CODES[model.input.encoding]
        self.feedback = bool(np.any(self.edges[:, DELAY] > 0))
        gain = self.loop_gain()
        if gain >= 1.0:
            raise not_contractive(gain)

    def buffers(self) -> dict[str, np.ndarray]:
        """Every array the runtime holds while training, by name."""
        return {"weights": self.weights, "thresholds": self.thresholds, "leaks": self.leaks,
                "layer_table": self.table, "edge_table": self.edges, **self.state, "scores": self.scores,
                "rng_input": self.rng_input, "rng_learn": self.rng_learn}

    def _run(self, sample, label: int, learn: bool) -> np.ndarray:
        st = self.state
        run_sample(self.table, self.edges, self.weights, self.thresholds, self.leaks, st["membrane"], st["spikes"],
                   st["spikes_prev"], st["count"], st["half_count"], st["current"], st["input_current"],
                   st["edge_current"], st["nonzero_index"], st["input"], st["input_sum"], st["mask"], st["error"],
                   st["output_gradient"], st["drive"], st["back_membrane"], st["back_spikes"],
                   st["back_spikes_prev"], st["back_count"], st["back_input"], st["back_sum"], st["row_sums"],
                   st["row_gains"], st["loop_gains"], as_rows(sample), self.code, label, self.log2T, self.log2Tb,
                   learn, self.lr_shift, self.feedback, self.rng_input, self.rng_learn, st["health"], self.scores)
        if learn and st["health"][H_DEAD_RUN] >= DEAD_WINDOW:
            raise diverged(dead_equilibrium(int(st["health"][H_DEAD_RUN])))
        return self.scores.copy()

    def run(self, samples: np.ndarray, labels: np.ndarray | None, learn: bool) -> np.ndarray:
        """Present samples one after the other; learn online when asked. Returns the readout
        scores o (Q16), [B, classes]."""
        if learn and len(samples) > 1:
            raise ValueError("fixed-point SPIDE learns online (batch 1): its gradient scale is chosen per sample")
        return np.stack([self._run(x, int(labels[b]) if learn else -1, learn) for b, x in enumerate(samples)])

    def _forward(self, sample) -> int:
        st = self.state
        return forward_pass(self.table, self.edges, self.weights, self.thresholds, self.leaks, st["membrane"],
                            st["spikes"], st["spikes_prev"], st["count"], st["half_count"], st["current"],
                            st["input_current"], st["edge_current"], st["nonzero_index"], st["input"],
                            st["input_sum"], st["mask"], as_rows(sample), self.code, self.log2T, self.rng_input)

    def _per_layer(self, buf: np.ndarray) -> list[np.ndarray]:
        return [buf[n_off:n_off + n].copy() for n, n_off in self.table[:-1, [N_OUT, N_OFF]]]

    def rates(self, sample) -> list[np.ndarray]:
        """Each spiking layer's rates count / T for one sample (inference)."""
        self._forward(sample)
        return [c / self.model.learning.T for c in self._per_layer(self.state["count"])]

    def estimate_adjoint(self, sample, label: int) -> dict:
        """Diagnostics for one sample, nothing learned (as ``FloatSPIDE.estimate_adjoint``,
        in real units)."""
        st = self.state
        self._forward(sample)
        gs, _, _ = backward_pass(self.table, self.edges, self.weights, st["current"], st["mask"], label, st["error"],
                                 st["output_gradient"], st["drive"], st["back_membrane"], st["back_spikes"],
                                 st["back_spikes_prev"], st["back_count"], st["back_input"], st["back_sum"],
                                 self.log2Tb)
        T, Tb = self.model.learning.T, self.model.learning.Tb
        return {"rates": [c / T for c in self._per_layer(st["count"])],
                "mask": [m.astype(np.float64) for m in self._per_layer(st["mask"])],
                "g": [x / nx.ONE for x in self._per_layer(st["output_gradient"])],
                "beta": [b / Tb * 2.0 ** -gs for b in self._per_layer(st["back_count"])], "gs": int(gs)}

    def loop_gain(self) -> float:
        st = self.state
        return loop_gain(self.table, self.edges, self.weights, st["row_sums"], st["row_gains"],
                         st["loop_gains"]) / nx.ONE

    def health(self, reset: bool = False) -> dict:
        """The health signals since construction (or the last reset; docs/spide.md)."""
        return read_health(self.state["health"], self.model.learning.T, self.loop_gain(), reset)

    def slow_down(self) -> None:
        """Halve the learning rate: one more right shift."""
        self.lr_shift += 1

    def to_model(self) -> Model:
        out = self.model.copy()
        for l, layer in enumerate(out.layers):
            n_in, n_out, w_off = self.table[l, :3]
            out.params[layer.name].weight = self.weights[w_off:w_off + n_in * n_out].reshape(n_out, n_in).copy()
        out.learning = replace(out.learning, lr_weight_shift=int(self.lr_shift))
        return out.validate()

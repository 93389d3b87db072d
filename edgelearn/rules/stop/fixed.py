"""STOP in fixed point: the bit-exact reference of the numeric contract (docs/numerics.md §6).

The network lives in the arena of ``edgelearn.plan`` (the buffers, sizes and layer table
the C runtime uses) and in three parameter arrays (weights, thresholds, leaks).
``run_sample`` is the device's per-sample loop, the mirror of targets/c/el_stop.c: it
calls the kernels in the order the contract specifies (forward, errors top-down,
updates bottom-up). Each layer's neuron step is its kind's (``edgelearn.ops``), called
through the generated ``builtin_step`` (compiled in) or, for a kind registered later, the
registry's ``neuron_dispatch``, so a newly registered kind runs here as is."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from ... import numerics as nx
from ... import plan
from ...contract import LEARN_LEAK, LEARN_STREAM_XOR, LEARN_THRESHOLD, TRAINABLE, WEIGHTS_INT8
from ...encoders import CODES, DIRECT, SEQUENCE, as_rows, encode_step, input_draws
from ...model import Model
from ...errors import ModelError
from ...ops import LAYERS, NEURONS, Exactness, extension_dispatch
from ...ops.builtin_layers import CODES as BUILTIN_LAYERS
from ...ops.builtin_layers import (layer_back, layer_filter, layer_forward, layer_grads, layer_has_history,
                                   layer_has_neurons, layer_lag0, layer_refresh, layer_ring_grads, layer_ring_update,
                                   layer_scan, layer_scans, layer_sums, layer_update)
from ...ops.builtin_steps import CODES as BUILTIN, builtin_step, neuron_memoryless
from ...ops.layers.dense import current_from_sums, nonzero_index
from ...plan import WINDOW_FIELDS
from ...plan import LayerField as F
from .. import kernels as shared
from ..params import Params, layer_taps, layer_thresholds, layer_weights
from ..schedule import LearningRates
from . import kernels as k
from .batch import add_sums, chunk_bounds, chunk_rows, mark_scratch, merge_scratch, pool, saturation_free, thread_count
from .spec import THRESHOLD_FLOOR_Q16, check, cutoff_margins


class Config(NamedTuple):
    """A sample's constants: the encoder code, T, the surrogate's shift, the readout's kind."""
    code: int
    T: int
    surrogate_k: int
    readout_li: bool


DENSE_CODE = LAYERS["dense"].code
WINDOW_AT = int(F.in_c)                      # the layer table's window columns, in Geometry order
WINDOW_END = WINDOW_AT + len(WINDOW_FIELDS)


@njit(cache=True)
def window_of(table, l):
    """Layer l's window row (edgelearn/ops/layers/window.py; zeros for a dense layer)."""
    return table[l, WINDOW_AT:WINDOW_END]


@njit(cache=True)
def current_ring(table, a, l):
    """Layer l's ring of recent currents, [n_out, ring_len] (a kind with a history)."""
    ro, n, L = table[l, F.ring_off], table[l, F.n_out], table[l, F.ring_len]
    return a.current_ring[ro:ro + n * L].reshape((n, L))


@njit(cache=True)
def input_ring(table, a, l):
    """Layer l's ring of recent inputs, [n_in, ring_len] (its input traces, while learning)."""
    io, n, L = table[l, F.in_off], table[l, F.n_in], table[l, F.ring_len]
    return a.input_trace[io:io + n * L].reshape((n, L))


@njit(cache=True)
def forward_layer(table, params, a, neuron_step, l, t, x, x_frac, learn, sums):
    """One layer's step t: traces (trainable layers, when learning), current, neuron; or, for a
    kind without neurons, its output values. With ``sums`` (the exact W x of an input that
    stays the same all sample) the current is rounded from them instead of summed again. A
    kind with a history (psn) filters its currents through its ring and keeps its inputs'
    ring for the eligibility instead of traces."""
    n_in, n_out, o, lo = table[l, F.n_in], table[l, F.n_out], table[l, F.n_off], table[l, F.learn_off]
    kind, wf, W = table[l, F.kind], table[l, F.weight_frac], layer_weights(table, params.weights, l)
    if not layer_has_neurons(kind):    # the spikes below into its values, in spikes; it keeps no state
        below = table[l - 1, F.n_off]
        layer_forward(kind, W, x, a.spikes[below:below + n_in], x_frac, wf, window_of(table, l), a.nonzero_index,
                      a.plane_sums, a.current[:0], a.spikes[o:o + n_out])
        return
    so = table[l, F.state_off]
    V, U, cur, s = a.membrane[so:so + n_out], a.potential[so:so + n_out], a.current[so:so + n_out], a.spikes[o:o + n_out]
    leak = params.leaks[table[l, F.leak_at]]
    traces = learn and table[l, F.flags] & TRAINABLE
    io, it = table[l, F.in_off], table[l, F.n_traces]
    if layer_has_history(kind):
        x_ring = input_ring(table, a, l) if traces else a.input_trace[:0].reshape((0, 1))
        layer_filter(kind, W, x, x_frac, wf, layer_taps(table, params.taps, l), table[l, F.dilation],
                     t % table[l, F.ring_len], current_ring(table, a, l), x_ring, a.nonzero_index, cur)
    elif traces:                                      # traces first: they read V[t-1], s[t-1]
        k.input_trace_step(leak, x, x_frac, a.input_trace[io:io + n_in])
        if not neuron_memoryless(table[l, F.neuron]):   # without memory th~ and a~ stay 0: dE/dth = -d
            k.neuron_trace_step(leak, V, s, a.threshold_trace[lo:lo + n_out], a.leak_trace[lo:lo + n_out])
    th = layer_thresholds(table, params.thresholds, l)
    if layer_scans(kind):                           # it steps its neurons as it scans them (scan2d)
        layer_scan(kind, W, x, x_frac, wf, window_of(table, l), table[l, F.neuron], leak, th, table[l, F.reset_shift],
                   V, s, U, cur, a.input_trace[io + n_in:io + it] if traces else a.input_trace[:0])
        return
    if sums.shape[0]:
        current_from_sums(sums, x_frac, wf, cur)
    elif not layer_has_history(kind):               # (a history's current is its filter's, above)
        layer_forward(kind, W, x, s[:0], x_frac, wf, window_of(table, l), a.nonzero_index, a.plane_sums, cur, s)
    th = layer_thresholds(table, params.thresholds, l)
    if not builtin_step(table[l, F.neuron], cur, leak, th, table[l, F.reset_shift], V, s, U):
        if neuron_step is not None:            # a kind registered after the package was generated
            neuron_step(table[l, F.neuron], cur, leak, th, table[l, F.reset_shift], V, s, U)


@njit(cache=True)
def errors(table, params, a, cfg, lowest, label):
    """This step's spatial errors, top-down from the readout to the lowest trainable layer:
    each layer's from the errors of the one above, carried back by that layer's kind."""
    R = table.shape[0] - 1
    o, so, eo, n = table[R, F.n_off], table[R, F.state_off], table[R, F.error_off], table[R, F.n_out]
    if cfg.readout_li:
        shared.li_output_error(a.potential[so:so + n], label, a.error[eo:eo + n])
    else:
        k.spiking_output_error(a.spikes[o:o + n], a.potential[so:so + n], layer_thresholds(table, params.thresholds, R),
                               label, cfg.surrogate_k, a.error[eo:eo + n])
    for l in range(R - 1, lowest - 1, -1):
        up, o, so, eo, n = l + 1, table[l, F.n_off], table[l, F.state_off], table[l, F.error_off], table[l, F.n_out]
        ueo, up_kind, n_up = table[up, F.error_off], table[up, F.kind], table[up, F.n_out]
        W_up, d_up, back = layer_weights(table, params.weights, up), a.error[ueo:ueo + n_up], a.error_backprop[:n]
        if layer_has_history(up_kind):             # its inputs of this step see its errors through the lag-0 taps
            layer_lag0(up_kind, layer_taps(table, params.taps, up), d_up, a.error_lag0[:n_up])
            d_up = a.error_lag0[:n_up]
        neurons = layer_has_neurons(table[l, F.kind])
        if neurons and up_kind == DENSE_CODE:      # the dense kind's own kernel: W^T d and the surrogate at once
            k.hidden_error(W_up, d_up, a.potential[so:so + n], layer_thresholds(table, params.thresholds, l),
                           table[up, F.weight_frac], cfg.surrogate_k, back, a.error[eo:eo + n])
            continue
        active = layer_back(up_kind, W_up, d_up, window_of(table, up), a.spikes[o:o + n], back)
        # the shift back to Q16: the weights' fraction, or an average pool's log2 kh kw
        frac = table[up, F.weight_frac] if layer_has_neurons(up_kind) else table[up, F.out_frac]
        if neurons:
            k.surrogate_error(back, active, a.potential[so:so + n], layer_thresholds(table, params.thresholds, l), frac,
                              cfg.surrogate_k, a.error[eo:eo + n])
        else:
            k.pass_error(back, active, frac, a.error[eo:eo + n])


@njit(cache=True)
def weight_shift(table, l, lr_shifts, extra):
    return 2 * nx.STATE_FRAC - table[l, F.weight_frac] + lr_shifts[0] + extra     # Q32 -> Q(wf)


@njit(cache=True)
def any_nonzero(v):
    for x in v:
        if x != 0:
            return True
    return False


@njit(cache=True)
def refresh_sums(table, params, a, x, d):
    """After layer 0's per-step update: the sums of the units that learned (d != 0: rows of a
    dense layer, channels of a convolution), from the sample's unchanged input x (cost: about
    the update's)."""
    if not any_nonzero(d):
        return                                          # no row learned
    layer_refresh(table[0, F.kind], layer_weights(table, params.weights, 0), x, window_of(table, 0), d,
                  a.nonzero_index, a.input_sums)


@njit(cache=True)
def updates(table, params, a, t, lowest, per_step, lr_shifts, rng_learn):
    """Step t's updates, bottom-up: weights, threshold, leak per trainable layer with
    neurons. A layer without errors this step is skipped: every update of it would be a no-op
    without a draw (per step its threshold and leak sums are already zero; per sample they
    gain nothing)."""
    for l in range(lowest, table.shape[0]):
        flags, kind = table[l, F.flags], table[l, F.kind]
        if not flags & TRAINABLE or not layer_has_neurons(kind):
            continue
        n_out, lo, io = table[l, F.n_out], table[l, F.learn_off], table[l, F.in_off]
        d, xt = a.error[table[l, F.error_off]:table[l, F.error_off] + n_out], a.input_trace[io:io + table[l, F.n_traces]]
        if not any_nonzero(d):
            continue
        W = layer_weights(table, params.weights, l)
        if layer_has_history(kind):                 # the eligibility: its inputs' ring through its taps
            taps, D, pos, wo = layer_taps(table, params.taps, l), table[l, F.dilation], t % table[l, F.ring_len], \
                table[l, F.w_off]
            if per_step:
                layer_ring_update(kind, W, d, taps, D, pos, input_ring(table, a, l),
                                  weight_shift(table, l, lr_shifts, 0), rng_learn)
            else:
                layer_ring_grads(kind, a.weight_grad[wo:wo + W.size].reshape(W.shape), d, taps, D, pos,
                                 input_ring(table, a, l))
            continue                                # its thresholds and leak do not learn (model.py)
        if per_step:
            layer_update(kind, W, d, xt, window_of(table, l), weight_shift(table, l, lr_shifts, 0), rng_learn,
                         a.nonzero_index, a.plane_sums)
            if flags & WEIGHTS_INT8:
                k.saturate_learned_rows(W, d, nx.INT8_MIN, nx.INT8_MAX)
        else:
            wo = table[l, F.w_off]
            layer_grads(kind, a.weight_grad[wo:wo + W.size].reshape(W.shape), d, xt, window_of(table, l),
                        a.nonzero_index)
        if flags & LEARN_THRESHOLD:
            g = a.threshold_grad[lo:lo + n_out]
            k.threshold_grads(d, a.threshold_trace[lo:lo + n_out], g)
            if per_step:
                k.apply_threshold_grads(layer_thresholds(table, params.thresholds, l), g, nx.STATE_FRAC + lr_shifts[1],
                                        THRESHOLD_FLOOR_Q16, rng_learn)
        if flags & LEARN_LEAK:
            a.leak_grad[l] = nx.sat_sum(a.leak_grad[l], k.leak_grad(d, a.leak_trace[lo:lo + n_out]))
            if per_step:
                at = table[l, F.leak_at]
                params.leaks[at] = k.apply_leak_grad(params.leaks[at], a.leak_grad[l], nx.STATE_FRAC + lr_shifts[2],
                                                     rng_learn)
                a.leak_grad[l] = 0


@njit(cache=True)
def run_sample(table, params, a, neuron_step, cfg, sample, label, learn, per_step, lr_shifts, rng_in, rng_learn,
               raster, margins, score_trace):
    """Present one sample for T steps from a zero state; learn when ``learn``; return the
    steps run. With ``per_step`` updates are applied every step, else accumulated in the
    *_grad buffers (``apply_accumulated`` applies them). ``a.scores`` receives spike counts
    (summed membranes for a non-spiking readout); ``raster`` [steps, neurons] records the
    spikes of its first rows and ``score_trace`` [steps, classes] the scores after each of
    its first rows (pass zero rows to record nothing). An inference with T ``margins``
    stops at the first step whose top-2 gap exceeds its margin (docs/numerics.md §6b;
    pass none to run T steps)."""
    L = table.shape[0]
    a.membrane[:] = 0
    a.spikes[:] = 0
    a.threshold_trace[:] = 0
    a.leak_trace[:] = 0
    a.input_trace[:] = 0
    a.current_ring[:] = 0
    a.scores[:] = 0
    lowest = L
    for l in range(L - 1, -1, -1):
        if table[l, F.flags] & TRAINABLE:
            lowest = l
    learn = learn and lowest < L
    R = L - 1
    ro, rso, rn = table[R, F.n_off], table[R, F.state_off], table[R, F.n_out]
    sums, none = a.input_sums, a.input_sums[:0]      # direct input: W x is summed once (§5b)
    for t in range(cfg.T):
        x = a.layer_input[:table[0, F.n_in]]
        x_frac = encode_step(cfg.code, sample, t, rng_in, x)
        if sums.shape[0] and t == 0:
            layer_sums(table[0, F.kind], layer_weights(table, params.weights, 0), x, window_of(table, 0),
                       a.nonzero_index, nonzero_index(x, a.nonzero_index), sums)
        forward_layer(table, params, a, neuron_step, 0, t, x, x_frac, learn, sums)   # layer 0 reads the encoder
        for l in range(1, L):                                           # the others the layer below:
            below, n_in = table[l - 1, F.n_off], table[l, F.n_in]      # spikes, or an average's counts
            x = a.layer_input[:n_in if layer_has_neurons(table[l, F.kind]) else 0]   # (a pool reads them in place)
            for i in range(x.shape[0]):
                x[i] = a.spikes[below + i]
            forward_layer(table, params, a, neuron_step, l, t, x, table[l - 1, F.out_frac], learn, none)
        if t < raster.shape[0]:
            raster[t, :] = a.spikes
        for j in range(rn):
            a.scores[j] += a.potential[rso + j] if cfg.readout_li else a.spikes[ro + j]
        if t < score_trace.shape[0]:
            score_trace[t, :] = a.scores
        if learn:
            errors(table, params, a, cfg, lowest, label)
            updates(table, params, a, t, lowest, per_step, lr_shifts, rng_learn)
            if sums.shape[0] and per_step and lowest == 0:
                x = a.layer_input[:table[0, F.n_in]]
                encode_step(cfg.code, sample, t, rng_in, x)                 # direct: a copy, no draw
                refresh_sums(table, params, a, x, a.error[:table[0, F.n_out]])     # layer 0: error_off 0
        elif margins.shape[0] and t + 1 < cfg.T and k.top2_gap(a.scores) > margins[t]:
            return t + 1                                                # a clear leader (§6b)
    return cfg.T


@njit(cache=True)
def apply_accumulated(table, params, a, lr_shifts, extra_shift, rng_learn):
    """Apply the gradients summed over a sample or a batch of 2^extra_shift samples,
    layer by layer bottom-up, in the order of the per-step updates."""
    for l in range(table.shape[0]):
        flags = table[l, F.flags]
        if not flags & TRAINABLE:
            continue
        n_out, lo, wo = table[l, F.n_out], table[l, F.learn_off], table[l, F.w_off]
        W = layer_weights(table, params.weights, l)          # a pool's is empty: nothing to apply
        k.apply_weight_grads(W, a.weight_grad[wo:wo + W.size].reshape(W.shape),
                             weight_shift(table, l, lr_shifts, extra_shift), rng_learn)
        if flags & WEIGHTS_INT8:
            k.saturate_weights(W, nx.INT8_MIN, nx.INT8_MAX)
        if flags & LEARN_THRESHOLD:
            k.apply_threshold_grads(layer_thresholds(table, params.thresholds, l), a.threshold_grad[lo:lo + n_out],
                                    nx.STATE_FRAC + lr_shifts[1] + extra_shift, THRESHOLD_FLOOR_Q16, rng_learn)
        if flags & LEARN_LEAK:
            at = table[l, F.leak_at]
            params.leaks[at] = k.apply_leak_grad(params.leaks[at], a.leak_grad[l],
                                                 nx.STATE_FRAC + lr_shifts[2] + extra_shift, rng_learn)
            a.leak_grad[l] = 0


@njit(cache=True, nogil=True)
def run_chunk(table, params, a, neuron_step, cfg, samples, labels, lo, hi, learn, lr_shifts, rng_in, rng_learn,
              no_raster, no_margins, no_trace, scores):
    """Samples lo..hi-1 of a batch one after the other in arena ``a``, as the sequential batch
    runs them (gradients summed, none applied; ``labels`` -1 for inference), their scores into
    ``scores``. Without the GIL: one thread per chunk of a batch (``batch``, §6e)."""
    for b in range(lo, hi):
        run_sample(table, params, a, neuron_step, cfg, samples[b], labels[b], learn, False, lr_shifts, rng_in,
                   rng_learn, no_raster, no_margins, no_trace)
        scores[b, :] = a.scores


class FixedSTOP:
    """The fixed-point STOP runtime over the arena of edgelearn.plan (what the device holds).

    ``threads``: how many threads a batch of B > 1 samples may use (default None: numba's
    thread count, numba.set_num_threads or NUMBA_NUM_THREADS); the results are bit for bit
    those of the sequential batch (docs/numerics.md §6e)."""

    exactness = Exactness.BIT
    weight_bits = (16, 8)          # an int8 layer's updates saturate to sat8 (WEIGHTS_INT8)

    def __init__(self, model: Model, *, threads: int | None = None):
        check(model)
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a positive integer or None (numba's thread count), got {threads!r}")
        self.threads = threads
        for layer in model.layers:
            kind = NEURONS[layer.neuron.kind] if layer.neuron else None
            if kind is not None and kind.memoryless and kind.code not in BUILTIN:
                raise ModelError(f"layer {layer.name!r}: the memoryless neuron kind {kind.name!r} was registered after "
                                 "edgelearn.ops.builtin_steps was generated: run python -m edgelearn.cgen")
            if LAYERS[layer.kind].code not in BUILTIN_LAYERS:
                raise ModelError(f"layer {layer.name!r}: layer kind {layer.kind!r} was registered after "
                                 "edgelearn.ops.builtin_layers was generated: run python -m edgelearn.cgen")
        self.model = model
        cfg = model.learning
        self.table, edges, self.dims = plan.tables(model)
        self.arena = plan.allocate(self.table, edges, self.dims, "stop")
        self.params = Params.of(model)
        self.per_step = cfg.update == "step"
        self.config = Config(CODES[model.input.encoding], cfg.T, cfg.surrogate_shift,
                             not NEURONS[model.readout.neuron.kind].spiking)
        self.rng_input = nx.new_rng(cfg.seed)
        self.rng_learn = nx.new_rng(cfg.seed ^ LEARN_STREAM_XOR)
        self.learning_rates = LearningRates(model)
        self.lr_shifts = self.learning_rates.shifts()          # the effective shifts, read by every update
        self.learns = any(self.table[:, F.flags] & TRAINABLE)
        self._no_raster = np.zeros((0, self.dims.neurons), dtype=np.uint8)
        self._no_margins = np.zeros(0, dtype=np.int64)
        self._no_trace = np.zeros((0, self.dims.classes), dtype=np.int64)
        self.neuron_step = extension_dispatch(BUILTIN)
        self._chunk_arenas: list = []            # the arenas of a parallel batch's other chunks
        self.threads_used = 1                    # by the last run (1: the sequential batch)

    weights = property(lambda self: self.params.weights)
    thresholds = property(lambda self: self.params.thresholds)
    leaks = property(lambda self: self.params.leaks)

    def buffers(self) -> dict[str, np.ndarray]:
        """Every array the runtime holds while training, by name (the C runtime's names)."""
        return {"weights": self.weights, "thresholds": self.thresholds, "leaks": self.leaks,
                **self.arena._asdict(), "rng_input": self.rng_input, "rng_learn": self.rng_learn}

    def _run(self, sample, label: int, learn: bool, per_step: bool, raster=None, margins=None,
             score_trace=None) -> int:
        return run_sample(self.table, self.params, self.arena, self.neuron_step, self.config, as_rows(sample), label,
                          learn, per_step, self.lr_shifts, self.rng_input, self.rng_learn,
                          self._no_raster if raster is None else raster,
                          self._no_margins if margins is None else margins,
                          self._no_trace if score_trace is None else score_trace)

    def spike_raster(self, sample) -> np.ndarray:
        """Inference on one sample, recording every neuron's spikes: uint8 [T, neurons]."""
        raster = np.zeros((self.model.learning.T, self.dims.neurons), dtype=np.uint8)
        self._run(sample, -1, False, False, raster)
        return raster

    def infer(self, samples: np.ndarray, cutoff: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Inference with the model's cutoff (docs/numerics.md §6b), or for T steps: the
        scores [B, classes] where each sample stopped and the steps it ran [B]."""
        margins = cutoff_margins(self.model) if cutoff else None
        steps = np.empty(len(samples), dtype=np.int64)
        scores = np.empty((len(samples), self.dims.classes), dtype=np.int64)
        for b in range(len(samples)):
            steps[b] = self._run(samples[b], -1, False, False, margins=margins)
            scores[b] = self.arena.scores
        return scores, steps

    def score_trajectories(self, samples: np.ndarray) -> np.ndarray:
        """Inference for T steps recording the scores after every step: int64 [B, T, classes]
        (what ``edgelearn.cutoff`` calibrates on)."""
        out = np.zeros((len(samples), self.model.learning.T, self.dims.classes), dtype=np.int64)
        for b in range(len(samples)):
            self._run(samples[b], -1, False, False, score_trace=out[b])
        return out

    def run(self, samples: np.ndarray, labels: np.ndarray | None, learn: bool) -> np.ndarray:
        """Present a batch (one sample: online learning); return scores [B, classes].
        A batch of B > 1 accumulates and applies once, B must be a power of two."""
        B = len(samples)
        if learn and B > 1 and B & (B - 1):
            raise ValueError(f"fixed-point batches must be a power of two, got {B}")
        kept = self.arena
        if learn and B > 1 and self.per_step:      # a per-step learner has no weight sums of its own: lend some
            synapses = plan.tables(self.model, weight_grad=True)[2].grad_synapses
            self.arena = kept._replace(weight_grad=np.zeros(synapses, dtype=np.int64))
        per_step = self.per_step and B == 1
        try:
            threads = self.threads_used = 1 if per_step else self.batch_threads(samples, learn)
            if threads > 1:
                out = self._run_chunks(samples, labels, learn, threads)
            else:                                   # the sequential batch: the reference (§6)
                out = np.empty((B, self.dims.classes), dtype=np.int64)
                for b in range(B):
                    self.lr_shifts[:] = self.learning_rates.shifts()          # the schedule, per sample (§6c)
                    self._run(samples[b], int(labels[b]) if learn else -1, learn, per_step)
                    out[b] = self.arena.scores
                    if learn and self.learns:
                        self.learning_rates.count()
            if learn and not per_step:
                self.lr_shifts[:] = self.learning_rates.shifts()          # after the batch's samples
                apply_accumulated(self.table, self.params, self.arena, self.lr_shifts, B.bit_length() - 1,
                                  self.rng_learn)
        finally:
            self.arena = self.arena._replace(weight_grad=kept.weight_grad)
        return out

    def batch_threads(self, samples, learn: bool) -> int:
        """The threads ``run`` gives this batch: ``threads`` (numba's count by default), at most
        one per sample; 1 (the sequential batch) for samples that are not one array of
        [B, n] or [B, rows, n], or a learning batch whose gradient sums the bound of
        docs/numerics.md §6e does not keep below SUM_LIMIT."""
        threads = min(len(samples), thread_count(self.threads))
        if threads < 2 or not isinstance(samples, np.ndarray) or samples.ndim not in (2, 3):
            return 1
        if learn and self.learns:
            x_max = max(int(samples.max()), -int(samples.min())) if self.config.code in (DIRECT, SEQUENCE) else 1
            bound = (self.table, self.params, self.config, len(samples), x_max, self.arena)
            if not (saturation_free(*bound) or saturation_free(*bound, chunk_rows(samples))):    # cheap first
                return 1
        return threads

    def _run_chunks(self, samples: np.ndarray, labels, learn: bool, threads: int) -> np.ndarray:
        """``run``'s batch on ``threads`` threads (docs/numerics.md §6e): contiguous chunks of
        samples, the last in this arena on this thread, the others in arenas of their own, each
        input stream where the sequential batch would have it; then their gradient sums added
        into this arena's in chunk order. The scores [B, classes]."""
        B = len(samples)
        rows = chunk_rows(samples)
        labels = np.asarray(labels, dtype=np.int64)[:B] if learn else np.full(B, -1, dtype=np.int64)
        out = np.empty((B, self.dims.classes), dtype=np.int64)
        while len(self._chunk_arenas) < threads - 1:
            _, edges, dims = plan.tables(self.model, weight_grad=True)
            self._chunk_arenas.append(plan.allocate(self.table, edges, dims, "stop"))
        draws = input_draws(self.config.code, int(self.table[0, F.n_in]), self.config.T)
        self.lr_shifts[:] = self.learning_rates.shifts()   # read by no update of a batch's samples (§6)

        def chunk(lo, hi, arena, rng_in, rng_learn):
            run_chunk(self.table, self.params, arena, self.neuron_step, self.config, rows, labels, lo, hi, learn,
                      self.lr_shifts, rng_in, rng_learn, self._no_raster, self._no_margins, self._no_trace, out)

        cuts, others = chunk_bounds(B, threads), self._chunk_arenas[:threads - 1]
        jobs, kept, workers = [], mark_scratch(self.arena, others), pool(threads - 1)
        try:
            for c, (lo, hi) in enumerate(cuts[:-1]):
                rng_in = self.rng_input.copy()
                nx.rng_skip(self.rng_input, (hi - lo) * draws)      # this stream moves on to the next chunk
                jobs.append(workers.submit(chunk, lo, hi, others[c], rng_in, self.rng_learn.copy()))
            chunk(*cuts[-1], self.arena, self.rng_input, self.rng_learn)
            for job in jobs:
                job.result()
            merge_scratch(self.arena, others, kept)
            if learn:
                for arena in others:                                # in chunk order (exact: §6e)
                    add_sums(self.arena.weight_grad, arena.weight_grad)
                    add_sums(self.arena.threshold_grad, arena.threshold_grad)
                    add_sums(self.arena.leak_grad, arena.leak_grad)
        except BaseException:
            for job in jobs:
                job.cancel()
            self._chunk_arenas = []           # they may hold part of a batch's sums
            raise
        if learn and self.learns:
            self.learning_rates.count(B)
        return out

    def health(self, reset: bool = False) -> dict:
        """STOP keeps no health counters (SPIDE does)."""
        return {}

    def to_model(self) -> Model:
        out = self.model.copy()
        for l, layer in enumerate(out.layers):
            rows, cols, w_at, th_at = self.table[l, [F.w_rows, F.w_cols, F.weights_at, F.thresholds_at]]
            p = out.params[layer.name]
            p.weight = self.weights[w_at:w_at + rows * cols].reshape(rows, cols).copy()
            p.threshold = self.thresholds[th_at:th_at + p.threshold.size].copy()
            p.leak = int(self.leaks[self.table[l, F.leak_at]])
        out.schedule = self.learning_rates.state()
        return out.validate()

"""What FixedSTOP's batches on several cores need (docs/numerics.md §6e): the bound that lets
their gradient sums be added in another order, the reduction, the chunks and the threads.

The sequential batch runs its B samples one after the other through ``run_sample``, each from
the zero state, with the parameters unchanged; the only coupling between samples is the input
stream (the rate encoder draws n inputs x T steps of it per sample) and the gradient sums.
The parallel batch (``FixedSTOP.run``) cuts it into contiguous chunks, one per thread, each in
an arena of its own (``run_chunk`` releases the GIL) with its input stream skipped ahead to
where the sequential run would have it; the last chunk runs in the learner's own arena, so
that it ends in the last sample's state and the input stream where the sequential run leaves
it; the other chunks' gradient sums are then added into the learner's, in chunk order.

Every sum is exact as long as no running sum reaches SUM_LIMIT: then the order of the
additions cannot change a bit. ``saturation_free`` bounds every gradient sum of the batch from
the model's current parameters; a batch it cannot clear runs sequentially."""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit

from ... import numerics as nx
from ...contract import LEARN_LEAK, LEARN_THRESHOLD, SUM_LIMIT, TRAINABLE
from ...encoders import DIRECT, SEQUENCE
from ...ops import LAYERS, NEURONS
from ...plan import LayerField as F
from ..params import layer_thresholds, layer_weights

DENSE = LAYERS["dense"].code
BOUNDED_NEURONS = {NEURONS[name].code for name in ("lif", "if", "li")}    # the steps §6e bounds
LI = NEURONS["li"].code
CAP = 1 << 31                   # |x| of an int32 (every state, trace and error saturates to int32)
BIG = 1 << 62                   # bounds stop growing here: anything above SUM_LIMIT fails alike


@njit(cache=True)
def add_sums(into, part):
    """into += part and clear part: exact, as no sum reaches SUM_LIMIT (``saturation_free``),
    where sat_sum is the plain sum."""
    for i in range(part.shape[0]):
        if part[i] != 0:
            into[i] = nx.sat_sum(into[i], part[i])
            part[i] = 0


@njit(cache=True)
def max_abs(v):
    m = np.int64(0)
    for x in v:
        if abs(x) > m:
            m = abs(x)
    return m


@njit(cache=True)
def _times(x, y):
    """min(BIG, x y) for 0 <= x, y <= BIG, without overflow."""
    if x == 0 or y == 0:
        return np.int64(0)
    return np.int64(BIG) if x > BIG // y else x * y


@njit(cache=True)
def _mul(a, v):
    """A bound of |mul_state(a, x)| for |x| <= v <= 2^31 and a in [0, ONE] (rounding adds at most 1)."""
    return ((a * v) >> nx.STATE_FRAC) + 1


@njit(cache=True)
def _shifted(v, s):
    """A bound of |round_shift(x, s)| for |x| <= v."""
    return (v >> s) + 1 if s > 0 else _times(v, np.int64(1) << -s)


@njit(cache=True)
def row_bounds(W, x_max):
    """x_max sum_i |W[j][i]| for each neuron j: a bound of |W x| for inputs of at most x_max."""
    out = np.zeros(W.shape[0], dtype=np.int64)
    for j in range(W.shape[0]):
        row = np.int64(0)
        for i in range(W.shape[1]):
            row += abs(np.int64(W[j, i]))
        out[j] = _times(row, np.int64(x_max))
    return out


@njit(cache=True)
def input_row_bounds(W, samples, code):
    """The largest over the batch of sum_i |W[j][i]| v_i for each neuron j, v_i the most input i
    of a sample can be at any step (its byte for direct and sequence, the largest of its rows;
    1 where a rate input can fire, i.e. its byte is non-zero, or an event stream has an
    event): a bound of layer 0's |W x| for these samples, tighter than ``row_bounds``."""
    out = np.zeros(W.shape[0], dtype=np.int64)
    v = np.zeros(W.shape[1], dtype=np.int64)
    active = np.zeros(W.shape[1], dtype=np.int64)
    for b in range(samples.shape[0]):
        v[:] = 0
        for r in range(samples.shape[1]):
            for i in range(W.shape[1]):
                x = abs(np.int64(samples[b, r, i]))
                v[i] = max(v[i], x if code == DIRECT or code == SEQUENCE else min(x, 1))
        k = 0
        for i in range(W.shape[1]):             # the inputs that can be non-zero: few, on images
            if v[i] != 0:
                active[k] = i
                k += 1
        for j in range(W.shape[0]):
            acc = np.int64(0)
            for q in range(k):
                acc += abs(np.int64(W[j, active[q]])) * v[active[q]]
            out[j] = max(out[j], acc)
    return out


@njit(cache=True)
def neuron_bounds(rows, x_max, x_frac, wf, a, floor, T):
    """Bounds of a dense layer's state over a sample of T steps, from ``rows`` (a bound of
    |W x| per neuron) and x_max (the largest input): |U| of each neuron over all steps [n];
    |a~| of each neuron after each step [T, n]; each input trace |x^| [T] and |th~ - ONE| [T]
    after each step. ``floor``: th << reset_shift - th, the most a reset can leave below zero.
    The recursions of §5 with every leak's product rounded up: |mul_state(a, x)| <= a |x| / 2^16 + 1."""
    n = rows.shape[0]
    U, A = np.zeros(n, dtype=np.int64), np.zeros((T, n), dtype=np.int64)
    X, TH = np.zeros(T, dtype=np.int64), np.zeros(T, dtype=np.int64)
    x_inc, x, th = np.int64(x_max) << (nx.STATE_FRAC - x_frac), np.int64(0), np.int64(0)
    for t in range(T):
        x = min(CAP, _mul(a, x) + x_inc)
        th = min(CAP, _mul(a, th + nx.ONE))
        X[t], TH[t] = x, th + nx.ONE
    for j in range(n):
        cur = min(CAP, _shifted(rows[j], wf + x_frac - nx.STATE_FRAC))
        v, u_max, acc = np.int64(0), np.int64(0), np.int64(0)
        for t in range(T):
            acc = min(CAP, _mul(a, acc) + v)         # a~ reads V[t-1]
            u = min(CAP, _mul(a, v) + cur)
            u_max, v = max(u_max, u), max(u, floor)
            A[t, j] = acc
        U[j] = u_max
    return U, A, X, TH


@njit(cache=True)
def error_bounds(W_up, d_up, wf_up):
    """|d_j| of a layer below a dense one (hidden_error): |W_up|^T d_up rounded by wf_up, then
    the surrogate (<= ONE) and its rounding, +1 each."""
    out = np.zeros(W_up.shape[1], dtype=np.int64)
    for j in range(out.shape[0]):
        acc = np.int64(0)
        for m in range(W_up.shape[0]):
            acc = min(BIG, acc + _times(abs(np.int64(W_up[m, j])), d_up[m]))
        out[j] = min(CAP, _shifted(acc, wf_up) + 1)
    return out


@njit(cache=True)
def leak_bound(d, A):
    """Sum over the steps of |leak_grad(d, a~)| = |sum_j d_j a~_j|, each step's at most SUM_LIMIT."""
    total = np.int64(0)
    for t in range(A.shape[0]):
        step = np.int64(0)
        for j in range(d.shape[0]):
            step = min(BIG, step + _times(d[j], A[t, j]))
        total = min(BIG, total + min(SUM_LIMIT, step))
    return total


def saturation_free(table, params, cfg, batch: int, x_max: int, arena, samples=None) -> bool:
    """True when no gradient sum of this batch can reach SUM_LIMIT (docs/numerics.md §6e): the
    sums already in ``arena`` plus, for B samples, the bound of every product each step can
    add, from the current parameters and inputs of at most ``x_max``, or, given the batch's
    ``samples`` [B, rows, n], layer 0's currents bounded from them (``input_row_bounds``: the
    same proof, a tighter bound at the cost of a pass over the batch). Bounded for stacks of
    dense layers with lif, if or li neurons; False for anything else."""
    L = table.shape[0]
    if any(table[l, F.kind] != DENSE or table[l, F.neuron] not in BOUNDED_NEURONS for l in range(L)):
        return False
    state = []
    for l in range(L):
        x_frac = (nx.INPUT_FRAC if cfg.code in (DIRECT, SEQUENCE) else 0) if l == 0 else int(table[l - 1, F.out_frac])
        th, a = layer_thresholds(table, params.thresholds, l), int(params.leaks[table[l, F.leak_at]])
        spiking = table[l, F.neuron] != LI
        if a < 0 or spiking and th.min() <= 0:     # outside the contract's ranges: not bounded here
            return False
        floor = (int(th.max()) << int(table[l, F.reset_shift])) - int(th.max()) if spiking else 0
        W, xm = layer_weights(table, params.weights, l), x_max if l == 0 else 1
        rows = input_row_bounds(W, samples, cfg.code) if l == 0 and samples is not None else row_bounds(W, xm)
        state.append(neuron_bounds(rows, xm, x_frac, int(table[l, F.weight_frac]), a, floor, cfg.T))
    R = L - 1
    errors = [None] * L
    errors[R] = np.minimum(CAP, state[R][0] + nx.ONE) if cfg.readout_li else np.full(table[R, F.n_out], nx.ONE)
    for l in range(R - 1, -1, -1):
        errors[l] = error_bounds(layer_weights(table, params.weights, l + 1), errors[l + 1],
                                 int(table[l + 1, F.weight_frac]))
    for l in range(L):
        flags = int(table[l, F.flags])
        if not flags & TRAINABLE:
            continue
        n, lo, wo = int(table[l, F.n_out]), int(table[l, F.learn_off]), int(table[l, F.w_off])
        synapses = int(table[l, F.w_rows]) * int(table[l, F.w_cols])
        _, A, X, TH = state[l]
        d = int(errors[l].max())
        sums = [(batch * d * int(X.sum()), max_abs(arena.weight_grad[wo:wo + synapses]))]   # one product a step
        if flags & LEARN_THRESHOLD:
            sums.append((batch * d * int(TH.sum()), max_abs(arena.threshold_grad[lo:lo + n])))
        if flags & LEARN_LEAK:
            sums.append((batch * int(leak_bound(errors[l], A)), abs(int(arena.leak_grad[l]))))
        if any(added + int(held) > SUM_LIMIT for added, held in sums):
            return False
    return True


# The scratch buffers a sample may write in part (an index list, one layer's share of a buffer
# sized for the widest): the sequential batch leaves in each entry the last write of any sample.
# Before a parallel batch every arena's are filled with a value no write produces, so that
# ``merge_scratch`` can tell the entries each chunk wrote. Every other buffer is written whole by
# each sample, or not at all (tests/test_batch_parallel.py compares every buffer).
UNWRITTEN = {"nonzero_index": -1,                # indices are >= 0
             "layer_input": nx.INT32_MIN,        # inputs, spikes and pool values are >= 0
             "error_backprop": -(1 << 63),       # unsaturated sums below 2^63 (§8)
             "plane_sums": -(1 << 63)}
# (error_lag0 is written in part too, but only by a learning step of a psn model, which saturation_free
# never admits to the parallel path: its inference writes no errors.)


def mark_scratch(own, others) -> dict:
    """Fill the scratch of every arena with UNWRITTEN; return copies of ``own``'s, as it was."""
    kept = {name: getattr(own, name).copy() for name in UNWRITTEN}
    for arena in (own, *others):
        for name, value in UNWRITTEN.items():
            getattr(arena, name).fill(value)
    return kept


def merge_scratch(own, others, kept: dict) -> None:
    """``own``'s scratch as the sequential batch leaves it: its last chunk's writes, else the
    latest earlier chunk's (``others`` in chunk order), else what it held before the batch."""
    for name, value in UNWRITTEN.items():
        buf = getattr(own, name)
        missing = buf == value
        for arena in reversed(others):
            if not missing.any():
                break
            theirs = getattr(arena, name)
            buf[missing] = theirs[missing]
            missing &= theirs == value
        buf[missing] = kept[name][missing]


def chunk_rows(samples: np.ndarray) -> np.ndarray:
    """A batch as [B, rows, n], C-ordered: each sample as the two-dimensional rows run_sample
    reads (``encoders.as_rows``)."""
    return np.ascontiguousarray(samples.reshape(len(samples), 1, -1) if samples.ndim == 2 else samples)


def chunk_bounds(B: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous runs of samples covering 0..B-1 in order, as even as they come."""
    return [(c * B // parts, (c + 1) * B // parts) for c in range(parts)]


def thread_count(threads: int | None) -> int:
    """``threads``, or numba's thread count (numba.set_num_threads, NUMBA_NUM_THREADS) when None."""
    return numba.get_num_threads() if threads is None else threads


_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = _POOL_PID = 0
_POOL_LOCK = threading.Lock()


def pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool of at least ``workers`` threads, started once: a chunk runs for
    milliseconds, so a thread started per batch would cost a few percent. A forked child gets
    a pool of its own (the parent's threads do not exist there, and its pool would never run)."""
    global _POOL, _POOL_SIZE, _POOL_PID
    with _POOL_LOCK:
        if _POOL_SIZE < workers or _POOL_PID != os.getpid():
            if _POOL is not None and _POOL_PID == os.getpid():
                _POOL.shutdown(wait=False)
            _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="edgelearn-batch")
            _POOL_SIZE, _POOL_PID = workers, os.getpid()
        return _POOL

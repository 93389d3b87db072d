"""Regenerate the per-kernel golden vectors from the Python reference.

    .venv/bin/python tests/golden/make_kernel_golden.py

Writes tests/golden/kernels/<op>.json, one file per kernel of tests/kernel_calls.py:
hand-picked edge cases (the worked values of docs/numerics.md, round_shift ties, int16 /
int32 / gradient-sum saturation, zero inputs that the event-driven loops skip, PRNG draws
counted by the state after the call, shifts at and above 62) plus a few cases from a numpy
generator seeded by the op's name. The outputs are what the Python reference computes;
tests/test_kernel_golden.py replays every file through every bit-exact executor and fails
when a committed file differs from a fresh one. Deterministic: two runs write identical
files. Never edit the files by hand (docs/numerics.md §11). Format: kernels/README.md.
"""
from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # tests/: kernel_calls
import kernel_calls as kc

OUT = Path(__file__).with_name("kernels")

ONE = 1 << 16
HALF = ONE >> 1
I16_MIN, I16_MAX = -(1 << 15), (1 << 15) - 1
I8_MIN, I8_MAX = -(1 << 7), (1 << 7) - 1
I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1
LIMIT = 1 << 61                     # gradient sums saturate here
FLOOR = 4096                        # the threshold floor, ONE / 16
SEED1_LEARN = 1 ^ 0xA5A5A5A5        # the learning stream of seed 1
SEED0 = 0x2545F491                  # the state of seed 0

BUILDERS = {}


def builder(op):
    def register(fn):
        BUILDERS[op] = fn
        return fn
    return register


def c(name, block=None, alias=None, **inputs):
    """A case: its name and inputs (arrays as numpy arrays or lists)."""
    case = {"name": name}
    if block:
        case["block"] = block
    if alias:
        case["alias"] = alias
    case["inputs"] = inputs
    return case


class Gen:
    """A numpy generator seeded by the op's name (crc32: stable across runs and versions)."""

    def __init__(self, op):
        self.r = np.random.default_rng(zlib.crc32(op.encode()))

    def i(self, lo, hi, size=None):
        """Integers in [lo, hi], inclusive."""
        v = self.r.integers(lo, hi, size=size, endpoint=True, dtype=np.int64)
        return v if size is not None else int(v)

    def sparse(self, lo, hi, size, p_zero=0.4):
        v = self.i(lo, hi, size)
        v[self.r.random(size) < p_zero] = 0
        return v

    def spikes(self, size, p=0.4):
        return (self.r.random(size) < p).astype(np.int64)

    def state(self):
        return self.i(1, 0xFFFFFFFF)


# -- numeric primitives -----------------------------------------------------------------

@builder("round_shift")
def _(g):
    pairs = [(-3, 1), (3, 1), (-1, 1), (-5, 2), (-6, 2), (6, 2), (3, -2), (0, 5), (7, 0),
             (32768, 16), (-32768, 16), (-32769, 16), (I32_MIN, -16), (1 << 62, 62), (-(1 << 61), 62),
             (-(1 << 61) - 1, 62), ((1 << 62) - 1, 61), (g.i(-(1 << 40), 1 << 40), g.i(1, 40))]
    names = {(3, -2): "negative shift: exact left shift", (-(1 << 61), 62): "tie at shift 62 rounds toward +inf"}
    return [c(names.get((x, s), f"round_shift({x}, {s})"), x=x, s=s) for x, s in pairs]


@builder("stochastic_shift")
def _(g):
    rows = [("numerics.md §3: SR(100, 4) from seed 1 = 6", 100, 4, 1),
            ("SR(-100, 4) from seed 1 = -7", -100, 4, 1),
            ("SR(3 2^20, 22) from seed 1 = 0", 3 << 20, 22, 1),
            ("s = 0: p, no draw", 12345, 0, 1),
            ("s = -2: 4 p, no draw", -12345, -2, 1),
            ("s = 32: r is the whole draw", -(1 << 40) + 3, 32, SEED0),
            ("s = 33: r is the draw shifted left by 1", (1 << 40) + 7, 33, SEED0),
            ("s = 62 at |p| just below 2^62", (1 << 62) - 1, 62, SEED1_LEARN),
            ("s = 62, p = -2^62 + 1", -(1 << 62) + 1, 62, SEED1_LEARN),
            ("s = 63: one bit floor-dropped first", -(1 << 61), 63, SEED1_LEARN),
            ("s = 90: 28 bits floor-dropped first", (1 << 61) - 1, 90, g.state()),
            ("s = 125: 63 bits dropped", -(1 << 61), 125, g.state()),
            ("s = 126: a 64-bit drop leaves p = -1, then SR by 62", -(1 << 61), 126, SEED1_LEARN),
            ("s = 130: a 68-bit drop leaves p = 0, then SR by 62", (1 << 61) - 1, 130, g.state()),
            ("random", g.i(-(1 << 50), 1 << 50), g.i(1, 62), g.state())]
    return [c(name, p=p, s=s, rng=st) for name, p, s, st in rows]


@builder("rng_next")
def _(g):
    rows = [("seed 1 draws 270369", 1), ("then 67634689", 270369), ("then 2647435461", 67634689),
            ("seed 0's state 0x2545F491", SEED0), ("learning stream of seed 1, 0xA5A5A5A4", SEED1_LEARN),
            ("all ones", 0xFFFFFFFF), ("top bit only", 0x80000000), ("random", g.state())]
    return [c(name, rng=st) for name, st in rows]


@builder("sat_sum")
def _(g):
    rows = [("small sum", 5, -3), ("reaches +2^61 exactly", LIMIT - 1, 1), ("clamps above +2^61", LIMIT, 1),
            ("2^61 + 2^62 + 2^47 clamps (the largest operands)", LIMIT, (1 << 62) + (1 << 47)),
            ("-2^61 - 2^62 clamps", -LIMIT, -(1 << 62)), ("from the clamp back down", LIMIT, -(1 << 62)),
            ("random", g.i(-LIMIT, LIMIT), g.i(-(1 << 62), 1 << 62))]
    return [c(name, acc=acc, p=p) for name, acc, p in rows]


# -- encoder ------------------------------------------------------------------------------

@builder("encode_step")
def _(g):
    return [
        c("direct: x = sample (Q8), no draw", code=0, sample=[[0, 1, 128, 255]], t=3, rng=1),
        c("rate, numerics.md §4: seed 1, [0, 1, 255, 128] -> [0, 0, 1, 1]", code=1, sample=[[0, 1, 255, 128]],
          t=0, rng=1),
        c("rate: 0 never fires, 255 almost always; one draw per input all the same",
          code=1, sample=[[0, 255, 0, 255, 0, 255]], t=0, rng=SEED0),
        c("rate, random", code=1, sample=[g.i(0, 255, 16)], t=5, rng=g.state()),
        c("events: row t, any non-zero byte is a spike", code=2, sample=[[0, 1, 0, 1, 0], [7, 0, 255, 1, 0],
                                                                          [1, 1, 1, 1, 1]], t=1, rng=g.state()),
        c("events: the last row", code=2, sample=g.spikes((3, 6)).tolist(), t=2, rng=g.state()),
        c("events: t past the recording is silent", code=2, sample=[[1, 1, 1], [1, 1, 1]], t=2, rng=g.state()),
    ]


# -- forward ------------------------------------------------------------------------------

@builder("dense_current")
def _(g):
    W6 = g.i(I16_MIN, I16_MAX, (6, 64))
    return [
        c("numerics.md §5: direct, wf 12: acc 2048, shift 4 -> 128", W=[[4096, 1000, -2048], [1, 2, 3]],
          x=[128, 0, 255], x_frac=8, w_frac=12),
        c("numerics.md §5: spikes, shift -4 -> 32768", W=[[4096, 1000, -2048], [-1, 7, -32768]], x=[1, 0, 1],
          x_frac=0, w_frac=12),
        c("round_shift ties both signs (wf 15, Q8 input: shift 7)",
          W=[[64, 5], [-64, 5], [-65, 5], [192, 5], [-192, 5], [63, 5], [-63, 5], [0, 5]], x=[1, 0],
          x_frac=8, w_frac=15),
        c("all inputs zero: the event-driven loop visits none", W=g.i(I16_MIN, I16_MAX, (4, 5)), x=[0] * 5,
          x_frac=8, w_frac=12),
        c("int32 saturation at both bounds (wf 0, spikes: shift -16)",
          W=[[I16_MAX, I16_MAX], [I16_MIN, I16_MIN], [I16_MAX, I16_MIN], [1, 0]], x=[1, 1], x_frac=0, w_frac=0),
        c("direct, wf 15, full-range weights, 64 inputs", W=W6, x=g.sparse(0, 255, 64), x_frac=8, w_frac=15),
        c("SPIDE rates: counts 0..32 as input, x_frac 5", W=g.i(-4096, 4096, (5, 12)), x=g.i(0, 32, 12),
          x_frac=5, w_frac=12),
        c("a block of a wider matrix: columns 3..7 of 10 (row stride 10)", block={"W": [3, 5]},
          W=g.i(I16_MIN, I16_MAX, (4, 10)), x=[255, 0, 17, 128, 1], x_frac=8, w_frac=12),
        c("random spikes, wf 12", W=g.i(-8192, 8192, (7, 20)), x=g.spikes(20), x_frac=0, w_frac=12),
    ]


@builder("dense_current_int8")
def _(g):
    return [
        c("Q0.7 weights, direct input: shift -1, never a rounding", W=[[64, I8_MIN, I8_MAX], [1, 2, 3]],
          x=[128, 0, 255], x_frac=8, w_frac=7),
        c("full-range weights on spikes (wf 0: shift -16)", W=[[I8_MAX, I8_MAX], [I8_MIN, I8_MIN], [I8_MAX, I8_MIN]],
          x=[1, 1], x_frac=0, w_frac=0),
        c("all inputs zero", W=g.i(I8_MIN, I8_MAX, (3, 5)), x=[0] * 5, x_frac=8, w_frac=7),
        c("direct, wf 7, full-range weights, 784 inputs", W=g.i(I8_MIN, I8_MAX, (3, 784)), x=g.sparse(0, 255, 784),
          x_frac=8, w_frac=7),
        c("a block of a wider matrix: columns 2..6 of 9", block={"W": [2, 5]}, W=g.i(I8_MIN, I8_MAX, (4, 9)),
          x=[255, 0, 17, 128, 1], x_frac=8, w_frac=6),
        c("random spikes, wf 6", W=g.i(I8_MIN, I8_MAX, (7, 20)), x=g.spikes(20), x_frac=0, w_frac=6),
    ]


@builder("spike_current")
def _(g):
    return [
        c("spikes, wf 12 (shift -4)", W=g.i(-8192, 8192, (6, 16)), s=g.spikes(16), w_frac=12),
        c("no spikes: every current 0", W=g.i(I16_MIN, I16_MAX, (3, 8)), s=[0] * 8, w_frac=12),
        c("int32 saturation at both bounds (wf 0)", W=[[I16_MAX, I16_MAX], [I16_MIN, I16_MIN], [I16_MAX, I16_MIN]],
          s=[1, 1], w_frac=0),
        c("wf 15 (shift -1), every input spiking", W=g.i(I16_MIN, I16_MAX, (4, 9)), s=[1] * 9, w_frac=15),
        c("a block of a wider matrix: columns 2..5 of 9", block={"W": [2, 4]}, W=g.i(I16_MIN, I16_MAX, (3, 9)),
          s=[1, 0, 1, 1], w_frac=10),
        c("random, wf 8", W=g.i(I16_MIN, I16_MAX, (5, 24)), s=g.spikes(24, 0.2), w_frac=8),
    ]


@builder("input_trace_step")
def _(g):
    return [
        c("numerics.md §5: a = 0.875, Q8 input, from 0", a=57344, x=[128, 0, 255], x_frac=8, x_tr=[0, 0, 0]),
        c("numerics.md §5: the second step", a=57344, x=[128, 0, 255], x_frac=8, x_tr=[32768, 0, 65280]),
        c("spikes (x_frac 0): lifted by 16", a=61440, x=[1, 0, 1, 1, 0], x_frac=0,
          x_tr=[0, 5, 65536, 123457, 1]),
        c("int32 saturation of spikes (a = ONE)", a=ONE, x=[1, 1, 0, 1, 1], x_frac=0,
          x_tr=[I32_MAX, I32_MAX - ONE + 1, I32_MAX, I32_MAX - 100, I32_MAX - ONE]),
        c("int32 saturation of a direct input (a = ONE, x = 255)", a=ONE, x=[255, 255], x_frac=8,
          x_tr=[I32_MAX - 65280, I32_MAX - 65279]),
        c("mul_state ties: a = 0.5 on odd traces", a=HALF, x=[0] * 5, x_frac=8, x_tr=[1, 3, 5, 65537, 0]),
        c("a = 0: the trace is the input", a=0, x=[7, 0, 255], x_frac=8, x_tr=[999, 12345, I32_MAX]),
        c("random direct", a=g.i(0, ONE), x=g.sparse(0, 255, 12), x_frac=8, x_tr=g.i(0, 1 << 24, 12)),
        c("random spikes", a=g.i(0, ONE), x=g.spikes(12), x_frac=0, x_tr=g.i(0, 1 << 22, 12)),
    ]


@builder("neuron_trace_step")
def _(g):
    n = 10
    return [
        c("numerics.md §5: a = 0.875, V = 9464; s = 1 from 0, then s = 0", a=57344, V=[9464, 9464], s=[1, 0],
          th_tr=[0, -57344], a_tr=[0, 9464]),
        c("int32 saturation (a = ONE)", a=ONE, V=[0, I32_MAX, I32_MIN, 1], s=[1, 0, 1, 1],
          th_tr=[I32_MIN, I32_MIN + 5, I32_MIN + ONE - 1, I32_MIN + ONE],
          a_tr=[0, I32_MAX, I32_MIN, I32_MAX]),
        c("mul_state ties: a = 0.5 on odd values, both signs", a=HALF, V=[0] * 5, s=[0] * 5,
          th_tr=[-1, -3, -65537, -5, 0], a_tr=[1, -1, 3, -3, 65537]),
        c("a = 0: th~ = 0, a~ = V", a=0, V=[5, -5, I32_MAX], s=[1, 0, 1], th_tr=[-ONE, -77, I32_MIN],
          a_tr=[1, 2, 3]),
        c("random", a=g.i(0, ONE), V=g.i(-(1 << 20), 1 << 20, n), s=g.spikes(n), th_tr=-g.i(0, 8 * ONE, n),
          a_tr=g.i(-(1 << 24), 1 << 24, n)),
        c("random, a = ONE (IF)", a=ONE, V=g.i(-(1 << 20), 1 << 20, n), s=g.spikes(n),
          th_tr=-g.i(0, 8 * ONE, n), a_tr=g.i(-(1 << 24), 1 << 24, n)),
    ]


@builder("lif_step")
def _(g):
    n = 16
    big = g.i(0, 6, n)        # an index per neuron: some potentials right at the int32 bounds
    V_full = np.where(big == 0, I32_MAX, np.where(big == 1, I32_MIN, g.i(I32_MIN, I32_MAX, n)))
    return [
        c("numerics.md §5: a = 0.875, th = 1, I = 40000, the four steps side by side", cur=[40000] * 4, a=57344,
          th=[ONE] * 4, reset_shift=0, V=[0, 40000, 9464, 48281]),
        c("u == th spikes, th - 1 does not (a = ONE, reset_shift 0)", cur=[ONE, ONE - 1, ONE + 1, 2 * ONE, 0],
          a=ONE, th=[ONE] * 5, reset_shift=0, V=[0, 0, 0, 0, ONE]),
        c("reset_shift 1: a spike subtracts 2 th", cur=[ONE, ONE - 1, ONE + 1, 2 * ONE, 0], a=ONE,
          th=[ONE] * 5, reset_shift=1, V=[0, 0, 0, 0, ONE]),
        c("mul_state ties: a = 0.5 on odd V, both signs (no spike)", cur=[0] * 8, a=HALF, th=[I32_MAX] * 8,
          reset_shift=0, V=[3, -3, 1, -1, 5, -5, 65537, -65537]),
        c("int32 saturation of the potential (a = ONE, IF)", cur=[I32_MAX, I32_MIN, -1, 1, 1 << 30], a=ONE,
          th=[I32_MAX] * 5, reset_shift=0, V=[I32_MAX, I32_MIN, I32_MAX, I32_MIN, 1 << 30]),
        c("reset_shift 1 at th = INT32_MAX: V = u - 2 th", cur=[I32_MAX, 0, 5], a=ONE,
          th=[I32_MAX, 1 << 30, 4096], reset_shift=1, V=[I32_MAX, I32_MAX, 4091]),
        c("a = 0: only the current counts", cur=g.i(-(1 << 18), 1 << 18, 6), a=0, th=[ONE] * 6, reset_shift=0,
          V=g.i(I32_MIN, I32_MAX, 6)),
        c("U aliases cur (SPIDE keeps no potential), reset_shift 1", alias={"U": "cur"},
          cur=g.i(-(1 << 17), 1 << 18, 8), a=ONE, th=[1 << 15] * 8, reset_shift=1, V=g.i(-(1 << 15), 1 << 15, 8)),
        c("random, reset_shift 0", cur=g.i(-(1 << 19), 1 << 19, n), a=g.i(0, ONE), th=g.i(FLOOR, 1 << 20, n),
          reset_shift=0, V=g.i(-(1 << 20), 1 << 20, n)),
        c("random, reset_shift 1", cur=g.i(-(1 << 19), 1 << 19, n), a=g.i(0, ONE), th=g.i(FLOOR, 1 << 20, n),
          reset_shift=1, V=g.i(-(1 << 20), 1 << 20, n)),
        c("random, full int32 range", cur=g.i(I32_MIN, I32_MAX, n), a=g.i(0, ONE), th=g.i(1, I32_MAX, n),
          reset_shift=int(g.i(0, 1)), V=V_full),
    ]


@builder("li_step")
def _(g):
    n = 12
    return [
        c("a = 0.875: every V in [-3, 4] is a fixed point of mul_state", cur=[0] * 10, a=57344,
          V=list(range(-4, 6))),
        c("mul_state ties: a = 0.5 on odd V, both signs", cur=[0] * 6, a=HALF, V=[3, -3, 1, -1, 65537, -65537]),
        c("int32 saturation at both bounds (a = ONE)", cur=[1, -1, I32_MAX, I32_MIN, 0], a=ONE,
          V=[I32_MAX, I32_MIN, I32_MAX, I32_MIN, I32_MIN]),
        c("a = 0", cur=[5, -5, 0], a=0, V=[I32_MAX, 7, I32_MIN]),
        c("random", cur=g.i(-(1 << 20), 1 << 20, n), a=g.i(0, ONE), V=g.i(-(1 << 24), 1 << 24, n)),
        c("random, full int32 range", cur=g.i(I32_MIN, I32_MAX, n), a=g.i(0, ONE), V=g.i(I32_MIN, I32_MAX, n)),
    ]


@builder("threshold_step")
def _(g):
    n = 12
    return [
        c("cur == th spikes, th - 1 does not; no reset, no leak", cur=[ONE, ONE - 1, ONE + 1, -ONE, 0], a=57344,
          th=[ONE] * 5, reset_shift=1),
        c("the int32 bounds", cur=[I32_MAX, I32_MIN, I32_MAX, I32_MIN], a=0, th=[I32_MAX, I32_MIN, I32_MIN, I32_MAX],
          reset_shift=0),
        c("U aliases cur", alias={"U": "cur"}, cur=g.i(-(1 << 18), 1 << 18, 8), a=ONE, th=[1 << 15] * 8,
          reset_shift=0),
        c("random, full int32 range", cur=g.i(I32_MIN, I32_MAX, n), a=g.i(0, ONE), th=g.i(I32_MIN, I32_MAX, n),
          reset_shift=int(g.i(0, 1))),
    ]


# -- errors -------------------------------------------------------------------------------

@builder("surrogate")
def _(g):
    pairs = [(0, 1), (ONE, 1), (-ONE, 1), (131070, 1), (131071, 1), (1, 1), (-1, 1), (3, 1), (65535, 0),
             (-65536, 0), (255, -8), (-255, -8), (256, -8), (127, 8), (128, 8), (-128, 8), (1 << 24, 8),
             ((1 << 32) - 1, 8), (-(1 << 32) + 1, -8), (g.i(-(1 << 18), 1 << 18), g.i(-8, 8))]
    return [c(f"phi({x}, {k})", x=x, k=k) for x, k in pairs]


@builder("spiking_output_error")
def _(g):
    n = 10
    return [
        c("numerics.md §5: k = 1, th = 1, label 1", s=[1, 0], U=[70000, 60000], th=[ONE, ONE], label=1, k=1),
        c("right outputs (label spiking, others silent) give zero error", s=[0, 1, 0], U=[ONE - 1, ONE, 0],
          th=[ONE] * 3, label=1, k=1),
        c("k = -8: a window of 1/256", s=[1, 0, 1, 0, 1], U=[ONE + 100, ONE - 255, ONE + 256, ONE - 1, ONE],
          th=[ONE] * 5, label=1, k=-8),
        c("k = 8: round_shift ties in the window", s=[1, 1, 0, 0], U=[ONE + 128, ONE - 128, ONE + 127, ONE + 384],
          th=[ONE] * 4, label=3, k=8),
        c("U - th beyond int32 (U, th at the bounds)", s=[0, 1, 1], U=[I32_MIN, I32_MAX, I32_MAX],
          th=[I32_MAX, FLOOR, I32_MAX], label=0, k=8),
        c("label = n - 1, random", s=g.spikes(n), U=g.i(0, 3 * ONE, n), th=g.i(ONE // 2, 2 * ONE, n),
          label=n - 1, k=1),
        c("random, k = 2", s=g.spikes(n), U=g.i(-ONE, 4 * ONE, n), th=g.i(FLOOR, 2 * ONE, n), label=g.i(0, n - 1),
          k=2),
        c("random, k = -2", s=g.spikes(n), U=g.i(ONE // 2, 3 * ONE // 2, n), th=[ONE] * n, label=g.i(0, n - 1),
          k=-2),
    ]


@builder("li_output_error")
def _(g):
    return [
        c("numerics.md §5: li readout, label 1", U=[70000, 60000], label=1),
        c("int32 saturation below (label at INT32_MIN)", U=[I32_MIN, I32_MIN + ONE - 1, I32_MAX, I32_MIN],
          label=0),
        c("the label at INT32_MIN + ONE - 1 saturates too", U=[I32_MIN, I32_MIN + ONE - 1, I32_MAX], label=1),
        c("zero potentials", U=[0, 0, 0, 0], label=2),
        c("random", U=g.i(-(1 << 22), 1 << 22, 10), label=g.i(0, 9)),
        c("random, full int32 range", U=g.i(I32_MIN, I32_MAX, 10), label=g.i(0, 9)),
    ]


@builder("hidden_error")
def _(g):
    return [
        c("numerics.md §5: wf_up 12, k = 1", W_up=[[4096, -2048, 0], [1024, 4096, 8192]], d_up=[32768, -65536],
          U=[ONE, ONE + 34464, 0], th=[ONE] * 3, w_frac=12, k=1),
        c("every upper error zero: nothing back-propagated", W_up=g.i(I16_MIN, I16_MAX, (3, 4)), d_up=[0, 0, 0],
          U=[ONE] * 4, th=[ONE] * 4, w_frac=12, k=1),
        c("g = sat32(back >> wf) at both bounds (wf 0), back unsaturated beyond int32",
          W_up=[[I16_MAX, I16_MIN, 1], [I16_MAX, I16_MIN, -1]], d_up=[I32_MAX, I32_MAX], U=[ONE] * 3,
          th=[ONE] * 3, w_frac=0, k=1),
        c("ties of both round_shifts (wf 1; phi = 1/2 at U - th = 1, k = 1)",
          W_up=[[1, -1, 3, -3, 2, -2, 3, -3]], d_up=[1], U=[ONE] * 4 + [2 * ONE] * 4, th=[ONE] * 8, w_frac=1, k=1),
        c("zero upper errors skipped among non-zero ones, k = -3", W_up=g.i(I16_MIN, I16_MAX, (5, 6)),
          d_up=[0, 40000, 0, -70000, 0], U=g.i(ONE - 8192, ONE + 8192, 6), th=[ONE] * 6, w_frac=12, k=-3),
        c("random, wf 12, k = 1", W_up=g.i(-8192, 8192, (5, 12)), d_up=g.sparse(-ONE, ONE, 5),
          U=g.i(0, 3 * ONE, 12), th=g.i(FLOOR, 2 * ONE, 12), w_frac=12, k=1),
        c("random, wf 8, k = 2", W_up=g.i(I16_MIN, I16_MAX, (4, 9)), d_up=g.sparse(I32_MIN, I32_MAX, 4),
          U=g.i(-ONE, 4 * ONE, 9), th=g.i(FLOOR, 2 * ONE, 9), w_frac=8, k=2),
    ]


@builder("dense_back")
def _(g):
    return [
        c("numerics.md §5: back = W_up^T d_up", W_up=[[4096, -2048, 0], [1024, 4096, 8192]], d_up=[32768, -65536]),
        c("every upper error zero: back 0, active 0", W_up=g.i(I16_MIN, I16_MAX, (3, 4)), d_up=[0, 0, 0]),
        c("unsaturated beyond int32 (full-range weights and errors)", W_up=[[I16_MAX, I16_MIN], [I16_MAX, I16_MIN]],
          d_up=[I32_MAX, I32_MAX]),
        c("random, zero errors skipped", W_up=g.i(I16_MIN, I16_MAX, (6, 9)), d_up=g.sparse(-2 * ONE, 2 * ONE, 6)),
    ]


@builder("dense_back_int8")
def _(g):
    return [
        c("unsaturated beyond int32 (full-range weights and errors)", W_up=[[I8_MAX, I8_MIN], [I8_MAX, I8_MIN]],
          d_up=[I32_MAX, I32_MAX]),
        c("every upper error zero: back 0, active 0", W_up=g.i(I8_MIN, I8_MAX, (3, 4)), d_up=[0, 0, 0]),
        c("random, zero errors skipped", W_up=g.i(I8_MIN, I8_MAX, (6, 9)), d_up=g.sparse(-2 * ONE, 2 * ONE, 6)),
    ]


@builder("surrogate_error")
def _(g):
    back = [67108864, -335544320, -536870912]
    return [
        c("numerics.md §5: the hidden error's second half (frac 12, k = 1)", back=back, active=2,
          U=[ONE, ONE + 34464, 0], th=[ONE] * 3, frac=12, k=1),
        c("active 0: every d is 0, whatever back holds", back=g.i(-(1 << 40), 1 << 40, 4), active=0, U=[ONE] * 4,
          th=[ONE] * 4, frac=12, k=1),
        c("frac 2 (above an average pool of 4): ties of both round_shifts", back=[2, -2, 6, -6, 1, -1], active=1,
          U=[ONE, ONE, ONE + 1, ONE + 1, ONE, ONE], th=[ONE] * 6, frac=2, k=0),
        c("g = sat32(back >> frac) at both bounds (frac 0)", back=[1 << 40, -(1 << 40), I32_MAX, I32_MIN], active=2,
          U=[ONE] * 4, th=[ONE] * 4, frac=0, k=1),
        c("random, frac 12, k = -2", back=g.i(-(1 << 36), 1 << 36, 10), active=3, U=g.i(ONE - 4096, ONE + 4096, 10),
          th=g.i(FLOOR, 2 * ONE, 10), frac=12, k=-2),
    ]


@builder("pass_error")
def _(g):
    return [
        c("frac 12 (a pool below a dense layer): ties both signs", back=[2048, -2048, 6144, -6144, 1, 0], active=1,
          frac=12),
        c("active 0: zeros", back=[5, -5, 1 << 40], active=0, frac=0),
        c("int32 saturation at both bounds", back=[1 << 50, -(1 << 50), I32_MAX, I32_MIN], active=4, frac=0),
        c("random, frac 2", back=g.i(-(1 << 34), 1 << 34, 8), active=2, frac=2),
    ]


# -- conv2d and pooling (docs/numerics.md §5c) ----------------------------------------------------

def window(in_c, in_h, in_w, kernel, stride=(1, 1), pad=(0, 0), out_c=None):
    """A window row (ops/layers/window.py's Geometry order)."""
    out_h = (in_h + 2 * pad[0] - kernel[0]) // stride[0] + 1
    out_w = (in_w + 2 * pad[1] - kernel[1]) // stride[1] + 1
    return [in_c, in_h, in_w, in_c if out_c is None else out_c, out_h, out_w, *kernel, *stride, *pad]


def sizes(w):
    """(n_in, n_out, plane, taps) of a window row."""
    return w[0] * w[1] * w[2], w[3] * w[4] * w[5], w[4] * w[5], w[0] * w[6] * w[7]


def listed(x):
    """nonzero_index's list of x (its non-zero indices, then don't-care entries) and its count."""
    x = np.asarray(x).ravel()
    nz = np.flatnonzero(x)
    return np.concatenate([nz, np.full(len(x) - len(nz), 7)]).astype(np.int64), len(nz)


@builder("conv2d_sums")
def _(g):
    cases = []
    for name, w, W, x, co in [
        ("one input: a 3x3 kernel of channel 1 scattered where its window reaches (pad 1)",
         window(1, 5, 5, (3, 3), pad=(1, 1), out_c=2), g.i(-4096, 4096, (2, 9)), [0] * 12 + [200] + [0] * 12, 1),
        ("stride 2, pad 1: taps off the stride are skipped", window(2, 6, 6, (3, 3), (2, 2), (1, 1), out_c=3),
         g.i(I16_MIN, I16_MAX, (3, 18)), g.sparse(0, 255, 72, 0.6), 2),
        ("no non-zero input: every sum 0", window(1, 4, 4, (2, 2), out_c=1), g.i(I16_MIN, I16_MAX, (1, 4)), [0] * 16, 0),
        ("full-range weights and inputs: exact int64 sums", window(3, 3, 3, (3, 3), out_c=1),
         [[I16_MIN] * 13 + [I16_MAX] * 14], [255] * 27, 0),
        ("random, 2x3 kernel, stride (1, 2)", window(2, 5, 7, (2, 3), (1, 2), out_c=2), g.i(I16_MIN, I16_MAX, (2, 12)),
         g.spikes(70), 1)]:
        nonzero, n = listed(x)
        cases.append(c(name, W=W, x=x, g=w, nonzero=nonzero, n=n, co=co, sums=[0] * sizes(w)[2]))
    return cases


@builder("conv2d_current")
def _(g):
    rows = [
        ("numerics.md §5c: a 2x2 kernel over a 3x3 direct input, wf 12", [[4096, -2048, 1024, 0]],
         [128, 0, 255, 64, 32, 0, 0, 255, 1], 8, 12, window(1, 3, 3, (2, 2), out_c=1)),
        ("spikes (x_frac 0), 2 channels in, 3 out, pad 1", g.i(-8192, 8192, (3, 18)), g.spikes(32), 0, 12,
         window(2, 4, 4, (3, 3), pad=(1, 1), out_c=3)),
        ("an average pool's counts (x_frac 2)", g.i(-8192, 8192, (2, 8)), g.i(0, 4, 18), 2, 12,
         window(2, 3, 3, (2, 2), (1, 1), out_c=2)),
        ("int32 saturation at both bounds (wf 0, spikes)", [[I16_MAX] * 4, [I16_MIN] * 4], [1] * 4, 0, 0,
         window(1, 2, 2, (2, 2), out_c=2)),
        ("round_shift ties both signs (wf 15, Q8: shift 7)", [[64], [-64], [192], [-192]], [1, 2, 3], 8, 15,
         window(1, 1, 3, (1, 1), out_c=4)),
        ("random, stride 2", g.i(I16_MIN, I16_MAX, (4, 8)), g.sparse(0, 255, 98), 8, 14,
         window(2, 7, 7, (2, 2), (2, 2), out_c=4))]
    return [c(name, W=W, x=x, x_frac=x_frac, w_frac=w_frac, g=w, cur=[0] * sizes(w)[1])
            for name, W, x, x_frac, w_frac, w in rows]


@builder("conv2d_back")
def _(g):
    cases = []
    for name, w, W, d in [
        ("one error: the kernel spread back over its window (pad 1)", window(1, 3, 3, (3, 3), pad=(1, 1), out_c=1),
         [[1, 2, 3, 4, 5, 6, 7, 8, 9]], [0, 0, 0, 0, 65536, 0, 0, 0, 0]),
        ("every error zero: back 0, active 0", window(2, 4, 4, (3, 3), out_c=2), g.i(I16_MIN, I16_MAX, (2, 18)), [0] * 8),
        ("stride 2, pad 1, 2 channels in: overlapping windows add", window(2, 5, 5, (3, 3), (2, 2), (1, 1), out_c=3),
         g.i(I16_MIN, I16_MAX, (3, 18)), g.sparse(-2 * ONE, 2 * ONE, 27, 0.5)),
        ("unsaturated beyond int32", window(1, 2, 2, (2, 2), (1, 1), (1, 1), out_c=2), [[I16_MAX] * 4, [I16_MIN] * 4],
         [I32_MAX] * 9 + [I32_MIN] * 9),
        ("random, 3x2 kernel", window(3, 6, 5, (3, 2), out_c=2), g.i(I16_MIN, I16_MAX, (2, 18)),
         g.sparse(-ONE, ONE, 32, 0.7))]:
        cases.append(c(name, W=W, d=d, g=w, back=[0] * sizes(w)[0]))
    return cases


@builder("conv2d_update_weights")
def _(g):
    return [
        c("numerics.md §5c: one error, the seed-1 learning stream: one draw per non-zero tap sum",
          W=[[100, -100, 50, 0]], d=[32768, 0, 0, 0], x_tr=[65536, 0, 131072, 65536, 0, 0, 0, 0, 0],
          g=window(1, 3, 3, (2, 2), out_c=1), shift=26, rng=SEED1_LEARN),
        c("no error in a channel: no draw for it", W=g.i(-4096, 4096, (2, 4)), d=[0] * 4 + [ONE, 0, 0, -ONE],
          x_tr=g.i(0, 2 * ONE, 9), g=window(1, 3, 3, (2, 2), out_c=2), shift=26, rng=g.state()),
        c("tap sums that cancel to 0 draw nothing", W=[[10, 20]], d=[ONE, ONE], x_tr=[ONE, 0, ONE],
          g=window(1, 1, 3, (1, 2), out_c=1), shift=20, rng=SEED1_LEARN),
        c("sat16 at both bounds (shift 16)", W=[[I16_MAX, I16_MIN]], d=[-I32_MAX], x_tr=[I32_MAX, 1],
          g=window(1, 1, 2, (1, 2), out_c=1), shift=16, rng=SEED0),
        c("shift <= 0: an exact left shift, no draw", W=[[5, -5]], d=[1], x_tr=[1, 2],
          g=window(1, 1, 2, (1, 2), out_c=1), shift=-2, rng=SEED1_LEARN),
        c("random, stride 2, pad 1", W=g.i(-8192, 8192, (3, 18)), d=g.sparse(-ONE, ONE, 27, 0.7),
          x_tr=g.i(0, 4 * ONE, 50), g=window(2, 5, 5, (3, 3), (2, 2), (1, 1), out_c=3), shift=27, rng=g.state()),
    ]


@builder("conv2d_weight_grads")
def _(g):
    return [
        c("gW += the tap sums, term by term", gW=[[0, 5, -5, 0]], d=[ONE, 0, -ONE, 0],
          x_tr=g.i(0, 2 * ONE, 9), g=window(1, 3, 3, (2, 2), out_c=1)),
        c("sat_sum at +-2^61, in ascending position order", gW=[[LIMIT - 5, -LIMIT + 5]], d=[I32_MIN, I32_MAX],
          x_tr=[I32_MAX, I32_MAX, I32_MAX], g=window(1, 1, 3, (1, 2), out_c=1)),
        c("random, 2 channels, pad 1", gW=g.i(-(1 << 40), 1 << 40, (2, 18)), d=g.sparse(-ONE, ONE, 32, 0.6),
          x_tr=g.i(0, 4 * ONE, 32), g=window(2, 4, 4, (3, 3), pad=(1, 1), out_c=2)),
    ]


def pool_cases(g, forward: bool):
    rows = [("2x2, stride 2", window(2, 4, 4, (2, 2), (2, 2)), g.spikes(32, 0.5)),
            ("3x3, stride 1, pad 1: padding is silence", window(1, 4, 4, (3, 3), (1, 1), (1, 1)), g.spikes(16, 0.3)),
            ("no spikes", window(1, 4, 4, (2, 2), (2, 2)), [0] * 16),
            ("every spike", window(1, 4, 4, (2, 2), (2, 2)), [1] * 16),
            ("random, 2x4 window, stride (2, 4)", window(3, 6, 8, (2, 4), (2, 4)), g.spikes(144, 0.2))]
    out = []
    for name, w, x in rows:
        n_in, n_out, _, _ = sizes(w)
        if forward:
            out.append(c(name, s=x, g=w, out=[0] * n_out))
        else:
            out.append((name, w, x, n_in, n_out))
    return out


@builder("avgpool_forward")
def _(g):
    return pool_cases(g, True)


@builder("maxpool_forward")
def _(g):
    return pool_cases(g, True)


@builder("avgpool_back")
def _(g):
    cases = [c(name, d=g.sparse(-2 * ONE, 2 * ONE, n_out, 0.4), g=w, back=[0] * n_in)
             for name, w, x, n_in, n_out in pool_cases(g, False)]
    return cases + [c("every error zero: active 0", d=[0] * 4, g=window(1, 4, 4, (2, 2), (2, 2)), back=[0] * 16)]


@builder("maxpool_back")
def _(g):
    one_each = [1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]     # windows with 1, 2 and 0 spikes
    cases = [c("windows with 1 spike (to it), 2 (nowhere), none (to all)", d=[ONE, -ONE, 3000, 5],
               g=window(1, 4, 4, (2, 2), (2, 2)), s=one_each, back=[0] * 16)]
    return cases + [c(name, d=g.sparse(-2 * ONE, 2 * ONE, n_out, 0.4), g=w, s=x, back=[0] * n_in)
                    for name, w, x, n_in, n_out in pool_cases(g, False)]


# -- scan2d (docs/numerics.md §5d) --------------------------------------------------------------

def scan_window(in_c, h, w, kernel, channels):
    return window(in_c, h, w, kernel, (1, 1), (kernel[0] // 2, kernel[1] // 2), out_c=channels)


def scan_cols(w):
    return w[0] * (w[6] + w[7]) + 2 * w[3]


@builder("scan2d_step")
def _(g):
    cases = []
    recurrent = window(1, 2, 3, (1, 1), out_c=1)
    for name, w, W, x, x_frac, wf, code, a, th in [
        ("recurrence alone: the first position's input fires the scan along the row and down (lif)", recurrent,
         [[8192, 0, 8192, 8192]], [255, 0, 0, 0, 0, 0], 8, 12, 0, 57344, [ONE] * 6),
        ("a 3x5 cross of fields, 2 channels in, 3 out, direct input (if)", scan_window(2, 4, 5, (3, 5), 3),
         g.i(-6000, 9000, (3, 22)), g.sparse(0, 255, 40), 8, 12, 1, ONE, [ONE] * 60),
        ("spikes in (x_frac 0): the recurrent sum meets the fields' unlifted", scan_window(1, 3, 4, (3, 3), 2),
         g.i(-12000, 12000, (2, 10)), g.spikes(12, 0.5), 0, 12, 0, g.i(0, ONE), g.i(FLOOR, 2 * ONE, 24)),
        ("int32 saturation of the current (wf 0)", recurrent, [[I16_MAX, 0, I16_MAX, I16_MAX]], [255] * 6, 0, 0, 0,
         ONE, [I32_MAX] * 6)]:
        n = sizes(w)[1]
        cases.append(c(name, W=W, x=x, x_frac=x_frac, w_frac=wf, g=w, code=code, a=a, th=th, reset_shift=0,
                       V=g.i(-(1 << 16), 1 << 16, n), s=[0] * n, U=[0] * n, cur=[0] * n))
    return cases


@builder("scan2d_spike_trace")
def _(g):
    return [c("a = 0.875 on spikes: r^ = a r^ + s", a=57344, s=[1, 0, 1, 0], r_tr=[0, 65536, 65536, 7]),
            c("int32 saturation (a = ONE)", a=ONE, s=[1, 1, 0], r_tr=[I32_MAX, I32_MAX - ONE + 1, I32_MAX]),
            c("random", a=g.i(0, ONE), s=g.spikes(10), r_tr=g.i(0, 1 << 22, 10))]


@builder("scan2d_back")
def _(g):
    cases = []
    for name, w, d in [("one error: the cross of both fields", scan_window(1, 3, 3, (3, 3), 1), [0, 0, 0, 0, ONE, 0, 0, 0, 0]),
                       ("every error zero: active 0", scan_window(2, 3, 4, (3, 3), 2), [0] * 24),
                       ("random, a 5x3 cross, 2 channels in", scan_window(2, 4, 5, (5, 3), 3),
                        g.sparse(-ONE, ONE, 60, 0.7))]:
        cases.append(c(name, W=g.i(I16_MIN, I16_MAX, (w[3], scan_cols(w))), d=d, g=w, back=[0] * sizes(w)[0]))
    return cases


@builder("scan2d_update_weights")
def _(g):
    out = []
    for name, w, d, shift, rng in [
        ("one error, the seed-1 learning stream: one draw per non-zero sum", scan_window(1, 2, 3, (1, 3), 1),
         [0, 0, 0, 0, 32768, 0], 26, SEED1_LEARN),
        ("errors in one channel of two: no draw for the other", scan_window(1, 3, 3, (3, 3), 2),
         [0] * 9 + [ONE, 0, 0, 0, -ONE, 0, 0, 0, 5], 26, g.state()),
        ("random, shift 28", scan_window(2, 3, 4, (3, 3), 2), g.sparse(-ONE, ONE, 24, 0.6), 28, g.state())]:
        n_in, n_out, _, _ = sizes(w)
        out.append(c(name, W=g.i(-8192, 8192, (w[3], scan_cols(w))), d=d, x_tr=g.i(0, 2 * ONE, n_in + n_out), g=w,
                     shift=shift, rng=rng))
    return out


@builder("scan2d_weight_grads")
def _(g):
    w = scan_window(1, 3, 3, (3, 3), 2)
    n_in, n_out, _, _ = sizes(w)
    return [c("gW += the sums, term by term", gW=g.i(-(1 << 40), 1 << 40, (2, scan_cols(w))),
              d=g.sparse(-ONE, ONE, n_out, 0.5), x_tr=g.i(0, 2 * ONE, n_in + n_out), g=w),
            c("sat_sum at +-2^61", gW=[[LIMIT - 1] * 2 + [-LIMIT + 1] * 2], d=[I32_MAX, 0, I32_MIN], x_tr=[I32_MAX] * 6,
              g=scan_window(1, 1, 3, (1, 1), 1))]


# -- learning -----------------------------------------------------------------------------

@builder("nonzero_index")
def _(g):
    return [
        c("ascending indices of the non-zero entries", x=[0, 5, 0, -1, 7], nonzero=[9, 9, 9, 9, 9]),
        c("none: nothing written", x=[0, 0, 0], nonzero=[4, 4, 4]),
        c("all", x=[I32_MIN, 1, I32_MAX], nonzero=[0, 0, 0]),
        c("random", x=g.sparse(-100, 100, 12), nonzero=[0] * 12),
    ]


def _sums_case(name, W, x, **kw):
    """A dense_sums case: the listed non-zero indices of x, as nonzero_index gives them."""
    x = np.asarray(x)
    index = np.flatnonzero(x)
    nonzero = np.concatenate([index, np.zeros(len(x) - len(index), np.int64)])
    return c(name, W=W, x=x, nonzero=nonzero, n=len(index), **kw)


@builder("dense_sums")
def _(g):
    return [
        _sums_case("numerics.md §5 row: acc 2048 (unrounded)", [[4096, 1000, -2048], [1, 2, 3]], [128, 0, 255]),
        _sums_case("the largest terms: 2^15 * 255 per input, beyond int32", [[I16_MAX] * 4, [I16_MIN] * 4],
                   [255, 255, 255, 255]),
        _sums_case("all inputs zero", g.i(I16_MIN, I16_MAX, (3, 4)), [0, 0, 0, 0]),
        _sums_case("a block of a wider matrix: columns 1..4 of 7", g.i(I16_MIN, I16_MAX, (3, 7)),
                   [0, 17, 255, 3], block={"W": [1, 4]}),
        _sums_case("random direct input", g.i(I16_MIN, I16_MAX, (6, 40)), g.sparse(0, 255, 40)),
    ]


@builder("dense_sums_int8")
def _(g):
    return [
        _sums_case("the largest terms: 127 and -128 times 255", [[I8_MAX] * 4, [I8_MIN] * 4], [255, 255, 255, 255]),
        _sums_case("all inputs zero", g.i(I8_MIN, I8_MAX, (3, 4)), [0, 0, 0, 0]),
        _sums_case("a block of a wider matrix: columns 1..4 of 7", g.i(I8_MIN, I8_MAX, (3, 7)), [0, 17, 255, 3],
                   block={"W": [1, 4]}),
        _sums_case("random direct input", g.i(I8_MIN, I8_MAX, (6, 40)), g.sparse(0, 255, 40)),
    ]


@builder("current_from_sums")
def _(g):
    return [
        c("numerics.md §5: 2048 at shift 4 -> 128; ties up both signs", sums=[2048, 8, -8, 24, -24, 7],
          x_frac=8, w_frac=12),
        c("int32 saturation (wf 0, Q8: a left shift by 8)", sums=[1 << 30, -(1 << 30), 3], x_frac=8, w_frac=0),
        c("spikes, shift -4", sums=[2048, -1, 0], x_frac=0, w_frac=12),
        c("random sums of a 784-input layer", sums=g.i(-(1 << 33), 1 << 33, 8), x_frac=8, w_frac=12),
    ]


@builder("update_weights")
def _(g):
    big = {"d": [I32_MIN, I32_MAX, -1], "x_tr": [I32_MIN, I32_MAX, 1, 0]}
    W_big = [[0, 100, I16_MAX, 5], [I16_MIN, -100, 0, 5], [1, 2, 3, 4]]
    return [
        c("numerics.md §5: wf 12, shift 26, first draw of the seed-1 learning stream: 100 -> 68", W=[[100]],
          d=[32768], x_tr=[ONE], shift=26, rng=SEED1_LEARN),
        c("zero errors and zero traces draw nothing (the state after counts the draws)",
          W=g.i(-4096, 4096, (4, 6)), d=[0, 20000, 0, -7], x_tr=[0, ONE, 3, 0, 0, 123456], shift=26,
          rng=SEED1_LEARN),
        c("int16 saturation at both bounds", W=[[I16_MAX, I16_MAX - 3, 0], [I16_MIN, I16_MIN + 3, 0]],
          d=[-(1 << 20), 1 << 20], x_tr=[1 << 20, 1 << 10, 1], shift=26, rng=SEED0),
        c("shift 62 at the largest products (d, x^ at the int32 bounds)", W=W_big, **big, shift=62,
          rng=SEED1_LEARN),
        c("shift 63: the excess bit is floor-dropped, still one draw", W=W_big, **big, shift=63, rng=SEED1_LEARN),
        c("shift 90", W=W_big, **big, shift=90, rng=g.state()),
        c("shift 16, the smallest the runtime uses", W=g.i(-4096, 4096, (3, 5)), d=g.sparse(-ONE, ONE, 3),
          x_tr=g.sparse(0, 2 * ONE, 5), shift=16, rng=g.state()),
        c("shift 32: r is the whole draw", W=g.i(-4096, 4096, (3, 5)), d=g.sparse(-(1 << 24), 1 << 24, 3),
          x_tr=g.sparse(0, 1 << 24, 5), shift=32, rng=g.state()),
        c("shift 33: r is the draw shifted left", W=g.i(-4096, 4096, (3, 5)), d=g.sparse(-(1 << 24), 1 << 24, 3),
          x_tr=g.sparse(0, 1 << 24, 5), shift=33, rng=g.state()),
        c("shift 0: W -= d x^ exactly, no draw", W=[[10, -10, 0]], d=[3], x_tr=[2, 0, 5], shift=0, rng=g.state()),
        c("a block of a wider matrix (a SPIDE edge): columns 2..5 of 8", block={"W": [2, 4]},
          W=g.i(-4096, 4096, (3, 8)), d=[5, 0, -3], x_tr=[1, 0, 4, 2], shift=18, rng=g.state()),
        c("random, SPIDE-like signed counts", W=g.i(-8192, 8192, (5, 10)), d=g.sparse(-16, 16, 5),
          x_tr=g.sparse(0, 32, 10), shift=20, rng=g.state()),
    ]


@builder("update_weights_int8")
def _(g):
    big = {"d": [I32_MIN, I32_MAX, -1], "x_tr": [I32_MIN, I32_MAX, 1, 0]}
    W_big = [[0, 100, I8_MAX, 5], [I8_MIN, -100, 0, 5], [1, 2, 3, 4]]
    return [
        c("Q0.7, shift 31 (32 - 7 + lr 6), first draw of the seed-1 learning stream", W=[[100]], d=[32768],
          x_tr=[ONE], shift=31, rng=SEED1_LEARN),
        c("sat8 at both bounds", W=[[I8_MAX, I8_MAX - 3, 0], [I8_MIN, I8_MIN + 3, 0]], d=[-(1 << 20), 1 << 20],
          x_tr=[1 << 20, 1 << 10, 1], shift=26, rng=SEED0),
        c("one step past a bound saturates, it does not wrap", W=[[120, -120]], d=[ONE], x_tr=[-(1 << 20), 1 << 20],
          shift=32, rng=SEED0),
        c("steps beyond int32 (the difference clamped first)", W=W_big, **big, shift=26, rng=SEED1_LEARN),
        c("zero errors and zero traces draw nothing", W=g.i(I8_MIN, I8_MAX, (4, 6)), d=[0, 20000, 0, -7],
          x_tr=[0, ONE, 3, 0, 0, 123456], shift=26, rng=SEED1_LEARN),
        c("shift 62 at the largest products", W=W_big, **big, shift=62, rng=SEED1_LEARN),
        c("shift 90", W=W_big, **big, shift=90, rng=g.state()),
        c("shift 0: W -= d x^ exactly, then sat8", W=[[10, -10, 0]], d=[3], x_tr=[2, 0, 50], shift=0,
          rng=g.state()),
        c("a block of a wider matrix: columns 2..5 of 8", block={"W": [2, 4]}, W=g.i(I8_MIN, I8_MAX, (3, 8)),
          d=[5000, 0, -3000], x_tr=[ONE, 0, 4 * ONE, 2 * ONE], shift=25, rng=g.state()),
        c("random, wf 7 at lr 0 (shift 25): many at the bounds", W=g.i(I8_MIN, I8_MAX, (5, 10)),
          d=g.sparse(-ONE, ONE, 5), x_tr=g.sparse(0, 2 * ONE, 10), shift=25, rng=g.state()),
    ]


@builder("accumulate_weight_grads")
def _(g):
    return [
        c("from zero: exact products", gW=np.zeros((3, 4), np.int64), d=[ONE, 0, -12345], x_tr=[ONE, 7, 0, 99999]),
        c("sat_sum at +-2^61 (d, x^ at the int32 bounds)", gW=[[LIMIT - 5, -LIMIT + 5, LIMIT, 0]], d=[I32_MIN],
          x_tr=[I32_MIN, I32_MAX, 1, I32_MIN]),
        c("saturated sums come back down", gW=[[LIMIT, -LIMIT]], d=[I32_MAX], x_tr=[-(1 << 20), 1 << 20]),
        c("zero rows and columns are skipped; the rest accumulate", gW=g.i(-(1 << 40), 1 << 40, (4, 5)),
          d=[0, 3, 0, -9], x_tr=[0, 11, 0, 0, 13]),
        c("random", gW=g.i(-(1 << 50), 1 << 50, (5, 8)), d=g.sparse(I32_MIN, I32_MAX, 5),
          x_tr=g.sparse(0, I32_MAX, 8)),
        c("random, near the limit", gW=g.i(LIMIT - (1 << 62), LIMIT, (3, 4)), d=g.i(I32_MIN, I32_MAX, 3),
          x_tr=g.i(0, I32_MAX, 4)),
    ]


@builder("apply_weight_grads")
def _(g):
    return [
        c("non-zero entries only, row-major, one draw each; gW cleared", W=g.i(-4096, 4096, (3, 4)),
          gW=[[0, 1 << 30, 0, -(1 << 28)], [0, 0, 0, 0], [5, 0, -(1 << 33), 0]], shift=26, rng=SEED1_LEARN),
        c("all zero: no draw, nothing changes", W=g.i(-4096, 4096, (2, 3)), gW=np.zeros((2, 3), np.int64),
          shift=26, rng=SEED1_LEARN),
        c("int16 saturation at both bounds", W=[[I16_MAX, I16_MIN, I16_MAX, I16_MIN]],
          gW=[[-(1 << 45), 1 << 45, 1 << 20, -(1 << 20)]], shift=26, rng=SEED0),
        c("gW at +-2^61, shift 62", W=[[0, 0, 100, -100]], gW=[[LIMIT, -LIMIT, LIMIT - 1, -LIMIT + 1]], shift=62,
          rng=SEED1_LEARN),
        c("gW at +-2^61, shift 63 (one bit floor-dropped first)", W=[[0, 0, 100, -100]],
          gW=[[LIMIT, -LIMIT, LIMIT - 1, -LIMIT + 1]], shift=63, rng=SEED1_LEARN),
        c("shift 90", W=[[0, 0, 1]], gW=[[LIMIT, -LIMIT, -1]], shift=90, rng=g.state()),
        c("random, shift 32", W=g.i(-8192, 8192, (4, 6)), gW=g.sparse(-(1 << 45), 1 << 45, (4, 6)), shift=32,
          rng=g.state()),
        c("random, shift 33", W=g.i(-8192, 8192, (4, 6)), gW=g.sparse(-(1 << 45), 1 << 45, (4, 6)), shift=33,
          rng=g.state()),
        c("random, shift 20", W=g.i(-8192, 8192, (4, 6)), gW=g.sparse(-(1 << 30), 1 << 30, (4, 6)), shift=20,
          rng=g.state()),
    ]


@builder("apply_weight_grads_int8")
def _(g):
    return [
        c("non-zero entries only, row-major, one draw each; gW cleared", W=g.i(I8_MIN, I8_MAX, (3, 4)),
          gW=[[0, 1 << 30, 0, -(1 << 28)], [0, 0, 0, 0], [5, 0, -(1 << 33), 0]], shift=26, rng=SEED1_LEARN),
        c("sat8 at both bounds", W=[[I8_MAX, I8_MIN, I8_MAX, I8_MIN]], gW=[[-(1 << 45), 1 << 45, 1 << 20, -(1 << 20)]],
          shift=26, rng=SEED0),
        c("gW at +-2^61, shift 62", W=[[0, 0, 100, -100]], gW=[[LIMIT, -LIMIT, LIMIT - 1, -LIMIT + 1]], shift=62,
          rng=SEED1_LEARN),
        c("shift 0: exact, then sat8", W=[[0, 0, 100, -100]], gW=[[1, -1, -200, 200]], shift=0, rng=g.state()),
        c("random, shift 25", W=g.i(I8_MIN, I8_MAX, (4, 6)), gW=g.sparse(-(1 << 32), 1 << 32, (4, 6)), shift=25,
          rng=g.state()),
        c("random, shift 33", W=g.i(I8_MIN, I8_MAX, (4, 6)), gW=g.sparse(-(1 << 40), 1 << 40, (4, 6)), shift=33,
          rng=g.state()),
    ]


@builder("threshold_grads")
def _(g):
    n = 10
    return [
        c("g += d (th~ - ONE), zero errors skipped", d=[ONE, 0, -100, 3], th_tr=[0, -ONE, -57344, I32_MIN],
          g=[0, 5, 0, 0]),
        c("sat_sum at +-2^61: d, th~ at the int32 bounds", d=[I32_MIN, I32_MAX, I32_MIN, I32_MAX],
          th_tr=[I32_MIN, I32_MIN, 0, I32_MIN], g=[0, -LIMIT + 1, LIMIT, LIMIT]),
        c("random", d=g.sparse(-ONE, ONE, n), th_tr=-g.i(0, 16 * ONE, n), g=g.i(-(1 << 40), 1 << 40, n)),
        c("random, full range", d=g.sparse(I32_MIN, I32_MAX, n), th_tr=-g.i(0, -I32_MIN, n),
          g=g.i(-LIMIT, LIMIT, n)),
    ]


@builder("apply_threshold_grads")
def _(g):
    n = 8
    return [
        c("non-zero gradients only, one draw each; g cleared", th=[ONE, ONE, 2 * ONE, ONE],
          g=[1 << 35, 0, -(1 << 30), 1], shift=22, floor=FLOOR, rng=SEED1_LEARN),
        c("the floor: applied only to updated thresholds", th=[5000, 100, 100, 70000, FLOOR],
          g=[1 << 40, 0, 1, -(1 << 30), 1 << 22], shift=22, floor=FLOOR, rng=SEED0),
        c("int32 saturation at the top", th=[I32_MAX, I32_MAX - 5], g=[-LIMIT, -(1 << 40)], shift=22, floor=FLOOR,
          rng=g.state()),
        c("g at +-2^61, shift 62", th=[1 << 30, 1 << 30], g=[LIMIT, -LIMIT], shift=62, floor=FLOOR,
          rng=SEED1_LEARN),
        c("g at +-2^61, shift 63", th=[1 << 30, 1 << 30], g=[LIMIT, -LIMIT], shift=63, floor=FLOOR,
          rng=SEED1_LEARN),
        c("shift 90", th=[ONE, ONE, ONE], g=[LIMIT, -LIMIT, -1], shift=90, floor=FLOOR, rng=g.state()),
        c("another floor (an argument): ONE", th=g.i(ONE // 2, 4 * ONE, n), g=g.sparse(-(1 << 40), 1 << 40, n),
          shift=22, floor=ONE, rng=g.state()),
        c("random, shift 33", th=g.i(FLOOR, 4 * ONE, n), g=g.sparse(-(1 << 50), 1 << 50, n), shift=33,
          floor=FLOOR, rng=g.state()),
    ]


@builder("leak_grad")
def _(g):
    n = 10
    return [
        c("sum_j d_j a~_j over non-zero errors", d=[ONE, 0, -3, 7], a_tr=[9464, 123, 0, -100]),
        c("saturating sums are order-dependent: clamp at +2^61, then down",
          d=[I32_MIN, I32_MIN, I32_MIN, 1], a_tr=[I32_MIN, I32_MIN, I32_MAX, -5]),
        c("clamp at -2^61", d=[I32_MAX, I32_MAX, I32_MIN], a_tr=[I32_MIN, I32_MIN, -1]),
        c("every error zero: 0", d=[0, 0, 0], a_tr=[I32_MAX, 5, I32_MIN]),
        c("random", d=g.sparse(-ONE, ONE, n), a_tr=g.i(-(1 << 24), 1 << 24, n)),
        c("random, full range", d=g.sparse(I32_MIN, I32_MAX, n), a_tr=g.i(I32_MIN, I32_MAX, n)),
    ]


@builder("top2_gap")
def _(g):
    I64 = (1 << 47)                      # |li scores| <= T 2^31 <= 2^47 (docs/numerics.md §8)
    return [
        c("leader first", scores=[9, 4, 7, 0]),
        c("leader last", scores=[1, 2, 3, 8]),
        c("a tie for the lead: 0", scores=[3, 7, 1, 7]),
        c("a tie below the leader does not matter", scores=[5, 2, 2, 0]),
        c("all equal: 0", scores=[4, 4, 4]),
        c("two classes", scores=[0, 3]),
        c("negative li sums", scores=[-70000, -65536, -900000]),
        c("li bounds", scores=[I64, -I64, 0]),
        c("random spike counts", scores=g.i(0, 32, 10)),
        c("random li sums", scores=g.i(-I64, I64, 10)),
    ]


@builder("apply_leak_grad")
def _(g):
    rows = [("g = 0: a unchanged, no draw", 57344, 0, 22, SEED1_LEARN),
            ("a - SR(g, shift)", 57344, 1 << 30, 22, SEED1_LEARN),
            ("negative gradient raises the leak", 40000, -(1 << 33), 22, SEED1_LEARN),
            ("clamped at 0", 100, 1 << 40, 22, SEED0),
            ("clamped at ONE", 65500, -(1 << 40), 22, SEED0),
            ("a tiny negative gradient at ONE", ONE, -1, 30, g.state()),
            ("g at 2^61, shift 62", ONE // 2, LIMIT, 62, SEED1_LEARN),
            ("g at -2^61, shift 63", ONE // 2, -LIMIT, 63, SEED1_LEARN),
            ("shift 90", ONE // 2, -LIMIT, 90, g.state()),
            ("shift 32", ONE // 2, g.i(-(1 << 50), 1 << 50), 32, g.state()),
            ("shift 33", ONE // 2, g.i(-(1 << 50), 1 << 50), 33, g.state()),
            ("random", g.i(0, ONE), g.i(-(1 << 45), 1 << 45), g.i(16, 40), g.state())]
    return [c(name, a=a, g=gr, shift=s, rng=st) for name, a, gr, s, st in rows]


# -- SPIDE --------------------------------------------------------------------------------

@builder("count_spikes")
def _(g):
    return [c("count += s", s=[1, 0, 1, 1, 0], count=[0, 0, 5, 31, 7]),
            c("no spikes", s=[0, 0, 0], count=[3, 0, 9]),
            c("random", s=g.spikes(16), count=g.i(0, 60, 16))]


@builder("add_current")
def _(g):
    return [c("cur += part", part=[1, -1, 40000, 0], cur=[0, 0, -40000, 12345]),
            c("int32 saturation at both bounds", part=[1, -1, I32_MAX, I32_MIN, I32_MIN],
              cur=[I32_MAX, I32_MIN, I32_MAX, I32_MIN, I32_MAX]),
            c("random, full range", part=g.i(I32_MIN, I32_MAX, 12), cur=g.i(I32_MIN, I32_MAX, 12))]


@builder("equilibrium_mask")
def _(g):
    return [c("0 < count < T at the boundaries, T = 32", count=[0, 1, 31, 32, 16], T=32),
            c("T = 2", count=[0, 1, 2], T=2),
            c("T = 32768", count=[0, 1, 32767, 32768, 20000], T=32768),
            c("random, T = 64", count=g.i(0, 64, 16), T=64)]


@builder("readout_gradient")
def _(g):
    return [
        c("g += W^T e, wf 12", W=g.i(-8192, 8192, (3, 6)), e=[ONE, -20000, 0], w_frac=12, g=g.i(-ONE, ONE, 6)),
        c("every error zero: g unchanged", W=g.i(I16_MIN, I16_MAX, (2, 4)), e=[0, 0], w_frac=12, g=[1, -2, 3, -4]),
        c("round_shift ties both signs (wf 1)", W=[[1, -1, 3, -3, 0]], e=[1], w_frac=1, g=[0, 0, 0, 0, 7]),
        c("int32 saturation of g (wf 0)", W=[[I16_MAX, I16_MIN, I16_MAX], [I16_MAX, I16_MIN, I16_MIN]],
          e=[I32_MAX, I32_MAX], w_frac=0, g=[I32_MAX, I32_MIN, 0]),
        c("a block of a wider matrix: columns 1..4 of 7", block={"W": [1, 4]}, W=g.i(I16_MIN, I16_MAX, (3, 7)),
          e=[-ONE, 0, 5000], w_frac=12, g=[0, 0, 0, 0]),
        c("random, wf 10", W=g.i(I16_MIN, I16_MAX, (5, 12)), e=g.sparse(-2 * ONE, 2 * ONE, 5), w_frac=10,
          g=g.i(-(1 << 20), 1 << 20, 12)),
    ]


@builder("gradient_scale")
def _(g):
    rows = [("all zero: 0", [0, 0, 0]), ("max |g| = 1: 15", [0, 1, 0]), ("max |g| = 1, negative", [-1, 0]),
            ("32768: 0", [32768, -5]), ("65535: 0", [65535]), ("65536: -1", [65536, -65535]),
            ("a negative value dominates", [5, -70000, 69999]), ("INT32_MAX: -15", [I32_MAX]),
            ("INT32_MIN: -16", [I32_MIN, I32_MAX]), ("random", g.i(-(1 << 20), 1 << 20, 12).tolist())]
    return [c(name, g=v) for name, v in rows]


@builder("scale_drive")
def _(g):
    return [
        c("gs = 0: the gradient itself", g=[5, -5, I32_MAX, I32_MIN], gs=0),
        c("gs = 15: exact left shift", g=[1, -1, 0, 65535 >> 15], gs=15),
        c("gs > 0 saturates at both bounds", g=[1 << 20, -(1 << 20), (1 << 16) - 1, -(1 << 16)], gs=15),
        c("gs = -1: round_shift ties both signs", g=[1, -1, 3, -3, 0], gs=-1),
        c("gs = -16 at the int32 bounds", g=[I32_MAX, I32_MIN, 32768, -32768, -32769], gs=-16),
        c("random, gs = -4", g=g.i(-(1 << 20), 1 << 20, 10), gs=-4),
        c("random, gs = 6", g=g.i(-1000, 1000, 10), gs=6),
    ]


@builder("backward_input")
def _(g):
    return [
        c("inp += W^T (mask sb) 2^-shift, shift -3", W=g.i(-4096, 4096, (4, 5)), mask=[1, 1, 0, 1],
          sb=[1, -1, 1, 0], shift=-3, inp=g.i(-ONE, ONE, 5)),
        c("rows with mask 0 or sb 0 are skipped: inp unchanged", W=g.i(I16_MIN, I16_MAX, (3, 4)), mask=[0, 1, 0],
          sb=[1, 0, -1], shift=2, inp=[1, 2, 3, 4]),
        c("round_shift ties both signs (shift 1)", W=[[1, -1, 3, -3, 2]], mask=[1], sb=[1], shift=1,
          inp=[0, 0, 0, 0, 0]),
        c("the same weights, sb = -1", W=[[1, -1, 3, -3, 2]], mask=[1], sb=[-1], shift=1, inp=[0, 0, 0, 0, 0]),
        c("shift 0, full-range weights", W=[[I16_MIN, I16_MAX], [I16_MIN, I16_MAX]], mask=[1, 1], sb=[1, 1],
          shift=0, inp=[-(1 << 40), 1 << 40]),
        c("a block of a wider matrix: columns 4..6 of 7", block={"W": [4, 3]}, W=g.i(I16_MIN, I16_MAX, (3, 7)),
          mask=[1, 1, 1], sb=[-1, 1, 1], shift=-2, inp=[0, 0, 0]),
        c("random, shift 4", W=g.i(I16_MIN, I16_MAX, (6, 8)), mask=g.spikes(6, 0.7), sb=g.i(-1, 1, 6), shift=4,
          inp=g.i(-(1 << 20), 1 << 20, 8)),
    ]


@builder("couple_step")
def _(g):
    return [
        c("thresholds at +-ONE/2 exactly", inp=[HALF, HALF - 1, -HALF, -HALF + 1, 0], u=[0] * 5,
          count=[0, 0, 0, 0, 3]),
        c("int32 saturation of u + inp (an int64 drive beyond int32)", inp=[1 << 40, -(1 << 40), I32_MAX, -5],
          u=[0, 0, I32_MAX, I32_MIN], count=[0, 0, 2, -2]),
        c("fire, reset by ONE, count", inp=[40000, -40000, 100000, 1], u=[0, 0, 0, HALF - 1], count=[5, -5, 0, 0]),
        c("random", inp=g.i(-ONE, ONE, 10), u=g.i(-HALF, HALF - 1, 10), count=g.i(-16, 16, 10)),
    ]


@builder("gate_counts")
def _(g):
    return [c("count = mask count", mask=[1, 0, 1, 0], count=[5, -5, 7, 9]),
            c("all masked", mask=[0, 0, 0], count=[1, -2, 3]),
            c("random", mask=g.spikes(12, 0.6), count=g.i(-64, 64, 12))]


@builder("row_abs_sums")
def _(g):
    return [c("|-32768| counts 32768", W=[[I16_MIN, I16_MAX], [-1, 1], [0, 0]]),
            c("full-range weights, 64 columns", W=g.i(I16_MIN, I16_MAX, (4, 64))),
            c("a block of a wider matrix: columns 2..4 of 6", block={"W": [2, 3]}, W=g.i(I16_MIN, I16_MAX, (3, 6)))]


@builder("halve_weights")
def _(g):
    return [c("ties toward +inf: odd weights, both signs", W=[[1, -1, 3, -3, I16_MAX, I16_MIN, I16_MIN + 1, 0]]),
            c("random", W=g.i(I16_MIN, I16_MAX, (4, 8))),
            c("a block of a wider matrix: columns 1..3 of 5, the others unchanged", block={"W": [1, 3]},
              W=g.i(I16_MIN, I16_MAX, (3, 5)))]


# -- assembling and writing -------------------------------------------------------------

def _plain(v):
    """JSON-ready: numpy arrays and integers become lists and ints."""
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (int, np.integer)):
        return int(v)
    return v


def _garbage(arg, shape, salt):
    """A deterministic fill for an `out` argument: the kernel must overwrite all of it."""
    r = np.random.default_rng(zlib.crc32(f"{arg.name}:{salt}".encode()))
    info = np.iinfo(kc.DTYPES[arg.type])
    return r.integers(info.min, info.max, size=shape, endpoint=True, dtype=np.int64).tolist()


def _shape(kernel, inputs, arg, block):
    """The shape of an out argument from the inputs' shapes (its dims are bound by them)."""
    dims = {}
    for a in kernel.args:
        if a.name in inputs and a.shape:
            shape = list(np.shape(inputs[a.name]))
            if a.name in block:
                shape[1] = block[a.name][1]
            dims.update(zip(a.shape, shape))
    return [dims[s] for s in arg.shape]


def build(op: str) -> dict:
    kernel = kc.KERNELS[op]
    cases = []
    for case in BUILDERS[op](Gen(op)):
        inputs = {k: _plain(v) for k, v in case["inputs"].items()}
        alias = case.get("alias", {})
        outs = [a for a in kernel.args if a.dir == "out" and a.name not in alias]
        for a in outs:
            inputs.setdefault(a.name, _garbage(a, _shape(kernel, inputs, a, case.get("block", {})), 0))
        ordered = {a.name: inputs[a.name] for a in kernel.golden_args if a.name in inputs}
        assert ordered.keys() == inputs.keys(), (op, case["name"], sorted(inputs))
        case = {**{k: v for k, v in case.items() if k != "inputs"}, "inputs": ordered}
        case["outputs"] = kc.run_python(kernel, case)
        for a in outs:        # an `out` argument's initial value must not matter
            other = {**case, "inputs": {**ordered, a.name: _garbage(a, np.shape(ordered[a.name]), 1)}}
            assert kc.run_python(kernel, other) == case["outputs"], (op, case["name"], a.name)
        cases.append(case)
    return {**kernel.header(), "cases": cases}


def dumps(doc: dict) -> str:
    """One key per line, one argument and one case per line: small diffs, easy to read."""
    lines = []
    for k, v in doc.items():
        if k in ("args", "cases"):
            items = [json.dumps(x, ensure_ascii=False) for x in v]
            lines.append(f' "{k}": [\n' + ",\n".join(f"  {s}" for s in items) + "\n ]")
        else:
            lines.append(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def render_all() -> dict[str, str]:
    """file name -> text of every golden file."""
    assert BUILDERS.keys() == kc.KERNELS.keys(), set(BUILDERS) ^ set(kc.KERNELS)
    return {f"{op}.json": dumps(build(op)) for op in kc.KERNELS}


def main() -> int:
    OUT.mkdir(exist_ok=True)
    files = render_all()
    for stale in sorted({p.name for p in OUT.glob("*.json")} - set(files)):
        (OUT / stale).unlink()
        print(f"removed {OUT / stale}")
    for name, text in files.items():
        (OUT / name).write_text(text, encoding="utf-8")
    n = sum(text.count('"outputs"') for text in files.values())
    print(f"wrote {len(files)} files, {n} cases, to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

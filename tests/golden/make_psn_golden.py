"""Regenerate the PSN golden vectors from the Python reference.

    .venv/bin/python tests/golden/make_psn_golden.py

Writes tests/golden/psn/<op>.json, one file per PSN kernel of tests/psn_calls.py (the pattern of
make_kernel_golden.py): the worked values of docs/numerics.md §5e, round_shift ties of both signs,
every tap code, int32 saturation of the filter sum, the ring's wrap-around, zero errors and zero
eligibilities that draw (or add) nothing, int64 saturation of the gradient sums, shifts at and above
62, and a whole network of psn layers learning a few samples (run_sample: the stream the standalone
PSN driver recorded, now the STOP runtimes'). tests/test_psn_golden.py replays every file through the Python reference and the C
runtime and fails when a committed file differs from a fresh one. Deterministic; never edit the
files by hand (docs/numerics.md §11)."""
from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # tests/: psn_calls
import psn_calls as pc

OUT = Path(__file__).with_name("psn")
ONE = 1 << 16
I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
SEED1_LEARN = 1 ^ 0xA5A5A5A5


def gen(op):
    return np.random.default_rng(zlib.crc32(op.encode()))


def c(name, **inputs):
    return {"name": name, "inputs": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in inputs.items()}}


def apply_tap():
    cases = [c(f"q{q}_v{v}", q=q, v=v) for q in (0, 1, 2, 3, -1, -2, -3, 15, -15) for v in (3, -3, 1, -1, 65536)]
    cases += [c("i32_extremes_q2", q=2, v=I32_MIN), c("i32_extremes_q-2", q=-2, v=I32_MAX), c("q-1_min", q=-1, v=I32_MIN)]
    return cases


def psn_filter():
    g = gen("psn_filter")
    cases = []
    ring = np.zeros((1, 5), np.int32)
    ring[0, :] = [65536, 3, 40000, -7, 0]                       # the worked sequence at t = 4 (pos 4)
    cases.append(c("worked_t4", cur=[70001], taps=[[1, -2, 3]], dilation=2, pos=4, ring=ring))
    cases.append(c("worked_wrap_t5", cur=[0], taps=[[1, -2, 3]], dilation=2, pos=0,
                   ring=[[65536, 3, 40000, -7, 70001]]))
    cases.append(c("saturates_high", cur=[I32_MAX, I32_MIN], taps=[[1, 1, 1], [1, 1, 1]], dilation=1, pos=2,
                   ring=[[I32_MAX, I32_MAX, 0], [I32_MIN, I32_MIN, 0]]))
    cases.append(c("one_tap_is_the_current", cur=[ONE, -ONE + 1], taps=[[1], [-1]], dilation=1, pos=0,
                   ring=[[5], [5]]))
    cases.append(c("zero_taps", cur=[123456, -5], taps=[[0, 0], [0, 0]], dilation=3, pos=1,
                   ring=np.zeros((2, 4), np.int32)))
    for i in range(4):
        n, K, D = int(g.integers(1, 6)), int(g.integers(1, 6)), int(g.integers(1, 5))
        L = (K - 1) * D + 1
        cases.append(c(f"random_{i}", cur=g.integers(-200000, 200000, n).astype(np.int32),
                       taps=g.integers(-15, 16, (n, K)).astype(np.int8), dilation=D, pos=int(g.integers(0, L)),
                       ring=g.integers(-200000, 200000, (n, L)).astype(np.int32)))
    return cases


def psn_input_ring():
    g = gen("psn_input_ring")
    return [c("q8_direct", x=[128, 0, 255], x_frac=8, pos=1, xr=np.zeros((3, 3), np.int32)),
            c("spikes_q0", x=[1, 0, 1], x_frac=0, pos=0, xr=g.integers(-9, 9, (3, 4)).astype(np.int32)),
            c("random", x=g.integers(0, 256, 5).astype(np.int32), x_frac=8, pos=6,
              xr=g.integers(0, 65536, (5, 7)).astype(np.int32))]


def psn_update_weights():
    g = gen("psn_update_weights")
    xr = np.zeros((1, 5), np.int32)
    xr[0, 0] = xr[0, 2] = 128 << 8
    cases = [c("worked", W=[[100]], d=[32768], taps=[[1, -2, 3]], dilation=2, pos=2, xr=xr, shift=26,
               rng=SEED1_LEARN),
             c("zero_error_and_zero_eligibility_draw_nothing", W=[[5, 6], [7, 8]], d=[0, 4096],
               taps=[[1, 1], [1, -1]], dilation=1, pos=1, xr=[[0, 0], [ONE, ONE]], shift=20, rng=SEED1_LEARN),
             c("saturates_int16", W=[[32000, -32000]], d=[I32_MAX], taps=[[1]], dilation=1, pos=0,
               xr=[[ONE], [-ONE]], shift=16, rng=SEED1_LEARN),
             c("shift_above_62", W=[[10, -10]], d=[-123456789], taps=[[1, 2]], dilation=3, pos=0,
               xr=[[ONE, 0, 0, ONE], [ONE, 0, 0, 0]], shift=70, rng=7),
             c("shift_zero_and_negative", W=[[1, 2]], d=[1], taps=[[1]], dilation=1, pos=0, xr=[[3], [-2]],
               shift=-1, rng=7)]
    for i in range(3):
        n_out, n_in, K, D = (int(v) for v in g.integers(1, 6, 4))
        L = (K - 1) * D + 1
        cases.append(c(f"random_{i}", W=g.integers(-4000, 4000, (n_out, n_in)).astype(np.int16),
                       d=np.where(g.random(n_out) < 0.3, 0, g.integers(-ONE, ONE, n_out)).astype(np.int32),
                       taps=g.integers(-15, 16, (n_out, K)).astype(np.int8), dilation=D, pos=int(g.integers(0, L)),
                       xr=(g.integers(0, 2, (n_in, L)) * ONE).astype(np.int32), shift=int(g.integers(16, 40)),
                       rng=int(g.integers(1, 2 ** 32))))
    return cases


def psn_weight_grads():
    g = gen("psn_weight_grads")
    xr = np.zeros((1, 5), np.int32)
    xr[0, 0] = xr[0, 2] = 128 << 8
    cases = [c("worked", gW=[[100]], d=[32768], taps=[[1, -2, 3]], dilation=2, pos=2, xr=xr),
             c("zero_error_and_zero_eligibility_add_nothing", gW=[[5, 6], [7, 8]], d=[0, 4096],
               taps=[[1, 1], [1, -1]], dilation=1, pos=1, xr=[[0, 0], [ONE, ONE]]),
             c("saturates_int64", gW=[[I64_MAX - 5, I64_MIN + 5]], d=[I32_MAX], taps=[[1]], dilation=1, pos=0,
               xr=[[I32_MAX], [I32_MIN]])]
    for i in range(3):
        n_out, n_in, K, D = (int(v) for v in g.integers(1, 6, 4))
        L = (K - 1) * D + 1
        cases.append(c(f"random_{i}", gW=g.integers(-2 ** 40, 2 ** 40, (n_out, n_in)),
                       d=np.where(g.random(n_out) < 0.3, 0, g.integers(-ONE, ONE, n_out)).astype(np.int32),
                       taps=g.integers(-15, 16, (n_out, K)).astype(np.int8), dilation=D, pos=int(g.integers(0, L)),
                       xr=(g.integers(0, 2, (n_in, L)) * ONE).astype(np.int32)))
    return cases


def psn_lag0_error():
    g = gen("psn_lag0_error")
    return [c("every_sign", taps=[[1, 5], [2, 0], [-2, 1], [0, 3], [-1, -1]], d=[-3, -3, -3, 77, I32_MIN]),
            c("random", taps=g.integers(-15, 16, (6, 3)).astype(np.int8),
              d=g.integers(-ONE, ONE, 6).astype(np.int32))]


def run_sample():
    g = gen("run_sample")
    cases = []
    for name, sizes, taps, dil, enc, T in (("two_hidden_sawtooth_sequence", [4, 6, 5, 3], 3, [1, 3], "sequence", 10),
                                           ("rate", [5, 7, 2], 2, [4], "rate", 12)):
        layers = []
        for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = l == len(sizes) - 2
            K = 1 if last else taps
            layers.append({"n_in": n_in, "n_out": n_out, "dilation": 1 if last else dil[l], "w_frac": 12,
                           "taps": ([[1]] * n_out if last else g.choice([-3, -2, -1, 1, 2, 3], (n_out, K)).tolist()),
                           "weights": g.integers(-9000, 9000, (n_out, n_in)).tolist(),
                           "thresholds": [I32_MAX] * n_out if last else g.integers(ONE // 8, ONE // 2, n_out).tolist()})
        shape = (4, T, sizes[0]) if enc == "sequence" else (4, sizes[0])
        cases.append(c(name, layers=layers, encoding=enc, T=T, lr_weight_shift=4, surrogate_shift=1, seed=3,
                       samples=g.integers(0, 256, shape).astype(np.uint8), labels=g.integers(0, sizes[-1], 4).tolist(),
                       learn=[1, 1, 0, 1]))
    return cases


BUILDERS = {"apply_tap": apply_tap, "psn_filter": psn_filter, "psn_input_ring": psn_input_ring,
            "psn_update_weights": psn_update_weights, "psn_weight_grads": psn_weight_grads,
            "psn_lag0_error": psn_lag0_error, "run_sample": run_sample}


def inputs_for(op, case):
    if op == "run_sample":
        return dict(case["inputs"])
    return pc.arrays(case["inputs"])


def build(op) -> dict:
    cases = []
    for case in BUILDERS[op]():
        out = pc.PYTHON[op](inputs_for(op, case))
        cases.append({**case, "outputs": out if op == "run_sample" else pc.lists(out)})
    return {**pc.header(op), "cases": cases}


def text(doc) -> str:
    return json.dumps(doc, indent=None, separators=(",", ":")).replace('{"name"', '\n{"name"') + "\n"


def main():
    OUT.mkdir(exist_ok=True)
    for op in BUILDERS:
        (OUT / f"{op}.json").write_text(text(build(op)), encoding="utf-8")


if __name__ == "__main__":
    main()

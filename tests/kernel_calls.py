"""How to call every fixed-point kernel, in Python and in C: the one table that the
golden-vector generator (tests/golden/make_kernel_golden.py) and the replay
(tests/test_kernel_golden.py) share.

A kernel is described once by its arguments (name, element type, shape, direction) and by
two call orders: the Python reference's and the C twin's. Everything else is derived:

    sig     "name:type[dims]mark ..."   mark: (none) in, ! inout, > out (every element
            is written; the initial value must not matter), ~ scratch (allocated zeroed by
            the harness, not part of a golden case), & state: a uint32 passed by reference
            (a PRNG state, advanced in place; a scalar in the golden files)
    py, c   call orders: argument names, size symbols (the dims of the sig; `ld` = the row
            stride of a weight block) and integer literals (a fixed argument)

A golden case holds every in/inout/out/state argument in "inputs" and every
inout/out/state argument plus "return" in "outputs". Two optional case fields:
``block`` {"W": [col, cols]}: the kernel sees columns col..col+cols-1 of the matrix W
(row stride = its full width, C's `ld`; the other columns must come out unchanged), and
``alias`` {"U": "cur"}: U is not an input, the kernel gets cur's buffer for it.
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass

import numpy as np

from edgelearn import numerics as nx
from edgelearn.ops.layers.dense import update_weights
from edgelearn.rules.stop.kernels import apply_weight_grads, saturate_learned_rows, saturate_weights

DTYPES = {t: np.dtype(t) for t in ("int8", "uint8", "int16", "int32", "int64", "uint32")}
# A window layer's geometry (edgelearn/ops/layers/window.py): a list of its 12 fields in the cases,
# an int64 row for Python, an el_window_t for C.
WINDOW = "window"
WINDOW_FIELDS = ("in_c", "in_h", "in_w", "out_c", "out_h", "out_w", "kernel_h", "kernel_w", "stride_h", "stride_w",
                 "pad_h", "pad_w")
DIRS = {"": "in", "!": "inout", ">": "out", "~": "scratch", "&": "state"}


@dataclass(frozen=True)
class Arg:
    name: str
    type: str                  # numpy/stdint element type: int32 -> int32_t
    shape: tuple[str, ...]     # () for a scalar
    dir: str                   # in, inout, out, scratch, state

    @property
    def ctype(self) -> str:
        return "el_window_t" if self.type == WINDOW else f"{self.type}_t"

    def doc(self) -> dict:
        return {"name": self.name, "type": self.type, "shape": list(self.shape), "dir": self.dir}


@dataclass(frozen=True)
class Kernel:
    op: str
    python: str                # import path of the reference function
    c: str                     # C symbol
    contract: str
    args: tuple[Arg, ...]
    py: tuple[str, ...]
    c_call: tuple[str, ...]
    returns: str | None
    note: str | None = None

    def arg(self, name: str) -> Arg:
        return next(a for a in self.args if a.name == name)

    @property
    def golden_args(self) -> tuple[Arg, ...]:
        return tuple(a for a in self.args if a.dir != "scratch")

    @property
    def result_args(self) -> tuple[Arg, ...]:
        return tuple(a for a in self.args if a.dir in ("inout", "out", "state"))

    def header(self) -> dict:
        """The self-description written at the top of a golden file."""
        doc = {"op": self.op, "python": self.python, "c": self.c, "contract": self.contract}
        if self.note:
            doc["note"] = self.note
        doc.update({"args": [a.doc() for a in self.args], "returns": self.returns,
                    "python_args": list(self.py), "c_args": list(self.c_call)})
        return doc


_ARG = re.compile(r"^(\w+):(\w+)(?:\[([\w,]+)\])?([!>~&]?)$")


def _parse(sig: str) -> tuple[Arg, ...]:
    out = []
    for tok in sig.split():
        m = _ARG.match(tok)
        assert m and (m.group(2) in DTYPES or m.group(2) == WINDOW), tok
        out.append(Arg(m.group(1), m.group(2), tuple(m.group(3).split(",")) if m.group(3) else (),
                       DIRS[m.group(4)]))
    return tuple(out)


def _k(op, python, c, contract, sig, py, c_call, returns=None, note=None):
    return Kernel(op, python, c, contract, _parse(sig), tuple(py.split()), tuple(c_call.split()), returns, note)


N = "docs/numerics.md §5"
S = "docs/spide.md §4"
LIF = "edgelearn.ops.neurons.lif.step_fixed"
STOP = "edgelearn.rules.stop.kernels."
SPIDE = "edgelearn.rules.spide.kernels."
SHARED = "edgelearn.rules.kernels."
DENSE = "edgelearn.ops.layers.dense."
CONV = "edgelearn.ops.layers.conv2d."
POOL = "edgelearn.ops.layers.pool."
W5C = "docs/numerics.md §5c"
SCAN = "edgelearn.ops.layers.scan2d."
W5D = "docs/numerics.md §5d"
INT8_READ = "int8 weights (docs/numerics.md §1): the reference is the int16 kernel's, which reads any integer width"

KERNELS: dict[str, Kernel] = {k.op: k for k in [
    # -- numeric primitives (docs/numerics.md §3): inline in el_numerics.h ------------------
    _k("round_shift", "edgelearn.numerics.round_shift", "el_round_shift", "docs/numerics.md §3",
       "x:int64 s:int32", "x s", "x s", "int64",
       note="defined for s <= 62; the host calls el_round_shift_export"),
    _k("stochastic_shift", "edgelearn.numerics.stochastic_shift", "el_stochastic_shift", "docs/numerics.md §3",
       "p:int64 s:int32 rng:uint32&", "p s rng", "p s rng", "int64",
       note="s >= 126 drops 64 bits or more, which leaves the sign (0 or -1) in both; "
            "the host calls el_stochastic_shift_export"),
    _k("rng_next", "edgelearn.numerics.rng_next", "el_rng_next", "docs/numerics.md §3",
       "rng:uint32&", "rng", "rng", "uint32", note="the host calls el_rng_next_export"),
    _k("sat_sum", "edgelearn.numerics.sat_sum", "el_sat_sum", "docs/numerics.md §3",
       "acc:int64 p:int64", "acc p", "acc p", "int64",
       note="the host calls el_sat_sum_export"),
    # -- encoder (docs/numerics.md §4): direct/rate read row 0 of sample ------------------
    _k("encode_step", "edgelearn.encoders.encode_step", "el_encode_step", "docs/numerics.md §4",
       "code:uint8 sample:uint8[rows,n] t:uint32 rng:uint32& x:int32[n]>",
       "code sample t rng x", "code sample rows n t rng x", "int32",
       note="code 0 direct (x_frac 8), 1 rate (one draw per input), 2 events; direct and rate read row 0 "
            "(rows = 1)"),
    # -- forward (docs/numerics.md §5) -------------------------------------------------------
    _k("dense_current", "edgelearn.ops.layers.dense.current_fixed", "el_dense_current", N,
       "W:int16[n_out,n_in] x:int32[n_in] x_frac:int32 w_frac:int32 nonzero:int32[n_in]~ cur:int32[n_out]>",
       "W x x_frac w_frac nonzero cur", "W ld n_out n_in x x_frac w_frac nonzero cur"),
    _k("dense_current_int8", "edgelearn.ops.layers.dense.current_fixed", "el_dense_current_int8", N,
       "W:int8[n_out,n_in] x:int32[n_in] x_frac:int32 w_frac:int32 nonzero:int32[n_in]~ cur:int32[n_out]>",
       "W x x_frac w_frac nonzero cur", "W ld n_out n_in x x_frac w_frac nonzero cur", note=INT8_READ),
    _k("nonzero_index", "edgelearn.ops.layers.dense.nonzero_index", "el_nonzero_index", N,
       "x:int32[n] nonzero:int32[n]!", "x nonzero", "x n nonzero", "uint32",
       note="only the first `return` entries of nonzero are written; the rest keep their values"),
    # a direct-coded sample's current: exact sums once, then rounded each step (numerics.md §5b)
    _k("dense_sums", "edgelearn.ops.layers.dense.dense_sums", "el_dense_sums", "docs/numerics.md §5b",
       "W:int16[n_out,n_in] x:int32[n_in] nonzero:int32[n_in] n:uint32 sums:int64[n_out]>",
       "W x nonzero n sums", "W ld n_out x nonzero n sums",
       note="nonzero lists x's non-zero indices (nonzero_index), n of them"),
    _k("dense_sums_int8", "edgelearn.ops.layers.dense.dense_sums", "el_dense_sums_int8", "docs/numerics.md §5b",
       "W:int8[n_out,n_in] x:int32[n_in] nonzero:int32[n_in] n:uint32 sums:int64[n_out]>",
       "W x nonzero n sums", "W ld n_out x nonzero n sums", note=INT8_READ),
    _k("current_from_sums", "edgelearn.ops.layers.dense.current_from_sums", "el_current_from_sums",
       "docs/numerics.md §5b", "sums:int64[n] x_frac:int32 w_frac:int32 cur:int32[n]>",
       "sums x_frac w_frac cur", "sums n x_frac w_frac cur"),
    # dense_current on uint8 spikes (x_frac 0): Python has one function for both
    _k("spike_current", "edgelearn.ops.layers.dense.current_fixed", "el_spike_current", S,
       "W:int16[n_out,n_in] s:uint8[n_in] w_frac:int32 nonzero:int32[n_in]~ cur:int32[n_out]>",
       "W s 0 w_frac nonzero cur", "W ld n_out n_in s w_frac nonzero cur",
       note="Python runs dense_current's current_fixed on the uint8 spikes with x_frac = 0"),
    _k("input_trace_step", STOP + "input_trace_step", "el_input_trace_step", N,
       "a:int64 x:int32[n] x_frac:int32 x_tr:int32[n]!", "a x x_frac x_tr", "a x n x_frac x_tr"),
    _k("neuron_trace_step", STOP + "neuron_trace_step", "el_neuron_trace_step", N,
       "a:int64 V:int32[n] s:uint8[n] th_tr:int32[n]! a_tr:int32[n]!", "a V s th_tr a_tr", "a V s n th_tr a_tr"),
    # lif and if (if = lif with a = ONE): a spike subtracts th << reset_shift
    _k("lif_step", LIF, "el_lif_step", "docs/numerics.md §5, edgelearn/ops/neurons/lif.py",
       "cur:int32[n] a:int64 th:int32[n] reset_shift:int32 V:int32[n]! s:uint8[n]> U:int32[n]>",
       "cur a th reset_shift V s U", "cur a th reset_shift n V s U",
       note="if neurons run this step with a = 65536 (edgelearn/ops/neurons/if_neuron.py)"),
    # li shares the neuron step signature; th, reset_shift and s are not read
    _k("li_step", "edgelearn.ops.neurons.li.step_fixed", "el_li_step", N,
       "cur:int32[n] a:int64 V:int32[n]! U:int32[n]> th:int32[n]~ s:uint8[n]~",
       "cur a th 0 V s U", "cur a th 0 n V s U",
       note="both steps have the neuron kinds' shared signature; th, reset_shift and s are not read"),
    # the threshold unit (psn layers' neurons): memoryless, V = U = cur; a and reset_shift are not read
    _k("threshold_step", "edgelearn.ops.neurons.threshold.step_fixed", "el_threshold_step",
       "docs/psn.md, edgelearn/ops/neurons/threshold.py",
       "cur:int32[n] a:int64 th:int32[n] reset_shift:int32 V:int32[n]> s:uint8[n]> U:int32[n]>",
       "cur a th reset_shift V s U", "cur a th reset_shift n V s U",
       note="the neuron kinds' shared signature; a and reset_shift are not read"),
    # -- errors ------------------------------------------------------------------------------
    _k("surrogate", STOP + "surrogate", "el_surrogate", N, "x:int64 k:int32", "x k", "x k", "int64"),
    _k("spiking_output_error", STOP + "spiking_output_error", "el_spiking_output_error", N,
       "s:uint8[n] U:int32[n] th:int32[n] label:int32 k:int32 d:int32[n]>",
       "s U th label k d", "s U th n label k d"),
    _k("li_output_error", SHARED + "li_output_error", "el_li_output_error", N,
       "U:int32[n] label:int32 d:int32[n]>", "U label d", "U n label d"),
    _k("hidden_error", STOP + "hidden_error", "el_hidden_error", N,
       "W_up:int16[n_up,n] d_up:int32[n_up] U:int32[n] th:int32[n] w_frac:int32 k:int32 back:int64[n]~ d:int32[n]>",
       "W_up d_up U th w_frac k back d", "W_up n_up d_up U th n w_frac k back d",
       note="dense_back then surrogate_error in one call"),
    # the errors of a layer's outputs carried onto its inputs, by the layer's kind (docs/numerics.md §5c)
    _k("dense_back", DENSE + "dense_back", "el_dense_back", W5C,
       "W_up:int16[n_up,n] d_up:int32[n_up] back:int64[n]>", "W_up d_up back", "W_up n_up d_up n back", "uint32",
       note="returns how many d_up were non-zero"),
    _k("dense_back_int8", DENSE + "dense_back", "el_dense_back_int8", W5C,
       "W_up:int8[n_up,n] d_up:int32[n_up] back:int64[n]>", "W_up d_up back", "W_up n_up d_up n back", "uint32",
       note=INT8_READ),
    _k("surrogate_error", STOP + "surrogate_error", "el_surrogate_error", W5C,
       "back:int64[n] active:uint32 U:int32[n] th:int32[n] frac:int32 k:int32 d:int32[n]>",
       "back active U th frac k d", "back active U th n frac k d"),
    _k("pass_error", STOP + "pass_error", "el_pass_error", W5C, "back:int64[n] active:uint32 frac:int32 d:int32[n]>",
       "back active frac d", "back active n frac d", note="the error of a layer without neurons (a pool)"),
    # -- conv2d and pooling (docs/numerics.md §5c): g is the window's 12 fields -------------------
    _k("conv2d_sums", CONV + "conv2d_sums", "el_conv2d_sums", W5C,
       "W:int16[out_c,taps] x:int32[n_in] g:window nonzero:int32[n_in] n:uint32 co:uint32 sums:int64[plane]>",
       "W x g nonzero n co sums", "W x g nonzero n co sums",
       note="nonzero lists x's non-zero indices (nonzero_index), n of them; sums: output channel co's plane"),
    _k("conv2d_current", CONV + "conv2d_current", "el_conv2d_current", W5C,
       "W:int16[out_c,taps] x:int32[n_in] x_frac:int32 w_frac:int32 g:window nonzero:int32[n_in]~ "
       "plane:int64[n_out]~ cur:int32[n_out]>", "W x x_frac w_frac g nonzero plane cur",
       "W x x_frac w_frac g nonzero plane cur"),
    _k("conv2d_back", CONV + "conv2d_back", "el_conv2d_back", W5C,
       "W:int16[out_c,taps] d:int32[n_out] g:window back:int64[n_in]>", "W d g back", "W d g back", "uint32",
       note="returns how many d were non-zero"),
    _k("conv2d_update_weights", CONV + "conv2d_update_weights", "el_conv2d_update_weights", W5C,
       "W:int16[out_c,taps]! d:int32[n_out] x_tr:int32[n_in] g:window shift:int32 rng:uint32& acc:int64[taps]~",
       "W d x_tr g shift rng acc", "W d x_tr g shift rng acc"),
    _k("conv2d_weight_grads", CONV + "conv2d_weight_grads", "el_conv2d_weight_grads", W5C,
       "gW:int64[out_c,taps]! d:int32[n_out] x_tr:int32[n_in] g:window", "gW d x_tr g", "gW d x_tr g"),
    _k("avgpool_forward", POOL + "avgpool_forward", "el_avgpool_forward", W5C,
       "s:uint8[n_in] g:window out:uint8[n_out]>", "s g out", "s g out"),
    _k("maxpool_forward", POOL + "maxpool_forward", "el_maxpool_forward", W5C,
       "s:uint8[n_in] g:window out:uint8[n_out]>", "s g out", "s g out"),
    _k("avgpool_back", POOL + "avgpool_back", "el_avgpool_back", W5C,
       "d:int32[n_out] g:window back:int64[n_in]>", "d g back", "d g back", "uint32"),
    # -- scan2d, the one-time-step layer (docs/numerics.md §5d) ----------------------------------
    _k("scan2d_step", SCAN + "scan2d_step", "el_scan2d_step", W5D,
       "W:int16[C,cols] x:int32[n_in] x_frac:int32 w_frac:int32 g:window code:uint32 a:int64 th:int32[n] "
       "reset_shift:int32 V:int32[n]! s:uint8[n]> U:int32[n]> cur:int32[n]>",
       "W x x_frac w_frac g code a th reset_shift V s U cur", "W x x_frac w_frac g code a th reset_shift V s U cur",
       note="code: the neuron kind (0 lif, 1 if); every spike read is one fired this step"),
    _k("scan2d_spike_trace", SCAN + "scan2d_spike_trace", "el_scan2d_spike_trace", W5D,
       "a:int64 s:uint8[n] r_tr:int32[n]!", "a s r_tr", "a s n r_tr"),
    _k("scan2d_back", SCAN + "scan2d_back", "el_scan2d_back", W5D,
       "W:int16[C,cols] d:int32[n_out] g:window back:int64[n_in]>", "W d g back", "W d g back", "uint32"),
    _k("scan2d_update_weights", SCAN + "scan2d_update_weights", "el_scan2d_update_weights", W5D,
       "W:int16[C,cols]! d:int32[n_out] x_tr:int32[n_tr] g:window shift:int32 rng:uint32& acc:int64[cols]~",
       "W d x_tr g shift rng acc", "W d x_tr g shift rng acc",
       note="x_tr: the fields' traces (n_in), then the neighbours' spike traces (n_out)"),
    _k("scan2d_weight_grads", SCAN + "scan2d_weight_grads", "el_scan2d_weight_grads", W5D,
       "gW:int64[C,cols]! d:int32[n_out] x_tr:int32[n_tr] g:window", "gW d x_tr g", "gW d x_tr g"),
    _k("maxpool_back", POOL + "maxpool_back", "el_maxpool_back", W5C,
       "d:int32[n_out] g:window s:uint8[n_in] back:int64[n_in]>", "d g s back", "d g s back", "uint32"),
    # -- learning ----------------------------------------------------------------------------
    _k("update_weights", DENSE + "update_weights", "el_update_weights", N,
       "W:int16[n_out,n_in]! d:int32[n_out] x_tr:int32[n_in] shift:int32 rng:uint32& nonzero:int32[n_in]~",
       "W d x_tr shift rng nonzero", "W ld n_out n_in d x_tr shift rng nonzero"),
    _k("update_weights_int8", "kernel_calls.update_weights_int8", "el_update_weights_int8", N,
       "W:int8[n_out,n_in]! d:int32[n_out] x_tr:int32[n_in] shift:int32 rng:uint32& nonzero:int32[n_in]~",
       "W d x_tr shift rng nonzero", "W ld n_out n_in d x_tr shift rng nonzero",
       note="W = sat8(W - SR(d x^T)): the Python reference's update of an int8 layer (update_weights, then "
            "saturate_learned_rows), on int8 storage"),
    _k("accumulate_weight_grads", DENSE + "accumulate_weight_grads", "el_accumulate_weight_grads", N,
       "gW:int64[n_out,n_in]! d:int32[n_out] x_tr:int32[n_in]", "gW d x_tr", "gW n_out n_in d x_tr"),
    _k("apply_weight_grads", STOP + "apply_weight_grads", "el_apply_weight_grads", N,
       "W:int16[n_out,n_in]! gW:int64[n_out,n_in]! shift:int32 rng:uint32&",
       "W gW shift rng", "W gW n_out n_in shift rng"),
    _k("apply_weight_grads_int8", "kernel_calls.apply_weight_grads_int8", "el_apply_weight_grads_int8", N,
       "W:int8[n_out,n_in]! gW:int64[n_out,n_in]! shift:int32 rng:uint32&",
       "W gW shift rng", "W gW n_out n_in shift rng",
       note="W = sat8(W - SR(gW)): the Python reference's (apply_weight_grads, then saturate_weights), on int8 "
            "storage"),
    _k("threshold_grads", STOP + "threshold_grads", "el_threshold_grads", N,
       "d:int32[n] th_tr:int32[n] g:int64[n]!", "d th_tr g", "d th_tr n g"),
    _k("apply_threshold_grads", STOP + "apply_threshold_grads", "el_apply_threshold_grads", N,
       "th:int32[n]! g:int64[n]! shift:int32 floor:int64 rng:uint32&",
       "th g shift floor rng", "th g n shift floor rng"),
    _k("leak_grad", STOP + "leak_grad", "el_leak_grad", N, "d:int32[n] a_tr:int32[n]", "d a_tr", "d a_tr n", "int64"),
    _k("apply_leak_grad", STOP + "apply_leak_grad", "el_apply_leak_grad", N,
       "a:int64 g:int64 shift:int32 rng:uint32&", "a g shift rng", "a g shift rng", "int64"),
    # -- anytime inference (docs/numerics.md §6b) --------------------------------------------
    _k("top2_gap", STOP + "top2_gap", "el_top2_gap", "docs/numerics.md §6b",
       "scores:int64[n]", "scores", "scores n", "int64"),
    # -- SPIDE (docs/spide.md §4) ------------------------------------------------------------
    _k("count_spikes", SPIDE + "count_spikes", "el_count_spikes", S, "s:uint8[n] count:int32[n]!",
       "s count", "s n count"),
    _k("add_current", SPIDE + "add_current", "el_add_current", S, "part:int32[n] cur:int32[n]!",
       "part cur", "part n cur"),
    _k("equilibrium_mask", SPIDE + "equilibrium_mask", "el_equilibrium_mask", S,
       "count:int32[n] T:int64 mask:uint8[n]>", "count T mask", "count n T mask"),
    _k("readout_gradient", SPIDE + "readout_gradient", "el_readout_gradient", S,
       "W:int16[n_e,n] e:int32[n_e] w_frac:int32 acc:int64[n]~ g:int32[n]!",
       "W e w_frac acc g", "W ld n_e n e w_frac acc g"),
    _k("gradient_scale", SPIDE + "gradient_scale", "el_gradient_scale", S, "g:int32[n]", "g", "g n", "int32"),
    _k("scale_drive", SPIDE + "scale_drive", "el_scale_drive", S, "g:int32[n] gs:int32 drive:int32[n]>",
       "g gs drive", "g n gs drive"),
    _k("backward_input", SPIDE + "backward_input", "el_backward_input", S,
       "W:int16[n_up,n] mask:uint8[n_up] sb:int8[n_up] shift:int32 acc:int64[n]~ inp:int64[n]!",
       "W mask sb shift acc inp", "W ld n_up n mask sb shift acc inp"),
    _k("couple_step", SPIDE + "couple_step", "el_couple_step", S,
       "inp:int64[n] u:int32[n]! sb:int8[n]> count:int32[n]!", "inp u sb count", "inp n u sb count"),
    _k("gate_counts", SPIDE + "gate_counts", "el_gate_counts", S, "mask:uint8[n] count:int32[n]!",
       "mask count", "mask n count"),
    _k("row_abs_sums", SPIDE + "row_abs_sums", "el_row_abs_sums", S, "W:int16[n_out,n_in] sums:int64[n_out]>",
       "W sums", "W ld n_out n_in sums"),
    _k("halve_weights", SPIDE + "halve_weights", "el_halve_weights", S, "W:int16[n_out,n_in]!",
       "W", "W ld n_out n_in"),
]}

# The Python reference holds an int8 layer's weights in int16 and saturates its updates to int8
# after the int16 update (rules/stop/fixed.py); on int8 storage that is:

def update_weights_int8(W, d, x_tr, shift, rng, nonzero):
    wide = W.astype(np.int16)
    update_weights(wide, d, x_tr, shift, rng, nonzero)
    saturate_learned_rows(wide, d, nx.INT8_MIN, nx.INT8_MAX)
    W[:] = wide


def apply_weight_grads_int8(W, gW, shift, rng):
    wide = W.astype(np.int16)
    apply_weight_grads(wide, gW, shift, rng)
    saturate_weights(wide, nx.INT8_MIN, nx.INT8_MAX)
    W[:] = wide


def python_function(kernel: Kernel):
    module, _, name = kernel.python.rpartition(".")
    return getattr(importlib.import_module(module), name)


def c_function(kernel: Kernel, lib):
    """The cffi function of the C twin; el_numerics.h's inline primitives are reached
    through the ``_export`` wrappers edgelearn.native compiles."""
    for name in (kernel.c, kernel.c + "_export"):
        if hasattr(lib, name):
            return getattr(lib, name)
    raise LookupError(f"{kernel.c}: the host's C module has neither it nor {kernel.c}_export")


# -- binding a case to buffers -----------------------------------------------------------

class Bound:
    """The buffers of one call: fresh arrays from a case's inputs, the scratch, the sizes."""

    def __init__(self, kernel: Kernel, case: dict):
        self.kernel = kernel
        inputs = case["inputs"]
        self.block = {k: tuple(v) for k, v in case.get("block", {}).items()}
        alias = case.get("alias", {})
        known = {a.name for a in kernel.golden_args} - set(alias)
        assert set(inputs) == known, f"inputs {sorted(inputs)} != arguments {sorted(known)}"
        self.values, self.dims = {}, {}
        for a in kernel.args:               # arrays and scalars from the inputs
            if a.name in alias or a.dir == "scratch":
                continue
            v = inputs[a.name]
            if a.dir == "state":
                self.values[a.name] = np.array([v], dtype=np.uint32)
            elif a.type == WINDOW:
                assert len(v) == len(WINDOW_FIELDS), (a.name, v)
                self.values[a.name] = np.array(v, dtype=np.int64)
            elif a.shape:
                arr = np.array(v, dtype=DTYPES[a.type])
                assert arr.ndim == len(a.shape), (a.name, arr.shape)
                self.values[a.name] = arr
                for sym, size in zip(a.shape, self.view(a.name).shape):
                    assert self.dims.setdefault(sym, size) == size, f"{a.name}: {sym} = {size} != {self.dims[sym]}"
            else:
                self.values[a.name] = int(v)
        for name, target in alias.items():
            self.values[name] = self.values[target]
        for a in kernel.args:               # scratch, sized by the bound dims
            if a.dir == "scratch":
                self.values[a.name] = np.zeros([self.dims[s] for s in a.shape], dtype=DTYPES[a.type])
        blocked = list(self.block)
        assert len(blocked) <= 1
        self.dims["ld"] = self.values[blocked[0]].shape[1] if blocked else next(
            (self.dims[a.shape[1]] for a in kernel.args if len(a.shape) == 2), 0)

    def view(self, name):
        arr = self.values[name]
        if name in self.block:
            col, cols = self.block[name]
            return arr[:, col:col + cols]
        return arr

    def _scalar_or_literal(self, name):
        if re.fullmatch(r"-?\d+", name):
            return int(name)
        if name in self.dims and name not in self.values:
            return self.dims[name]
        return self.values[name]

    def python_args(self):
        return [self.view(n) if n in self.values and isinstance(self.values[n], np.ndarray)
                else self._scalar_or_literal(n) for n in self.kernel.py]

    def c_args(self, ffi):
        out = []
        for n in self.kernel.c_call:
            v = self.values.get(n)
            if isinstance(v, np.ndarray) and self.kernel.arg(n).type == WINDOW:
                out.append(ffi.new("el_window_t *", dict(zip(WINDOW_FIELDS, (int(f) for f in v)))))
            elif isinstance(v, np.ndarray):
                a = self.kernel.arg(n)
                ptr = ffi.from_buffer(f"{a.ctype}[]", v)
                out.append(ptr + self.block[n][0] if n in self.block else ptr)
            else:
                out.append(self._scalar_or_literal(n))
        return out

    def results(self, ret) -> dict:
        out = {}
        for a in self.kernel.result_args:
            v = self.values[a.name]
            out[a.name] = int(v[0]) if a.dir == "state" else v.tolist()
        if self.kernel.returns is not None:
            out["return"] = int(ret)
        return out


def run_python(kernel: Kernel, case: dict) -> dict:
    b = Bound(kernel, case)
    return b.results(python_function(kernel)(*b.python_args()))


def run_c(kernel: Kernel, case: dict, native_module) -> dict:
    b = Bound(kernel, case)
    fn = c_function(kernel, native_module.lib)
    return b.results(fn(*b.c_args(native_module.ffi)))


RUNNERS = {   # bit-exact executor (edgelearn.executors.bit_exact()) -> how it runs a kernel
    "fixed": lambda kernel, case: run_python(kernel, case),
    "c": lambda kernel, case: run_c(kernel, case, _native()),
}


def _native():
    from edgelearn import native
    return native.load_native()

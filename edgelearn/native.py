"""The C runtime (targets/c) on the host, through cffi in out-of-line API mode.

``load_native()`` compiles the runtime once into a cache directory (``$EDGELEARN_BUILD_DIR``
or ``~/.cache/edgelearn``, never the source tree) under a name derived from a hash of the
C sources, the declarations and the flags, so any change to the sources builds a fresh
module and a stale one is never loaded. ``NativeSTOP`` runs the very same C that a device
runs, with the interface of ``edgelearn.learning.stop_fixed.FixedSTOP``: it is a test
oracle for the contract and a fast host backend.

A model reaches the C side only as its blob (``to_blob``), so every NativeSTOP exercises
the C loader; the parameters are learned in place in that blob, and ``to_model`` reads
them back through ``el_seal`` (which refreshes the CRC) and ``from_blob``.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import resources
from .encoders import as_rows
from .learning.stop_float import check_stop_model
from .model import Model, ModelError
from .modelblob import from_blob, to_blob

C_DIR = resources.C_DIR
RUNTIME_SOURCES = ("el_kernels.c", "el_kernels_spide.c", "el_blob.c", "el_stop.c", "el_spide.c")   # el_static.c is the device's arena
COMPILE_ARGS = ("-std=gnu99", "-O2")

# What Python sees of edgelearn.h (cffi cannot read the preprocessor; keep in step).
CDEF = """
typedef enum {
    EL_OK = 0, EL_ERR_ARGUMENT = 1, EL_ERR_MISALIGNED = 2, EL_ERR_TOO_SHORT = 3, EL_ERR_BAD_MAGIC = 4,
    EL_ERR_VERSION = 5, EL_ERR_TRUNCATED = 6, EL_ERR_TRAILING = 7, EL_ERR_CRC = 8,
    EL_ERR_HEADER_RESERVED = 9, EL_ERR_TABLE_BOUNDS = 10, EL_ERR_SECTION_TYPE = 11,
    EL_ERR_SECTION_BOUNDS = 12, EL_ERR_SECTION_DUPLICATE = 13, EL_ERR_SECTION_MISSING = 14,
    EL_ERR_SECTION_INDEX = 15, EL_ERR_SECTION_SIZE = 16, EL_ERR_UNKNOWN_CODE = 17,
    EL_ERR_RESERVED_FIELD = 18, EL_ERR_SHAPE = 19, EL_ERR_EDGE = 20, EL_ERR_VALUE = 21,
    EL_ERR_UNSUPPORTED = 22, EL_ERR_ARENA_TOO_SMALL = 23
} el_status_t;
enum { EL_PLAN_WEIGHT_GRAD = 1 };
typedef struct {
    uint32_t n_in, n_out;
    uint32_t weights_at, thresholds_at, leak_at;
    uint32_t n_off, learn_off, in_off, w_off;
    uint8_t  neuron, weight_frac, flags, reset_shift;
    uint32_t e_start;
    uint16_t e_count;
    int8_t   vd;
    uint8_t  reserved;
} el_layer_t;
typedef struct {
    int32_t  src;
    uint32_t delay, col, n_src, src_off;
} el_edge_t;
typedef struct { uint32_t offset, bytes; } el_span_t;
typedef struct {
    el_span_t layers, membrane, potential, current, spikes, layer_input, nonzero_index, scores;
    el_span_t input_trace, threshold_trace, leak_trace, error, error_backprop;
    el_span_t threshold_grad, leak_grad, weight_grad;
    el_span_t edges, input_current, spikes_prev, count, half_count, mask, edge_current, input, input_sum;
    el_span_t output_gradient, drive, back_membrane, back_spikes, back_spikes_prev, back_count;
    el_span_t back_input, back_sum, row_sums, row_gains, loop_gains, health;
    uint32_t total;
} el_plan_t;
typedef struct {
    uint8_t *blob;
    uint32_t blob_size;
    uint32_t layer_count, input_size, T;
    uint8_t  encoding, rule, update;
    int8_t   surrogate_shift;
    uint32_t lr_shift[3];
    uint32_t rng_input, rng_learn;
    uint32_t neurons, lowest;
    el_layer_t *layers;
    int32_t *membrane, *potential, *current, *layer_input, *nonzero_index;
    uint8_t *spikes;
    int64_t *scores;
    int32_t *input_trace, *threshold_trace, *leak_trace, *error;
    int64_t *error_backprop, *threshold_grad, *leak_grad, *weight_grad;
    el_plan_t plan;
    uint32_t Tb, edge_count;
    uint8_t  log2T, log2Tb, feedback, reserved;
    el_edge_t *edges;
    int32_t *input_current, *count, *half_count, *edge_current, *input, *input_sum;
    int32_t *output_gradient, *drive, *back_membrane, *back_count;
    uint8_t *spikes_prev, *mask;
    int8_t *back_spikes, *back_spikes_prev;
    int64_t *back_input, *back_sum, *row_sums, *row_gains, *loop_gains, *health;
} el_net_t;
uint32_t el_crc32(uint32_t crc, const uint8_t *data, size_t n);
el_status_t el_plan(const uint8_t *blob, size_t size, unsigned options, el_plan_t *plan);
uint32_t el_arena_required(const uint8_t *blob, size_t size, unsigned options);
el_status_t el_init(el_net_t *net, uint8_t *blob, size_t size, void *arena, size_t arena_bytes,
                    unsigned options);
el_status_t el_run_sample(el_net_t *net, const uint8_t *sample, uint32_t rows, int32_t label,
                          int learn, int per_step);
void el_apply_accumulated(el_net_t *net, uint32_t extra_shift);
el_status_t el_spide_run_sample(el_net_t *net, const uint8_t *sample, uint32_t rows, int32_t label, int learn);
int64_t el_spide_loop_gain(el_net_t *net);
uint32_t el_predict(const el_net_t *net);
void el_slow_down(el_net_t *net);
void el_seal(el_net_t *net);
int64_t el_round_shift_export(int64_t x, int s);
int64_t el_stochastic_shift_export(int64_t p, int s, uint32_t *state);
uint32_t el_rng_next_export(uint32_t *state);
int64_t el_surrogate(int64_t x, int k);
"""

# The header's inline primitives, given linkable names so tests can call them directly.
EXPORTS = """
#include "edgelearn.h"
#include "el_kernels.h"
#include "el_numerics.h"
int64_t el_round_shift_export(int64_t x, int s) { return el_round_shift(x, s); }
int64_t el_stochastic_shift_export(int64_t p, int s, uint32_t *state) { return el_stochastic_shift(p, s, state); }
uint32_t el_rng_next_export(uint32_t *state) { return el_rng_next(state); }
"""

# The arena buffers by name and element type, in el_plan_t order (names as in FixedSTOP).
ARENA_BUFFERS = {
    "layer_table": np.uint32, "membrane": np.int32, "potential": np.int32, "current": np.int32,
    "spikes": np.uint8, "layer_input": np.int32, "nonzero_index": np.int32, "scores": np.int64,
    "input_trace": np.int32, "threshold_trace": np.int32, "leak_trace": np.int32, "error": np.int32,
    "error_backprop": np.int64, "threshold_grad": np.int64, "leak_grad": np.int64, "weight_grad": np.int64,
    # SPIDE's (docs/spide.md §3; names as in FixedSPIDE.buffers())
    "edge_table": np.int32, "input_current": np.int32, "spikes_prev": np.uint8, "count": np.int32,
    "half_count": np.int32, "mask": np.uint8, "edge_current": np.int32, "input": np.int32, "input_sum": np.int32,
    "output_gradient": np.int32, "drive": np.int32, "back_membrane": np.int32, "back_spikes": np.int8,
    "back_spikes_prev": np.int8, "back_count": np.int32, "back_input": np.int64, "back_sum": np.int64,
    "row_sums": np.int64, "row_gains": np.int64, "loop_gains": np.int64, "health": np.int64,
}
SPAN_NAMES = {"layer_table": "layers", "edge_table": "edges"}   # buffer name -> el_plan_t field
STATUS_NAMES = {}          # filled from the enum on first load: code -> "EL_ERR_..."

_module = None


class NativeError(ModelError):
    """The C runtime refused something; ``status`` is its el_status_t code."""

    def __init__(self, status: int, what: str):
        self.status = status
        super().__init__(f"{what}: {STATUS_NAMES.get(status, status)} ({status})")


def source_digest() -> str:
    h = hashlib.sha256()
    for part in (CDEF, EXPORTS, " ".join(COMPILE_ARGS)):
        h.update(part.encode())
    for path in sorted(C_DIR.glob("*.[ch]")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def build_root() -> Path:
    return Path(os.environ.get("EDGELEARN_BUILD_DIR") or Path.home() / ".cache" / "edgelearn") / "native"


def load_native():
    """The compiled runtime module (``.ffi``, ``.lib``), built on first use."""
    global _module
    if _module is not None:
        return _module
    if not (C_DIR / "edgelearn.h").is_file():
        raise FileNotFoundError(f"the C runtime sources are missing: expected {C_DIR}/edgelearn.h")
    digest = source_digest()
    name = f"_edgelearn_native_{digest}"
    out_dir = build_root() / digest
    built = sorted(out_dir.glob(f"{name}*.so")) + sorted(out_dir.glob(f"{name}*.pyd"))
    if not built:
        built = [_compile(name, out_dir)]
    spec = importlib.util.spec_from_file_location(name, built[0])
    _module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(_module)
    STATUS_NAMES.update({v: k for k, v in _module.ffi.typeof("el_status_t").relements.items()})
    return _module


def _compile(name: str, out_dir: Path) -> Path:
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.set_source(name, EXPORTS, sources=[str(C_DIR / s) for s in RUNTIME_SOURCES],
                   include_dirs=[str(C_DIR)], extra_compile_args=list(COMPILE_ARGS))
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:   # build aside, then move in atomically
        so = Path(ffi.compile(tmpdir=tmp, verbose=False))
        final = out_dir / so.name
        os.replace(so, final)
    shutil.rmtree(out_dir / "build", ignore_errors=True)
    return final


def _aligned_bytes(data: bytes) -> np.ndarray:
    """A writable, 8-byte aligned uint8 copy (numpy allocations are at least 16-aligned)."""
    buf = np.zeros((len(data) + 7) // 8, dtype=np.int64).view(np.uint8)[:len(data)]
    buf[:] = np.frombuffer(data, dtype=np.uint8)
    return buf


def plan(blob: bytes, weight_grad: bool = False) -> dict[str, int]:
    """The C runtime's arena plan for a blob: bytes per buffer and ``total``."""
    m = load_native()
    data = _aligned_bytes(blob)
    p = m.ffi.new("el_plan_t *")
    st = m.lib.el_plan(m.ffi.from_buffer("uint8_t[]", data), len(data),
                       m.lib.EL_PLAN_WEIGHT_GRAD if weight_grad else 0, p)
    if st != m.lib.EL_OK:
        raise NativeError(st, "the C loader refused the blob")
    out = {name: getattr(p, SPAN_NAMES.get(name, name)).bytes for name in ARENA_BUFFERS}
    out["total"] = p.total
    return out


def arena_required(blob: bytes, weight_grad: bool = False) -> int:
    """``el_arena_required``: 0 when the loader refuses the blob."""
    m = load_native()
    data = _aligned_bytes(blob)
    return m.lib.el_arena_required(m.ffi.from_buffer("uint8_t[]", data), len(data),
                                   m.lib.EL_PLAN_WEIGHT_GRAD if weight_grad else 0)


def init_status(blob: bytes, arena_bytes: int | None = None) -> int:
    """The status ``el_init`` returns for a blob and an arena of ``arena_bytes`` (default:
    what it needs). For testing the loader's refusals."""
    m = load_native()
    data = _aligned_bytes(blob)
    if arena_bytes is None:
        arena_bytes = m.lib.el_arena_required(m.ffi.from_buffer("uint8_t[]", data), len(data), 0)
    arena = np.zeros(max(1, (arena_bytes + 7) // 8), dtype=np.int64)
    net = m.ffi.new("el_net_t *")
    return m.lib.el_init(net, m.ffi.from_buffer("uint8_t[]", data), len(data),
                         m.ffi.from_buffer("uint8_t[]", arena), arena_bytes, 0)


class NativeSTOP:
    """STOP in the C runtime: the interface of FixedSTOP, the arithmetic of the device."""

    exactness = "bit-exact: the C runtime of targets/c, which implements docs/numerics.md"

    def __init__(self, model: Model):
        check_stop_model(model)
        self.model = model
        self._m = load_native()
        self._blob = _aligned_bytes(to_blob(model))
        self.per_step = model.learning.update == "step"
        self._net = self._m.ffi.new("el_net_t *")
        self._init(weight_grad=False)

    def _init(self, weight_grad: bool, keep_state: bool = False) -> None:
        """(Re)lay out the arena; ``keep_state`` carries both PRNG streams and the learning
        rates over (the parameters live in the blob and persist anyway)."""
        ffi, lib, net = self._m.ffi, self._m.lib, self._net
        saved = None
        if keep_state:
            lib.el_seal(net)               # the learned parameters changed the CRC
            saved = (net.rng_input, net.rng_learn, list(net.lr_shift),
                     {name: self._view(name).copy() for name in ARENA_BUFFERS})
        options = lib.EL_PLAN_WEIGHT_GRAD if weight_grad else 0
        blob = ffi.from_buffer("uint8_t[]", self._blob)
        total = lib.el_arena_required(blob, len(self._blob), options)
        self._arena = np.zeros(max(1, total // 8), dtype=np.int64)
        st = lib.el_init(net, blob, len(self._blob), ffi.from_buffer("uint8_t[]", self._arena), total, options)
        if st != lib.EL_OK:
            raise NativeError(st, f"the C runtime refused model {self.model.name!r}")
        if saved:
            net.rng_input, net.rng_learn, net.lr_shift = saved[0], saved[1], saved[2]
            for name, old in saved[3].items():   # the state of the last sample, as FixedSTOP keeps it
                view = self._view(name)
                if view.size == old.size:
                    view[:] = old
        self._has_weight_grad = weight_grad or not self.per_step

    def _view(self, name: str) -> np.ndarray:
        span = getattr(self._net.plan, SPAN_NAMES.get(name, name))
        raw = self._arena.view(np.uint8)[span.offset:span.offset + span.bytes]
        return raw.view(ARENA_BUFFERS[name])

    def _parameter(self, at: str, dtype, count) -> list[np.ndarray]:
        out = []
        for l in range(self._net.layer_count):
            ly = self._net.layers[l]
            start = getattr(ly, at)
            n = count(ly)
            out.append(self._blob[start:start + n * np.dtype(dtype).itemsize].view(dtype))
        return out

    @property
    def weights(self) -> np.ndarray:
        return np.concatenate(self._parameter("weights_at", np.int16, lambda ly: ly.n_in * ly.n_out))

    @property
    def thresholds(self) -> np.ndarray:
        return np.concatenate(self._parameter("thresholds_at", np.int32, lambda ly: ly.n_out))

    @property
    def leaks(self) -> np.ndarray:
        return np.concatenate(self._parameter("leak_at", np.int32, lambda ly: 1)).astype(np.int64)

    @property
    def rng_input(self) -> np.ndarray:
        return np.array([self._net.rng_input], dtype=np.uint32)

    @property
    def rng_learn(self) -> np.ndarray:
        return np.array([self._net.rng_learn], dtype=np.uint32)

    @property
    def lr_shifts(self) -> np.ndarray:
        return np.array(list(self._net.lr_shift), dtype=np.int64)

    def arena_bytes(self) -> int:
        """What the C runtime reserves in its arena for this model (el_plan_t.total)."""
        return int(self._net.plan.total)

    def buffers(self) -> dict[str, np.ndarray]:
        """Every array the runtime holds, by name: the parameters (copies of the blob's
        sections), the arena buffers (live views) and the PRNG states."""
        return {"weights": self.weights, "thresholds": self.thresholds, "leaks": self.leaks,
                **{name: self._view(name) for name in ARENA_BUFFERS},
                "rng_input": self.rng_input, "rng_learn": self.rng_learn}

    def _run(self, sample, label: int, learn: bool, per_step: bool) -> np.ndarray:
        rows = np.ascontiguousarray(as_rows(np.asarray(sample)), dtype=np.uint8)
        st = self._m.lib.el_run_sample(self._net, self._m.ffi.from_buffer("uint8_t[]", rows), rows.shape[0],
                                       label, learn, per_step)
        if st != self._m.lib.EL_OK:
            raise NativeError(st, "el_run_sample failed")
        return self._view("scores").copy()

    def run(self, samples: np.ndarray, labels: np.ndarray | None, learn: bool) -> np.ndarray:
        """Present a batch (one sample: online learning); return scores [B, classes].
        A batch of B > 1 accumulates and applies once, B must be a power of two."""
        B = len(samples)
        if learn and B > 1 and B & (B - 1):
            raise ValueError(f"fixed-point batches must be a power of two, got {B}")
        per_step = self.per_step and B == 1
        borrowed = learn and not per_step and not self._has_weight_grad   # as FixedSTOP lends gW
        if borrowed:
            self._init(weight_grad=True, keep_state=True)
        out = np.stack([self._run(samples[b], int(labels[b]) if learn else -1, learn, per_step)
                        for b in range(B)])
        if learn and not per_step:
            self._m.lib.el_apply_accumulated(self._net, B.bit_length() - 1)
        if borrowed:
            self._init(weight_grad=False, keep_state=True)
        return out

    def slow_down(self) -> None:
        """Halve every learning rate: one more right shift."""
        self._m.lib.el_slow_down(self._net)

    def blob(self) -> bytes:
        """The model file with the learned parameters and rates (CRC refreshed)."""
        self._m.lib.el_seal(self._net)
        return self._blob.tobytes()

    def to_model(self) -> Model:
        learned = from_blob(self.blob())
        out = self.model.copy()
        out.params = learned.params
        shifts = self.lr_shifts
        out.learning = replace(out.learning, lr_weight_shift=int(shifts[0]),
                               lr_threshold_shift=int(shifts[1]), lr_leak_shift=int(shifts[2]))
        return out.validate()


class NativeSPIDE(NativeSTOP):
    """SPIDE in the C runtime: the interface of FixedSPIDE (``run``, ``buffers``,
    ``to_model``, ``slow_down``, ``health``, ``loop_gain``), the arithmetic of the device."""

    exactness = "bit-exact: the C runtime of targets/c, which implements docs/spide.md"

    def __init__(self, model: Model):
        from .learning.spide_float import check_spide_model, not_contractive

        check_spide_model(model)
        self.model = model
        self._m = load_native()
        self._blob = _aligned_bytes(to_blob(model))
        self.per_step = False
        self._net = self._m.ffi.new("el_net_t *")
        self._init(weight_grad=False)
        gain = self.loop_gain()             # as FixedSPIDE: refused when the loop does not contract
        if gain >= 1.0:
            raise not_contractive(gain)

    @property
    def lr_shift(self) -> int:
        return int(self._net.lr_shift[0])

    @property
    def scores(self) -> np.ndarray:
        return self._view("scores").copy()

    def buffers(self) -> dict[str, np.ndarray]:
        """Every array the runtime holds while training, by name (FixedSPIDE's names): the
        parameters (copies of the blob's sections), the arena buffers (live views; the
        layer table raw, the edge table as [edges, 5]) and the PRNG states."""
        out = {"weights": self.weights, "thresholds": self.thresholds, "leaks": self.leaks}
        for name, span in ARENA_BUFFERS.items():
            if getattr(self._net.plan, SPAN_NAMES.get(name, name)).bytes or name in SPIDE_BUFFERS:
                out[name] = self._view(name)
        out["edge_table"] = out["edge_table"].reshape(-1, 5)
        out["rng_input"], out["rng_learn"] = self.rng_input, self.rng_learn
        return out

    def _run(self, sample, label: int, learn: bool, per_step: bool = False) -> np.ndarray:
        from .learning.spide_fixed import H_DEAD_RUN
        from .learning.spide_float import DEAD_WINDOW, dead_equilibrium, diverged

        rows = np.ascontiguousarray(as_rows(np.asarray(sample)), dtype=np.uint8)
        st = self._m.lib.el_spide_run_sample(self._net, self._m.ffi.from_buffer("uint8_t[]", rows), rows.shape[0],
                                             label, learn)
        if st != self._m.lib.EL_OK:
            raise NativeError(st, "el_spide_run_sample failed")
        health = self._view("health")
        if learn and health[H_DEAD_RUN] >= DEAD_WINDOW:
            raise diverged(dead_equilibrium(int(health[H_DEAD_RUN])))
        return self._view("scores").copy()

    def run(self, samples: np.ndarray, labels: np.ndarray | None, learn: bool) -> np.ndarray:
        """Present samples one after the other; learn online when asked. Returns the readout
        scores o (Q16), [B, classes]."""
        if learn and len(samples) > 1:
            raise ValueError("fixed-point SPIDE learns online (batch 1): its gradient scale is chosen per sample")
        return np.stack([self._run(x, int(labels[b]) if learn else -1, learn) for b, x in enumerate(samples)])

    def loop_gain(self) -> float:
        """The feedback loop's gain bound (el_spide_loop_gain, Q16 / ONE)."""
        return self._m.lib.el_spide_loop_gain(self._net) / 65536

    def health(self, reset: bool = False) -> dict:
        """The health signals since construction (or the last reset; docs/spide.md §7)."""
        from .learning.spide_fixed import read_health
        return read_health(self._view("health"), self.model.learning.T, self.loop_gain(), reset)

    def slow_down(self) -> None:
        """Halve the learning rate: one more right shift (SPIDE has only the weights')."""
        self._m.lib.el_slow_down(self._net)

    def to_model(self) -> Model:
        learned = from_blob(self.blob())
        out = self.model.copy()
        for layer in out.layers:
            out.params[layer.name].weight = learned.params[layer.name].weight.copy()
        out.learning = replace(out.learning, lr_weight_shift=self.lr_shift)
        return out.validate()


SPIDE_BUFFERS = ("layer_table", "edge_table", "membrane", "current", "spikes", "nonzero_index", "scores", "error",
                 "input_current", "spikes_prev", "count", "half_count", "mask", "edge_current", "input", "input_sum",
                 "output_gradient", "drive", "back_membrane", "back_spikes", "back_spikes_prev", "back_count",
                 "back_input", "back_sum", "row_sums", "row_gains", "loop_gains", "health")

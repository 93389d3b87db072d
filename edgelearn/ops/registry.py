"""The registry of operation kinds: what a neuron or a layer kind is, for every executor.

A kind is one module per executor (the float step and the fixed step in Python, the C
kernel in targets/c) plus one entry here. The entry carries what the rest of edgelearn
derives from it: the blob code (codes only ever append: a code given to a device keeps
its meaning), the properties the model checks read, the ``Params``/``State`` records
whose docstrings state the equations, the name of the C symbol, the arena buffers the
kind keeps per neuron (edgelearn.plan sums them) and each executor's exactness.

Fixed-point neuron steps share one signature. The drivers receive one compiled function,
``neuron_dispatch()``, that steps a layer of any registered kind by its code: registering
a kind is enough for the float and fixed executors to run it."""
from __future__ import annotations

import importlib.util
import inspect
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable

from numba import types
from numba.core.errors import NumbaExperimentalFeatureWarning
from numba.core.types import WrapperAddressProtocol
from numba.extending import typeof_impl

from .. import buildcache

# numba's first-class functions (a compiled function passed as an argument) are marked
# experimental; they are what lets a registered kind run without editing the drivers.
warnings.filterwarnings("ignore", category=NumbaExperimentalFeatureWarning)


class Exactness(Enum):
    """How an executor of a kind relates to docs/numerics.md."""
    MATH = "float64 twin: states the mathematics, not bit-exact with the device"
    BIT = "bit-exact with the numeric contract"


# step_fixed(cur, leak, th, reset_shift, V, s, U): every neuron kind's fixed-point step
FIXED_STEP_SIGNATURE = types.void(types.int32[::1], types.int64, types.int32[::1], types.int64,
                                  types.int32[::1], types.uint8[::1], types.int32[::1])
# neuron_step(code, cur, leak, th, reset_shift, V, s, U): the step of the kind with that code
DISPATCH_SIGNATURE = types.void(types.int64, *FIXED_STEP_SIGNATURE.args)
DISPATCH_TYPE = types.FunctionType(DISPATCH_SIGNATURE)


@dataclass(frozen=True)
class NeuronKind:
    name: str
    code: int                       # the blob's neuron code
    spiking: bool                   # emits spikes (else a non-spiking readout)
    leak_fixed_at_one: bool         # the leak is not a parameter (IF)
    readout_only: bool              # may only be the last layer
    Params: type
    State: type
    step_float: Callable            # (current, State, Params) -> (output, State); float64
    step_fixed: Callable            # FIXED_STEP_SIGNATURE, njit: the bit-exact reference
    c_symbol: str                   # its C twin in targets/c
    buffers: tuple[str, ...]        # arena buffers (edgelearn.plan) it keeps, one element per neuron
    exactness: dict = field(default_factory=lambda: {"float": Exactness.MATH, "fixed": Exactness.BIT,
                                                     "c": Exactness.BIT})
    memoryless: bool = False        # its potential is this step's current (no leak, no reset): STOP's threshold
                                    # and leak traces, which follow a membrane's memory, do not apply


# A layer kind's fixed-point operations, each with one signature for every kind (the drivers
# call them by the layer's code through the generated edgelearn.ops.builtin_layers, and the C
# runtime through el_layers.h): op -> (its arguments, what it does). ``g`` is the layer's window
# row (ops/layers/window.py; ignored by dense), ``W`` its weight matrix [rows, cols].
LAYER_OPS = {
    "forward": ("W, x, s, x_frac, w_frac, g, nonzero, plane, cur, out",
                "one step: the currents ``cur`` of its input x (kinds with neurons), or the output values ``out`` "
                "of the spikes s of the layer below (pools)"),
    "scan": ("W, x, x_frac, w_frac, g, neuron, leak, th, reset_shift, V, s, U, cur, rec_tr",
             "one step that runs its neurons itself, as it scans them (scan2d): currents, the steps of the "
             "neurons of kind ``neuron``, and, when learning (rec_tr not empty), its own spikes' traces"),
    "sums": ("W, x, g, nonzero, n, sums",
             "the exact sums W x over the n inputs listed in ``nonzero`` (an input the same all sample)"),
    "refresh": ("W, x, g, d, nonzero, sums", "the sums of the units (rows, channels) with non-zero errors d"),
    "back": ("W, d, g, s, back", "the errors d of its outputs carried onto its inputs (back, unsaturated "
             "int64; s: its input spikes); returns how many d were non-zero"),
    "update": ("W, d, x_tr, g, shift, rng, nonzero, plane", "W -= SR(gradient, shift) now (per-step updates)"),
    "grads": ("gW, d, x_tr, g, nonzero", "gW += gradient, exact saturating sums (per-sample updates)"),
    "filter": ("W, x, x_frac, w_frac, taps, dilation, pos, ring, x_ring, nonzero, cur",
               "one step of a kind with a history (psn): the currents W x into the ring of recent currents at "
               "``pos``, their filter through the taps into ``cur`` (its neurons' input), and, when learning "
               "(x_ring not empty), x into the ring of recent inputs"),
    "lag0": ("taps, d, out", "the errors d as the inputs of this step see them (the lag-0 taps; later lags "
             "are detached)"),
    "ring_update": ("W, d, taps, dilation, pos, x_ring, shift, rng",
                    "W -= SR(d e, shift) now, e the inputs' history filtered by each row's taps"),
    "ring_grads": ("gW, d, taps, dilation, pos, x_ring", "gW += d e, exact saturating sums (per-sample updates)"),
}
NEURON_OPS = ("forward", "back", "update", "grads")     # what a kind with neurons has
MAP_OPS = ("forward", "back")                           # a fixed map of its input (pooling)
SUMS_OPS = ("sums", "refresh")                          # a kind that keeps the sums of a direct input
SCAN_OPS = ("scan", "back", "update", "grads")          # a kind that steps its own neurons as it scans them
FILTER_OPS = ("filter", "lag0", "back", "ring_update", "ring_grads")   # a kind with a history (rings)


def input_traces(n_in: int, n_out: int, ring: int) -> int:
    """A layer's presynaptic traces: one per input (``ring``: a history kind's ring length, else 0)."""
    return n_in


@dataclass(frozen=True)
class LayerKind:
    """How a layer turns its input into its neurons' currents (dense, conv2d), or, for a kind
    without neurons, into its output values (the pools), in every executor."""
    name: str
    code: int                       # the blob's layer code
    has_neurons: bool               # a population with weights, thresholds and a leak; else a fixed map
    windowed: bool                  # a kernel window over a [C, H, W] source (ops/layers/window.py)
    weight_shape: Callable          # (n_out, fan_in, geometry) -> (rows, cols) of its int16 weight matrix
    check: Callable                 # (where, binary_source, geometry) -> None, or ModelError: its own rules
    out_frac: Callable              # (geometry) -> fractional bits of the values it writes (0: spikes)
    forward_float: Callable         # (W, x, geometry) -> currents or output values [B, n_out]; float64
    back_float: Callable            # (W, d, geometry, x) -> the errors d of its outputs onto its inputs
    grad_float: Callable            # (d, x_tr, geometry) -> (rows touched, their weight gradients)
    fixed: dict                     # op (LAYER_OPS) -> its njit function: the bit-exact reference
    c_ops: dict                     # op -> its C twin in targets/c, with the C dispatch's signature
    scratch: Callable               # (n_in, geometry) -> {buffer: elements}: its ..._buffer_size companion
    c_scratch: str                  # its C twin, the loader's: (ly, *nonzero, *plane) elements
    keeps_sums: bool = False        # layer 0 keeps the exact W x of a direct input for the sample (§5b)
    scan_float: Callable | None = None   # a kind that steps its own neurons in a scan (scan2d): the float step
    traces: Callable = input_traces      # (n_in, n_out, ring) -> its input traces (STOP's x^; psn: its input ring)
    history: bool = False           # it keeps rings of its recent currents and inputs (psn): FILTER_OPS, and a
                                    # FILTER section (taps, dilation) in the blob
    c_window_check: str | None = None   # a window kind's C loader check: weight_shape, check, out_frac in one
    exactness: dict = field(default_factory=lambda: {"float": Exactness.MATH, "fixed": Exactness.BIT,
                                                     "c": Exactness.BIT})

    def __post_init__(self):
        if self.windowed != (self.c_window_check is not None):
            raise ValueError(f"layer kind {self.name!r}: a window kind (only) has a c_window_check")
        if self.history and (self.keeps_sums or self.scans):
            raise ValueError(f"layer kind {self.name!r}: a kind with a history filters its own currents (no sums, "
                             "no scan)")
        ops = set(FILTER_OPS if self.history else SCAN_OPS if self.scans else NEURON_OPS if self.has_neurons
                  else MAP_OPS) \
            | (set(SUMS_OPS) if self.keeps_sums else set())
        for table in (self.fixed, self.c_ops):
            if set(table) != ops:
                raise ValueError(f"layer kind {self.name!r}: ops {tuple(table)}, expected {ops}")

    @property
    def scans(self) -> bool:
        """It steps its own neurons, one by one in a scan order (the driver does not)."""
        return self.scan_float is not None


NEURONS: dict[str, NeuronKind] = {}
LAYERS: dict[str, LayerKind] = {}


def _register(table: dict, kind) -> None:
    if kind.name in table:
        raise ValueError(f"kind {kind.name!r} is registered already")
    if kind.code != len(table):
        raise ValueError(f"kind {kind.name!r} has code {kind.code}; the next free code is {len(table)} "
                         "(codes only ever append)")
    table[kind.name] = kind


def register_neuron(kind: NeuronKind) -> NeuronKind:
    _register(NEURONS, kind)
    return kind


def register_layer(kind: LayerKind) -> LayerKind:
    _register(LAYERS, kind)
    return kind


@contextmanager
def registered_neuron(kind: NeuronKind):
    """A kind registered for the duration of a block (tests, experiments)."""
    register_neuron(kind)
    try:
        yield kind
    finally:
        del NEURONS[kind.name]


def spiking_neurons() -> tuple[str, ...]:
    return tuple(k.name for k in NEURONS.values() if k.spiking)


class NeuronDispatch(WrapperAddressProtocol):
    """The compiled ``neuron_step`` of a set of kinds, as numba passes a first-class function:
    by the address of its C-callable wrapper (looked up once) and its signature. Drivers are
    compiled (and cached) against the signature, so one compiled driver serves every set."""

    def __init__(self, dispatcher):
        self.dispatcher = dispatcher
        self._address = None

    def __wrapper_address__(self) -> int:
        if self._address is None:
            cres = self.dispatcher.get_compile_result(DISPATCH_SIGNATURE)
            self._address = cres.library.get_pointer_to_function(cres.fndesc.llvm_cfunc_wrapper_name)
        return self._address

    def signature(self):
        return DISPATCH_SIGNATURE


@typeof_impl.register(NeuronDispatch)
def _typeof_dispatch(val, c):
    return DISPATCH_TYPE           # known in advance: no per-call type inference


_DISPATCH: dict[tuple, NeuronDispatch] = {}


def neuron_dispatch() -> NeuronDispatch:
    """One compiled function that steps a layer of any registered kind by its code. It is
    generated from the registry into a module file in the build cache, so numba caches it
    like any other kernel; a new set of kinds (or an edited step) is a new file."""
    kinds = sorted(NEURONS.values(), key=lambda k: k.code)
    refs = tuple((k.code, k.step_fixed.py_func.__module__, k.step_fixed.py_func.__qualname__,
                  inspect.getsource(k.step_fixed.py_func)) for k in kinds)
    if refs not in _DISPATCH:
        _DISPATCH[refs] = NeuronDispatch(_load_dispatch(refs))
    return _DISPATCH[refs]


def extension_dispatch(builtin_codes: tuple):
    """What the drivers receive for the kinds they do not have compiled in
    (``edgelearn.ops.builtin_steps``): None when every registered kind is built in (numba
    prunes the call, and passing None costs nothing), else ``neuron_dispatch()``."""
    if all(k.code in builtin_codes for k in NEURONS.values()):
        return None
    return neuron_dispatch()


def _dispatch_source(refs: tuple) -> str:
    lines = ['"""GENERATED by edgelearn.ops.registry.neuron_dispatch: the fixed step of each',
             'registered neuron kind, by its code. Do not edit; a new set of kinds is a new file."""',
             "import importlib", "", "from numba import njit", ""]
    lines += [f"step_{code} = getattr(importlib.import_module({module!r}), {name!r})"
              for code, module, name, _ in refs]
    lines += ["", "", "@njit(cache=True)", "def neuron_step(code, cur, a, th, reset_shift, V, s, U):"]
    for i, (code, *_) in enumerate(refs):
        lines += [f"    {'if' if i == 0 else 'elif'} code == {code}:",
                  f"        step_{code}(cur, a, th, reset_shift, V, s, U)"]
    return "\n".join(lines) + "\n"


def _load_dispatch(refs: tuple):
    source = _dispatch_source(refs)
    name = "neuron_dispatch_" + buildcache.key(texts=[source, *(src for *_, src in refs)])
    directory = buildcache.cached("dispatch", name, lambda d: (d / f"{name}.py").write_text(source))
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, directory / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name].neuron_step

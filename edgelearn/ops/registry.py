"""The registry of operation kinds: what a neuron or a layer kind is, for every executor.

A kind is one module per executor (the float step and the fixed step in Python, the C
kernel in targets/c) plus one entry here. The entry carries what the rest of edgelearn
derives from it: the blob code (codes only ever append: a code given to a device keeps
its meaning), the properties the model checks read, the ``Params``/``State`` records
whose docstrings state the equations, the name of the C symbol, the arena buffers the
kind keeps per neuron (edgelearn.plan sums them) and each executor's exactness.

Fixed-point neuron steps share one signature, so the drivers call whichever kind a
layer has through a tuple of compiled functions indexed by the code (``fixed_steps``):
registering a kind is enough for the float and fixed executors to run it."""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable

from numba import types
from numba.core.errors import NumbaExperimentalFeatureWarning

# numba's first-class functions (a tuple of kernels indexed at run time) are marked
# experimental; they are what lets a registered kind run without editing the drivers.
warnings.filterwarnings("ignore", category=NumbaExperimentalFeatureWarning)


class Exactness(Enum):
    """How an executor of a kind relates to docs/numerics.md."""
    MATH = "float64 twin: states the mathematics, not bit-exact with the device"
    BIT = "bit-exact with the numeric contract"


# step_fixed(cur, leak, th, reset_shift, V, s, U): every neuron kind's fixed-point step
FIXED_STEP_SIGNATURE = types.void(types.int32[::1], types.int64, types.int32[::1], types.int64,
                                  types.int32[::1], types.uint8[::1], types.int32[::1])


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


@dataclass(frozen=True)
class LayerKind:
    name: str
    code: int                       # the blob's layer code
    current_float: Callable         # (W, x) -> currents; float64
    current_fixed: Callable         # njit: the bit-exact reference
    c_symbol: str
    scratch: Callable               # (n_in, n_out) -> {buffer: elements}: its ..._buffer_size companion
    exactness: dict = field(default_factory=lambda: {"float": Exactness.MATH, "fixed": Exactness.BIT,
                                                     "c": Exactness.BIT})


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


def neuron_kind(name: str) -> NeuronKind:
    return NEURONS[name]


def neuron_names() -> tuple[str, ...]:
    return tuple(NEURONS)


def spiking_neurons() -> tuple[str, ...]:
    return tuple(k.name for k in NEURONS.values() if k.spiking)


def fixed_steps() -> tuple:
    """Every kind's fixed step, indexed by its code (the drivers' dispatch table)."""
    return tuple(k.step_fixed for k in sorted(NEURONS.values(), key=lambda k: k.code))

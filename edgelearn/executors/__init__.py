"""Executors: one behaviour (a learning rule on a model), several implementations that
declare how exact they are (Lava's process / process-model split).

    float   the float64 twin: the mathematics, not bit-exact (Exactness.MATH)
    fixed   the fixed-point reference in Python/numba: the numeric contract (BIT)
    c       the C runtime of targets/c built for this host: the device's code (BIT)
    hdl     the FPGA core of targets/hdl generated for the model, in a simulator (BIT; SIMULATED)

Boards (QEMU, native firmware, real hardware) are reached through firmware_host's link,
which runs the same C runtime as ``c``. Every executor implements ``Learner``; tests are
parametrised over ``EXECUTORS`` and every BIT executor replays the same golden vectors."""
from __future__ import annotations

import inspect
from typing import Protocol

import numpy as np

from ..errors import ModelError
from ..model import Model
from ..ops import LAYERS, NEURONS, Exactness
from ..plan import runtime_of
from ..rules.spide.fixed import FixedSPIDE
from ..rules.spide.float import FloatSPIDE
from ..rules.stop.fixed import FixedSTOP
from ..rules.stop.float import FloatSTOP
from .c import NativeSPIDE, NativeSTOP
from .hdl import HdlSTOP


class Learner(Protocol):
    """What every executor of every rule offers."""
    model: Model
    exactness: Exactness

    def run(self, samples: np.ndarray, labels: np.ndarray | None, learn: bool) -> np.ndarray:
        """Present a batch, learn when asked; the readout's scores [B, classes]."""

    def health(self, reset: bool = False) -> dict:
        """The rule's health signals ({} for a rule that has none)."""

    def buffers(self) -> dict[str, np.ndarray]:
        """Every array it holds while training, by the C runtime's names."""

    def to_model(self) -> Model:
        """The learned parameters as a model."""


EXECUTORS: dict[str, dict[str, type]] = {     # executor -> runtime -> class
    "float": {"stop": FloatSTOP, "spide": FloatSPIDE},
    "fixed": {"stop": FixedSTOP, "spide": FixedSPIDE},
    "c": {"stop": NativeSTOP, "spide": NativeSPIDE},
}
TWIN = {"fixed": "float", "float": "fixed", "c": "float"}     # what a run is checked against beside it
# Executors that simulate hardware: bit-exact, but each first builds its model's RTL in a simulator
# (verilator: tens of seconds a structure, cached) and then runs it cycle by cycle, so they stay out
# of EXECUTORS, which the suite's parametrised tests and the train and eval verbs take one by one;
# make_learner reaches them, and tests/test_hdl_*.py test them (docs/fpga.md). Their kinds are the
# RTL's: the simulated executor refuses a layer whose kind it has no module for, naming it.
SIMULATED: dict[str, dict[str, type]] = {"hdl": {"stop": HdlSTOP}}


def exactness(executor: str) -> Exactness:
    return next(iter(EXECUTORS[executor].values())).exactness


def bit_exact() -> tuple[str, ...]:
    return tuple(name for name in EXECUTORS if exactness(name) is Exactness.BIT)


def options(executor: str, runtime: str) -> tuple[str, ...]:
    """The keyword options an executor of a runtime takes: its class's keyword-only
    parameters (FloatSTOP's ``regulariser`` and ``late_fraction``, the cutoff's RCS term)."""
    parameters = inspect.signature({**EXECUTORS, **SIMULATED}[executor][runtime]).parameters.values()
    return tuple(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY)


def make_learner(model: Model, executor: str, **given) -> Learner:
    """The executor of the model's rule; refused when a layer's kind has no version for it,
    or when it does not take one of the ``given`` options (``options``)."""
    known = {**EXECUTORS, **SIMULATED}
    if executor not in known:
        raise ModelError(f"unknown executor {executor!r} (known: {', '.join(known)})")
    if runtime_of(model) not in known[executor]:
        raise ModelError(f"the {executor!r} executor runs the {', '.join(known[executor])} runtime, not rule "
                         f"{model.learning.rule!r}")
    takes = options(executor, runtime_of(model))
    for name in given:
        if name not in takes:
            raise ModelError(f"the {executor!r} executor of rule {model.learning.rule!r} takes no option {name!r}"
                             + (f" (it takes: {', '.join(takes)})" if takes else "")
                             + ("; the cutoff's regulariser trains in the float twin of STOP (--executor float)"
                                if name in options("float", "stop") else ""))
    for layer in model.layers:
        kinds = [("layer", LAYERS.get(layer.kind))] + ([("neuron", NEURONS.get(layer.neuron.kind))] if layer.neuron else [])
        for what, kind in kinds:
            if kind is not None and executor in EXECUTORS and executor not in kind.exactness:
                raise ModelError(f"layer {layer.name!r}: {what} kind {kind.name!r} has no {executor!r} executor "
                                 f"(it has: {', '.join(kind.exactness)})")
    runner = known[executor][runtime_of(model)]
    for layer in model.layers:
        if layer.weight_bits not in weight_bits(runner):
            raise ModelError(f"layer {layer.name!r}: int{layer.weight_bits} weights (weight_bits {layer.weight_bits}); "
                             f"the {executor!r} executor of rule {model.learning.rule!r} stores only "
                             f"{' and '.join(f'int{b}' for b in weight_bits(runner))} weights")
    return runner(model, **given)


def weight_bits(runner: type) -> tuple[int, ...]:
    """The weight storage widths an executor's class declares (``weight_bits``); int16 when it
    declares none: an executor computes a narrow layer only when it says it does."""
    return getattr(runner, "weight_bits", (16,))

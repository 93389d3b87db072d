"""Learning rules. Each is a spec (model checks, constants: ``spec.py``), fixed-point
kernels (``kernels.py``), a float64 twin (``float.py``) and the bit-exact driver
(``fixed.py``); docs/architecture.md. This package maps a model's rule to its spec."""
from __future__ import annotations

from ..model import Model, init_params
from .spide import spec as spide_spec
from .stop import spec as stop_spec

SPECS = {rule: spec for spec in (stop_spec, spide_spec) for rule in spec.RULES}     # rule -> its spec
RULE_RUNTIME = {rule: spec.RUNTIME for rule, spec in SPECS.items()}
RUNTIMES = tuple(dict.fromkeys(RULE_RUNTIME.values()))    # in code order: stop, spide


def spec_of(model: Model):
    return SPECS[model.learning.rule]


def check(model: Model) -> Model:
    """The model checks of the runtime that runs the model's rule; returns the model."""
    spec_of(model).check(model)
    return model


def init_model(model: Model, weight_gain: float = 1.5) -> Model:
    """Seeded initial parameters (``init_params``), then the rule's own start."""
    init_params(model, weight_gain)
    spec_of(model).start(model)
    return model.validate()

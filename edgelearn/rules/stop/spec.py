"""STOP's spec: what the STOP runtime runs, and its constants (docs/numerics.md §6).

STOP (forward eligibility traces, spatially-backward errors) runs feed-forward chains of
dense layers; rules 'readout' (the last layer learns) and 'none' (inference) use the same
runtime. The executors (float.py, fixed.py, the C runtime) import this module, never the
reverse."""
from __future__ import annotations

import numpy as np

from ...errors import ModelError
from ...model import Model
from ...numerics import ONE

THRESHOLD_FLOOR = 1.0 / 16              # a learned threshold never falls below this
THRESHOLD_FLOOR_Q16 = ONE // 16
RUNTIME = "stop"                        # the runtime (edgelearn.plan) and its arena
RULES = ("stop", "readout", "none")     # the rules it runs


def check(model: Model) -> None:
    """Refuse, with a reason, what the STOP runtimes cannot run."""
    model.validate()
    if model.learning.rule not in RULES:
        raise ModelError(f"a {model.learning.rule!r} model runs on the SPIDE runtime, not STOP's")
    if not model.is_feedforward_chain():
        raise ModelError("STOP runs feed-forward chains of dense layers; this model has "
                         "branches or feedback edges")


def cutoff_margins(model: Model) -> np.ndarray:
    """The model's cutoff margins as int64 [T] (docs/numerics.md §6b); a ModelError saying
    how to get them when the model has none."""
    if model.cutoff is None:
        raise ModelError(f"model {model.name!r} has no cutoff: calibrate it first "
                         "(edgelearn calibrate MODEL --data D --tolerance E)")
    if len(model.cutoff.margins) != model.learning.T:
        raise ModelError(f"cutoff: {len(model.cutoff.margins)} margins for T = {model.learning.T} steps; "
                         "recalibrate for this T (edgelearn calibrate)")
    return np.asarray(model.cutoff.margins, dtype=np.int64)


def trainable(model: Model) -> list[bool]:
    """Which layers learn: stop, every one; readout, the last; none, none."""
    rule, L = model.learning.rule, len(model.layers)
    return [rule == "stop" or (rule == "readout" and l == L - 1) for l in range(L)]


def start(model: Model) -> None:
    """Nothing to adjust in freshly initialised parameters."""

"""The learning-rate schedule as every host executor runs it (docs/numerics.md §6c): the
model's base shifts, its step decay, and the count of samples learned, which moves the
decay on. The C runtime keeps the same count in the blob's SCHEDULE section."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..contract import MAX_LEARNED, MAX_LR_SHIFT
from ..model import Model, Schedule


class LearningRates:
    """The effective shifts of the weight, threshold and leak rates (real rate 2^-shift)."""

    def __init__(self, model: Model):
        lr = model.learning
        self.base = np.array([lr.lr_weight_shift, lr.lr_threshold_shift, lr.lr_leak_shift], dtype=np.int64)
        self.schedule = model.schedule
        self.learned = model.schedule.learned if model.schedule is not None else 0

    def shifts(self) -> np.ndarray:
        """int64 [3]: base + min(learned // every, steps), each at most MAX_LR_SHIFT."""
        if self.schedule is None:
            return self.base.copy()
        decay = min(self.learned // self.schedule.every, self.schedule.steps)
        return np.minimum(self.base + decay, MAX_LR_SHIFT)

    def rates(self) -> np.ndarray:
        """float64 [3]: the real rates 2^-shift (the float twins' step sizes)."""
        return np.ldexp(1.0, -self.shifts())

    def count(self, samples: int = 1) -> None:
        """``samples`` more were learned (a model without a schedule counts nothing)."""
        if self.schedule is not None:
            self.learned = min(self.learned + samples, MAX_LEARNED)

    def state(self) -> Schedule | None:
        """The model's schedule with the count reached, for ``to_model``."""
        return None if self.schedule is None else replace(self.schedule, learned=self.learned)

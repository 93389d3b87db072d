"""The host's training loop: epochs over a dataset for any executor (the ``Learner``
protocol of edgelearn.executors), with a progress bar,
per-epoch results, the learner's health signals (SPIDE) and checks for failures that
freeze training (silent outputs, a collapsed readout)."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm import tqdm

from .datasets import Dataset
from .errors import TrainingDiverged
from .executors import Learner, make_learner
from .model import Model
from .ops import NEURONS

__all__ = ["EpochResult", "TrainingDiverged", "predict", "predictions", "evaluate", "train", "make_learner", "warm_up"]


@dataclass
class EpochResult:
    epoch: int
    # predictions made while learning each sample: per-step updates adapt to its label
    # within the sample, so this is not a held-out figure (test_accuracy is)
    train_accuracy_while_learning: float
    test_accuracy: float
    silent_fraction: float         # training samples whose readout never fired
    seconds: float
    health: dict = field(default_factory=dict)   # the learner's health signals this epoch, if it has any

    def as_dict(self) -> dict:
        return asdict(self)


def predict(scores: np.ndarray) -> np.ndarray:
    """The class with the highest score; ties go to the lowest index (as on the device)."""
    return np.argmax(scores, axis=1)


def predictions(net: Learner, x: np.ndarray, batch: int = 1) -> np.ndarray:
    return np.concatenate([predict(net.run(x[i:i + batch], None, learn=False)) for i in range(0, len(x), batch)])


def evaluate(net: Learner, x: np.ndarray, y: np.ndarray, batch: int = 1) -> float:
    return float(np.mean(predictions(net, x, batch) == y))


def train(net: Learner, data: Dataset, epochs: int, *, batch: int = 1, slow_down_every: int = 0,
          shuffle_seed: int = 0, progress: bool = True, label: str = "",
          position: int = 0) -> list[EpochResult]:
    """Train ``net`` in place; returns one result per epoch. Raises TrainingDiverged
    when an epoch left every readout neuron silent, or the readout predicts one class for
    every test sample (the learning rate was too large)."""
    history = []
    spiking_readout = NEURONS[net.model.readout.neuron.kind].spiking
    for epoch in range(epochs):
        if slow_down_every and epoch and epoch % slow_down_every == 0:
            net.slow_down()
        order = np.random.default_rng(shuffle_seed + epoch).permutation(len(data.x_train))
        # whole batches only (fixed point divides by B with a shift); the epoch's leftover
        # samples are reshuffled into the next one
        order = order[:len(order) - len(order) % batch] if len(order) >= batch else order
        start, correct, silent = time.perf_counter(), 0, 0
        bar = tqdm(range(0, len(order), batch), desc=f"{label} epoch {epoch + 1}/{epochs}".strip(),
                   unit="batch" if batch > 1 else "sample", disable=not progress, leave=False,
                   position=position)
        for i in bar:
            idx = order[i:i + batch]
            scores = net.run(data.x_train[idx], data.y_train[idx], learn=True)
            correct += int(np.sum(predict(scores) == data.y_train[idx]))
            silent += int(np.sum(~scores.any(axis=1)))
        guesses = predictions(net, data.x_test)
        test = float(np.mean(guesses == data.y_test))
        result = EpochResult(epoch + 1, correct / len(order), test, silent / len(order),
                             time.perf_counter() - start,
                             net.health(reset=True))
        history.append(result)
        if spiking_readout and result.silent_fraction == 1.0:
            raise TrainingDiverged(
                f"epoch {epoch + 1}: every readout neuron stayed silent for every sample; the "
                "weights were driven below threshold and the surrogate gradient is zero. "
                "Use a smaller learning rate (a larger --lr-shift) or a wider surrogate.")
        # one class for every test sample is a collapse once the test set is large
        # enough (5 samples per class) for that to be no accident of a tiny sample
        classes = len(np.unique(data.y_test))
        if classes > 1 and len(guesses) >= 5 * classes and np.all(guesses == guesses[0]):
            raise TrainingDiverged(
                f"epoch {epoch + 1}: every test sample was predicted as class {int(guesses[0])}; "
                "the readout collapsed onto one neuron. Use a smaller learning rate (a larger --lr-shift).")
    return history


def warm_up(model: Model, executor: str, data: Dataset) -> float:
    """Compile the kernels on a throwaway copy (the model's own state and PRNG streams
    stay untouched), so that epoch times measure training, not JIT compilation.
    Returns the seconds it took."""
    start = time.perf_counter()
    make_learner(model.copy(), executor).run(data.x_train[:1], data.y_train[:1], learn=True)
    return time.perf_counter() - start

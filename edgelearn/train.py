"""The host's training loop: epochs over a dataset for any executor (the ``Learner``
protocol of edgelearn.executors), with a progress bar, per-epoch results on a held-out
validation split and the test split, the best model on validation, the learner's health
signals (SPIDE), and checks that say what is wrong and when (docs/training.md): a readout
that stays silent is reported during the first epoch with its likely cause and fix."""
from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
from tqdm import tqdm

from .adapt import spike_rows
from .augment import check_shift, shift_images
from .datasets import Dataset
from .errors import TrainingDiverged
from .executors import Learner, make_learner
from .model import Model
from .ops import NEURONS
from .plan import runtime_of
from .rules.schedule import LearningRates

__all__ = ["EpochResult", "Training", "TrainingDiverged", "predict", "predictions", "evaluate", "train",
           "make_learner", "warm_up", "silence_diagnosis"]

SILENT_WARNING = 0.5      # a readout silent on more than this share of training samples is warned about
PROBE_SAMPLES = 200       # ... checked after this many samples of the first epoch (or at its end)
SILENT_RATE = 0.02        # a hidden layer firing on fewer of its neuron-steps is too quiet to drive the next


@dataclass
class EpochResult:
    epoch: int
    # predictions made while learning each sample: per-step updates adapt to its label
    # within the sample, so this is not a held-out figure (validation and test are)
    train_accuracy_while_learning: float
    validation_accuracy: float | None    # on the split held out of the training data (None: no split)
    test_accuracy: float
    silent_fraction: float               # training samples whose readout never fired
    lr_weight_shift: int                 # the weight rate's effective shift at the epoch's end (§6c)
    seconds: float
    health: dict = field(default_factory=dict)   # the learner's health signals this epoch, if it has any

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Training:
    history: list[EpochResult]
    best: Model          # the learned model of the epoch best on validation (the last without a split)
    best_epoch: int      # 0: interrupted in the first epoch (best is then what was learned so far)
    warnings: list[str]  # what the health checks said, in order
    interrupted: bool = False    # stopped by Ctrl-C (KeyboardInterrupt); history holds the epochs completed


def predict(scores: np.ndarray) -> np.ndarray:
    """The class with the highest score; ties go to the lowest index (as on the device)."""
    return np.argmax(scores, axis=1)


def scores_of(net: Learner, x: np.ndarray, batch: int = 1) -> np.ndarray:
    return np.concatenate([net.run(x[i:i + batch], None, learn=False) for i in range(0, len(x), batch)])


def predictions(net: Learner, x: np.ndarray, batch: int = 1) -> np.ndarray:
    return predict(scores_of(net, x, batch))


def evaluate(net: Learner, x: np.ndarray, y: np.ndarray, batch: int = 1) -> float:
    return float(np.mean(predictions(net, x, batch) == y))


def silence_diagnosis(model: Model, samples: np.ndarray) -> str:
    """Why a spiking readout stays silent, from the spike rates the fixed-point reference
    gives each layer on ``samples``, and what to do about it."""
    if runtime_of(model) != "stop":
        return "Use a smaller learning rate (a larger --lr-shift)."
    rates = [float(r.mean()) for r in spike_rows(model, samples)]
    fired = ", ".join(f"{layer.name!r} {rate:.1%}" for layer, rate in zip(model.layers, rates))
    where = f"(spikes per neuron per step on {len(samples)} training samples: {fired})"
    for layer, rate in zip(model.layers[:-1], rates):
        if rate < SILENT_RATE:
            return (f"Layer {layer.name!r} is (nearly) silent too {where}: its input currents stay below "
                    "threshold, so almost nothing reaches the readout. Likely cause: the input scale (sparse or dim inputs, e.g. "
                    "event streams) or an initial weight gain tuned for other data. Fix: initialise from the "
                    "data (--init data, the default for a new model) or give the layer a lower threshold.")
    return (f"The layers below fire {where} but the readout does not: the learning rate is too large for "
            "this input (the updates drive the readout below threshold) or its initial gain too small. "
            f"Fix: a smaller learning rate (--lr-shift {model.learning.lr_weight_shift + 1} or more) or "
            "--init data.")


def train(net: Learner, data: Dataset, epochs: int, *, batch: int = 1, shuffle_seed: int = 0,
          progress: bool = True, label: str = "", position: int = 0,
          warn: Callable[[str], None] | None = None,
          on_epoch: Callable[[EpochResult], None] | None = None, augment_shift: int = 0) -> Training:
    """Train ``net`` in place for ``epochs``; the learning rates follow the model's schedule
    (docs/numerics.md §6c). With a validation split in ``data`` (``datasets.hold_out``), the
    best epoch on it is kept. A readout silent on more than SILENT_WARNING of the first
    PROBE_SAMPLES training samples is reported through ``warn`` (stderr by default) with its
    likely cause. ``augment_shift``: each epoch moves every training image by up to that many
    pixels (``edgelearn.augment``; image data only). ``on_epoch`` receives each epoch's result as it completes. Ctrl-C ends the
    run early with what was completed (``interrupted``). Raises TrainingDiverged when an epoch
    left every readout neuron silent, or the readout predicts one class for every test sample."""
    check_shift(augment_shift, data.shape, data.x_train)
    run = _Run(net, data, epochs, batch, shuffle_seed, progress, label, position,
               warn or (lambda text: tqdm.write(f"warning: {text}", file=sys.stderr)), augment_shift)
    history, best, best_epoch, best_accuracy, interrupted = [], None, 0, -1.0, False
    try:
        for epoch in range(epochs):
            result = run.epoch(epoch)
            history.append(result)
            if on_epoch is not None:
                on_epoch(result)
            if run.has_validation and result.validation_accuracy > best_accuracy:
                best, best_epoch, best_accuracy = net.to_model(), epoch + 1, result.validation_accuracy
    except KeyboardInterrupt:
        interrupted = True
    if best is None:            # no split (or no epoch completed): what was learned last
        best, best_epoch = net.to_model(), len(history)
    return Training(history, best, best_epoch, run.warnings, interrupted)


@dataclass
class _Run:
    """One ``train`` call's settings and the state its epochs share."""
    net: Learner
    data: Dataset
    epochs: int
    batch: int
    shuffle_seed: int
    progress: bool
    label: str
    position: int
    warn: Callable[[str], None]
    augment_shift: int = 0

    def __post_init__(self):
        self.warnings: list[str] = []
        self.rates = LearningRates(self.net.model)       # to report the schedule's shift per epoch
        self.spiking_readout = NEURONS[self.net.model.readout.neuron.kind].spiking
        self.has_validation = self.data.x_val is not None and len(self.data.x_val) > 0

    def epoch(self, epoch: int) -> EpochResult:
        net, data, batch = self.net, self.data, self.batch
        order = np.random.default_rng(self.shuffle_seed + epoch).permutation(len(data.x_train))
        x_train = shift_images(data.x_train, data.shape, self.augment_shift,
                               np.random.default_rng([self.shuffle_seed, epoch])) if self.augment_shift else data.x_train
        # whole batches only (fixed point divides by B with a shift); the epoch's leftover
        # samples are reshuffled into the next one
        order = order[:len(order) - len(order) % batch] if len(order) >= batch else order
        start, correct, silent, seen = time.perf_counter(), 0, 0, 0
        probe_at = min(PROBE_SAMPLES, len(order)) if epoch == 0 and self.spiking_readout else -1
        bar = tqdm(range(0, len(order), batch), desc=f"{self.label} epoch {epoch + 1}/{self.epochs}".strip(),
                   unit="batch" if batch > 1 else "sample", disable=not self.progress, leave=False,
                   position=self.position)
        for i in bar:
            idx = order[i:i + batch]
            scores = net.run(x_train[idx], data.y_train[idx], learn=True)
            correct += int(np.sum(predict(scores) == data.y_train[idx]))
            silent += int(np.sum(~scores.any(axis=1)))
            seen += len(idx)
            if seen >= probe_at > 0:
                probe_at = -1
                if silent / seen > SILENT_WARNING:
                    text = (f"epoch 1: the readout stayed silent on {silent / seen:.0%} of the first {seen} "
                            "training samples. " + silence_diagnosis(net.to_model(), data.x_train[order[:32]]))
                    self.warnings.append(text)
                    self.warn(text)
        self.rates.count(len(order))
        validation = evaluate(net, data.x_val, data.y_val) if self.has_validation else None
        test_scores = scores_of(net, data.x_test)
        guesses = predict(test_scores)
        result = EpochResult(epoch + 1, correct / len(order), validation, float(np.mean(guesses == data.y_test)),
                             silent / len(order), int(self.rates.shifts()[0]), time.perf_counter() - start,
                             net.health(reset=True))
        self.check(result, test_scores, data.x_train[order[:32]])
        return result

    def check(self, result: EpochResult, test_scores: np.ndarray, samples: np.ndarray) -> None:
        """Stop training that cannot recover, saying why (TrainingDiverged)."""
        epoch, guesses = result.epoch, predict(test_scores)
        if self.spiking_readout and result.silent_fraction == 1.0:
            raise TrainingDiverged(
                f"epoch {epoch}: every readout neuron stayed silent for every training sample, so the "
                "surrogate gradient is zero and nothing learns. " + silence_diagnosis(self.net.to_model(), samples))
        # one class for every test sample is a collapse once the test set is large
        # enough (5 samples per class) for that to be no accident of a tiny sample
        classes = len(np.unique(self.data.y_test))
        if classes > 1 and len(guesses) >= 5 * classes and np.all(guesses == guesses[0]):
            if self.spiking_readout and not test_scores.any():
                raise TrainingDiverged(
                    f"epoch {epoch}: the readout was silent on every test sample (so every prediction is "
                    "class 0, the lowest index). " + silence_diagnosis(self.net.to_model(), self.data.x_test[:32]))
            raise TrainingDiverged(
                f"epoch {epoch}: every test sample was predicted as class {int(guesses[0])}: the readout "
                "collapsed onto one neuron. Use a smaller learning rate (a larger --lr-shift) or --init data.")


def warm_up(model: Model, executor: str, data: Dataset) -> float:
    """Compile the kernels on a throwaway copy (the model's own state and PRNG streams
    stay untouched), so that epoch times measure training, not JIT compilation.
    Returns the seconds it took."""
    start = time.perf_counter()
    make_learner(model.copy(), executor).run(data.x_train[:1], data.y_train[:1], learn=True)
    return time.perf_counter() - start

"""Training and evaluating a PSN network from its model file (edgelearn.psnfile), the path of
``edgelearn train`` / ``eval`` for PSN models (docs/psn.md §7):

- rule "host": the stack through time on the host (edgelearn/psn_bptt.py: Adam on the cross-entropy
  of the summed readout, taps through the straight-through power-of-two projection, thresholds
  learned), then its device codes (FloatPSN.to_net) for the fixed-point executors;
- rule "online": the device's per-step rule in its own arithmetic (the STOP runtime of the network's
  model of psn layers, psnnet.runtime: taps frozen), the weight rate halving each epoch (the
  device's own schedule, numerics.md §6c).

Either way the result is a device network; ``scores`` runs it on any executor (float twin, fixed
reference, C runtime)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from . import psn_bptt as bptt
from .datasets import Dataset, is_sequence
from .errors import ModelError
from .psnnet import FloatPSN, PSNNet, runtime, trained

EXECUTORS = ("fixed", "c", "float")
EVAL_BATCH = 500


@dataclass
class Epoch:
    epoch: int
    test_accuracy: float                 # of the network as the rule has it: the float twin (host), fixed (online)
    validation_accuracy: float | None
    train_loss: float | None = None      # host: the mean cross-entropy


@dataclass
class Training:
    net: PSNNet                          # the device's network of the best epoch on validation (else the last)
    history: list[Epoch] = field(default_factory=list)
    best_epoch: int = 0                  # 0: no epoch ran, the network as it came


def check_fits(net: PSNNet, data: Dataset) -> None:
    """Refuse data the network cannot read: static samples, another feature count, too many steps
    or classes."""
    if not is_sequence(data):
        raise ModelError(f"a PSN network reads sequences ([n, steps, features]) but {data.name} holds static "
                         "samples; use sequence data (e.g. --data smnist, docs/datasets.md)")
    steps, features = data.x_train.shape[1:]
    if features != net.n_in:
        raise ModelError(f"the model takes {net.n_in} inputs per step but {data.name} has {features} features")
    if steps > net.T:
        raise ModelError(f"{data.name}'s sequences have {steps} steps but the model runs T = {net.T}: the steps "
                         f"past T would be dropped; set the spec's T to {steps}")
    if net.n_out < data.n_classes:
        raise ModelError(f"the model's readout has {net.n_out} neurons but {data.name} has {data.n_classes} classes")


def scores(net: PSNNet, x: np.ndarray, executor: str = "fixed", progress: bool = False) -> np.ndarray:
    """The scores sum_t U of every sequence on ``executor`` (float64 for the twin, Q16 otherwise)."""
    if executor == "float":
        fl = FloatPSN.of(net)
        return bptt.evaluate(fl, bptt.inputs(fl, x))
    if executor not in EXECUTORS:
        raise ModelError(f"executor {executor!r}: one of {', '.join(EXECUTORS)}")
    runner = runtime(net, executor)
    batches = range(0, len(x), EVAL_BATCH)
    return np.concatenate([runner.run(x[i:i + EVAL_BATCH], None, False)
                           for i in tqdm(batches, desc=executor, unit=f"{EVAL_BATCH} seq", disable=not progress)])


def accuracy(net: PSNNet, x: np.ndarray, y: np.ndarray, executor: str = "fixed") -> float:
    return bptt.accuracy(scores(net, x, executor), y)


def on_every_executor(net: PSNNet, x: np.ndarray, y: np.ndarray, progress: bool = False) -> tuple[dict, bool]:
    """The accuracy of the device network on each executor, and whether the C runtime's scores are
    the fixed reference's, bit for bit."""
    scored = {e: scores(net, x, e, progress) for e in EXECUTORS}
    return ({e: bptt.accuracy(s, y) for e, s in scored.items()},
            bool(np.array_equal(scored["c"], scored["fixed"])))


def train(net: PSNNet, learning: dict, data: Dataset, epochs: int, on_epoch=None, executor: str = "fixed") -> Training:
    """Train ``net`` with ``learning`` (a checked spec's "learning") for ``epochs`` epochs;
    ``on_epoch(Epoch)`` after each. The online rule runs on ``executor`` (fixed or c: bit for bit
    the same); the host rule on the float twin."""
    check_fits(net, data)
    result = Training(net)
    val = (data.x_val, data.y_val) if data.x_val is not None else None

    def report(record: Epoch, device_net) -> None:
        result.history.append(record)
        best = result.history[result.best_epoch - 1].validation_accuracy if result.best_epoch else None
        if val is None or best is None or record.validation_accuracy > best:
            result.net, result.best_epoch = device_net(), record.epoch
        if on_epoch:
            on_epoch(record)

    if learning["rule"] == "host":
        fl = FloatPSN.of(net)
        X_test = bptt.inputs(fl, data.x_test)
        X_val = bptt.inputs(fl, val[0]) if val else None

        def host_epoch(epoch, loss):
            report(Epoch(epoch + 1, bptt.accuracy(bptt.evaluate(fl, X_test), data.y_test),
                         bptt.accuracy(bptt.evaluate(fl, X_val), val[1]) if val else None, loss),
                   lambda: fl.to_net(net))

        with tqdm(total=epochs * len(data.x_train), desc="host, through time", unit="seq") as bar:
            bptt.train(fl, bptt.inputs(fl, data.x_train, np.float32), data.y_train, epochs, learning["batch"],
                       learning["lr"], learn_thresholds=learning["learn_thresholds"], seed=net.seed,
                       on_epoch=host_epoch, progress=bar.update)
        return result
    net = net.copy()
    net.lr_weight_shift = learning["lr_weight_shift"]
    device = runtime(net, executor, epoch_samples=len(data.x_train), epochs=epochs)   # the step decay per epoch
    order = np.random.default_rng(net.seed)
    for epoch in range(epochs):
        for i in tqdm(order.permutation(len(data.x_train)), desc=f"online epoch {epoch + 1}", unit="seq"):
            device.run(data.x_train[i:i + 1], data.y_train[i:i + 1], True)
        now = trained(device)
        report(Epoch(epoch + 1, accuracy(now, data.x_test, data.y_test),
                     accuracy(now, *val) if val else None), lambda now=now: now)
    return result

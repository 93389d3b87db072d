"""The edgelearn side of the peer benchmark (bench/peers.py), free of torch so that the
project's own test suite can smoke-test it.

Everything the peers need to be compared on equal terms lives here too: the task
definition (networks, data, the input coding value = byte / 256), the learning-rate
schedule in T, the timing protocol, and the memory accounting of edgelearn's runtimes.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass

import numpy as np

from edgelearn import datasets
from edgelearn.rules.stop.fixed import FixedSTOP
from edgelearn.rules.stop.float import FloatSTOP
from edgelearn.model import Learning, Model, init_params, mlp

# The two networks of the issue, each on the data whose input size it has.
NETWORKS = {"784-256-10": ("mnist", [784, 256, 10]), "64-128-10": ("digits", [64, 128, 10])}
T_VALUES = (8, 16, 32, 64, 128, 256)
BATCHES = (1, 32)
LEAK = 0.875          # every peer's LIF leak (snnTorch beta, SpikingJelly 1 - 1/tau with tau = 8)
THRESHOLD = 1.0
SURROGATE_HALFWIDTH = 2.0   # edgelearn's surrogate_shift = 1: triangle max(0, 1 - |U - th| / 2)
INPUT_SCALE = 1.0 / 256     # direct current: pixel byte / 256, every step


def lr_weight_shift(T: int, base: int = 6) -> int:
    """edgelearn's weight learning rate is 2^-shift per step; the design notes say to scale
    it with 1/T (a per-step rate that is right at T = 8 silences the readout at T = 256).
    Keeping the network alive matters for the timing too: the runtime is event-driven, and
    a silenced network would be measured doing no work."""
    return base + max(0, int(round(math.log2(T / 8))))


def make_model(net: str, T: int, seed: int = 1, batch: int = 1) -> Model:
    """The edgelearn model for a network name (the same initial weights feed the peers).
    Batches train in the per-sample/batch update mode, whose gradient accumulator is a
    buffer of the learner (and so is counted); batch 1 updates every step, without one."""
    _, sizes = NETWORKS[net]
    learning = Learning(T=T, lr_weight_shift=lr_weight_shift(T), seed=seed,
                        update="step" if batch == 1 else "sample")
    return init_params(mlp(f"peers-{net}", sizes, learning=learning))


_DATA: dict = {}


def load_data(net: str) -> datasets.Dataset:
    name = NETWORKS[net][0]
    if name not in _DATA:
        _DATA[name] = datasets.load(name)
    return _DATA[name]


# -- memory --------------------------------------------------------------------------------
PARAMETER_BUFFERS = ("weights", "thresholds", "leaks")


def fixed_memory(net: FixedSTOP) -> dict:
    """Bytes of every array the fixed-point runtime holds (``buffers()``), split into the
    parameters and the training state (everything else: membranes, traces, errors,
    scratch, PRNG states, the layer table and, for batches, the gradient accumulator)."""
    bufs = net.buffers()
    by_name = {name: int(a.nbytes) for name, a in bufs.items()}
    params = sum(by_name[n] for n in PARAMETER_BUFFERS)
    total = sum(by_name.values())
    return {"total": total, "parameters": params, "training_state": total - params, "buffers": by_name}


def float_memory(net: FloatSTOP, batch: int) -> dict:
    """Bytes of the float64 twin's arrays for one ``run`` of a batch: its parameters, the
    state ``init_state(batch)`` allocates and the gradient sums ``zero_grads()`` allocates
    (the twin keeps a full weight-shaped sum even when updating every step)."""
    params = sum(w.nbytes for w in net.W) + sum(t.nbytes for t in net.th) + 8 * len(net.a)
    state = sum(a.nbytes for arrays in net.init_state(batch).values() for a in arrays)
    g = net.zero_grads()
    grads = sum(a.nbytes for key in ("W", "th", "rows") for a in g[key]) + 8 * len(g["a"])
    return {"total": params + state + grads, "parameters": params, "grads": grads,
            "training_state": state + grads}


# -- timing --------------------------------------------------------------------------------
@dataclass
class Timing:
    seconds_per_sample: float      # median over repeats
    repeats: int
    samples_per_repeat: int
    spread: float                  # (max - min) / median over repeats
    extra: dict


def time_training(step, n_batches_data: int, batch: int, *, warmup: int = 2, min_repeats: int = 3,
                  max_repeats: int = 25, budget_s: float = 1.5, min_repeat_s: float = 0.02) -> Timing:
    """Median seconds per training sample of ``step(i)`` (train on batch ``i`` of the
    data, cycling). Warm runs first; then a repeat is ``k`` consecutive batches, with
    ``k`` chosen so a repeat lasts at least ``min_repeat_s``, and as many repeats as fit
    in ``budget_s`` (within [min_repeats, max_repeats])."""
    i = 0
    for _ in range(warmup):
        step(i % n_batches_data)
        i += 1
    t0 = time.perf_counter()
    step(i % n_batches_data)
    i += 1
    one = max(time.perf_counter() - t0, 1e-7)
    k = max(1, math.ceil(min_repeat_s / one))
    repeats = int(min(max_repeats, max(min_repeats, budget_s // (k * one))))
    per_sample = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(k):
            step(i % n_batches_data)
            i += 1
        per_sample.append((time.perf_counter() - t0) / (k * batch))
    med = statistics.median(per_sample)
    return Timing(med, repeats, k * batch, (max(per_sample) - min(per_sample)) / max(med, 1e-12), {})


def batches_of(x: np.ndarray, y: np.ndarray, batch: int, n: int):
    """The first ``n`` batches of the training set in its stored order (the same samples,
    in the same order, for every method)."""
    n = min(n, len(x) // batch)
    return [(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]) for i in range(n)]


def edgelearn_cell(net_name: str, T: int, batch: int, *, executor: str = "fixed", budget_s: float = 1.5,
                   min_repeats: int = 3, max_repeats: int = 25, n_batches: int = 64) -> dict:
    """Time and memory of edgelearn training one configuration, from a fresh learner.
    Also records how many timed samples left the readout silent: the runtime is
    event-driven, so a silenced network would be fast for the wrong reason."""
    data = load_data(net_name)
    model = make_model(net_name, T, batch=batch)
    learner = FixedSTOP(model) if executor == "fixed" else FloatSTOP(model)
    data_batches = batches_of(data.x_train, data.y_train, batch, n_batches)
    silent = [0, 0]

    def step(i):
        xb, yb = data_batches[i]
        scores = learner.run(xb, yb, learn=True)
        silent[0] += int(np.sum(~scores.any(axis=1)))
        silent[1] += len(scores)

    timing = time_training(step, len(data_batches), batch, budget_s=budget_s, min_repeats=min_repeats,
                           max_repeats=max_repeats)
    mem = fixed_memory(learner) if executor == "fixed" else float_memory(learner, batch)
    return {"seconds_per_sample": timing.seconds_per_sample, "repeats": timing.repeats,
            "samples_per_repeat": timing.samples_per_repeat, "spread": round(timing.spread, 3),
            "memory": mem, "silent_fraction": round(silent[0] / max(1, silent[1]), 3)}


def warm_up_numba() -> None:
    """The fixed runtime's first call compiles (numba caches it on disk); do it before
    anything is timed."""
    for net_name in NETWORKS:
        data = load_data(net_name)
        learner = FixedSTOP(make_model(net_name, 8))
        learner.run(data.x_train[:1], data.y_train[:1], learn=True)
        learner.run(data.x_train[:2], data.y_train[:2], learn=True)
        learner.run(data.x_train[:1], None, learn=False)


# -- accuracy in a wall-clock budget ---------------------------------------------------
def train_for(budget_s: float, train_one, evaluate, n_train: int, shuffle_seed: int = 0) -> dict:
    """Online training (batch 1) on the shuffled training set, epoch after epoch, until
    ``budget_s`` seconds of training have passed (the clock stops while evaluating).
    The order of samples is the same for every method (seeded per epoch)."""
    spent, seen, epoch, curve = 0.0, 0, 0, []
    while spent < budget_s:
        order = np.random.default_rng(shuffle_seed + epoch).permutation(n_train)
        for idx in order:
            t0 = time.perf_counter()
            train_one(int(idx))
            spent += time.perf_counter() - t0
            seen += 1
            if spent >= budget_s:
                break
        epoch += 1
        curve.append({"seconds": round(spent, 2), "samples": seen, "test_accuracy": evaluate()})
    return {"seconds": round(spent, 2), "samples": seen, "epochs": round(seen / n_train, 2),
            "test_accuracy": curve[-1]["test_accuracy"], "curve": curve}


def edgelearn_accuracy(budget_s: float, executor: str = "fixed", net_name: str = "64-128-10", T: int = 8) -> dict:
    data = load_data(net_name)
    learner = FixedSTOP(make_model(net_name, T)) if executor == "fixed" else FloatSTOP(make_model(net_name, T))

    def train_one(i):
        learner.run(data.x_train[i:i + 1], data.y_train[i:i + 1], learn=True)

    def evaluate():
        scores = np.concatenate([learner.run(data.x_test[i:i + 1], None, learn=False)
                                 for i in range(len(data.x_test))])
        return float(np.mean(np.argmax(scores, axis=1) == data.y_test))

    return train_for(budget_s, train_one, evaluate, len(data.x_train))

"""A federation simulated on the host: each board's round run by the C runtime built for this
host (the executor ``c``, bit-exact with the boards' firmware), aggregated by ``fedavg``.

A board of the fleet and ``local_round`` here, given the same global model, share, round and
epochs, end with the same blob, so the fleet's global model after every round equals
``simulate``'s, bit for bit (tests/test_fleet_run.py); a board skipped in a round is simply
left out of that round's ``participants``. ``local_only`` trains each board on its share alone
for as many epochs as a fleet run gives it: the baseline a federation must beat.

    globals_ = simulate(model, shares, rounds=2, epochs=1)     # the global model after each round
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

import numpy as np

from ..executors import make_learner
from ..model import Model
from .aggregate import Update, client_seed, fedavg
from .partition import Share


def learner_for(model: Model, seed: int):
    """The C runtime holding ``model`` with ``seed``, as a board holds it after a commit
    (both PRNG streams restart from the seed)."""
    start = model.copy()
    start.learning = replace(model.learning, seed=seed)
    return make_learner(start, "c")


def learn(net, part: Share, epochs: int) -> None:
    """Every training sample of the share, in order, ``epochs`` times, online (batch 1)."""
    for _ in range(epochs):
        for i in range(len(part.x_train)):
            net.run(part.x_train[i:i + 1], part.y_train[i:i + 1], True)


def local_round(model: Model, part: Share, round_: int, board: int, epochs: int) -> Update:
    """What board ``board`` returns from round ``round_`` given the global ``model``."""
    net = learner_for(model, client_seed(model.learning.seed, round_, board))
    learn(net, part, epochs)
    return Update(net.to_model(), epochs * len(part.x_train), client=str(board))


def simulate(model: Model, shares: Sequence[Share], rounds: int, epochs: int,
             participants: Callable[[int], Sequence[int]] | None = None) -> list[Model]:
    """The global model after each of ``rounds`` rounds; ``participants(round)`` gives the
    boards whose updates that round averages (default: all of them)."""
    out = []
    for r in range(rounds):
        boards = range(len(shares)) if participants is None else participants(r)
        updates = [local_round(model, shares[k], r, k, epochs) for k in boards if len(shares[k].x_train)]
        model = fedavg(model, updates) if updates else model
        out.append(model)
    return out


def local_only(model: Model, part: Share, board: int, epochs: int) -> Model:
    """Board ``board``'s share learned alone for ``epochs`` epochs from ``model`` (with the
    seed it would have in round 0)."""
    net = learner_for(model, client_seed(model.learning.seed, 0, board))
    learn(net, part, epochs)
    return net.to_model()


def accuracy(model: Model, x: np.ndarray, y: np.ndarray) -> float:
    """Full-T inference with the C runtime; the share of samples classified right."""
    net = make_learner(model, "c")
    predicted = np.array([int(np.argmax(net.run(x[i:i + 1], None, False)[0])) for i in range(len(x))])
    return float(np.mean(predicted == y)) if len(y) else float("nan")

"""The boards' shares of a dataset (docs/fleet.md, "Partitions"): what each board of a fleet
learns from and is tested on, the same on every host for the same dataset, scheme, number of
boards and seed.

    iid        the training split shuffled and cut into N near-equal shares; the test split too
    by-class   board k holds c = ceil(classes / N) classes, (k c + j) mod classes for j < c; a
               class held by several boards is cut between them; its local test set is every
               test sample of its classes
    shifted    the iid shares, each board's images translated by its own offset (covariate shift);
               the global test set is the test split cut the same way, each share shifted as
               its board's

    part = share(data, "by-class", boards=8, board=3, seed=0)    # part.x_train, part.y_train, ...
    x, y = global_test(data, "by-class", boards=8, seed=0)        # what the federated model is scored on
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..datasets import Dataset

PARTITIONS = ("iid", "by-class", "shifted")
# The shifted boards' offsets, in units of the shift step (rows, columns), cycled over the boards.
OFFSETS = ((0, 0), (0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (-1, -1), (1, -1), (-1, 1))


class PartitionError(ValueError):
    """A partition that cannot be made; the message says why."""


@dataclass(frozen=True)
class Share:
    """One board's data: what it learns from and its local test set."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[int, ...]      # the classes among its training labels
    offset: tuple[int, int]       # the pixels its images are translated by (rows, columns)


def shift_step(data: Dataset) -> int:
    """Pixels per offset unit of the shifted scheme: an eighth of the image side, rounded down
    (1 on the 8x8 digits, 3 on the 28x28 MNIST), at least 1."""
    return max(1, min(data.shape) // 8)


def classes_per_board(n_classes: int, boards: int) -> int:
    return max(1, math.ceil(n_classes / boards))


def board_classes(n_classes: int, boards: int, board: int) -> tuple[int, ...]:
    """The classes board ``board`` holds under by-class."""
    c = classes_per_board(n_classes, boards)
    return tuple(sorted({(board * c + j) % n_classes for j in range(c)}))


def translate(x: np.ndarray, shape: tuple, offset: tuple[int, int]) -> np.ndarray:
    """Images [n, rows * cols] moved by ``offset`` pixels, the uncovered pixels 0."""
    dy, dx = offset
    rows, cols = shape
    img = x.reshape(len(x), rows, cols)
    out = np.zeros_like(img)
    out[:, max(dy, 0):rows + min(dy, 0), max(dx, 0):cols + min(dx, 0)] = \
        img[:, max(-dy, 0):rows + min(-dy, 0), max(-dx, 0):cols + min(-dx, 0)]
    return out.reshape(len(x), rows * cols)


def _check(data: Dataset, scheme: str, boards: int) -> None:
    if scheme not in PARTITIONS:
        raise PartitionError(f"unknown partition {scheme!r}; partitions: {', '.join(PARTITIONS)}")
    if boards < 1:
        raise PartitionError(f"a fleet has at least 1 board, got {boards}")
    if boards > len(data.x_train):
        raise PartitionError(f"{boards} boards for {len(data.x_train)} training samples of {data.name}: "
                             "every board needs at least one")
    if scheme == "shifted" and len(data.shape) != 2:
        raise PartitionError(f"the shifted partition translates images; {data.name}'s samples have shape {data.shape}")


def _iid_cut(n: int, boards: int, rng: np.random.Generator) -> list[np.ndarray]:
    return np.array_split(rng.permutation(n), boards)


def _by_class_cut(labels: np.ndarray, n_classes: int, boards: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Each class's samples, shuffled, cut between the boards that hold it (in board order);
    each board's samples then shuffled, so that its classes interleave as it learns."""
    held = [board_classes(n_classes, boards, k) for k in range(boards)]
    parts: list[list[np.ndarray]] = [[] for _ in range(boards)]
    for cls in range(n_classes):
        holders = [k for k in range(boards) if cls in held[k]]
        for k, piece in zip(holders, np.array_split(rng.permutation(np.flatnonzero(labels == cls)), len(holders))):
            parts[k].append(piece)
    return [rng.permutation(np.concatenate(p)) if p else np.zeros(0, dtype=np.int64) for p in parts]


def share(data: Dataset, scheme: str, boards: int, board: int, seed: int = 0) -> Share:
    """Board ``board``'s (0-based) share of ``data`` among ``boards`` under ``scheme``."""
    _check(data, scheme, boards)
    if not 0 <= board < boards:
        raise PartitionError(f"board {board} of a fleet of {boards}: boards are numbered 0..{boards - 1}")
    rng = np.random.default_rng(seed)
    offset = (0, 0)
    if scheme == "by-class":
        train = _by_class_cut(data.y_train, data.n_classes, boards, rng)[board]
        test = np.flatnonzero(np.isin(data.y_test, board_classes(data.n_classes, boards, board)))
    else:
        train = _iid_cut(len(data.x_train), boards, rng)[board]
        test = _iid_cut(len(data.x_test), boards, rng)[board]
    x_train, x_test = data.x_train[train], data.x_test[test]
    if scheme == "shifted":
        step = shift_step(data)
        offset = tuple(step * o for o in OFFSETS[board % len(OFFSETS)])
        x_train, x_test = translate(x_train, data.shape, offset), translate(x_test, data.shape, offset)
    return Share(x_train, data.y_train[train], x_test, data.y_test[test],
                 tuple(int(c) for c in np.unique(data.y_train[train])), offset)


def global_test(data: Dataset, scheme: str, boards: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The held-out set the federated model is scored on: the whole test split, and under
    ``shifted`` each of its shares translated as its board's (the union of the local test sets)."""
    _check(data, scheme, boards)
    if scheme != "shifted":
        return data.x_test, data.y_test
    parts = [share(data, scheme, boards, k, seed) for k in range(boards)]
    return np.concatenate([p.x_test for p in parts]), np.concatenate([p.y_test for p in parts])

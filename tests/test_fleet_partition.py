"""The boards' shares of a dataset (edgelearn/fleet/partition.py): iid, by-class, shifted."""
import numpy as np
import pytest

from edgelearn.datasets import Dataset, load_digits
from edgelearn.fleet.partition import (OFFSETS, PartitionError, board_classes, global_test, share, shift_step,
                                       translate)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def rows_of(x):
    return {bytes(r) for r in x}


@pytest.mark.parametrize("boards", [1, 3, 8])
def test_iid_cuts_both_splits_into_near_equal_disjoint_shares(digits, boards):
    parts = [share(digits, "iid", boards, k) for k in range(boards)]
    sizes = [len(p.y_train) for p in parts]
    assert sum(sizes) == len(digits.y_train) and max(sizes) - min(sizes) <= 1
    assert sum(len(p.y_test) for p in parts) == len(digits.y_test)
    together = np.concatenate([p.x_train for p in parts])
    assert sorted(map(bytes, together)) == sorted(map(bytes, digits.x_train))   # each sample once
    assert all(p.offset == (0, 0) for p in parts)


def test_the_seed_decides_the_shares(digits):
    a, b = share(digits, "iid", 4, 2, seed=0), share(digits, "iid", 4, 2, seed=0)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, share(digits, "iid", 4, 2, seed=1).x_train)


@pytest.mark.parametrize("boards, per_board", [(2, 5), (3, 4), (8, 2), (10, 1), (12, 1)])
def test_by_class_gives_each_board_a_few_classes(digits, boards, per_board):
    parts = [share(digits, "by-class", boards, k) for k in range(boards)]
    held = [board_classes(10, boards, k) for k in range(boards)]
    assert all(len(h) == per_board for h in held)
    assert set().union(*held) == set(range(10))                     # every class is somewhere
    for p, h in zip(parts, held):
        assert set(p.classes) == set(h) and set(p.y_train.tolist()) <= set(h)
        assert sorted(p.y_test.tolist()) == sorted(y for y in digits.y_test.tolist() if y in h)
        assert len(set(p.y_train[:20].tolist())) > 1 or per_board == 1   # shuffled: classes interleave
    assert sum(len(p.y_train) for p in parts) == len(digits.y_train)
    assert sorted(map(bytes, np.concatenate([p.x_train for p in parts]))) == sorted(map(bytes, digits.x_train))


def test_eight_boards_by_class():
    """The check of issue 19: boards 0-4 hold {0,1} .. {8,9}, boards 5-7 hold {0,1}, {2,3}, {4,5} again."""
    assert [board_classes(10, 8, k) for k in range(8)] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (0, 1), (2, 3),
                                                           (4, 5)]


def test_translate_moves_the_image_and_fills_with_zero():
    img = np.arange(1, 10, dtype=np.uint8).reshape(1, 9)           # 3x3: 1 2 3 / 4 5 6 / 7 8 9
    assert translate(img, (3, 3), (0, 1)).reshape(3, 3).tolist() == [[0, 1, 2], [0, 4, 5], [0, 7, 8]]
    assert translate(img, (3, 3), (-1, 0)).reshape(3, 3).tolist() == [[4, 5, 6], [7, 8, 9], [0, 0, 0]]
    assert translate(img, (3, 3), (1, -1)).reshape(3, 3).tolist() == [[0, 0, 0], [2, 3, 0], [5, 6, 0]]
    assert np.array_equal(translate(img, (3, 3), (0, 0)), img)


def test_shifted_boards_see_their_own_offset(digits):
    parts = [share(digits, "shifted", 4, k) for k in range(4)]
    iid = [share(digits, "iid", 4, k) for k in range(4)]
    for k, (p, q) in enumerate(zip(parts, iid)):
        assert p.offset == OFFSETS[k] and np.array_equal(p.y_train, q.y_train)    # the iid labels
        assert np.array_equal(p.x_train, translate(q.x_train, digits.shape, OFFSETS[k]))
    x, y = global_test(digits, "shifted", 4)
    assert rows_of(x) == rows_of(np.concatenate([p.x_test for p in parts])) and len(y) == len(digits.y_test)
    x, y = global_test(digits, "by-class", 4)
    assert np.array_equal(x, digits.x_test)


def test_the_shift_step_grows_with_the_image():
    big = Dataset("big", np.zeros((4, 784), np.uint8), np.zeros(4, np.uint8), np.zeros((2, 784), np.uint8),
                  np.zeros(2, np.uint8), (28, 28), 10)
    assert shift_step(big) == 3 and share(big, "shifted", 2, 1).offset == (0, 3)
    assert shift_step(load_digits()) == 1


def test_bad_partitions_are_refused(digits):
    with pytest.raises(PartitionError, match="unknown partition 'random'; partitions: iid, by-class, shifted"):
        share(digits, "random", 3, 0)
    with pytest.raises(PartitionError, match="numbered 0..2"):
        share(digits, "iid", 3, 3)
    with pytest.raises(PartitionError, match="at least 1 board"):
        share(digits, "iid", 0, 0)
    with pytest.raises(PartitionError, match="every board needs at least one"):
        share(digits, "iid", len(digits.y_train) + 1, 0)
    flat = Dataset("flat", digits.x_train, digits.y_train, digits.x_test, digits.y_test, (64,), 10)
    with pytest.raises(PartitionError, match="translates images"):
        share(flat, "shifted", 2, 0)

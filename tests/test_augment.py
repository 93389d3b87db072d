"""Training images moved by whole pixels (edgelearn.augment, `train --augment-shift`): each image
by its own offset within the bound, the border filled from the image's edge, reproducible from the seed; data
that are not images are refused with the reason."""
import subprocess
import sys

import numpy as np
import pytest

from edgelearn import datasets
from edgelearn.augment import shift_images
from edgelearn.datasets import DatasetError
from edgelearn.modelfile import load_model
from edgelearn.resources import MODELS
from edgelearn.train import make_learner, train


def offset_of(original: np.ndarray, moved: np.ndarray, pixels: int) -> tuple[int, int]:
    """The one (dy, dx) within the bound that moves ``original`` onto ``moved``, its border
    filled from the original's edge pixels."""
    h, w = original.shape
    found = []
    for dy in range(-pixels, pixels + 1):
        for dx in range(-pixels, pixels + 1):
            rows = np.clip(np.arange(h) - dy, 0, h - 1)         # output row r shows row r - dy
            cols = np.clip(np.arange(w) - dx, 0, w - 1)
            if np.array_equal(original[np.ix_(rows, cols)], moved):
                found.append((dy, dx))
    assert found, "the image is not a shift of the original"
    return found[0]


def test_every_image_is_moved_by_its_own_offset_within_the_bound():
    rng = np.random.default_rng(3)
    x = rng.integers(1, 256, size=(300, 12 * 10), dtype=np.uint8)   # no zero pixel: every offset tells
    moved = shift_images(x, (12, 10), 2, np.random.default_rng(5))
    assert moved.shape == x.shape and moved.dtype == x.dtype
    offsets = [offset_of(a.reshape(12, 10), b.reshape(12, 10), 2) for a, b in zip(x, moved)]
    assert set(offsets) == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}   # all 25 occur
    again = shift_images(x, (12, 10), 2, np.random.default_rng(5))
    assert np.array_equal(moved, again)                               # the seed decides
    assert np.array_equal(shift_images(x, (12, 10), 0, rng), x)


def test_channels_move_together():
    x = np.arange(1, 2 * 5 * 5 + 1, dtype=np.uint8).reshape(1, 50)
    moved = shift_images(x, (2, 5, 5), 1, np.random.default_rng(0)).reshape(2, 5, 5)
    original = x.reshape(2, 5, 5)
    assert offset_of(original[0], moved[0], 1) == offset_of(original[1], moved[1], 1)


@pytest.mark.parametrize("x, shape, pixels", [(np.zeros((2, 64), np.uint8), (64,), 1),          # features
                                              (np.zeros((2, 28, 28), np.uint8), (28, 28), 1),   # a sequence
                                              (np.zeros((2, 64), np.uint8), (8, 8), 8),          # too far
                                              (np.zeros((2, 64), np.uint8), (8, 8), -1)])
def test_what_cannot_be_shifted_is_refused_with_the_reason(x, shape, pixels):
    with pytest.raises(DatasetError, match="shift"):
        shift_images(x, shape, pixels, np.random.default_rng(0))


def test_training_with_shifts_is_reproducible_and_differs_from_training_without():
    ds = datasets.load_digits()
    ds = datasets.Dataset(ds.name, ds.x_train[:300], ds.y_train[:300], ds.x_test[:100], ds.y_test[:100],
                          ds.shape, ds.n_classes)
    model = load_model(MODELS / "digits-stop.json")
    blobs = []
    for shift in (1, 1, 0):
        net = make_learner(model.copy(), "fixed")
        train(net, ds, 1, progress=False, augment_shift=shift, warn=lambda text: None)
        blobs.append(net.to_model().params["fc1"].weight.tobytes())
    assert blobs[0] == blobs[1] != blobs[2]


def test_the_cli_refuses_a_shift_of_sequences():
    out = subprocess.run([sys.executable, "-m", "edgelearn.cli", "train", "--data", "smnist", "--epochs", "1",
                          "--augment-shift", "2", "--limit-train", "20", "--limit-test", "20"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "--augment-shift 2 needs image data" in out.stderr, out.stderr


def test_the_recipe_moves_28x28_images_by_a_pixel_and_leaves_small_images_and_sequences():
    from edgelearn.augment import recipe_shift
    digits = datasets.load_digits()
    mnist_like = datasets.Dataset("m", np.zeros((4, 784), np.uint8), np.zeros(4, np.uint8), np.zeros((2, 784), np.uint8),
                                  np.zeros(2, np.uint8), (28, 28), 10)
    sequences = datasets.Dataset("s", np.zeros((4, 28, 28), np.uint8), np.zeros(4, np.uint8),
                                 np.zeros((2, 28, 28), np.uint8), np.zeros(2, np.uint8), (28, 28), 10)
    assert [recipe_shift(d) for d in (mnist_like, digits, sequences)] == [1, 0, 0]

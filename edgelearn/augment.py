"""Data augmentation for image data: every epoch sees each training image moved by a random
whole number of pixels (up to ``pixels`` each way, rows and columns drawn independently), the
vacated border filled with the image's own edge pixels (its background, dark or bright).
The classical remedy for a small training set (10k MNIST images): a digit moved by a pixel or
two is still that digit, so the model is trained on positions it would otherwise meet only at
test time. The draws are seeded per epoch, so a run
is reproducible; validation and test data are never moved.

    shifted = shift_images(x_train, (28, 28), pixels=2, rng=np.random.default_rng(seed))

The recipe of ``edgelearn train`` (docs/training.md) moves images of at least RECIPE_SIDE pixels
a side by up to 1 pixel (``recipe_shift``); smaller images, where a pixel is a large part of the
digit, and data that are not images stay as they are.
"""
from __future__ import annotations

import numpy as np

from .datasets import Dataset, DatasetError

RECIPE_SIDE = 16        # 28x28 MNIST-like images move by a pixel; 8x8 digits do not


def check_shift(pixels: int, shape: tuple, x: np.ndarray) -> None:
    """A shift needs images (``x`` [n, features], a per-sample ``shape`` of height x width or
    channels x height x width) larger than it; sequences and feature vectors cannot move."""
    if pixels < 0:
        raise DatasetError(f"a shift of {pixels} pixels: give 0 (none) or more")
    images = x.ndim == 2 and len(shape) in (2, 3) and int(np.prod(shape)) == x.shape[1]
    if pixels and (not images or min(shape[-2:]) <= pixels):
        what = f"sequences of shape {tuple(x.shape[1:])}" if x.ndim == 3 else f"samples of shape {tuple(shape)}"
        raise DatasetError(f"--augment-shift {pixels} needs image data larger than the shift; this data has {what} "
                           "(sequences and feature vectors cannot be shifted)")


def recipe_shift(data: Dataset) -> int:
    """The default recipe's shift for ``data``: 1 for images at least RECIPE_SIDE a side, else 0."""
    shape, x = data.shape, data.x_train
    images = x.ndim == 2 and len(shape) in (2, 3) and int(np.prod(shape)) == x.shape[1]
    return 1 if images and min(shape[-2:]) >= RECIPE_SIDE else 0


def shift_images(x: np.ndarray, shape: tuple, pixels: int, rng: np.random.Generator) -> np.ndarray:
    """``x`` [n, features] (images of ``shape`` flattened row-major), each image moved by its
    own (dy, dx), uniform on [-pixels, pixels]^2; same dtype and layout."""
    check_shift(pixels, shape, x)
    if pixels == 0 or len(x) == 0:
        return x
    n = len(x)
    images = x.reshape(n, -1, *shape[-2:])
    h, w = shape[-2:]
    padded = np.pad(images, ((0, 0), (0, 0), (pixels, pixels), (pixels, pixels)), mode="edge")
    dy, dx = rng.integers(-pixels, pixels + 1, size=(2, n))
    rows = (np.arange(h)[None, :] + pixels - dy[:, None])[:, None, :, None]   # output row r reads r - dy
    cols = (np.arange(w)[None, :] + pixels - dx[:, None])[:, None, None, :]
    out = padded[np.arange(n)[:, None, None, None], np.arange(images.shape[1])[None, :, None, None], rows, cols]
    return out.reshape(x.shape)

"""A user's own data as numpy arrays (``datasets.load`` makes them a Dataset): an ``.npz`` file, or a directory of four ``.npy`` files,
holding ``x_train``, ``y_train``, ``x_test``, ``y_test`` (docs/datasets.md).

``x`` is ``[n, features]`` (one static sample each, fed as a direct current or a rate code) or
``[n, steps, features]`` (a sequence, fed one row per time step: graded currents with the
'sequence' encoding, spikes with 'events'). Values are the device's Q0.8 currents: uint8 as
they are; floats in [0, 1] become round(256 x), at most 255; bools become 0 and 1. Labels
are integers 0 .. classes - 1. Anything else is a DatasetError that names the array and
what is wrong with it: ragged sequences, NaN, values out of range, mismatched counts."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .errors import DatasetError

KEYS = ("x_train", "y_train", "x_test", "y_test")


def read_npz(path) -> tuple[str, dict]:
    """The name and checked arrays of an ``.npz`` file with the arrays ``KEYS``."""
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise DatasetError(f"{path}: not a readable .npz file ({err})") from None
    except ValueError:           # np.load falls back to unpickling what is not a zip archive
        raise DatasetError(f"{path}: not a readable .npz file (not a zip archive of .npy arrays)") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DatasetError(f"{path}: a single .npy array, not an .npz archive of {', '.join(KEYS)}")
    with archive:
        missing = [k for k in KEYS if k not in archive.files]
        if missing:
            raise DatasetError(f"{path}: missing array(s) {', '.join(missing)}; an .npz dataset holds "
                               f"{', '.join(KEYS)} (it has: {', '.join(archive.files) or 'nothing'})")
        arrays = {k: _read(archive, k, path) for k in KEYS}
    return path.stem, checked(arrays, str(path))


def read_npy_dir(path) -> tuple[str, dict]:
    """The name and checked arrays of a directory of ``x_train.npy``, ``y_train.npy``,
    ``x_test.npy``, ``y_test.npy``."""
    directory = Path(path)
    arrays = {}
    for key in KEYS:
        file = directory / f"{key}.npy"
        if not file.is_file():
            raise DatasetError(f"{directory}: missing {file.name}; a directory of arrays holds "
                               f"{', '.join(k + '.npy' for k in KEYS)}")
        try:
            arrays[key] = np.load(file, allow_pickle=False)
        except ValueError as err:       # object arrays (ragged sequences) need pickle
            raise DatasetError(f"{file}: {_ragged_or(err)}") from None
        except (OSError, EOFError) as err:
            raise DatasetError(f"{file}: not a readable .npy file ({err})") from None
    return directory.resolve().name, checked(arrays, str(directory))


def has_arrays(directory: Path) -> bool:
    return (directory / "x_train.npy").is_file()


def checked(arrays: dict, where: str) -> dict:
    """The four arrays checked and converted as the module says, and ``n_classes``."""
    x_train, x_test = (_currents(arrays[k], f"{where}: {k}") for k in ("x_train", "x_test"))
    y_train, y_test = (_labels(arrays[k], f"{where}: {k}") for k in ("y_train", "y_test"))
    for x, y, part in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if len(x) != len(y):
            raise DatasetError(f"{where}: x_{part} has {len(x)} samples but y_{part} {len(y)} labels")
        if len(x) == 0:
            raise DatasetError(f"{where}: x_{part} has no samples")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(f"{where}: training samples are {x_train.shape[1:]} but test samples "
                           f"{x_test.shape[1:]} ([steps, features] or [features] must agree)")
    n_classes = max(2, int(y_train.max()) + 1)
    if y_test.max() >= n_classes:
        raise DatasetError(f"{where}: test label {int(y_test.max())} is outside the training labels "
                           f"0..{n_classes - 1}")
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test, "n_classes": n_classes}


def _read(archive, key: str, path: Path) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as err:
        raise DatasetError(f"{path}: {key}: {_ragged_or(err)}") from None


def _ragged_or(err: ValueError) -> str:
    if "allow_pickle" in str(err):
        return ("an object array (ragged sequences of different lengths?): pad every sequence to one "
                "length, [n, steps, features] uint8 (a silent tail is zeros)")
    return str(err)


def _currents(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype == object:
        raise DatasetError(f"{what}: {_ragged_or(ValueError('allow_pickle'))}")
    if x.ndim not in (2, 3):
        raise DatasetError(f"{what}: shape {x.shape}; expected [n, features] or [n, steps, features] "
                           "(flatten images to [n, features])")
    if x.dtype == np.uint8:
        return x
    if x.dtype == np.bool_:
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.integer):
        if x.size and (x.min() < 0 or x.max() > 255):
            raise DatasetError(f"{what}: integer values {x.min()}..{x.max()} outside 0..255 (Q0.8 currents)")
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.floating):
        if not np.all(np.isfinite(x)):
            raise DatasetError(f"{what}: {int(np.sum(~np.isfinite(x)))} values are NaN or infinite")
        if x.size and (x.min() < 0.0 or x.max() > 1.0):
            raise DatasetError(f"{what}: float values {x.min():g}..{x.max():g} outside [0, 1]; scale them to "
                               "[0, 1] (a current of 1.0 is the largest) or pass uint8")
        return np.minimum(np.round(x * 256.0), 255).astype(np.uint8)
    raise DatasetError(f"{what}: dtype {x.dtype} is not supported (uint8, bool, integers 0..255 or floats in [0, 1])")


def _labels(y: np.ndarray, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{what}: expected integer labels [n], got {y.dtype} {y.shape}")
    if y.size and (y.min() < 0 or y.max() > 255):
        raise DatasetError(f"{what}: labels {y.min()}..{y.max()} outside 0..255")
    return y.astype(np.uint8)

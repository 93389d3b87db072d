"""A user's own data as numpy arrays (``datasets.load`` makes them a Dataset): an ``.npz`` file
or a directory of ``.npy`` files holding ``x_train``, ``y_train``, ``x_test``, ``y_test`` (or
``x``, ``y`` alone: a quarter is then held out as the test split, stratified and seeded), or a
CSV file of rows ``label, feature, feature, ...`` (docs/datasets.md).

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
ALIASES = {"x": "x_train", "y": "y_train"}     # a single split, before holding out its test quarter
TEST_SHARE, SPLIT_SEED = 0.25, 0               # as the digits split (datasets.load_digits)


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
        arrays = {ALIASES.get(k, k): _read(archive, k, path) for k in archive.files if ALIASES.get(k, k) in KEYS}
    return path.stem, checked(arrays, str(path), has=", ".join(archive.files) or "nothing")


def read_npy_dir(path) -> tuple[str, dict]:
    """The name and checked arrays of a directory of ``x_train.npy``, ``y_train.npy``,
    ``x_test.npy``, ``y_test.npy``."""
    directory = Path(path)
    arrays = {}
    for key in KEYS:
        file = directory / f"{key}.npy"
        if not file.is_file():
            continue
        try:
            arrays[key] = np.load(file, allow_pickle=False)
        except ValueError as err:       # object arrays (ragged sequences) need pickle
            raise DatasetError(f"{file}: {_ragged_or(err)}") from None
        except (OSError, EOFError) as err:
            raise DatasetError(f"{file}: not a readable .npy file ({err})") from None
    return directory.resolve().name, checked(arrays, str(directory),
                                            has=", ".join(sorted(p.name for p in directory.glob("*.npy"))) or "no .npy")


def read_csv(path) -> tuple[str, dict]:
    """The name and checked arrays of a CSV file: one sample per row, its label first, then its
    features (a first row that is not numbers is taken as a header); a quarter is held out."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: cannot read it as text ({err})") from None
    rows = [line.split(",") for line in text.splitlines() if line.strip()]
    if rows and not _numbers(rows[0]):
        rows = rows[1:]                                   # a header
    if not rows:
        raise DatasetError(f"{path}: no data rows")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise DatasetError(f"{path}: rows have {sorted(widths)} columns; every row is label, features... of one width")
    if widths.pop() < 2:
        raise DatasetError(f"{path}: a row needs a label and at least one feature")
    for n, row in enumerate(rows, start=1):
        if not _numbers(row):
            raise DatasetError(f"{path}: data row {n} has a value that is not a number: {','.join(row)[:60]!r}")
    table = np.array([[float(v) for v in r] for r in rows])
    labels = table[:, 0]
    if np.any(labels != np.round(labels)):
        raise DatasetError(f"{path}: the first column holds the labels, integers; found {labels[labels != np.round(labels)][0]:g}")
    features = table[:, 1:]
    whole = np.all(features == np.round(features)) and features.max() > 1.0
    x = features.astype(np.int64) if whole else features       # 0..255 integers, else floats in [0, 1]
    return path.stem, checked({"x_train": x, "y_train": labels.astype(np.int64)}, str(path), has="rows")


def _numbers(row: list[str]) -> bool:
    try:
        [float(v) for v in row]
    except ValueError:
        return False
    return True


def has_arrays(directory: Path) -> bool:
    return any((directory / f"{key}.npy").is_file() for key in ("x_train", "x"))


def checked(arrays: dict, where: str, has: str = "") -> dict:
    """The four arrays checked and converted as the module says, and ``n_classes``; with
    ``x_train``, ``y_train`` alone, a quarter of them becomes the test split."""
    needed = ("x_train", "y_train") if "x_test" not in arrays and "y_test" not in arrays else KEYS
    missing = [k for k in needed if k not in arrays]
    if missing:
        raise DatasetError(f"{where}: missing array(s) {', '.join(missing)}; a dataset of arrays holds "
                           f"{', '.join(KEYS)}, or x and y alone (it has: {has})")
    if needed != KEYS:
        arrays = _split({**arrays, "x_train": _currents(arrays["x_train"], f"{where}: x")}, where)
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


def _split(arrays: dict, where: str) -> dict:
    """x_train, y_train -> the four arrays, TEST_SHARE held out (stratified where every class
    has two samples)."""
    from sklearn.model_selection import train_test_split

    x, y = np.asarray(arrays["x_train"]), _labels(arrays["y_train"], f"{where}: y")
    if len(x) != len(y):
        raise DatasetError(f"{where}: x has {len(x)} samples but y {len(y)} labels")
    if len(y) < 4:
        raise DatasetError(f"{where}: {len(y)} samples are too few to hold out a test split")
    counts = np.bincount(y)
    classes = int(np.sum(counts > 0))
    fits = counts[counts > 0].min() >= 2 and min(round(TEST_SHARE * len(y)), len(y) - round(TEST_SHARE * len(y))) >= classes
    stratify = y if fits else None
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=TEST_SHARE, random_state=SPLIT_SEED,
                                                        stratify=stratify)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


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

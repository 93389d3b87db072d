"""Datasets for training and evaluation: sklearn digits, the shared MNIST, or a user's
MNIST-like directory of IDX files (see docs/datasets.md).

Every source yields the same `Dataset`: flattened uint8 pixels (the device feeds them
as Q0.8 currents, value / 256) and integer labels 0 .. n_classes - 1. Nothing is ever
downloaded; a missing or damaged file is a `DatasetError` that names it.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import array_data, synthetic
from .errors import DatasetError

IDX_UINT8 = 0x08
# Type codes of the IDX format; only uint8 is supported, the rest name what was found.
IDX_TYPE_NAMES = {0x08: "uint8", 0x09: "int8", 0x0B: "int16", 0x0C: "int32",
                  0x0D: "float32", 0x0E: "float64"}

# MNIST file stems, without the optional ".gz"; train/test images then labels.
TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"

# The shared MNIST (10k train / 10k test); "mnist" means exactly these files.
MNIST_SHA256 = {
    "t10k-images-idx3-ubyte.gz": "9fe7630f90c0e670227960a294637bc2e78a29d724810e24204eb342c9f033a1",
    "t10k-labels-idx1-ubyte.gz": "2c54c993d38068b3c3adb720a5cdee07065a066a7b36e7d1df720548d6359eba",
    "train-images-idx3-ubyte.gz": "2747ed10697bbef1652240687b06fe92c3bca7ae914de53c9ccf2343015be2bf",
    "train-labels-idx1-ubyte.gz": "ea948178aadae3130b2478529dca6f7dff2de9d14e860f046ec256dc65e9a7b5",
}
DATA_ENV = "EDGELEARN_DATA"   # a directory holding mnist/
NAMED_SOURCES = ("digits", "mnist", "smnist", "lagged-xor")


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray   # uint8 [n_train, features] (images flattened row-major), or [n, steps, features] (sequences)
    y_train: np.ndarray   # uint8 [n_train], 0 .. n_classes - 1
    x_test: np.ndarray    # uint8 [n_test, features]
    y_test: np.ndarray    # uint8 [n_test]
    shape: tuple          # per-sample image shape, e.g. (8, 8) or (28, 28)
    n_classes: int
    x_val: np.ndarray | None = None     # a split held out of the training data (hold_out)
    y_val: np.ndarray | None = None


def load_digits() -> Dataset:
    """sklearn's bundled 8x8 digits, split 75/25 (stratified, fixed seed).

    Pixels 0..16 become 0..255 by min(255, v * 16), so the brightest pixel is a
    current just under 1.0 in Q0.8 (16 * 16 = 256 would not fit a byte)."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    pixels = np.minimum(255, bunch.data * 16).astype(np.uint8)
    labels = bunch.target.astype(np.uint8)
    x_train, x_test, y_train, y_test = train_test_split(
        pixels, labels, test_size=0.25, random_state=0, stratify=labels)
    return Dataset("digits", x_train, y_train, x_test, y_test,
                   shape=bunch.images.shape[1:], n_classes=10)


def read_idx(path) -> np.ndarray:
    """The array stored in an IDX file, plain or gzip'd (by a ".gz" suffix).

    Header: two zero bytes, a type code, the number of dimensions, then each
    dimension as a big-endian uint32; the data follows row-major."""
    path = Path(path)
    raw = _read_maybe_gzip(path)
    if len(raw) < 4:
        raise DatasetError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    zeros, type_code, n_dims = int.from_bytes(raw[:2], "big"), raw[2], raw[3]
    magic = int.from_bytes(raw[:4], "big")
    if zeros != 0 or type_code not in IDX_TYPE_NAMES or n_dims == 0:
        raise DatasetError(f"{path}: bad magic number {magic} (0x{magic:08X}); not an IDX file "
                           f"(MNIST images have 2051, labels 2049)")
    if type_code != IDX_UINT8:
        raise DatasetError(f"{path}: IDX type code 0x{type_code:02X} "
                           f"({IDX_TYPE_NAMES[type_code]}) is not supported; only 0x08 (uint8) is")
    header_size = 4 + 4 * n_dims
    if len(raw) < header_size:
        raise DatasetError(f"{path}: truncated header: expected {header_size} bytes, "
                           f"got {len(raw)}")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=n_dims, offset=4))
    expected = int(np.prod(dims))
    actual = len(raw) - header_size
    if actual != expected:
        problem = "truncated" if actual < expected else "trailing data"
        raise DatasetError(f"{path}: {problem}: dimensions {dims} need {expected} data bytes, "
                           f"got {actual}")
    # Copied so the array is writable (frombuffer over bytes is read-only), like digits.
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(dims).copy()


def load_idx_dir(path, checksums: dict | None = None) -> Dataset:
    """An MNIST-like directory: train-images-idx3-ubyte, train-labels-idx1-ubyte,
    t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each with or without ".gz".

    With `checksums` (file name -> sha256 hex), every file read must be listed and
    match, so that a named dataset is exactly the data its results were measured on."""
    directory = Path(path)
    if not directory.is_dir():
        raise DatasetError(f"{directory}: no such directory")
    x_train, y_train = _read_images_and_labels(directory, TRAIN_IMAGES, TRAIN_LABELS, checksums)
    x_test, y_test = _read_images_and_labels(directory, TEST_IMAGES, TEST_LABELS, checksums)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(f"{directory}: training images are {x_train.shape[1:]} but "
                           f"test images are {x_test.shape[1:]}")
    n_classes = max(2, int(y_train.max(initial=0)) + 1)
    # A test class never seen in training cannot be predicted; it is a broken split.
    if y_test.max(initial=0) >= n_classes:
        raise DatasetError(f"{directory}: test label {int(y_test.max())} is outside the "
                           f"training labels 0..{n_classes - 1}")
    return Dataset(directory.resolve().name, x_train.reshape(len(x_train), -1), y_train,
                   x_test.reshape(len(x_test), -1), y_test,
                   shape=x_train.shape[1:], n_classes=n_classes)


def load_mnist(root=None) -> Dataset:
    """The shared MNIST, checked against its sha256 sums.

    `root` is the directory holding the four files; by default `$EDGELEARN_DATA/mnist`,
    else `shared/data/mnist` next to the project checkout."""
    directory = Path(root) if root is not None else default_mnist_root()
    if not directory.is_dir():
        raise DatasetError(f"MNIST directory {directory} does not exist; pass its path or set "
                           f"{DATA_ENV} to a directory containing mnist/")
    dataset = load_idx_dir(directory, checksums=MNIST_SHA256)
    return replace(dataset, name="mnist")


def default_mnist_root() -> Path:
    """$EDGELEARN_DATA/mnist if set, else shared/data/mnist beside the project checkout."""
    env_root = os.environ.get(DATA_ENV)
    if env_root:
        return Path(env_root) / "mnist"
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def load(spec: str, data_root=None) -> Dataset:
    """The dataset named by `--data`: "digits", "mnist", "smnist" (sequential MNIST), "lagged-xor" (edgelearn.synthetic), an
    ``.npz`` file of arrays, or a directory of MNIST-like IDX files or of ``.npy`` arrays
    (edgelearn.array_data). `data_root`, like $EDGELEARN_DATA, is a directory containing mnist/."""
    if spec == "digits":
        return load_digits()
    if spec == "lagged-xor":
        return load_lagged_xor()
    if spec in ("mnist", "smnist"):
        mnist = load_mnist(Path(data_root) / "mnist" if data_root is not None else None)
        return sequential(mnist) if spec == "smnist" else mnist
    path = Path(spec)
    if path.is_dir() and array_data.has_arrays(path):
        return from_arrays(*array_data.read_npy_dir(path))
    if path.is_dir():
        return load_idx_dir(path)
    if path.is_file() and path.suffix == ".npz":
        return from_arrays(*array_data.read_npz(path))
    if path.is_file() and path.suffix == ".csv":
        return from_arrays(*array_data.read_csv(path))
    if path.exists():
        raise DatasetError(f"{spec} is a file but neither .npz nor .csv; --data takes an .npz file of arrays, a "
                           "CSV file, or a directory of MNIST-like IDX files or of .npy arrays")
    missing = ": no such file or directory" if "/" in spec or spec.startswith(".") else ""
    raise DatasetError(f"unknown dataset {spec!r}{missing}; expected one of {', '.join(NAMED_SOURCES)}, an .npz "
                       f"file, or a directory of MNIST-like IDX files or of .npy arrays")


def load_lagged_xor() -> Dataset:
    """The lagged XOR (edgelearn.synthetic): sequences of 2 channels, generated from a seed."""
    (xtr, ytr), (xte, yte) = synthetic.lagged_xor_splits(**synthetic.LAGGED_XOR)
    return Dataset("lagged-xor", xtr, ytr.astype(np.uint8), xte, yte.astype(np.uint8), xtr.shape[1:], 2)


def from_arrays(name: str, arrays: dict[str, np.ndarray]) -> Dataset:
    """A Dataset of arrays checked by ``array_data.checked``."""
    return Dataset(name, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                   shape=arrays["x_train"].shape[1:], n_classes=int(arrays["n_classes"]))


def sequential(ds: Dataset) -> Dataset:
    """Images as sequences, one image row per time step: MNIST becomes [n, 28, 28], 28 steps of
    28 inputs (sequential MNIST), fed with the 'sequence' encoding."""
    rows = ds.shape[0]
    return replace(ds, name=f"s{ds.name}", x_train=ds.x_train.reshape(len(ds.x_train), rows, -1),
                   x_test=ds.x_test.reshape(len(ds.x_test), rows, -1))


def is_sequence(ds: Dataset) -> bool:
    """Samples are [steps, features] recordings rather than static [features]."""
    return ds.x_train.ndim == 3


def subset(ds: Dataset, n_train: int | None = None, n_test: int | None = None) -> Dataset:
    """The first n_train training and n_test test samples (None keeps all), for quick runs."""
    for label, n, available in (("n_train", n_train, len(ds.x_train)),
                                ("n_test", n_test, len(ds.x_test))):
        if n is not None and not 0 <= n <= available:
            raise DatasetError(f"{ds.name}: {label}={n} is outside 0..{available}")
    return replace(ds, x_train=ds.x_train[:n_train], y_train=ds.y_train[:n_train],
                   x_test=ds.x_test[:n_test], y_test=ds.y_test[:n_test])


def write_idx(path, array: np.ndarray) -> None:
    """``array`` (uint8) as an IDX file, gzip'd when the name ends in ".gz" (read_idx's inverse)."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or array.ndim == 0:
        raise DatasetError(f"{path}: IDX files here hold uint8 arrays of rank >= 1, got {array.dtype} "
                           f"of rank {array.ndim}")
    raw = bytes([0, 0, IDX_UINT8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape) + array.tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(raw, mtime=0) if path.suffix == ".gz" else raw)


def write_idx_dir(ds: Dataset, path) -> Path:
    """``ds`` as an MNIST-like directory that ``load_idx_dir`` (and ``--data PATH``) reads back:
    images in their per-sample ``shape``, gzip'd."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for stem, array in ((TRAIN_IMAGES, ds.x_train.reshape(len(ds.x_train), *ds.shape)), (TRAIN_LABELS, ds.y_train),
                        (TEST_IMAGES, ds.x_test.reshape(len(ds.x_test), *ds.shape)), (TEST_LABELS, ds.y_test)):
        write_idx(directory / f"{stem}.gz", array.astype(np.uint8))
    return directory


def hold_out(ds: Dataset, fraction: float, seed: int = 0) -> Dataset:
    """``ds`` with a validation split of ``fraction`` of its training samples held out,
    stratified by class and seeded, so that a model can be chosen without the test split.
    A split too small to hold every class once is refused."""
    if not 0.0 < fraction < 1.0:
        raise DatasetError(f"{ds.name}: the validation fraction must be in (0, 1), got {fraction}")
    from sklearn.model_selection import train_test_split

    classes = len(np.unique(ds.y_train))
    n_val = int(round(fraction * len(ds.x_train)))
    if n_val < classes or len(ds.x_train) - n_val < classes:
        raise DatasetError(f"{ds.name}: a validation fraction of {fraction} leaves {n_val} of "
                           f"{len(ds.x_train)} training samples for validation; each split needs at least "
                           f"one per class ({classes})")
    counts = np.bincount(ds.y_train)
    stratify = ds.y_train if counts[counts > 0].min() >= 2 else None     # a class seen once cannot be split
    x_train, x_val, y_train, y_val = train_test_split(ds.x_train, ds.y_train, test_size=n_val, random_state=seed,
                                                      stratify=stratify)
    return replace(ds, x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val)


def _read_maybe_gzip(path: Path) -> bytes:
    try:
        if path.suffix != ".gz":
            return path.read_bytes()
        with gzip.open(path, "rb") as stream:
            return stream.read()
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise DatasetError(f"{path}: not a valid gzip file ({error})") from None
    except OSError as error:
        raise DatasetError(f"{path}: cannot read ({error})") from None


def _find_idx_file(directory: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    raise DatasetError(f"{directory}: missing {stem}.gz (or {stem}); expected it in this directory")


def _verify_sha256(file: Path, checksums: dict) -> None:
    expected = checksums.get(file.name)
    if expected is None:
        raise DatasetError(f"{file}: no sha256 given for {file.name} "
                           f"(known: {', '.join(sorted(checksums))})")
    actual = hashlib.sha256(file.read_bytes()).hexdigest()
    if actual != expected.lower():
        raise DatasetError(f"{file}: sha256 mismatch for {file.name}: expected {expected}, "
                           f"got {actual}")


def _read_images_and_labels(directory: Path, images_stem: str, labels_stem: str,
                            checksums: dict | None) -> tuple[np.ndarray, np.ndarray]:
    images_file = _find_idx_file(directory, images_stem)
    labels_file = _find_idx_file(directory, labels_stem)
    if checksums is not None:
        _verify_sha256(images_file, checksums)
        _verify_sha256(labels_file, checksums)
    images, labels = read_idx(images_file), read_idx(labels_file)
    if images.ndim != 3:
        raise DatasetError(f"{images_file}: expected images [n, rows, cols], got shape {images.shape}")
    if labels.ndim != 1:
        raise DatasetError(f"{labels_file}: expected labels [n], got shape {labels.shape}")
    if len(images) != len(labels):
        raise DatasetError(f"{images_file} holds {len(images)} images but {labels_file} "
                           f"holds {len(labels)} labels")
    return images, labels

import gzip
import hashlib
import shutil
import struct

import numpy as np
import pytest

from edgelearn import datasets
from edgelearn.datasets import DatasetError

MNIST_TRAIN_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
FILE_STEMS = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
              "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_file(path, payload: bytes):
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return path


def small_split(n_train=6, n_test=4, rows=3, cols=4, n_classes=3):
    rng = np.random.default_rng(1)
    return {
        "train_images": rng.integers(0, 256, (n_train, rows, cols), dtype=np.uint8),
        "train_labels": np.arange(n_train, dtype=np.uint8) % n_classes,
        "test_images": rng.integers(0, 256, (n_test, rows, cols), dtype=np.uint8),
        "test_labels": np.arange(n_test, dtype=np.uint8) % n_classes,
    }


def write_idx_dir(directory, arrays, suffix=".gz"):
    directory.mkdir(exist_ok=True)
    for key, array in arrays.items():
        write_file(directory / (FILE_STEMS[key] + suffix), idx_bytes(array))
    return directory


# --- the three sources -----------------------------------------------------------------

def test_digits_shapes_range_and_split():
    ds = datasets.load("digits")
    assert ds.name == "digits" and ds.shape == (8, 8) and ds.n_classes == 10
    assert ds.x_train.shape == (1347, 64) and ds.x_test.shape == (450, 64)
    assert ds.y_train.shape == (1347,) and ds.y_test.shape == (450,)
    assert ds.x_train.dtype == np.uint8 and ds.x_test.dtype == np.uint8
    pixels = np.concatenate([ds.x_train, ds.x_test])
    assert pixels.min() == 0 and pixels.max() == 255
    # 0..16 scaled by 16 and capped: only multiples of 16, and 255 for 16.
    assert set(np.unique(pixels)) <= set(range(0, 256, 16)) | {255}
    # Stratified: every class appears in the test split in its share (~45 of 450).
    assert np.bincount(ds.y_test, minlength=10).min() >= 40


def test_digits_is_deterministic():
    first, second = datasets.load_digits(), datasets.load_digits()
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(first, field), getattr(second, field))


def test_mnist_loads_the_shared_files():
    ds = datasets.load("mnist")
    assert ds.name == "mnist" and ds.shape == (28, 28) and ds.n_classes == 10
    assert ds.x_train.shape == (10000, 784) and ds.x_test.shape == (10000, 784)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.uint8
    assert np.bincount(ds.y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(ds.y_test).tolist() == MNIST_TEST_COUNTS


def test_mnist_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGELEARN_DATA", str(tmp_path))
    assert datasets.default_mnist_root() == tmp_path / "mnist"
    with pytest.raises(DatasetError, match="EDGELEARN_DATA") as error:
        datasets.load("mnist")
    assert str(tmp_path / "mnist") in str(error.value)


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_user_directory_loads(tmp_path, suffix):
    arrays = small_split()
    directory = write_idx_dir(tmp_path / "tiny", arrays, suffix)
    ds = datasets.load(str(directory))
    assert ds.name == "tiny" and ds.shape == (3, 4) and ds.n_classes == 3
    np.testing.assert_array_equal(ds.x_train, arrays["train_images"].reshape(6, 12))
    np.testing.assert_array_equal(ds.y_train, arrays["train_labels"])
    np.testing.assert_array_equal(ds.x_test, arrays["test_images"].reshape(4, 12))
    np.testing.assert_array_equal(ds.y_test, arrays["test_labels"])


def test_single_class_labels_still_give_two_classes(tmp_path):
    arrays = small_split()
    arrays["train_labels"][:] = 0
    arrays["test_labels"][:] = 0
    assert datasets.load_idx_dir(write_idx_dir(tmp_path / "d", arrays)).n_classes == 2


def test_subset_takes_the_first_samples():
    ds = datasets.load_digits()
    small = datasets.subset(ds, n_train=100, n_test=20)
    assert small.x_train.shape == (100, 64) and small.y_test.shape == (20,)
    np.testing.assert_array_equal(small.x_train, ds.x_train[:100])
    np.testing.assert_array_equal(small.y_test, ds.y_test[:20])
    assert len(datasets.subset(ds, n_test=5).x_train) == 1347
    with pytest.raises(DatasetError, match="n_train=2000 is outside 0..1347"):
        datasets.subset(ds, n_train=2000)


# --- garbage in, DatasetError out ------------------------------------------------------

def test_missing_file_is_named(tmp_path):
    directory = write_idx_dir(tmp_path / "d", small_split())
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match="missing t10k-labels-idx1-ubyte.gz") as error:
        datasets.load(str(directory))
    assert str(directory) in str(error.value)


def test_truncated_file(tmp_path):
    payload = idx_bytes(np.zeros((2, 3, 4), dtype=np.uint8))
    path = write_file(tmp_path / "images", payload[:-5])
    with pytest.raises(DatasetError, match="truncated: .* need 24 data bytes, got 19") as error:
        datasets.read_idx(path)
    assert str(path) in str(error.value)


def test_trailing_bytes(tmp_path):
    path = write_file(tmp_path / "labels.gz", idx_bytes(np.zeros(3, dtype=np.uint8)) + b"\0")
    with pytest.raises(DatasetError, match="trailing data: .* need 3 data bytes, got 4"):
        datasets.read_idx(path)


def test_wrong_magic(tmp_path):
    path = write_file(tmp_path / "images.gz", b"\x12\x34\x08\x01" + struct.pack(">I", 0))
    with pytest.raises(DatasetError, match="bad magic number .*0x12340801"):
        datasets.read_idx(path)


def test_unsupported_type_code(tmp_path):
    path = write_file(tmp_path / "floats", idx_bytes(np.zeros(2, dtype=">f4"), type_code=0x0D))
    with pytest.raises(DatasetError, match=r"0x0D \(float32\) is not supported; only 0x08"):
        datasets.read_idx(path)


@pytest.mark.parametrize("damage", ["not gzip", "cut short"])
def test_bad_gzip(tmp_path, damage):
    compressed = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))
    content = b"this is not gzip" if damage == "not gzip" else compressed[:len(compressed) // 2]
    path = tmp_path / "labels.gz"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match="not a valid gzip file") as error:
        datasets.read_idx(path)
    assert str(path) in str(error.value)


def test_image_label_count_mismatch(tmp_path):
    arrays = small_split()
    arrays["train_labels"] = arrays["train_labels"][:5]
    directory = write_idx_dir(tmp_path / "d", arrays)
    with pytest.raises(DatasetError, match="holds 6 images but .*train-labels.* holds 5 labels"):
        datasets.load_idx_dir(directory)


def test_labels_files_swapped_with_images(tmp_path):
    arrays = small_split()
    arrays["test_labels"] = arrays["test_images"]
    with pytest.raises(DatasetError, match=r"t10k-labels.*expected labels \[n\]"):
        datasets.load_idx_dir(write_idx_dir(tmp_path / "d", arrays))


def test_test_label_unseen_in_training(tmp_path):
    arrays = small_split()
    arrays["test_labels"][0] = 7
    with pytest.raises(DatasetError, match=r"test label 7 is outside the training labels 0..2"):
        datasets.load_idx_dir(write_idx_dir(tmp_path / "d", arrays))


def test_checksum_mismatch_names_file_and_both_sums(tmp_path):
    directory = write_idx_dir(tmp_path / "d", small_split())
    checksums = {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
                 for path in directory.iterdir()}
    assert datasets.load_idx_dir(directory, checksums).n_classes == 3
    actual = checksums["train-labels-idx1-ubyte.gz"]
    checksums["train-labels-idx1-ubyte.gz"] = "0" * 64
    with pytest.raises(DatasetError) as error:
        datasets.load_idx_dir(directory, checksums)
    message = str(error.value)
    assert "train-labels-idx1-ubyte.gz" in message and "0" * 64 in message and actual in message


def test_mnist_rejects_files_that_are_not_the_shared_ones(tmp_path):
    copy = tmp_path / "mnist"
    copy.mkdir()
    for shared_file in datasets.default_mnist_root().iterdir():
        shutil.copyfile(shared_file, copy / shared_file.name)   # contents only: shared is read-only
    write_file(copy / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.zeros(10000, dtype=np.uint8)))
    with pytest.raises(DatasetError, match="sha256 mismatch for t10k-labels-idx1-ubyte.gz: "
                                           "expected 2c54c993"):
        datasets.load("mnist", data_root=tmp_path)


def test_unknown_data_value_lists_the_choices(tmp_path):
    spec = str(tmp_path / "no-such-dir")
    with pytest.raises(DatasetError, match="unknown dataset") as error:
        datasets.load(spec)
    assert "digits" in str(error.value) and "mnist" in str(error.value)
    assert spec in str(error.value)

"""Sequence data (issue 12, part 1): the 'sequence' encoding (row t of a recording is step t's
Q0.8 current), arrays from .npz files and .npy directories, sequential MNIST, and the
command line training on them; bad arrays are refused with what is wrong."""
import json

import numpy as np
import pytest

from edgelearn import datasets
from edgelearn.cli import main
from edgelearn.encoders import CODES, encode_step
from edgelearn.executors.c import NativeSTOP
from edgelearn.model import Learning, ModelError, Neuron, init_params, mlp
from edgelearn.rules.spide.spec import check as spide_check, spide_mlp
from edgelearn.rules.stop.fixed import FixedSTOP
from edgelearn.numerics import new_rng


def test_a_sequence_feeds_row_t_as_currents_and_is_silent_past_its_end():
    sample = np.array([[0, 7, 255], [128, 0, 1]], dtype=np.uint8)
    out, rng = np.zeros(3, dtype=np.int32), new_rng(1)
    before = rng.copy()
    assert encode_step(CODES["sequence"], sample, 1, rng, out) == 8 and out.tolist() == [128, 0, 1]
    assert encode_step(CODES["sequence"], sample, 2, rng, out) == 8 and out.tolist() == [0, 0, 0]
    assert encode_step(CODES["events"], sample, 0, rng, out) == 0 and out.tolist() == [0, 1, 1]
    assert rng.tolist() == before.tolist()          # neither draws from the input stream


def sequence_model(T=7):
    model = mlp("seq", [5, 9, 3], encoding="sequence", hidden=Neuron("lif", leak=0.75),
                learning=Learning(T=T, seed=4, lr_weight_shift=4, lr_threshold_shift=6))
    return init_params(model, weight_gain=2.0)


def test_c_and_the_reference_learn_a_sequence_stream_bit_for_bit():
    rng = np.random.default_rng(3)
    fixed, native = FixedSTOP(sequence_model()), NativeSTOP(sequence_model())
    for _ in range(20):
        x = rng.integers(0, 256, size=(1, int(rng.integers(1, 8)), 5), dtype=np.uint8)   # lengths 1..7
        y = rng.integers(0, 3, size=1)
        assert fixed.run(x, y, True).tolist() == native.run(x, y, True).tolist()
    np.testing.assert_array_equal(fixed.weights, native.weights)
    np.testing.assert_array_equal(fixed.thresholds, native.thresholds)


def test_spide_refuses_a_sequence_input():
    model = spide_mlp("s", [5, 8, 3], T=8, Tb=8)
    model.input = type(model.input)(model.input.shape, "sequence")
    with pytest.raises(ModelError, match="use STOP"):
        spide_check(model)


def write_npz(path, n=60, steps=6, features=5, classes=3, **override):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.random((n, steps, features)), "y_train": rng.integers(0, classes, n),
              "x_test": rng.random((n // 2, steps, features)), "y_test": rng.integers(0, classes, n // 2)}
    arrays.update(override)
    np.savez(path, **arrays)
    return arrays


def test_npz_and_npy_directories_load_the_same_quantised_currents(tmp_path):
    arrays = write_npz(tmp_path / "seq.npz")
    ds = datasets.load(str(tmp_path / "seq.npz"))
    assert ds.x_train.dtype == np.uint8 and ds.x_train.shape == (60, 6, 5) and datasets.is_sequence(ds)
    np.testing.assert_array_equal(ds.x_train, np.minimum(np.round(arrays["x_train"] * 256), 255))
    assert ds.n_classes == 3
    for key, value in arrays.items():
        np.save(tmp_path / f"{key}.npy", value)
    again = datasets.load(str(tmp_path))
    np.testing.assert_array_equal(again.x_test, ds.x_test)


@pytest.mark.parametrize("override, message", [
    ({"x_train": np.full((4, 3, 5), np.nan)}, "NaN or infinite"),
    ({"x_train": np.full((4, 3, 5), 2.0)}, "outside [0, 1]"),
    ({"x_test": np.zeros((30, 6, 4))}, "must agree"),
    ({"y_train": np.zeros(59, dtype=int)}, "60 samples but y_train 59 labels"),
    ({"y_train": np.zeros(60)}, "expected integer labels"),
    ({"x_train": np.zeros((60,))}, "expected [n, features] or [n, steps, features]"),
    ({"x_train": np.array([np.zeros((2, 5)), np.zeros((3, 5))], dtype=object)}, "ragged"),
])
def test_bad_arrays_are_refused_with_what_is_wrong(tmp_path, override, message):
    write_npz(tmp_path / "bad.npz", **override)
    with pytest.raises(datasets.DatasetError) as err:
        datasets.load(str(tmp_path / "bad.npz"))
    assert message in str(err.value)


def test_an_npz_without_the_arrays_or_not_an_npz_names_the_problem(tmp_path):
    np.savez(tmp_path / "wrong.npz", images=np.zeros((2, 3)))
    with pytest.raises(datasets.DatasetError, match="missing array"):
        datasets.load(str(tmp_path / "wrong.npz"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(datasets.DatasetError, match="not a readable .npz"):
        datasets.load(str(tmp_path / "junk.npz"))
    (tmp_path / "x.txt").write_text("1,2\n")
    with pytest.raises(datasets.DatasetError, match="neither .npz nor .csv"):
        datasets.load(str(tmp_path / "x.txt"))


def test_x_and_y_alone_hold_out_a_stratified_quarter_as_the_test_split(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "one.npz", x=rng.random((80, 7)), y=np.arange(80) % 4)
    ds = datasets.load(str(tmp_path / "one.npz"))
    assert (len(ds.x_train), len(ds.x_test)) == (60, 20) and sorted(np.bincount(ds.y_test)) == [5, 5, 5, 5]
    assert not datasets.is_sequence(ds)


def test_a_csv_of_label_then_features_with_or_without_a_header(tmp_path):
    rng = np.random.default_rng(2)
    rows = [f"{i % 3}," + ",".join(str(v) for v in rng.integers(0, 256, 6)) for i in range(40)]
    (tmp_path / "data.csv").write_text("label,a,b,c,d,e,f\n" + "\n".join(rows) + "\n")
    ds = datasets.load(str(tmp_path / "data.csv"))
    assert ds.x_train.shape == (30, 6) and ds.n_classes == 3 and ds.x_train.dtype == np.uint8
    (tmp_path / "ragged.csv").write_text("0,1,2\n1,2\n")
    with pytest.raises(datasets.DatasetError, match=r"rows have \[2, 3\] columns"):
        datasets.load(str(tmp_path / "ragged.csv"))
    (tmp_path / "words.csv").write_text("0,1,2\n1,two,3\n")
    with pytest.raises(datasets.DatasetError, match="data row 2 has a value that is not a number"):
        datasets.load(str(tmp_path / "words.csv"))
    (tmp_path / "big.csv").write_text("0,1,300\n1,2,3\n0,1,2\n1,2,3\n")
    with pytest.raises(datasets.DatasetError, match="outside 0..255"):
        datasets.load(str(tmp_path / "big.csv"))


def test_sequential_mnist_is_a_row_per_step():
    mnist = datasets.load_mnist()
    s = datasets.sequential(datasets.subset(mnist, 10, 10))
    assert s.x_train.shape == (10, 28, 28) and s.name == "smnist"
    np.testing.assert_array_equal(s.x_train[3, 5], mnist.x_train[3].reshape(28, 28)[5])


def test_cli_trains_a_sequence_npz_and_refuses_models_that_cannot_read_it(tmp_path, capsys):
    write_npz(tmp_path / "seq.npz", n=120)
    code = main(["train", "--data", str(tmp_path / "seq.npz"), "--hidden", "16", "--epochs", "2", "--no-twin",
                 "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["T"] == 6 and report["train_samples"] == 108
    code = main(["train", "--data", str(tmp_path / "seq.npz"), "--hidden", "16", "--epochs", "1", "--T", "4"])
    assert code == 2 and "the steps past T would be dropped; use --T 6" in capsys.readouterr().err
    code = main(["train", "--data", str(tmp_path / "seq.npz"), "--model", "models/digits-stop.json"])
    assert code == 2 and "holds sequences" in capsys.readouterr().err

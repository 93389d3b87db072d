"""The command line (edgelearn/cli.py): train / eval / info in-process, the installed
entry point once, and clean failures (non-zero exit, a message, no traceback)."""
import contextlib
import io
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgelearn import datasets
from edgelearn.cli import main
from edgelearn.model import Learning, init_params, mlp
from edgelearn.modelfile import load_model, save_model

TINY = ["--data", "digits", "--epochs", "1", "--limit-train", "200", "--limit-test", "100", "--hidden", "32"]
TRAIN = ["train", *TINY]
# hidden 32 on digits: fc1 64 -> 32, readout 32 -> 10
FC1_PARAMS, FC1_BYTES = 64 * 32 + 32 + 1, 2 * 64 * 32 + 4 * 32 + 4        # 2081, 4228
OUT_PARAMS, OUT_BYTES = 32 * 10 + 10 + 1, 2 * 32 * 10 + 4 * 10 + 4        # 331, 684
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_cli(argv):
    """main(argv) with stdout/stderr captured; argparse's exits become return codes."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(list(argv))
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def cli(capsys, *argv):
    try:
        rc = main(list(argv))
    except SystemExit as e:
        rc = e.code
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def assert_clean_failure(rc, out, err, *needles, code=2):
    assert rc == code, (rc, err)
    assert "Traceback" not in err and "Traceback" not in out
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny training run with --json, -o and --plot, shared by the tests that read it."""
    d = tmp_path_factory.mktemp("trained")
    model, plot = d / "model.elm", d / "curves.png"
    rc, out, err = run_cli([*TRAIN, "--twin", "--json", "-o", str(model), "--plot", str(plot)])
    assert rc == 0, err
    return {"report": json.loads(out), "model": model, "plot": plot, "dir": d, "err": err}


# -- train ----------------------------------------------------------------------------------------
def test_train_table_has_fixed_and_float_columns(capsys):
    rc, out, err = cli(capsys, *TRAIN, "--twin")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "digits-stop: stop on digits (180 train / 20 validation / 100 test, T=8)"
    header = next(l for l in lines if l.strip().startswith("epoch"))
    assert header.split() == ["epoch", "fixed", "valid", "float", "valid", "fixed", "test", "float", "test",
                              "fixed", "silent", "float", "silent", "lr", "fixed", "s", "float", "s"]
    assert "note: the initial weights are fitted to the data" in err
    row = lines[lines.index(header) + 1].split()
    assert row[0] == "1" and all(c.endswith("%") for c in row[1:5])
    finals = [l for l in lines if l.startswith("final test accuracy")]
    assert [l.split(",")[1].split(":")[0].strip() for l in finals] == ["fixed", "float"]
    for l in finals:
        pct = float(l.split(": ")[1].split("%")[0])
        assert 0.0 <= pct <= 100.0
    assert "Traceback" not in err


def test_the_twin_runs_on_request_only(capsys):
    rc, out, err = cli(capsys, *TRAIN)
    assert rc == 0, err
    assert "fixed test" in out and "final test accuracy, fixed" in out
    assert "float" not in out
    assert "fixed epoch 1: validation " in err          # a line per epoch while it trains


def test_json_epoch_lines_come_on_stderr_while_training(trained):
    lines = [json.loads(line) for line in trained["err"].splitlines() if line.startswith("{")]
    assert [(e["executor"], e["epoch"]) for e in lines] == [(p, e + 1) for p in ("fixed", "float")
                                                             for e in range(len(lines) // 2)]
    assert lines[0]["test_accuracy"] == trained["report"]["history"]["fixed"][0]["test_accuracy"]


def test_a_model_files_rule_is_kept_unless_learner_says_otherwise(tmp_path, capsys):
    rc, out, err = cli(capsys, "train", "--data", "digits", "--model", "models/digits-spide.json", "--epochs", "1",
                       "--limit-train", "100", "--limit-test", "50", "--json")
    assert rc == 0, err
    assert json.loads(out)["learner"] == "spide"


def test_train_json_has_both_executors(trained):
    r = trained["report"]
    assert r["model"] == "digits-stop" and r["data"] == "digits" and r["learner"] == "stop"
    assert r["train_samples"] == 180 and r["validation_samples"] == 20 and r["test_samples"] == 100 and r["T"] == 8
    assert set(r["final_test_accuracy"]) == {"fixed", "float"}
    for p in ("fixed", "float"):
        acc = r["final_test_accuracy"][p]
        assert 0.0 <= acc <= 1.0
        assert acc * 100 == pytest.approx(round(acc * 100))      # a whole number of 100 samples
        (epoch,) = r["history"][p]
        assert epoch["epoch"] == 1 and epoch["test_accuracy"] == acc
        assert {"train_accuracy_while_learning", "silent_fraction", "seconds"} <= set(epoch)
    # one epoch of STOP on 200 digits is far better than chance (10 %)
    assert r["final_test_accuracy"]["fixed"] > 0.3


def test_train_json_no_twin_and_float_executor(capsys):
    rc, out, err = cli(capsys, *TRAIN, "--json", "--no-twin", "--executor", "float")
    assert rc == 0, err
    r = json.loads(out)
    assert set(r["final_test_accuracy"]) == {"float"} and set(r["history"]) == {"float"}


def test_train_plot_writes_a_png(trained):
    data = trained["plot"].read_bytes()
    assert len(data) > 0 and data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (600, 400)          # figsize 6x4 at 100 dpi
    assert data[-8:-4] == b"IEND"


def test_fixed_training_is_deterministic(trained, capsys):
    rc, out, err = cli(capsys, *TRAIN, "--json", "--no-twin")
    assert rc == 0, err
    again = json.loads(out)["history"]["fixed"][0]
    first = trained["report"]["history"]["fixed"][0]
    for key in ("test_accuracy", "train_accuracy_while_learning", "silent_fraction"):
        assert again[key] == first[key], key


def test_eval_matches_the_final_fixed_accuracy(trained, capsys):
    rc, out, err = cli(capsys, "eval", str(trained["model"]), "--data", "digits", "--limit-test", "100", "--json")
    assert rc == 0, err
    r = json.loads(out)
    assert r["executor"] == "fixed" and r["test_samples"] == 100 and r["data"] == "digits"
    assert r["test_accuracy"] == trained["report"]["final_test_accuracy"]["fixed"]
    # and the text form says the same
    rc, out, err = cli(capsys, "eval", str(trained["model"]), "--data", "digits", "--limit-test", "100")
    assert rc == 0, err
    acc = trained["report"]["final_test_accuracy"]["fixed"]
    assert out.strip() == f"digits-stop on digits (100 test samples, fixed): {acc:.2%}"


def test_eval_float_executor_runs(trained, capsys):
    rc, out, err = cli(capsys, "eval", str(trained["model"]), "--executor", "float", "--limit-test", "50",
                       "--json")
    assert rc == 0, err
    r = json.loads(out)
    assert r["executor"] == "float" and r["test_samples"] == 50 and 0.0 <= r["test_accuracy"] <= 1.0


@pytest.mark.parametrize("learner", ["stop", "spide"])
def test_the_c_executor_trains_and_evaluates_bit_for_bit_with_fixed(learner, tmp_path, capsys):
    """train --executor c learns in the C runtime what --executor fixed learns in Python: the
    same blob, byte for byte; eval --executor c gives fixed's accuracy."""
    blobs, reports = {}, {}
    for executor in ("fixed", "c"):
        blobs[executor] = tmp_path / f"{executor}.elm"
        rc, out, err = cli(capsys, *TRAIN, "--learner", learner, "--json", "--no-twin", "--executor", executor,
                           "-o", str(blobs[executor]))
        assert rc == 0, err
        reports[executor] = json.loads(out)
    assert blobs["c"].read_bytes() == blobs["fixed"].read_bytes()
    assert reports["c"]["history"]["c"][0]["test_accuracy"] == reports["fixed"]["history"]["fixed"][0]["test_accuracy"]
    accuracy = {}
    for executor in ("fixed", "c"):
        rc, out, err = cli(capsys, "eval", str(blobs["c"]), "--limit-test", "100", "--json", "--executor", executor)
        assert rc == 0, err
        accuracy[executor] = json.loads(out)["test_accuracy"]
    assert accuracy["c"] == accuracy["fixed"] == reports["fixed"]["final_test_accuracy"]["fixed"]


def test_an_unknown_executor_is_refused(capsys):
    rc, out, err = cli(capsys, *TRAIN, "--executor", "gpu")
    assert_clean_failure(rc, out, err, "--executor", "invalid choice", "gpu")


def test_info_table(trained, capsys):
    rc, out, err = cli(capsys, "info", str(trained["model"]))
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "digits-stop: input (64,) (direct)"
    assert lines[1].split() == ["layer", "kind", "neuron", "inputs", "shape", "fan-in", "weights", "params", "bytes"]
    assert lines[2].split() == ["fc1", "dense", "lif", "input", "32", "64", "int16", "Q3.12",
                                str(FC1_PARAMS), str(FC1_BYTES)]
    assert lines[3].split() == ["readout", "dense", "lif", "fc1", "10", "32", "int16", "Q3.12",
                                str(OUT_PARAMS), str(OUT_BYTES)]
    assert lines[4].split() == ["total", str(FC1_PARAMS + OUT_PARAMS), str(FC1_BYTES + OUT_BYTES)]
    assert lines[5].startswith("learning: stop, T=8, lr 2^-6 (weights)")


def test_info_json(trained, capsys):
    rc, out, err = cli(capsys, "info", str(trained["model"]), "--json")
    assert rc == 0, err
    info = json.loads(out)
    assert info["name"] == "digits-stop"
    assert info["input"] == {"shape": [64], "encoding": "direct", "size": 64}
    assert [l["name"] for l in info["layers"]] == ["fc1", "readout"]
    assert [l["fan_in"] for l in info["layers"]] == [64, 32]
    assert [l["shape"] for l in info["layers"]] == [[32], [10]]
    assert [l["parameters"] for l in info["layers"]] == [FC1_PARAMS, OUT_PARAMS]
    assert [l["bytes"] for l in info["layers"]] == [FC1_BYTES, OUT_BYTES]
    assert info["total_parameters"] == FC1_PARAMS + OUT_PARAMS
    assert info["total_bytes"] == FC1_BYTES + OUT_BYTES
    assert info["learning"]["rule"] == "stop" and info["learning"]["seed"] == 1
    model = load_model(trained["model"])
    assert [l["leak"] for l in info["layers"]] == [model.params[n].leak / 65536 for n in ("fc1", "readout")]


def test_learner_readout_trains_only_the_last_layer(tmp_path, capsys):
    out_file = tmp_path / "readout.elm"
    rc, out, err = cli(capsys, *TRAIN, "--learner", "readout", "--init", "model", "--json", "--no-twin", "-o",
                       str(out_file))
    assert rc == 0, err
    r = json.loads(out)
    assert r["learner"] == "readout" and 0.0 <= r["final_test_accuracy"]["fixed"] <= 1.0
    start = init_params(mlp("digits-stop", [64, 32, 10], learning=Learning(seed=1)))
    done = load_model(out_file)
    assert done.learning.rule == "readout"
    np.testing.assert_array_equal(done.params["fc1"].weight, start.params["fc1"].weight)
    np.testing.assert_array_equal(done.params["fc1"].threshold, start.params["fc1"].threshold)
    assert done.params["fc1"].leak == start.params["fc1"].leak
    assert not np.array_equal(done.params["readout"].weight, start.params["readout"].weight)


def test_huge_learning_rate_is_reported_as_diverged(tmp_path, capsys):
    """--lr-shift 0 (a weight learning rate of 1) collapses the readout onto one neuron that
    always fires; training must say so (exit 1) rather than print that class's share as
    an accuracy, and write no model."""
    out_file = tmp_path / "huge.elm"
    rc, out, err = cli(capsys, *TRAIN, "--lr-shift", "0", "--json", "-o", str(out_file))
    assert "Traceback" not in err
    assert rc == 1 and out == ""
    assert "training diverged" in err and "collapsed" in err and "--lr-shift" in err
    assert not out_file.exists()


# -- the installed entry point ----------------------------------------------------------------------
def entry_point():
    script = Path(sys.executable).with_name("edgelearn")
    return [str(script)] if script.exists() else [sys.executable, "-m", "edgelearn.cli"]


def test_entry_point_subprocess(trained, tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    ok = subprocess.run([*entry_point(), "info", str(trained["model"]), "--json"], capture_output=True,
                        text=True, timeout=120, env=env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["total_parameters"] == FC1_PARAMS + OUT_PARAMS
    garbage = tmp_path / "garbage.elm"
    garbage.write_bytes(b"this is not a model\n")
    bad = subprocess.run([*entry_point(), "info", str(garbage)], capture_output=True, text=True,
                         timeout=120, env=env)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("edgelearn: error:") and "not a model file" in bad.stderr
    assert "Traceback" not in bad.stderr


# -- bad values -------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, needle", [
    (["--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
    (["--epochs", "abc"], "argument --epochs: expected an integer, got 'abc'"),
    (["--T", "0"], "argument --T: must be between 1 and 65535, got 0"),
    (["--hidden", "-1"], "argument --hidden: must be between 1 and 65535, got -1"),
    (["--seed", "-5"], "argument --seed: must be between 0 and 4294967295, got -5"),
    (["--lr-shift", "41"], "argument --lr-shift: must be between 0 and 40, got 41"),
    (["--learner", "sgd"], "argument --learner: invalid choice: 'sgd'"),
])
def test_bad_arguments(capsys, args, needle):
    rc, out, err = cli(capsys, *TRAIN, *args)
    assert_clean_failure(rc, out, err, needle, "usage: edgelearn train")
    assert out == ""


def test_no_command(capsys):
    rc, out, err = cli(capsys)
    assert_clean_failure(rc, out, err, "usage: edgelearn", "required")


def test_unknown_dataset(capsys):
    rc, out, err = cli(capsys, "train", "--data", "nosuchdata", "--epochs", "1")
    assert_clean_failure(rc, out, err, "edgelearn: error: unknown dataset 'nosuchdata'", "digits, mnist")


def test_nonexistent_data_directory(capsys):
    rc, out, err = cli(capsys, "train", "--data", "/nonexistent/dir", "--epochs", "1")
    assert_clean_failure(rc, out, err, "edgelearn: error:", "'/nonexistent/dir'", "directory")


def test_limit_beyond_the_data(capsys):
    rc, out, err = cli(capsys, *TRAIN[:-6], "--limit-test", "100000")
    assert_clean_failure(rc, out, err, "n_test=100000 is outside 0..450")


def write_idx(path: Path, array: np.ndarray):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_idx_directory_missing_a_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (6, 4, 4)))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(6) % 3)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 256, (3, 4, 4)))
    rc, out, err = cli(capsys, "train", "--data", str(tmp_path), "--epochs", "1", "--hidden", "4")
    assert_clean_failure(rc, out, err, str(tmp_path), "missing t10k-labels-idx1-ubyte")
    # with the file in place the same directory trains
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(3) % 3)
    rc, out, err = cli(capsys, "train", "--data", str(tmp_path), "--epochs", "1", "--hidden", "4", "--json")
    assert rc == 0, err
    assert json.loads(out)["test_samples"] == 3


def test_info_missing_file(tmp_path, capsys):
    missing = tmp_path / "nope.elm"
    rc, out, err = cli(capsys, "info", str(missing))
    assert_clean_failure(rc, out, err, "model file not found", str(missing))


def test_info_garbage_file(tmp_path, capsys):
    garbage = tmp_path / "garbage.elm"
    garbage.write_bytes(bytes(range(256)) * 4)
    rc, out, err = cli(capsys, "info", str(garbage))
    assert_clean_failure(rc, out, err, str(garbage), "not a model file")


def test_info_truncated_blob(trained, tmp_path, capsys):
    blob = trained["model"].read_bytes()
    cut = tmp_path / "cut.elm"
    cut.write_bytes(blob[:len(blob) // 2])
    rc, out, err = cli(capsys, "info", str(cut))
    assert_clean_failure(rc, out, err, str(cut), "truncated", str(len(blob) // 2))


def test_info_directory(tmp_path, capsys):
    rc, out, err = cli(capsys, "info", str(tmp_path))
    assert_clean_failure(rc, out, err, "cannot read model file", str(tmp_path))


def test_model_with_the_wrong_input_size(tmp_path, capsys):
    small = tmp_path / "small.elm"
    save_model(init_params(mlp("small", [10, 8, 10])), small)
    rc, out, err = cli(capsys, *TRAIN, "--model", str(small))
    assert_clean_failure(rc, out, err, "the model takes 10 inputs but digits samples have 64 features")


def test_model_with_too_few_outputs(tmp_path, capsys):
    spec = tmp_path / "five.json"
    save_model(mlp("five", [64, 8, 5]), spec)
    rc, out, err = cli(capsys, *TRAIN, "--model", str(spec))
    assert_clean_failure(rc, out, err, "readout has 5 neurons but digits has 10 classes")


def test_model_spec_trains(tmp_path, capsys):
    spec = tmp_path / "spec.json"
    save_model(mlp("spec", [64, 16, 10], learning=Learning(T=4)), spec)
    rc, out, err = cli(capsys, *TRAIN, "--model", str(spec), "--json", "--no-twin")
    assert rc == 0, err
    r = json.loads(out)
    assert r["model"] == "spec" and r["T"] == 4


@pytest.mark.skipif(not datasets.default_mnist_root().is_dir(), reason="shared MNIST not available")
def test_eval_digits_model_on_mnist(trained, capsys):
    rc, out, err = cli(capsys, "eval", str(trained["model"]), "--data", "mnist", "--limit-test", "10")
    assert_clean_failure(rc, out, err, "the model takes 64 inputs but mnist samples have 784 features")


def test_eval_model_with_too_few_outputs(tmp_path, capsys):
    """train refuses a readout smaller than the number of classes; eval must too, or it
    reports an accuracy over the classes the model can name as if it were the real one."""
    five = tmp_path / "five.elm"
    save_model(init_params(mlp("five", [64, 8, 5])), five)
    rc, out, err = cli(capsys, "eval", str(five), "--data", "digits", "--limit-test", "20")
    assert_clean_failure(rc, out, err, "readout has 5 neurons but digits has 10 classes")


@pytest.mark.parametrize("flag, name", [("-o", "model.elm"), ("--plot", "curves.png")])
def test_unwritable_output_is_a_clean_error(tmp_path, capsys, flag, name):
    target = tmp_path / "no" / "such" / "dir" / name
    rc, out, err = cli(capsys, *TRAIN, "--no-twin", flag, str(target))
    assert_clean_failure(rc, out, err, str(target))


def test_output_with_an_unknown_suffix(tmp_path, capsys):
    target = tmp_path / "model.txt"
    rc, out, err = cli(capsys, *TRAIN, "--no-twin", "-o", str(target))
    assert_clean_failure(rc, out, err, "unknown model file suffix '.txt'")
    assert not target.exists()


def test_smallest_learning_rate_with_a_batch(tmp_path, capsys):
    """--lr-shift 40 (the smallest rate the CLI accepts) with --batch 16 shifts the weight
    update by 32 - 12 + 40 + 4 = 64, beyond the s <= 62 that docs/numerics.md §8 defines.
    Correct behaviour: refuse the combination with a clean error, or train with weights
    that barely move (a rate of 2^-44). Saturating them is not."""
    out_file = tmp_path / "slow.elm"
    rc, out, err = cli(capsys, "train", "--data", "digits", "--epochs", "1", "--limit-train", "64",
                       "--limit-test", "20", "--hidden", "32", "--lr-shift", "40", "--batch", "16",
                       "--init", "model", "--no-twin", "--json", "-o", str(out_file))
    assert "Traceback" not in err
    if rc == 2:
        assert "shift" in err
        return
    assert rc == 0, err
    start = init_params(mlp("digits-stop", [64, 32, 10], learning=Learning(seed=1)))
    done = load_model(out_file)
    for name in ("fc1", "readout"):
        moved = np.abs(done.params[name].weight.astype(np.int64) - start.params[name].weight).max()
        assert moved <= 16, f"{name}: a 2^-44 learning rate moved a weight by {moved} LSBs"


# -- calibrate and eval --cutoff (docs/cutoff.md) ---------------------------------------------------
CAL_LIMIT, EVAL_LIMIT = 300, 120


@pytest.fixture(scope="module")
def calibrated(trained):
    """The tiny trained model calibrated at tolerance 0.05 on the first 300 training samples."""
    out = trained["dir"] / "calibrated.elm"
    rc, stdout, err = run_cli(["calibrate", str(trained["model"]), "--data", "digits", "--tolerance", "0.05",
                               "--limit", str(CAL_LIMIT), "-o", str(out), "--json"])
    assert rc == 0, err
    return {"path": out, "report": json.loads(stdout)}


def test_calibrate_stores_the_margins_the_python_api_computes(trained, calibrated):
    from edgelearn import cutoff as co
    report, model = calibrated["report"], load_model(calibrated["path"])
    data = datasets.subset(datasets.load("digits"), CAL_LIMIT, None)
    source = load_model(trained["model"])
    assert source.cutoff is None                         # the input is left as it was
    expected = co.calibrate(co.score_trajectories(source, data.x_train, progress=False), data.y_train, 0.05)
    assert model.cutoff is not None and model.cutoff.tolerance == 0.05
    assert list(model.cutoff.margins) == expected.tolist()
    assert report["margins"] == [None if m == co.CUTOFF_NEVER else m for m in expected.tolist()]
    assert report["T"] == len(model.cutoff.margins) == model.learning.T and model.cutoff.margins[-1] == 0
    assert report["calibration_samples"] == CAL_LIMIT and report["min_support"] == 30
    r = report["on_calibration_set"]
    assert sum(r["steps_histogram"]) == CAL_LIMIT and 1 <= r["mean_steps"] <= model.learning.T
    assert r["steps_saved"] == pytest.approx(1 - r["mean_steps"] / model.learning.T)
    for name in ("fc1", "readout"):                      # the weights travel with the margins
        assert np.array_equal(model.params[name].weight, source.params[name].weight)


def test_eval_cutoff_reports_what_the_trajectories_predict(trained, calibrated, capsys):
    from edgelearn import cutoff as co
    rc, out, err = cli(capsys, "eval", str(calibrated["path"]), "--cutoff", "--limit-test", str(EVAL_LIMIT), "--json")
    assert rc == 0, err
    r = json.loads(out)
    model, data = load_model(calibrated["path"]), datasets.subset(datasets.load("digits"), None, EVAL_LIMIT)
    # direct encoding: the decisions from full-T trajectories are those of real cutoff inference
    expected = co.evaluate(co.score_trajectories(model, data.x_test, progress=False), data.y_test,
                           model.cutoff.margins)
    assert r["test_samples"] == EVAL_LIMIT and r["T"] == model.learning.T
    assert (r["accuracy"], r["full_T_accuracy"], r["mean_steps"]) == (expected.accuracy, expected.full_accuracy,
                                                                      expected.mean_steps)
    assert r["steps_histogram"] == list(expected.histogram) and r["test_accuracy"] == r["accuracy"]
    rc, out, err = cli(capsys, "eval", str(calibrated["path"]), "--limit-test", str(EVAL_LIMIT), "--json")
    assert rc == 0, err
    assert json.loads(out)["test_accuracy"] == r["full_T_accuracy"]      # eval without --cutoff: full T


def test_eval_cutoff_text_and_plot(calibrated, tmp_path, capsys):
    plot = tmp_path / "tradeoff.png"
    rc, out, err = cli(capsys, "eval", str(calibrated["path"]), "--cutoff", "--limit-test", str(EVAL_LIMIT),
                       "--limit-train", "200", "--plot", str(plot), "--tolerances", "0.02,0.1,0.3")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"digits-stop on digits ({EVAL_LIMIT} test samples, fixed, cutoff calibrated at "
                               "tolerance 0.05): ")
    assert lines[1].startswith("full T = 8: ") and "points with the cutoff" in lines[1]
    assert lines[2].startswith("steps: mean ") and "% saved)" in lines[2]
    assert lines[3].split() == ["steps", "samples", "share"]
    shown = [l for l in lines[4:] if l.strip() and l.split()[0].isdigit()]
    assert sum(int(l.split()[1]) for l in shown) == EVAL_LIMIT
    assert [l.split(":")[0].strip() for l in lines if l.strip().startswith("tolerance")] == \
        ["tolerance 0.02", "tolerance 0.1", "tolerance 0.3"]
    assert plot.read_bytes().startswith(PNG_SIGNATURE)


def test_calibrate_text_plot_and_in_place(trained, tmp_path, capsys):
    blob = tmp_path / "model.elm"
    blob.write_bytes(trained["model"].read_bytes())
    plot = tmp_path / "calibration.png"
    rc, out, err = cli(capsys, "calibrate", str(blob), "--tolerance", "0.2", "--limit", "150", "--plot", str(plot),
                       "--tolerances", "0.1,0.2")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == ("digits-stop: cutoff calibrated on 150 training samples of digits (T=8, tolerance 0.2, "
                        "at least 30 samples per margin)")
    margins = lines[1].split(": ")[1].split()
    assert len(margins) == 8 and margins[-1] == "0"
    assert all(m == "never" or m.isdigit() for m in margins)
    assert lines[-1] == f"wrote {blob} and {plot}"
    model = load_model(blob)                             # no -o: the blob itself holds the cutoff now
    assert [("never" if m == 2**63 - 1 else str(m)) for m in model.cutoff.margins] == margins
    assert plot.read_bytes().startswith(PNG_SIGNATURE)


def test_calibrate_for_another_T_and_eval_it(trained, tmp_path, capsys):
    out_file = tmp_path / "t4.elm"
    rc, out, err = cli(capsys, "calibrate", str(trained["model"]), "--tolerance", "0.1", "--limit", "100", "--T", "4",
                       "-o", str(out_file), "--json")
    assert rc == 0, err
    model = load_model(out_file)
    assert model.learning.T == 4 and len(model.cutoff.margins) == 4 and json.loads(out)["T"] == 4
    rc, out, err = cli(capsys, "eval", str(out_file), "--cutoff", "--limit-test", "40", "--json")
    assert rc == 0, err
    r = json.loads(out)
    assert r["T"] == 4 and sum(r["steps_histogram"]) == 40 and len(r["steps_histogram"]) == 4
    # --T without --cutoff: full-T inference at that T, the cutoff unused
    rc, out, err = cli(capsys, "eval", str(out_file), "--T", "6", "--limit-test", "40", "--json")
    assert rc == 0, err


@pytest.mark.parametrize("value, needle", [
    ("0", "must be in (0, 1), exclusive, got 0"), ("1", "must be in (0, 1), exclusive, got 1"),
    ("-0.1", "must be in (0, 1), exclusive, got -0.1"), ("1.5", "must be in (0, 1), exclusive, got 1.5"),
    ("nan", "must be in (0, 1), exclusive, got nan"), ("abc", "expected a number in (0, 1), got 'abc'"),
    ("1e-9", "must be within 1e-6 and 1 - 1e-6"),
    ("0.9999996", "must be within 1e-6 and 1 - 1e-6"),
])
def test_calibrate_refuses_bad_tolerances(trained, capsys, value, needle):
    rc, out, err = cli(capsys, "calibrate", str(trained["model"]), "--tolerance", value, "-o", "/tmp/never.elm")
    assert_clean_failure(rc, out, err, f"argument --tolerance: {needle}", "usage: edgelearn calibrate")
    assert out == ""


def test_bad_tolerance_lists(calibrated, capsys):
    rc, out, err = cli(capsys, "eval", str(calibrated["path"]), "--cutoff", "--plot", "/tmp/x.png",
                       "--tolerances", "0.1,2")
    assert_clean_failure(rc, out, err, "argument --tolerances: must be in (0, 1), exclusive, got 2")
    rc, out, err = cli(capsys, "eval", str(calibrated["path"]), "--cutoff", "--tolerances", ",")
    assert_clean_failure(rc, out, err, "argument --tolerances: expected comma-separated numbers")


def test_calibrate_needs_a_tolerance(trained, capsys):
    rc, out, err = cli(capsys, "calibrate", str(trained["model"]))
    assert_clean_failure(rc, out, err, "the following arguments are required: --tolerance")


def test_eval_cutoff_without_calibration(trained, capsys):
    rc, out, err = cli(capsys, "eval", str(trained["model"]), "--cutoff", "--limit-test", "10")
    assert_clean_failure(rc, out, err, "the model has no calibrated cutoff", "edgelearn calibrate")
    assert out == ""


def test_eval_cutoff_with_margins_for_another_T(calibrated, capsys):
    rc, out, err = cli(capsys, "eval", str(calibrated["path"]), "--cutoff", "--T", "4", "--limit-test", "10")
    assert_clean_failure(rc, out, err, "8 margins for T = 4 steps", "recalibrate")
    assert out == ""


def test_eval_plot_without_cutoff(calibrated, tmp_path, capsys):
    rc, out, err = cli(capsys, "eval", str(calibrated["path"]), "--plot", str(tmp_path / "p.png"))
    assert_clean_failure(rc, out, err, "use them with --cutoff")
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize("output, needle", [
    ("model.json", "a .json spec holds no weights"),
    ("model.txt", "unknown model file suffix '.txt'"),
    ("no/such/dir/model.elm", "does not exist"),
])
def test_calibrate_refuses_outputs_that_lose_the_weights(trained, tmp_path, capsys, output, needle):
    target = tmp_path / output
    rc, out, err = cli(capsys, "calibrate", str(trained["model"]), "--tolerance", "0.1", "-o", str(target))
    assert_clean_failure(rc, out, err, needle)
    assert not target.exists()


def test_calibrate_a_spec_needs_an_output(tmp_path, capsys):
    spec = tmp_path / "spec.json"
    save_model(mlp("spec", [64, 16, 10]), spec)
    before = spec.read_bytes()
    rc, out, err = cli(capsys, "calibrate", str(spec), "--tolerance", "0.1")
    assert_clean_failure(rc, out, err, "is not a .elm blob: give -o OUT.elm")
    assert spec.read_bytes() == before


def test_calibrate_refuses_spide(tmp_path, capsys):
    rc, out, err = cli(capsys, "calibrate", "models/digits-spide.json", "--tolerance", "0.1", "-o",
                       str(tmp_path / "s.elm"))
    assert_clean_failure(rc, out, err, "rule 'spide' has no per-step scores")
    assert not (tmp_path / "s.elm").exists()


@pytest.mark.parametrize("args, needle", [
    (["calibrate", "/nonexistent/model.elm", "--tolerance", "0.1"], "model file not found"),
    (["calibrate", "MODEL", "--tolerance", "0.1", "--plot", "x.txt"], "unknown plot file suffix '.txt'"),
    (["calibrate", "MODEL", "--tolerance", "0.1", "--limit", "0"], "argument --limit: must be at least 1"),
    (["calibrate", "MODEL", "--tolerance", "0.1", "--limit", "99999"], "n_train=99999 is outside"),
    (["calibrate", "MODEL", "--tolerance", "0.1", "--data", "nosuchdata"], "unknown dataset 'nosuchdata'"),
])
def test_calibrate_bad_arguments(trained, tmp_path, capsys, args, needle):
    args = [str(trained["model"]) if a == "MODEL" else a for a in args]
    before = trained["model"].read_bytes()
    rc, out, err = cli(capsys, *args, *(["-o", str(tmp_path / "o.elm")] if "MODEL" not in args[1] else []))
    assert_clean_failure(rc, out, err, needle)
    assert trained["model"].read_bytes() == before


def test_the_regulariser_trains_the_float_twin_only(capsys):
    rc, out, err = cli(capsys, "train", "--data", "digits", "--executor", "fixed", "--regulariser", "1",
                       "--epochs", "1", "--limit-train", "20", "--limit-test", "10")
    assert_clean_failure(rc, out, err, "takes no option 'regulariser'", "--executor float")
    rc, out, err = cli(capsys, "train", "--data", "digits", "--executor", "float", "--regulariser", "-1",
                       "--epochs", "1", "--limit-train", "20", "--limit-test", "10")
    assert_clean_failure(rc, out, err, "must be a finite number >= 0")
    rc, out, err = cli(capsys, "train", "--data", "digits", "--executor", "float", "--late-fraction", "0.5",
                       "--epochs", "1", "--limit-train", "20", "--limit-test", "10")
    assert_clean_failure(rc, out, err, "use it with --regulariser")
    rc, out, err = cli(capsys, "train", "--data", "digits", "--executor", "float", "--regulariser", "1",
                       "--late-fraction", "2", "--epochs", "1", "--limit-train", "20", "--limit-test", "10")
    assert_clean_failure(rc, out, err, "late_fraction must be in (0, 1]")
    rc, out, err = cli(capsys, "train", "--data", "digits", "--executor", "float", "--regulariser", "2",
                       "--late-fraction", "0.5", "--epochs", "1", "--limit-train", "60", "--limit-test", "20",
                       "--json")
    assert rc == 0, err
    assert list(json.loads(out)["final_test_accuracy"]) == ["float"]     # no fixed twin beside it


def test_training_a_calibrated_model_drops_its_stale_cutoff(tmp_path, capsys):
    base, cut, again = tmp_path / "m.elm", tmp_path / "cut.elm", tmp_path / "again.elm"
    assert cli(capsys, "train", "--data", "digits", "--T", "4", "--epochs", "1", "--limit-train", "100",
               "--limit-test", "20", "--no-twin", "-o", str(base))[0] == 0
    assert cli(capsys, "calibrate", str(base), "--data", "digits", "--tolerance", "0.05", "--limit", "100",
               "-o", str(cut))[0] == 0
    assert load_model(cut).cutoff is not None
    rc, out, err = cli(capsys, "train", "--model", str(cut), "--data", "digits", "--T", "6", "--epochs", "1",
                       "--limit-train", "50", "--limit-test", "20", "--no-twin", "-o", str(again))
    assert rc == 0, err
    assert "cutoff is dropped" in err and load_model(again).cutoff is None

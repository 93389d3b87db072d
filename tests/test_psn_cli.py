"""PSN model files (edgelearn/psnfile.py) and the command line for them (edgelearn/cli_psn.py):
the zoo's PSN specs load and run bit for bit in C, a trained .psn round-trips exactly, train
(both rules) / eval / info / profile work from the files, and bad files and bad options get
clear errors. The profile needs arm-none-eabi-gcc (.ci/run installs it)."""
import json

import numpy as np
import pytest

from edgelearn import psnfile, resources
from edgelearn.cli import main
from edgelearn.errors import ModelError
from edgelearn import plan
from edgelearn.modelfile import load_model
from edgelearn.psnnet import runtime, to_model
from edgelearn.rules.stop.fixed import FixedSTOP

PSN_MODELS = sorted((resources.MODELS / "psn").glob("*.json"))
# sequences of 12 steps of 6 features, 3 classes: small enough to train in a second
TINY_SPEC = {"format": "edgelearn-psn", "version": 1, "name": "tiny-psn", "input": {"features": 6}, "T": 12,
             "layers": [{"kind": "psn", "neurons": 10, "taps": 3, "dilation": 2}, {"kind": "readout", "neurons": 3}],
             "init": {"seed": 4, "threshold": 0.25, "weight_scale": 2.0},
             "learning": {"rule": "host", "epochs": 2, "batch": 16, "lr": 0.03, "lr_weight_shift": 9}}


def cli(capsys, *argv):
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:
        rc = e.code
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.fixture
def files(tmp_path):
    """A tiny spec and sequence data (class = which feature is loudest in the first half)."""
    rng = np.random.default_rng(0)

    def make(n):
        y = rng.integers(0, 3, n)
        x = rng.integers(0, 60, (n, 12, 6))
        x[np.arange(n), :6, y] += 150
        return x.astype(np.uint8), y.astype(np.uint8)

    (xtr, ytr), (xte, yte) = make(240), make(90)
    np.savez(tmp_path / "seq.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    spec = tmp_path / "tiny.json"
    spec.write_text(json.dumps(TINY_SPEC))
    return tmp_path, spec, tmp_path / "seq.npz"


def test_the_zoos_psn_specs_run_in_c_as_the_reference():
    assert PSN_MODELS, "models/psn holds the PSN specs"
    rng = np.random.default_rng(1)
    for path in PSN_MODELS:
        net, spec = psnfile.load(path)
        x = rng.integers(0, 256, (2, net.T, net.n_in)).astype(np.uint8)
        assert np.array_equal(runtime(net, "c").run(x, None, False), runtime(net).run(x, None, False)), path.name
        assert spec["name"] == path.stem


def test_a_trained_network_round_trips_bit_for_bit(tmp_path):
    net, spec = psnfile.load_spec_dict(TINY_SPEC)
    net.layers[0].taps[0, 1] = -5
    net.layers[0].weights[2, 3] = -1234
    psnfile.save(net, spec, tmp_path / "a.psn")
    back, spec_back = psnfile.load(tmp_path / "a.psn")
    assert spec_back == spec
    for a, b in zip(net.layers, back.layers):
        assert np.array_equal(a.weights, b.weights) and np.array_equal(a.taps, b.taps)
        assert np.array_equal(a.thresholds, b.thresholds) and a.w_frac == b.w_frac and a.dilation == b.dilation


@pytest.mark.parametrize("change,needle", [
    (lambda s: s.update(format="edgelearn-model"), "format"),
    (lambda s: s.update(version=2), "version"),
    (lambda s: s.update(extra=1), "unknown field(s) extra"),
    (lambda s: s["layers"][0].update(kind="dense"), "layers[0].kind"),
    (lambda s: s["layers"][0].update(taps=17), "layers[0].taps"),
    (lambda s: s["layers"][0].update(dilation=0), "layers[0].dilation"),
    (lambda s: s["layers"][-1].update(taps=2), "layers[1]: unknown field(s) taps"),
    (lambda s: s.update(layers=s["layers"][-1:]), "layers"),
    (lambda s: s["input"].update(encoding="rate"), "input.encoding"),
    (lambda s: s["learning"].update(rule="bptt"), "learning.rule"),
    (lambda s: s["learning"].update(learn_thresholds="yes"), "learning.learn_thresholds"),
    (lambda s: s["init"].update(threshold=-1), "init.threshold"),
    (lambda s: s["layers"][0].update(neurons=65535) or s["layers"].insert(1, dict(s["layers"][0])), "at most"),
    (lambda s: s.update(name="n" * 70000), "names are at most"),
])
def test_a_bad_spec_says_which_field(tmp_path, change, needle):
    spec = json.loads(json.dumps(TINY_SPEC))
    change(spec)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(ModelError, match=None) as err:
        psnfile.load(path)
    assert needle in str(err.value) and str(path) in str(err.value)


def test_a_bad_trained_file_says_what_is_wrong(tmp_path):
    net, spec = psnfile.load_spec_dict(TINY_SPEC)
    good = tmp_path / "good.psn"
    psnfile.save(net, spec, good)
    (tmp_path / "text.psn").write_text("garbage")
    with pytest.raises(ModelError, match="starts with b'garb'"):
        psnfile.load(tmp_path / "text.psn")
    (tmp_path / "cut.psn").write_bytes(good.read_bytes()[:300])
    with pytest.raises(ModelError, match="not a trained PSN network"):
        psnfile.load(tmp_path / "cut.psn")
    with np.load(good) as a:
        arrays = {k: a[k] for k in a.files}
    for key, value, needle in (("taps0", None, "no 'taps0'"), ("weights1", np.zeros((3, 10), np.int32), "weights1"),
                               ("bogus", np.zeros(3), "no place for: bogus"), ("spec", np.arange(3), "a string"),
                               ("taps1", np.full((3, 1), 5, np.int8), "one tap of 1"),
                               ("taps0", np.zeros((10, 2), np.int8), "taps0"),
                               ("taps0", np.full((10, 3), 16, np.int8), "tap codes"),
                               ("w_frac0", np.array(16), "w_frac0"), ("spec", np.array("{"), "not valid JSON")):
        broken = dict(arrays)
        if value is None:
            del broken[key]
        else:
            broken[key] = value
        path = tmp_path / "broken.psn"
        with open(path, "wb") as f:                 # a path would get .npz appended
            np.savez(f, **broken)
        with pytest.raises(ModelError, match=None) as err:
            psnfile.load(path)
        assert needle in str(err.value), (key, str(err.value))
    pickled = tmp_path / "pickled.psn"
    with open(pickled, "wb") as f:                       # np.savez would name it pickled.psn.npz
        np.savez(f, spec=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ModelError, match="not a trained PSN network"):       # refused, never unpickled
        psnfile.load(pickled)


@pytest.mark.parametrize("rule", ["host", "online"])
def test_train_eval_info_from_the_files(capsys, files, rule):
    tmp, spec_path, data = files
    spec = json.loads(spec_path.read_text())
    spec["learning"]["rule"] = rule
    spec_path.write_text(json.dumps(spec))
    out_psn, png = tmp / "trained.psn", tmp / "curve.png"
    rc, out, err = cli(capsys, "train", "--model", spec_path, "--data", data, "-o", out_psn, "--plot", png, "--json")
    assert rc == 0, err
    report = json.loads(out)
    acc = report["test_accuracy"]
    assert report["c_equals_fixed"] and acc["c"] == acc["fixed"]
    assert len(report["history"]) == 2 and report["validation_samples"] > 0
    assert acc["fixed"] > 0.9, acc                    # the loud feature is easy: chance is 1/3
    if rule == "host":
        assert abs(acc["float"] - acc["fixed"]) < 0.05
    assert png.read_bytes().startswith(b"\x89PNG")
    for executor in ("fixed", "c", "float"):
        rc, out, err = cli(capsys, "eval", out_psn, "--data", data, "--executor", executor, "--json")
        assert rc == 0, err
        assert json.loads(out)["test_accuracy"] == acc[executor]
    rc, out, _ = cli(capsys, "info", out_psn, "--json")
    info = json.loads(out)
    assert rc == 0 and info["temporal_field"] == 5 and info["layers"][0]["dilation"] == 2


def test_online_training_on_c_writes_the_reference_network(capsys, files):
    tmp, spec_path, data = files
    spec = json.loads(spec_path.read_text())
    spec["learning"].update(rule="online", epochs=1)
    spec_path.write_text(json.dumps(spec))
    for executor in ("fixed", "c"):
        rc, _, err = cli(capsys, "train", "--model", spec_path, "--data", data, "--executor", executor,
                         "-o", tmp / f"{executor}.psn", "--json")
        assert rc == 0, err
    a, _ = psnfile.load(tmp / "fixed.psn")
    b, _ = psnfile.load(tmp / "c.psn")
    assert all(np.array_equal(x.weights, y.weights) for x, y in zip(a.layers, b.layers))
    assert any(not np.array_equal(x.weights, y.weights)
               for x, y in zip(a.layers, psnfile.load(spec_path)[0].layers)), "online learning moved no weight"


def test_profile_lists_the_rings_flat_in_T(capsys):
    """A PSN file profiles as its model of psn layers: the rings are arena buffers of the C loader's
    plan, the same at every T; BPTT's stored activations grow with T."""
    path = resources.MODELS / "psn" / "smnist-psn-128.json"
    reports = {}
    for T in (28, 112, 448):
        rc, out, err = cli(capsys, "profile", path, "--target", "stm32f746", "--T", T, "--json")
        assert rc == 0, err                         # the 128-wide network learns within the F746's 320 KB
        reports[T] = json.loads(out)
    assert reports[28]["total_ram"] == reports[448]["total_ram"]
    assert reports[28]["total_ram_bptt"] < reports[112]["total_ram_bptt"] < reports[448]["total_ram_bptt"]
    r = reports[28]
    net, _ = psnfile.load(path)
    buffers = r["arena_buffers"]
    assert buffers["current_ring"] == sum(4 * ly.n_out * ly.ring for ly in net.layers) and r["code_measured"]
    assert buffers["input_trace"] == sum(4 * ly.n_in * ly.ring for ly in net.layers)    # the input rings
    assert r["arena_inference"] < r["arena"]        # inference keeps no input rings
    rc, out, _ = cli(capsys, "profile", resources.MODELS / "psn" / "smnist-psn.json", "--target", "stm32f746")
    assert rc == 1 and "DOES NOT FIT" in out       # the 256-wide one does not


def test_bad_options_and_data_get_clear_errors(capsys, files, tmp_path):
    tmp, spec_path, data = files
    (tmp / "dir.psn").mkdir()
    for argv, needle in ((["train", "--model", spec_path, "--data", data, "--hidden", "8"], "--hidden"),
                         (["train", "--model", spec_path, "--data", data, "--T", "8"], "--T"),
                         (["train", "--model", spec_path, "--data", "digits"], "static samples"),
                         (["train", "--model", spec_path, "--data", data, "-o", tmp / "x.elm"], ".psn"),
                         (["eval", spec_path, "--data", "smnist"], "28 features"),
                         (["profile", spec_path, "--learner", "spide", "--target", "stm32f746"], "SPIDE needs"),
                         (["train", "--model", spec_path, "--data", data, "--decay-every", "0"], "--decay-every"),
                         (["train", "--model", spec_path, "--data", data, "--executor", "c"], "--executor"),
                         (["train", "--model", spec_path, "--data", data, "--lr-shift", "9"], "--lr-shift"),
                         (["train", "--model", spec_path, "--data", data, "-o", tmp / "dir.psn"], "is a directory"),
                         (["profile", spec_path, "--target", "ice40up5k"], "not in the FPGA core"),
                         (["export", spec_path, "-o", tmp / "x.nir"], "NIR has no node for a 'psn' layer"),
                         (["compile", resources.MODELS / "psn" / "smnist-psn.json", "--target", "stm32f746",
                           "-o", tmp / "c"], "does not fit")):
        rc, _, err = cli(capsys, *argv)
        assert rc == 2 and needle in err and "Traceback" not in err, (argv, err)
    long = np.zeros((4, 20, 6), np.uint8)
    np.savez(tmp / "long.npz", x_train=long, y_train=np.zeros(4, np.uint8), x_test=long, y_test=np.zeros(4, np.uint8))
    rc, _, err = cli(capsys, "eval", spec_path, "--data", tmp / "long.npz")
    assert rc == 2 and "20 steps" in err


def test_compile_writes_a_bundle_and_a_firmware_of_a_trained_network(capsys, files):
    """A trained .psn compiles as its model: the bundle (the runtime, the blob as a C array, main.c,
    a Makefile) cross-compiles for the Cortex-M4F with -Werror, and the firmware boots on the emulated
    M4F with the network compiled in, which learns a stream there bit for bit as the reference."""
    import shutil
    import subprocess
    from firmware_host.board import Board
    from firmware_host.qemu import QemuLinkBoard
    from edgelearn.modelblob import to_blob
    tmp, spec_path, data = files
    rc, _, err = cli(capsys, "train", "--model", spec_path, "--data", data, "-o", tmp / "t.psn", "--json")
    assert rc == 0, err
    rc, _, err = cli(capsys, "compile", tmp / "t.psn", "--target", "mps2-an386", "-o", tmp / "out")
    assert rc == 0, err
    rc, _, err = cli(capsys, "compile", tmp / "t.psn", "--target", "mps2-an386", "--firmware", "-o", tmp / "fw")
    assert rc == 0, err
    bundle = tmp / "out" / "bundle"
    assert shutil.which("arm-none-eabi-gcc"), "arm-none-eabi-gcc: .ci/run installs it"
    make = subprocess.run(["make", "-C", str(bundle)], capture_output=True, text=True, check=False)
    assert make.returncode == 0, make.stdout + make.stderr
    assert "el_psn.c" in [p.name for p in (bundle / "runtime").glob("*.c")]
    model = load_model(tmp / "t.psn")                      # the model of psn layers the firmware holds
    with np.load(data) as d:
        x, y = d["x_train"][:30], d["y_train"][:30]
    ref = FixedSTOP(model)
    want = [int(np.argmax(ref.run(x[i:i + 1], y[i:i + 1], True)[0])) for i in range(len(x))]
    with QemuLinkBoard("mps2-an386", elf=tmp / "fw" / "firmware.elf") as qb, Board(qb.url, timeout=1.0) as b:
        assert b.hello().has_model                         # booted with the network compiled in
        b.set_mode("train")
        assert [r.predicted for r in b.stream(x, y)] == want
        assert b.pull_params() == to_blob(ref.to_model())


def test_the_lagged_xor_is_learned_online_in_fixed_point_from_the_cli(capsys, tmp_path):
    """The memory task from the command line (--data lagged-xor, edgelearn.synthetic): the zoo's PSN
    network learning online on the device's arithmetic, taps frozen at 2^-1 on lags 0 and 16."""
    spec = json.loads((resources.MODELS / "psn" / "lagged-xor-psn.json").read_text())
    spec["learning"]["rule"] = "online"
    path = tmp_path / "online.json"
    path.write_text(json.dumps(spec))
    rc, out, err = cli(capsys, "train", "--model", path, "--data", "lagged-xor", "--limit-train", 600,
                       "--limit-test", 300, "--epochs", 2, "--executor", "c", "--json")
    assert rc == 0, err
    acc = json.loads(out)["test_accuracy"]
    assert acc["c"] == acc["fixed"] > 0.95, acc


def test_the_lagged_xor_dataset_is_generated_the_same_every_time():
    from edgelearn import datasets, synthetic
    a, b = datasets.load("lagged-xor"), datasets.load("lagged-xor")
    assert a.x_train.shape == (2000, 32, 2) and a.x_test.shape == (1000, 32, 2) and a.n_classes == 2
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert 0.4 < a.y_train.mean() < 0.6 and datasets.is_sequence(a)
    with pytest.raises(ValueError, match="second cue"):
        synthetic.lagged_xor(4, T=10, lag=16, jitter=0, noise=0, seed=1)


def test_the_profiles_bytes_are_the_arrays_the_reference_allocates():
    for path in PSN_MODELS:
        model = to_model(psnfile.load(path)[0])
        arena, planned = FixedSTOP(model).arena, plan.arena_plan(model)
        for name in ("current_ring", "input_trace", "error_lag0", "membrane", "error"):
            assert getattr(arena, name).nbytes == planned[name], (path.name, name)


def test_validation_chooses_the_epoch_written(capsys, files):
    tmp, spec_path, data = files
    spec = json.loads(spec_path.read_text())
    spec["learning"].update(epochs=3)
    spec_path.write_text(json.dumps(spec))
    rc, out, err = cli(capsys, "train", "--model", spec_path, "--data", data, "--validation", "0.2", "-o",
                       tmp / "v.psn", "--json")
    assert rc == 0, err
    report = json.loads(out)
    vals = [e["validation_accuracy"] for e in report["history"]]
    assert report["best_epoch"] == 1 + vals.index(max(vals)) and report["validation_samples"] == 48
    rc, out, _ = cli(capsys, "eval", tmp / "v.psn", "--data", data, "--json")
    assert json.loads(out)["test_accuracy"] == report["test_accuracy"]["fixed"]


def test_a_trained_network_is_pushed_streamed_and_pulled_from_the_cli(capsys, files, tmp_path, monkeypatch):
    """The board verbs take a .psn as the model it is: pushed to a native board, learning a stream of
    sequences there (an .npz of [n, steps, features]), pulled: the pulled model is the reference's, and
    the board's predictions while learning were the reference's."""
    from firmware_host import boards
    from edgelearn.modelblob import from_blob, to_blob
    monkeypatch.setenv("EDGELEARN_BOARDS_FILE", str(tmp_path / "boards.json"))
    tmp, spec_path, data = files
    rc, _, err = cli(capsys, "train", "--model", spec_path, "--data", data, "-o", tmp / "t.psn", "--json")
    assert rc == 0, err
    boards.start("native", "psn")
    try:
        rc, out, err = cli(capsys, "push", tmp / "t.psn", "--port", "psn")
        assert rc == 0 and "committed and active" in out, err
        rc, out, err = cli(capsys, "stream", data, "--port", "psn", "--train", "--limit", 40, "--json")
        assert rc == 0, err
        report = json.loads(out)
        rc, _, err = cli(capsys, "pull", "--port", "psn", "-o", tmp / "pulled.elm")
        assert rc == 0, err
    finally:
        boards.stop("psn")
    ref = FixedSTOP(load_model(tmp / "t.psn"))
    with np.load(data) as d:
        x, y = d["x_train"][:40], d["y_train"][:40]
    hits = sum(int(np.argmax(ref.run(x[i:i + 1], y[i:i + 1], True)[0])) == y[i] for i in range(40))
    assert report["learned"] == 40 and report["correct"] == hits
    pulled = (tmp / "pulled.elm").read_bytes()
    assert pulled == to_blob(ref.to_model()) and [ly.kind for ly in from_blob(pulled).layers] == ["psn", "psn"]

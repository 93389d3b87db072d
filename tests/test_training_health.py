"""Training that says what is wrong and when (issue 18): a readout silent on most samples is
reported in the first epoch with the layer that is quiet and the fix; fitting the initial
weights to the data makes the same sparse event input learn; an all-silent readout is
called silent, not a collapse onto class 0; the validation split chooses the model -o writes."""
import json
from dataclasses import replace

import numpy as np
import pytest

from edgelearn import datasets
from edgelearn.adapt import fit_to_data
from edgelearn.cli import main
from edgelearn.errors import TrainingDiverged
from edgelearn.executors import make_learner
from edgelearn.model import Learning, Neuron, mlp
from edgelearn.modelfile import load_model
from edgelearn.rules import init_model
from edgelearn.train import PROBE_SAMPLES, train

T = 8


def sparse_events(density: float, seed: int = 0) -> datasets.Dataset:
    """digits as binary event streams [n, T, 64]: pixel i spikes at step t with probability
    density * x_i / 255 (density 0.03: about 0.6 spikes per step over all 64 inputs)."""
    d = datasets.subset(datasets.load_digits(), 600, 300)
    rng = np.random.default_rng(seed)

    def events(x):
        return (rng.random((len(x), T, x.shape[1])) < density * x[:, None, :] / 255.0).astype(np.uint8)
    return replace(d, name=f"digits-events-{density}", x_train=events(d.x_train), x_test=events(d.x_test))


def event_model():
    return init_model(mlp("events", [64, 128, 10], encoding="events", learning=Learning(T=T, seed=1)))


def test_a_silent_readout_is_reported_in_the_first_epoch_with_the_quiet_layer_and_the_fix():
    data = sparse_events(0.03)
    said = []
    result = train(make_learner(event_model(), "fixed"), data, 1, progress=False, warn=said.append)
    assert len(said) == 1 and result.warnings == said
    text = said[0]
    assert text.startswith("epoch 1: the readout stayed silent on ") and f"first {PROBE_SAMPLES} " in text
    assert "Layer 'fc1' is (nearly) silent too" in text and "input scale" in text and "--init data" in text


def test_the_same_events_learn_above_chance_once_the_weights_are_fitted_to_them():
    data = sparse_events(0.1)
    model, fit = fit_to_data(event_model(), data.x_train)
    assert 0.02 < fit.rates["fc1"] and 0.02 < fit.rates["readout"]
    said = []
    result = train(make_learner(model, "fixed"), data, 3, progress=False, warn=said.append)
    assert said == []
    assert max(e.test_accuracy for e in result.history) > 0.2          # chance: 0.1


def test_the_warning_goes_to_stderr_by_default(capsys):
    train(make_learner(event_model(), "fixed"), sparse_events(0.03), 1, progress=False)
    assert "warning: epoch 1: the readout stayed silent" in capsys.readouterr().err


def test_an_all_silent_readout_is_called_silent_with_the_layers_that_fire():
    """A readout whose threshold no input reaches: the layer below fires, the readout never
    does. That is reported as silence with the rates, not as a collapse onto class 0."""
    data = datasets.subset(datasets.load_digits(), 300, 100)
    model = init_model(mlp("deaf", [64, 64, 10], readout=Neuron("lif", threshold=100.0, learn_threshold=False),
                           learning=Learning(T=T, seed=1)))
    with pytest.raises(TrainingDiverged) as err:
        train(make_learner(model, "fixed"), data, 1, progress=False, warn=lambda text: None)
    text = str(err.value)
    assert "stayed silent for every training sample" in text and "The layers below fire" in text
    assert "'fc1'" in text and "collapsed" not in text


def test_validation_split_is_stratified_seeded_and_refuses_what_cannot_hold_each_class():
    d = datasets.load_digits()
    a, b = datasets.hold_out(d, 0.1, seed=3), datasets.hold_out(d, 0.1, seed=3)
    np.testing.assert_array_equal(a.y_val, b.y_val)
    assert len(a.x_val) == round(0.1 * len(d.x_train)) and len(a.x_train) + len(a.x_val) == len(d.x_train)
    assert set(np.unique(a.y_val)) == set(range(10))
    with pytest.raises(datasets.DatasetError, match="at least one per class"):
        datasets.hold_out(datasets.subset(d, 40), 0.1)
    with pytest.raises(datasets.DatasetError, match=r"must be in \(0, 1\)"):
        datasets.hold_out(d, 1.0)


def test_cli_writes_the_best_epoch_on_validation_and_says_which(tmp_path, capsys):
    out = tmp_path / "best.elm"
    code = main(["train", "--data", "digits", "--no-twin", "--epochs", "4", "--validation", "0.2", "--json",
                 "-o", str(out)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    history = report["history"]["fixed"]
    best = report["best_epoch"]["fixed"]
    assert report["validation_samples"] == round(0.2 * 1347)
    assert all(e["validation_accuracy"] is not None for e in history)
    assert history[best - 1]["validation_accuracy"] == max(e["validation_accuracy"] for e in history)
    assert report["output"] == {"path": str(out), "epoch": best, "executor": "fixed"}
    written = load_model(out)
    assert written.schedule.learned == best * report["train_samples"]     # the count of that epoch
    assert report["init"]["lr_weight_shift"] == written.learning.lr_weight_shift


def test_cli_rejects_a_bad_validation_share(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--data", "digits", "--validation", "1.5"])
    assert "must be 0 (no split) or in (0, 1)" in capsys.readouterr().err


def test_ctrl_c_ends_training_with_what_was_learned_and_no_traceback(tmp_path):
    """SIGINT to a running `edgelearn train`: exit 130, the epochs completed in the table, the
    best model so far written with -o, no traceback; epoch lines came on stderr while it ran."""
    import ctrl_c
    out = tmp_path / "partial.elm"
    proc = ctrl_c.start(["edgelearn.cli", "train", "--data", "digits", "--epochs", "500", "-o", str(out)])
    seen = ""
    while "fixed epoch 2:" not in seen:
        line = proc.stderr.readline()
        assert line, f"training ended before its second epoch:\n{seen}"
        seen += line
    stdout, stderr = ctrl_c.interrupt(proc, 300)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr + seen
    assert "interrupted (Ctrl-C): fixed completed" in stdout and "wrote " in stdout
    learned = load_model(out).schedule.learned            # the best of the completed epochs
    assert learned >= 1212 and learned % 1212 == 0

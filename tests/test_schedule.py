"""The learning-rate schedule of docs/numerics.md §6c in the host's executors and the model
files: the decay is the base shift moved on by the count of learned samples, the count is
state that files carry, and a bad schedule is refused with a reason."""
import json
from dataclasses import replace

import numpy as np
import pytest

from edgelearn.datasets import load_digits
from edgelearn.model import Learning, ModelError, Neuron, Schedule, init_params, mlp
from edgelearn.modelblob import from_blob, to_blob
from edgelearn.modelfile import model_from_spec_dict, spec_to_dict
from edgelearn.rules.spide.fixed import FixedSPIDE
from edgelearn.rules.spide.spec import spide_mlp
from edgelearn.rules.stop.fixed import FixedSTOP


def stop_model(update="step", **learning):
    model = mlp("sched", [64, 24, 10], hidden=Neuron("lif", leak=0.75), readout=Neuron("lif", leak=0.8),
                learning=Learning(T=6, update=update, lr_weight_shift=5, lr_threshold_shift=7, seed=4, **learning))
    return init_params(model, weight_gain=2.0)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.mark.parametrize("update, batch", [("step", 1), ("sample", 1), ("step", 2)])
def test_the_schedule_is_the_base_shift_moved_on_by_the_count(digits, update, batch):
    """A run with Schedule(every=4, steps=2) equals one without a schedule whose base shifts are
    raised by hand at the decay points: samples 0-3 at the base, 4-7 one shift slower, then
    two, however long it runs (steps = 2). A batch apply reads the count after its samples."""
    x, y = digits.x_train[:16], digits.y_train[:16]
    model = stop_model(update)
    scheduled = FixedSTOP(replace(model.copy(), schedule=Schedule(every=4, steps=2)))
    by_hand = FixedSTOP(model.copy())
    for i in range(0, len(x), batch):
        scheduled.run(x[i:i + batch], y[i:i + batch], learn=True)
        # the shift the contract gives these samples' updates: per step, the count before them;
        # an accumulated apply (update "sample", or a batch), the count after them
        learned = i if update == "step" and batch == 1 else i + batch
        by_hand.learning_rates.base[:] = np.array([5, 7, model.learning.lr_leak_shift]) + min(learned // 4, 2)
        by_hand.run(x[i:i + batch], y[i:i + batch], learn=True)
    np.testing.assert_array_equal(scheduled.weights, by_hand.weights)
    np.testing.assert_array_equal(scheduled.thresholds, by_hand.thresholds)
    np.testing.assert_array_equal(scheduled.leaks, by_hand.leaks)
    assert scheduled.to_model().schedule == Schedule(4, 2, learned=16)


def test_a_decay_changes_what_is_learned(digits):
    """The schedule is not a no-op: the same samples with and without it learn differently."""
    x, y = digits.x_train[:8], digits.y_train[:8]
    model = stop_model()
    with_schedule = FixedSTOP(replace(model.copy(), schedule=Schedule(every=2, steps=3)))
    without = FixedSTOP(model.copy())
    for i in range(len(x)):
        with_schedule.run(x[i:i + 1], y[i:i + 1], learn=True)
        without.run(x[i:i + 1], y[i:i + 1], learn=True)
    assert not np.array_equal(with_schedule.weights, without.weights)


def test_spide_decays_its_weight_rate_and_counts(digits):
    model = spide_mlp("s", [64, 32, 10], T=8, Tb=8)
    model.schedule = Schedule(every=1, steps=40, learned=0)
    net = FixedSPIDE(model)
    for i in range(3):
        net.run(digits.x_train[i:i + 1], digits.y_train[i:i + 1], learn=True)
    assert net.to_model().schedule.learned == 3
    assert int(net.learning_rates.shifts()[0]) == model.learning.lr_weight_shift + 3


def test_the_count_goes_on_from_a_pulled_model_and_saturates(digits):
    model = stop_model()
    model.schedule = Schedule(every=3, steps=5, learned=0xFFFFFFFF - 1)
    net = FixedSTOP(model)
    for i in range(3):
        net.run(digits.x_train[i:i + 1], digits.y_train[i:i + 1], learn=True)
    assert net.to_model().schedule.learned == 0xFFFFFFFF          # saturates, never wraps to a fast rate
    assert list(net.learning_rates.shifts()) == [10, 12, min(model.learning.lr_leak_shift + 5, 40)]


def test_rule_none_and_inference_count_nothing(digits):
    model = replace(stop_model(), learning=replace(stop_model().learning, rule="none"))
    model.schedule = Schedule(2, 2)
    net = FixedSTOP(model)
    net.run(digits.x_train[:1], digits.y_train[:1], learn=True)
    net.run(digits.x_train[:1], None, learn=False)
    assert net.to_model().schedule.learned == 0


def test_spec_and_blob_carry_the_schedule_and_the_oldest_version_that_holds_it():
    model = stop_model()
    spec = spec_to_dict(model)
    assert spec["version"] == 1 and "schedule" not in spec
    assert to_blob(model)[4] == 1
    model.schedule = Schedule(every=30000, steps=3, learned=12345)
    spec = spec_to_dict(model)
    assert spec["version"] == 3 and spec["schedule"] == {"every": 30000, "steps": 3, "learned": 12345}
    assert model_from_spec_dict(json.loads(json.dumps(spec))).schedule == model.schedule
    blob = to_blob(model)
    assert blob[4] == 3
    assert from_blob(blob).schedule == model.schedule


@pytest.mark.parametrize("schedule, message", [
    (Schedule(0, 3), "every is 0"),
    (Schedule(10, 0), "steps is 0"),
    (Schedule(10, 41), "steps is 41"),
    (Schedule(10, 3, learned=-1), "learned is -1"),
    (Schedule(1 << 32, 3), "every is 4294967296"),
])
def test_a_bad_schedule_is_refused_with_its_field(schedule, message):
    model = stop_model()
    model.schedule = schedule
    with pytest.raises(ModelError, match=message):
        model.validate()


def test_a_spec_refuses_a_schedule_below_version_3_and_unknown_keys():
    spec = spec_to_dict(stop_model())
    spec["schedule"] = {"every": 10, "steps": 2}
    with pytest.raises(ModelError, match="needs spec version 3"):
        model_from_spec_dict(spec)
    spec["version"] = 3
    assert model_from_spec_dict(spec).schedule == Schedule(10, 2, 0)
    spec["schedule"] = {"every": 10, "step": 2}
    with pytest.raises(ModelError, match="unknown key 'step'"):
        model_from_spec_dict(spec)
    spec["schedule"] = {"every": 10}
    with pytest.raises(ModelError, match="missing required key 'steps'"):
        model_from_spec_dict(spec)

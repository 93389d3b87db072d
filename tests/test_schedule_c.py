"""The learning-rate schedule in the C runtime (docs/numerics.md §6c) against the Python
reference, bit for bit: STOP per step, STOP accumulating (update "sample", and batches of B > 1
on a per-step model), SPIDE; a decay that changes within the run (every=3, steps=2 over 12
samples), the count in the C executor, in its sealed blob's SCHEDULE section and in
``to_model``. Beside the reference, the C side alone: a scheduled run equals runs without a
schedule whose base shifts were raised by hand at the decay points, a model pushed again goes
on where it stopped, the count saturates, and only learning samples of a trainable model
count."""
import struct
from dataclasses import replace

import numpy as np
import pytest
from agree import assert_same_state
from blob_bytes import MODEL, SCHEDULE, section

from edgelearn.contract import MAX_LEARNED, MAX_LR_SHIFT
from edgelearn.executors.c import NativeSPIDE, NativeSTOP
from edgelearn.model import Learning, Schedule, init_params, mlp
from edgelearn.modelblob import from_blob, to_blob
from edgelearn.rules.spide.fixed import FixedSPIDE
from edgelearn.rules.spide.spec import spide_mlp
from edgelearn.rules.stop.fixed import FixedSTOP

N = 12
EVERY, STEPS = 3, 2                     # the decay moves at 3 and 6 learned samples, then stops


def data(n_in: int, classes: int, n: int = N, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, n_in)).astype(np.uint8), rng.integers(0, classes, size=n)


def stop_model(update: str = "step", schedule: Schedule | None = Schedule(EVERY, STEPS), rule: str = "stop",
               shifts=(2, 3, 4), encoding: str = "direct"):
    """Large rates (2^-2 on the weights) so that every shift changes the weights visibly."""
    learning = Learning(rule=rule, T=4, update=update, seed=11, lr_weight_shift=shifts[0],
                        lr_threshold_shift=shifts[1], lr_leak_shift=shifts[2])
    model = init_params(mlp("sched", [16, 12, 4], encoding=encoding, learning=learning), weight_gain=2.5)
    model.schedule = schedule
    return model.validate()


def scheduled_spide(schedule: Schedule | None = Schedule(EVERY, STEPS)):
    model = spide_mlp("sched-spide", [16, 12, 4], T=8, Tb=16, lr_weight_shift=1)
    model.schedule = schedule
    return model.validate()


def blob_learned(blob: bytes) -> int:
    """The count in a blob's SCHEDULE section, read by hand (docs/model-format.md)."""
    at = section(blob, SCHEDULE)[1]
    every, steps, learned, reserved = struct.unpack_from("<IIII", blob, at)
    assert (every, steps, reserved) == (EVERY, STEPS, 0)
    return learned


def decay(learned: int) -> int:
    return min(learned // EVERY, STEPS)


# -- C against the reference --------------------------------------------------------------------
def check_pair(ref, c, model, learned: int):
    assert_same_state(ref, c)
    assert c.learned == learned
    blob = c.blob()
    assert blob_learned(blob) == learned
    assert from_blob(blob).schedule == Schedule(EVERY, STEPS, learned)
    got, want = c.to_model(), ref.to_model()
    assert got.schedule == want.schedule == Schedule(EVERY, STEPS, learned)
    assert got.learning == want.learning == model.learning          # base shifts never change
    assert to_blob(got) == to_blob(want) == blob


@pytest.mark.parametrize("encoding", ["direct", "rate"])
def test_stop_per_step_follows_the_schedule_bit_for_bit(encoding):
    model = stop_model("step", encoding=encoding)
    ref, c = FixedSTOP(model), NativeSTOP(model)
    x, y = data(16, 4)
    base = np.array([2, 3, 4])
    for i in range(N):
        assert c.lr_shifts.tolist() == (base + decay(i)).tolist()   # what sample i will use
        np.testing.assert_array_equal(ref.run(x[i:i + 1], y[i:i + 1], True), c.run(x[i:i + 1], y[i:i + 1], True))
        check_pair(ref, c, model, i + 1)
    # inference in between never counts
    np.testing.assert_array_equal(ref.run(x[:3], None, False), c.run(x[:3], None, False))
    check_pair(ref, c, model, N)


def test_stop_update_sample_follows_the_schedule_bit_for_bit():
    model = stop_model("sample")
    ref, c = FixedSTOP(model), NativeSTOP(model)
    x, y = data(16, 4)
    for i in range(N):
        np.testing.assert_array_equal(ref.run(x[i:i + 1], y[i:i + 1], True), c.run(x[i:i + 1], y[i:i + 1], True))
        check_pair(ref, c, model, i + 1)


@pytest.mark.parametrize("update", ["step", "sample"])
def test_stop_batches_apply_at_the_count_after_the_batch(update):
    """B = 2 and 4, on a per-step model (the C executor borrows the gradient sums, sealing and
    reloading its blob: the count survives) and on an accumulating one; the batch boundaries
    straddle the decay points."""
    model = stop_model(update)
    ref, c = FixedSTOP(model), NativeSTOP(model)
    x, y = data(16, 4, n=N + 2)
    done = 0
    for B in (2, 4, 1, 2, 4, 1):
        xs, ys = x[done:done + B], y[done:done + B]
        np.testing.assert_array_equal(ref.run(xs, ys, True), c.run(xs, ys, True))
        done += B
        check_pair(ref, c, model, done)
    assert done == N + 2


def test_spide_follows_the_schedule_bit_for_bit():
    model = scheduled_spide()
    ref, c = FixedSPIDE(model), NativeSPIDE(model)
    x, y = data(16, 4)
    for i in range(N):
        assert c.lr_shift == 1 + decay(i)
        np.testing.assert_array_equal(ref.run(x[i:i + 1], y[i:i + 1], True), c.run(x[i:i + 1], y[i:i + 1], True))
        check_pair(ref, c, model, i + 1)
    np.testing.assert_array_equal(ref.run(x[:2], None, False), c.run(x[:2], None, False))
    check_pair(ref, c, model, N)
    assert ref.health() == c.health()


# -- the C side on its own --------------------------------------------------------------------
def continue_with(net, model, rngs):
    """A fresh C executor on ``model`` with the PRNG states of an earlier one."""
    nxt = type(net)(model)
    nxt._net.rng_input, nxt._net.rng_learn = rngs
    return nxt


def piecewise(cls, model, x, y, batches, shift_of):
    """The same stream without a schedule: before each batch a new executor whose base shifts
    are raised by hand (``shift_of(samples learned so far, batch size)``), the parameters and
    the PRNG states carried over."""
    plain = replace(model, schedule=None).copy()
    net, done = None, 0
    for B in batches:
        shifts = shift_of(done, B)
        m = plain.copy()
        m.learning = replace(plain.learning, lr_weight_shift=shifts[0], lr_threshold_shift=shifts[1],
                             lr_leak_shift=shifts[2])
        if net is not None:
            m.params = net.to_model().params
        net = continue_with(net, m, (net._net.rng_input, net._net.rng_learn)) if net else cls(m)
        net.run(x[done:done + B], y[done:done + B], True)
        done += B
    return net


def raised(base, learned):
    return [min(b + decay(learned), MAX_LR_SHIFT) for b in base]


@pytest.mark.parametrize("update, batches, at", [
    ("step", [1] * N, "before"),                 # per-step updates: the count before the sample
    ("sample", [1] * N, "after"),                # apply_accumulated: the count after it
    ("step", [2, 4, 2, 4], "after"),             # a batch applies at the count after its B samples
])
def test_a_scheduled_c_run_equals_runs_with_the_shifts_raised_by_hand(update, batches, at):
    model = stop_model(update)
    base = (2, 3, 4)
    x, y = data(16, 4)
    scheduled = NativeSTOP(model)
    done = 0
    for B in batches:
        scheduled.run(x[done:done + B], y[done:done + B], True)
        done += B
    by_hand = piecewise(NativeSTOP, model, x, y, batches,
                        lambda learned, B: raised(base, learned if at == "before" else learned + B))
    assert scheduled.learned == N
    assert np.array_equal(scheduled.weights, by_hand.weights)
    assert np.array_equal(scheduled.thresholds, by_hand.thresholds)
    assert np.array_equal(scheduled.leaks, by_hand.leaks)
    # and the schedule did change something: without it the weights end elsewhere
    assert not np.array_equal(scheduled.weights, piecewise(NativeSTOP, model, x, y, batches,
                                                           lambda learned, B: base).weights)


def test_a_scheduled_spide_run_equals_runs_with_the_shift_raised_by_hand():
    model = scheduled_spide()
    x, y = data(16, 4)
    scheduled = NativeSPIDE(model)
    for i in range(N):
        scheduled.run(x[i:i + 1], y[i:i + 1], True)
    by_hand = piecewise(NativeSPIDE, model, x, y, [1] * N,
                        lambda learned, B: (min(1 + decay(learned), MAX_LR_SHIFT), 0, 0))
    assert np.array_equal(scheduled.weights, by_hand.weights)
    assert not np.array_equal(scheduled.weights, piecewise(NativeSPIDE, model, x, y, [1] * N,
                                                           lambda learned, B: (1, 0, 0)).weights)


def test_a_model_pushed_again_goes_on_where_it_stopped():
    model = stop_model("step")
    x, y = data(16, 4)
    whole = NativeSTOP(model)
    for i in range(N):
        whole.run(x[i:i + 1], y[i:i + 1], True)
    first = NativeSTOP(model)
    for i in range(5):
        first.run(x[i:i + 1], y[i:i + 1], True)
    resumed = from_blob(first.blob())                  # the pulled file: parameters and the count
    assert resumed.schedule == Schedule(EVERY, STEPS, 5)
    second = continue_with(first, resumed, (first._net.rng_input, first._net.rng_learn))
    for i in range(5, N):
        second.run(x[i:i + 1], y[i:i + 1], True)
    assert second.blob() == whole.blob()


def test_the_count_saturates_and_the_shifts_stop_at_40():
    model = stop_model("step", Schedule(every=1, steps=40, learned=MAX_LEARNED - 1), shifts=(30, 0, 40))
    x, y = data(16, 4, n=3)
    ref, c = FixedSTOP(model), NativeSTOP(model)
    assert c.lr_shifts.tolist() == [MAX_LR_SHIFT, 40, MAX_LR_SHIFT]
    for i in range(3):
        np.testing.assert_array_equal(ref.run(x[i:i + 1], y[i:i + 1], True), c.run(x[i:i + 1], y[i:i + 1], True))
        assert c.learned == MAX_LEARNED
    assert_same_state(ref, c)
    assert to_blob(c.to_model()) == to_blob(ref.to_model()) == c.blob()
    assert from_blob(c.blob()).schedule.learned == MAX_LEARNED


@pytest.mark.parametrize("rule, counts", [("stop", True), ("readout", True), ("none", False)])
def test_only_learning_samples_of_a_trainable_model_count(rule, counts):
    model = stop_model("step", rule=rule)
    x, y = data(16, 4, n=4)
    ref, c = FixedSTOP(model), NativeSTOP(model)
    for net in (ref, c):
        net.run(x[:2], None, False)                    # inference
        net.run(x[2:3], y[2:3], True)                  # learning
        net.run(x[3:4], y[3:4], True)
    want = 2 if counts else 0
    assert c.learned == want and blob_learned(c.blob()) == want
    assert c.to_model().schedule == ref.to_model().schedule == Schedule(EVERY, STEPS, want)
    assert_same_state(ref, c)


def test_without_a_schedule_nothing_counts_and_the_blob_is_unchanged_in_structure():
    model = stop_model("step", schedule=None)
    x, y = data(16, 4, n=4)
    c = NativeSTOP(model)
    for i in range(4):
        c.run(x[i:i + 1], y[i:i + 1], True)
    assert c.learned == 0 and c.lr_shifts.tolist() == [2, 3, 4]
    blob = c.blob()
    assert c.to_model().schedule is None and from_blob(blob).schedule is None
    with pytest.raises(KeyError):
        section(blob, SCHEDULE)
    assert struct.unpack_from("<H", blob, 4)[0] == 1


def test_the_base_shifts_in_the_model_section_never_change():
    model = stop_model("step")
    x, y = data(16, 4)
    c = NativeSTOP(model)
    before = to_blob(model)
    for i in range(N):
        c.run(x[i:i + 1], y[i:i + 1], True)
    after = c.blob()
    at, size = section(before, MODEL)[1:]
    assert after[at:at + size] == before[at:at + size]
    assert c.lr_shifts.tolist() == [2 + STEPS, 3 + STEPS, 4 + STEPS]

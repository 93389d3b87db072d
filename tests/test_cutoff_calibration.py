"""The Top-K cutoff's calibration (edgelearn/cutoff.py): hand-computed cases, properties
against brute force and the contract's loop (docs/numerics.md §6b), garbage refused, and
calibrate_model on a small trained digits model agreeing with real cutoff inference."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgelearn import cutoff as co
from edgelearn.contract import CUTOFF_NEVER
from edgelearn.errors import ModelError

NEVER = CUTOFF_NEVER


def traj(rows):
    """[N][T][classes] nested lists -> int64 trajectories."""
    return np.array(rows, dtype=np.int64)


# Four samples, T = 3, two classes, every label 0 (gaps and settledness worked out by hand):
#   s0: [3,0] [4,0] [5,0]  gaps 3 4 5, correct throughout: settled at 0, 1, 2
#   s1: [2,0] [2,1] [2,3]  gaps 2 1 1, wrong at the end: settled nowhere
#   s2: [1,0] [3,0] [4,1]  gaps 1 3 3, settled everywhere
#   s3: [0,1] [1,1] [3,1]  gaps 1 0 2, wrong at 0, a tie (-> class 0) at 1: settled at 1, 2
HAND = traj([[[3, 0], [4, 0], [5, 0]],
             [[2, 0], [2, 1], [2, 3]],
             [[1, 0], [3, 0], [4, 1]],
             [[0, 1], [1, 1], [3, 1]]])
HAND_Y = np.zeros(4, dtype=np.int64)


# -- hand-computed ------------------------------------------------------------------------------
def test_top2_gaps_by_hand():
    assert co.top2_gaps(HAND).tolist() == [[3, 4, 5], [2, 1, 1], [1, 3, 3], [1, 0, 2]]
    three = traj([[[3, 1, 2], [2, 2, 0], [-5, -1, -3], [0, 7, 7], [4, 4, 4]]])
    assert co.top2_gaps(three).tolist() == [[1, 0, 2, 0, 0]]


def test_predictions_break_ties_to_the_lowest_index():
    assert co.predictions(traj([[[1, 1, 0], [0, 2, 2], [3, 3, 3]]])).tolist() == [[0, 1, 0]]


def test_settled_by_hand():
    assert co.settled(HAND, HAND_Y).tolist() == [[True, True, True], [False, False, False],
                                                 [True, True, True], [False, True, True]]


def test_calibrate_by_hand():
    # tolerance 0.3, support 1. t=0: m=0 -> 4 samples, 2 unsettled > 1.2; m=1 -> s0, s1: 1 > 0.6;
    # m=2 -> s0 alone, 0 unsettled: margin 2. t=1: m=0 -> s0, s1, s2: 1 > 0.9; m=1 -> s0, s2: margin 1.
    assert co.calibrate(HAND, HAND_Y, 0.3, min_support=1).tolist() == [2, 1, 0]
    # tolerance 0.5: 2 <= 2 at t=0 and 1 <= 1.5 at t=1, both at m=0
    assert co.calibrate(HAND, HAND_Y, 0.5, min_support=1).tolist() == [0, 0, 0]
    # support 2: at t=0 only m <= 1 has two samples above it, and those fail: never
    assert co.calibrate(HAND, HAND_Y, 0.3, min_support=2).tolist() == [NEVER, 1, 0]
    # support 4 at tolerance 0.5: m=0 has all four at t=0 (2 <= 2); at t=1 only three gaps exceed 0
    assert co.calibrate(HAND, HAND_Y, 0.5, min_support=4).tolist() == [0, NEVER, 0]


def test_stop_steps_and_evaluate_by_hand():
    steps, predicted = co.stop_steps(HAND, [2, 1, 0])
    # s0: 3 > 2 at t=0; s1: 2 !> 2, 1 !> 1: all 3 steps, class 1; s2: 3 > 1 at t=1; s3: runs 3
    assert steps.tolist() == [1, 3, 2, 3]
    assert predicted.tolist() == [0, 1, 0, 0]
    result = co.evaluate(HAND, HAND_Y, [2, 1, 0])
    assert (result.samples, result.T, result.accuracy, result.full_accuracy) == (4, 3, 0.75, 0.75)
    assert result.mean_steps == 2.25 and result.histogram == (1, 1, 2)
    assert result.steps_saved == pytest.approx(0.25) and result.loss_points == 0.0 and result.agreement == 1.0
    # a stop on a tie is impossible: margin 0 at t=1 stops s0, s1, s2 (gaps 4, 1, 3), not s3 (0)
    steps, predicted = co.stop_steps(HAND, [NEVER, 0, 0])
    assert steps.tolist() == [2, 2, 2, 3] and predicted.tolist() == [0, 0, 0, 0]


def test_stopping_early_can_lose_and_gain():
    # sample 0 is right early, wrong at the end; sample 1 the other way round
    t = traj([[[5, 0], [5, 6]], [[0, 4], [9, 4]]])
    y = np.array([0, 0])
    early = co.evaluate(t, y, [0, 0])
    assert early.mean_steps == 1.0 and early.accuracy == 0.5 and early.full_accuracy == 0.5
    assert early.agreement == 0.0                        # both changed their answer
    assert co.evaluate(t, y, [4, 0]).accuracy == 1.0     # only sample 0 stops (5 > 4)
    assert co.evaluate(t, y, [4, 0]).loss_points == -50.0


def test_default_support():
    assert co.default_support(0.01) == 100 and co.default_support(0.001) == 1000
    assert co.default_support(0.5) == co.MIN_SUPPORT_FLOOR
    assert co.default_support(0.003) == math.ceil(1 / 0.003)


def test_one_step_gives_the_single_zero_margin():
    assert co.calibrate(HAND[:, :1], HAND_Y, 0.1).tolist() == [0]
    assert co.stop_steps(HAND[:, :1], [0])[0].tolist() == [1, 1, 1, 1]


def test_tradeoff_and_operating_point():
    points = co.tradeoff(HAND, HAND_Y, [0.5, 0.3], min_support=1)
    assert [p.tolerance for p in points] == [0.3, 0.5]           # sorted
    assert points[0].margins == (2, 1, 0) and points[1].margins == (0, 0, 0)
    assert points[0].as_dict()["margins"] == [2, 1, 0]
    assert co.tradeoff(HAND, HAND_Y, [0.3], min_support=2)[0].as_dict()["margins"] == [None, 1, 0]
    best = co.operating_point(points, max_loss_points=0.5)
    assert best is not None and best.result.loss_points <= 0.5
    assert best.result.mean_steps == min(p.result.mean_steps for p in points if p.result.loss_points <= 0.5)
    assert co.operating_point(points, max_loss_points=-100) is None


def test_plots_write_pngs(tmp_path):
    points = co.tradeoff(HAND, HAND_Y, [0.3, 0.5], min_support=1)
    co.plot_tradeoff({"a": points, "b": points}, str(tmp_path / "t.png"), mark=points[0].result)
    co.plot_steps(points[0].result, str(tmp_path / "s.png"))
    for name in ("t.png", "s.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


# -- properties ----------------------------------------------------------------------------------
def ref_top2_gap(scores):
    """The contract's top2_gap, transliterated (docs/numerics.md §6b)."""
    best = 0
    for j in range(1, len(scores)):
        if scores[j] > scores[best]:
            best = j
    second = 1 if best == 0 else 0
    for j in range(len(scores)):
        if j != best and scores[j] > scores[second]:
            second = j
    return scores[best] - scores[second], best


def ref_stop(sample, margins):
    """The contract's per-sample decision: (steps, the leader there)."""
    T = len(sample)
    for t in range(T):
        gap, best = ref_top2_gap(list(sample[t]))
        if t + 1 < T and gap > margins[t]:
            return t + 1, best
    return T, ref_top2_gap(list(sample[T - 1]))[1]


def ok_at(gap, unsettled, m, tolerance, support):
    above = gap > m
    n = int(above.sum())
    return n >= support and int((above & unsettled).sum()) <= tolerance * n


def brute_margin(gap, unsettled, tolerance, support):
    for m in range(int(gap.max()) + 1):
        if ok_at(gap, unsettled, m, tolerance, support):
            return m
    return NEVER


@st.composite
def problems(draw, max_n=24, max_t=6, max_classes=4, max_score=6):
    """Small cumulative spike-count trajectories and labels."""
    n = draw(st.integers(1, max_n))
    T = draw(st.integers(1, max_t))
    classes = draw(st.integers(2, max_classes))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    increments = rng.integers(0, draw(st.integers(1, max_score)), (n, T, classes))
    labels = rng.integers(0, classes, n)
    boost = draw(st.integers(0, 3))                    # make the label's class win more or less often
    increments[np.arange(n), :, labels] += rng.integers(0, boost + 1, (n, T))
    return np.cumsum(increments, axis=1), labels


tolerances = st.floats(0.01, 0.95, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(problems(), st.integers(-50, 50))
def test_gaps_and_stops_follow_the_contract_loop(problem, shift):
    t, _ = problem
    t = t + shift                                      # negative scores too (summed li potentials)
    gaps = co.top2_gaps(t)
    rng = np.random.default_rng(int(t.sum()) & 0xFFFF)
    margins = rng.integers(0, 4, t.shape[1])
    margins[rng.random(t.shape[1]) < 0.2] = NEVER
    margins[-1] = 0
    steps, predicted = co.stop_steps(t, margins)
    for i in range(t.shape[0]):
        assert gaps[i].tolist() == [ref_top2_gap(list(s))[0] for s in t[i]]
        assert (steps[i], predicted[i]) == ref_stop(t[i], margins)


@settings(max_examples=150, deadline=None)
@given(problems(), tolerances, st.integers(1, 12))
def test_calibration_is_the_smallest_qualifying_margin(problem, tolerance, support):
    t, y = problem
    margins = co.calibrate(t, y, tolerance, min_support=support)
    gaps, unsettled = co.top2_gaps(t), ~co.settled(t, y)
    T = t.shape[1]
    assert margins.dtype == np.int64 and margins.shape == (T,) and margins[-1] == 0
    for step in range(T - 1):
        assert margins[step] == brute_margin(gaps[:, step], unsettled[:, step], tolerance, support)


@settings(max_examples=150, deadline=None)
@given(problems(), tolerances, st.integers(1, 12))
def test_the_stopped_errors_at_each_step_stay_within_the_tolerance(problem, tolerance, support):
    """Among the samples above step t's margin at most tolerance * n are unsettled; those that
    stop there with a wrong class are among them."""
    t, y = problem
    margins = co.calibrate(t, y, tolerance, min_support=support)
    steps, predicted = co.stop_steps(t, margins)
    gaps = co.top2_gaps(t)
    for step in range(t.shape[1] - 1):
        if margins[step] == NEVER:
            assert not np.any(steps == step + 1)
            continue
        n = int(np.sum(gaps[:, step] > margins[step]))
        assert n >= support
        wrong_here = int(np.sum((steps == step + 1) & (predicted != y)))
        assert wrong_here <= tolerance * n


@settings(max_examples=150, deadline=None)
@given(problems(), tolerances, tolerances, st.integers(1, 12), st.integers(1, 12))
def test_margins_are_monotone_in_tolerance_and_support(problem, e1, e2, s1, s2):
    t, y = problem
    (lo, hi), (few, many) = sorted((e1, e2)), sorted((s1, s2))
    # a larger tolerance, or a smaller support, never asks for a larger margin
    assert np.all(co.calibrate(t, y, hi, min_support=few) <= co.calibrate(t, y, lo, min_support=few))
    assert np.all(co.calibrate(t, y, lo, min_support=few) <= co.calibrate(t, y, lo, min_support=many))
    # so with the default support too (it falls as the tolerance rises)
    assert np.all(co.calibrate(t, y, hi) <= co.calibrate(t, y, lo))
    # and fewer steps, on the same trajectories
    assert co.evaluate(t, y, co.calibrate(t, y, hi)).mean_steps <= co.evaluate(t, y, co.calibrate(t, y, lo)).mean_steps


@settings(max_examples=60, deadline=None)
@given(problems())
def test_never_stopping_is_full_T(problem):
    t, y = problem
    T = t.shape[1]
    result = co.evaluate(t, y, [NEVER] * (T - 1) + [0])
    assert result.mean_steps == T and result.accuracy == result.full_accuracy
    assert result.histogram == (0,) * (T - 1) + (len(y),)


def test_calibration_is_fast_at_bench_size():
    import time
    rng = np.random.default_rng(0)
    n, T, classes = 10_000, 32, 10
    y = rng.integers(0, classes, n)
    inc = rng.integers(0, 2, (n, T, classes))
    inc[np.arange(n), :, y] += rng.integers(0, 2, (n, T))
    t = np.cumsum(inc, axis=1)
    start = time.perf_counter()
    margins = co.calibrate(t, y, 0.01)
    assert time.perf_counter() - start < 2.0
    gaps, unsettled = co.top2_gaps(t), ~co.settled(t, y)
    for step in (0, 5, 30):     # spot checks against brute force at full size
        assert margins[step] == brute_margin(gaps[:, step], unsettled[:, step], 0.01, 100)


# -- garbage ------------------------------------------------------------------------------------
@pytest.mark.parametrize("tolerance", [0, 1, 0.0, 1.0, -0.1, 1.5, float("nan"), float("inf"), "0.1", None, True])
def test_bad_tolerances(tolerance):
    with pytest.raises(ModelError, match="tolerance"):
        co.calibrate(HAND, HAND_Y, tolerance)


@pytest.mark.parametrize("support", [0, -1, 1.5, True, "3"])
def test_bad_support(support):
    with pytest.raises(ModelError, match="min_support"):
        co.calibrate(HAND, HAND_Y, 0.1, min_support=support)


@pytest.mark.parametrize("bad, needle", [
    (np.zeros((4, 3), dtype=np.int64), "samples, steps, classes"),
    (np.zeros((4, 3, 1), dtype=np.int64), "1 class"),
    (np.zeros((0, 3, 2), dtype=np.int64), "no samples"),
    (np.zeros((4, 0, 2), dtype=np.int64), "no samples or no steps"),
    (np.zeros((4, 3, 2)), "integer scores"),
    (np.full((4, 3, 2), 2**62 + 1, dtype=np.int64), "beyond"),
    ([[["a", "b"]]], "integer scores"),
])
def test_bad_trajectories(bad, needle):
    with pytest.raises(ModelError, match=needle):
        co.calibrate(bad, HAND_Y, 0.1)
    with pytest.raises(ModelError, match=needle):
        co.stop_steps(bad, [0, 0, 0])


@pytest.mark.parametrize("labels, needle", [
    (np.zeros(3, dtype=np.int64), r"\[4\]"),
    (np.zeros((4, 1), dtype=np.int64), r"\[4\]"),
    (np.array([0, 1, 2, 0]), "0..1"),
    (np.array([0, -1, 0, 0]), "0..1"),
    (np.zeros(4), "integers"),
])
def test_bad_labels(labels, needle):
    with pytest.raises(ModelError, match=needle):
        co.calibrate(HAND, labels, 0.1)


@pytest.mark.parametrize("margins, needle", [
    ([0, 0], "2 margins for T = 3"),
    ([0, 0, 0, 0], "4 margins for T = 3"),
    ([[0, 0, 0]], "margins for T = 3"),
    ([-1, 0, 0], "margin 0 is -1"),
    ([0, 2**63, 0], "margin 1"),
    ([0, 1.5, 0], "margin 1 is 1.5"),
    ([0, True, 0], "margin 1 is True"),
])
def test_bad_margins(margins, needle):
    with pytest.raises(ModelError, match=needle):
        co.stop_steps(HAND, margins)


def test_summarise_refuses_mismatched_runs():
    with pytest.raises(ModelError, match="alike"):
        co.summarise([0, 1], [1, 1, 1], [0, 1, 1], [0, 1, 1], 3)
    with pytest.raises(ModelError, match="1..T = 3"):
        co.summarise([0], [4], [0], [0], 3)
    with pytest.raises(ModelError, match="no tolerances"):
        co.tradeoff(HAND, HAND_Y, [])

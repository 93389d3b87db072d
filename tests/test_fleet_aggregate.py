"""Federated averaging in the numeric contract (docs/numerics.md §6d, edgelearn/fleet/aggregate.py):
worked values, exactness against a big-integer reference, permutation invariance, identity
when every client agrees, the ranges it keeps, the schedule's count, the seeds, and refusals."""
import random
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgelearn.fleet.aggregate import (MAX_TOTAL_SAMPLES, AggregationError, Update, client_seed, fedavg, fmix32,
                                       weighted_mean)
from edgelearn.model import Cutoff, Learning, Schedule, init_params, mlp
from edgelearn.modelblob import to_blob
from edgelearn.numerics import ONE


def model(seed=1, schedule=None, **learning):
    m = init_params(mlp("tiny", [6, 5, 3], learning=Learning(seed=seed, **learning)))
    m.schedule = schedule
    return m


def varied(base, rng: np.random.Generator, learned_extra=0):
    """``base`` with every learned parameter moved (as a round of learning would), its seed
    changed, and its schedule count advanced by ``learned_extra``."""
    m = base.copy()
    for p in m.params.values():
        p.weight[:] = rng.integers(-32768, 32768, p.weight.shape)
        p.threshold[:] = rng.integers(4096, 1 << 31, p.threshold.shape)
        p.leak = int(rng.integers(0, ONE + 1))
    m.learning = Learning(**{**base.learning.__dict__, "seed": int(rng.integers(0, 1 << 32))})
    if base.schedule is not None:
        m.schedule = Schedule(base.schedule.every, base.schedule.steps, base.schedule.learned + learned_extra)
    return m


def big_mean(values, counts):
    """The exact sum_k n_k x_k / N, rounded to nearest with ties to even (Fraction's round)."""
    n = sum(counts)
    return [round(Fraction(sum(c * int(v[i]) for v, c in zip(values, counts)), n)) for i in range(len(values[0]))]


# -- worked values (numerics.md §6d) ---------------------------------------------------------------

@pytest.mark.parametrize("values, counts, expected", [
    ((3, 4), (1, 1), 4),          # 3.5: ties to even
    ((1, 2), (1, 1), 2),          # 1.5
    ((2, 3), (1, 1), 2),          # 2.5
    ((0, 1), (1, 1), 0),          # 0.5
    ((-1, 0), (1, 1), 0),         # -0.5
    ((-3, -4), (1, 1), -4),       # -3.5
    ((-1, -2), (1, 1), -2),       # -1.5
    ((0, 4), (1, 3), 3),          # 12/4, exact
    ((1, 2), (1, 2), 2),          # 5/3 = 1.67
    ((-1, -2), (2, 1), -1),       # -4/3 = -1.33
    ((-32768, 32767), (1, 1), 0),  # -0.5
    ((7,), (5,), 7),
])
def test_worked_values(values, counts, expected):
    got = weighted_mean([np.array([v]) for v in values], counts)
    assert got.dtype == np.int64 and int(got[0]) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 1 << 20), st.lists(st.integers(-(1 << 31), (1 << 31) - 1),
                                                            min_size=4, max_size=4)), min_size=1, max_size=12))
def test_exact_against_a_big_integer_reference(clients):
    counts = [c for c, _ in clients]
    values = [np.array(v, dtype=np.int64) for _, v in clients]
    assert weighted_mean(values, counts).tolist() == big_mean(values, counts)


def test_the_largest_total_stays_exact():
    """N = 2^31 - 1 samples and thresholds at 2^31 - 1: the sums stay below 2^63."""
    counts = [MAX_TOTAL_SAMPLES - 3, 1, 2]
    values = [np.array([(1 << 31) - 1, -(1 << 31)], dtype=np.int64),
              np.array([1, (1 << 31) - 1], dtype=np.int64), np.array([-(1 << 31), 5], dtype=np.int64)]
    assert weighted_mean(values, counts).tolist() == big_mean(values, counts)


# -- fedavg ------------------------------------------------------------------------------------

@pytest.mark.parametrize("schedule", [None, Schedule(every=100, steps=3, learned=250)])
def test_matches_the_reference_per_parameter(schedule):
    base = model(schedule=schedule)
    rng = np.random.default_rng(5)
    counts = [17, 250, 3, 99]
    clients = [varied(base, rng, n) for n in counts]
    merged = fedavg(base, [Update(m, n, str(k)) for k, (m, n) in enumerate(zip(clients, counts))])
    for name, p in merged.params.items():
        layer = [c.params[name] for c in clients]
        assert p.weight.dtype == np.int16 and p.threshold.dtype == np.int32
        assert p.weight.ravel().tolist() == big_mean([q.weight.ravel() for q in layer], counts)
        assert p.threshold.tolist() == big_mean([q.threshold for q in layer], counts)
        assert [p.leak] == big_mean([[q.leak] for q in layer], counts)
    assert merged.learning == base.learning                # the global seed, not a client's
    if schedule is not None:
        gained = big_mean([[n] for n in counts], counts)[0]
        assert merged.schedule == Schedule(100, 3, 250 + gained)


def test_permutation_of_the_clients_changes_no_bit():
    base = model(schedule=Schedule(every=64, steps=2))
    rng = np.random.default_rng(11)
    updates = [Update(varied(base, rng, n), n, str(k)) for k, n in enumerate([5, 40, 40, 1, 700, 13])]
    expected = to_blob(fedavg(base, updates))
    for seed in range(5):
        shuffled = updates[:]
        random.Random(seed).shuffle(shuffled)
        assert to_blob(fedavg(base, shuffled)) == expected


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 1 << 24), min_size=1, max_size=9), st.integers(0, 1 << 30))
def test_identity_when_every_client_agrees(counts, seed):
    base = model(schedule=Schedule(every=7, steps=5, learned=3))
    agreed = varied(base, np.random.default_rng(seed))
    updates = []
    for n in counts:
        m = agreed.copy()
        m.schedule = Schedule(7, 5, 3 + n)
        updates.append(Update(m, n))
    merged = fedavg(base, updates)
    for name, p in merged.params.items():
        q = agreed.params[name]
        assert np.array_equal(p.weight, q.weight) and np.array_equal(p.threshold, q.threshold) and p.leak == q.leak


def test_a_single_client_is_taken_as_it_is():
    base = model()
    m = varied(base, np.random.default_rng(2))
    merged = fedavg(base, [Update(m, 9)])
    assert all(np.array_equal(merged.params[k].weight, m.params[k].weight) for k in m.params)


def test_the_aggregate_stays_between_the_clients_extremes():
    """Convex: int16 weights never wrap, leaks stay in [0, ONE], thresholds positive; so no
    saturation is needed, and the threshold floor is not applied (a threshold below 4096 stays
    one of the inputs' span)."""
    base = model()
    lo, hi = base.copy(), base.copy()
    for a, b in zip(lo.params.values(), hi.params.values()):
        a.weight[:], b.weight[:] = -32768, 32767
        a.threshold[:], b.threshold[:] = 1, (1 << 31) - 1
        a.leak, b.leak = 0, ONE
    rng = np.random.default_rng(3)
    for _ in range(20):
        counts = [int(c) for c in rng.integers(1, 1000, 2)]
        merged = fedavg(base, [Update(lo, counts[0]), Update(hi, counts[1])])
        for p in merged.params.values():
            assert p.weight.min() >= -32768 and p.weight.max() <= 32767
            assert p.threshold.min() >= 1 and 0 <= p.leak <= ONE
    below_floor = base.copy()
    for p in below_floor.params.values():
        p.threshold[:] = 100
    merged = fedavg(base, [Update(below_floor, 1), Update(below_floor, 2)])
    assert all((p.threshold == 100).all() for p in merged.params.values())


# -- refusals ----------------------------------------------------------------------------------

def test_refuses_what_it_cannot_average():
    base = model(schedule=Schedule(every=10, steps=2, learned=4))
    ok = varied(base, np.random.default_rng(1), 5)
    with pytest.raises(AggregationError, match="no updates"):
        fedavg(base, [])
    for bad in (0, -3, True, 2.5):
        with pytest.raises(AggregationError, match="positive integer"):
            fedavg(base, [Update(ok, bad, "b")])
    with pytest.raises(AggregationError, match="client b: its schedule counts 9 .* make 10"):
        fedavg(base, [Update(ok, 6, "b")])
    other = model(schedule=Schedule(every=10, steps=2, learned=4), lr_weight_shift=7)
    with pytest.raises(AggregationError, match="client c: its model differs"):
        fedavg(base, [Update(ok, 5, "a"), Update(varied(other, np.random.default_rng(2), 5), 5, "c")])
    wider = init_params(mlp("tiny", [6, 6, 3], learning=base.learning))
    wider.schedule = Schedule(10, 2, 9)
    with pytest.raises(AggregationError, match="differs"):
        fedavg(base, [Update(wider, 5)])
    with pytest.raises(AggregationError, match=r"2\^31 - 1"):
        plain = model()
        fedavg(plain, [Update(varied(plain, np.random.default_rng(4)), MAX_TOTAL_SAMPLES),
                       Update(varied(plain, np.random.default_rng(5)), 1)])
    calibrated = model()
    calibrated.cutoff = Cutoff(tuple([0] * calibrated.learning.T), 0.01)
    with pytest.raises(AggregationError, match="cutoff margins"):
        fedavg(calibrated, [Update(calibrated, 1)])


# -- seeds -------------------------------------------------------------------------------------

def test_fmix32_worked_values():
    assert fmix32(0) == 0 and fmix32(1) == 0x514E28B7 and fmix32(0xFFFFFFFF) == 0x81F16F39


def test_client_seeds_are_fixed_and_distinct():
    assert client_seed(1, 0, 0) == 0x5716F995 and client_seed(1, 0, 1) == 0xBB704EB1
    assert client_seed(1, 1, 0) == 0xF124DB11
    seeds = {client_seed(1, r, c) for r in range(64) for c in range(64)}
    assert len(seeds) == 64 * 64 and all(0 <= s < 1 << 32 for s in seeds)
    top_bytes = {s >> 24 for s in (client_seed(1, 0, c) for c in range(32))}
    assert len(top_bytes) > 20                   # nearby clients do not share their top bits
    for bad in ((-1, 0, 0), (0, 1 << 32, 0), (0, 0, -1), (True, 0, 0)):
        with pytest.raises(AggregationError, match="0..2"):
            client_seed(*bad)

"""Input encoders (edgelearn/encoders.py): direct, rate and events, and the PRNG draws
they take from the input stream."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgelearn import numerics as nx
from edgelearn.encoders import CODES, DIRECT, EVENTS, RATE, SEQUENCE, as_rows, encode_step, events_from_list

MASK32 = 0xFFFFFFFF


def ref_stream(seed: int, n: int) -> list[int]:
    """Independent xorshift32 (13, 17, 5), seed 0 replaced as numerics documents."""
    state = seed & MASK32 or nx.XORSHIFT_DEFAULT_SEED
    out = []
    for _ in range(n):
        state ^= (state << 13) & MASK32
        state ^= state >> 17
        state ^= (state << 5) & MASK32
        out.append(state)
    return out


def encode(code, sample, t, rng, n=None, fill=0):
    out = np.full(n if n is not None else sample.shape[1], fill, dtype=np.int32)
    frac = encode_step(code, sample, t, rng, out)
    return frac, out


def test_codes():
    assert CODES == {"direct": DIRECT, "rate": RATE, "events": EVENTS, "sequence": SEQUENCE}
    assert len({DIRECT, RATE, EVENTS, SEQUENCE}) == 4


# -- direct -------------------------------------------------------------------------------------
def test_direct_returns_the_sample_with_frac_8():
    sample = np.array([[0, 1, 17, 128, 254, 255]], dtype=np.uint8)
    rng = nx.new_rng(5)
    for t in (0, 3, 1000):
        frac, out = encode(DIRECT, sample, t, rng, fill=-7)
        assert frac == nx.INPUT_FRAC == 8
        np.testing.assert_array_equal(out, [0, 1, 17, 128, 254, 255])
    assert int(rng[0]) == 5                     # direct draws nothing


# -- rate ---------------------------------------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(st.integers(0, MASK32), st.lists(st.integers(0, 255), min_size=1, max_size=40), st.integers(1, 5))
def test_rate_matches_reference_and_draws_n_per_step(seed, pixels, steps):
    sample = np.array([pixels], dtype=np.uint8)
    n = len(pixels)
    rng = nx.new_rng(seed)
    draws = ref_stream(seed, n * steps)
    for t in range(steps):
        frac, out = encode(RATE, sample, t, rng, fill=9)
        assert frac == 0
        expected = [1 if (draws[t * n + i] >> 24) < pixels[i] else 0 for i in range(n)]
        assert out.tolist() == expected
        assert int(rng[0]) == draws[t * n + n - 1]     # exactly n draws this step


def test_rate_is_deterministic_for_a_seed_and_differs_across_seeds():
    sample = np.full((1, 256), 128, dtype=np.uint8)

    def run(seed):
        rng = nx.new_rng(seed)
        return np.stack([encode(RATE, sample, t, rng)[1] for t in range(8)])

    a, b, c = run(3), run(3), run(4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_rate_zero_never_spikes():
    sample = np.zeros((1, 500), dtype=np.uint8)
    rng = nx.new_rng(1)
    total = sum(int(encode(RATE, sample, t, rng)[1].sum()) for t in range(100))
    assert total == 0
    assert int(rng[0]) == ref_stream(1, 500 * 100)[-1]   # zeros still draw


@pytest.mark.parametrize("x", [1, 16, 64, 128, 200, 255])
def test_rate_probability_is_x_over_256(x):
    n_in, steps = 1000, 20
    n = n_in * steps
    sample = np.full((1, n_in), x, dtype=np.uint8)
    rng = nx.new_rng(12345)
    spikes = sum(int(encode(RATE, sample, t, rng)[1].sum()) for t in range(steps))
    p = x / 256
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(spikes - n * p) <= 5 * sigma + 1, (x, spikes, n * p)
    if x == 255:
        assert spikes < n                         # 255 is not "always"


def test_rate_255_misses_only_on_top_byte_255():
    """x = 255 spikes unless the draw's top byte is 255: probability 255/256, exactly."""
    n_in = 4096
    sample = np.full((1, n_in), 255, dtype=np.uint8)
    rng = nx.new_rng(77)
    _, out = encode(RATE, sample, 0, rng)
    misses = [i for i, d in enumerate(ref_stream(77, n_in)) if d >> 24 == 255]
    assert np.flatnonzero(out == 0).tolist() == misses


# -- events -------------------------------------------------------------------------------------
def test_events_step_t_reads_row_t_and_past_the_end_is_silent():
    stream = np.array([[1, 0, 0, 5],
                       [0, 1, 0, 0],
                       [0, 0, 255, 1]], dtype=np.uint8)
    rng = nx.new_rng(9)
    for t in range(3):
        frac, out = encode(EVENTS, stream, t, rng, fill=3)
        assert frac == 0
        np.testing.assert_array_equal(out, (stream[t] != 0).astype(np.int32))
    for t in (3, 4, 100):
        frac, out = encode(EVENTS, stream, t, rng, fill=3)   # stale values must be cleared
        assert frac == 0
        assert out.tolist() == [0, 0, 0, 0]
    assert int(rng[0]) == 9                     # events draw nothing


def test_events_from_list():
    dense = events_from_list([(0, 1), (2, 0), (2, 3), (2, 3)], T=3, n=4)
    assert dense.dtype == np.uint8 and dense.shape == (3, 4)
    np.testing.assert_array_equal(dense, [[0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 1]])
    assert not events_from_list([], T=2, n=5).any()


@pytest.mark.parametrize("event", [(3, 0), (-1, 0), (0, 4), (0, -1), (10, 10)])
def test_events_from_list_rejects_out_of_range(event):
    with pytest.raises(ValueError) as info:
        events_from_list([(0, 0), event], T=3, n=4)
    msg = str(info.value)
    assert f"({event[0]}, {event[1]})" in msg
    assert "3 steps" in msg and "4 inputs" in msg


def test_events_from_list_feeds_the_encoder():
    dense = events_from_list([(1, 2)], T=2, n=3)
    rng = nx.new_rng(1)
    assert encode(EVENTS, dense, 0, rng)[1].tolist() == [0, 0, 0]
    assert encode(EVENTS, dense, 1, rng)[1].tolist() == [0, 0, 1]


def test_as_rows():
    flat = np.arange(5, dtype=np.uint8)
    assert as_rows(flat).shape == (1, 5)
    np.testing.assert_array_equal(as_rows(flat)[0], flat)
    rows = np.zeros((4, 5), dtype=np.uint8)
    assert as_rows(rows) is rows

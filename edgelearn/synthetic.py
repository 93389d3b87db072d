"""Synthetic sequence tasks, generated from a seed (nothing is downloaded): the lagged XOR, a task that
needs memory (docs/psn.md §6; ``--data lagged-xor``, bench/delayed_cue.py).

Two bits arrive as cues ``lag`` steps apart (each a 2-step pulse on one of two channels: channel 0
for a 0, channel 1 for a 1, the first at a random step 0..jitter), under uniform distractor noise on
every channel and step; the class is A xor B. A network whose neurons see only the last few steps
scores f(A) + g(B) summed over time, which cannot be XOR."""
from __future__ import annotations

import numpy as np

# the named dataset: 2000 training and 1000 test sequences of T = 32 steps, the cues 16 steps apart
LAGGED_XOR = {"n_train": 2000, "n_test": 1000, "T": 32, "lag": 16, "jitter": 6, "noise": 64, "seed": 1}
TEST_SEED_OFFSET = 1000


def lagged_xor(n: int, T: int, lag: int, jitter: int, noise: int, seed: int, target: str = "xor"):
    """x uint8 [n, T, 2] (Q0.8 currents), y = A xor B (``target`` "a" or "b": one cue's bit, the
    controls that need no memory across the lag)."""
    if jitter + lag + 2 > T:
        raise ValueError(f"the second cue ends after step {jitter + lag + 2} of T = {T}: lower lag or jitter")
    rng = np.random.default_rng(seed)
    x = rng.integers(0, noise + 1, (n, T, 2)).astype(np.uint8)
    a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    t0 = rng.integers(0, jitter + 1, n)
    for i in range(n):
        x[i, t0[i]:t0[i] + 2, a[i]] = 255
        x[i, t0[i] + lag:t0[i] + lag + 2, b[i]] = 255
    return x, {"xor": a ^ b, "a": a, "b": b}[target].astype(np.int64)


def lagged_xor_splits(n_train: int, n_test: int, T: int, lag: int, jitter: int, noise: int, seed: int,
                      target: str = "xor"):
    """(training, test) pairs of (x, y), the test split from seed + TEST_SEED_OFFSET."""
    return (lagged_xor(n_train, T, lag, jitter, noise, seed, target),
            lagged_xor(n_test, T, lag, jitter, noise, seed + TEST_SEED_OFFSET, target))

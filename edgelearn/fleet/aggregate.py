"""Federated averaging of integer parameters, in the numeric contract (docs/numerics.md §6d).

    merged = fedavg(global_model, [Update(model_k, samples_k), ...])
    seed_k = client_seed(global_model.learning.seed, round_, client)   # the seed client k learns with

The one implementation: the ServerApp aggregates with it, the host reference of a federation
(``edgelearn.fleet.reference``) too, and tests/test_fleet_aggregate.py checks it against a
big-integer reference. Nothing here imports Flower.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from ..contract import MAX_LEARNED
from ..errors import ModelError
from ..model import LayerParams, Model
from ..modelblob import to_blob

# The most samples one aggregation may weigh: every weighted sum stays below 2^63 (§6d, bounds).
MAX_TOTAL_SAMPLES = (1 << 31) - 1


class AggregationError(ValueError):
    """Updates that cannot be averaged; the message names the client and what is wrong."""


@dataclass(frozen=True)
class Update:
    """What one client returns from a round: its model after learning ``samples`` samples
    (each once, in order) from the round's global model. ``client`` names it in errors."""
    model: Model
    samples: int
    client: str = "?"


def weighted_mean(values: Sequence[np.ndarray], counts: Sequence[int]) -> np.ndarray:
    """sum_k n_k x_k / N (N = sum_k n_k), rounded to the nearest integer, ties to even, as
    int64. Every value and count is an integer; N >= 1 and |sum| < 2^63 (the caller's bound)."""
    total = np.zeros(np.shape(values[0]), dtype=np.int64)
    for x, n in zip(values, counts):
        total += np.int64(n) * np.asarray(x, dtype=np.int64)
    n_total = np.int64(sum(int(n) for n in counts))
    quotient = np.floor_divide(total, n_total)          # floor, for either sign
    twice_rest = 2 * (total - quotient * n_total)       # 0 <= 2 r < 2 N
    up = (twice_rest > n_total) | ((twice_rest == n_total) & (quotient % 2 == 1))
    return quotient + up


def fmix32(x: int) -> int:
    """MurmurHash3's 32-bit finaliser: a bijection of 0..2^32-1 in which every input bit
    flips each output bit with probability about 1/2."""
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    return x ^ (x >> 16)


def client_seed(seed: int, round_: int, client: int) -> int:
    """The seed client ``client`` (its partition, 0-based) learns with in round ``round_``
    (0-based), so that no two boards and no two rounds draw the same stochastic-rounding
    stream: ``fmix32(fmix32(fmix32(seed) ^ round) ^ client)``. Nearby seeds would give
    xorshift32 streams whose first draws share their top bits, the bits stochastic rounding
    reads; fmix32 spreads a one-bit difference over the whole word."""
    for word in (seed, round_, client):
        if isinstance(word, bool) or not 0 <= word <= 0xFFFFFFFF:
            raise AggregationError(f"seed, round and client must be in 0..2^32-1, got {word!r}")
    return fmix32(fmix32(fmix32(int(seed)) ^ int(round_)) ^ int(client))


def constants_blob(model: Model, like: Model) -> bytes:
    """``model``'s blob with the state it learns (parameters, the schedule's count) and its
    seed taken from ``like``: equal to ``to_blob(like)`` exactly when the two models differ
    in nothing else."""
    same = model.copy()
    same.params = like.copy().params
    same.learning = replace(model.learning, seed=like.learning.seed)
    if model.schedule is not None and like.schedule is not None:
        same.schedule = replace(model.schedule, learned=like.schedule.learned)
    return to_blob(same)


def check_update(global_model: Model, update: Update) -> None:
    """Refuse an update that is not the global model plus what ``samples`` samples taught it."""
    who = f"client {update.client}"
    if isinstance(update.samples, bool) or not isinstance(update.samples, (int, np.integer)) or update.samples < 1:
        raise AggregationError(f"{who}: samples must be a positive integer, got {update.samples!r}")
    try:
        same = constants_blob(update.model, global_model) == to_blob(global_model)
    except ModelError:                   # the global parameters do not even fit its layers
        same = False
    if not same:
        raise AggregationError(f"{who}: its model differs from the global model {global_model.name!r} in more than "
                               "the learned parameters, the schedule's count and the seed (another structure, "
                               "Q-format or learning constant)")
    if global_model.schedule is not None:
        expected = min(global_model.schedule.learned + int(update.samples), MAX_LEARNED)
        if update.model.schedule.learned != expected:
            raise AggregationError(f"{who}: its schedule counts {update.model.schedule.learned} samples learned; "
                                   f"the global model's {global_model.schedule.learned} plus the {update.samples} "
                                   f"it reports make {expected}")


def fedavg(global_model: Model, updates: Sequence[Update]) -> Model:
    """The federated average of ``updates`` (docs/numerics.md §6d): every weight, threshold and
    leak, and the schedule's count, the sample-weighted mean of the clients', rounded to
    nearest with ties to even; the structure, constants and seed are the global model's."""
    if global_model.cutoff is not None:
        raise AggregationError(f"{global_model.name!r} carries cutoff margins, which hold only for the parameters "
                               "they were calibrated with: drop them, and calibrate the federated model")
    if not updates:
        raise AggregationError("no updates to average: a round without any keeps the global model as it is")
    for update in updates:
        check_update(global_model, update)
    counts = [int(u.samples) for u in updates]
    if sum(counts) > MAX_TOTAL_SAMPLES:
        raise AggregationError(f"{sum(counts)} samples in one aggregation; at most {MAX_TOTAL_SAMPLES} (2^31 - 1) "
                               "keep the weighted sums inside int64")
    merged = global_model.copy()
    for name in merged.params:
        layer = [u.model.params[name] for u in updates]
        merged.params[name] = LayerParams(
            weighted_mean([p.weight for p in layer], counts).astype(np.int16),
            weighted_mean([p.threshold for p in layer], counts).astype(np.int32),
            int(weighted_mean([np.int64(p.leak) for p in layer], counts)))
    if global_model.schedule is not None:
        start = global_model.schedule.learned
        gained = weighted_mean([np.int64(u.model.schedule.learned - start) for u in updates], counts)
        merged.schedule = replace(global_model.schedule, learned=start + int(gained))
    return merged.validate()

"""Smoke test of the edgelearn side of the peer benchmark (bench/peers_edge.py). The
peers themselves need torch, which lives only in the benchmark's own environment
(bench/.venv-peers); nothing here imports it."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import peers_edge as pe  # noqa: E402

from edgelearn.rules.stop.fixed import FixedSTOP  # noqa: E402
from edgelearn.rules.stop.float import FloatSTOP  # noqa: E402


def test_no_torch_on_the_edgelearn_side():
    assert "torch" not in sys.modules


def test_learning_rate_shrinks_with_T():
    assert [pe.lr_weight_shift(T) for T in pe.T_VALUES] == [6, 7, 8, 9, 10, 11]


@pytest.mark.parametrize("net", list(pe.NETWORKS))
def test_fixed_memory_is_flat_in_T(net):
    sizes = pe.NETWORKS[net][1]
    totals = {pe.fixed_memory(FixedSTOP(pe.make_model(net, T)))["total"] for T in (8, 256)}
    assert len(totals) == 1
    mem = pe.fixed_memory(FixedSTOP(pe.make_model(net, 8)))
    n_weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    assert mem["parameters"] >= 2 * n_weights          # int16 weights
    assert mem["buffers"]["weight_grad"] == 0          # per-step STOP keeps no gradient
    assert mem["total"] == mem["parameters"] + mem["training_state"]


def test_float_twin_memory_counts_state_per_batch():
    twin = FloatSTOP(pe.make_model("64-128-10", 8))
    one, many = pe.float_memory(twin, 1), pe.float_memory(twin, 32)
    assert many["total"] > one["total"] and many["parameters"] == one["parameters"]


def test_edgelearn_cell_times_and_measures():
    r = pe.edgelearn_cell("64-128-10", 8, 2, budget_s=0.05, min_repeats=2, max_repeats=2, n_batches=8)
    assert r["seconds_per_sample"] > 0 and r["repeats"] == 2
    assert r["memory"]["buffers"]["weight_grad"] > 0   # a batch accumulates
    assert 0.0 <= r["silent_fraction"] <= 1.0


def test_train_for_stops_at_the_budget():
    calls = []
    r = pe.train_for(0.01, lambda i: calls.append(i), lambda: 0.5, n_train=5)
    assert r["samples"] == len(calls) > 0 and r["test_accuracy"] == 0.5
    assert sorted(calls[:5]) == list(range(5))           # every sample once per epoch


def test_time_training_reports_per_sample_seconds():
    t = pe.time_training(lambda i: None, 4, 2, budget_s=0.001, min_repeats=3, max_repeats=3)
    assert t.repeats == 3 and t.seconds_per_sample >= 0
    assert np.isfinite(t.spread)


def test_device_memory_from_the_profiler_is_flat_in_T_and_BPTT_grows():
    import peers
    rows = peers.device_memory(["64-128-10"], [8, 256])
    assert rows[0]["arena"] == rows[1]["arena"] > 0 and rows[0]["ram"] == rows[1]["ram"]
    assert rows[1]["ram_bptt"] > rows[0]["ram_bptt"] > rows[0]["ram"]
    assert "torch" not in sys.modules

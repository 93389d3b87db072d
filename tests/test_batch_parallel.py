"""FixedSTOP's parallel batch (docs/numerics.md §6e) against its sequential batch, the reference:
the same scores after every run and the same state, buffer by buffer (parameters, both PRNG
streams, every arena buffer, scratch included), with the parallel path checked to have run."""
from dataclasses import replace
from pathlib import Path

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agree import assert_same_state
from edgelearn.contract import SUM_LIMIT
from edgelearn.model import Learning, Neuron, init_params, mlp
from edgelearn.modelblob import to_blob
from edgelearn.modelfile import load_model
from edgelearn.rules.stop import batch
from edgelearn.rules.stop.fixed import FixedSTOP
from edgelearn.train import make_learner
from test_native import random_models

ROOT = Path(__file__).resolve().parents[1]


def samples_for(model, rng, B, rows=None):
    n = model.input.size
    if model.input.encoding in ("events", "sequence"):
        high = 2 if model.input.encoding == "events" else 256
        return rng.integers(0, high, size=(B, rows or model.learning.T, n), dtype=np.uint8)
    return rng.integers(0, 256, size=(B, n), dtype=np.uint8)


def assert_parallel_is_sequential(model, batches, learn=True, threads=2, expect_parallel=True):
    """Run the same batches through threads=1 and ``threads``; equal after every run."""
    seq, par = FixedSTOP(model.copy(), threads=1), FixedSTOP(model.copy(), threads=threads)
    for x, y in batches:
        np.testing.assert_array_equal(seq.run(x, y, learn), par.run(x, y, learn))
        assert seq.threads_used == 1
        assert (par.threads_used > 1) == expect_parallel
        assert_same_state(seq, par)
    assert to_blob(seq.to_model()) == to_blob(par.to_model())
    return par


@pytest.mark.parametrize("encoding", ["direct", "rate", "events", "sequence"])
@pytest.mark.parametrize("B", [2, 8, 32])
def test_dense_batches_are_bit_exact(encoding, B):
    model = init_params(mlp("p", [24, 16, 12, 5], encoding=encoding,
                            learning=Learning(T=6, lr_weight_shift=4, update="sample", seed=7)), weight_gain=2.5)
    rng = np.random.default_rng(B)
    batches = [(samples_for(model, rng, B), rng.integers(0, 5, size=B)) for _ in range(3)]
    par = assert_parallel_is_sequential(model, batches)
    assert not np.array_equal(par.weights, FixedSTOP(model).weights)          # it learned
    assert_parallel_is_sequential(model, batches, learn=False)                 # inference batches too


def test_uneven_chunks_and_more_threads_than_cores():
    model = init_params(mlp("p", [20, 10, 4], encoding="rate", learning=Learning(T=5, update="sample")))
    rng = np.random.default_rng(3)
    batches = [(samples_for(model, rng, 8), rng.integers(0, 4, size=8)) for _ in range(2)]
    assert_parallel_is_sequential(model, batches, threads=3)                  # chunks of 2, 3, 3
    assert_parallel_is_sequential(model, batches, threads=8)                  # one sample a chunk


def test_a_per_step_model_learns_a_batch_in_parallel_with_lent_sums():
    model = init_params(mlp("s", [16, 8, 4], learning=Learning(T=4, update="step")), weight_gain=2.5)
    rng = np.random.default_rng(1)
    batches = [(samples_for(model, rng, 4), rng.integers(0, 4, size=4)) for _ in range(3)]
    par = assert_parallel_is_sequential(model, batches)
    assert par.buffers()["weight_grad"].size == 0          # lent for the batch only, as before


def test_the_int8_model_on_a_few_samples():
    model = load_model(ROOT / "models" / "mnist-stop-int8.json")
    rng = np.random.default_rng(5)
    batches = [(samples_for(model, rng, 8), rng.integers(0, 10, size=8)) for _ in range(2)]
    assert_parallel_is_sequential(model, batches)


def test_a_conv_model_infers_in_parallel_and_learns_sequentially():
    """The bound of §6e covers dense stacks only: a convolutional model's learning batch runs
    sequentially (and is still exact), its inference batch in parallel."""
    model = load_model(ROOT / "models" / "lenet5-mnist-stop.json")
    model.learning = replace(model.learning, T=2)
    rng = np.random.default_rng(2)
    batches = [(samples_for(model, rng, 4), rng.integers(0, 10, size=4))]
    assert_parallel_is_sequential(model, batches, learn=False)
    assert_parallel_is_sequential(model, batches, learn=True, expect_parallel=False)


def test_a_batch_that_could_saturate_runs_sequentially():
    """Weights at the int16 limits, an li readout (its error has no surrogate to vanish) and a
    long sample: the readout's leak sums saturate, the bound sees that they could, and the
    batch takes the sequential path (exact by definition)."""
    model = init_params(mlp("big", [64, 64, 4], readout=Neuron("li", leak=0.9, learn_leak=True),
                            learning=Learning(T=200, update="sample")))
    for layer in model.layers:
        model.params[layer.name].weight[:] = 32767
    net = FixedSTOP(model, threads=2)
    x = np.full((4, 64), 255, dtype=np.uint8)
    assert not batch.saturation_free(net.table, net.params, net.config, 4, 255, net.arena)
    assert not batch.saturation_free(net.table, net.params, net.config, 4, 255, net.arena, batch.chunk_rows(x))
    assert net.batch_threads(x, learn=True) == 1
    assert net.batch_threads(x, learn=False) == 2          # inference sums nothing
    for b in range(4):                                     # and the sums do saturate, sample after sample
        net._run(x[b], b, True, False)
    assert np.abs(net.arena.leak_grad).max() == SUM_LIMIT


def test_the_bound_grows_with_the_batch_and_the_sums_held():
    model = init_params(mlp("b", [784, 256, 10], learning=Learning(T=32, update="sample")))
    net = FixedSTOP(model, threads=2)
    assert batch.saturation_free(net.table, net.params, net.config, 32, 255, net.arena)
    assert not batch.saturation_free(net.table, net.params, net.config, 1 << 12, 255, net.arena)
    net.arena.leak_grad[0] = SUM_LIMIT                        # sums already at the limit
    assert not batch.saturation_free(net.table, net.params, net.config, 2, 255, net.arena)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=random_models(), data=st.data())
def test_random_models_agree(model, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    seq, par = FixedSTOP(model.copy(), threads=1), FixedSTOP(model.copy(), threads=2)
    for step in range(data.draw(st.integers(1, 3))):
        B = data.draw(st.sampled_from([2, 4, 8]))
        rows = data.draw(st.integers(1, model.learning.T + 1))
        x, y = samples_for(model, rng, B, rows), rng.integers(0, model.readout.size, size=B)
        learn = data.draw(st.booleans())
        np.testing.assert_array_equal(seq.run(x, y, learn), par.run(x, y, learn))
        assert_same_state(seq, par)


def test_the_thread_count_is_numbas_unless_given():
    model = init_params(mlp("t", [8, 4], learning=Learning(T=2, update="sample")))
    x = np.zeros((4, 8), dtype=np.uint8)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        assert FixedSTOP(model).batch_threads(x, learn=True) == 1
        assert FixedSTOP(model, threads=2).batch_threads(x, learn=True) == 2
    finally:
        numba.set_num_threads(before)
    assert make_learner(model, "fixed", threads=3).threads == 3
    assert FixedSTOP(model, threads=8).batch_threads(x, learn=True) == 4     # at most one per sample
    assert FixedSTOP(model, threads=8).batch_threads(x[:1], learn=True) == 1
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(ValueError, match="threads must be a positive integer"):
            FixedSTOP(model, threads=bad)


def test_chunks_cover_the_batch_in_order():
    for B in (1, 2, 7, 32):
        for parts in range(1, B + 1):
            cuts = batch.chunk_bounds(B, parts)
            assert [lo for lo, _ in cuts] == [0] + [hi for _, hi in cuts[:-1]] and cuts[-1][1] == B
            assert all(hi > lo for lo, hi in cuts)


def test_train_threads_flag_gives_the_same_model(tmp_path, capsys):
    from test_cli import TINY, assert_clean_failure, cli
    blobs = []
    for threads in ("1", "2"):
        out = tmp_path / f"t{threads}.elm"
        rc, _, err = cli(capsys, "train", *TINY, "--batch", "4", "--threads", threads, "--json", "-o", str(out))
        assert rc == 0, err
        blobs.append(out.read_bytes())
    assert blobs[0] == blobs[1]
    rc, out, err = cli(capsys, "train", *TINY, "--batch", "4", "--threads", "2", "--executor", "c")
    assert_clean_failure(rc, out, err, "--threads: the fixed executor of STOP", "'c' executor")
    rc, out, err = cli(capsys, "train", *TINY, "--threads", "0")
    assert_clean_failure(rc, out, err, "--threads")


def test_a_forked_child_runs_parallel_batches_too():
    """The pool's threads do not survive a fork: a child must start its own, not wait forever."""
    import multiprocessing as mp
    model = init_params(mlp("f", [16, 8, 4], learning=Learning(T=3, update="sample")))
    x = np.random.default_rng(0).integers(0, 256, size=(4, 16), dtype=np.uint8)
    FixedSTOP(model, threads=2).run(x, np.arange(4), True)          # the parent's pool exists now
    want = FixedSTOP(model, threads=1).run(x, np.arange(4), True)
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as children:
        got = children.apply_async(_train_in_child, (model, x)).get(timeout=120)
    np.testing.assert_array_equal(got, want)


def _train_in_child(model, x):
    net = FixedSTOP(model, threads=2)
    scores = net.run(x, np.arange(4), True)
    assert net.threads_used == 2
    return scores

"""The Top-K cutoff in the contract (docs/numerics.md §6b): the model field and its two file
formats, both loaders' verdicts, and the same stops in the Python reference and the C runtime."""

import numpy as np
import pytest
from blob_bytes import CUTOFF, poke, section
from blob_verdicts import assert_both_refuse, c_status, python_verdict

from edgelearn.contract import CUTOFF_NEVER
from edgelearn.executors import make_learner
from edgelearn.model import Cutoff, Learning, ModelError, Neuron, init_params, mlp
from edgelearn.modelblob import check_blob, to_blob
from edgelearn.modelfile import load_model, model_from_spec_dict, save_model, spec_to_dict
from edgelearn.rules.stop.kernels import top2_gap

T = 8


def model(encoding="direct", readout=None, margins=(2, 1, 3, 0, 2, 1, 5, 0)) -> "Model":  # noqa: F821
    m = init_params(mlp("cut", [12, 24, 4], encoding=encoding, readout=readout, learning=Learning(T=T, seed=7)))
    m.cutoff = Cutoff(tuple(margins), 0.01) if margins is not None else None
    return m.validate()


def samples(n=40, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 12), dtype=np.uint8)


# -- the files ------------------------------------------------------------------------------------
def test_a_cutoff_survives_the_spec_and_the_blob_and_raises_their_version_only_when_present(tmp_path):
    m = model(margins=(2, CUTOFF_NEVER, 3, 0, 2, 1, 5, 0))
    assert to_blob(model(margins=None))[4:6] == b"\x01\x00"     # older loaders keep reading the rest
    blob = to_blob(m)
    assert blob[4:6] == b"\x02\x00"
    assert check_blob(blob).cutoff == m.cutoff
    spec = spec_to_dict(m)
    assert spec["version"] == 2 and spec["cutoff"]["margins"][1] is None
    assert model_from_spec_dict(spec).cutoff == m.cutoff
    assert spec_to_dict(model(margins=None))["version"] == 1
    save_model(m, tmp_path / "m.elm")
    assert load_model(tmp_path / "m.elm").cutoff == m.cutoff


@pytest.mark.parametrize("margins, tolerance, fragment", [
    ((1, 2, 3), 0.01, "3 margins for T = 8"),
    ((1, -1, 0, 0, 0, 0, 0, 0), 0.01, "margin 1 is -1"),
    ((1, 2, 0, 0, 0, 0, 0, 4), 0.01, "the last margin is 4"),
    ((1, 2.5, 0, 0, 0, 0, 0, 0), 0.01, "margin 1 is 2.5"),
    ((0,) * 8, 0.0, "tolerance 0.0 outside (0, 1)"),
    ((0,) * 8, 1.0, "tolerance 1.0 outside (0, 1)"),
    ((0,) * 8, 1e-9, "not within 1e-6 and 1 - 1e-6"),
    ((0,) * 8, 0.9999996, "not within 1e-6 and 1 - 1e-6"),
])
def test_a_bad_cutoff_is_refused_with_its_reason(margins, tolerance, fragment):
    m = model(margins=None)
    m.cutoff = Cutoff(margins, tolerance)
    with pytest.raises(ModelError) as e:
        m.validate()
    assert fragment in str(e.value)


def test_spide_and_single_output_models_cannot_carry_a_cutoff():
    from blob_verdicts import spide_feedforward
    m = spide_feedforward()
    m.cutoff = Cutoff((0,) * m.learning.T, 0.01)
    with pytest.raises(ModelError, match="rule 'spide' has no per-step scores"):
        m.validate()
    one = init_params(mlp("one", [4, 1], learning=Learning(T=2)))
    one.cutoff = Cutoff((0, 0), 0.01)
    with pytest.raises(ModelError, match="compares the top two"):
        one.validate()


def test_a_tolerance_is_recorded_to_the_ppm_so_spec_and_blob_agree():
    m = model()
    m.cutoff = Cutoff(m.cutoff.margins, np.float32(0.0123456789))
    m.validate()
    assert m.cutoff.tolerance == 0.012346
    assert check_blob(to_blob(m)).cutoff == m.cutoff == model_from_spec_dict(spec_to_dict(m)).cutoff


def test_margins_for_another_T_are_refused_when_inferring():
    learner = make_learner(model(), "fixed")
    learner.model.cutoff = Cutoff((0, 0), 0.01)          # behind the validated model's back
    with pytest.raises(ModelError, match="2 margins for T = 8"):
        learner.infer(samples(2))


def test_spec_errors_name_the_cutoff():
    spec = spec_to_dict(model())
    with pytest.raises(ModelError, match="needs spec version 2"):
        model_from_spec_dict({**spec, "version": 1})
    with pytest.raises(ModelError, match=r"cutoff.margins\[2\]: expected an integer"):
        model_from_spec_dict({**spec, "cutoff": {"tolerance": 0.1, "margins": [0, 1, "x", 0, 0, 0, 0, 0]}})
    with pytest.raises(ModelError, match="missing required key 'tolerance'"):
        model_from_spec_dict({**spec, "cutoff": {"margins": [0] * T}})


def margins_at(blob: bytes) -> int:
    return section(blob, CUTOFF)[1] + 8


@pytest.mark.parametrize("edit, c_code, fragment", [
    (lambda b: poke(b, 4, "<H", 1), "EL_ERR_SECTION_TYPE", "CUTOFF section needs format version 2"),
    (lambda b: poke(b, margins_at(b) + 8 * 3, "<q", -2), "EL_ERR_VALUE", "margin 3 is -2"),
    (lambda b: poke(b, margins_at(b) + 8 * (T - 1), "<q", 1), "EL_ERR_VALUE", "the last margin is 1"),
    (lambda b: poke(b, margins_at(b) - 4, "<I", 1), "EL_ERR_RESERVED_FIELD", "reserved field is 1"),
    (lambda b: poke(b, margins_at(b) - 8, "<I", 0), "EL_ERR_VALUE", "tolerance 0.0 outside"),
    (lambda b: poke(b, margins_at(b) - 8, "<I", 1_000_000), "EL_ERR_VALUE", "tolerance 1.0 outside"),
    (lambda b: poke(b, section(b, CUTOFF)[0] + 2, "<H", 1), "EL_ERR_SECTION_INDEX", "at most one, index 0"),
    (lambda b: poke(b, section(b, CUTOFF)[0] + 8, "<I", 8 + 8 * (T - 1)), "EL_ERR_SECTION_SIZE",
     "CUTOFF section is 64 bytes, expected 72"),
])
def test_both_loaders_refuse_a_bad_cutoff_section(edit, c_code, fragment):
    assert_both_refuse(edit(to_blob(model())), c_code, fragment)


def test_both_loaders_accept_the_largest_margins():
    blob = to_blob(model(margins=(CUTOFF_NEVER,) * (T - 1) + (0,)))
    assert python_verdict(blob) == (True, "accepted") and c_status(blob) == "EL_OK"


# -- the decision ---------------------------------------------------------------------------------
def replay(trajectories: np.ndarray, margins) -> np.ndarray:
    """Where §6b stops each sample, from its full-T score trajectory (direct input only)."""
    steps = np.full(len(trajectories), trajectories.shape[1])
    for b, traj in enumerate(trajectories):
        for t in range(traj.shape[0] - 1):
            if top2_gap(traj[t]) > margins[t]:
                steps[b] = t + 1
                break
    return steps


@pytest.mark.parametrize("readout", [None, Neuron("li")], ids=["lif readout", "li readout"])
def test_the_reference_stops_where_the_trajectory_first_clears_its_margin(readout):
    m = model(readout=readout, margins=(2, 1, 3, 0, 2, 1, 5, 0) if readout is None
              else (40000, 20000, 30000, 0, 65536, 1, 5, 0))
    x = samples()
    traj = make_learner(m, "fixed").score_trajectories(x)
    scores, steps = make_learner(m, "fixed").infer(x)
    assert np.array_equal(steps, replay(traj, m.cutoff.margins))
    assert np.array_equal(scores, traj[np.arange(len(x)), steps - 1])
    assert 1 < len(set(steps.tolist())) and steps.min() < T      # the test exercises stops


@pytest.mark.parametrize("encoding", ["direct", "rate"])
@pytest.mark.parametrize("readout", [None, Neuron("li")], ids=["lif readout", "li readout"])
def test_python_and_c_stop_at_the_same_steps_with_the_same_scores(encoding, readout):
    margins = (2, 1, 3, 0, 2, 1, 5, 0) if readout is None else (40000, 20000, 30000, 0, 65536, 1, 5, 0)
    m = model(encoding, readout, margins)
    fixed, native = make_learner(m, "fixed"), make_learner(m, "c")
    x = samples(60)
    for _ in range(2):                   # twice: the input streams must stay in step across calls
        a, b = fixed.infer(x), native.infer(x)
        assert np.array_equal(a[1], b[1]) and np.array_equal(a[0], b[0])
    assert np.array_equal(fixed.rng_input, native.rng_input)
    assert a[1].min() < T


def test_a_rate_coded_stream_depends_on_where_samples_stopped():
    """The input stream advances only for the steps run (§6b): a cut-off run and a full run of
    the same stream see different rate spikes afterwards."""
    m = model("rate")
    cut, full = make_learner(m, "fixed"), make_learner(m, "fixed")
    _, steps = cut.infer(samples(10))
    full.infer(samples(10), cutoff=False)
    assert steps.sum() < 10 * T and cut.rng_input[0] != full.rng_input[0]


def test_learning_is_never_cut_off():
    """With the runtime's cutoff switched on (margins of 0 stop any inference at its first
    clear leader), learning samples still run all T steps and learn as without a cutoff."""
    with_cutoff, without = make_learner(model(margins=(0,) * T), "c"), make_learner(model(margins=None), "c")
    assert with_cutoff._m.lib.el_set_cutoff(with_cutoff._net, 1) == with_cutoff._m.lib.EL_OK
    x, y = samples(20), np.arange(20) % 4
    for b in range(20):
        with_cutoff.run(x[b:b + 1], y[b:b + 1], True)
        assert with_cutoff._net.steps == T
        without.run(x[b:b + 1], y[b:b + 1], True)
    assert np.array_equal(with_cutoff.weights, without.weights)
    with_cutoff.run(x[:1], None, False)                 # the switch was on all along: inference stops
    assert with_cutoff._net.steps < T
    assert np.array_equal(make_learner(model(), "fixed").infer(x, cutoff=False)[1], np.full(20, T))


@pytest.mark.parametrize("executor", ["fixed", "c"])
def test_inference_with_a_cutoff_the_model_lacks_is_refused(executor):
    learner = make_learner(model(margins=None), executor)
    with pytest.raises(ModelError, match="has no cutoff: calibrate it first"):
        learner.infer(samples(2))


def test_zero_margins_stop_at_the_first_step_with_a_strict_leader():
    m = model(margins=(0,) * T)
    traj = make_learner(m, "fixed").score_trajectories(samples())
    _, steps = make_learner(m, "c").infer(samples())
    gaps = np.array([[top2_gap(s) for s in traj_b] for traj_b in traj])
    first = np.array([next((t + 1 for t in range(T - 1) if g[t] > 0), T) for g in gaps])
    assert np.array_equal(steps, first)

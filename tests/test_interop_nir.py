"""NIR read and write (edgelearn.interop, docs/interop.md): edgelearn -> NIR -> edgelearn gives
the same model, parameters and spec; a foreign graph reads with NIR's continuous-time LIF
mapped onto edgelearn's step; what edgelearn cannot run is refused by node; snnTorch in
both directions when the peers' environment exists (bench/nir_peers.py)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nir
import numpy as np
import pytest

from edgelearn import numerics as nx
from edgelearn.cli import main
from edgelearn.errors import ModelError
from edgelearn.executors import make_learner
from edgelearn.interop import ConvNotSupported, from_nir, read_nir, to_nir, write_nir
from edgelearn.model import Cutoff, InputSpec, Learning, init_params, mlp
from edgelearn.modelfile import load_model, spec_to_dict, to_blob

ROOT = Path(__file__).resolve().parents[1]
MODELS = sorted((ROOT / "models").glob("*.json"))
PEERS_PYTHON = ROOT / "bench" / ".venv-peers" / "bin" / "python"


def assert_same(a, b):
    assert spec_to_dict(a) == spec_to_dict(b)
    assert to_blob(a) == to_blob(b)            # every parameter, bit for bit


def calibrated_model():
    """A 2-D input, a cutoff and learned-looking parameters: what the zoo's specs do not have."""
    model = init_params(mlp("cut", [64, 32, 10], learning=Learning(T=4, seed=7, lr_weight_shift=9)))
    model.input = InputSpec((8, 8), "rate")
    model.cutoff = Cutoff((5, 3, 1, 0), 0.01)
    model.params["fc1"].threshold[::3] += 4321
    model.params["fc1"].leak = 60000
    return model.validate()


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_the_zoo_round_trips_through_a_nir_file(path, tmp_path):
    model = load_model(path)
    write_nir(model, tmp_path / "m.nir")
    assert_same(read_nir(tmp_path / "m.nir").model, model)


def test_a_model_with_a_cutoff_and_a_2d_input_round_trips(tmp_path):
    model = calibrated_model()
    write_nir(model, tmp_path / "m.nir", dt=1e-3)
    back = read_nir(tmp_path / "m.nir")
    assert_same(back.model, model)
    assert back.notes == []


def test_an_onnx_import_round_trips_too(tmp_path):
    from edgelearn.interop import import_onnx
    calibration = np.random.default_rng(0).integers(0, 256, (200, 784)).astype(np.uint8)
    model = import_onnx(ROOT / "tests" / "data" / "mlp-mnist.onnx", calibration, T=16).model    # IF and li, leak 0
    write_nir(model, tmp_path / "m.nir")
    assert_same(read_nir(tmp_path / "m.nir").model, model)


def test_what_the_graph_says_to_a_foreign_reader():
    feedback = to_nir(load_model(ROOT / "models" / "digits-spide-feedback.json"))
    kinds = {k: type(n).__name__ for k, n in feedback.nodes.items()}
    assert set(kinds.values()) == {"Input", "Linear", "IF", "LI", "Delay", "Output"}
    for k in (k for k, v in kinds.items() if v == "Delay"):      # a feedback edge of one step: a Delay of dt
        np.testing.assert_allclose(feedback.nodes[k].delay, 1e-4)
    for node in (n for n in feedback.nodes.values() if isinstance(n, nir.IF)):
        np.testing.assert_allclose(node.r * 1e-4, 1.0)            # v' = r I: unit gain per step
    model = load_model(ROOT / "models" / "digits-stop.json")
    lif = next(n for n in to_nir(model).nodes.values() if isinstance(n, nir.LIF))
    a = 1 - 1e-4 / lif.tau                     # forward Euler: v[t+1] = (1 - dt/tau) v + (r dt/tau) I
    np.testing.assert_allclose(a, model.params[model.layers[0].name].leak / nx.ONE)
    np.testing.assert_allclose(lif.r * 1e-4 / lif.tau, 1.0)


def snntorch_like_graph(tau=8e-4, v_leak=0.0, bias=None, threshold=1.0) -> nir.NIRGraph:
    """What snntorch.export_to_nir writes for Linear(6, 4) + Leaky(beta 0.875): dt = 1e-4, r = tau / dt."""
    rng = np.random.default_rng(0)
    n = 4
    synapse = nir.Linear(weight=rng.normal(0, 0.5, (n, 6))) if bias is None else \
        nir.Affine(weight=rng.normal(0, 0.5, (n, 6)), bias=np.full(n, bias))
    tau = np.broadcast_to(np.asarray(tau, dtype=np.float64), (n,)).copy()
    return nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([6])), "0": synapse,
                               "1": nir.LIF(tau=tau, r=tau / 1e-4, v_leak=np.full(n, v_leak),
                                            v_threshold=np.full(n, threshold), v_reset=np.zeros(n)),
                               "output": nir.Output(output_type=np.array([n]))},
                        edges=[("input", "0"), ("0", "1"), ("1", "output")])


def test_a_foreign_lif_graph_maps_its_time_constant_to_the_leak():
    made = from_nir(snntorch_like_graph(), T=16)
    layer = made.model.layers[0]
    assert layer.name == "1" and layer.neuron.kind == "lif" and made.model.learning.T == 16
    assert made.model.params["1"].leak == int(0.875 * nx.ONE)
    assert any("reset by subtraction" in note for note in made.notes)
    # the float twin steps v = 0.875 v + W x, fires at v >= 1, subtracts 1: check one sample by hand
    x = np.arange(6, dtype=np.uint8) * 40
    W = nx.from_fixed(made.model.params["1"].weight, layer.weight_frac)
    v, spikes = np.zeros(4), []
    for _ in range(16):
        v = 0.875 * v + W @ (x / 256)
        spikes.append(v >= 1.0)
        v = v - spikes[-1]
    np.testing.assert_array_equal(make_learner(made.model, "float").spike_raster(x), np.array(spikes, dtype=np.uint8))


@pytest.mark.parametrize("graph, message", [
    (lambda: snntorch_like_graph(v_leak=0.2), "v_leak is not zero"),
    (lambda: snntorch_like_graph(bias=0.5), "Affine node '0' has a non-zero bias"),
    (lambda: snntorch_like_graph(tau=[8e-4, 8e-4, 4e-4, 8e-4]), "different time constants"),
    (lambda: snntorch_like_graph(tau=5e-5), "shorter than a step"),
])
def test_what_edgelearn_cannot_run_is_refused_by_node(graph, message):
    with pytest.raises(ModelError, match=message):
        from_nir(graph())


def test_conv_and_unknown_nodes_are_named():
    conv = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([1, 8, 8])),
                               "c1": nir.Conv2d(input_shape=(8, 8), weight=np.ones((2, 1, 3, 3)), stride=1, padding=0,
                                                dilation=1, groups=1, bias=np.zeros(2)),
                               "output": nir.Output(output_type=np.array([2, 6, 6]))},
                        edges=[("input", "c1"), ("c1", "output")])
    with pytest.raises(ConvNotSupported, match=r"node 'c1' \(Conv2d\): not supported yet"):
        from_nir(conv)
    graph = snntorch_like_graph()
    n = 4
    graph.nodes["1"] = nir.CubaLIF(tau_syn=np.full(n, 5e-4), tau_mem=np.full(n, 8e-4), r=np.full(n, 8.0),
                                   v_leak=np.zeros(n), v_threshold=np.ones(n))
    with pytest.raises(ModelError, match="node '1': unsupported NIR node CubaLIF"):
        from_nir(graph)


def test_a_cycle_needs_its_delay():
    graph = snntorch_like_graph()
    graph.nodes["rec"] = nir.Linear(weight=np.eye(4))
    graph.edges += [("1", "rec"), ("rec", "1")]
    with pytest.raises(ModelError, match="cycle without a Delay node"):
        from_nir(graph)


def test_wrong_shapes_and_foreign_files_are_refused(tmp_path):
    graph = snntorch_like_graph()
    graph.nodes["0"] = nir.Linear(weight=np.ones((4, 5)))
    with pytest.raises(ModelError, match=r"wrong shapes: the synapse from 'input' into '1' has weights \(4, 5\)"):
        from_nir(graph)
    text = tmp_path / "model.nir"
    text.write_text("not HDF5\n")
    with pytest.raises(ModelError, match="not a NIR file, or a truncated one"):
        read_nir(text)
    write_nir(load_model(MODELS[0]), tmp_path / "whole.nir")
    truncated = tmp_path / "truncated.nir"
    truncated.write_bytes((tmp_path / "whole.nir").read_bytes()[:3000])
    with pytest.raises(ModelError, match="truncated"):
        read_nir(truncated)


def test_cli_export_then_import_gives_the_model_back(tmp_path, capsys):
    blob, nir_file, back = tmp_path / "m.elm", tmp_path / "m.nir", tmp_path / "back.elm"
    model = calibrated_model()
    model.input = InputSpec((64,), "direct")
    blob.write_bytes(to_blob(model))
    assert main(["export", str(blob), "-o", str(nir_file)]) == 0
    assert main(["import", str(nir_file), "-o", str(back), "--data", "digits", "--limit-test", "50", "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{"):])
    assert report["format"] == "nir" and 0 <= report["snn_test_accuracy"] <= 1
    assert back.read_bytes() == blob.read_bytes()


# -- snnTorch, in the peers' environment ------------------------------------------------------
@pytest.mark.skipif(not PEERS_PYTHON.exists(), reason="bench/.venv-peers does not exist (make bench-peers builds it); "
                                                      "the snnTorch round trips run there")
def test_snntorch_and_edgelearn_give_the_same_spikes_both_ways(tmp_path):
    done = subprocess.run([str(PEERS_PYTHON), str(ROOT / "bench" / "nir_peers.py"), "--samples", "40", "--T", "16",
                           "--out", str(tmp_path / "peers")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "peers.json").read_text())
    a = result["snntorch_to_edgelearn"]
    assert a["float_twin"]["spikes_equal"] and a["float_twin"]["spike_events"] > 0
    digits_stop, quiet = result["edgelearn_to_snntorch"]
    assert quiet["reset_by_subtraction"]["spikes_equal"] and quiet["reset_by_subtraction"]["spike_events"] > 0
    assert quiet["snntorch_reset_as_imported"] == ["zero"] and not quiet["as_imported"]["spikes_equal"]
    # where a membrane stays above threshold after its reset, snnTorch's reset_delay=False differs
    assert digits_stop["float_twin_events"]["membrane_above_threshold_after_reset"] > 0
    assert digits_stop["reset_by_subtraction"]["agreement"] > 0.99

"""NIR read and write (edgelearn.interop, docs/interop.md): edgelearn -> NIR -> edgelearn gives
the same model, parameters and spec; a foreign graph reads with NIR's continuous-time LIF
mapped onto edgelearn's step; what edgelearn cannot run is refused by node; snnTorch in
both directions when the peers' environment exists (bench/nir_peers.py)."""
from __future__ import annotations

import dataclasses
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
from edgelearn.interop import from_nir, read_nir, to_nir, write_nir
from edgelearn.model import Cutoff, Edge, InputSpec, Layer, Learning, Model, Neuron, Window, init_params, mlp
from edgelearn.modelfile import load_model, spec_to_dict, to_blob
from edgelearn.ops import LAYERS

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


def conv_model():
    """conv2d (a 3x3 kernel, stride (2, 1), padding (1, 1)) -> avgpool (2x2, stride (1, 2)) -> dense -> li:
    height and width differ everywhere, so a swapped pair shows."""
    layers = (Layer("conv1", "conv2d", (Edge("input"),), (4, 5, 8), Neuron("lif"), 11, Window((3, 3), (2, 1), (1, 1))),
              Layer("pool1", "avgpool", (Edge("conv1"),), (4, 4, 4), None, 9, Window((2, 2), (1, 2))),   # unused frac, kept
              Layer("fc1", "dense", (Edge("pool1"),), (12,), Neuron("lif", threshold=0.75), 13),
              Layer("readout", "dense", (Edge("fc1"),), (5,), Neuron("li", leak=0.5, learn_leak=False), 12))
    model = init_params(Model("conv-avg", InputSpec((2, 9, 8)), layers, Learning(T=4, seed=5)))
    model.params["conv1"].threshold[::7] += 777         # learned-looking: per-neuron thresholds, another leak
    model.params["conv1"].leak = 60000
    model.params["fc1"].weight[0, :5] = [-32768, 32767, 1, -1, 0]
    return model.validate()


def with_avgpools(model):
    """The model with each maxpool an avgpool of the same window."""
    layers = tuple(dataclasses.replace(layer, kind="avgpool") if layer.kind == "maxpool" else layer
                   for layer in model.layers)
    return init_params(dataclasses.replace(model, layers=layers, params={}))


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_the_zoo_round_trips_through_a_nir_file(path, tmp_path):
    model = load_model(path)
    scans = [layer.name for layer in model.layers if layer.kind == "scan2d"]
    if scans:          # the one-step layer's scan within a step has no NIR node: refused, nothing written
        with pytest.raises(ModelError, match=rf"layer '{scans[0]}' \(scan2d\): NIR has no node for a 'scan2d'"):
            write_nir(model, tmp_path / "m.nir")
        assert not (tmp_path / "m.nir").exists()
        return
    maxpools = [layer.name for layer in model.layers if layer.kind == "maxpool"]
    if maxpools:       # NIR 1.0 has no max pooling: refused, nothing written; with avgpools it round-trips
        with pytest.raises(ModelError, match=rf"layer '{maxpools[0]}' \(maxpool\): NIR 1.0 has no max-pooling node"
                                             r".*use an 'avgpool' layer"):
            write_nir(model, tmp_path / "m.nir")
        assert not (tmp_path / "m.nir").exists()
        model = with_avgpools(model)
    write_nir(model, tmp_path / "m.nir")
    assert_same(read_nir(tmp_path / "m.nir").model, model)


def test_a_conv_and_avgpool_model_round_trips_bit_for_bit(tmp_path):
    model = conv_model()
    write_nir(model, tmp_path / "m.nir", dt=1e-3)
    back = read_nir(tmp_path / "m.nir")
    assert_same(back.model, model)
    assert back.notes == []
    assert [layer.window for layer in back.model.layers] == [layer.window for layer in model.layers]


def chain(graph: nir.NIRGraph) -> list[str]:
    """The node types from the Input to the Output of a graph without branches."""
    after = dict(graph.edges)
    key = next(k for k, n in graph.nodes.items() if isinstance(n, nir.Input))
    kinds = [type(graph.nodes[key]).__name__]
    while key in after:
        key = after[key]
        kinds.append(type(graph.nodes[key]).__name__)
    return kinds


def nir_conv(weight, stride, padding, x):
    """NIR's Conv2d (PyTorch's cross-correlation, zero padding) by loops: x [C, H, W]."""
    (sh, sw), (ph, pw) = stride, padding
    out_c, _, kh, kw = weight.shape
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((out_c, (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1))
    for y in range(out.shape[1]):
        for z in range(out.shape[2]):
            out[:, y, z] = np.tensordot(weight, xp[:, y * sh:y * sh + kh, z * sw:z * sw + kw], axes=3)
    return out


def nir_avgpool(kernel, stride, s):
    """NIR's AvgPool2d without padding by loops: the mean of each window of s [C, H, W]."""
    (kh, kw), (sh, sw) = kernel, stride
    out = np.zeros((s.shape[0], (s.shape[1] - kh) // sh + 1, (s.shape[2] - kw) // sw + 1))
    for y in range(out.shape[1]):
        for z in range(out.shape[2]):
            out[:, y, z] = s[:, y * sh:y * sh + kh, z * sw:z * sw + kw].mean(axis=(1, 2))
    return out


def test_what_a_conv_graph_says_to_a_foreign_reader(tmp_path):
    model = conv_model()
    write_nir(model, tmp_path / "m.nir")
    graph = nir.read(str(tmp_path / "m.nir"))                  # nir's own reader, type-checked
    assert chain(graph) == ["Input", "Conv2d", "LIF", "AvgPool2d", "Flatten", "Linear", "LIF", "Linear", "LI", "Output"]
    conv, lif, pool = graph.nodes["conv1.w"], graph.nodes["conv1"], graph.nodes["pool1"]
    assert conv.weight.shape == (4, 2, 3, 3) and tuple(conv.input_shape) == (9, 8)
    assert tuple(conv.stride) == (2, 1) and tuple(conv.padding) == (1, 1) and tuple(conv.dilation) == (1, 1)
    assert conv.groups == 1 and not np.any(conv.bias)
    assert lif.v_threshold.shape == (4, 5, 8) and lif.tau.shape == (4, 5, 8)
    assert tuple(pool.kernel_size) == (2, 2) and tuple(pool.stride) == (1, 2) and tuple(pool.padding) == (0, 0)
    assert tuple(pool.output_type["output"]) == (4, 4, 4)
    np.testing.assert_array_equal(lif.v_threshold.ravel(), nx.from_fixed(model.params["conv1"].threshold, nx.STATE_FRAC))
    # what NIR's nodes compute is what edgelearn's layers compute (layout, stride, padding, the mean)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (2, 9, 8)) / 256
    shapes = model.shapes()
    g_conv, g_pool = (model.geometry(layer, shapes) for layer in model.layers[:2])
    W = nx.from_fixed(model.params["conv1"].weight, model.layers[0].weight_frac)
    np.testing.assert_allclose(nir_conv(conv.weight, conv.stride, conv.padding, x).ravel(),
                               LAYERS["conv2d"].forward_float(W, x.reshape(1, -1), g_conv)[0], rtol=0, atol=1e-12)
    s = (rng.random((4, 5, 8)) < 0.5).astype(float)
    np.testing.assert_allclose(nir_avgpool(pool.kernel_size, pool.stride, s).ravel(),
                               LAYERS["avgpool"].forward_float(None, s.reshape(1, -1), g_pool)[0], rtol=0, atol=1e-12)


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


def foreign_conv_graph(pool=nir.AvgPool2d, linear_scale=1.0, kernel=2, type_check=True, **conv) -> nir.NIRGraph:
    """Input [1, 6, 6] -> Conv2d 3@3x3 (padding 1) -> LIF -> pool (2x2) -> Flatten -> Linear -> LIF -> Output, built
    with nir as a foreign tool would (LIF: tau 8e-4, r = tau / dt, so a leak 0.875 and unit gain at dt = 1e-4)."""
    rng = np.random.default_rng(3)
    args = dict(input_shape=(6, 6), weight=rng.normal(0, 0.6, (3, 1, 3, 3)), stride=1, padding=1, dilation=1, groups=1,
                bias=np.zeros(3))
    args.update(conv)

    def lif(shape):
        return nir.LIF(tau=np.full(shape, 8e-4), r=np.full(shape, 8.0), v_leak=np.zeros(shape),
                       v_threshold=np.ones(shape), v_reset=np.zeros(shape))
    side = (6 - kernel) // 2 + 1
    nodes = {"input": nir.Input(input_type=np.array([1, 6, 6])), "c": nir.Conv2d(**args), "l1": lif((3, 6, 6)),
             "p": pool(kernel_size=np.array([kernel, kernel]), stride=np.array([2, 2]), padding=np.array([0, 0])),
             "f": nir.Flatten(input_type=None, start_dim=0, end_dim=-1),
             "fc": nir.Linear(weight=rng.normal(0, 0.8, (4, 3 * side * side)) * linear_scale), "l2": lif((4,)),
             "output": nir.Output(output_type=np.array([4]))}
    keys = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(keys, keys[1:])), type_check=type_check)


def test_a_foreign_conv_graph_imports():
    graph = foreign_conv_graph()
    made = from_nir(graph, T=8)
    model = made.model
    assert [(layer.name, layer.kind, layer.shape) for layer in model.layers] == \
        [("l1", "conv2d", (3, 6, 6)), ("p", "avgpool", (3, 3, 3)), ("l2", "dense", (4,))]
    assert model.layers[0].window == Window((3, 3), (1, 1), (1, 1)) and model.layers[1].window == Window((2, 2), (2, 2))
    assert model.params["l1"].leak == int(0.875 * nx.ONE) and model.learning.T == 8
    conv, pool, fc = model.layers
    W1 = nx.from_fixed(model.params["l1"].weight, conv.weight_frac).reshape(3, 1, 3, 3)   # OIHW, quantised
    np.testing.assert_allclose(W1, graph.nodes["c"].weight, rtol=0, atol=2.0 ** -(conv.weight_frac + 1))
    W2 = nx.from_fixed(model.params["l2"].weight, fc.weight_frac)
    # the float twin steps what the NIR graph says, by hand: conv, LIF (leak 0.875, fires at v >= 1, subtracts 1),
    # the mean of 2x2 windows (counts in the raster), the Linear, LIF
    sample = np.random.default_rng(4).integers(0, 256, (1, 6, 6)).astype(np.uint8)
    v1, v2, rows = np.zeros((3, 6, 6)), np.zeros(4), []
    for _ in range(8):
        v1 = 0.875 * v1 + nir_conv(W1, (1, 1), (1, 1), sample / 256)
        s1 = (v1 >= 1.0).astype(float)
        v1 -= s1
        p = nir_avgpool((2, 2), (2, 2), s1)
        v2 = 0.875 * v2 + W2 @ p.ravel()
        s2 = (v2 >= 1.0).astype(float)
        v2 -= s2
        rows.append(np.concatenate([s1.ravel(), 4 * p.ravel(), s2]))
    raster = make_learner(model, "float").spike_raster(sample.ravel())
    np.testing.assert_array_equal(raster, np.array(rows, dtype=np.uint8))
    assert raster[:, :108].sum() > 0 and raster[:, -4:].sum() > 0         # the check saw spikes in both layers
    assert_same(from_nir(to_nir(model)).model, model)                     # and it goes on to NIR and back


def test_a_sum_pool_is_an_avgpool_with_its_taps_in_the_next_weights():
    made = from_nir(foreign_conv_graph(nir.SumPool2d, linear_scale=0.25))
    assert any("SumPool2d" in note and "4 taps" in note for note in made.notes)
    assert_same(made.model, from_nir(foreign_conv_graph(nir.AvgPool2d)).model)


@pytest.mark.parametrize("conv, message", [
    (dict(groups=3, weight=np.ones((3, 1, 3, 3))), r"Conv2d node 'c': groups = 3"),
    (dict(dilation=2), r"Conv2d node 'c': dilation \[2, 2\]"),
    (dict(padding="same"), r"Conv2d node 'c': padding 'same'"),
    (dict(padding=(1, 1, 0, 0)), r"Conv2d node 'c': padding \[1, 1, 0, 0\].*a padding per side is not modelled"),
    (dict(bias=np.full(3, 0.1)), r"Conv2d node 'c' has a non-zero bias"),
    (dict(weight=np.ones((3, 2, 3, 3))), r"wrong shapes: Conv2d node 'c' has kernels for 2 input channels"),
    (dict(input_shape=(5, 6)), r"wrong shapes: Conv2d node 'c' declares input_shape \(5, 6\)"),
    (dict(kernel=3), r"'p'.* 3x3 window; its 9 inputs must be a power of two"),
])
def test_what_a_conv2d_layer_does_not_model_is_refused_by_node(conv, message):
    graph = foreign_conv_graph(type_check=False, **conv)
    with pytest.raises(ModelError, match=message):
        from_nir(graph)


def test_conv_sources_and_unknown_nodes_are_named():
    graph = foreign_conv_graph(type_check=False)
    graph.nodes["flat"] = nir.Flatten(input_type=None, start_dim=0, end_dim=-1)
    graph.edges = [("input", "flat"), ("flat", "c")] + [e for e in graph.edges if e != ("input", "c")]
    with pytest.raises(ModelError, match=r"Conv2d node 'c' reads 'input' through a Flatten"):
        from_nir(graph)
    graph = foreign_conv_graph(type_check=False)
    graph.nodes["c"] = nir.Conv1d(input_shape=6, weight=np.ones((3, 1, 3)), stride=1, padding=1, dilation=1, groups=1,
                                  bias=np.zeros(3))
    with pytest.raises(ModelError, match=r"node 'c': unsupported NIR node Conv1d \(edgelearn's convolution is 2-D"):
        from_nir(graph)
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
    # the small conv net (Conv2d -> Leaky -> AvgPool2d -> Flatten -> Linear -> Leaky) both ways
    c, d = result["snntorch_to_edgelearn_conv"], result["edgelearn_to_snntorch_conv"]
    assert c["float_twin"]["spikes_equal"] and c["float_twin"]["spike_events"] > 0
    assert {"Conv2d", "AvgPool2d", "Flatten"} <= set(c["graph_nodes"].values())
    assert d["reset_by_subtraction"]["spikes_equal"] and d["reset_by_subtraction"]["spike_events"] > 0
    assert d["snntorch_reset_as_imported"] == ["zero"] and not d["as_imported"]["spikes_equal"]

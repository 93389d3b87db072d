"""An edgelearn model as a standard ONNX graph: the float twin's inference, unrolled over T.

The graph states what ``edgelearn.rules.stop.float.FloatSTOP.run`` computes without learning,
with the dequantised parameters (weights int16 / 2^weight_frac, thresholds and leaks Q16 / 2^16):

    x       = pixels / 256                            (direct input, every step)
    I_l[t]  = s_{l-1}[t] W_l^T                        (s_0 = x)
    U_l[t]  = a_l V_l[t-1] + I_l[t]                   (V_l[-1] = 0)
    s_l[t]  = U_l[t] >= th_l,   V_l[t] = U_l[t] - th_l s_l[t]      (lif, if: reset by subtraction)
    V_l[t]  = U_l[t],           out_l[t] = U_l[t]                  (li readout)
    scores  = sum_t out_L[t]                          (spike counts, or summed potentials)

Input ``pixels``: uint8 [batch, *input shape]; output ``scores`` [batch, classes]. In float64
(the default, the twin's own precision) onnxruntime gives the twin's scores to rounding; in
float32 a membrane that lands on its threshold may fire on one side and not the other.
Only models the STOP runtime runs (feed-forward chains) with direct input are exported: a
rate-coded input draws from the contract's xorshift32 stream, recorded events are a
different input; both are refused with the reason."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import numerics as nx
from ..errors import ModelError
from ..model import Model
from ..ops import NEURONS
from ..rules.stop import spec as stop_spec

OPSET = 17               # GreaterOrEqual needs 12; onnxruntime runs 17 everywhere
IR_VERSION = 8           # the IR of opset 17, so older runtimes read the file too
DTYPES = ("float64", "float32")


def to_onnx(model: Model, *, dtype: str = "float64"):
    """The ModelProto of ``model``'s float-twin inference (checked by onnx.checker)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if dtype not in DTYPES:
        raise ModelError(f"unknown dtype {dtype!r} for the ONNX graph (known: {', '.join(DTYPES)})")
    try:
        stop_spec.check(model)
    except ModelError as e:
        raise ModelError(f"ONNX export writes the STOP runtime's inference (a feed-forward chain of dense layers): {e}") \
            from None
    if model.input.encoding != "direct":
        raise ModelError(f"ONNX export supports the 'direct' input encoding only; this model's is "
                         f"{model.input.encoding!r} (a rate code draws from the contract's PRNG stream, events are "
                         "recorded spike trains): export a copy with encoding 'direct'")
    np_dtype = np.dtype(dtype)
    elem = helper.np_dtype_to_tensor_dtype(np_dtype)
    inits, nodes, made = [], [], set()

    def const(name: str, value) -> str:
        if name not in made:                 # made on first use: the graph holds no unused initializer
            inits.append(numpy_helper.from_array(np.asarray(value, dtype=np_dtype), name))
            made.add(name)
        return name

    def node(op: str, inputs: list[str], name: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    x = node("Cast", ["pixels"], "input/cast", to=elem)
    x = node("Flatten", [x], "input/flat", axis=1)
    x = node("Mul", [x, const("input/scale", 1.0 / (1 << nx.INPUT_FRAC))], "input/current")
    layers = []
    for layer in model.layers:
        p = model.params[layer.name]
        layers.append({"name": layer.name, "spiking": NEURONS[layer.neuron.kind].spiking,
                       "W": const(f"{layer.name}/weight_T", nx.from_fixed(p.weight, layer.weight_frac).T),
                       "th": (f"{layer.name}/threshold", nx.from_fixed(p.threshold, nx.STATE_FRAC)),
                       "a": p.leak / nx.ONE, "V": None})
    outputs = []
    for t in range(model.learning.T):
        inp = x
        for l in layers:
            at = f"t{t}/{l['name']}"
            current = node("MatMul", [inp, l["W"]], f"{at}/current")
            if l["V"] is None or l["a"] == 0.0:      # a zero state, or a leak that forgets it: U = I
                U = current
            else:
                kept = l["V"] if l["a"] == 1.0 else node("Mul", [l["V"], const(f"{l['name']}/leak", l["a"])],
                                                                    f"{at}/leaked")
                U = node("Add", [kept, current], f"{at}/potential")
            if l["spiking"]:
                th = const(*l["th"])
                fired = node("GreaterOrEqual", [U, th], f"{at}/fired")
                inp = node("Cast", [fired], f"{at}/spikes", to=elem)
                l["V"] = node("Sub", [U, node("Mul", [inp, th], f"{at}/reset")], f"{at}/membrane")
            else:
                inp = l["V"] = U
        outputs.append(inp)
    nodes.append(helper.make_node("Sum", outputs, ["scores"], name="scores"))
    graph = helper.make_graph(
        nodes, model.name, [helper.make_tensor_value_info("pixels", TensorProto.UINT8, ["batch", *model.input.shape])],
        [helper.make_tensor_value_info("scores", elem, ["batch", model.readout.size])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="edgelearn", doc_string=f"{model.name}: the float twin's inference over "
                              f"T = {model.learning.T} steps (scores: spike counts or summed potentials)")
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model: Model, path, *, dtype: str = "float64") -> None:
    Path(path).write_bytes(to_onnx(model, dtype=dtype).SerializeToString())


def onnx_scores(path, pixels: np.ndarray) -> np.ndarray:
    """Run an exported graph in onnxruntime on uint8 samples [B, ...]: scores [B, classes]."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(Path(path).read_bytes(), options, providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape[1:]
    return session.run(None, {"pixels": np.ascontiguousarray(pixels, dtype=np.uint8).reshape(len(pixels), *shape)})[0]

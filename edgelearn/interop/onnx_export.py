"""An edgelearn model as a standard ONNX graph: the float twin's inference, unrolled over T.

The graph states what ``edgelearn.rules.stop.float.FloatSTOP.run`` computes without learning,
with the dequantised parameters (weights int16 / 2^weight_frac, thresholds and leaks Q16 / 2^16):

    x       = pixels / 256                            (direct input, every step)
    I_l[t]  = s_{l-1}[t] W_l^T                        (dense: MatMul; s_0 = x)
            = Conv(s_{l-1}[t], W_l)                   (conv2d: kernels OIHW, strides, pads)
    U_l[t]  = a_l V_l[t-1] + I_l[t]                   (V_l[-1] = 0)
    s_l[t]  = U_l[t] >= th_l,   V_l[t] = U_l[t] - th_l s_l[t]      (lif, if: reset by subtraction)
    V_l[t]  = U_l[t],           out_l[t] = U_l[t]                  (li readout)
    s_l[t]  = AveragePool(s_{l-1}[t])                 (avgpool: the mean of the window's spikes,
                                                       padding counted, count_include_pad 1)
            = MaxPool(s_{l-1}[t])                     (maxpool: the OR of the window's 0/1 spikes)
    scores  = sum_t out_L[t]                          (spike counts, or summed potentials)

A window layer's values are [batch, C, H, W]; a dense layer that reads one reads it through a
Flatten (edgelearn's buffers are flat in (C, H, W) order, what Flatten gives), a window layer
that reads a flat dense layer through a Reshape. The input's current is the same every step, so
the first layer's current is computed once.

Input ``pixels``: uint8 [batch, *input shape]; output ``scores`` [batch, classes]. In float64
(the default, the twin's own precision) onnxruntime gives the twin's scores to rounding; in
float32 a membrane that lands on its threshold may fire on one side and not the other.
onnxruntime's CPU Conv and AveragePool have no float64 kernels, so a float64 graph runs them in
float32 where that is exact, between two Casts: an average of spikes is a count of at most 128
over a power of two, and a convolution's products and partial sums are integers (in units of
its weights' and inputs' fractions) that float32 holds exactly below 2^24. A layer whose sums
could reach 2^24 has its kernels split into planes of fewer bits (W = sum_j W_j 2^(s j)), one
exact Conv each, summed in float64 (``exact_planes``).

Only models the STOP runtime runs (feed-forward chains) with direct input are exported: a
rate-coded input draws from the contract's xorshift32 stream, recorded events are a
different input; both are refused with the reason, and so is a ``scan2d`` layer (its scan
recurrence within a step)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import numerics as nx
from ..contract import INPUT
from ..errors import ModelError
from ..model import Model
from ..ops import NEURONS
from ..rules.stop import spec as stop_spec

OPSET = 17               # GreaterOrEqual needs 12; onnxruntime runs 17 everywhere
IR_VERSION = 8           # the IR of opset 17, so older runtimes read the file too
DTYPES = ("float64", "float32")
KINDS = ("dense", "conv2d", "avgpool", "maxpool")    # the layer kinds the graph states
EXACT_FLOAT32 = 1 << 24  # integers below this are exact in float32


def exact_planes(weight: np.ndarray, x_max: int, where: str = "a conv2d layer") -> list[tuple[np.ndarray, int]]:
    """int16 kernels [out_c, K] as the fewest digit planes W = sum_j D_j 2^(s j) (each D_j
    carrying W's sign, |D_j| < 2^s) such that every partial sum of D_j's products with inputs
    of at most ``x_max`` (in the input's units) is below 2^24, exact in float32: [(D_j, s j)].
    One plane, W itself, when W already fits. A ModelError when even bits one by one do not."""
    w = weight.astype(np.int64)
    sign, mag = np.sign(w), np.abs(w)
    for bits in range(16, 0, -1):
        planes = []
        for shift in range(0, 16, bits):
            digit = sign * ((mag >> shift) & ((1 << bits) - 1))
            if np.any(digit):
                planes.append((digit, shift))
        if all(np.abs(d).sum(axis=1).max() * x_max < EXACT_FLOAT32 for d, _ in planes):
            return planes or [(w, 0)]
    raise ModelError(f"ONNX export: {where}: a kernel of {weight.shape[1]} taps over inputs up to {x_max} sums beyond "
                     "float32's exact integers even one bit at a time (onnxruntime's Conv has no float64 kernel); "
                     "export with --dtype float32")


def to_onnx(model: Model, *, dtype: str = "float64"):
    """The ModelProto of ``model``'s float-twin inference (checked by onnx.checker)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if dtype not in DTYPES:
        raise ModelError(f"unknown dtype {dtype!r} for the ONNX graph (known: {', '.join(DTYPES)})")
    try:
        stop_spec.check(model)
    except ModelError as e:
        raise ModelError(f"ONNX export writes the STOP runtime's inference (a feed-forward chain of layers): {e}") \
            from None
    if model.input.encoding != "direct":
        raise ModelError(f"ONNX export supports the 'direct' input encoding only; this model's is "
                         f"{model.input.encoding!r} (a rate code draws from the contract's PRNG stream, events are "
                         "recorded spike trains): export a copy with encoding 'direct'")
    for layer in model.layers:
        if layer.kind == "scan2d":
            raise ModelError(f"ONNX export: layer {layer.name!r} is a scan2d layer, which is not exported: its scan "
                             "steps its neurons position by position within each time step, each reading the spikes "
                             "of its left and upper neighbours of the same step, a recurrence over its H W positions "
                             "that standard ONNX ops state only unrolled position by position or as a Loop")
        if layer.kind not in KINDS:
            raise ModelError(f"ONNX export: layer {layer.name!r} is a {layer.kind!r} layer; the graph states "
                             f"{', '.join(KINDS)} layers")
    np_dtype = np.dtype(dtype)
    elem = helper.np_dtype_to_tensor_dtype(np_dtype)
    f32 = TensorProto.FLOAT
    inits, nodes, made = [], [], set()

    def const(name: str, value, kind=None) -> str:
        if name not in made:                 # made on first use: the graph holds no unused initializer
            inits.append(numpy_helper.from_array(np.asarray(value, dtype=np_dtype if kind is None else kind), name))
            made.add(name)
        return name

    def node(op: str, inputs: list[str], name: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    # values: (tensor, shape of a sample): [B, n] flat, or [B, C, H, W] as a window layer reads it
    read_as: dict[tuple[str, str], str] = {}

    def flat(value) -> str:
        tensor, shape = value
        if len(shape) == 1:
            return tensor
        if (tensor, "flat") not in read_as:
            read_as[tensor, "flat"] = node("Flatten", [tensor], f"{tensor}/flat", axis=1)
        return read_as[tensor, "flat"]

    def grid(value, shape) -> str:
        tensor, has = value
        if len(has) == 3:
            return tensor
        if (tensor, "grid") not in read_as:
            read_as[tensor, "grid"] = node("Reshape", [tensor, const(f"shape/{'x'.join(map(str, shape))}",
                                                                    [-1, *shape], np.int64)], f"{tensor}/grid")
        return read_as[tensor, "grid"]

    def as_float32(tensor: str) -> str:
        if np_dtype == np.float32:
            return tensor
        if (tensor, "float32") not in read_as:
            read_as[tensor, "float32"] = node("Cast", [tensor], f"{tensor}/float32", to=f32)
        return read_as[tensor, "float32"]

    def back(tensor: str, name: str) -> str:
        return tensor if np_dtype == np.float32 else node("Cast", [tensor], name, to=elem)

    suffix = "" if np_dtype == np.float32 else "/float32"       # the float32 value before its Cast back

    x = node("Cast", ["pixels"], "input/cast", to=elem)
    x = node("Mul", [x, const("input/scale", 1.0 / (1 << nx.INPUT_FRAC))], "input/current")
    shapes = model.shapes()
    x_max = {INPUT: (1 << nx.INPUT_FRAC) - 1}     # the largest input, in units of its fraction (a conv's bound)
    layers = []
    for layer in model.layers:
        p = model.params[layer.name]
        g = model.geometry(layer, shapes)
        source = layer.inputs[0].source
        l = {"name": layer.name, "kind": layer.kind, "shape": tuple(layer.shape), "source": source,
             "source_shape": shapes[source], "V": None}
        if g is not None:
            l["window"] = dict(kernel_shape=[g.kernel_h, g.kernel_w], strides=[g.stride_h, g.stride_w],
                               pads=[g.pad_h, g.pad_w, g.pad_h, g.pad_w])
        x_max[layer.name] = g.taps if layer.kind == "avgpool" else 1     # a count of spikes; spikes
        if layer.neuron is not None:
            state = (1, *layer.shape) if layer.kind == "conv2d" else (1, layer.size)
            l.update(spiking=NEURONS[layer.neuron.kind].spiking, a=p.leak / nx.ONE,
                     th=(f"{layer.name}/threshold", nx.from_fixed(p.threshold, nx.STATE_FRAC).reshape(state)))
        if layer.kind == "dense":
            l["W"] = const(f"{layer.name}/weight_T", nx.from_fixed(p.weight, layer.weight_frac).T)
        elif layer.kind == "conv2d":
            oihw = (g.out_c, g.in_c, g.kernel_h, g.kernel_w)
            planes = [(p.weight, 0)] if np_dtype == np.float32 else \
                exact_planes(p.weight, x_max[source], f"layer {layer.name!r}")
            l["W"] = [const(f"{layer.name}/kernels" + (f"/bits{shift}" if len(planes) > 1 else ""),
                            np.ldexp(np.asarray(digit, np.float64), shift - layer.weight_frac).reshape(oihw),
                            np.float32) for digit, shift in planes]
        layers.append(l)

    def current(l: dict, inp, at: str) -> str:
        if l["kind"] == "dense":
            return node("MatMul", [flat(inp), l["W"]], f"{at}/current")
        s = as_float32(grid(inp, l["source_shape"]))
        names = [f"{at}/current" + (f"/{i}" if len(l["W"]) > 1 else "") for i in range(len(l["W"]))]
        parts = [back(node("Conv", [s, W], name + suffix, **l["window"]), name) for W, name in zip(l["W"], names)]
        return parts[0] if len(parts) == 1 else node("Sum", parts, f"{at}/current")

    once: dict[str, str] = {}                # the first layer's current: the input is the same every step
    outputs = []
    for t in range(model.learning.T):
        values = {INPUT: (x, tuple(model.input.shape))}
        for l in layers:
            at = f"t{t}/{l['name']}"
            inp = values[l["source"]]
            if l["kind"] in ("avgpool", "maxpool"):
                op = "AveragePool" if l["kind"] == "avgpool" else "MaxPool"
                s = grid(inp, l["source_shape"])
                if op == "AveragePool":         # float32 only in onnxruntime: exact for counts of spikes
                    pooled = node(op, [as_float32(s)], f"{at}/pooled{suffix}", count_include_pad=1, **l["window"])
                    out = back(pooled, f"{at}/pooled")
                    read_as[out, "float32"] = pooled       # a conv above reads it as it is
                else:
                    out = node(op, [s], f"{at}/pooled", **l["window"])
                values[l["name"]] = (out, l["shape"])
                continue
            if l["source"] == INPUT:
                if l["name"] not in once:
                    once[l["name"]] = current(l, inp, at)
                I = once[l["name"]]
            else:
                I = current(l, inp, at)
            if l["V"] is None or l["a"] == 0.0:      # a zero state, or a leak that forgets it: U = I
                U = I
            else:
                kept = l["V"] if l["a"] == 1.0 else node("Mul", [l["V"], const(f"{l['name']}/leak", l["a"])],
                                                         f"{at}/leaked")
                U = node("Add", [kept, I], f"{at}/potential")
            if l["spiking"]:
                th = const(*l["th"])
                fired = node("GreaterOrEqual", [U, th], f"{at}/fired")
                out = node("Cast", [fired], f"{at}/spikes", to=elem)
                l["V"] = node("Sub", [U, node("Mul", [out, th], f"{at}/reset")], f"{at}/membrane")
            else:
                out = l["V"] = U
            values[l["name"]] = (out, l["shape"] if l["kind"] == "conv2d" else (int(np.prod(l["shape"])),))
        outputs.append(values[model.readout.name])
    if len(outputs[-1][1]) == 1:
        nodes.append(helper.make_node("Sum", [o for o, _ in outputs], ["scores"], name="scores"))
    else:
        node("Flatten", [node("Sum", [o for o, _ in outputs], "scores/summed")], "scores", axis=1)
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

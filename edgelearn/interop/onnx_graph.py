"""An ONNX file read as the chain of layers edgelearn can convert.

Accepted, along the one path from the graph's input to its output: Gemm, MatMul (+ Add of a
constant), Conv (2-D, one group, no dilation, symmetric padding), AveragePool (counting the
padding) and MaxPool (2-D, no ceil mode), Relu, Flatten and Reshape to [batch, features],
Identity and Dropout (identity at inference), and a final Softmax / LogSoftmax (which cannot
change the predicted class). Weights must be initializers or Constant nodes; biases must be
zero (edgelearn's layers have none). Any other op is refused by name and node, and so are the
other convolution and pooling ops (ConvTranspose, global and Lp pooling). Every refusal is a
ModelError whose message names the file, the node and what is wrong."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..ops.layers import conv2d, pool
from ..ops.layers.window import Geometry, channel_windows, geometry

PASS_THROUGH = ("Identity", "Dropout")
FINAL_OPS = ("Softmax", "LogSoftmax")
WINDOW_OPS = ("Conv", "AveragePool", "MaxPool")
SUPPORTED = ("Gemm", "MatMul", "Add", "Relu", "Flatten", "Reshape") + WINDOW_OPS + PASS_THROUGH + FINAL_OPS \
    + ("Constant",)


@dataclass
class DenseLayer:
    node: str                 # the node that holds the weights, as messages name it
    weight: np.ndarray        # float64 [out, in]: y = W x
    relu: bool = False

    def forward(self, a: np.ndarray) -> np.ndarray:
        return a @ self.weight.T


@dataclass
class ConvLayer:
    node: str
    weight: np.ndarray        # float64 [out_c, in_c, kh, kw] (OIHW)
    geometry: Geometry
    relu: bool = False

    def forward(self, a: np.ndarray) -> np.ndarray:
        return conv2d.current_float(self.weight.reshape(self.weight.shape[0], -1), a, self.geometry)


@dataclass
class PoolLayer:
    node: str
    kind: str                 # "avgpool" or "maxpool", edgelearn's layer kind
    geometry: Geometry
    relu: bool = True         # a pool passes its (non-negative) inputs on: it needs no Relu after it

    def forward(self, a: np.ndarray) -> np.ndarray:
        if self.kind == "avgpool":
            return pool.avgpool_float(None, a, self.geometry)
        return channel_windows(a, self.geometry).max(axis=-1).reshape(a.shape[0], -1)


@dataclass
class OnnxNet:
    """The dense chain of an ONNX graph: input -> layers -> output."""
    input_name: str
    input_shape: tuple        # the graph input's dimensions, None where symbolic (the batch)
    input_type: int           # onnx.TensorProto element type of the input
    layers: list                # DenseLayer, ConvLayer, PoolLayer
    output_name: str
    final: list[str] = field(default_factory=list)     # trailing Softmax / LogSoftmax ops
    sample_shape: tuple = ()    # one sample's input: (features,), or (C, H, W) read by a Conv or a pool

    @property
    def features(self) -> int:
        return int(np.prod(self.sample_shape))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The graph's outputs in float64 for inputs x [B, features] (as the graph reads them)."""
        a = x
        for layer in self.layers:
            a = layer.forward(a)
            if layer.relu and not isinstance(layer, PoolLayer):
                a = np.maximum(a, 0.0)
        for op in self.final:
            a = a - a.max(axis=1, keepdims=True)
            a = np.exp(a) / np.exp(a).sum(axis=1, keepdims=True) if op == "Softmax" \
                else a - np.log(np.exp(a).sum(axis=1, keepdims=True))
        return a


def describe(node, index: int) -> str:
    return f"{node.op_type} node {node.name!r}" if node.name else f"{node.op_type} node #{index} (output {node.output[0]!r})"


def load_onnx(path):
    """The parsed ONNX ModelProto of a file; a ModelError for a missing, truncated or foreign file."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{path}: no such file") from None
    except OSError as e:
        raise ModelError(f"{path}: cannot read: {e.strerror}") from None
    try:
        model = onnx.load_model_from_string(data)
    except DecodeError as e:
        raise ModelError(f"{path}: not an ONNX file, or a truncated one (protobuf: {e})") from None
    if not model.graph.node or not model.opset_import:
        raise ModelError(f"{path}: not an ONNX model: it has no graph nodes or no opset "
                         f"({len(data)} bytes that parse as an empty ModelProto)")
    return model


def read_onnx(path) -> OnnxNet:
    """The dense chain of the ONNX file at ``path``, checked by onnx.checker."""
    import onnx

    model = load_onnx(path)
    try:
        net = _chain(model.graph)
    except ModelError as e:
        raise type(e)(f"{path}: {e}") from None
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise ModelError(f"{path}: onnx.checker refuses the file: {str(e).splitlines()[0]}") from None
    return net


def _constants(graph) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            attr = {a.name: a for a in node.attribute}
            if "value" in attr:
                values[node.output[0]] = numpy_helper.to_array(attr["value"].t)
    return values


def _attrs(node) -> dict:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _graph_input(graph, constants: dict):
    inputs = [i for i in graph.input if i.name not in constants]
    if len(inputs) != 1:
        raise ModelError(f"the graph has {len(inputs)} inputs ({', '.join(i.name for i in inputs) or 'none'}); "
                         "edgelearn imports a network with one input")
    tensor = inputs[0].type.tensor_type
    dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
    return inputs[0].name, dims, tensor.elem_type


def _chain(graph) -> OnnxNet:
    constants = _constants(graph)
    input_name, input_shape, input_type = _graph_input(graph, constants)
    produced = {out for node in graph.node for out in node.output}
    layers: list = []
    final: list[str] = []
    current = input_name
    bias_open = False          # the last layer may still take an Add (its bias)
    shape = tuple(input_shape[1:])          # one sample's tensor as the chain goes (None: symbolic)

    def constant(node, i: int, index: int, role: str) -> np.ndarray:
        name = node.input[i] if i < len(node.input) else ""
        if name in constants:
            return np.asarray(constants[name], dtype=np.float64)
        if name in produced or name == input_name:
            raise ModelError(f"{describe(node, index)}: its {role} {name!r} is computed in the graph; edgelearn "
                             "imports weights stored as initializers or Constant nodes")
        raise ModelError(f"{describe(node, index)}: its {role} {name!r} is missing: no initializer, Constant node "
                         "or graph input has that name")

    def follows_relu(node, index: int) -> None:
        if layers and not layers[-1].relu:
            raise ModelError(f"{describe(node, index)}: follows {layers[-1].node} without a Relu between them; each "
                             "linear layer but the last must be followed by Relu (ReLU becomes the spiking neuron)")

    def add_layer(node, index: int, weight: np.ndarray) -> None:
        nonlocal shape
        follows_relu(node, index)
        if weight.ndim != 2:
            raise ModelError(f"{describe(node, index)}: weights of shape {weight.shape}; a dense layer has 2-D weights")
        fan_in = None if None in shape else int(np.prod(shape))
        if fan_in is not None and weight.shape[1] != fan_in:
            before = f"the layer before ({layers[-1].node}) gives {fan_in}" if layers \
                else f"the input {input_name!r} [{', '.join('?' if d is None else str(d) for d in input_shape)}] " \
                     f"gives {fan_in} per sample"
            raise ModelError(f"wrong shapes: {describe(node, index)} takes {weight.shape[1]} inputs but {before}")
        layers.append(DenseLayer(describe(node, index), weight))
        shape = (weight.shape[0],)

    def window_of(node, index: int, attrs: dict, kernel) -> tuple:
        """(kernel, stride, padding) of a 2-D window node; refuses what the layer kinds do not model."""
        where = describe(node, index)
        if len(shape) != 3 or None in shape:
            raise ModelError(f"{where}: reads a tensor of shape {list(shape)}; a window layer reads [channels, "
                             "height, width] of known sizes")
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise ModelError(f"{where}: auto_pad is not supported: give the pads")
        if any(d != 1 for d in attrs.get("dilations", [1, 1])) or attrs.get("ceil_mode", 0):
            raise ModelError(f"{where}: dilations and ceil_mode are not supported")
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        if len(kernel) != 2 or len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3]:
            raise ModelError(f"{where}: a 2-D window with the same padding on both sides of each axis, got kernel "
                             f"{list(kernel)} and pads {pads}")
        return tuple(int(k) for k in kernel), tuple(int(v) for v in attrs.get("strides", [1, 1])), \
            (int(pads[0]), int(pads[1]))

    def add_window(node, index: int, attrs: dict, kernel, weight=None) -> None:
        nonlocal shape
        from ..model import Window
        k, st, pd = window_of(node, index, attrs, kernel)
        out_c = None if weight is None else weight.shape[0]
        if weight is not None and weight.shape[1] != shape[0]:
            raise ModelError(f"wrong shapes: {describe(node, index)} takes {weight.shape[1]} channels but gets "
                             f"{shape[0]}")
        g = geometry(describe(node, index), Window(k, st, pd), shape, out_c)
        if weight is None:
            layers.append(PoolLayer(describe(node, index), "avgpool" if node.op_type == "AveragePool" else "maxpool",
                                    g))
        else:
            follows_relu(node, index)
            layers.append(ConvLayer(describe(node, index), weight, g))
        shape = (g.out_c, g.out_h, g.out_w)

    for index, node in enumerate(graph.node):
        op = node.op_type
        if op == "Constant":
            continue
        if current not in node.input:
            raise ModelError(f"{describe(node, index)} is not on the path from the input to the output; edgelearn "
                             "imports a chain of layers (branches, shape computations and side inputs are not read)")
        if final:
            raise ModelError(f"{describe(node, index)}: follows the final {final[-1]}; {'/'.join(FINAL_OPS)} can only "
                             "end the graph")
        if op not in SUPPORTED:
            raise ModelError(f"{describe(node, index)}: unsupported op {op!r} (edgelearn imports "
                             f"{', '.join(s for s in SUPPORTED if s != 'Constant')})")
        attrs = _attrs(node)
        if op == "Gemm":
            if node.input[0] != current or attrs.get("transA", 0):
                raise ModelError(f"{describe(node, index)}: the activations must be input A, not transposed")
            B = constant(node, 1, index, "weight input B")
            W = float(attrs.get("alpha", 1.0)) * (B if attrs.get("transB", 0) else B.T)
            add_layer(node, index, W)
            if len(node.input) > 2 and node.input[2]:
                _check_bias(node, index, float(attrs.get("beta", 1.0)) * constant(node, 2, index, "bias input C"))
            bias_open = True
        elif op == "MatMul":
            if node.input[0] != current:
                raise ModelError(f"{describe(node, index)}: the activations must be the first input (x W)")
            add_layer(node, index, constant(node, 1, index, "weight input").T)
            bias_open = True
        elif op == "Add":
            if not bias_open:
                raise ModelError(f"{describe(node, index)}: an Add that is not the bias of a Gemm or MatMul "
                                 "(residual connections are not supported)")
            other = 1 if node.input[0] == current else 0
            _check_bias(node, index, constant(node, other, index, "bias"))
        elif op == "Conv":
            if attrs.get("group", 1) != 1:
                raise ModelError(f"{describe(node, index)}: grouped convolution (group {attrs['group']}) is not "
                                 "supported")
            W = constant(node, 1, index, "weight input W")
            if W.ndim != 4:
                raise ModelError(f"{describe(node, index)}: weights of shape {W.shape}; a 2-D convolution has OIHW")
            add_window(node, index, attrs, attrs.get("kernel_shape", W.shape[2:]), W)
            if len(node.input) > 2 and node.input[2]:
                _check_bias(node, index, constant(node, 2, index, "bias input B"))
        elif op in ("AveragePool", "MaxPool"):
            if len(node.output) > 1 and node.output[1]:
                raise ModelError(f"{describe(node, index)}: the Indices output of a MaxPool is not supported")
            if op == "AveragePool" and any(attrs.get("pads", [0])) and not attrs.get("count_include_pad", 0):
                raise ModelError(f"{describe(node, index)}: an average over padding that does not count it "
                                 "(count_include_pad 0); edgelearn's average counts the padding as zeros")
            if not layers or not layers[-1].relu:
                raise ModelError(f"{describe(node, index)}: a pool reads the spikes of a layer: it must follow a "
                                 "Conv and its Relu")
            add_window(node, index, attrs, attrs["kernel_shape"])
        elif op == "Relu":
            if not layers or layers[-1].relu:
                raise ModelError(f"{describe(node, index)}: a Relu must follow a Gemm, MatMul or Conv")
            layers[-1].relu = True
            bias_open = False
        elif op == "Flatten":
            if attrs.get("axis", 1) != 1 or None in shape:
                raise ModelError(f"{describe(node, index)}: only a Flatten to [batch, features] (axis 1) of a tensor "
                                 "of known sizes is supported")
            shape = (int(np.prod(shape)),)
        elif op == "Reshape":
            target = constant(node, 1, index, "shape input").astype(np.int64).tolist()
            flat = None if None in shape else int(np.prod(shape))
            if len(target) != 2 or target[0] not in (-1, 0, 1) or target[1] not in (-1, flat):
                raise ModelError(f"{describe(node, index)}: reshape to {target}; only a reshape to [batch, features] "
                                 "is supported")
            shape = (flat,)
        elif op in FINAL_OPS:
            if not layers or layers[-1].relu or len(shape) != 1 or attrs.get("axis", -1) not in (-1, 1):
                raise ModelError(f"{describe(node, index)}: a {op} is read only after the last linear layer, "
                                 "over its classes")
            final.append(op)
        current = node.output[0]
    if not any(isinstance(layer, DenseLayer) for layer in layers):
        raise ModelError("the graph has no Gemm or MatMul layer")
    if isinstance(layers[-1], PoolLayer):
        raise ModelError(f"the graph ends with {layers[-1].node}; the readout is a Gemm, MatMul or Conv")
    outputs = [o.name for o in graph.output]
    if outputs != [current]:
        raise ModelError(f"the graph's outputs are {outputs} but the chain of layers ends at {current!r}")
    first = layers[0]
    sample = (first.geometry.in_c, first.geometry.in_h, first.geometry.in_w) if not isinstance(first, DenseLayer) \
        else (first.weight.shape[1],)
    return OnnxNet(input_name, input_shape, input_type, layers, current, final, sample)


def _check_bias(node, index: int, bias: np.ndarray) -> None:
    if np.any(bias != 0):
        raise ModelError(f"{describe(node, index)}: has a non-zero bias (largest |b| = {np.max(np.abs(bias)):.3g}); "
                         "edgelearn's dense layers have no bias term: train the network without one (torch: "
                         "nn.Linear(..., bias=False))")

"""ANN -> SNN: a ReLU network from ONNX converted into an edgelearn STOP model.

Rate-coded conversion (Rueckauer et al. 2017, "Conversion of continuous-valued deep networks
to efficient event-driven networks for image classification", Front. Neurosci. 11:682):

- each ReLU (after a Gemm, MatMul or Conv: dense and conv2d layers) becomes an
  integrate-and-fire neuron ('if': no leak) with reset by subtraction,
  whose firing rate over T steps approximates its ReLU activation divided by the layer's
  scale: subtraction keeps the charge above threshold, so the rate error is at most 1/T;
- data-based threshold balancing: lambda_l, the ``percentile``-th percentile of layer l's
  positive activations on calibration samples from the training split (99.9: the paper's
  robust normalisation, which ignores the rare outliers a maximum would follow), rescales
  the weights W_l <- W_l lambda_{l-1} / lambda_l so every threshold is 1 and almost no
  neuron is asked to fire faster than once a step;
- an AveragePool becomes an avgpool of the spikes (the mean of rates is the rate-coded mean),
  a MaxPool a maxpool, the OR of the window's spikes: an upper bound of the maximum of the
  rates, close to it while few inputs of a window fire in the same step (the conversion's
  known weak spot, Rueckauer et al. §2.3); a pool takes no threshold and passes the scale of
  the layer below on;
- the last layer becomes a non-spiking 'li' readout with leak 0, whose potential at each step
  is its current W_L s[t]: the summed score is W_L times the spike counts, the rate-coded
  version of the ANN's logits (its scale, lambda_L, makes the per-step outputs of order 1,
  the scale of STOP's one-hot targets for fine-tuning);
- weights are quantised to int16 per layer in the finest Q-format that keeps twice the
  largest weight (edgelearn.interop.fixed_point), thresholds to Q16 (1.0).

The input is edgelearn's direct current, pixel byte / 256, presented every step; an ANN
trained on byte / D (torchvision's ToTensor: D = 255) has its first weights scaled by 256 / D.
The ANN's own accuracy comes from onnxruntime, not from this module's reading of the graph,
and the reading is checked against onnxruntime before anything is converted."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import numerics as nx
from ..contract import INPUT, MAX_LR_SHIFT
from ..errors import ModelError
from ..model import Edge, InputSpec, Layer, LayerParams, Learning, Model, Neuron, Window
from .fixed_point import quantise_weights, weight_frac_for
from .onnx_graph import OnnxNet, PoolLayer, read_onnx

DEFAULT_T = 32
DEFAULT_CALIBRATION = 1000
DEFAULT_PERCENTILE = 99.9
DIRECT_DIVISOR = 256          # edgelearn's direct input is byte / 256
# The STOP learning rates of an imported model: the zoo's (tuned at T = 8 for LIF), two shifts
# lower per doubling of T (an IF neuron's input trace grows as t, so a sample's summed update
# grows as T^2, not T), and FINE_TUNE_SHIFTS lower again: measured on the MLP fixture at T = 32,
# one pass over 1,000 samples of MNIST shifted by 3 pixels (16.2% before), 2^-14 ends best
# (82.8%), 2^-9 at 76.8%, 2^-16 at 81.1% (docs/interop.md).
BASE_T, BASE_SHIFTS, FINE_TUNE_SHIFTS = 8, (6, 8, 12), 4


@dataclass
class OnnxImport:
    """What an import made: the model and the figures of its conversion."""
    model: Model
    net: OnnxNet                     # the ANN as read from the file
    scales: list[float]              # lambda_l per layer (the activation percentile)
    weight_fracs: list[int]
    calibration_samples: int
    notes: list[str] = field(default_factory=list)


def ann_scores(path, net: OnnxNet, pixels: np.ndarray, input_divisor: float = DIRECT_DIVISOR,
               chunk: int = 1000) -> np.ndarray:
    """The ANN's outputs for uint8 samples [N, features], computed by onnxruntime on byte / D."""
    import onnxruntime as ort
    from onnx import helper

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1          # the tests share 2 cores
    options.log_severity_level = 3
    session = ort.InferenceSession(Path(path).read_bytes(), options, providers=["CPUExecutionProvider"])
    dtype = helper.tensor_dtype_to_np_dtype(net.input_type)
    batch = net.input_shape[0] if net.input_shape and net.input_shape[0] is not None else chunk
    rest = tuple(net.input_shape[1:]) if net.input_shape[1:] and None not in net.input_shape[1:] else (net.features,)
    out = []
    for lo in range(0, len(pixels), batch):
        x = (pixels[lo:lo + batch].astype(np.float64) / input_divisor).astype(dtype)
        out.append(session.run(None, {net.input_name: x.reshape((len(x),) + rest)})[0].reshape(len(x), -1))
    return np.concatenate(out).astype(np.float64)


def ann_accuracy(path, net: OnnxNet, pixels: np.ndarray, labels: np.ndarray,
                 input_divisor: float = DIRECT_DIVISOR) -> float:
    return float(np.mean(np.argmax(ann_scores(path, net, pixels, input_divisor), axis=1) == labels))


def import_onnx(path, calibration: np.ndarray, *, T: int = DEFAULT_T, percentile: float = DEFAULT_PERCENTILE,
                input_divisor: float = DIRECT_DIVISOR, name: str | None = None) -> OnnxImport:
    """Convert the ONNX ReLU network at ``path`` into a STOP model, balancing thresholds on
    ``calibration`` (uint8 samples [N, features] from the training split)."""
    if not 0.0 < percentile <= 100.0:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    if not input_divisor > 0:
        raise ValueError(f"input_divisor must be > 0, got {input_divisor}")
    net = read_onnx(path)
    if len(calibration) == 0:
        raise ModelError("no calibration samples")
    if calibration.shape[1] != net.features:
        raise ModelError(f"{path}: the network takes {net.features} inputs but the calibration samples have "
                         f"{calibration.shape[1]} features")
    x = calibration.astype(np.float64) / input_divisor
    check_reading(path, net, calibration, x, input_divisor)
    scales, acts = [], x
    for layer in net.layers:
        acts = layer.forward(acts)
        if isinstance(layer, PoolLayer):           # no neurons: the scale below passes through
            scales.append(scales[-1])
            continue
        if layer.relu:
            acts = np.maximum(acts, 0.0)
        positive = acts[acts > 0]
        if positive.size == 0:
            raise ModelError(f"{path}: {layer.node} is never positive on the {len(x)} calibration samples; "
                             "its neurons would never fire")
        scales.append(float(np.percentile(positive, percentile)))
    model, fracs = _spiking_model(net, scales, DIRECT_DIVISOR / input_divisor, T, name or Path(path).stem)
    notes = [f"ignored the final {op}: it does not change the predicted class" for op in net.final]
    return OnnxImport(model, net, scales, fracs, len(x), notes)


def check_reading(path, net: OnnxNet, pixels: np.ndarray, x: np.ndarray, input_divisor: float) -> None:
    """Refuse a graph whose reading here does not compute what onnxruntime computes."""
    sample = slice(0, min(len(x), 256))
    ours, theirs = net.forward(x[sample]), ann_scores(path, net, pixels[sample], input_divisor)
    if ours.shape != theirs.shape or not np.allclose(ours, theirs, rtol=1e-3, atol=1e-4 * max(1.0, np.abs(theirs).max())):
        raise ModelError(f"{path}: the graph read as {len(net.layers)} layers does not compute onnxruntime's "
                         "outputs; it uses semantics this importer does not model")


def _spiking_model(net: OnnxNet, scales: list[float], input_scale: float, T: int, name: str) -> tuple[Model, list[int]]:
    layers, params, fracs = [], {}, []
    previous, source = input_scale, INPUT
    extra = max(0, 2 * int(round(np.log2(T / BASE_T)))) + FINE_TUNE_SHIFTS
    last = len(net.layers) - 1
    for l, (layer, scale) in enumerate(zip(net.layers, scales)):
        readout = l == last
        g = getattr(layer, "geometry", None)
        window = None if g is None else Window((g.kernel_h, g.kernel_w), (g.stride_h, g.stride_w), (g.pad_h, g.pad_w))
        shape = (g.out_c, g.out_h, g.out_w) if g else (layer.weight.shape[0],)
        if isinstance(layer, PoolLayer):
            lname = f"pool{l + 1}"
            layers.append(Layer(lname, layer.kind, (Edge(source),), shape, None, window=window))
            params[lname] = LayerParams(np.zeros((0, 0), np.int16), np.zeros(0, np.int32), 0)
            source = lname
            fracs.append(0)
            continue
        lname = "readout" if readout else f"{'conv' if g else 'fc'}{l + 1}"
        weight = layer.weight.reshape(layer.weight.shape[0], -1) * (previous / scale)
        frac = weight_frac_for(weight, layer.node)
        neuron = Neuron("li", leak=0.0, learn_leak=False) if readout else Neuron("if", threshold=1.0, leak=1.0)
        layers.append(Layer(lname, "conv2d" if g else "dense", (Edge(source),), shape, neuron, frac, window))
        size = int(np.prod(shape))
        params[lname] = LayerParams(weight=quantise_weights(weight, frac),
                                    threshold=nx.to_fixed(np.full(size, 1.0), nx.STATE_FRAC),
                                    leak=int(nx.to_fixed(neuron.leak, nx.STATE_FRAC)))
        fracs.append(frac)
        previous, source = scale, lname
    w, th, a = BASE_SHIFTS
    learning = Learning(rule="stop", T=T, lr_weight_shift=min(w + extra, MAX_LR_SHIFT),
                        lr_threshold_shift=min(th + extra, MAX_LR_SHIFT), lr_leak_shift=min(a + extra, MAX_LR_SHIFT))
    model = Model(name, InputSpec(tuple(net.sample_shape), "direct"), tuple(layers), learning, params)
    return model.validate(), fracs

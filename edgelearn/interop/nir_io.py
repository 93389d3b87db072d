"""edgelearn models to and from NIR, the Neuromorphic Intermediate Representation (``nir``).

edgelearn -> NIR. Per layer, by kind:

- dense: one ``Linear`` node per input edge (its columns of the weight matrix, dequantised:
  int16 / 2^weight_frac, exact in float64), feeding the layer's neuron node (named as the
  layer): ``LIF``, ``IF`` or ``LI`` (``I`` for an 'li' that does not leak). An edge with delay
  d >= 1 goes through a ``Delay`` node of d * dt. A source of more than one dimension (the
  input, a conv2d, an avgpool) is read through a ``Flatten`` node: edgelearn's buffers are flat
  in (C, H, W) order, which is what the Flatten gives;
- conv2d: a ``Conv2d`` node (the kernels dequantised as a Linear's, OIHW [out_c, in_c, kh, kw],
  the window's stride and zero padding, dilation 1, groups 1, a zero bias, input_shape (H, W))
  feeding the layer's neuron node, whose parameters are shaped [C, H, W] as NIR's type check
  wants (the Conv2d's output type);
- avgpool: an ``AvgPool2d`` node named as the layer (no neuron node: a pool has no neurons);
  its padding counts in the kh kw it divides by, as PyTorch's count_include_pad;
- maxpool: refused. NIR 1.0 has no max-pooling node; edgelearn does not invent one.

NIR's neurons are continuous in time; edgelearn's step is the forward-Euler step of length dt
(the convention of snnTorch's and Norse's NIR readers):

    tau v' = (v_leak - v) + r I   ->   v[t+1] = (1 - dt/tau) v[t] + (r dt/tau) I[t]

so a leak a is written tau = dt / (1 - a), r = tau / dt (unit input gain), v_leak = 0; an IF
(a = 1, v' = r I) is written r = 1 / dt. DEFAULT_DT = 1e-4 s is snnTorch's; the file records
the dt it was written with and a reader can be given another.

What edgelearn keeps in metadata (a foreign tool may ignore it): on the graph, the model's spec
without its layers as JSON (name, input encoding, learning fields: rule, T, learning-rate
shifts, surrogate, update, seed, Tb; the cutoff; whatever else the spec holds) and the dt; on
each neuron node the layer's kind, its neuron record (kind, initial threshold and leak, what it
learns, its reset) and shape; on each Linear and Conv2d the weights' Q-format and storage
width (int16, or int8: a layer's weight_bits; and a Conv2d's window); on each AvgPool2d the layer's kind, window, shape and weight_frac. The structure and
the parameters are the graph's own nodes. Reading a file edgelearn wrote gives back the same
model, parameters and spec.

What NIR cannot say, and a foreign reader therefore does not get (docs/interop.md):
the reset by subtraction (NIR's LIF and IF reset *to* v_reset; edgelearn has no other reset, so
a foreign LIF is read as resetting by subtraction, as snnTorch's Leaky(reset_mechanism=
'subtract') does, and that is said); the spike at v == threshold (NIR fires above it, edgelearn
at or above); the fixed-point formats (the weights are written as floats on the int16 grid);
learning; the input encoding; SPIDE's modified reset. NIR -> edgelearn: a leak per layer (one
tau for all neurons of a node), no bias (Affine's and Conv2d's must be zero, v_leak too), no
synaptic current filter (CubaLIF), no nested graphs; Conv2d with groups 1, dilation 1 and
symmetric integer padding; AvgPool2d, and SumPool2d read as an avgpool whose kh kw (a power of
two) is folded into the weights that read it (the sum is that many times the average)."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import numerics as nx
from ..contract import INPUT
from ..errors import ModelError
from ..model import Layer, LayerParams, Model, Window
from ..modelfile import LAYER_KEY_SINCE, SPEC_FORMAT, model_from_spec_dict, spec_to_dict
from ..ops import NEURONS
from ..ops.layers.window import geometry as window_geometry
from .fixed_point import quantise_weights, weight_frac_for

DEFAULT_DT = 1e-4                  # seconds per step: snnTorch's export_to_nir / import_from_nir
FORMAT = "edgelearn-nir"
VERSION = 1
WRITTEN_KINDS = ("dense", "conv2d", "avgpool")     # the layer kinds NIR has nodes for


@dataclass
class NirImport:
    model: Model
    notes: list[str] = field(default_factory=list)   # what the reading assumed, for people


# -- edgelearn -> NIR ---------------------------------------------------------------------------
def to_nir(model: Model, dt: float = DEFAULT_DT):
    """The NIRGraph of ``model`` with its parameters (see the module docstring)."""
    import nir

    model.validate()
    if not dt > 0:
        raise ModelError(f"dt must be > 0, got {dt}")
    for layer in model.layers:
        if "/" in layer.name:
            raise ModelError(f"layer {layer.name!r}: NIR node names are HDF5 group names and cannot hold '/'")
        if layer.kind == "maxpool":
            raise ModelError(f"layer {layer.name!r} (maxpool): NIR 1.0 has no max-pooling node (its pools are "
                             "SumPool2d and AvgPool2d), and edgelearn does not invent one that NIR readers would not "
                             "know; use an 'avgpool' layer (a power-of-two window) to take this model to NIR")
        if layer.kind not in WRITTEN_KINDS:
            raise ModelError(f"layer {layer.name!r} ({layer.kind}): NIR has no node for a {layer.kind!r} layer; "
                             f"edgelearn writes {', '.join(WRITTEN_KINDS)} layers to NIR")
    sizes, shapes = model.sizes(), model.shapes()
    nodes = {INPUT: nir.Input(input_type=np.array(model.input.shape))}
    edges = []
    # the shape of each layer's NIR node: a dense layer's neurons are flat (a Linear gives [n])
    node_shape = {INPUT: tuple(model.input.shape)}
    node_shape.update({layer.name: tuple(layer.shape) if layer.kind != "dense" else (layer.size,)
                       for layer in model.layers})
    flat: dict[str, str] = {}

    def add(name: str, node) -> str:
        if name in nodes:
            raise ModelError(f"NIR node {name!r} is needed twice: a layer's name clashes with a node edgelearn "
                             "writes for another layer (rename the layer)")
        nodes[name] = node
        return name

    def flattened(source: str) -> str:
        """The node that gives ``source``'s output flat, as a Linear reads it."""
        if source not in flat:
            flat[source] = source
            if len(node_shape[source]) > 1:
                flat[source] = add(f"{source}.flatten", nir.Flatten(input_type={"input": np.array(node_shape[source])},
                                                                    start_dim=0, end_dim=-1))
                edges.append((source, flat[source]))
        return flat[source]

    for layer in model.layers:
        if layer.kind == "avgpool":
            add(layer.name, _pool_node(layer))
        else:
            add(layer.name, _neuron_node(model, layer, dt, node_shape[layer.name]))
    for layer in model.layers:
        p = model.params[layer.name]
        if layer.kind != "dense":
            source = layer.inputs[0].source
            if len(node_shape[source]) != 3:
                raise ModelError(f"layer {layer.name!r} ({layer.kind}) reads {source!r}, a dense layer of shape "
                                 f"{shapes[source]}: its NIR node is flat (a Linear gives [n]) and NIR 1.0 has no "
                                 "reshape node to give it back its [C, H, W]")
            if layer.kind == "avgpool":
                edges.append((source, layer.name))
                continue
            name = add(f"{layer.name}.w", _conv_node(model, layer, shapes))
            edges += [(source, name), (name, layer.name)]
            continue
        start = 0
        for e in layer.inputs:
            width = sizes[e.source]
            name = f"{layer.name}.w" if len(layer.inputs) == 1 else f"{layer.name}.w.{e.source}.{e.delay}"
            add(name, nir.Linear(weight=nx.from_fixed(p.weight[:, start:start + width], layer.weight_frac),
                                 metadata=_weight_meta(layer)))
            start += width
            src = flattened(e.source)
            if e.delay:
                add(f"{name}.delay", nir.Delay(delay=np.full(width, e.delay * dt), metadata={"edgelearn_steps": e.delay}))
                edges.append((src, f"{name}.delay"))
                src = f"{name}.delay"
            edges += [(src, name), (name, layer.name)]
    output = "output" if "output" not in nodes else "output.readout"
    add(output, nir.Output(output_type=np.array(node_shape[model.readout.name])))
    edges.append((model.readout.name, output))
    spec = spec_to_dict(model)       # the model's own fields; the layers are the graph's nodes
    del spec["layers"]
    meta = {"edgelearn_format": FORMAT, "edgelearn_version": VERSION, "edgelearn_dt": float(dt),
            "edgelearn_spec": json.dumps(spec)}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=True)


def _weight_meta(layer: Layer) -> dict:
    bits = layer.weight_bits
    return {"edgelearn_weight_frac": layer.weight_frac, "edgelearn_weight_bits": bits,
            "edgelearn_weight_format": f"int{bits} Q{bits - 1 - layer.weight_frac}.{layer.weight_frac}"}


def _window_json(window: Window) -> str:
    return json.dumps({key: [int(v) for v in pair] for key, pair in dataclasses.asdict(window).items()})


def _conv_node(model: Model, layer: Layer, shapes: dict):
    import nir

    g = model.geometry(layer, shapes)
    weight = nx.from_fixed(model.params[layer.name].weight, layer.weight_frac)
    node = nir.Conv2d(input_shape=(g.in_h, g.in_w), weight=weight.reshape(g.out_c, g.in_c, g.kernel_h, g.kernel_w),
                      stride=tuple(int(v) for v in layer.window.stride),
                      padding=tuple(int(v) for v in layer.window.padding), dilation=(1, 1), groups=1,
                      bias=np.zeros(g.out_c), metadata={**_weight_meta(layer), "edgelearn_window": _window_json(layer.window)})
    inferred = tuple(int(d) for d in node.output_type["output"])
    if inferred != tuple(layer.shape):
        # nir 1.0.8 infers a Conv2d's output width with the kernel's height (weight.shape[2] for both)
        raise ModelError(f"layer {layer.name!r} (conv2d): nir {nir.__version__} infers the output of its "
                         f"{layer.window.kernel[0]}x{layer.window.kernel[1]} kernel as {inferred}, not "
                         f"{tuple(layer.shape)} (its shape inference reads the kernel's height for its width too), so "
                         "nir.read, and every reader built on it, would refuse the file; edgelearn writes square "
                         "kernels (or kernels whose width gives the same output under that reading)")
    return node


def _pool_node(layer: Layer):
    import nir

    w = layer.window
    return nir.AvgPool2d(kernel_size=np.array(w.kernel), stride=np.array(w.stride), padding=np.array(w.padding),
                         metadata={"edgelearn_kind": layer.kind, "edgelearn_window": _window_json(w),
                                   "edgelearn_shape": np.array(layer.shape), "edgelearn_weight_frac": layer.weight_frac})


def _neuron_node(model: Model, layer: Layer, dt: float, shape: tuple[int, ...]):
    import nir

    p = model.params[layer.name]
    a = p.leak / nx.ONE
    th = nx.from_fixed(p.threshold, nx.STATE_FRAC).reshape(shape)
    meta = {"edgelearn_kind": layer.kind, "edgelearn_neuron": json.dumps(dataclasses.asdict(layer.neuron)),
            "edgelearn_shape": np.array(layer.shape), "edgelearn_state_format": "int32 Q16 (threshold, leak)"}
    full = lambda v: np.full(shape, float(v))
    zeros = np.zeros(shape)
    kind = NEURONS[layer.neuron.kind]
    if kind.spiking and layer.neuron.kind in ("lif", "if"):
        if a == 1.0:
            return nir.IF(r=full(1 / dt), v_threshold=th, v_reset=zeros, metadata=meta)
        return nir.LIF(tau=full(dt / (1 - a)), r=full(1 / (1 - a)), v_leak=zeros, v_threshold=th, v_reset=zeros,
                       metadata=meta)
    if layer.neuron.kind == "li":
        if a == 1.0:
            return nir.I(r=full(1 / dt), metadata=meta)
        return nir.LI(tau=full(dt / (1 - a)), r=full(1 / (1 - a)), v_leak=zeros, metadata=meta)
    raise ModelError(f"layer {layer.name!r}: neuron kind {layer.neuron.kind!r} has no NIR node")


def write_nir(model: Model, path, dt: float = DEFAULT_DT) -> None:
    import nir
    nir.write(str(path), to_nir(model, dt))


# -- NIR -> edgelearn ---------------------------------------------------------------------------
def read_nir(path, *, dt: float | None = None, T: int | None = None, name: str | None = None) -> NirImport:
    """The model of a NIR file (HDF5, as ``nir.write`` makes it)."""
    import nir

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
    try:
        graph = nir.read(str(path))
    except OSError as e:
        raise ModelError(f"{path}: not a NIR file, or a truncated one (HDF5: {e})") from None
    except (KeyError, ValueError, TypeError, AssertionError, AttributeError) as e:
        raise ModelError(f"{path}: not a valid NIR graph ({type(e).__name__}: {e})") from None
    try:
        return from_nir(graph, dt=dt, T=T, name=name or path.stem)
    except ModelError as e:
        raise type(e)(f"{path}: {e}") from None


class _Synapse(NamedTuple):
    key: str                 # the Linear / Affine / Conv2d node
    source: str              # the layer (or INPUT) it reads
    delay: int
    weight: np.ndarray       # [rows, cols] (Linear, Affine) or OIHW (Conv2d)
    window: Window | None    # a Conv2d's
    meta: dict


def from_nir(graph, *, dt: float | None = None, T: int | None = None, name: str = "nir-model") -> NirImport:
    """The edgelearn model of a NIRGraph: edgelearn's own metadata where present, else the NIR
    parameters read with the mapping of the module docstring (``notes`` say what was assumed)."""
    import nir

    if not isinstance(graph, nir.NIRGraph):
        raise ModelError(f"expected a NIRGraph, got {type(graph).__name__}")
    meta = _plain(graph.metadata or {})
    ours = meta.get("edgelearn_format") == FORMAT
    dt = float(dt if dt is not None else meta.get("edgelearn_dt", DEFAULT_DT))
    if not dt > 0:
        raise ModelError(f"dt must be > 0, got {dt}")
    notes = [] if ours else [f"a foreign NIR graph, read with dt = {dt:g} s per step"]
    nodes = graph.nodes
    neuron_types, pool_types = (nir.LIF, nir.IF, nir.LI, nir.I), (nir.AvgPool2d, nir.SumPool2d)
    synapse_types = (nir.Linear, nir.Affine, nir.Conv2d)
    for key, node in nodes.items():
        if not isinstance(node, (nir.Input, nir.Output, nir.Flatten, nir.Delay) + synapse_types + neuron_types
                          + pool_types):
            kind = type(node).__name__
            hint = {"NIRGraph": " (a nested graph: snnTorch writes its RLeaky / RSynaptic so)",
                    "Conv1d": " (edgelearn's convolution is 2-D: conv2d)"}.get(kind, "")
            raise ModelError(f"node {key!r}: unsupported NIR node {kind}{hint}; edgelearn reads Input, Output, "
                             "Flatten, Linear, Affine, Conv2d, AvgPool2d, SumPool2d, Delay, LIF, IF, LI and I")
    preds: dict[str, list[str]] = {k: [] for k in nodes}
    for src, dst in graph.edges:
        preds[dst].append(src)
    inputs = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in nodes.items() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(f"the graph has {len(inputs)} Input and {len(outputs)} Output nodes; edgelearn reads one of each")
    neurons = [k for k, n in nodes.items() if isinstance(n, neuron_types)]
    pools = [k for k, n in nodes.items() if isinstance(n, pool_types)]
    layer_keys = [k for k in nodes if k in neurons or k in pools]
    input_shape = tuple(int(d) for d in np.atleast_1d(nodes[inputs[0]].input_type["input"]))

    def origin(key: str, delay: int = 0, via: str = "", flat: bool = False) -> tuple[str, int, bool]:
        """The layer (or the input) whose output reaches ``key``, the steps it is delayed, and
        whether it passed a Flatten."""
        node = nodes[key]
        if isinstance(node, nir.Input):
            return INPUT, delay, flat
        if key in layer_keys:
            return key, delay, flat
        if isinstance(node, (nir.Flatten, nir.Delay)) and len(preds[key]) == 1:
            if isinstance(node, nir.Flatten):
                return origin(preds[key][0], delay, key, True)
            steps = np.unique(np.round(np.asarray(node.delay, dtype=np.float64) / dt, 9))
            if len(steps) != 1 or steps[0] < 1 or steps[0] != np.round(steps[0]):
                raise ModelError(f"Delay node {key!r}: delay {node.delay} s is not one whole number (>= 1) of steps "
                                 f"of dt = {dt:g} s")
            return origin(preds[key][0], delay + int(steps[0]), key, flat)
        raise ModelError(f"node {key!r} ({type(node).__name__}) feeds {via!r} with {len(preds[key])} inputs; a "
                         "synapse or a pool reads one layer, the input, or a Delay or Flatten of one")

    def window_source(key: str, what: str) -> str:
        """The one same-step [C, H, W] source of a Conv2d or a pool node."""
        if len(preds[key]) != 1:
            raise ModelError(f"{what} node {key!r} has {len(preds[key])} inputs; it reads one")
        source, delay, flat = origin(preds[key][0], 0, key)
        if delay or flat:
            raise ModelError(f"{what} node {key!r} reads {source!r} through a " + ("Delay" if delay else "Flatten")
                             + f"; edgelearn's {'conv2d' if what == 'Conv2d' else 'pool'} layer reads its source's "
                             "[C, H, W] output of the same step")
        return source

    synapses: dict[str, list[_Synapse]] = {k: [] for k in neurons}
    for src, dst in graph.edges:
        if dst not in neurons:
            continue
        syn = nodes[src]
        if not isinstance(syn, synapse_types):
            raise ModelError(f"node {dst!r} receives {src!r} ({type(syn).__name__}) directly; edgelearn's layers "
                             "take their inputs through Linear, Affine or Conv2d nodes")
        if isinstance(syn, nir.Affine) and np.any(np.asarray(syn.bias) != 0):
            raise ModelError(f"Affine node {src!r} has a non-zero bias (largest |b| = "
                             f"{np.max(np.abs(syn.bias)):.3g}); edgelearn's dense layers have no bias term")
        if isinstance(syn, nir.Conv2d):
            window, weight = _conv_window(src, syn)
            synapses[dst].append(_Synapse(src, window_source(src, "Conv2d"), 0, weight, window, _plain(syn.metadata or {})))
            continue
        if len(preds[src]) != 1:
            raise ModelError(f"node {src!r} has {len(preds[src])} inputs; a synapse node reads one")
        source, delay, _ = origin(preds[src][0], 0, src)
        synapses[dst].append(_Synapse(src, source, delay, np.asarray(syn.weight, dtype=np.float64), None,
                                      _plain(syn.metadata or {})))
    for key, syns in synapses.items():
        convs = [s.key for s in syns if s.window is not None]
        if convs and len(syns) > 1:
            raise ModelError(f"node {key!r} receives {len(syns)} synapses, among them the Conv2d {convs[0]!r}; an "
                             "edgelearn conv2d layer reads exactly one source through one Conv2d")
    pool_source = {k: window_source(k, type(nodes[k]).__name__) for k in pools}
    needs = {k: {s.source for s in synapses[k] if s.delay == 0 and s.source != INPUT} for k in neurons}
    needs.update({k: {pool_source[k]} - {INPUT} for k in pools})
    order = _layer_order(layer_keys, neurons, needs, preds[outputs[0]])
    names = {k: (k if k != INPUT else f"{k}_layer") for k in layer_keys}

    # shapes first, in order (a window layer's comes from its source's), so that feedback edges find theirs
    shapes, windows, kinds = {INPUT: input_shape}, {}, {}
    for key in order:
        node, node_meta = nodes[key], _plain(nodes[key].metadata or {})
        typ = type(node).__name__
        if key in pools:
            windows[key] = Window(*(_pair(key, typ, attr, getattr(node, attr))
                                    for attr in ("kernel_size", "stride", "padding")))
            g = window_geometry(f"{typ} node {key!r}", windows[key], shapes[pool_source[key]], None)
            kinds[key] = "avgpool"
        elif not synapses[key]:
            raise ModelError(f"node {key!r} has no input synapse (a Linear, Affine or Conv2d node)")
        elif synapses[key][0].window is not None:
            s = synapses[key][0]
            windows[key] = s.window
            g = window_geometry(f"Conv2d node {s.key!r}", s.window, shapes[s.source], s.weight.shape[0])
            if s.weight.shape[1] != g.in_c:
                raise ModelError(f"wrong shapes: Conv2d node {s.key!r} has kernels for {s.weight.shape[1]} input "
                                 f"channels; it reads {s.source!r} of shape {shapes[s.source]}")
            declared = getattr(nodes[s.key], "input_shape", None)
            declared = None if declared is None else tuple(int(d) for d in np.atleast_1d(declared))
            if declared is not None and declared != (g.in_h, g.in_w):
                raise ModelError(f"wrong shapes: Conv2d node {s.key!r} declares input_shape {declared}; it reads "
                                 f"{s.source!r} of shape {shapes[s.source]}")
            kinds[key] = "conv2d"
        else:
            W = synapses[key][0].weight
            if W.ndim != 2:
                raise ModelError(f"node {key!r} has no input synapse with 2-D weights")
            shape = tuple(int(d) for d in node_meta.get("edgelearn_shape", (W.shape[0],)))
            shapes[key] = shape if int(np.prod(shape)) == W.shape[0] else (W.shape[0],)
            kinds[key] = "dense"
        if kinds[key] != "dense":
            shapes[key] = (g.out_c, g.out_h, g.out_w)
        if node_meta.get("edgelearn_kind", kinds[key]) != kinds[key]:
            raise ModelError(f"node {key!r}: its edgelearn metadata says a {node_meta['edgelearn_kind']!r} layer, its "
                             f"NIR nodes make a {kinds[key]!r} one")
    sums = {k: int(np.prod(windows[k].kernel)) for k in pools if isinstance(nodes[k], nir.SumPool2d)}
    for k, taps in sums.items():
        notes.append(f"{k} (SumPool2d): read as an avgpool, whose output is the window's mean; its {taps} taps are "
                     "folded into the weights that read it (a sum is that many times the mean)")

    layers, params = [], {}
    for key in order:
        node, node_meta = nodes[key], _plain(nodes[key].metadata or {})
        lname, shape, n = names[key], shapes[key], int(np.prod(shapes[key]))
        window = None if kinds[key] == "dense" else \
            {"kernel": list(windows[key].kernel), "stride": list(windows[key].stride), "padding": list(windows[key].padding)}
        if key in pools:
            if "edgelearn_window" in node_meta and json.loads(node_meta["edgelearn_window"]) != window:
                raise ModelError(f"{type(node).__name__} node {key!r}: its edgelearn metadata says the window "
                                 f"{node_meta['edgelearn_window']}, the node {window}")
            layers.append({"name": lname, "kind": "avgpool", "inputs": [{"from": names.get(pool_source[key], pool_source[key]),
                                                                         "delay": 0}],
                           "shape": list(shape), "weight_frac": int(node_meta.get("edgelearn_weight_frac", 12)),
                           "window": window})
            params[lname] = LayerParams(np.zeros((0, 0), np.int16), np.zeros(0, np.int32), 0)
            continue
        neuron, leak, gain, threshold = _neuron(key, node, node_meta, n, dt, notes, ours)
        blocks, fracs, widths, edges = [], set(), set(), []
        for s in synapses[key]:
            scale = sums.get(s.source, 1)
            if s.window is not None:
                if "edgelearn_window" in s.meta and json.loads(s.meta["edgelearn_window"]) != window:
                    raise ModelError(f"Conv2d node {s.key!r}: its edgelearn metadata says the window "
                                     f"{s.meta['edgelearn_window']}, the node {window}")
                out_c = s.weight.shape[0]
                per_channel = gain.reshape(out_c, -1)
                if not np.all(per_channel == per_channel[:, :1]):
                    raise ModelError(f"node {key!r}: its neurons' input gains r dt / tau differ within a channel; a "
                                     f"conv2d's kernel (from Conv2d {s.key!r}) is shared by every position")
                blocks.append(s.weight.reshape(out_c, -1) * per_channel[:, :1] * scale)
            else:
                width = int(np.prod(shapes[s.source]))
                if s.weight.ndim != 2 or s.weight.shape != (n, width):
                    raise ModelError(f"wrong shapes: the synapse from {s.source!r} into {key!r} has weights "
                                     f"{s.weight.shape}, expected ({n}, {width})")
                blocks.append(s.weight * gain[:, None] * scale)
            src = names.get(s.source, s.source)
            if (src, s.delay) in edges:
                raise ModelError(f"node {key!r} reads {s.source!r} through two synapses with the same delay {s.delay}")
            edges.append((src, s.delay))
            if "edgelearn_weight_frac" in s.meta:
                fracs.add(int(s.meta["edgelearn_weight_frac"]))
            widths.add(int(s.meta.get("edgelearn_weight_bits", 16)))
        weight = np.concatenate(blocks, axis=1)
        frac = fracs.pop() if len(fracs) == 1 else weight_frac_for(weight, f"node {key!r}")
        layer = {"name": lname, "kind": kinds[key], "inputs": [{"from": s, "delay": d} for s, d in edges],
                 "shape": list(shape), "neuron": neuron, "weight_frac": frac}
        if window is not None:
            layer["window"] = window
        if widths == {8}:                      # every synapse of the layer written from int8 weights
            layer["weight_bits"] = 8
        layers.append(layer)
        params[lname] = LayerParams(weight=quantise_weights(weight, frac), threshold=threshold, leak=leak)
    spec = json.loads(meta["edgelearn_spec"]) if ours and "edgelearn_spec" in meta else \
        {"format": SPEC_FORMAT, "version": 1, "name": name, "input": {"encoding": "direct"}}
    spec["input"]["shape"] = list(input_shape)
    spec["layers"] = layers
    if any("window" in layer for layer in layers):
        spec["version"] = max(spec["version"], LAYER_KEY_SINCE["window"])
    if T is not None and T != spec.get("learning", {}).get("T"):
        spec.setdefault("learning", {})["T"] = T
        if spec.pop("cutoff", None) is not None:
            notes.append(f"the cutoff (its margins hold for the T it was calibrated for) is dropped: T = {T} now")
    model = model_from_spec_dict(spec)    # the spec reader's checks; its fresh parameters are replaced
    model.params = params
    return NirImport(model.validate(), notes)


def _conv_window(key: str, node) -> tuple[Window, np.ndarray]:
    """The window and OIHW kernels of a Conv2d node, refused where a conv2d layer does not model it."""
    weight = np.asarray(node.weight, dtype=np.float64)
    if weight.ndim != 4:
        raise ModelError(f"Conv2d node {key!r}: weights of shape {weight.shape}; a Conv2d's are (C_out, C_in, kH, kW)")
    if int(np.asarray(node.groups)) != 1:
        raise ModelError(f"Conv2d node {key!r}: groups = {int(np.asarray(node.groups))}; edgelearn's conv2d connects "
                         "every input channel to every output channel (groups 1)")
    if _pair(key, "Conv2d", "dilation", node.dilation) != (1, 1):
        raise ModelError(f"Conv2d node {key!r}: dilation {np.asarray(node.dilation).tolist()}; edgelearn's conv2d "
                         "reads adjacent taps (dilation 1)")
    bias = np.asarray(node.bias, dtype=np.float64) if node.bias is not None else np.zeros(1)
    if np.any(bias != 0):
        raise ModelError(f"Conv2d node {key!r} has a non-zero bias (largest |b| = {np.max(np.abs(bias)):.3g}); "
                         "edgelearn's conv2d layers have no bias term")
    padding = node.padding.decode() if isinstance(node.padding, bytes) else node.padding
    if isinstance(padding, np.ndarray) and padding.dtype.kind in "SUO":
        padding = str(padding.astype(str))
    if isinstance(padding, str):
        if padding != "valid":
            raise ModelError(f"Conv2d node {key!r}: padding {padding!r}; edgelearn's conv2d takes its zero padding as "
                             "integers (height, width), the same on both sides ('valid' is read as 0)")
        padding = 0
    window = Window(tuple(int(d) for d in weight.shape[2:]), _pair(key, "Conv2d", "stride", node.stride),
                    _pair(key, "Conv2d", "padding", padding))
    return window, weight


def _pair(key: str, typ: str, what: str, value) -> tuple[int, int]:
    """A (height, width) pair of non-negative integers from one value or two."""
    v = np.atleast_1d(np.asarray(value))
    if v.dtype.kind not in "iuf" or v.ndim != 1 or v.size not in (1, 2) or np.any(v != np.round(v)) or np.any(v < 0):
        more = " (a padding per side is not modelled: edgelearn pads both sides alike)" if what == "padding" and \
            v.size == 4 else ""
        raise ModelError(f"{typ} node {key!r}: {what} {np.asarray(value).tolist()!r} is not one or two (height, width) "
                         f"non-negative integers{more}")
    v = np.broadcast_to(v, (2,))
    return int(v[0]), int(v[1])


def _layer_order(layers: list[str], neurons: list[str], needs: dict[str, set], readout_keys: list[str]) -> list[str]:
    """The layers in an order where every same-step edge comes from an earlier layer, the
    node that feeds the Output last."""
    if len(readout_keys) != 1 or readout_keys[0] not in neurons:
        raise ModelError(f"the Output node is fed by {readout_keys}; it must be fed by one neuron node (the readout)")
    readout = readout_keys[0]
    order, done = [], set()
    while len(order) < len(layers):
        ready = [k for k in layers if k not in done and needs[k] <= done and (k != readout or len(done) == len(layers) - 1)]
        if not ready:
            stuck = [k for k in layers if k not in done]
            raise ModelError(f"nodes {stuck} form a cycle without a Delay node (or feed on the readout in the same "
                             "step); edgelearn needs each recurrent edge's delay explicit: put a nir.Delay of one step "
                             "on it")
        order.append(ready[0])
        done.add(ready[0])
    return order


def _neuron(key: str, node, meta: dict, n: int, dt: float, notes: list[str], ours: bool):
    """(neuron record as the spec has it, leak Q16, input gain [n], thresholds Q16 [n]) of a NIR neuron node of n
    neurons (its parameters per neuron, or one for all)."""
    import nir

    def arr(v):
        a = np.atleast_1d(np.asarray(v, dtype=np.float64)).ravel()
        if a.size not in (1, n):
            raise ModelError(f"{type(node).__name__} node {key!r}: {a.size} parameter values for {n} neurons")
        return np.broadcast_to(a, (n,)).copy()
    typ = type(node).__name__
    if isinstance(node, (nir.LIF, nir.LI)):
        tau, r, v_leak = arr(node.tau), arr(node.r), arr(node.v_leak)
        if np.any(tau < dt):
            raise ModelError(f"{typ} node {key!r}: tau {tau.min():g} s is shorter than a step (dt = {dt:g} s); a "
                             "leak would be negative (pass the dt the graph was made for)")
        leak, gain = 1.0 - dt / tau, r * dt / tau
    else:                                     # IF, I: v' = r I
        r = arr(node.r)
        leak, gain, v_leak = np.ones_like(r), r * dt, np.zeros_like(r)
    if np.any(v_leak != 0):
        raise ModelError(f"{typ} node {key!r}: v_leak is not zero; a resting potential is a bias current, which "
                         "edgelearn's layers do not have")
    if not np.allclose(leak, leak[0], rtol=0, atol=2.0 ** -18):
        raise ModelError(f"{typ} node {key!r}: its neurons have different time constants (leaks "
                         f"{leak.min():.6f} .. {leak.max():.6f}); an edgelearn layer has one leak")
    if np.allclose(gain, 1.0, rtol=1e-9, atol=0):
        gain = np.ones_like(gain)
    elif not ours:
        notes.append(f"{key}: the input gain r dt / tau = {np.unique(gain)[:3]} is folded into its weights")
    spiking = isinstance(node, (nir.LIF, nir.IF))
    if spiking:
        th = arr(node.v_threshold)
        if np.any(arr(node.v_reset) != 0):
            raise ModelError(f"{typ} node {key!r}: v_reset is not zero; edgelearn resets by subtracting the threshold")
        if not ours:
            notes.append(f"{key} ({typ}): NIR resets to v_reset = 0; read as edgelearn's reset by subtraction "
                         "(snnTorch's Leaky(reset_mechanism='subtract')), which fires at v >= threshold")
    if "edgelearn_neuron" in meta:
        neuron = json.loads(meta["edgelearn_neuron"])
    else:
        kind = ("lif" if leak[0] < 1.0 else "if") if spiking else "li"
        neuron = {"kind": kind, "threshold": float(th[0]) if spiking else 1.0, "leak": float(leak[0])}
    if not spiking:                  # an 'li' keeps the initial threshold it never uses
        th = np.full(n, neuron.get("threshold", 1.0))
    return neuron, int(nx.to_fixed(leak[0], nx.STATE_FRAC)), gain, nx.to_fixed(th, nx.STATE_FRAC)


def _plain(meta: dict) -> dict:
    """Metadata as Python values: HDF5 gives strings back as bytes and numbers as numpy scalars."""
    out = {}
    for k, v in meta.items():
        if isinstance(v, bytes):
            v = v.decode("utf-8")
        elif isinstance(v, np.ndarray) and v.dtype.kind in "SO":
            v = v.astype(str).tolist()
        elif isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out

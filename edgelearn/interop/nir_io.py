"""edgelearn models to and from NIR, the Neuromorphic Intermediate Representation (``nir``).

edgelearn -> NIR. Per layer: one ``Linear`` node per input edge (its columns of the weight
matrix, dequantised: int16 / 2^weight_frac, exact in float64), feeding the layer's neuron node
(named as the layer): ``LIF``, ``IF`` or ``LI`` (``I`` for an 'li' that does not leak). An edge
with delay d >= 1 goes through a ``Delay`` node of d * dt. A multi-dimensional input is
flattened by a ``Flatten`` node. NIR's neurons are continuous in time; edgelearn's step is the
forward-Euler step of length dt (the convention of snnTorch's and Norse's NIR readers):

    tau v' = (v_leak - v) + r I   ->   v[t+1] = (1 - dt/tau) v[t] + (r dt/tau) I[t]

so a leak a is written tau = dt / (1 - a), r = tau / dt (unit input gain), v_leak = 0; an IF
(a = 1, v' = r I) is written r = 1 / dt. DEFAULT_DT = 1e-4 s is snnTorch's; the file records
the dt it was written with and a reader can be given another.

What edgelearn keeps in metadata (a foreign tool may ignore it): on the graph, the model's spec
without its layers as JSON (name, input encoding, learning fields: rule, T, learning-rate
shifts, surrogate, update, seed, Tb; the cutoff; whatever else the spec holds) and the dt; on
each neuron node the layer's neuron record (kind, initial threshold and leak, what it learns,
its reset) and shape; on each Linear the weights' Q-format. The structure and the parameters
are the graph's own nodes. Reading a file edgelearn wrote gives back the same model,
parameters and spec.

What NIR cannot say, and a foreign reader therefore does not get (docs/interop.md):
the reset by subtraction (NIR's LIF and IF reset *to* v_reset; edgelearn has no other reset, so
a foreign LIF is read as resetting by subtraction, as snnTorch's Leaky(reset_mechanism=
'subtract') does, and that is said); the spike at v == threshold (NIR fires above it, edgelearn
at or above); the fixed-point formats (the weights are written as floats on the int16 grid);
learning; the input encoding; SPIDE's modified reset. NIR -> edgelearn: a leak per layer (one
tau for all neurons of a node), no bias (Affine's must be zero, v_leak too), no synaptic
current filter (CubaLIF), no nested graphs, no convolution yet."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import numerics as nx
from ..contract import INPUT
from ..errors import ModelError
from ..model import Layer, LayerParams, Model
from ..modelfile import SPEC_FORMAT, model_from_spec_dict, spec_to_dict
from ..ops import NEURONS
from .fixed_point import quantise_weights, weight_frac_for
from .onnx_graph import ConvNotSupported

DEFAULT_DT = 1e-4                  # seconds per step: snnTorch's export_to_nir / import_from_nir
FORMAT = "edgelearn-nir"
VERSION = 1
CONV_NODES = ("Conv1d", "Conv2d", "SumPool2d", "AvgPool2d")


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
    sizes = model.sizes()
    nodes = {INPUT: nir.Input(input_type=np.array(model.input.shape))}
    edges, source_node = [], {INPUT: INPUT}
    if len(model.input.shape) > 1:
        nodes["input.flatten"] = nir.Flatten(input_type={"input": np.array(model.input.shape)}, start_dim=0,
                                             end_dim=-1)
        edges.append((INPUT, "input.flatten"))
        source_node[INPUT] = "input.flatten"
    for layer in model.layers:
        source_node[layer.name] = layer.name
        nodes[layer.name] = _neuron_node(model, layer, dt)
    for layer in model.layers:
        p, start = model.params[layer.name], 0
        for e in layer.inputs:
            width = sizes[e.source]
            name = f"{layer.name}.w" if len(layer.inputs) == 1 else f"{layer.name}.w.{e.source}.{e.delay}"
            nodes[name] = nir.Linear(weight=nx.from_fixed(p.weight[:, start:start + width], layer.weight_frac),
                                     metadata={"edgelearn_weight_frac": layer.weight_frac,
                                               "edgelearn_weight_format": f"int16 Q{15 - layer.weight_frac}."
                                                                          f"{layer.weight_frac}"})
            start += width
            src = source_node[e.source]
            if e.delay:
                nodes[f"{name}.delay"] = nir.Delay(delay=np.full(width, e.delay * dt),
                                                   metadata={"edgelearn_steps": e.delay})
                edges.append((src, f"{name}.delay"))
                src = f"{name}.delay"
            edges += [(src, name), (name, layer.name)]
    output = "output" if "output" not in nodes else "output.readout"
    nodes[output] = nir.Output(output_type=np.array([model.readout.size]))
    edges.append((model.readout.name, output))
    spec = spec_to_dict(model)       # the model's own fields; the layers are the graph's nodes
    del spec["layers"]
    meta = {"edgelearn_format": FORMAT, "edgelearn_version": VERSION, "edgelearn_dt": float(dt),
            "edgelearn_spec": json.dumps(spec)}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=True)


def _neuron_node(model: Model, layer: Layer, dt: float):
    import nir

    p, n = model.params[layer.name], layer.size
    a = p.leak / nx.ONE
    th = nx.from_fixed(p.threshold, nx.STATE_FRAC)
    meta = {"edgelearn_neuron": json.dumps(dataclasses.asdict(layer.neuron)),
            "edgelearn_shape": np.array(layer.shape), "edgelearn_state_format": "int32 Q16 (threshold, leak)"}
    full = lambda v: np.full(n, float(v))
    zeros = np.zeros(n)
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
    for key, node in nodes.items():
        kind = type(node).__name__
        if kind in CONV_NODES:
            raise ConvNotSupported(f"node {key!r} ({kind}): not supported yet: convolution and pooling layers come "
                                   "with edgelearn's conv layer kind (another issue); this version reads dense graphs")
        if not isinstance(node, (nir.Input, nir.Output, nir.Flatten, nir.Linear, nir.Affine, nir.Delay,
                                 nir.LIF, nir.IF, nir.LI, nir.I)):
            nested = " (a nested graph: snnTorch writes its RLeaky / RSynaptic so)" if kind == "NIRGraph" else ""
            raise ModelError(f"node {key!r}: unsupported NIR node {kind}{nested}; edgelearn reads Input, Output, "
                             "Flatten, Linear, Affine, Delay, LIF, IF, LI and I")
    preds: dict[str, list[str]] = {k: [] for k in nodes}
    for src, dst in graph.edges:
        preds[dst].append(src)
    inputs = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in nodes.items() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(f"the graph has {len(inputs)} Input and {len(outputs)} Output nodes; edgelearn reads one of each")
    neurons = [k for k, n in nodes.items() if isinstance(n, (nir.LIF, nir.IF, nir.LI, nir.I))]
    input_shape = tuple(int(d) for d in np.atleast_1d(nodes[inputs[0]].input_type["input"]))

    def origin(key: str, delay: int = 0, via: str = "") -> tuple[str, int]:
        """The layer (or the input) whose output reaches ``key``, and the steps it is delayed."""
        node = nodes[key]
        if isinstance(node, nir.Input):
            return INPUT, delay
        if key in neurons:
            return key, delay
        if isinstance(node, (nir.Flatten, nir.Delay)) and len(preds[key]) == 1:
            if isinstance(node, nir.Flatten):
                return origin(preds[key][0], delay, key)
            steps = np.unique(np.round(np.asarray(node.delay, dtype=np.float64) / dt, 9))
            if len(steps) != 1 or steps[0] < 1 or steps[0] != np.round(steps[0]):
                raise ModelError(f"Delay node {key!r}: delay {node.delay} s is not one whole number (>= 1) of steps "
                                 f"of dt = {dt:g} s")
            return origin(preds[key][0], delay + int(steps[0]), key)
        raise ModelError(f"node {key!r} ({type(node).__name__}) feeds {via!r} with {len(preds[key])} inputs; a "
                         "synapse reads one layer, the input, or a Delay or Flatten of one")

    synapses: dict[str, list[tuple[str, int, np.ndarray, dict]]] = {k: [] for k in neurons}
    for src, dst in graph.edges:
        if dst not in neurons:
            continue
        syn = nodes[src]
        if not isinstance(syn, (nir.Linear, nir.Affine)):
            raise ModelError(f"node {dst!r} receives {src!r} ({type(syn).__name__}) directly; edgelearn's layers "
                             "take their inputs through Linear or Affine nodes")
        if isinstance(syn, nir.Affine) and np.any(np.asarray(syn.bias) != 0):
            raise ModelError(f"Affine node {src!r} has a non-zero bias (largest |b| = "
                             f"{np.max(np.abs(syn.bias)):.3g}); edgelearn's dense layers have no bias term")
        if len(preds[src]) != 1:
            raise ModelError(f"node {src!r} has {len(preds[src])} inputs; a synapse node reads one")
        source, delay = origin(preds[src][0], 0, src)
        synapses[dst].append((source, delay, np.asarray(syn.weight, dtype=np.float64), _plain(syn.metadata or {})))
    order = _layer_order(neurons, synapses, preds[outputs[0]])
    sizes = {INPUT: int(np.prod(input_shape))}      # a layer's size: its synapses' rows
    sizes.update({k: synapses[k][0][2].shape[0] for k in neurons if synapses[k] and synapses[k][0][2].ndim == 2})
    layers, params = [], {}
    names = {k: (k if k != INPUT else f"{k}_layer") for k in neurons}
    for key in order:
        node, node_meta = nodes[key], _plain(nodes[key].metadata or {})
        if key not in sizes:
            raise ModelError(f"node {key!r} has no input synapse with 2-D weights")
        n = sizes[key]
        neuron, leak, gain, threshold = _neuron(key, node, node_meta, n, dt, notes, ours)
        shape = tuple(int(d) for d in node_meta.get("edgelearn_shape", (n,)))
        if int(np.prod(shape)) != n:
            shape = (n,)
        blocks, fracs, edges = [], set(), []
        for source, delay, W, syn_meta in synapses[key]:
            if W.ndim != 2 or W.shape != (n, sizes[source]):
                raise ModelError(f"wrong shapes: the synapse from {source!r} into {key!r} has weights {W.shape}, "
                                 f"expected ({n}, {sizes[source]})")
            if (names.get(source, source), delay) in edges:
                raise ModelError(f"node {key!r} reads {source!r} through two synapses with the same delay {delay}")
            edges.append((names.get(source, source), delay))
            blocks.append(W * gain[:, None])
            if "edgelearn_weight_frac" in syn_meta:
                fracs.add(int(syn_meta["edgelearn_weight_frac"]))
        weight = np.concatenate(blocks, axis=1)
        frac = fracs.pop() if len(fracs) == 1 else weight_frac_for(weight, f"node {key!r}")
        lname = names[key]
        sizes[key] = n
        layers.append({"name": lname, "kind": "dense", "inputs": [{"from": s, "delay": d} for s, d in edges],
                       "shape": list(shape), "neuron": neuron, "weight_frac": frac})
        params[lname] = LayerParams(weight=quantise_weights(weight, frac), threshold=threshold, leak=leak)
    spec = json.loads(meta["edgelearn_spec"]) if ours and "edgelearn_spec" in meta else \
        {"format": SPEC_FORMAT, "version": 1, "name": name, "input": {"encoding": "direct"}}
    spec["input"]["shape"] = list(input_shape)
    spec["layers"] = layers
    if T is not None and T != spec.get("learning", {}).get("T"):
        spec.setdefault("learning", {})["T"] = T
        if spec.pop("cutoff", None) is not None:
            notes.append(f"the cutoff (its margins hold for the T it was calibrated for) is dropped: T = {T} now")
    model = model_from_spec_dict(spec)    # the spec reader's checks; its fresh parameters are replaced
    model.params = params
    return NirImport(model.validate(), notes)


def _layer_order(neurons: list[str], synapses: dict, readout_keys: list[str]) -> list[str]:
    """The layers in an order where every same-step edge comes from an earlier layer, the
    node that feeds the Output last."""
    if len(readout_keys) != 1 or readout_keys[0] not in neurons:
        raise ModelError(f"the Output node is fed by {readout_keys}; it must be fed by one neuron node (the readout)")
    readout = readout_keys[0]
    needs = {k: {s for s, d, *_ in synapses[k] if d == 0 and s != INPUT} for k in neurons}
    order, done = [], set()
    while len(order) < len(neurons):
        ready = [k for k in neurons if k not in done and needs[k] <= done and (k != readout or len(done) == len(neurons) - 1)]
        if not ready:
            stuck = [k for k in neurons if k not in done]
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

"""The arena plan: every buffer a runtime holds while it runs and learns, in one table.

``BUFFERS`` is the single source of truth for the arena. From it come the C runtime's
``el_plan_t`` and the typed pointers of ``el_net_t`` (targets/c/el_plan.h, written by
``edgelearn.cgen``), the buffers the Python fixed-point executors allocate, the cffi
views of the C arena and the profiler's rows. Each buffer's size is a count of elements
named by a field of ``Dims``, per runtime; the C loader and ``dims`` below compute those
counts from the model in the same way, and the layout (buffers in table order, each
8-byte aligned) is the same on both sides.

The layer and edge tables have one set of fields for every rule (``LAYER_FIELDS``,
``EDGE_FIELDS``): the C structs el_layer_t / el_edge_t, and the int64 columns of the
Python tables (``LayerField``, ``EdgeField``). One difference, by design: in C the
``*_at`` fields are byte offsets of the parameter sections in the blob (parameters are
learned in place there); in Python they index the executor's own parameter arrays."""
from __future__ import annotations

import ctypes
from enum import IntEnum
from typing import NamedTuple

import numpy as np

from . import contract as ct
from .model import INPUT, Model
from .numerics import STATE_FRAC
from .ops import LAYERS, NEURONS
from .ops.layers.window import Geometry
from .rules import RULE_RUNTIME, RUNTIMES, SPECS  # noqa: F401  (RUNTIMES: their order is their C code)
from .rules.spide.spec import HealthSlot


class Field(NamedTuple):
    name: str
    ctype: str
    doc: str


LAYER_FIELDS = (
    Field("n_in", "uint32_t", "inputs (fan-in, every edge's columns)"),
    Field("n_out", "uint32_t", "neurons"),
    Field("weights_at", "uint32_t", "the weights: C, byte offset in the blob; Python, first element"),
    Field("thresholds_at", "uint32_t", "the thresholds: C, byte offset in the blob; Python, first element"),
    Field("leak_at", "uint32_t", "the leak: C, byte offset in the blob; Python, its index"),
    Field("n_off", "uint32_t", "first output in spikes (every layer's)"),
    Field("learn_off", "uint32_t", "first neuron in threshold_trace, leak_trace, threshold_grad"),
    Field("in_off", "uint32_t", "first input in input_trace"),
    Field("w_off", "uint32_t", "first synapse in weight_grad"),
    Field("neuron", "uint8_t", "neuron kind code"),
    Field("weight_frac", "uint8_t", "weights are Q(bits-1-weight_frac).weight_frac, bits 16 or 8"),
    Field("flags", "uint8_t", "EL_TRAINABLE | EL_LEARN_THRESHOLD | EL_LEARN_LEAK | EL_WEIGHTS_INT8"),
    Field("reset_shift", "uint8_t", "a spike subtracts th << reset_shift (1: SPIDE's modified reset)"),
    Field("e_start", "uint32_t", "the layer's first edge in the edge table"),
    Field("e_count", "uint16_t", "its number of edges"),
    Field("vd", "int8_t", "SPIDE: log2 of V_d in real units"),
    Field("kind", "uint8_t", "layer kind code"),
    Field("w_rows", "uint32_t", "its weight matrix's rows (dense: n_out; conv2d: out_c; pools: 0)"),
    Field("w_cols", "uint32_t", "and columns (dense: n_in; conv2d: in_c kh kw)"),
    *(Field(name, "uint16_t", f"window: {name.replace('_', ' ')}") for name in Geometry._fields),
    Field("out_frac", "uint8_t", "fractional bits of the values it writes into spikes (avgpool: log2 kh kw)"),
    Field("state_off", "uint32_t", "first neuron in membrane, potential, current (the layers with neurons')"),
    Field("error_off", "uint32_t", "first output in error (every trainable layer's, a pool's too)"),
    Field("n_traces", "uint32_t", "its input traces from in_off (n_in; scan2d: n_in + n_out, its own spikes'; "
          "psn: n_in ring_len, its input ring)"),
    Field("taps_at", "uint32_t", "psn: its tap codes: C, byte offset in the blob; Python, first element"),
    Field("taps", "uint8_t", "psn: taps per channel K"),
    Field("dilation", "uint16_t", "psn: the lag D between taps"),
    Field("ring_len", "uint32_t", "psn: steps its rings hold, (K-1) D + 1"),
    Field("ring_off", "uint32_t", "psn: first element of its ring of currents in current_ring"),
)
WINDOW_FIELDS = tuple(Field(name, "uint16_t", f"{name.replace('_', ' ')}") for name in Geometry._fields)
EDGE_FIELDS = (
    Field("src", "int32_t", "source layer, -1 for the input"),
    Field("delay", "uint32_t", "0: this step's spikes; 1: the previous step's"),
    Field("col", "uint32_t", "the reader's first weight column for this source"),
    Field("n_src", "uint32_t", "the source's size"),
    Field("src_off", "uint32_t", "the source's first neuron"),
)
LayerField = IntEnum("LayerField", [(f.name, i) for i, f in enumerate(LAYER_FIELDS)])
EdgeField = IntEnum("EdgeField", [(f.name, i) for i, f in enumerate(EDGE_FIELDS)])

_CTYPES = {"uint8_t": ctypes.c_uint8, "int8_t": ctypes.c_int8, "uint16_t": ctypes.c_uint16,
           "int32_t": ctypes.c_int32, "uint32_t": ctypes.c_uint32, "int64_t": ctypes.c_int64}


def struct_size(fields) -> int:
    """sizeof the C struct of these fields (natural alignment, as on every target)."""
    return ctypes.sizeof(type("S", (ctypes.Structure,), {"_fields_": [(f.name, _CTYPES[f.ctype]) for f in fields]}))


class Dims(NamedTuple):
    """The counts buffer sizes are made of (el_dims_t in C, filled by the loader)."""
    layers: int             # L
    neurons: int            # N, every layer's outputs
    state_neurons: int      # STOP: the neurons of the layers with neurons (a pool keeps no state)
    inputs: int
    classes: int            # the readout's neurons
    max_fan_in: int         # the widest layer input (widened to int32 in layer_input)
    max_nonzero: int        # the longest index list of a layer kind's call (their scratch companions)
    max_plane: int          # STOP: the largest output channel of a conv2d (its sums' scratch)
    width: int              # SPIDE: max(inputs, widest layer)
    edges: int              # SPIDE: every layer's edges
    learn_neurons: int      # STOP: neurons of trainable layers with neurons
    error_neurons: int      # STOP: outputs of trainable layers (a pool's error is passed on)
    learn_inputs: int       # STOP: fan-in of trainable layers
    max_hidden: int         # STOP: widest trainable layer below the readout (el_hidden_error's scratch)
    input_sums: int         # STOP: layer 0's neurons when its input is direct (the same all sample) and its
                            # kind keeps the sums, else 0
    learning_layers: int    # STOP: L when any layer learns, else 0
    grad_synapses: int      # STOP: synapses of trainable layers when gradients are accumulated, else 0
    health_counters: int    # SPIDE: its health counters
    ring_currents: int      # STOP: the rings of recent currents of the layers with a history (psn)
    max_lag0: int           # STOP: the widest layer with a history above a trainable one (its lag-0 errors)


class Buffer(NamedTuple):
    name: str
    ctype: str              # element type (el_layer_t, el_edge_t: the tables)
    group: str              # the profiler's row
    sizes: dict             # runtime -> the Dims field that counts its elements (absent: not used)
    doc: str


def _both(count: str) -> dict:
    return {"stop": count, "spide": count}


BUFFERS = (
    Buffer("layers", "el_layer_t", "layer table", _both("layers"), "the layer table"),
    Buffer("membrane", "int32_t", "neuron state", {"stop": "state_neurons", "spide": "neurons"}, "V, after reset"),
    Buffer("potential", "int32_t", "neuron state", {"stop": "state_neurons"}, "U, before reset (the surrogate reads it)"),
    Buffer("current", "int32_t", "neuron state", {"stop": "state_neurons", "spide": "neurons"},
           "this step's synaptic current"),
    Buffer("spikes", "uint8_t", "neuron state", _both("neurons"), "this step's spikes (a pool's: its values)"),
    Buffer("layer_input", "int32_t", "I/O buffers", {"stop": "max_fan_in"},
           "the encoder's output for layer 0, the spikes below widened to int32 for the others"),
    Buffer("nonzero_index", "int32_t", "I/O buffers", {"stop": "max_nonzero", "spide": "width"},
           "the layer kinds' scratch: non-zero inputs, traces or error positions"),
    Buffer("plane_sums", "int64_t", "I/O buffers", {"stop": "max_plane"}, "conv2d's scratch: one output channel's sums"),
    Buffer("scores", "int64_t", "I/O buffers", _both("classes"), "the readout's scores"),
    Buffer("input_sums", "int64_t", "neuron state", {"stop": "input_sums"},
           "STOP: layer 0's exact W x for a direct-coded sample (numerics.md §5b)"),
    Buffer("current_ring", "int32_t", "neuron state", {"stop": "ring_currents"},
           "STOP: the currents of a psn layer's last ring_len steps"),
    Buffer("input_trace", "int32_t", "traces", {"stop": "learn_inputs"},
           "STOP: presynaptic traces x^ (a psn layer's: its inputs of the last ring_len steps)"),
    Buffer("threshold_trace", "int32_t", "traces", {"stop": "learn_neurons"}, "STOP: th~"),
    Buffer("leak_trace", "int32_t", "traces", {"stop": "learn_neurons"}, "STOP: a~"),
    Buffer("error", "int32_t", "errors", {"stop": "error_neurons", "spide": "classes"},
           "STOP: spatial errors d; SPIDE: the readout's error e"),
    Buffer("error_backprop", "int64_t", "errors", {"stop": "max_hidden"}, "el_hidden_error's scratch"),
    Buffer("error_lag0", "int32_t", "errors", {"stop": "max_lag0"}, "STOP: a psn layer's errors through its lag-0 taps"),
    Buffer("threshold_grad", "int64_t", "gradient accumulators", {"stop": "learn_neurons"}, "STOP: threshold sums"),
    Buffer("leak_grad", "int64_t", "gradient accumulators", {"stop": "learning_layers"}, "STOP: leak sums"),
    Buffer("weight_grad", "int64_t", "gradient accumulators", {"stop": "grad_synapses"},
           "STOP: weight sums (update 'sample', or batches)"),
    Buffer("edges", "el_edge_t", "layer table", {"spide": "edges"}, "SPIDE: the edge table"),
    Buffer("input_current", "int32_t", "neuron state", {"spide": "neurons"}, "SPIDE: F x, the input edges' currents"),
    Buffer("spikes_prev", "uint8_t", "neuron state", {"spide": "neurons"}, "SPIDE: spikes of step t-1"),
    Buffer("count", "int32_t", "neuron state", {"spide": "neurons"}, "SPIDE: spike counts"),
    Buffer("half_count", "int32_t", "neuron state", {"spide": "neurons"}, "SPIDE: counts after T/2 steps"),
    Buffer("mask", "uint8_t", "neuron state", {"spide": "neurons"}, "SPIDE: 0 < count < T"),
    Buffer("edge_current", "int32_t", "I/O buffers", {"spide": "width"}, "SPIDE: one edge's current"),
    Buffer("input", "int32_t", "I/O buffers", {"spide": "inputs"}, "SPIDE: the encoded input"),
    Buffer("input_sum", "int32_t", "I/O buffers", {"spide": "inputs"}, "SPIDE: the input summed over T"),
    Buffer("output_gradient", "int32_t", "errors", {"spide": "neurons"}, "SPIDE: g = W_R^T e"),
    Buffer("drive", "int32_t", "errors", {"spide": "neurons"}, "SPIDE: g scaled by 2^gs"),
    Buffer("back_membrane", "int32_t", "backward couples", {"spide": "neurons"}, "SPIDE: the couples' membranes"),
    Buffer("back_spikes", "int8_t", "backward couples", {"spide": "neurons"}, "SPIDE: signed spikes"),
    Buffer("back_spikes_prev", "int8_t", "backward couples", {"spide": "neurons"}, "SPIDE: of the step before"),
    Buffer("back_count", "int32_t", "backward couples", {"spide": "neurons"}, "SPIDE: signed counts"),
    Buffer("back_input", "int64_t", "backward couples", {"spide": "width"}, "SPIDE: a couple's input"),
    Buffer("back_sum", "int64_t", "backward couples", {"spide": "width"}, "SPIDE: el_backward_input's scratch"),
    Buffer("row_sums", "int64_t", "guard and health", {"spide": "width"}, "SPIDE: |W| row sums (the guard)"),
    Buffer("row_gains", "int64_t", "guard and health", {"spide": "width"}, "SPIDE: per-row gains (the guard)"),
    Buffer("loop_gains", "int64_t", "guard and health", {"spide": "layers"}, "SPIDE: per-layer gains"),
    Buffer("health", "int64_t", "guard and health", {"spide": "health_counters"}, "SPIDE: health counters"),
)
BUFFER_NAMES = tuple(b.name for b in BUFFERS)
HEALTH_COUNTERS = len(HealthSlot)     # SPIDE's health counters

_NUMPY = {"uint8_t": np.uint8, "int8_t": np.int8, "int32_t": np.int32, "int64_t": np.int64}
_FIELD_NUMPY = {**_NUMPY, "uint16_t": np.uint16, "uint32_t": np.uint32}
# The C element type of every buffer as numpy sees it: the tables as structured records
# laid out as the C compiler lays out el_layer_t / el_edge_t (views of the C arena).
DTYPES = {"el_layer_t": np.dtype([(f.name, _FIELD_NUMPY[f.ctype]) for f in LAYER_FIELDS], align=True),
          "el_edge_t": np.dtype([(f.name, _FIELD_NUMPY[f.ctype]) for f in EDGE_FIELDS], align=True),
          **{c: np.dtype(t) for c, t in _NUMPY.items()}}
ELEMENT_BYTES = {"el_layer_t": struct_size(LAYER_FIELDS), "el_edge_t": struct_size(EDGE_FIELDS),
                 **{c: np.dtype(t).itemsize for c, t in _NUMPY.items()}}
BUFFER_DTYPES = {b.name: DTYPES[b.ctype] for b in BUFFERS}


def as_matrix(records: np.ndarray) -> np.ndarray:
    """A C table (structured records) as the Python executors hold it: int64 [rows, fields]."""
    return np.stack([records[name].astype(np.int64) for name in records.dtype.names], axis=1).reshape(
        len(records), len(records.dtype.names))

Arena = NamedTuple("Arena", [(name, np.ndarray) for name in BUFFER_NAMES])
Arena.__doc__ = "Every arena buffer by name (zero-length where the runtime does not use it)."


def runtime_of(model: Model) -> str:
    return RULE_RUNTIME[model.learning.rule]


def layer_flags(model: Model) -> list[int]:
    """The runtime's flags per layer: a layer its rule trains (the spec's ``trainable``)
    learns its threshold when asked and spiking, its leak when asked and the leak is a
    parameter of its kind. A layer without neurons (pooling) learns nothing; trainable, it
    passes the errors of the layer above down to the one below."""
    flags = []
    for layer, learns in zip(model.layers, SPECS[model.learning.rule].trainable(model)):
        f = ct.TRAINABLE if learns else 0
        if layer.neuron is not None:
            kind = NEURONS[layer.neuron.kind]
            if learns and layer.neuron.learn_threshold and kind.spiking:
                f |= ct.LEARN_THRESHOLD
            if learns and layer.neuron.learn_leak and not kind.leak_fixed_at_one:
                f |= ct.LEARN_LEAK
        if layer.weight_bits == 8:
            f |= ct.WEIGHTS_INT8
        flags.append(f)
    return flags


def tables(model: Model, weight_grad: bool = False) -> tuple[np.ndarray, np.ndarray, Dims]:
    """The layer table, the edge table and the counts of the arena, as the C loader fills
    them (el_blob.c): neurons in layer order, learning state compacted over the trainable
    layers, one edge per layer input."""
    layers, L = model.layers, len(model.layers)
    sizes, shapes, index = model.sizes(), model.shapes(), {layer.name: i for i, layer in enumerate(layers)}
    n_off = np.cumsum([0] + [layer.size for layer in layers])
    flags = layer_flags(model)
    spide = runtime_of(model) == "spide"
    table = np.zeros((L, len(LAYER_FIELDS)), dtype=np.int64)
    edges = np.zeros((sum(len(layer.inputs) for layer in layers), len(EDGE_FIELDS)), dtype=np.int64)
    w_at = th_at = taps_at = learn_off = in_off = w_off = e_start = state_off = error_off = ring_off = 0
    max_fan_in = max_nonzero = max_plane = max_hidden = max_lag0 = 0
    for l, layer in enumerate(layers):
        kind = LAYERS[layer.kind]
        n_in, n_out = model.fan_in(layer, sizes), layer.size
        g = model.geometry(layer, shapes)
        rows, cols = kind.weight_shape(n_out, n_in, g)
        reset_shift = 1 if layer.neuron is not None and layer.neuron.reset == "modified" else 0
        vd = 0
        if spide and l < L - 1:     # V_d = 2^vd: th = 2^k in Q16, vd = k - 16 + reset_shift
            vd = int(model.params[layer.name].threshold[0]).bit_length() - 1 - STATE_FRAC + reset_shift
        learns = bool(flags[l] & ct.TRAINABLE)
        n_traces = kind.traces(n_in, n_out, layer.ring) if kind.has_neurons else 0
        history = dict(taps_at=taps_at, taps=layer.filter.taps, dilation=layer.filter.dilation, ring_len=layer.ring,
                       ring_off=ring_off) if kind.history else {}
        row = dict(n_in=n_in, n_out=n_out, n_traces=n_traces, weights_at=w_at, thresholds_at=th_at, leak_at=l, n_off=n_off[l],
                   state_off=state_off if kind.has_neurons else 0, error_off=error_off if learns else 0,
                   learn_off=learn_off if learns and kind.has_neurons and not kind.history else 0,
                   in_off=in_off if learns and kind.has_neurons else 0,
                   w_off=w_off if learns else 0, neuron=NEURONS[layer.neuron.kind].code if kind.has_neurons else 0,
                   weight_frac=layer.weight_frac, flags=flags[l], reset_shift=reset_shift, e_start=e_start,
                   e_count=len(layer.inputs), vd=vd, kind=kind.code, w_rows=rows, w_cols=cols,
                   out_frac=kind.out_frac(g), **(g._asdict() if g else {}), **history)
        table[l] = [row.get(f.name, 0) for f in LAYER_FIELDS]
        col = 0
        for e in layer.inputs:
            src = -1 if e.source == INPUT else index[e.source]
            edges[e_start] = (src, e.delay, col, sizes[e.source], 0 if src < 0 else n_off[src])
            col += sizes[e.source]
            e_start += 1
        scratch = kind.scratch(n_in, g)
        max_fan_in = max(max_fan_in, scratch["layer_input"])
        max_nonzero, max_plane = max(max_nonzero, scratch["nonzero_index"]), max(max_plane, scratch["plane_sums"])
        if learns:
            error_off, w_off = error_off + n_out, w_off + rows * cols
            if kind.has_neurons:                            # a map of its input keeps no traces
                learn_off += 0 if kind.history else n_out   # a psn layer learns no thresholds nor leaks
                in_off += n_traces
            if l < L - 1:
                max_hidden = max(max_hidden, n_out)
            if kind.history and l > 0 and flags[l - 1] & ct.TRAINABLE:
                max_lag0 = max(max_lag0, n_out)             # its errors, lag-0 tapped, go down
        state_off += n_out if kind.has_neurons else 0
        w_at += rows * cols
        th_at += n_out if kind.has_neurons else 0
        if kind.history:
            taps_at, ring_off = taps_at + n_out * layer.filter.taps, ring_off + n_out * layer.ring
    grad_kept = model.learning.update == "sample" or weight_grad
    dims = Dims(layers=L, neurons=int(n_off[-1]), state_neurons=state_off, inputs=model.input.size,
                classes=layers[-1].size, error_neurons=error_off,
                max_fan_in=max_fan_in, max_nonzero=max_nonzero, max_plane=max_plane,
                width=max(model.input.size, max(layer.size for layer in layers)),
                edges=len(edges), learn_neurons=learn_off, learn_inputs=in_off, max_hidden=max_hidden,
                input_sums=layers[0].size if model.input.encoding == "direct" and LAYERS[layers[0].kind].keeps_sums
                else 0,
                learning_layers=L if learn_off else 0, grad_synapses=w_off if grad_kept else 0,
                health_counters=HEALTH_COUNTERS, ring_currents=ring_off, max_lag0=max_lag0)
    return table, edges, dims


def align(n: int) -> int:
    return (n + ct.ARENA_ALIGN - 1) // ct.ARENA_ALIGN * ct.ARENA_ALIGN


def elements(dims: Dims, runtime: str) -> dict[str, int]:
    """Elements of every buffer for a runtime (0 where it does not use one)."""
    return {b.name: getattr(dims, b.sizes[runtime]) if runtime in b.sizes else 0 for b in BUFFERS}


def layout(dims: Dims, runtime: str) -> tuple[dict[str, tuple[int, int]], int]:
    """(offset, bytes) of every buffer and the arena's total bytes: el_layout in C."""
    spans, end = {}, 0
    for b in BUFFERS:
        n = ELEMENT_BYTES[b.ctype] * elements(dims, runtime)[b.name]
        end = align(end)
        spans[b.name] = (end, n)
        end += n
    return spans, align(end)


def arena_plan(model: Model, weight_grad: bool = False) -> dict[str, int]:
    """Bytes per buffer and ``total`` for a model: what el_plan() reports for its blob."""
    spans, total = layout(tables(model, weight_grad)[2], runtime_of(model))
    return {**{name: n for name, (_, n) in spans.items()}, "total": total}


def allocate(table: np.ndarray, edges: np.ndarray, dims: Dims, runtime: str) -> Arena:
    """Zeroed buffers for a Python executor, with the tables in place (int64 matrices)."""
    count = elements(dims, runtime)
    arrays = {b.name: np.zeros(count[b.name], dtype=_NUMPY[b.ctype]) for b in BUFFERS if b.ctype in _NUMPY}
    return Arena(layers=table, edges=edges[:count["edges"]], **arrays)   # STOP keeps no edge table

"""The binary model file (``.elm``) that devices load: bytes to and from a Model.

All little-endian, every section 4-byte aligned, so that a C loader on a microcontroller
can check the file and then use its arrays in place without allocating.
docs/model-format.md gives the byte layout; this module is its reference implementation.
"""
from __future__ import annotations

import math
import struct
import zlib
from typing import NamedTuple

import numpy as np

from . import numerics as nx
from . import rules
from .encoders import CODES
from .ops import LAYERS, NEURONS
from .model import (ENCODINGS, INPUT, RULES, UPDATE_MODES, Cutoff, Edge, Filter, InputSpec,
                    Layer, LayerParams, Learning, Model, ModelError, Neuron, Schedule, Window)
from .ops.layers.psn import MAX_TAP_SHIFT, tap_values
from .ops.layers.window import geometry as window_geometry

BLOB_MAGIC = b"ELRN"
BLOB_VERSION = 5                       # the newest this loader reads
BLOB_VERSIONS = (1, 2, 3, 4, 5)        # 2 = 1 and a CUTOFF section, 3 = 2 and a SCHEDULE section, 4 = 3 and
                                       # WINDOW sections (conv2d, pooling), 5 = 4 and FILTER sections (psn);
                                       # a writer uses the oldest that fits

# Blob codes are the index of each name in model.py's tuples, which therefore only grow at
# the end: a code, once given to a C runtime, must keep its meaning.
ENCODING_CODES = CODES
RULE_CODES = {name: code for code, name in enumerate(RULES)}
UPDATE_CODES = {name: code for code, name in enumerate(UPDATE_MODES)}

# Section types start at 1 so that zeroed (erased, never written) memory is never a valid table.
(SECTION_MODEL, SECTION_LAYER, SECTION_WEIGHTS, SECTION_THRESHOLD, SECTION_LEAK, SECTION_CUTOFF,
 SECTION_SCHEDULE, SECTION_WINDOW, SECTION_FILTER) = 1, 2, 3, 4, 5, 6, 7, 8, 9
SECTION_NAMES = {SECTION_MODEL: "MODEL", SECTION_LAYER: "LAYER", SECTION_WEIGHTS: "WEIGHTS",
                 SECTION_THRESHOLD: "THRESHOLD", SECTION_LEAK: "LEAK", SECTION_CUTOFF: "CUTOFF",
                 SECTION_SCHEDULE: "SCHEDULE", SECTION_WINDOW: "WINDOW", SECTION_FILTER: "FILTER"}
SECTION_SINCE = {SECTION_CUTOFF: 2, SECTION_SCHEDULE: 3, SECTION_WINDOW: 4,   # the version that introduced a type
                 SECTION_FILTER: 5}
MODEL_SECTIONS = (SECTION_CUTOFF, SECTION_SCHEDULE)          # optional, at most one each, index 0
LAYER_SECTIONS = (SECTION_LAYER, SECTION_WEIGHTS, SECTION_THRESHOLD, SECTION_LEAK)
WINDOW_SECTIONS = (SECTION_WINDOW,)                          # one per layer of a window kind, none for the others
FILTER_SECTIONS = (SECTION_FILTER,)                          # one per layer of a history kind (psn)
INPUT_SOURCE = 0xFFFF                  # edge source index that means the model input
MAX_LAYERS = INPUT_SOURCE - 1          # layer_count's limit (docs/model-format.md, MODEL section)
FLAG_LEARN_THRESHOLD, FLAG_LEARN_LEAK, FLAG_MODIFIED_RESET = 1, 2, 4
FLAG_WEIGHTS_INT8 = 8                  # its WEIGHTS section holds int8 (one byte a weight), not int16
FLAGS_KNOWN = FLAG_LEARN_THRESHOLD | FLAG_LEARN_LEAK | FLAG_MODIFIED_RESET | FLAG_WEIGHTS_INT8

HEADER = struct.Struct("<4sHHIIII8s")             # magic, version, flags, size, count, table, crc, reserved
CRC_OFFSET = 20
SECTION_ENTRY = struct.Struct("<HHII")            # type, index, offset, size
MODEL_FIXED = struct.Struct("<IHBBHBBBBBbIHH")    # see the MODEL table in docs/model-format.md (last: Tb)
LAYER_FIXED = struct.Struct("<BBBBIIHBBHH")       # see the LAYER table in docs/model-format.md
CUTOFF_FIXED = struct.Struct("<II")              # tolerance in ppm, reserved 0; then int64 margins[T]
SCHEDULE_FIXED = struct.Struct("<IIII")          # every, steps, learned (the device updates it), reserved 0
WINDOW_FIXED = struct.Struct("<HHHHHH")          # kernel h, w, stride h, w, padding h, w
FILTER_FIXED = struct.Struct("<BBH")             # taps K, reserved 0, dilation D; then int8 tap codes [n_out, K]
_EDGE = np.dtype([("source", "<u2"), ("delay", "<u2")])


def to_blob(model: Model) -> bytes:
    """The device file of a validated model (structure and parameters)."""
    model.validate()
    _check_fits(len(model.layers), MAX_LAYERS, "number of layers")
    index = {layer.name: i for i, layer in enumerate(model.layers)}
    index[INPUT] = INPUT_SOURCE
    sizes = model.sizes()
    sections = [(SECTION_MODEL, 0, _model_section(model))]
    for i, layer in enumerate(model.layers):
        sections.append((SECTION_LAYER, i, _layer_section(model, layer, index, sizes)))
    for i, layer in enumerate(model.layers):
        if layer.window is not None:
            w = layer.window
            sections.append((SECTION_WINDOW, i, WINDOW_FIXED.pack(*w.kernel, *w.stride, *w.padding)))
        if layer.filter is not None:
            taps = model.params[layer.name].taps
            sections.append((SECTION_FILTER, i, FILTER_FIXED.pack(layer.filter.taps, 0, layer.filter.dilation)
                             + taps.astype("i1").tobytes()))
    for i, layer in enumerate(model.layers):
        p = model.params[layer.name]
        sections += [(SECTION_WEIGHTS, i, p.weight.astype("<i1" if layer.weight_bits == 8 else "<i2").tobytes()),
                     (SECTION_THRESHOLD, i, p.threshold.astype("<i4").tobytes()),
                     (SECTION_LEAK, i, struct.pack("<i", p.leak))]
    if model.cutoff is not None:
        sections.append((SECTION_CUTOFF, 0, CUTOFF_FIXED.pack(model.cutoff.ppm, 0)
                         + np.asarray(model.cutoff.margins, "<i8").tobytes()))
    if model.schedule is not None:
        sc = model.schedule
        sections.append((SECTION_SCHEDULE, 0, SCHEDULE_FIXED.pack(sc.every, sc.steps, sc.learned, 0)))
    return _assemble(sections)


def _check_fits(value: int, limit: int, what: str) -> None:
    if value > limit:
        raise ModelError(f"{what} is {value}; the blob format allows at most {limit}")


def _pad4(payload: bytes) -> bytes:
    return payload + bytes(-len(payload) % 4)


def _encode_name(name: str, what: str) -> bytes:
    encoded = name.encode("utf-8")
    _check_fits(len(encoded), 0xFFFF, f"{what} length in UTF-8 bytes")
    return encoded


def _model_section(model: Model) -> bytes:
    lr, shape = model.learning, model.input.shape
    name = _encode_name(model.name, "model name")
    _check_fits(len(shape), 0xFF, "input rank")
    fixed = MODEL_FIXED.pack(model.input.size, len(model.layers), ENCODING_CODES[model.input.encoding],
                              len(shape), lr.T, RULE_CODES[lr.rule], UPDATE_CODES[lr.update],
                              lr.lr_weight_shift, lr.lr_threshold_shift, lr.lr_leak_shift, lr.surrogate_shift,
                              lr.seed, len(name), lr.Tb)
    return fixed + np.asarray(shape, "<u4").tobytes() + _pad4(name)


def _layer_section(model: Model, layer: Layer, index: dict[str, int], sizes: dict[str, int]) -> bytes:
    name = _encode_name(layer.name, f"layer {layer.name!r} name")
    where = f"layer {layer.name!r}"
    _check_fits(len(layer.shape), 0xFF, f"{where} rank")
    _check_fits(len(layer.inputs), 0xFFFF, f"{where} number of inputs")
    _check_fits(max(e.delay for e in layer.inputs), 0xFFFF, f"{where} edge delay")
    neuron, flags = layer.neuron, 0                          # a kind without neurons: code 0, no flags
    if neuron is not None:
        flags = (FLAG_LEARN_THRESHOLD * neuron.learn_threshold + FLAG_LEARN_LEAK * neuron.learn_leak
                 + FLAG_MODIFIED_RESET * (neuron.reset == "modified") + FLAG_WEIGHTS_INT8 * (layer.weight_bits == 8))
    fixed = LAYER_FIXED.pack(LAYERS[layer.kind].code, NEURONS[neuron.kind].code if neuron else 0, flags,
                              layer.weight_frac, layer.size, model.fan_in(layer, sizes), len(layer.inputs),
                              len(layer.shape), 0, len(name), 0)
    edges = np.array([(index[e.source], e.delay) for e in layer.inputs], _EDGE)
    return fixed + np.asarray(layer.shape, "<u4").tobytes() + edges.tobytes() + _pad4(name)


def _assemble(sections: list[tuple[int, int, bytes]]) -> bytes:
    version = max([SECTION_SINCE.get(kind, 1) for kind, _, _ in sections])
    table, body = [], []
    offset = HEADER.size + len(sections) * SECTION_ENTRY.size    # a multiple of 4
    for kind, index, payload in sections:
        table.append(SECTION_ENTRY.pack(kind, index, offset, len(payload)))
        body.append(_pad4(payload))
        offset += len(body[-1])
    header = HEADER.pack(BLOB_MAGIC, version, 0, offset, len(sections), HEADER.size, 0, bytes(8))
    blob = bytearray(header + b"".join(table) + b"".join(body))
    struct.pack_into("<I", blob, CRC_OFFSET, zlib.crc32(blob))   # CRC taken with its own field zero
    return bytes(blob)


def blob_crc(data: bytes) -> int:
    """CRC-32 (IEEE, as zlib.crc32) of a blob with its CRC field taken as zero."""
    view = memoryview(data)
    crc = zlib.crc32(view[:CRC_OFFSET])
    crc = zlib.crc32(bytes(4), crc)
    return zlib.crc32(view[CRC_OFFSET + 4:], crc)


def from_blob(data: bytes) -> Model:
    """The model in a device file; every inconsistency is a ModelError saying what it is."""
    data = bytes(data)
    if len(data) < HEADER.size:
        raise ModelError(f"blob too short for a header: {len(data)} bytes, the header alone is {HEADER.size}")
    magic, version, flags, total_size, n_sections, table_offset, stored_crc, reserved = HEADER.unpack_from(data)
    if magic != BLOB_MAGIC:
        raise ModelError(f"bad magic {magic!r}, expected {BLOB_MAGIC!r}: not an edgelearn model blob")
    if version not in BLOB_VERSIONS:
        raise ModelError(f"unsupported blob format version {version} (this loader supports versions "
                         f"{', '.join(map(str, BLOB_VERSIONS))})")
    if total_size != len(data):
        state = "truncated" if len(data) < total_size else "trailing bytes"
        raise ModelError(f"{state}: header says the blob is {total_size} bytes, got {len(data)}")
    computed_crc = blob_crc(data)
    if stored_crc != computed_crc:
        raise ModelError(f"CRC mismatch: stored 0x{stored_crc:08x}, computed 0x{computed_crc:08x}; "
                         "the file is corrupted")
    if flags or any(reserved):
        raise ModelError(f"header flags 0x{flags:04x} and reserved bytes {reserved.hex()} must be zero "
                         f"in version {version}")
    sections = _section_table(data, n_sections, table_offset, version)
    input_spec, learning, name, n_layers = _parse_model_section(_section(sections, SECTION_MODEL, 0))
    expected = ({(SECTION_MODEL, 0)} | {(kind, 0) for kind in MODEL_SECTIONS}
                | {(kind, i) for kind in LAYER_SECTIONS + WINDOW_SECTIONS + FILTER_SECTIONS for i in range(n_layers)})
    unexpected = sorted(sections.keys() - expected)
    if unexpected:
        kind, index = unexpected[0]
        if kind in MODEL_SECTIONS:
            raise ModelError(f"{SECTION_NAMES[kind]} section {index}: a model has at most one, index 0")
        raise ModelError(f"{SECTION_NAMES[kind]} section {index} does not belong to a model of {n_layers} layer(s)")
    records = [_parse_layer_section(_section(sections, SECTION_LAYER, i), i, n_layers) for i in range(n_layers)]
    windows = [_parse_window_section(sections, record, i) for i, record in enumerate(records)]
    filters = [_parse_filter_section(sections, record, i) for i, record in enumerate(records)]
    names = [r.name for r in records]
    shapes = [input_spec.shape if r.edges.size == 0 or r.edges["source"][0] == INPUT_SOURCE
              else records[r.edges["source"][0]].shape for r in records]      # a window layer's one source
    layers, params = [], {}
    for i, record in enumerate(records):
        layer, layer_params = _build_layer(record, names, sections, i, windows[i], filters[i], shapes[i])
        layers.append(layer)
        params[layer.name] = layer_params
    # By index, as the edges are stored (names are checked by validate, after this)
    sizes = [math.prod(record.shape) for record in records]
    for i, record in enumerate(records):
        fan_in = sum(input_spec.size if source == INPUT_SOURCE else sizes[source]
                     for source in record.edges["source"].tolist())
        if fan_in != record.fan_in:
            raise ModelError(f"LAYER section {i} ({record.name!r}): fan_in field is {record.fan_in} "
                             f"but its inputs total {fan_in}")
    cutoff = _parse_cutoff_section(sections[SECTION_CUTOFF, 0], learning.T) if (SECTION_CUTOFF, 0) in sections else None
    schedule = _parse_schedule_section(sections[SECTION_SCHEDULE, 0]) if (SECTION_SCHEDULE, 0) in sections else None
    return Model(name, input_spec, tuple(layers), learning, params, cutoff, schedule).validate()


def check_blob(data: bytes) -> Model:
    """The model of a device file that a runtime can run; a ModelError saying why not.

    This is the loaders' one verdict: the C loader (``el_init``, targets/c/el_blob.c)
    accepts exactly the blobs this accepts (tests/test_blob_agreement.py). It is
    ``from_blob`` (the format, then ``Model.validate``) followed by the model check of the
    rule's runtime (``edgelearn.rules.check``): STOP's for rules stop, readout and none (a
    feed-forward chain), SPIDE's for spide (docs/spide.md §2).

    Not part of loading (docs/model-format.md, "What a loader checks"): whether a SPIDE
    feedback loop contracts, a property of the current weights that FixedSPIDE and
    NativeSPIDE check when they are built, and the C runtime's resources (an arena of
    more than 4 GiB, or smaller than el_arena_required).
    """
    return rules.check(from_blob(data))


def _section_table(data: bytes, n_sections: int, table_offset: int, version: int) -> dict[tuple[int, int], memoryview]:
    table_end = table_offset + n_sections * SECTION_ENTRY.size
    if table_offset < HEADER.size or table_offset % 4 or table_end > len(data):
        raise ModelError(f"section table ({n_sections} entries at offset {table_offset}) is out of bounds "
                         f"of the {len(data)}-byte blob or not 4-byte aligned")
    sections = {}
    previous, previous_end = None, table_end
    for i in range(n_sections):
        kind, index, offset, size = SECTION_ENTRY.unpack_from(data, table_offset + i * SECTION_ENTRY.size)
        if kind not in SECTION_NAMES:
            raise ModelError(f"section table entry {i}: unknown section type {kind}")
        if SECTION_SINCE.get(kind, 1) > version:
            raise ModelError(f"section table entry {i}: a {SECTION_NAMES[kind]} section needs format version "
                             f"{SECTION_SINCE[kind]}, this blob is version {version}")
        what = f"{SECTION_NAMES[kind]} section {index}"
        if offset % 4:
            raise ModelError(f"{what}: offset {offset} is not 4-byte aligned")
        if offset < table_end or offset + size > len(data):
            raise ModelError(f"{what}: bytes {offset}..{offset + size} are out of bounds "
                             f"(sections lie in {table_end}..{len(data)})")
        if offset < previous_end:
            # Parameters are learned in place: overlapping sections would let learning
            # overwrite the model's structure. Table order makes the check linear.
            raise ModelError(f"{what}: bytes {offset}..{offset + size} overlap or precede the {previous} "
                             f"(ending at byte {previous_end}) listed before it; section payloads must "
                             "lie in table order without overlapping")
        if (kind, index) in sections:
            raise ModelError(f"duplicate {what}")
        sections[kind, index] = memoryview(data)[offset:offset + size]
        previous, previous_end = what, offset + size
    return sections


def _section(sections: dict, kind: int, index: int) -> memoryview:
    if (kind, index) not in sections:
        raise ModelError(f"missing {SECTION_NAMES[kind]} section {index}")
    return sections[kind, index]


def _check_size(buf: memoryview, expected: int, what: str, because: str) -> None:
    if len(buf) != expected:
        raise ModelError(f"{what} is {len(buf)} bytes, expected {expected} {because}")


def _decode(names: tuple[str, ...], code: int, what: str) -> str:
    if code >= len(names):
        known = ", ".join(f"{c}={n}" for c, n in enumerate(names))
        raise ModelError(f"unknown {what} code {code} (known: {known})")
    return names[code]


def _decode_name(buf: memoryview, what: str) -> str:
    try:
        return bytes(buf).decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelError(f"{what} is not UTF-8: {e.reason} at byte {e.start}") from None


def _parse_cutoff_section(buf: memoryview, T: int) -> Cutoff:
    _check_size(buf, CUTOFF_FIXED.size + 8 * T, "CUTOFF section", f"for T = {T} margins")
    ppm, reserved = CUTOFF_FIXED.unpack_from(buf)
    if reserved:
        raise ModelError(f"CUTOFF section: reserved field is {reserved}, must be 0")
    margins = np.frombuffer(buf, "<i8", T, CUTOFF_FIXED.size)
    return Cutoff(tuple(int(m) for m in margins), ppm / 1e6)


def _parse_schedule_section(buf: memoryview) -> Schedule:
    _check_size(buf, SCHEDULE_FIXED.size, "SCHEDULE section", "(every, steps, learned, reserved)")
    every, steps, learned, reserved = SCHEDULE_FIXED.unpack_from(buf)
    if reserved:
        raise ModelError(f"SCHEDULE section: reserved field is {reserved}, must be 0")
    return Schedule(every, steps, learned)


def _parse_model_section(buf: memoryview) -> tuple[InputSpec, Learning, str, int]:
    if len(buf) < MODEL_FIXED.size:
        raise ModelError(f"MODEL section is {len(buf)} bytes, shorter than its {MODEL_FIXED.size}-byte fixed part")
    (input_size, n_layers, encoding, rank, T, rule, update, lr_weight_shift, lr_threshold_shift, lr_leak_shift,
     surrogate_shift, seed, name_length, Tb) = MODEL_FIXED.unpack_from(buf)
    shape_end = MODEL_FIXED.size + 4 * rank
    _check_size(buf, shape_end + name_length + -name_length % 4, "MODEL section",
                f"for {rank} input dimension(s) and a {name_length}-byte name")
    input_spec = InputSpec(tuple(int(d) for d in np.frombuffer(buf, "<u4", rank, MODEL_FIXED.size)),
                           _decode(ENCODINGS, encoding, "input encoding"))
    if math.prod(input_spec.shape) != input_size:     # exact: numpy's product could wrap around
        raise ModelError(f"MODEL section: input size {input_size} != product of input shape {input_spec.shape}")
    if n_layers > MAX_LAYERS:
        raise ModelError(f"MODEL section: {n_layers} layers; the blob format allows at most {MAX_LAYERS}")
    learning = Learning(_decode(RULES, rule, "learning rule"), T, lr_weight_shift, lr_threshold_shift,
                        lr_leak_shift, surrogate_shift, _decode(UPDATE_MODES, update, "update mode"), seed, Tb)
    name = _decode_name(buf[shape_end:shape_end + name_length], "model name")
    return input_spec, learning, name, n_layers


class _LayerRecord(NamedTuple):
    """A LAYER section, decoded; edges still hold source indices (a source may come later)."""
    name: str
    kind: str
    neuron_kind: str | None        # None: a kind without neurons
    flags: int
    weight_frac: int
    shape: tuple[int, ...]
    fan_in: int
    edges: np.ndarray


def _parse_layer_section(buf: memoryview, i: int, n_layers: int) -> _LayerRecord:
    what = f"LAYER section {i}"
    if len(buf) < LAYER_FIXED.size:
        raise ModelError(f"{what} is {len(buf)} bytes, shorter than its {LAYER_FIXED.size}-byte fixed part")
    (kind, neuron_kind, flags, weight_frac, out_size, fan_in, n_edges, rank, reserved8, name_length,
     reserved16) = LAYER_FIXED.unpack_from(buf)
    edges_start = LAYER_FIXED.size + 4 * rank
    name_start = edges_start + _EDGE.itemsize * n_edges
    _check_size(buf, name_start + name_length + -name_length % 4, what,
                f"for rank {rank}, {n_edges} edge(s) and a {name_length}-byte name")
    if reserved8 or reserved16:
        raise ModelError(f"{what}: reserved fields are {reserved8} and {reserved16}, must be 0")
    if flags & ~FLAGS_KNOWN:
        raise ModelError(f"{what}: unknown flag bits in 0x{flags:02x}")
    shape = tuple(int(d) for d in np.frombuffer(buf, "<u4", rank, LAYER_FIXED.size))
    if not shape or 0 in shape or math.prod(shape) != out_size:
        raise ModelError(f"{what}: output size {out_size} and shape {shape} must be positive and agree")
    edges = np.frombuffer(buf, _EDGE, n_edges, edges_start)
    bad = edges["source"][(edges["source"] >= n_layers) & (edges["source"] != INPUT_SOURCE)]
    if bad.size:
        raise ModelError(f"{what}: edge source index {bad[0]} is neither 0x{INPUT_SOURCE:04X} (input) "
                         f"nor a layer index below {n_layers}")
    kind_name = _decode(tuple(LAYERS), kind, f"{what} layer kind")
    if not LAYERS[kind_name].has_neurons:
        if neuron_kind or flags:
            raise ModelError(f"{what}: a {kind_name!r} layer has no neurons: its neuron code and flags must be 0, "
                             f"got {neuron_kind} and 0x{flags:02x}")
        neuron_name = None
    else:
        neuron_name = _decode(tuple(NEURONS), neuron_kind, f"{what} neuron kind")
    return _LayerRecord(_decode_name(buf[name_start:name_start + name_length], f"{what} name"), kind_name,
                        neuron_name, flags, weight_frac, shape, fan_in, edges)


def _read_array(sections: dict, kind: int, i: int, dtype, shape: tuple[int, ...]) -> np.ndarray:
    buf = _section(sections, kind, i)
    itemsize = np.dtype(dtype).itemsize
    _check_size(buf, math.prod(shape) * itemsize, f"{SECTION_NAMES[kind]} section {i}",
                f"for shape {shape} of {itemsize}-byte integers")
    # astype copies: the model owns writable arrays in native byte order, not views of the file
    return np.frombuffer(buf, np.dtype(dtype).newbyteorder("<")).reshape(shape).astype(dtype)


def _parse_window_section(sections: dict, record: _LayerRecord, i: int) -> Window | None:
    """A window kind's WINDOW section (kernel, stride, padding), which no other kind has."""
    if not LAYERS[record.kind].windowed:
        if (SECTION_WINDOW, i) in sections:
            raise ModelError(f"WINDOW section {i}: a {record.kind!r} layer has no window")
        return None
    buf = _section(sections, SECTION_WINDOW, i)
    _check_size(buf, WINDOW_FIXED.size, f"WINDOW section {i}", "(kernel, stride, padding: u16 height, width each)")
    kh, kw, sh, sw, ph, pw = WINDOW_FIXED.unpack_from(buf)
    return Window((kh, kw), (sh, sw), (ph, pw))


def _parse_filter_section(sections: dict, record: _LayerRecord, i: int) -> tuple[int, int, np.ndarray] | None:
    """A history kind's FILTER section (taps K, dilation, the tap codes [n_out, K]), which no other
    kind has."""
    if not LAYERS[record.kind].history:
        if (SECTION_FILTER, i) in sections:
            raise ModelError(f"FILTER section {i}: a {record.kind!r} layer has no filter")
        return None
    buf = _section(sections, SECTION_FILTER, i)
    what = f"FILTER section {i}"
    if len(buf) < FILTER_FIXED.size:
        raise ModelError(f"{what} is {len(buf)} bytes, shorter than its {FILTER_FIXED.size}-byte fixed part")
    K, reserved, dilation = FILTER_FIXED.unpack_from(buf)
    if reserved:
        raise ModelError(f"{what}: reserved byte is {reserved}, must be 0")
    n = math.prod(record.shape)
    _check_size(buf, FILTER_FIXED.size + n * K, what, f"for {n} channels of {K} one-byte tap codes")
    codes = np.frombuffer(buf, np.int8, n * K, FILTER_FIXED.size).reshape(n, K).copy()
    if codes.size and np.abs(codes.astype(np.int16)).max() > MAX_TAP_SHIFT + 1:
        raise ModelError(f"{what}: tap codes within +-{MAX_TAP_SHIFT + 1} (taps down to 2^-{MAX_TAP_SHIFT})")
    return K, dilation, codes


def _build_layer(record: _LayerRecord, names: list[str], sections: dict, i: int, window: Window | None,
                 filtered: tuple[int, int, np.ndarray] | None,
                 source_shape: tuple[int, ...]) -> tuple[Layer, LayerParams]:
    out_size = math.prod(record.shape)
    kind = LAYERS[record.kind]
    where = f"LAYER section {i} ({record.name!r})"
    if kind.windowed and len(record.edges) != 1:
        raise ModelError(f"{where}: a {record.kind!r} layer reads exactly one source, it has {len(record.edges)}")
    g = window_geometry(where, window, source_shape, record.shape[0] if kind.has_neurons else None) if window else None
    neurons = out_size if kind.has_neurons else 0
    stored = np.int8 if record.flags & FLAG_WEIGHTS_INT8 else np.int16
    params = LayerParams(weight=_read_array(sections, SECTION_WEIGHTS, i, stored,
                                            kind.weight_shape(out_size, record.fan_in, g)).astype(np.int16),
                         threshold=_read_array(sections, SECTION_THRESHOLD, i, np.int32, (neurons,)),
                         leak=int(_read_array(sections, SECTION_LEAK, i, np.int32, (1,))[0]))
    taps_filter = None
    if filtered is not None:                       # the initial tap read back from the taps, as the neuron's
        K, dilation, params.taps = filtered
        taps_filter = Filter(K, dilation, float(tap_values(params.taps[0, 0])) if params.taps.size else 0.5)
    # The blob keeps only what the device runs; the Neuron's initial values are read back
    # from the parameters, which reproduces them exactly for a freshly initialised model.
    neuron = None if record.neuron_kind is None else Neuron(
        record.neuron_kind, threshold=float(nx.from_fixed(params.threshold[0], nx.STATE_FRAC)),
        leak=float(nx.from_fixed(params.leak, nx.STATE_FRAC)), learn_threshold=bool(record.flags & FLAG_LEARN_THRESHOLD),
        learn_leak=bool(record.flags & FLAG_LEARN_LEAK),
        reset="modified" if record.flags & FLAG_MODIFIED_RESET else "subtract")
    inputs = tuple(Edge(INPUT if source == INPUT_SOURCE else names[source], int(delay))
                   for source, delay in record.edges.tolist())
    return Layer(record.name, record.kind, inputs, record.shape, neuron, record.weight_frac, window,
                 8 if record.flags & FLAG_WEIGHTS_INT8 else 16, taps_filter), params

"""The Python and the C loader give one verdict on every blob.

The Python verdict is ``modelblob.check_blob`` (``from_blob``, then the model check of the
rule's runtime); the C verdict is ``el_init`` returning EL_OK (``native.init_status``).
Valid blobs of several models are mutated (truncated, bit-flipped, their section table,
MODEL and LAYER fields and parameters edited with the CRC recomputed, so that the edit
reaches past the CRC check) and both loaders must agree on every mutant. Then one test
for each disagreement that was found, and the 500-layer load time.

The helpers below read and write the layout of docs/model-format.md on their own, without
``edgelearn.modelblob``, so that a bug shared by the module's reader and writer shows."""
import math
import struct
import time

import numpy as np
import pytest
from blob_bytes import LAYER, LEAK, MODEL, THRESHOLD, WEIGHTS, entries, poke, resealed, section
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edgelearn import native, resources
from edgelearn.model import (INPUT, MAX_LAYER_SIZE, Edge, InputSpec, Layer, LayerParams, Learning, Model,
                             ModelError, Neuron, init_params, mlp)
from edgelearn.modelblob import check_blob, from_blob, to_blob
from edgelearn.modelfile import load_model

ONE = 1 << 16


# -- the two verdicts ---------------------------------------------------------------------------
def python_verdict(blob: bytes) -> tuple[bool, str]:
    """(accepted, why not); any exception but a ModelError is a bug and propagates."""
    try:
        check_blob(blob)
    except ModelError as e:
        return False, str(e)
    return True, "accepted"


def c_status(blob: bytes) -> str:
    return native.STATUS_NAMES[native.init_status(blob)]


def assert_agree(blob: bytes, what: str = "") -> bool:
    accepted, why = python_verdict(blob)
    status = c_status(blob)
    assert accepted == (status == "EL_OK"), f"{what}: Python: {why}; C: {status}"
    return accepted


def assert_both_refuse(blob: bytes, c_code: str, python_fragment: str) -> None:
    accepted, why = python_verdict(blob)
    assert not accepted and python_fragment in why, why
    assert c_status(blob) == c_code


# -- the layout, independently of edgelearn.modelblob ------------------------------------------
def layer_edges_at(blob: bytes, index: int) -> int:
    """Offset of the first edge of LAYER section ``index``."""
    at = section(blob, LAYER, index)[1]
    return at + 20 + 4 * blob[at + 14]


def layer_name_at(blob: bytes, index: int) -> tuple[int, int]:
    """(offset, length) of the name in LAYER section ``index``."""
    at = section(blob, LAYER, index)[1]
    return at + 20 + 4 * blob[at + 14] + 4 * struct.unpack_from("<H", blob, at + 12)[0], \
        struct.unpack_from("<H", blob, at + 16)[0]


def pad4(b: bytes) -> bytes:
    return b + bytes(-len(b) % 4)


def assemble(sections: list[tuple[int, int, bytes]]) -> bytes:
    """Header, table and the payloads in table order, each padded to 4 bytes."""
    offset = 32 + 12 * len(sections)
    table, body = b"", b""
    for kind, index, payload in sections:
        table += struct.pack("<HHII", kind, index, offset, len(payload))
        body += pad4(payload)
        offset += len(pad4(payload))
    header = struct.pack("<4sHHIIII8s", b"ELRN", 1, 0, offset, len(sections), 32, 0, bytes(8))
    return resealed(header + table + body)


def model_payload(input_shape, layer_count, *, name=b"m", encoding=0, T=8, rule=0, update=0, shifts=(6, 8, 12),
                  surrogate=1, seed=1, Tb=0, input_size=None) -> bytes:
    size = math.prod(input_shape) if input_size is None else input_size
    return (struct.pack("<IHBBHBBBBBbIHH", size, layer_count, encoding, len(input_shape), T, rule, update, *shifts,
                        surrogate, seed, len(name), Tb)
            + struct.pack(f"<{len(input_shape)}I", *input_shape) + pad4(name))


def layer_payload(neuron, shape, fan_in, edges, *, name=b"l", flags=3, weight_frac=12) -> bytes:
    return (struct.pack("<BBBBIIHBBHH", 0, neuron, flags, weight_frac, math.prod(shape), fan_in, len(edges),
                        len(shape), 0, len(name), 0)
            + struct.pack(f"<{len(shape)}I", *shape) + b"".join(struct.pack("<HH", *e) for e in edges)
            + pad4(name))


def raw_blob(model_fields: dict, layers: list[dict]) -> bytes:
    """A blob written field by field, nothing validated. Each layer: neuron code, shape,
    edges [(source, delay)], optional fan_in (default: the sources' sizes), name, flags,
    threshold and leak (Q16; every weight is 256)."""
    input_shape = model_fields["input_shape"]
    sizes = [math.prod(layer["shape"]) for layer in layers]
    sections = [(MODEL, 0, model_payload(layer_count=len(layers), **model_fields))]
    params = []
    for i, layer in enumerate(layers):
        fan_in = layer.get("fan_in", sum(math.prod(input_shape) if s == 0xFFFF else sizes[s]
                                         for s, _ in layer["edges"]))
        sections.append((LAYER, i, layer_payload(layer["neuron"], layer["shape"], fan_in, layer["edges"],
                                                 name=layer.get("name", f"l{i}".encode()),
                                                 flags=layer.get("flags", 0))))
        params += [(WEIGHTS, i, np.full(sizes[i] * fan_in, 1 << 8, "<i2").tobytes()),
                   (THRESHOLD, i, np.full(sizes[i], layer.get("threshold", ONE), "<i4").tobytes()),
                   (LEAK, i, struct.pack("<i", layer.get("leak", ONE)))]
    return assemble(sections + params)


LIF, IF, LI = 0, 1, 2
SPIDE_FIELDS = dict(rule=3, T=8, Tb=16, update=1, shifts=(6, 0, 0), surrogate=0)
MODIFIED = 4


# -- the models ---------------------------------------------------------------------------------
SPIDE_HIDDEN = Neuron("if", threshold=1.0, leak=1.0, learn_threshold=False, learn_leak=False, reset="modified")
SPIDE_READOUT = Neuron("li", threshold=1.0, leak=0.0, learn_threshold=False, learn_leak=False)
SPIDE_LEARNING = Learning(rule="spide", T=8, Tb=16, lr_threshold_shift=0, lr_leak_shift=0, surrogate_shift=0,
                          update="sample", seed=5)


def stop_lif() -> Model:
    return init_params(mlp("stop-lif", [6, 5, 3]))


def stop_if_li() -> Model:
    """IF hidden layer, 'li' readout, rule readout, a name with 2-, 3- and 4-byte UTF-8."""
    return init_params(mlp("stop-if-li-é€𝄞", [5, 4, 3], hidden=Neuron("if"), readout=Neuron("li"),
                           learning=Learning(rule="readout", T=4, update="sample", seed=3)))


def stop_2d_if() -> Model:
    layers = (Layer("hidden-ü", "dense", (Edge(INPUT),), (2, 2),
                    Neuron("lif", threshold=0.5, leak=0.75, learn_leak=False), weight_frac=10),
              Layer("outer", "dense", (Edge("hidden-ü"),), (3,), Neuron("if")))
    return init_params(Model("stop-2d", InputSpec((2, 3), "rate"), layers, Learning(rule="none", T=3, seed=9)))


def spide_feedforward() -> Model:
    return init_params(mlp("spide-ff", [6, 5, 3], hidden=SPIDE_HIDDEN, readout=SPIDE_READOUT,
                           learning=SPIDE_LEARNING))


def spide_feedback() -> Model:
    """Two spiking layers, one LIF, with feedback into both (delay 1) and a readout of both."""
    layers = (Layer("h1", "dense", (Edge(INPUT), Edge("h2", 1)), (4,), SPIDE_HIDDEN),
              Layer("h2", "dense", (Edge("h1"), Edge("h2", 1)), (3,),
                    Neuron("lif", threshold=0.5, leak=0.75, learn_threshold=False, learn_leak=False)),
              Layer("out", "dense", (Edge("h1"), Edge("h2")), (2,), SPIDE_READOUT))
    return init_params(Model("spide-feedback", InputSpec((5,), "events"), layers, SPIDE_LEARNING))


SMALL = {f.__name__: to_blob(f()) for f in (stop_lif, stop_if_li, stop_2d_if, spide_feedforward, spide_feedback)}
ZOO = {path.stem: to_blob(load_model(path)) for path in sorted(resources.MODELS.glob("*.json"))}
BLOBS = {**SMALL, **ZOO}


def test_every_base_blob_is_accepted_by_both():
    assert len(ZOO) >= 4 and {from_blob(b).learning.rule for b in BLOBS.values()} >= {"stop", "readout", "none",
                                                                                        "spide"}
    for name, blob in BLOBS.items():
        assert assert_agree(blob, name), name


# -- mutations ----------------------------------------------------------------------------------
U8 = [0, 1, 2, 3, 4, 7, 8, 15, 16, 0x7F, 0x80, 0xA0, 0xBF, 0xC0, 0xC2, 0xE0, 0xED, 0xF0, 0xF4, 0xF5, 0xFF]
U16 = [0, 1, 2, 3, 4, 5, 8, 16, 32, 64, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF]
U32 = [0, 1, 2, 4, 12, 32, 1 << 15, 3 << 14, 65535, ONE, ONE + 1, 1 << 20, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]
WIDTH = {1: ("<B", U8), 2: ("<H", U16), 4: ("<I", U32)}


def value_of(draw, width: int) -> int:
    fmt, interesting = WIDTH[width]
    return draw(st.sampled_from(interesting) | st.integers(0, (1 << 8 * width) - 1))


def write(blob: bytearray, offset: int, width: int, value: int) -> None:
    struct.pack_into(WIDTH[width][0], blob, offset, value)


def edit_table(draw, blob: bytearray) -> str:
    table = entries(bytes(blob))
    if not table:                            # an earlier edit wrote over the header
        return "no table entry to edit"
    k = draw(st.integers(0, len(table) - 1))
    position = table[k][0]
    field, at, width = draw(st.sampled_from([("type", 0, 2), ("index", 2, 2), ("offset", 4, 4), ("size", 8, 4)]))
    current = struct.unpack_from(WIDTH[width][0], blob, position + at)[0]
    how = draw(st.sampled_from(["value", "delta", "copy"]))
    if how == "value":
        value = value_of(draw, width)
    elif how == "delta":
        value = (current + draw(st.sampled_from([-12, -8, -4, -2, -1, 1, 2, 4, 8, 12]))) % (1 << 8 * width)
    else:
        j = draw(st.integers(0, len(table) - 1))
        value = struct.unpack_from(WIDTH[width][0], blob, table[j][0] + at)[0]
    write(blob, position + at, width, value)
    return f"table entry {k} {field} {current} -> {value}"


def swap_entries(draw, blob: bytearray) -> str:
    table = entries(bytes(blob))
    if not table:
        return "no table entry to swap"
    k, j = draw(st.integers(0, len(table) - 1)), draw(st.integers(0, len(table) - 1))
    a, b = table[k][0], table[j][0]
    blob[a:a + 12], blob[b:b + 12] = bytes(blob[b:b + 12]), bytes(blob[a:a + 12])
    return f"table entries {k} and {j} swapped"


def overlap(draw, blob: bytearray) -> str:
    """Point one section into another (aligned, inside the file)."""
    table = entries(bytes(blob))
    if not table:
        return "no table entry to move"
    k, j = draw(st.integers(0, len(table) - 1)), draw(st.integers(0, len(table) - 1))
    target, size = table[j][3], table[j][4]
    offset = (target + 4 * draw(st.integers(0, min(size, len(blob)) // 4))) & 0xFFFFFFFF
    struct.pack_into("<I", blob, table[k][0] + 4, offset)
    if draw(st.booleans()):                  # keep it inside the file
        struct.pack_into("<I", blob, table[k][0] + 8, max(0, min(table[k][4], len(blob) - offset)))
    return f"section {table[k][1:3]} moved to {offset}, into section {table[j][1:3]}"


def edit_section(draw, blob: bytearray, kinds: tuple[int, ...]) -> str:
    """One field of a section of the given kinds: 1, 2 or 4 bytes at an aligned offset."""
    table = [e for e in entries(bytes(blob)) if e[1] in kinds and e[4] > 0 and e[3] + e[4] <= len(blob)]
    if not table:                            # an earlier edit moved them all out of the file
        return "no section to edit"
    _, kind, index, offset, size = draw(st.sampled_from(table))
    width = draw(st.sampled_from([w for w in (1, 2, 4) if w <= size]))
    at = width * draw(st.integers(0, size // width - 1))
    value = value_of(draw, width)
    write(blob, offset + at, width, value)
    return f"section {kind} {index} byte {at}: {width}-byte {value}"


def edit_header(draw, blob: bytearray) -> str:
    at, width = draw(st.sampled_from([(6, 2), (12, 4), (16, 4), (24, 1), (28, 4)]))
    value = value_of(draw, width)
    write(blob, at, width, value)
    return f"header byte {at}: {value}"


def rename(draw, blob: bytearray) -> str:
    """A layer takes another's name, or the input's, when the lengths allow."""
    count = struct.unpack_from("<H", blob, section(bytes(blob), MODEL)[1] + 4)[0]
    k = draw(st.integers(0, count - 1))
    at, n = layer_name_at(bytes(blob), k)
    others = [layer_name_at(bytes(blob), j) for j in range(count) if j != k]
    names = [bytes(blob[a:a + m]) for a, m in others if m == n] + ([b"input"] if n == 5 else [])
    if not names:
        return "no name of the same length"
    name = draw(st.sampled_from(names))
    blob[at:at + n] = name
    return f"layer {k} renamed {name!r}"


RESEALED_EDITS = {
    "rename": rename,
    "table": edit_table,
    "swap": swap_entries,
    "overlap": overlap,
    "model or layer field": lambda draw, blob: edit_section(draw, blob, (MODEL, LAYER)),
    "parameter": lambda draw, blob: edit_section(draw, blob, (WEIGHTS, THRESHOLD, LEAK)),
    "header": edit_header,
}


@st.composite
def mutants(draw, names: list[str]):
    name = draw(st.sampled_from(names))
    blob = bytearray(BLOBS[name])
    kind = draw(st.sampled_from(["truncate", "truncate, size fixed", "bit flip", "bit flip, resealed",
                                 *RESEALED_EDITS, "several fields"]))
    if kind.startswith("truncate"):
        n = draw(st.integers(0, len(blob) - 1))
        blob = blob[:n]
        what = f"truncated to {n}"
        if kind == "truncate, size fixed" and n >= 32:
            struct.pack_into("<I", blob, 8, n)
            blob = bytearray(resealed(bytes(blob)))
        return kind, f"{name}: {what}", bytes(blob)
    if kind.startswith("bit flip"):
        resealing = kind.endswith("resealed")
        bit = draw(st.integers(0, 8 * len(blob) - 1).filter(lambda b: not resealing or not 160 <= b < 192))
        blob[bit // 8] ^= 1 << bit % 8
        return kind, f"{name}: bit {bit} flipped", resealed(bytes(blob)) if resealing else bytes(blob)
    if kind == "several fields":
        edits = draw(st.lists(st.sampled_from(["table", "swap", "overlap", "model or layer field", "parameter"]),
                              min_size=2, max_size=4))
        what = "; ".join(RESEALED_EDITS[e](draw, blob) for e in edits)
    else:
        what = RESEALED_EDITS[kind](draw, blob)
    return kind, f"{name}: {what}", resealed(bytes(blob))


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutants(sorted(SMALL)))
def test_both_loaders_agree_on_mutated_small_blobs(mutant):
    kind, what, blob = mutant
    accepted = assert_agree(blob, what)
    event(f"{kind}: {'accepted' if accepted else 'refused'}")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutants(sorted(ZOO)))
def test_both_loaders_agree_on_mutated_zoo_blobs(mutant):
    kind, what, blob = mutant
    accepted = assert_agree(blob, what)
    event(f"{kind}: {'accepted' if accepted else 'refused'}")


NAMES = [b"a", b"b", b"input", b"", "é".encode(), b"\xc3", b"\xed\xa0\x80"]


@st.composite
def raw_structures(draw):
    """A blob of a random small structure, written field by field: a valid STOP chain or
    SPIDE network (extra same-step and feedback edges), then a few random changes to
    neuron codes, edges (sources, delays, none at all), flags, thresholds, leaks, names,
    rule, T and Tb."""
    n = draw(st.integers(1, 4))
    spide = draw(st.booleans())
    layers = []
    for i in range(n):
        readout = i == n - 1
        edges = [(0xFFFF if i == 0 else i - 1, 0)]
        if spide and not readout:
            edges += draw(st.lists(st.tuples(st.integers(0, n - 2), st.just(1)) | st.tuples(st.integers(0, n - 1),
                                                                                             st.just(0)), max_size=2))
            edges = [(s, d) for s, d in edges if s == 0xFFFF or d == 1 or s < i]
        layers.append(dict(neuron=LI if spide and readout else draw(st.sampled_from([LIF, IF])),
                           shape=(draw(st.integers(1, 3)),), edges=edges,
                           flags=MODIFIED if spide and not readout else draw(st.sampled_from([0, 1, 2, 3])),
                           threshold=draw(st.sampled_from([ONE, 1 << 15, 1 << 18])), name=f"l{i}".encode()))
    for layer in layers:
        if layer["neuron"] == IF:
            layer["leak"] = ONE
        else:
            layer["leak"] = draw(st.sampled_from([0, ONE // 2, ONE]))
    fields = dict(input_shape=(draw(st.integers(1, 3)),), rule=3 if spide else draw(st.sampled_from([0, 1, 2])),
                  T=8, Tb=16 if spide else 0, update=draw(st.sampled_from([0, 1])), name=b"m")
    changes = []
    for _ in range(draw(st.integers(0, 2))):
        layer = layers[draw(st.integers(0, n - 1))]
        key = draw(st.sampled_from(["neuron", "edge", "no edges", "flags", "threshold", "leak", "name", "rule", "T",
                                    "Tb", "model name"]))
        if key == "neuron":
            layer["neuron"] = draw(st.sampled_from([LIF, IF, LI]))
        elif key == "edge":
            layer["edges"] = layer["edges"] + [(draw(st.sampled_from([0xFFFF, *range(n)])),
                                                draw(st.sampled_from([0, 1, 2])))]
        elif key == "no edges":
            layer["edges"] = []
        elif key == "flags":
            layer["flags"] = draw(st.integers(0, 7))
        elif key == "threshold":
            layer["threshold"] = draw(st.sampled_from([0, -ONE, 3 << 14, 1 << 30]))
        elif key == "leak":
            layer["leak"] = draw(st.sampled_from([-1, 0, ONE - 1, ONE, ONE + 1]))
        elif key == "name":
            layer["name"] = draw(st.sampled_from(NAMES + [layers[0]["name"]]))
        elif key == "model name":
            fields["name"] = draw(st.sampled_from(NAMES))
        else:
            fields[key] = draw(st.sampled_from({"rule": [0, 1, 2, 3], "T": [1, 2, 3, 16, 65535],
                                                "Tb": [0, 2, 4, 6, 64]}[key]))
        changes.append(key)
    event(f"changes: {', '.join(sorted(changes)) or 'none'}")
    return f"{fields} {layers}", raw_blob(fields, layers)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_structures())
def test_both_loaders_agree_on_random_structures(structure):
    what, blob = structure
    event("accepted" if assert_agree(blob, what) else "refused")


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_truncation_is_refused_by_both(name):
    """At every length, as cut (file_size then disagrees) and with file_size and the CRC
    made to fit the cut, so the sections' bounds are what refuses it."""
    blob = SMALL[name]
    for n in range(len(blob)):
        assert not assert_agree(blob[:n], f"{name}[:{n}]")
        if n >= 32:
            assert not assert_agree(poke(blob[:n], 8, "<I", n), f"{name}[:{n}] with file_size {n}")


def test_many_mutants_reach_past_the_crc_and_some_are_accepted():
    """The resealed edits are the point: check that they get past the CRC and the table
    (else the property tests above would only compare CRC refusals)."""
    blob = SMALL["stop_lif"]
    outcomes = {}
    model_at = section(blob, MODEL)[1]
    for T in range(0, 40):
        bad = poke(blob, model_at + 8, "<H", T)
        outcomes[T] = assert_agree(bad, f"T={T}")
    assert outcomes[0] is False and all(outcomes[T] for T in range(1, 40))
    spide = SMALL["spide_feedforward"]
    model_at = section(spide, MODEL)[1]
    verdicts = [assert_agree(poke(spide, model_at + 22, "<H", Tb), f"Tb={Tb}") for Tb in range(0, 70)]
    assert [Tb for Tb, ok in enumerate(verdicts) if ok] == [4, 8, 16, 32, 64]


# -- (a) overlapping sections -------------------------------------------------------------------
def test_overlapping_sections_are_refused_by_both():
    """Parameters are learned in place: a WEIGHTS section over the MODEL or LAYER section
    would let learning rewrite the model's structure. Both loaders used to accept this."""
    blob = SMALL["stop_lif"]
    w0, w0_at, _ = section(blob, WEIGHTS, 0)
    _, model_at, _ = section(blob, MODEL)
    _, layer0_at, _ = section(blob, LAYER, 0)
    _, th0_at, _ = section(blob, THRESHOLD, 0)
    cases = {
        "WEIGHTS 0 over MODEL": poke(blob, w0 + 4, "<I", model_at),
        "WEIGHTS 0 over LAYER 0": poke(blob, w0 + 4, "<I", layer0_at),
        "WEIGHTS 0 into THRESHOLD 0": poke(blob, w0 + 4, "<I", th0_at - 4),
        "THRESHOLD 0 inside WEIGHTS 0": poke(blob, section(blob, THRESHOLD, 0)[0] + 4, "<I", w0_at + 4),
    }
    for what, bad in cases.items():
        accepted, why = python_verdict(bad)
        assert not accepted and "overlap" in why, (what, why)
        assert c_status(bad) == "EL_ERR_SECTION_OVERLAP", what


def test_sections_in_any_type_order_are_accepted_when_laid_out_in_table_order():
    """The rule is about the payloads' order in the table, not the order of the types."""
    blob = SMALL["spide_feedback"]
    sections = [(t, i, blob[offset:offset + size]) for _, t, i, offset, size in entries(blob)]
    reordered = assemble(sections[::-1])
    assert assert_agree(reordered, "reversed table")
    assert to_blob(from_blob(reordered)) == blob
    # the same table, the payloads not moved: the entries now list them out of order
    swapped = bytearray(blob)
    a, b = entries(blob)[1][0], entries(blob)[2][0]
    swapped[a:a + 12], swapped[b:b + 12] = blob[b:b + 12], blob[a:a + 12]
    assert_both_refuse(resealed(bytes(swapped)), "EL_ERR_SECTION_OVERLAP", "table order")


# -- (b) a SPIDE layer reading the input one step late ----------------------------------------------
def test_an_input_edge_with_a_delay_is_refused_by_both():
    for name in ("spide_feedforward", "spide_feedback"):
        blob = SMALL[name]
        bad = poke(blob, layer_edges_at(blob, 0) + 2, "<H", 1)
        assert_both_refuse(bad, "EL_ERR_EDGE", "feedback source 'input' is not a layer")
    blob = SMALL["stop_lif"]                          # STOP's chain check refused it before
    assert_both_refuse(poke(blob, layer_edges_at(blob, 0) + 2, "<H", 1), "EL_ERR_EDGE", "'input'")


def test_same_step_edges_must_come_from_earlier_layers_whatever_the_rule():
    blob = SMALL["spide_feedback"]
    # h2 reads h1 at delay 0 (fine) and itself at delay 1; make the self edge same-step
    assert_both_refuse(poke(blob, layer_edges_at(blob, 1) + 4 + 2, "<H", 0), "EL_ERR_EDGE", "same-step edge")
    # h1's feedback from h2 at delay 0: a later layer
    assert_both_refuse(poke(blob, layer_edges_at(blob, 0) + 4 + 2, "<H", 0), "EL_ERR_EDGE", "later layer")


# -- (c) an 'if' neuron that leaks ---------------------------------------------------------------
@pytest.mark.parametrize("name,layer", [("stop_if_li", 0), ("stop_2d_if", 1), ("spide_feedforward", 0),
                                        ("spide_feedback", 0)])
@pytest.mark.parametrize("leak", [0, ONE // 2, ONE - 1])
def test_an_if_neuron_with_a_leak_below_one_is_refused_by_both(name, layer, leak):
    blob = SMALL[name]
    assert_both_refuse(poke(blob, section(blob, LEAK, layer)[1], "<i", leak), "EL_ERR_VALUE", "does not leak")


def test_a_lif_neuron_may_leak():
    blob = SMALL["stop_lif"]
    for leak in (0, ONE // 2, ONE):
        assert assert_agree(poke(blob, section(blob, LEAK, 0)[1], "<i", leak), f"leak {leak}")


# -- names ------------------------------------------------------------------------------------------
INVALID_UTF8 = [b"\x80", b"\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xe0\x9f\xbf", b"\xed\xa0\x80",
                b"\xed\xbf\xbf", b"\xf0\x80\x80\x80", b"\xf0\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",
                b"\xf8\x88\x80\x80", b"\xff", b"\xe2\x82", b"\xf0\x9d\x84", b"\xc3", b"\xc3\x28", b"\xe2\x28\xa1"]
VALID_UTF8 = [b"a", b"\x00", b"\x7f", "é".encode(), "€".encode(), "𝄞".encode(), "\ud7ff".encode(),
              "\ue000".encode(), "\U0010ffff".encode(), "\u0800".encode(), "\U00010000".encode()]


@pytest.mark.parametrize("name", INVALID_UTF8 + VALID_UTF8, ids=lambda b: b.hex())
def test_names_must_be_utf8_in_both_loaders(name):
    padded = b"a" * (4 - len(name)) + name          # every name here is 4 bytes
    fields = dict(input_shape=(3,), name=b"mmmm")
    layers = [dict(neuron=LIF, shape=(2,), edges=[(0xFFFF, 0)], name=b"xxxx")]
    valid = name in VALID_UTF8
    assert assert_agree(raw_blob(fields, layers), "plain") is True
    assert assert_agree(raw_blob({**fields, "name": padded}, layers), f"model name {padded!r}") is valid
    layers[0]["name"] = padded
    assert assert_agree(raw_blob(fields, layers), f"layer name {padded!r}") is valid
    if not valid:
        assert c_status(raw_blob(fields, layers)) == "EL_ERR_NAME"


def test_layer_names_are_unique_and_not_input_in_both_loaders():
    fields = dict(input_shape=(3,))

    def chain(*names):
        return [dict(neuron=LIF, shape=(2,), edges=[(0xFFFF if i == 0 else i - 1, 0)], name=n)
                for i, n in enumerate(names)]

    assert assert_agree(raw_blob(fields, chain(b"inpu", b"Input", b"input2")))
    assert_both_refuse(raw_blob(fields, chain(b"a", b"input")), "EL_ERR_NAME", "reserved name")
    assert_both_refuse(raw_blob(fields, chain(b"a", b"b", b"a")), "EL_ERR_NAME", "duplicate name")
    assert_both_refuse(raw_blob(fields, chain(b"", b"")), "EL_ERR_NAME", "duplicate name")
    assert assert_agree(raw_blob(fields, chain(b"", b"a", "é".encode(), b"e\xcc\x81")))   # é twice, two spellings


# -- other rules both loaders now implement ------------------------------------------------------
def test_a_layer_without_inputs_is_refused_by_both():
    """SPIDE's C check used to accept it (no edge to check, fan-in 0, empty weights)."""
    layers = [dict(neuron=IF, shape=(2,), edges=[], flags=MODIFIED), dict(neuron=LI, shape=(2,), edges=[(0, 0)])]
    good = [dict(neuron=IF, shape=(2,), edges=[(0xFFFF, 0)], flags=MODIFIED), layers[1]]
    assert assert_agree(raw_blob(dict(input_shape=(3,), **SPIDE_FIELDS), good))
    assert_both_refuse(raw_blob(dict(input_shape=(3,), **SPIDE_FIELDS), layers), "EL_ERR_EDGE", "has no inputs")
    stop = [dict(neuron=LIF, shape=(2,), edges=[])]
    assert_both_refuse(raw_blob(dict(input_shape=(3,)), stop), "EL_ERR_EDGE", "has no inputs")


def test_the_widest_layer_is_the_same_in_both():
    fields = dict(input_shape=(1,))
    widest = [dict(neuron=LIF, shape=(MAX_LAYER_SIZE,), edges=[(0xFFFF, 0)])]
    assert assert_agree(raw_blob(fields, widest))
    wider = [dict(neuron=LIF, shape=(MAX_LAYER_SIZE + 1,), edges=[(0xFFFF, 0)])]
    assert_both_refuse(raw_blob(fields, wider), "EL_ERR_SHAPE", f"a layer has at most {MAX_LAYER_SIZE}")


def test_empty_shapes_are_refused_by_both():
    """Rank 0: the product of no dimensions is 1, which matches a size field of 1."""
    chain = [dict(neuron=LIF, shape=(2,), edges=[(0xFFFF, 0)])]
    assert_both_refuse(raw_blob(dict(input_shape=()), chain), "EL_ERR_SHAPE", "positive")
    scalar = [dict(neuron=LIF, shape=(), edges=[(0xFFFF, 0)])]
    assert_both_refuse(raw_blob(dict(input_shape=(3,)), scalar), "EL_ERR_SHAPE", "positive")


def test_an_input_shape_whose_product_wraps_around_is_refused_by_both():
    """(2^16)^4 = 2^64 is 0 in numpy's int64: Python once took it for an input of size 0."""
    fields = dict(input_shape=(1 << 16,) * 4, input_size=0)
    layers = [dict(neuron=LIF, shape=(2,), edges=[(0xFFFF, 0)], fan_in=0)]
    assert_both_refuse(raw_blob(fields, layers), "EL_ERR_SHAPE", "product of input shape")


def test_the_layer_count_limit_is_the_same_in_both():
    blob = SMALL["stop_lif"]
    assert_both_refuse(poke(blob, section(blob, MODEL)[1] + 4, "<H", 0xFFFF), "EL_ERR_VALUE", "at most 65534")


def test_spide_rules_are_checked_alike():
    fields = dict(input_shape=(3,), **SPIDE_FIELDS)

    def spide(**hidden):
        return [dict(neuron=IF, shape=(2,), edges=[(0xFFFF, 0)], flags=MODIFIED, **hidden),
                dict(neuron=LI, shape=(2,), edges=[(0, 0)], threshold=-5, leak=0)]

    assert assert_agree(raw_blob(fields, spide()))
    assert assert_agree(raw_blob(fields, spide(threshold=1 << 12)))
    assert not assert_agree(raw_blob(fields, spide(threshold=3 << 12)))
    assert not assert_agree(raw_blob({**fields, "T": 1}, spide()))
    assert not assert_agree(raw_blob({**fields, "Tb": 2}, spide()))
    assert not assert_agree(raw_blob({**fields, "rule": 0}, spide()))       # STOP: a modified reset, an li
    lif = [dict(neuron=LIF, shape=(2,), edges=[(0xFFFF, 0)], leak=ONE // 2), spide()[1]]
    assert assert_agree(raw_blob(fields, lif))


def test_a_loop_that_does_not_contract_loads_but_does_not_run():
    """The boundary of loading: the loop gain depends on the current weights, so both
    loaders accept the file and the runtime refuses to be built on it."""
    from edgelearn.rules.spide.fixed import FixedSPIDE

    model = spide_feedback()
    for layer in model.layers[:2]:            # every weight as large as int16 allows
        model.params[layer.name].weight[:] = np.iinfo(np.int16).max
    blob = to_blob(model)
    assert assert_agree(blob, "a loop gain far above 1")
    with pytest.raises(ModelError, match="not contractive"):
        FixedSPIDE(check_blob(blob))


# -- loading is linear in the number of layers -----------------------------------------------------
def test_a_500_layer_blob_loads_in_well_under_a_second():
    """Model.fan_in once rebuilt every layer's size for each layer: quadratic, about 2 s here."""
    layers = tuple(Layer(f"l{i}", "dense", (Edge(INPUT if i == 0 else f"l{i - 1}"),), (4,), Neuron("lif"))
                   for i in range(500))
    params = {layer.name: LayerParams(np.full((4, 4), 1 << 11, np.int16), np.full(4, ONE, np.int32), ONE // 2)
              for layer in layers}
    blob = to_blob(Model("deep", InputSpec((4,)), layers, Learning(), params))
    start = time.perf_counter()
    loaded = check_blob(blob)
    seconds = time.perf_counter() - start
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in layers]
    assert seconds < 1.0, f"loading 500 layers took {seconds:.2f} s"
    assert native.init_status(blob) == 0

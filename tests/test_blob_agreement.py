"""The Python and the C loader give one verdict on every blob: one test for each rule both now
implement (each was a disagreement once), and the 500-layer load time. The Python verdict is
``modelblob.check_blob`` (``from_blob``, then the model check of the rule's runtime); the C
verdict is ``el_init`` returning EL_OK (``native.init_status``). The mutation tests are in
tests/test_blob_mutations.py."""
import struct
import time

import numpy as np
import pytest
from blob_bytes import (
    LAYER,
    LEAK,
    MODEL,
    SCHEDULE,
    THRESHOLD,
    WEIGHTS,
    entries,
    poke,
    resealed,
    section,
)
from blob_verdicts import (
    BLOBS,
    IF,
    LI,
    LIF,
    MODIFIED,
    ONE,
    SMALL,
    SPIDE_FIELDS,
    ZOO,
    assemble,
    assert_agree,
    assert_both_refuse,
    c_status,
    layer_edges_at,
    python_verdict,
    raw_blob,
    schedule_payload,
    spide_feedback,
)

from edgelearn import native
from edgelearn.model import (
    INPUT,
    MAX_LAYER_SIZE,
    Edge,
    InputSpec,
    Layer,
    LayerParams,
    Learning,
    Model,
    ModelError,
    Neuron,
)
from edgelearn.modelblob import BLOB_VERSION, check_blob, from_blob, to_blob


def test_every_base_blob_is_accepted_by_both():
    assert len(ZOO) >= 4 and {from_blob(b).learning.rule for b in BLOBS.values()} >= {"stop", "readout", "none",
                                                                                        "spide"}
    for name, blob in BLOBS.items():
        assert assert_agree(blob, name), name


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


# -- the SCHEDULE section (type 7, format version 3; docs/numerics.md §6c) ---------------------------
def schedule_blob(**fields) -> bytes:
    """stop_lif with a schedule, written through modelblob (the valid one the edits start from)."""
    from blob_verdicts import stop_lif

    from edgelearn.model import Schedule

    model = stop_lif()
    model.schedule = Schedule(**{"every": 3, "steps": 2, "learned": 5, **fields})
    return to_blob(model.validate())


def schedule_at(blob: bytes) -> int:
    return section(blob, SCHEDULE)[1]


def test_a_schedule_is_read_by_both_at_its_limits():
    for fields in ({}, {"every": 1, "steps": 1, "learned": 0}, {"every": 0xFFFFFFFF, "steps": 40},
                   {"learned": 0xFFFFFFFF}, {"every": 1, "steps": 40, "learned": 0xFFFFFFFF}):
        blob = schedule_blob(**fields)
        assert struct.unpack_from("<H", blob, 4)[0] == 3, "a SCHEDULE section needs blob version 3"
        assert assert_agree(blob, str(fields)), fields
        assert from_blob(blob).schedule == from_blob(schedule_blob(**fields)).schedule
    plain = SMALL["stop_lif"]
    assert struct.unpack_from("<H", plain, 4)[0] == 1         # the writer still uses the oldest that fits
    assert from_blob(plain).schedule is None


@pytest.mark.parametrize("edit, c_code, fragment", [
    (lambda b: poke(b, 4, "<H", 2), "EL_ERR_SECTION_TYPE", "SCHEDULE section needs format version 3"),
    (lambda b: poke(b, 4, "<H", 1), "EL_ERR_SECTION_TYPE", "SCHEDULE section needs format version 3"),
    (lambda b: poke(b, 4, "<H", BLOB_VERSION + 1), "EL_ERR_VERSION",
     f"unsupported blob format version {BLOB_VERSION + 1}"),
    (lambda b: poke(b, schedule_at(b), "<I", 0), "EL_ERR_VALUE", "schedule: every is 0"),
    (lambda b: poke(b, schedule_at(b) + 4, "<I", 0), "EL_ERR_VALUE", "schedule: steps is 0"),
    (lambda b: poke(b, schedule_at(b) + 4, "<I", 41), "EL_ERR_VALUE", "schedule: steps is 41"),
    (lambda b: poke(b, schedule_at(b) + 4, "<I", 0xFFFFFFFF), "EL_ERR_VALUE", "schedule: steps is 4294967295"),
    (lambda b: poke(b, schedule_at(b) + 12, "<I", 1), "EL_ERR_RESERVED_FIELD", "reserved field is 1"),
    (lambda b: poke(b, schedule_at(b) + 12, "<I", 0x80000000), "EL_ERR_RESERVED_FIELD", "reserved field is"),
    (lambda b: poke(b, section(b, SCHEDULE)[0] + 2, "<H", 1), "EL_ERR_SECTION_INDEX", "at most one, index 0"),
    (lambda b: poke(b, section(b, SCHEDULE)[0] + 8, "<I", 12), "EL_ERR_SECTION_SIZE",
     "SCHEDULE section is 12 bytes, expected 16"),
    (lambda b: poke(b, section(b, SCHEDULE)[0] + 8, "<I", 0), "EL_ERR_SECTION_SIZE",
     "SCHEDULE section is 0 bytes, expected 16"),
])
def test_both_loaders_refuse_a_bad_schedule_section(edit, c_code, fragment):
    assert_both_refuse(edit(schedule_blob()), c_code, fragment)


def test_a_longer_schedule_section_and_two_of_them_are_refused_by_both():
    blob = schedule_blob()
    sections = [(t, i, blob[offset:offset + size]) for _, t, i, offset, size in entries(blob)]
    payload = next(p for t, _, p in sections if t == SCHEDULE)
    assert assert_agree(assemble(sections, version=3), "the same sections, written by hand")
    longer = [(t, i, p + bytes(4) if t == SCHEDULE else p) for t, i, p in sections]
    assert_both_refuse(assemble(longer, version=3), "EL_ERR_SECTION_SIZE", "SCHEDULE section is 20 bytes")
    assert_both_refuse(assemble(sections + [(SCHEDULE, 0, payload)], version=3), "EL_ERR_SECTION_DUPLICATE",
                       "duplicate SCHEDULE section 0")
    assert_both_refuse(assemble(sections + [(SCHEDULE, 1, payload)], version=3), "EL_ERR_SECTION_INDEX",
                       "SCHEDULE section 1: a model has at most one, index 0")
    # a SCHEDULE section in a version-2 blob, beside a CUTOFF section (which version 2 allows)
    cutoff = SMALL["stop_cutoff"]
    with_cutoff = [(t, i, cutoff[offset:offset + size]) for _, t, i, offset, size in entries(cutoff)]
    assert struct.unpack_from("<H", cutoff, 4)[0] == 2 and assert_agree(assemble(with_cutoff, version=2))
    assert_both_refuse(assemble(with_cutoff + [(SCHEDULE, 0, payload)], version=2), "EL_ERR_SECTION_TYPE",
                       "a SCHEDULE section needs format version 3, this blob is version 2")
    assert assert_agree(assemble(with_cutoff + [(SCHEDULE, 0, payload)], version=3), "cutoff and schedule")


def test_every_rule_may_carry_a_schedule_in_both_loaders():
    """The format does not tie a schedule to a rule: 'none' and 'readout' carry one too (rule
    'none' learns nothing, so its count never moves)."""
    for name in ("stop_if_li", "stop_2d_if", "spide_feedforward", "stop_schedule", "spide_schedule"):
        blob = SMALL[name]
        sections = [(t, i, blob[offset:offset + size]) for _, t, i, offset, size in entries(blob)
                    if t != SCHEDULE]
        scheduled = assemble(sections + [(SCHEDULE, 0, schedule_payload(7, 40, 0xFFFFFFFF))], version=3)
        assert assert_agree(scheduled, name), name

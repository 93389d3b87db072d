"""The Python and the C loader agree on every mutant of valid blobs: truncated, bit-flipped,
their section table, MODEL and LAYER fields and parameters edited with the CRC recomputed (so
that the edit reaches past the CRC check), and random structures written byte by byte."""
import struct

import pytest
from blob_bytes import (
    CUTOFF,
    FILTER,
    LAYER,
    LEAK,
    MODEL,
    SCHEDULE,
    WINDOW,
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
    ZOO,
    assert_agree,
    layer_name_at,
    raw_blob,
    schedule_payload,
)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

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
    at, width = draw(st.sampled_from([(4, 2), (6, 2), (12, 4), (16, 4), (24, 1), (28, 4)]))
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
    "cutoff": lambda draw, blob: edit_section(draw, blob, (CUTOFF,)),
    "schedule": lambda draw, blob: edit_section(draw, blob, (SCHEDULE,)),
    "window": lambda draw, blob: edit_section(draw, blob, (WINDOW,)),
    "filter": lambda draw, blob: edit_section(draw, blob, (FILTER,)),
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
        edits = draw(st.lists(st.sampled_from(["table", "swap", "overlap", "model or layer field", "parameter",
                                               "schedule", "window", "filter"]),
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
    extra, version = [], draw(st.sampled_from([1, 2, 3, 3]))
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):      # SCHEDULE sections, valid or not
        extra.append((SCHEDULE, draw(st.sampled_from([0, 0, 0, 1])),
                      schedule_payload(draw(st.sampled_from([0, 1, 3, 0xFFFFFFFF])), draw(st.sampled_from([0, 1, 40, 41])),
                                       draw(st.sampled_from([0, 5, 0xFFFFFFFF])), draw(st.sampled_from([0, 0, 0, 1])))
                      [:draw(st.sampled_from([16, 16, 16, 12]))]))
    event(f"version {version}, {len(extra)} SCHEDULE section(s)")
    return f"{fields} {layers} version {version} {extra}", raw_blob(fields, layers, extra, version)


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

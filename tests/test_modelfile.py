"""Model files: the JSON spec and the device blob round-trip, and every broken file is
refused with a message that says what is wrong."""
import json
import struct
import zlib

import numpy as np
import pytest
from blob_bytes import entries, poke, section
from hypothesis import given, settings
from hypothesis import strategies as st

from edgelearn import modelblob
from edgelearn.model import (INPUT, Edge, InputSpec, Layer, Learning, Model, ModelError, Neuron, init_params,
                             mlp)
from edgelearn.modelfile import (from_blob, load_blob, load_model, load_spec, model_from_spec_dict, save_blob,
                                 save_model, save_spec, spec_to_dict, to_blob)


def feedback_model() -> Model:
    """A 2-D hidden layer fed back from an 'li' readout one step late, non-default settings throughout."""
    layers = (
        Layer("hidden", "dense", (Edge(INPUT), Edge("readout", 1)), (4, 4),
              Neuron("lif", threshold=0.5, leak=0.75, learn_leak=False), weight_frac=10),
        Layer("readout", "dense", (Edge("hidden"),), (5,), Neuron("li", learn_threshold=False)),
    )
    learning = Learning(rule="readout", T=20, lr_weight_shift=9, surrogate_shift=-2, update="sample", seed=7)
    return init_params(Model("feedback", InputSpec((2, 3), "rate"), layers, learning))


MLP = init_params(mlp("t", [64, 32, 10]))
MLP_BLOB = to_blob(MLP)


def assert_same_model(a: Model, b: Model) -> None:
    assert (a.name, a.input, a.layers, a.learning) == (b.name, b.input, b.layers, b.learning)
    assert a.params.keys() == b.params.keys()
    for name, p in a.params.items():
        q = b.params[name]
        assert q.weight.dtype == p.weight.dtype and np.array_equal(q.weight, p.weight)
        assert q.threshold.dtype == p.threshold.dtype and np.array_equal(q.threshold, p.threshold)
        assert q.leak == p.leak


# -- byte-level helpers that follow docs/model-format.md, independently of the module ---------
def refused(data: bytes, *fragments: str) -> str:
    with pytest.raises(ModelError) as e:
        from_blob(data)
    for fragment in fragments:
        assert fragment in str(e.value)
    return str(e.value)


# -- the contract with the C runtime -----------------------------------------------------------
def test_codes_are_pinned():
    """These numbers are compiled into the C loader; they must never change meaning."""
    from edgelearn.ops import LAYERS, NEURONS
    assert {name: kind.code for name, kind in LAYERS.items()} == {"dense": 0, "conv2d": 1, "avgpool": 2, "maxpool": 3,
                                                                  "scan2d": 4, "psn": 5}
    assert {name: kind.code for name, kind in NEURONS.items()} == {"lif": 0, "if": 1, "li": 2, "threshold": 3}
    assert modelblob.ENCODING_CODES == {"direct": 0, "rate": 1, "events": 2, "sequence": 3}
    assert modelblob.RULE_CODES == {"stop": 0, "readout": 1, "none": 2, "spide": 3}
    assert modelblob.UPDATE_CODES == {"step": 0, "sample": 1}
    assert (modelblob.SECTION_MODEL, modelblob.SECTION_LAYER, modelblob.SECTION_WEIGHTS,
            modelblob.SECTION_THRESHOLD, modelblob.SECTION_LEAK, modelblob.SECTION_CUTOFF, modelblob.SECTION_SCHEDULE,
            modelblob.SECTION_WINDOW, modelblob.SECTION_FILTER) == (1, 2, 3, 4, 5, 6, 7, 8, 9)


def test_blob_layout_matches_the_documented_offsets():
    magic, version, flags, size, count, table, crc = struct.unpack_from("<4sHHIIII", MLP_BLOB)
    assert (magic, version, flags, size, count, table) == (b"ELRN", 1, 0, len(MLP_BLOB), 1 + 4 * 2, 32)
    assert MLP_BLOB[24:32] == bytes(8)
    assert crc == zlib.crc32(MLP_BLOB[:20] + bytes(4) + MLP_BLOB[24:])
    for _, _, offset, _ in [e[1:] for e in entries(MLP_BLOB)]:
        assert offset % 4 == 0
    _, offset, size = section(MLP_BLOB, modelblob.SECTION_MODEL, 0)
    input_size, n_layers, encoding, rank, T = struct.unpack_from("<IHBBH", MLP_BLOB, offset)
    seed, name_length = struct.unpack_from("<IH", MLP_BLOB, offset + 16)
    assert (input_size, n_layers, encoding, rank, T, seed, name_length) == (64, 2, 0, 1, 8, 1, 1)
    assert struct.unpack_from("<I", MLP_BLOB, offset + 24)[0] == 64 and MLP_BLOB[offset + 28] == ord("t")
    _, offset, size = section(MLP_BLOB, modelblob.SECTION_LAYER, 1)
    kind, neuron, flags, weight_frac, out, fan_in, n_edges, rank = struct.unpack_from("<BBBBIIHB", MLP_BLOB, offset)
    assert (kind, neuron, flags, weight_frac, out, fan_in, n_edges, rank) == (0, 0, 3, 12, 10, 32, 1, 1)
    assert struct.unpack_from("<IHH", MLP_BLOB, offset + 20) == (10, 0, 0)   # shape, edge from layer 0, delay 0
    _, offset, size = section(MLP_BLOB, modelblob.SECTION_WEIGHTS, 0)
    assert MLP_BLOB[offset:offset + size] == MLP.params["fc1"].weight.astype("<i2").tobytes()


# -- round trips -------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: MLP, feedback_model], ids=["mlp", "feedback"])
def test_blob_round_trip_keeps_structure_and_parameters(make, tmp_path):
    model = make()
    blob = to_blob(model)
    loaded = from_blob(blob)
    assert_same_model(loaded, model)
    assert to_blob(loaded) == blob
    loaded.params[model.layers[0].name].weight[0, 0] += 1      # the loaded arrays are the model's own
    save_blob(model, tmp_path / "m.elm")
    assert_same_model(load_blob(tmp_path / "m.elm"), model)


@pytest.mark.parametrize("make", [lambda: MLP, feedback_model], ids=["mlp", "feedback"])
def test_spec_round_trip_and_seeded_parameters(make, tmp_path):
    model = make()
    spec = spec_to_dict(model)
    assert spec_to_dict(model_from_spec_dict(spec)) == spec
    save_spec(model, tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text()) == spec
    assert_same_model(load_spec(tmp_path / "m.json"), model)    # freshly initialised, so same seed, same values


def test_spec_optional_keys_take_the_defaults():
    spec = {"format": "edgelearn-model", "version": 1, "name": "small", "input": {"shape": [3]},
            "layers": [{"name": "out", "kind": "dense", "inputs": [{"from": "input"}], "shape": [2],
                        "neuron": {"kind": "lif"}}]}
    model = model_from_spec_dict(spec)
    assert model.input == InputSpec((3,))
    assert model.layers[0] == Layer("out", "dense", (Edge(INPUT),), (2,), Neuron("lif"))
    assert model.learning == Learning()


def test_load_and_save_model_choose_the_format(tmp_path):
    save_model(MLP, tmp_path / "m.elm")
    (tmp_path / "m.bin").write_bytes((tmp_path / "m.elm").read_bytes())    # the magic decides, not the name
    assert_same_model(load_model(tmp_path / "m.bin"), MLP)
    save_model(MLP, tmp_path / "m.json")
    assert_same_model(load_model(tmp_path / "m.json"), MLP)
    (tmp_path / "m.spec").write_bytes((tmp_path / "m.json").read_bytes())   # JSON text is recognised too
    assert_same_model(load_model(tmp_path / "m.spec"), MLP)
    (tmp_path / "m.txt").write_text("hello")
    with pytest.raises(ModelError, match=r"m\.txt: not a model file: expected a binary model .* or a JSON spec"):
        load_model(tmp_path / "m.txt")
    with pytest.raises(ModelError, match=r"unknown model file suffix '\.onnx'"):
        save_model(MLP, tmp_path / "m.onnx")


def test_missing_file_is_named(tmp_path):
    for load in (load_model, load_blob, load_spec):
        with pytest.raises(ModelError, match=r"model file not found: .*nowhere\.elm"):
            load(tmp_path / "nowhere.elm")


# -- broken blobs ----------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(MLP_BLOB) * 8 - 1))
def test_any_flipped_bit_is_detected(bit):
    data = bytearray(MLP_BLOB)
    data[bit // 8] ^= 1 << (bit % 8)
    position = bit // 8
    version = struct.unpack_from("<H", data, 4)[0]      # a flip can turn 1 into another version this reads
    expected = ("bad magic" if position < 4
                else "unsupported blob format version" if position < 6 and version not in modelblob.BLOB_VERSIONS
                else "header says the blob is" if 8 <= position < 12 else "CRC mismatch")
    refused(bytes(data), expected)


@pytest.mark.parametrize("length", [0, 4, 31])
def test_too_short_for_a_header(length):
    refused(MLP_BLOB[:length], "too short for a header", f"{length} bytes")


@pytest.mark.parametrize("length", [32, 100, len(MLP_BLOB) // 2, len(MLP_BLOB) - 1])
def test_truncated(length):
    refused(MLP_BLOB[:length], "truncated", f"{len(MLP_BLOB)} bytes, got {length}")


def test_wrong_magic():
    refused(b"ONNX" + MLP_BLOB[4:], "bad magic b'ONNX'", "expected b'ELRN'")


def test_wrong_version():
    refused(poke(MLP_BLOB, 4, "<H", 6), "unsupported blob format version 6", "supports versions 1, 2, 3, 4, 5")
    refused(poke(MLP_BLOB, 4, "<H", 0), "unsupported blob format version 0")


def test_crc_mismatch_shows_both_values():
    data = bytearray(MLP_BLOB)
    data[100] ^= 1
    stored = struct.unpack_from("<I", MLP_BLOB, 20)[0]
    computed = zlib.crc32(data[:20] + bytes(4) + data[24:])
    refused(bytes(data), f"CRC mismatch: stored 0x{stored:08x}, computed 0x{computed:08x}")


def test_section_out_of_bounds():
    position, _, _ = section(MLP_BLOB, modelblob.SECTION_WEIGHTS, 1)
    refused(poke(MLP_BLOB, position + 8, "<I", 1 << 20), "WEIGHTS section 1", "out of bounds")


def test_duplicate_and_missing_sections():
    position, _, _ = section(MLP_BLOB, modelblob.SECTION_THRESHOLD, 1)
    refused(poke(MLP_BLOB, position + 2, "<H", 0), "duplicate THRESHOLD section 0")
    count = struct.unpack_from("<I", MLP_BLOB, 12)[0]
    last_kind, last_index, _, _ = [e[1:] for e in entries(MLP_BLOB)][-1]
    refused(poke(MLP_BLOB, 12, "<I", count - 1),
            f"missing {modelblob.SECTION_NAMES[last_kind]} section {last_index}")


def test_weights_section_must_fit_the_layer_shape():
    # Layer 0 now claims 16 outputs; its weights section still holds 32 x 64 int16.
    _, offset, _ = section(MLP_BLOB, modelblob.SECTION_LAYER, 0)
    data = poke(poke(MLP_BLOB, offset + 4, "<I", 16), offset + 20, "<I", 16)
    refused(data, "WEIGHTS section 0 is 4096 bytes, expected 2048", "(16, 64)")


def test_unknown_codes_are_refused():
    _, offset, _ = section(MLP_BLOB, modelblob.SECTION_LAYER, 0)
    refused(poke(MLP_BLOB, offset + 1, "<B", 9), "unknown LAYER section 0 neuron kind code 9", "2=li")
    refused(poke(MLP_BLOB, offset, "<B", 6), "unknown LAYER section 0 layer kind code 6", "0=dense")
    _, offset, _ = section(MLP_BLOB, modelblob.SECTION_MODEL, 0)
    refused(poke(MLP_BLOB, offset + 10, "<B", 4), "unknown learning rule code 4")


def test_semantic_errors_come_from_validate():
    _, offset, _ = section(MLP_BLOB, modelblob.SECTION_LAYER, 0)
    refused(poke(MLP_BLOB, offset + 1, "<B", 2), "non-spiking 'li' neuron can only be the readout")


# -- broken specs ----------------------------------------------------------------------------------
def spec_text(edit) -> str:
    spec = spec_to_dict(MLP)
    edit(spec)
    return json.dumps(spec, indent=2)


def refused_spec(tmp_path, text: str, *fragments: str) -> None:
    (tmp_path / "m.json").write_text(text)
    with pytest.raises(ModelError) as e:
        load_model(tmp_path / "m.json")
    assert "m.json: " in str(e.value)
    for fragment in fragments:
        assert fragment in str(e.value)


def test_bad_json_gives_line_and_column(tmp_path):
    text = spec_text(lambda s: None).replace('"version": 1,', '"version": 1', 1)
    refused_spec(tmp_path, text, "invalid JSON at line 4, column 3")


def test_unknown_layer_kind(tmp_path):
    refused_spec(tmp_path, spec_text(lambda s: s["layers"][1].update(kind="conv3d")),
                 "unknown layer kind 'conv3d' (known: dense, conv2d, avgpool, maxpool, scan2d")


def test_unknown_key_is_named_with_its_place(tmp_path):
    refused_spec(tmp_path, spec_text(lambda s: s["layers"][0]["neuron"].update(thresold=2.0)),
                 "layers[0].neuron: unknown key 'thresold'", "allowed: kind, threshold")
    refused_spec(tmp_path, spec_text(lambda s: s.update(learnig={})), "top level: unknown key 'learnig'")


@pytest.mark.parametrize("place, edit, fragment", [
    ("layers[1].shape", lambda s: s["layers"][1].update(shape="abc"), 'expected a list of integers, got "abc"'),
    ("learning.T", lambda s: s["learning"].update(T="8"), 'expected an integer, got "8"'),
    ("layers[0].neuron.threshold", lambda s: s["layers"][0]["neuron"].update(threshold=True),
     "expected a finite number, got true"),
    ("layers[0].inputs[0].delay", lambda s: s["layers"][0]["inputs"][0].update(delay=1.5),
     "expected an integer, got 1.5"),
    ("input", lambda s: s.update(input=[64]), "expected an object, got [64]"),
])
def test_wrong_types_name_the_field(tmp_path, place, edit, fragment):
    refused_spec(tmp_path, spec_text(edit), f"{place}: {fragment}")


@pytest.mark.parametrize("edit, fragment", [
    (lambda s: s["layers"][1].update(weight_frac=-1), "weight_frac -1 outside 0..15"),
    (lambda s: s["learning"].update(seed=-1), "seed must be a 32-bit unsigned integer"),
    (lambda s: s["layers"][1]["inputs"][0].update({"from": "fc9"}), "input 'fc9' does not exist"),
    (lambda s: s["layers"][1].pop("neuron"), "layer 1 ('readout'): a 'dense' layer needs a 'neuron'"),
    (lambda s: s.update(format="onnx"), "not an edgelearn model spec: 'format' is \"onnx\""),
    (lambda s: s.update(version=7), "unsupported spec version 7 (supported: 1: the structure, 2:"),
])
def test_structural_errors_are_reported_before_initialising(tmp_path, edit, fragment):
    refused_spec(tmp_path, spec_text(edit), fragment)


def test_duplicate_json_key(tmp_path):
    text = spec_text(lambda s: None).replace('"T": 8,', '"T": 8, "T": 9,')
    refused_spec(tmp_path, text, "duplicate key 'T'")

"""The Python loaders against hostile input (hypothesis): a spec loader fed random JSON, mutated
specs and mutated spec text, a blob loader fed random and mutated bytes, each either returns a
model or raises a ModelError with a message, never another exception, and quickly; specs that ask
for absurd resources (nesting, dimensions, totals, names, thresholds) are refused by name."""
import copy
import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgelearn.errors import ModelError
from edgelearn.modelblob import check_blob, to_blob
from edgelearn.modelfile import _spec_from_bytes, load_model, model_from_spec_dict

ROOT = Path(__file__).resolve().parent.parent
SPEC = json.loads((ROOT / "models" / "digits-stop.json").read_text())
BLOB = to_blob(load_model(ROOT / "models" / "digits-stop.json"))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30)


def refused_or_loaded(load, value):
    t0 = time.monotonic()
    try:
        load(value)
    except ModelError as e:
        assert str(e)
    assert time.monotonic() - t0 < 5


def leaf_paths(obj, path=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from leaf_paths(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from leaf_paths(v, path + (i,))
    yield path


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_random_json_is_a_model_error(value):
    refused_or_loaded(model_from_spec_dict, value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_spec_with_any_part_replaced_is_loaded_or_refused(data):
    spec = copy.deepcopy(SPEC)
    paths = [p for p in leaf_paths(spec) if p]
    path = data.draw(st.sampled_from(paths))
    target = spec
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = data.draw(json_values)
    refused_or_loaded(model_from_spec_dict, spec)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_spec_text_is_loaded_or_refused(data):
    text = bytearray(json.dumps(SPEC).encode())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text) - 1))
        text[at] = data.draw(st.integers(0, 255))
    refused_or_loaded(_spec_from_bytes, bytes(text))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_are_not_a_blob(data):
    refused_or_loaded(check_blob, data)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_blobs_are_loaded_or_refused(data):
    blob = bytearray(BLOB)
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, 400))          # the header, the table, MODEL and LAYER sections
        blob[at] = data.draw(st.integers(0, 255))
    refused_or_loaded(check_blob, bytes(blob))


def with_(path, value):
    spec = copy.deepcopy(SPEC)
    target = spec
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return spec


@pytest.mark.parametrize("spec, message", [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "nested too deeply"),
    (b'{"version": ' + b"9" * 5000 + b"}", "invalid JSON"),
    (b" " * (16 << 20 | 1), "specs are at most"),
    (with_(("input", "shape"), [2**40]), "a spec may ask for at most 16777216"),
    (with_(("input", "shape"), [2**12, 2**12]), "weights in the layers up to it"),
    (with_(("layers", 0, "shape"), [65536, 65536, 65536]), "neurons; a layer has at most"),
    (with_(("layers", 0, "neuron", "threshold"), 1e30), "does not fit the Q16 membrane format"),
    (with_(("layers", 0, "neuron", "threshold"), 40000.0), "does not fit the Q16 membrane format"),
    (with_(("layers",), [SPEC["layers"][0]] * 70_000), "a model has at most 65534"),
    (with_(("name",), "x" * 70_000), "names are at most 65535"),
])
def test_absurd_specs_are_refused_by_name_and_quickly(spec, message):
    t0 = time.monotonic()
    with pytest.raises(ModelError, match=message):
        _spec_from_bytes(spec) if isinstance(spec, bytes) else model_from_spec_dict(spec)
    assert time.monotonic() - t0 < 2


def test_the_largest_threshold_that_fits_is_accepted():
    model = model_from_spec_dict(with_(("layers", 0, "neuron", "threshold"), 32767.5))
    assert int(model.params[model.layers[0].name].threshold[0]) == int(32767.5 * 65536)

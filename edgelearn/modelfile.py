"""Model files: a JSON spec that people write and read, and a binary blob that devices load.

The spec (``.json``) holds the structure only; loading it initialises the parameters with
``rules.init_model``, which is seeded, so one spec always gives the same model. The blob
(``.elm``, see ``modelblob``) holds structure and parameters in the device formats.
docs/model-format.md describes both formats.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from pathlib import Path

from .contract import CUTOFF_NEVER
from .model import Cutoff, Edge, Filter, InputSpec, Layer, Learning, Model, ModelError, Neuron, Schedule, Window
from .modelblob import BLOB_MAGIC, from_blob, to_blob
from .modelread import (MAX_NAME_BYTES, MAX_SPEC_BYTES, MAX_SPEC_INPUT, MAX_SPEC_LAYERS,  # noqa: F401  (their home)
                        MAX_SPEC_WEIGHTS, MAX_THRESHOLD, PSN_FORMAT, is_psn_file, read_model_file)
from .psnfile import load as load_psn
from .psnnet import to_model as psn_model
from .rules import init_model

SPEC_FORMAT = "edgelearn-model"
SPEC_VERSIONS = {1: "the structure", 2: "version 1 and a calibrated cutoff",
                 3: "version 2 and a learning-rate schedule", 4: "version 3 and window layers (conv2d, pooling)",
                 5: "version 4 and int8 weights (a layer's weight_bits)",
                 6: "version 5 and filter layers (psn)"}
SPEC_SINCE = {"cutoff": 2, "schedule": 3}      # the spec version that introduced a top-level key
LAYER_KEY_SINCE = {"window": 4, "weight_bits": 5, "filter": 6}   # ... and a layer's key (written only when not the default)


def spec_version(model: Model) -> int:
    """The oldest spec version that holds the model, so older readers keep reading the rest."""
    return max([1] + [since for key, since in SPEC_SINCE.items() if getattr(model, key) is not None]
               + [since for key, since in LAYER_KEY_SINCE.items() for layer in model.layers
                  if key in _layer_to_dict(layer)])


# -- JSON spec ------------------------------------------------------------------------------
def spec_to_dict(model: Model) -> dict:
    """The JSON-ready spec of ``model``: its structure (and calibrated cutoff), without parameters."""
    spec = {
        "format": SPEC_FORMAT,
        "version": spec_version(model),
        "name": model.name,
        "input": {"shape": [int(d) for d in model.input.shape], "encoding": model.input.encoding},
        "layers": [_layer_to_dict(layer) for layer in model.layers],
        "learning": dataclasses.asdict(model.learning),
    }
    if model.cutoff is not None:
        spec["cutoff"] = {"tolerance": model.cutoff.tolerance,
                          "margins": [None if m == CUTOFF_NEVER else int(m) for m in model.cutoff.margins]}
    if model.schedule is not None:
        spec["schedule"] = {key: int(v) for key, v in dataclasses.asdict(model.schedule).items()}
    return spec


def _layer_to_dict(layer: Layer) -> dict:
    out = {"name": layer.name, "kind": layer.kind, "inputs": [{"from": e.source, "delay": e.delay} for e in layer.inputs],
           "shape": [int(d) for d in layer.shape]}
    if layer.neuron is not None:                 # a kind without neurons (pooling) has none
        out["neuron"] = dataclasses.asdict(layer.neuron)
    out["weight_frac"] = layer.weight_frac
    if layer.weight_bits != 16:                  # written only when narrow: int16 files stay as they were
        out["weight_bits"] = layer.weight_bits
    if layer.window is not None:
        out["window"] = {key: [int(v) for v in pair] for key, pair in dataclasses.asdict(layer.window).items()}
    if layer.filter is not None:
        out["filter"] = dataclasses.asdict(layer.filter)
    return out


def model_from_spec_dict(spec: dict) -> Model:
    """The model a spec describes, with seeded initial parameters, validated."""
    if not isinstance(spec, dict):
        raise ModelError(f"not an edgelearn model spec: expected a JSON object, got {_show(spec)}")
    if spec.get("format") != SPEC_FORMAT:
        raise ModelError(f"not an edgelearn model spec: 'format' is {_show(spec.get('format'))}, "
                         f"expected {SPEC_FORMAT!r}")
    version = spec.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version not in SPEC_VERSIONS:
        raise ModelError(f"unsupported spec version {_show(version)} (supported: "
                         + ", ".join(f"{v}: {what}" for v, what in SPEC_VERSIONS.items()) + ")")
    for key, since in SPEC_SINCE.items():
        if key in spec and version < since:
            raise ModelError(f"a {key!r} needs spec version {since}")
    for i, layer in enumerate(spec.get("layers") if isinstance(spec.get("layers"), list) else []):
        for key, since in LAYER_KEY_SINCE.items():
            if isinstance(layer, dict) and key in layer and version < since:
                raise ModelError(f"layers[{i}]: a {key!r} needs spec version {since}")
    if isinstance(spec.get("layers"), list) and len(spec["layers"]) > MAX_SPEC_LAYERS:
        raise ModelError(f"layers: {len(spec['layers'])} layers; a model has at most {MAX_SPEC_LAYERS}")
    fields = _fields(spec, "", _SPEC_FIELDS, required=("format", "version", "name", "input", "layers"))
    del fields["format"], fields["version"]
    model = Model(**fields)
    _check_resources(model)
    return init_model(model)


def _check_resources(model: Model) -> None:
    """What the model asks for, bounded before any parameter is drawn (MAX_SPEC_*)."""
    from .ops import LAYERS

    model.validate_structure()
    sizes, shapes = model.sizes(), model.shapes()
    if sizes["input"] > MAX_SPEC_INPUT:
        raise ModelError(f"input.shape: {sizes['input']} values; a spec may ask for at most {MAX_SPEC_INPUT}")
    for where, name in [("name", model.name)] + [(f"layers[{i}].name", ly.name) for i, ly in enumerate(model.layers)]:
        if len(name.encode("utf-8")) > MAX_NAME_BYTES:
            raise ModelError(f"{where}: a name of {len(name.encode('utf-8'))} bytes; names are at most {MAX_NAME_BYTES}")
    total = 0
    for i, layer in enumerate(model.layers):
        rows, cols = LAYERS[layer.kind].weight_shape(layer.size, model.fan_in(layer, sizes), model.geometry(layer, shapes))
        total += rows * cols
        if total > MAX_SPEC_WEIGHTS:
            raise ModelError(f"layers[{i}] ({layer.name!r}): {total} weights in the layers up to it; a spec may ask "
                             f"for at most {MAX_SPEC_WEIGHTS} in all")
        if layer.neuron is not None and not abs(layer.neuron.threshold) < MAX_THRESHOLD:
            raise ModelError(f"layers[{i}].neuron.threshold: {layer.neuron.threshold} does not fit the Q16 "
                             f"membrane format (thresholds are below {MAX_THRESHOLD:g})")


def save_spec(model: Model, path) -> None:
    Path(path).write_text(_json_text(spec_to_dict(model)) + "\n", encoding="utf-8")


def _json_text(value, indent: str = "") -> str:
    """JSON for people: a short list or object on one line, a longer one an entry per line."""
    flat = json.dumps(value, ensure_ascii=False)
    if len(flat) <= 64 or not isinstance(value, (dict, list)):
        return flat
    inner = indent + "  "
    if isinstance(value, dict):
        entries = [f"{json.dumps(key, ensure_ascii=False)}: {_json_text(item, inner)}"
                   for key, item in value.items()]
        brackets = "{}"
    else:
        entries, brackets = [_json_text(item, inner) for item in value], "[]"
    return brackets[0] + "\n" + ",\n".join(inner + entry for entry in entries) + f"\n{indent}{brackets[1]}"


def load_spec(path) -> Model:
    data = read_model_file(path)
    with _about(path):
        return _spec_from_bytes(data)


def _spec_from_bytes(data: bytes) -> Model:
    if len(data) > MAX_SPEC_BYTES:
        raise ModelError(f"a spec of {len(data)} bytes; specs are at most {MAX_SPEC_BYTES} bytes")
    try:
        spec = json.loads(data.decode("utf-8"), object_pairs_hook=_object_without_duplicates)
    except UnicodeDecodeError as e:
        raise ModelError(f"spec is not UTF-8 text: {e.reason} at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise ModelError(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise ModelError("spec nested too deeply to read (a spec is a few levels deep)") from None
    except ValueError as e:                    # an integer of more digits than Python converts
        raise ModelError(f"invalid JSON: {e}") from None
    return model_from_spec_dict(spec)


def _object_without_duplicates(pairs):
    # json keeps the last of repeated keys; a repeated key is as much a mistake as a typo
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ModelError(f"duplicate key {key!r} in a JSON object")
        obj[key] = value
    return obj


def _show(value) -> str:
    text = json.dumps(value, default=repr)
    return text if len(text) <= 40 else text[:37] + "..."


def _field_path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _fields(obj, where: str, converters: dict, required: tuple[str, ...]) -> dict:
    """The entries of a JSON object, each converted by its converter. Unknown keys are
    errors so that a misspelt optional key cannot silently fall back to its default."""
    if not isinstance(obj, dict):
        raise ModelError(f"{where}: expected an object, got {_show(obj)}")
    for key in obj:
        if key not in converters:
            raise ModelError(f"{where or 'top level'}: unknown key {key!r} (allowed: {', '.join(converters)})")
    for key in required:
        if key not in obj:
            raise ModelError(f"{where or 'top level'}: missing required key {key!r}")
    return {key: converters[key](value, _field_path(where, key)) for key, value in obj.items()}


def _as_int(value, where):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelError(f"{where}: expected an integer, got {_show(value)}")
    return value


def _as_float(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelError(f"{where}: expected a finite number, got {_show(value)}")
    return float(value)


def _as_bool(value, where):
    if not isinstance(value, bool):
        raise ModelError(f"{where}: expected true or false, got {_show(value)}")
    return value


def _as_str(value, where):
    if not isinstance(value, str):
        raise ModelError(f"{where}: expected a string, got {_show(value)}")
    return value


def _as_shape(value, where):
    if not isinstance(value, list) or any(isinstance(d, bool) or not isinstance(d, int) for d in value):
        raise ModelError(f"{where}: expected a list of integers, got {_show(value)}")
    return tuple(value)


def _list_of(convert_item):
    def convert(value, where):
        if not isinstance(value, list):
            raise ModelError(f"{where}: expected a list, got {_show(value)}")
        return tuple(convert_item(item, f"{where}[{i}]") for i, item in enumerate(value))
    return convert


def _object_of(make, converters: dict, required: tuple[str, ...] = ()):
    """A converter from a JSON object to ``make(**fields)``; absent optional keys are left
    out so that the dataclass defaults apply."""
    return lambda obj, where: make(**_fields(obj, where, converters, required))


def _read_edge(obj, where):
    fields = _fields(obj, where, {"from": _as_str, "delay": _as_int}, required=("from",))
    return Edge(fields.pop("from"), **fields)      # "from" is the JSON name of Edge.source


_read_neuron = _object_of(Neuron, {"kind": _as_str, "threshold": _as_float, "leak": _as_float,
                                   "learn_threshold": _as_bool, "learn_leak": _as_bool, "reset": _as_str},
                          required=("kind",))
def _as_pair(value, where):
    pair = _as_shape(value, where)
    if len(pair) != 2:
        raise ModelError(f"{where}: expected [height, width], got {_show(value)}")
    return pair


_read_window = _object_of(Window, {"kernel": _as_pair, "stride": _as_pair, "padding": _as_pair},
                          required=("kernel",))
_read_filter = _object_of(Filter, {"taps": _as_int, "dilation": _as_int, "init": _as_float}, required=("taps",))
_read_layer = _object_of(Layer, {"name": _as_str, "kind": _as_str, "inputs": _list_of(_read_edge),
                                 "shape": _as_shape, "neuron": _read_neuron, "weight_frac": _as_int,
                                 "window": _read_window, "weight_bits": _as_int, "filter": _read_filter},
                         required=("name", "kind", "inputs", "shape"))
_read_input = _object_of(InputSpec, {"shape": _as_shape, "encoding": _as_str}, required=("shape",))
_read_learning = _object_of(Learning, {"rule": _as_str, "T": _as_int, "lr_weight_shift": _as_int,
                                       "lr_threshold_shift": _as_int, "lr_leak_shift": _as_int,
                                       "surrogate_shift": _as_int, "update": _as_str, "seed": _as_int,
                                       "Tb": _as_int})


def _as_margin(value, where):
    return CUTOFF_NEVER if value is None else _as_int(value, where)


_read_cutoff = _object_of(Cutoff, {"margins": _list_of(_as_margin), "tolerance": _as_float},
                          required=("margins", "tolerance"))
_read_schedule = _object_of(Schedule, {"every": _as_int, "steps": _as_int, "learned": _as_int},
                            required=("every", "steps"))
_SPEC_FIELDS = {"format": _as_str, "version": _as_int, "name": _as_str, "input": _read_input,
                "layers": _list_of(_read_layer), "learning": _read_learning, "cutoff": _read_cutoff,
                "schedule": _read_schedule}


# -- files ----------------------------------------------------------------------------------
def save_blob(model: Model, path) -> None:
    Path(path).write_bytes(to_blob(model))


def load_blob(path) -> Model:
    data = read_model_file(path)
    with _about(path):
        return from_blob(data)


def load_model(path) -> Model:
    """A model from a blob (recognised by its magic) or a JSON spec (a ``.json`` file or
    text that starts with '{'); a spec's parameters are freshly initialised."""
    data = read_model_file(path)
    with _about(path):
        if is_psn_file(path, data):              # a PSN network's training file: the model it is
            net, spec = load_psn(path)
            return psn_model(net, spec["name"])
        if data.startswith(BLOB_MAGIC):
            return from_blob(data)
        if Path(path).suffix.lower() == ".json" or data.lstrip().startswith(b"{"):
            return _spec_from_bytes(data)
        raise ModelError(f"not a model file: expected a binary model (starts with {BLOB_MAGIC!r}, "
                         "usually .elm) or a JSON spec (.json)")


def save_model(model: Model, path) -> None:
    """Save by suffix: ``.elm`` writes the blob with parameters, ``.json`` the spec, which
    has no parameters (loading it initialises them again)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".elm":
        save_blob(model, path)
    elif suffix == ".json":
        save_spec(model, path)
    else:
        raise ModelError(f"{path}: unknown model file suffix {suffix!r}; use .elm (binary, with parameters) "
                         "or .json (spec, structure only)")


@contextlib.contextmanager
def _about(path):
    """Prefix the path to the errors raised while interpreting a file's contents."""
    try:
        yield
    except ModelError as e:
        raise ModelError(f"{path}: {e}") from None

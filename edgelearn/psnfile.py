"""PSN model files (docs/psn.md §7): a JSON spec of a network of multiplication-free parallel
spiking neurons and how to train it, and the trained network with its integer parameters.

A spec (``.json``; ``models/smnist-psn.json``)::

    {"format": "edgelearn-psn", "version": 1, "name": "smnist-psn",
     "input": {"features": 28, "encoding": "sequence"}, "T": 28,
     "layers": [{"kind": "psn", "neurons": 256, "taps": 4, "dilation": 1}, ...,
                {"kind": "readout", "neurons": 10}],
     "init": {"seed": 1, "threshold": 0.5, "weight_scale": 3.0},
     "learning": {"rule": "host", "epochs": 15, "batch": 64, "lr": 0.005, "learn_thresholds": true,
                  "surrogate_shift": 1, "lr_weight_shift": 14}}

``rule`` "host" trains the stack through time on the host (edgelearn/psn_bptt.py) and then
quantises it; "online" learns on the device's arithmetic, per step, taps frozen (docs/psn.md §3),
at the weight rate 2^-lr_weight_shift.

A trained network (``.psn``) is a NumPy ``.npz`` archive (read without pickles): ``spec`` (the
spec's JSON text) and per layer ``weights{l}`` (int16, Q ``w_frac{l}``), ``taps{l}`` (int8 tap
codes) and ``thresholds{l}`` (int32, Q16)."""
from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .errors import ModelError
from .modelread import MAX_NAME_BYTES, MAX_SPEC_WEIGHTS, PSN_FORMAT, read_model_file
from .ops.layers import psn
from .psnnet import Layer, PSNNet, make_net

FORMAT = PSN_FORMAT
VERSION = 1
SUFFIX = ".psn"
ZIP_MAGIC = b"PK\x03\x04"                   # what np.savez writes
RULES = ("host", "online")
ENCODINGS = ("sequence", "events")          # recordings: one row per step
LEARNING_DEFAULTS = {"rule": "host", "epochs": 15, "batch": 64, "lr": 5e-3, "learn_thresholds": True,
                     "surrogate_shift": 1, "lr_weight_shift": 14}
INIT_DEFAULTS = {"seed": 1, "threshold": 0.5, "weight_scale": 3.0}
ARRAYS = ("weights", "taps", "thresholds", "w_frac")       # a trained layer's, in the archive
READOUT_TAP = 1                 # the readout's one tap: code 1, the tap 2^0 (make_net's; psn.tap_values)


def _int(obj: dict, key: str, where: str, lo: int, hi: int) -> int:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ModelError(f"{where}.{key}: an integer in {lo}..{hi}, got {v!r}")
    return v


def _number(obj: dict, key: str, where: str, lo: float, hi: float) -> float:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise ModelError(f"{where}.{key}: a number in {lo:g}..{hi:g}, got {v!r}")
    return float(v)


def _known(obj, where: str, keys) -> dict:
    if not isinstance(obj, dict):
        raise ModelError(f"{where}: an object, got {obj!r}")
    unknown = sorted(set(obj) - set(keys))
    if unknown:
        raise ModelError(f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(keys)})")
    return obj


def check_spec(spec) -> dict:
    """The spec with its defaults filled in, or a ModelError that says which field is wrong."""
    _known(spec, "spec", ("format", "version", "name", "input", "T", "layers", "init", "learning"))
    if spec.get("format") != FORMAT:
        raise ModelError(f"format: {FORMAT!r}, got {spec.get('format')!r}")
    if spec.get("version") != VERSION:
        raise ModelError(f"version: this edgelearn reads version {VERSION}, got {spec.get('version')!r}")
    if not isinstance(spec.get("name"), str) or not spec["name"]:
        raise ModelError(f"name: a non-empty string, got {spec.get('name')!r}")
    if len(spec["name"].encode("utf-8")) > MAX_NAME_BYTES:
        raise ModelError(f"name: {len(spec['name'].encode('utf-8'))} bytes; names are at most {MAX_NAME_BYTES}")
    inp = _known(spec.get("input"), "input", ("features", "encoding"))
    _int(inp, "features", "input", 1, 65535)
    if inp.get("encoding", "sequence") not in ENCODINGS:
        raise ModelError(f"input.encoding: one of {', '.join(ENCODINGS)}, got {inp.get('encoding')!r}")
    _int(spec, "T", "spec", 1, 65535)
    layers = spec.get("layers")
    if not isinstance(layers, list) or len(layers) < 2:
        raise ModelError("layers: a list of at least one 'psn' layer and the 'readout'")
    weights, n_in = 0, inp["features"]
    for l, ly in enumerate(layers):
        where = f"layers[{l}]"
        last = l == len(layers) - 1
        _known(ly, where, ("kind", "neurons") if last else ("kind", "neurons", "taps", "dilation"))
        if ly.get("kind") != ("readout" if last else "psn"):
            raise ModelError(f"{where}.kind: {'readout' if last else 'psn'} (the hidden layers are 'psn', the last "
                             f"one the 'readout'), got {ly.get('kind')!r}")
        _int(ly, "neurons", where, 1, 65535)
        if not last:
            _int(ly, "taps", where, 1, psn.MAX_TAPS)
            _int(ly, "dilation", where, 1, psn.MAX_DILATION)
        weights, n_in = weights + n_in * ly["neurons"], ly["neurons"]
        if weights > MAX_SPEC_WEIGHTS:       # bounded before anything is allocated
            raise ModelError(f"{where}: {weights} weights in the layers up to it; a network may have at most "
                             f"{MAX_SPEC_WEIGHTS} in all")
    init = {**INIT_DEFAULTS, **_known(spec.get("init", {}), "init", INIT_DEFAULTS)}
    _int(init, "seed", "init", 0, 0xFFFFFFFF)
    _number(init, "threshold", "init", 2.0 ** -16, 32767.0)
    _number(init, "weight_scale", "init", 0.0, 1e3)
    learning = {**LEARNING_DEFAULTS, **_known(spec.get("learning", {}), "learning", LEARNING_DEFAULTS)}
    if learning["rule"] not in RULES:
        raise ModelError(f"learning.rule: one of {', '.join(RULES)}, got {learning['rule']!r}")
    _int(learning, "epochs", "learning", 0, 10000)
    _int(learning, "batch", "learning", 1, 1 << 20)
    _number(learning, "lr", "learning", 0.0, 10.0)
    if not isinstance(learning["learn_thresholds"], bool):
        raise ModelError(f"learning.learn_thresholds: true or false, got {learning['learn_thresholds']!r}")
    _int(learning, "surrogate_shift", "learning", 0, 15)
    _int(learning, "lr_weight_shift", "learning", 0, 40)
    return {**spec, "input": {"encoding": "sequence", **inp}, "init": init, "learning": learning}


def net_of_spec(spec: dict) -> PSNNet:
    """A fresh network of the spec: seeded random weights, every hidden tap 2^-1 (make_net)."""
    hidden = spec["layers"][:-1]
    taps = {ly["taps"] for ly in hidden}
    net = make_net([spec["input"]["features"], *(ly["neurons"] for ly in spec["layers"])], taps=max(taps),
                   dilations=[ly["dilation"] for ly in hidden], seed=spec["init"]["seed"],
                   encoding=spec["input"]["encoding"], T=spec["T"], threshold=spec["init"]["threshold"],
                   weight_scale=spec["init"]["weight_scale"], surrogate_shift=spec["learning"]["surrogate_shift"],
                   lr_weight_shift=spec["learning"]["lr_weight_shift"])
    for layer, ly in zip(net.layers, hidden):          # layers of fewer taps than the widest
        layer.taps = np.ascontiguousarray(layer.taps[:, :ly["taps"]])
    net.check()
    return net


def load_spec_dict(spec: dict) -> tuple[PSNNet, dict]:
    """(a fresh network, the checked spec) of a spec given as a dict."""
    spec = check_spec(spec)
    return net_of_spec(spec), spec


def _spec_of_text(text: str) -> dict:
    try:
        spec = json.loads(text)
    except ValueError as e:
        raise ModelError(f"not valid JSON: {e}") from None
    return check_spec(spec)


def load(path) -> tuple[PSNNet, dict]:
    """(the network, its spec): a spec's parameters freshly initialised, a ``.psn``'s as trained."""
    data = read_model_file(path)
    try:
        if Path(path).suffix.lower() != SUFFIX:
            spec = _spec_of_text(data.decode("utf-8", errors="replace"))
            return net_of_spec(spec), spec
        return _load_trained(data)
    except ModelError as e:
        raise ModelError(f"{path}: {e}") from None


def _load_trained(data: bytes) -> tuple[PSNNet, dict]:
    if not data.startswith(ZIP_MAGIC):
        raise ModelError(f"not a trained PSN network: a {SUFFIX} file is a .npz archive (starts with {ZIP_MAGIC!r}), "
                         f"this one starts with {data[:4]!r}")
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
        if "spec" not in archive.files:
            raise ModelError("the archive holds no 'spec'")
        text = archive["spec"]
        if text.dtype.kind != "U" or text.shape != ():
            raise ModelError(f"'spec' is the spec's JSON text (a string), got {text.dtype.name} {text.shape}")
        spec = _spec_of_text(str(text))
        net = net_of_spec(spec)
        wanted = {"spec"} | {f"{name}{l}" for l in range(len(net.layers)) for name in ARRAYS}
        unknown = sorted(set(archive.files) - wanted)
        if unknown:
            raise ModelError(f"the archive holds arrays the spec has no place for: {', '.join(unknown)}")
        arrays = {k: archive[k] for k in archive.files if k != "spec"}   # read only once all are known
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        if isinstance(e, ModelError):
            raise
        raise ModelError(f"not a trained PSN network (a .npz archive of spec, weights, taps, thresholds): {e}") from None
    for l, layer in enumerate(net.layers):
        for name, dtype, shape in (("weights", np.int16, layer.weights.shape), ("taps", np.int8, layer.taps.shape),
                                   ("thresholds", np.int32, layer.thresholds.shape), ("w_frac", np.int64, ())):
            key = f"{name}{l}"
            if key not in arrays:
                raise ModelError(f"the archive holds no {key!r} (layer {l}'s {name})")
            a = arrays[key]
            if a.dtype != dtype or a.shape != shape:
                raise ModelError(f"{key}: {np.dtype(dtype).name} {shape} for the spec's layer {l}, "
                                 f"got {a.dtype.name} {a.shape}")
        w_frac = int(arrays[f"w_frac{l}"])
        if not 0 <= w_frac <= 15:
            raise ModelError(f"w_frac{l}: 0..15 fractional bits, got {w_frac}")
        net.layers[l] = Layer(layer.n_in, layer.n_out, arrays[f"taps{l}"].copy(), layer.dilation,
                              arrays[f"weights{l}"].copy(), arrays[f"thresholds{l}"].copy(), w_frac)
    if not (net.layers[-1].taps == READOUT_TAP).all():
        raise ModelError(f"taps{len(net.layers) - 1}: the readout is one tap of 1 (code 1) per neuron")
    try:
        net.check()
    except ValueError as e:
        raise ModelError(str(e)) from None
    return net, spec


def save(net: PSNNet, spec: dict, path) -> None:
    """Write the trained network (``.psn``) with its spec."""
    if Path(path).suffix.lower() != SUFFIX:
        raise ModelError(f"{path}: a trained PSN network is written as {SUFFIX}")
    arrays = {"spec": np.array(json.dumps(spec, indent=1))}
    for l, ly in enumerate(net.layers):
        arrays.update({f"weights{l}": ly.weights, f"taps{l}": ly.taps, f"thresholds{l}": ly.thresholds,
                       f"w_frac{l}": np.array(ly.w_frac, np.int64)})
    part = Path(str(path) + ".part")        # written whole, then renamed: a failed save keeps the old file
    try:
        with open(part, "wb") as f:
            np.savez(f, **arrays)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)

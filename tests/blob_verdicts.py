"""The two loaders' verdicts on a blob, the blob layout written by hand (docs/model-format.md,
without edgelearn.modelblob, so that a bug shared by the module's reader and writer shows) and
the models whose blobs the agreement tests mutate (tests/test_blob_agreement.py,
tests/test_blob_mutations.py)."""
import math
import struct

import numpy as np
from blob_bytes import LAYER, LEAK, MODEL, THRESHOLD, WEIGHTS, resealed, section

from edgelearn import native, resources
from edgelearn.contract import CUTOFF_NEVER
from edgelearn.model import (
    INPUT,
    Cutoff,
    Edge,
    InputSpec,
    Layer,
    Learning,
    Model,
    ModelError,
    Neuron,
    Schedule,
    Window,
    init_params,
    mlp,
)
from edgelearn.modelblob import check_blob, to_blob
from edgelearn.modelfile import load_model
from edgelearn.psnnet import make_net, to_model

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


def assemble(sections: list[tuple[int, int, bytes]], version: int = 1) -> bytes:
    """Header (format ``version``), table and the payloads in table order, each padded to 4 bytes."""
    offset = 32 + 12 * len(sections)
    table, body = b"", b""
    for kind, index, payload in sections:
        table += struct.pack("<HHII", kind, index, offset, len(payload))
        body += pad4(payload)
        offset += len(pad4(payload))
    header = struct.pack("<4sHHIIII8s", b"ELRN", version, 0, offset, len(sections), 32, 0, bytes(8))
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


def schedule_payload(every: int, steps: int, learned: int = 0, reserved: int = 0) -> bytes:
    """A SCHEDULE section (type 7, format version 3): four u32."""
    return struct.pack("<IIII", every, steps, learned, reserved)


def raw_blob(model_fields: dict, layers: list[dict], extra: list[tuple[int, int, bytes]] = (),
             version: int = 1) -> bytes:
    """A blob written field by field, nothing validated. Each layer: neuron code, shape,
    edges [(source, delay)], optional fan_in (default: the sources' sizes), name, flags,
    threshold and leak (Q16; every weight is 256). ``extra``: more sections (type, index,
    payload) after the parameters, in a blob of format ``version``."""
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
    return assemble(sections + params + list(extra), version)


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


def stop_cutoff() -> Model:
    """A calibrated cutoff (a CUTOFF section, format version 2) on an 'li' readout."""
    model = stop_if_li()
    model.cutoff = Cutoff((3, CUTOFF_NEVER, 70000, 0), 0.02)
    return model.validate()


def stop_schedule() -> Model:
    """A learning-rate schedule (a SCHEDULE section, format version 3) beside a cutoff."""
    model = stop_cutoff()
    model.schedule = Schedule(every=3, steps=2, learned=7)
    return model.validate()


def spide_schedule() -> Model:
    """SPIDE with a schedule near its limits: the most halvings, a count near saturation."""
    model = spide_feedback()
    model.schedule = Schedule(every=0xFFFFFFFF, steps=40, learned=0xFFFFFFFE)
    return model.validate()


def stop_conv_maxpool() -> Model:
    """conv2d (stride, padding) -> maxpool -> dense: WINDOW sections (format version 4), a pool
    without neurons (empty WEIGHTS and THRESHOLD sections)."""
    layers = (Layer("c", "conv2d", (Edge(INPUT),), (2, 3, 3), Neuron("lif", leak=0.75), window=Window((3, 3), (2, 2), (1, 1))),
              Layer("p", "maxpool", (Edge("c"),), (2, 2, 2), window=Window((2, 2), (1, 1))),
              Layer("o", "dense", (Edge("p"),), (3,), Neuron("lif")))
    return init_params(Model("stop-conv-maxpool", InputSpec((1, 5, 5), "direct"), layers, Learning(T=4, seed=2)))


def stop_avgpool_conv() -> Model:
    """A rate-coded input -> conv2d 1x1 -> avgpool -> conv2d with an 'li' readout, rule readout."""
    layers = (Layer("c0", "conv2d", (Edge(INPUT),), (2, 4, 4), Neuron("if"), window=Window((1, 1))),
              Layer("p", "avgpool", (Edge("c0"),), (2, 2, 2), window=Window((2, 2), (2, 2))),
              Layer("c", "conv2d", (Edge("p"),), (3, 1, 1), Neuron("li"), window=Window((2, 2))))
    return init_params(Model("stop-avgpool-conv", InputSpec((2, 4, 4), "rate"), layers,
                             Learning(rule="readout", T=3, seed=4)))


def stop_scan() -> Model:
    """The one-time-step layer: scan2d (a 3x1 column, a 1x3 row, its neighbours) -> an 'li' readout, T = 1."""
    layers = (Layer("s", "scan2d", (Edge(INPUT),), (2, 3, 4), Neuron("lif"), window=Window((3, 3), padding=(1, 1))),
              Layer("o", "dense", (Edge("s"),), (3,), Neuron("li")))
    return init_params(Model("stop-scan", InputSpec((1, 3, 4), "direct"), layers, Learning(T=1, seed=6)))


def stop_psn() -> Model:
    """Two psn layers (FILTER sections, format version 5): threshold units of signed taps at
    dilation 2, then an 'li' readout of one tap."""
    net = make_net([3, 4, 2], taps=3, dilations=[2], seed=5, T=4, encoding="sequence", threshold=0.25)
    net.layers[0].taps[:] = [[1, -2, 15], [0, 3, -15], [2, 2, 0], [-1, 1, 4]]
    return to_model(net, "stop-psn")


SMALL = {f.__name__: to_blob(f()) for f in (stop_lif, stop_if_li, stop_2d_if, spide_feedforward, spide_feedback,
                                            stop_cutoff, stop_schedule, spide_schedule, stop_conv_maxpool,
                                            stop_avgpool_conv, stop_scan, stop_psn)}
ZOO = {path.stem: to_blob(load_model(path)) for path in sorted(resources.MODELS.glob("*.json"))}
BLOBS = {**SMALL, **ZOO}



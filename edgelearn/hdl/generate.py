"""A model's top level for the FPGA: ``el_model.v`` (el_stop_core with the model's layer table,
Q-formats, learning rates, schedule and PRNG states as parameters) and the memory images of
its weights and thresholds (``weights.hex``, ``thresholds.hex``, for $readmemh), from the same
tables the other executors run on (edgelearn.plan.tables). What the core cannot run is refused
with the reason (``check``); where each buffer lives on a target is ``memory_plan``'s choice.

    files = write(model, "ice40up5k", out_dir)      # el_model.v, weights.hex, thresholds.hex
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import numerics as nx
from .. import plan, rules
from ..contract import LEARN_STREAM_XOR, TRAINABLE
from ..errors import ModelError
from ..model import Model
from ..ops import NEURONS
from ..plan import LayerField as F
from ..rules.params import Params

LAYER_KINDS = ("dense",)
NEURON_KINDS = ("lif", "if", "li")          # li: the readout only (the registry enforces it)


def check(model: Model) -> Model:
    """The model, or a ModelError naming what the FPGA core does not run."""
    rules.check(model)
    if rules.RULE_RUNTIME[model.learning.rule] != "stop":
        raise ModelError(f"the FPGA target runs STOP's runtime (rules stop, readout, none), "
                         f"not rule {model.learning.rule!r}")
    for layer in model.layers:
        if layer.kind not in LAYER_KINDS:
            raise ModelError(f"layer {layer.name!r}: layer kind {layer.kind!r} is not in the FPGA core "
                             f"(it has: {', '.join(LAYER_KINDS)})")
        if layer.neuron is None or layer.neuron.kind not in NEURON_KINDS:
            kind = layer.neuron.kind if layer.neuron else None
            raise ModelError(f"layer {layer.name!r}: neuron kind {kind!r} is not in the FPGA core "
                             f"(it has: {', '.join(NEURON_KINDS)})")
    if model.input.encoding != "direct":
        raise ModelError(f"the FPGA core reads direct input (a pixel a beat), not {model.input.encoding!r} coding")
    if model.learning.update != "step":
        raise ModelError("the FPGA core learns per step (update 'step'); per-sample updates need a weight-gradient "
                         f"buffer of {8 * sum(l.size * model.fan_in(l) for l in model.layers):,} bytes")
    return model


@dataclass(frozen=True)
class Buffer:
    """One of the core's buffers: its element bits and count, and whether the core reads and
    writes it through one port (single-port SPRAM on the iCE40 UltraPlus)."""
    name: str
    width: int
    depth: int
    single_port_ok: bool = False  # the core may run it single-ported (el_stop_core's parameter)


def bits(n: int) -> int:
    """Address bits of a buffer of n entries, as el_stop_core's ``bits``."""
    return max(1, math.ceil(math.log2(n))) if n > 1 else 1


def buffers(model: Model) -> list[Buffer]:
    """The core's buffers for the model, as el_stop_core instantiates them."""
    table, _, dims = plan.tables(model)
    first = int(table[0, F.n_out])
    lists = dims.inputs + dims.neurons + dims.learn_inputs + dims.learn_neurons
    return [
        Buffer("weights", 16, int(table[:, F.n_in] @ table[:, F.n_out]), True),
        Buffer("thresholds", 32, dims.neurons, True),
        Buffer("membrane", 32, dims.neurons),
        Buffer("bytes", 8, dims.inputs + dims.neurons),
        Buffer("input_trace", 32, max(1, dims.learn_inputs)),
        Buffer("threshold_trace", 32, max(1, dims.learn_neurons)),
        Buffer("leak_trace", 32, max(1, dims.learn_neurons)),
        Buffer("error", 32, max(1, dims.learn_neurons)),
        Buffer("input_sums", sum_bits(model), first),
        Buffer("lists", index_bits(model), lists),
    ]


def sum_bits(model: Model) -> int:
    """Bits of layer 0's exact sums of a direct input: |W x| <= 2^15 * 255 per input."""
    return (model.input.size * (1 << 15) * 255).bit_length() + 1


def index_bits(model: Model) -> int:
    """Bits of an input's or a neuron's index inside its layer."""
    widest = max([model.input.size, *(layer.size for layer in model.layers),
                  *(model.fan_in(layer) for layer in model.layers)])
    return bits(widest)


def score_bits(model: Model) -> int:
    spiking = NEURONS[model.readout.neuron.kind].spiking
    return model.learning.T.bit_length() if spiking else 64


def parameters(model: Model, single_port: set[str] = frozenset(), state: bool = True) -> dict:
    """el_stop_core's parameters for the model; ``single_port``: the buffers to run
    single-ported. With ``state`` the core starts in the model's state (leaks, PRNG streams,
    the schedule's count; weights and thresholds are the memory images); without, those are
    left at 0 for the host to write through the parameter port (``state_writes``), so that one
    build serves every state of a structure."""
    check(model)
    table, _, dims = plan.tables(model)
    L = len(model.layers)
    lr = model.learning
    trainable = [l for l in range(L) if table[l, F.flags] & TRAINABLE]
    params = Params.of(model)

    def packed(values) -> str:            # layer 0 in the low 32 bits
        return "{" + ", ".join(f"32'd{int(v) & 0xFFFFFFFF}" for v in reversed(list(values))) + "}"

    s = model.schedule
    out = {
        "LAYERS": L, "INPUTS": model.input.size, "CLASSES": model.readout.size, "STEPS": lr.T,
        "NEURONS": dims.neurons, "TRACES": dims.learn_inputs, "LEARN_NEURONS": dims.learn_neurons,
        "WEIGHTS": len(params.weights), "FIRST_SIZE": int(table[0, F.n_out]), "SUM_BITS": sum_bits(model),
        "INDEX_BITS": index_bits(model), "LOWEST": trainable[0] if trainable else L,
        "READOUT_LI": int(not NEURONS[model.readout.neuron.kind].spiking), "SCORE_BITS": score_bits(model),
        **{name: packed(table[:, f]) for name, f in (
            ("N_IN", F.n_in), ("N_OUT", F.n_out), ("W_AT", F.weights_at), ("N_OFF", F.n_off),
            ("LEARN_OFF", F.learn_off), ("IN_OFF", F.in_off), ("WEIGHT_FRAC", F.weight_frac), ("FLAGS", F.flags),
            ("RESET_SHIFT", F.reset_shift))},
        "LEAKS": packed(params.leaks if state else [0] * L),
        "SURROGATE_K": lr.surrogate_shift, "LR_WEIGHT": lr.lr_weight_shift, "LR_THRESHOLD": lr.lr_threshold_shift,
        "LR_LEAK": lr.lr_leak_shift,
        "SCHEDULE": int(s is not None), "SCHEDULE_EVERY": s.every if s else 1, "SCHEDULE_STEPS": s.steps if s else 1,
        **(dict(zip(("RNG_LEARN", "LEARNED", "DECAY", "SINCE"), registers(model))) if state
           else {"RNG_LEARN": 1, "LEARNED": 0, "DECAY": 0, "SINCE": 0}),
        "WEIGHTS_SINGLE_PORT": int("weights" in single_port), "THRESHOLDS_SINGLE_PORT": int("thresholds" in single_port),
        "WEIGHTS_INIT": '"weights.hex"', "THRESHOLDS_INIT": '"thresholds.hex"',
    }
    return out


# The parameter port's registers after the weights, thresholds and leaks (el_stop_core's REG_BASE).
# There is no input stream: direct coding never draws from it (docs/numerics.md §4), so its state
# stays the model's seed state, which the host knows.
REGISTERS = ("rng_learn", "learned", "decay", "since")


def registers(model: Model) -> tuple[int, ...]:
    """The values of REGISTERS for the model: its learning stream's state and its schedule's
    count as the core keeps it (learned, decay = min(learned / every, steps), and the samples
    since the last decay, so that the core needs no divider)."""
    lr, s = model.learning, model.schedule
    decay = s.decay() if s else 0
    since = (s.learned - decay * s.every) if s and decay < s.steps else 0
    return int(nx.seed_state(lr.seed ^ LEARN_STREAM_XOR)), s.learned if s else 0, decay, since


def address_map(model: Model) -> dict[str, int]:
    """The parameter port's word addresses: weights, thresholds, leaks, then REGISTERS."""
    weights, neurons = sum(l.size * model.fan_in(l) for l in model.layers), sum(l.size for l in model.layers)
    base = weights + neurons + len(model.layers)
    return {"weights": 0, "thresholds": weights, "leaks": weights + neurons,
            **{name: base + i for i, name in enumerate(REGISTERS)}}


def interface(model: Model) -> dict[str, int]:
    """The widths of the top level's ports (docs/fpga.md, the streams)."""
    p = parameters(model)
    return {"INPUTS": p["INPUTS"], "CLASSES": p["CLASSES"], "SCORE_BITS": p["SCORE_BITS"],
            "LABEL_BITS": bits(p["CLASSES"]), "CFG_BITS": bits(max(address_map(model).values()) + 1)}


def top_level(model: Model, single_port: set[str] = frozenset(), state: bool = True) -> str:
    """el_model.v: the core with the model's parameters, and macros of its ports' widths."""
    p = parameters(model, single_port, state)
    io = interface(model)
    macros = "\n".join(f"`define EL_MODEL_{k} {v}" for k, v in io.items())
    params = ",\n".join(f"        .{k}({v})" for k, v in p.items())
    return f"""// GENERATED by edgelearn.hdl.generate for model {model.name!r}: the STOP core with this model's
// layer table, formats, learning rates and state. Do not edit: generate it again from the model.
{macros}
`default_nettype none
module el_model (
    input  wire                                clk,
    input  wire                                rst,
    input  wire                                in_valid,
    output wire                                in_ready,
    input  wire [7:0]                          in_pixel,
    input  wire                                in_learn,
    input  wire [`EL_MODEL_LABEL_BITS-1:0]     in_label,
    output wire                                out_valid,
    input  wire                                out_ready,
    output wire [`EL_MODEL_SCORE_BITS-1:0]     out_score,
    output wire                                out_last,
    input  wire                                cfg_valid,
    output wire                                cfg_ready,
    input  wire                                cfg_write,
    input  wire [`EL_MODEL_CFG_BITS-1:0]       cfg_addr,
    input  wire [31:0]                         cfg_wdata,
    output wire                                cfg_rvalid,
    output wire [31:0]                         cfg_rdata
);
    el_stop_core #(
{params}
    ) core (
        .clk(clk), .rst(rst), .in_valid(in_valid), .in_ready(in_ready), .in_pixel(in_pixel), .in_learn(in_learn),
        .in_label(in_label), .out_valid(out_valid), .out_ready(out_ready), .out_score(out_score), .out_last(out_last),
        .cfg_valid(cfg_valid), .cfg_ready(cfg_ready), .cfg_write(cfg_write), .cfg_addr(cfg_addr),
        .cfg_wdata(cfg_wdata), .cfg_rvalid(cfg_rvalid), .cfg_rdata(cfg_rdata));
endmodule
`default_nettype wire
"""


def memory_image(values: np.ndarray, width: int) -> str:
    """$readmemh lines: one element per line, two's complement in hex."""
    mask, digits = (1 << width) - 1, width // 4
    return "".join(f"{int(v) & mask:0{digits}x}\n" for v in values)


def memory_images(model: Model) -> dict[str, str]:
    """weights.hex and thresholds.hex: what the core's weight and threshold buffers start with."""
    params = Params.of(check(model))
    return {"weights.hex": memory_image(params.weights, 16), "thresholds.hex": memory_image(params.thresholds, 32)}


def write(model: Model, out_dir, single_port: set[str] = frozenset()) -> list[Path]:
    """el_model.v (starting in the model's state) and the memory images into out_dir; the files."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"el_model.v": top_level(model, single_port), **memory_images(model)}
    for name, text in files.items():
        (out / name).write_text(text)
    return [out / name for name in files]

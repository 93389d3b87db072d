"""SPIDE's spec: what the SPIDE runtime runs, its constants, and the host-side pieces both
twins share (edge table, loop-gain bound, health report); docs/spide.md.

The executors (float.py, fixed.py, the C runtime) import this module, never the reverse.
The constants the C runtime needs reach it through edgelearn.cgen (el_contract.h)."""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from ... import numerics as nx
from ...contract import INPUT
from ...errors import ModelError
from ...model import Learning, Model, Neuron, init_params, mlp
from ...ops import NEURONS, spiking_neurons

RUNTIME = "spide"          # the runtime (edgelearn.plan) and its arena
RULES = ("spide",)          # the rules it runs
MIN_TB = 4                 # the smallest power of two whose estimate errs < 100% (about 2.6 / Tb)
MAX_SCALE_RETRIES = 4      # halvings of the gradient scale when couples clip
GUARD_GAIN = 0.875         # the guard keeps the feedback loop gain below this
GUARD_GAIN_Q16 = int(GUARD_GAIN * nx.ONE)
MAX_GUARD_HALVINGS = 16
DEAD_WINDOW = 64           # learning samples in a row without a gradient path: diverged


def is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def check(model: Model) -> None:
    """Refuse, with a reason, what the SPIDE runtimes cannot run."""
    model.validate()
    lr = model.learning
    if lr.rule != "spide":
        raise ModelError(f"the SPIDE runtime runs models with learning.rule 'spide', not {lr.rule!r}")
    if not is_power_of_two(lr.T) or lr.T < 2:
        raise ModelError(f"SPIDE needs T a power of two >= 2 (rates are counts / T), got {lr.T}")
    if not is_power_of_two(lr.Tb):
        raise ModelError(f"SPIDE needs Tb a power of two (beta is a count / Tb), got {lr.Tb}")
    if model.input.encoding == "sequence":
        raise ModelError("SPIDE learns an equilibrium of constant inputs: a 'sequence' input changes its current "
                         "every step and has none; use STOP (learning.rule 'stop') for sequences")
    if lr.Tb < MIN_TB:
        raise ModelError(f"Tb = {lr.Tb} backward steps are too few for the couples to fire: a gradient below "
                         f"1/(2 Tb) of the largest never fires and the estimate errs by about 2.6/Tb; "
                         f"use Tb >= {MIN_TB} (64 or more for a few percent)")
    for layer in model.layers:
        if layer.kind != "dense":
            raise ModelError(f"layer {layer.name!r}: SPIDE runs dense layers; a {layer.kind!r} layer runs on STOP "
                             "(learning.rule 'stop')")
        if layer.weight_bits != 16:
            raise ModelError(f"layer {layer.name!r}: SPIDE stores int16 weights, this layer asks for "
                             f"int{layer.weight_bits} (weight_bits {layer.weight_bits}); int8 weights learn with STOP "
                             "(learning.rule 'stop')")
    *spiking, readout = model.layers
    if len(model.layers) < 2 or NEURONS[readout.neuron.kind].spiking:
        raise ModelError("SPIDE needs spiking layers read by a linear classifier: the last layer must be an "
                         "'li' readout")
    names = {layer.name for layer in spiking}
    for i, layer in enumerate(spiking):
        where = f"layer {i} ({layer.name!r})"
        if layer.neuron.kind not in spiking_neurons():
            raise ModelError(f"{where}: SPIDE's equilibrium layers must spike ({', '.join(spiking_neurons())})")
        for e in layer.inputs:
            if e.source not in names and e.source != INPUT:
                raise ModelError(f"{where}: reads the readout {e.source!r}, which is not part of the equilibrium")
            if e.delay > 1:
                raise ModelError(f"{where}: edge from {e.source!r} has delay {e.delay}; SPIDE supports 0 "
                                 "(same step) and 1 (feedback)")
        th = model.params[layer.name].threshold
        if np.any(th != th[0]) or not is_power_of_two(int(th[0])):
            raise ModelError(f"{where}: SPIDE needs one threshold per layer, a power of two (V_d is a shift)")
    for e in readout.inputs:
        if e.source not in names or e.delay != 0:
            raise ModelError(f"readout {readout.name!r}: reads rates of spiking layers at delay 0 only, "
                             f"not {e.source!r} at delay {e.delay}")


def trainable(model: Model) -> list[bool]:
    """No layer keeps per-layer learning state (traces, thresholds, leaks): SPIDE learns every
    weight through its own buffers (the equilibrium counts and the couples')."""
    return [False] * len(model.layers)


def spide_mlp(name: str, sizes: list[int], *, seed: int = 1, T: int = 32, Tb: int = 32,
              lr_weight_shift: int = 6) -> Model:
    """A feed-forward SPIDE chain sizes[0] -> ... -> sizes[-1]: IF layers with the modified
    reset read by a linear readout, with seeded parameters (models/digits-spide.json and
    mnist-spide.json are this with sizes 64-256-10 and 784-256-10)."""
    hidden = Neuron("if", threshold=1.0, leak=1.0, learn_threshold=False, learn_leak=False, reset="modified")
    readout = Neuron("li", leak=0.0, learn_threshold=False, learn_leak=False)
    learning = Learning(rule="spide", T=T, Tb=Tb, lr_weight_shift=lr_weight_shift, lr_threshold_shift=0,
                        lr_leak_shift=0, surrogate_shift=0, update="sample", seed=seed)
    model = init_params(mlp(name, sizes, hidden=hidden, readout=readout, learning=learning))
    start(model)
    return model.validate()


@dataclass(frozen=True)
class EdgeInfo:
    source: int          # layer index, -1 for the input
    delay: int
    cols: slice          # the reader's weight columns


def edge_table(model: Model) -> list[list[EdgeInfo]]:
    """Each layer's edges with their weight columns."""
    index = {layer.name: i for i, layer in enumerate(model.layers)}
    sizes = model.sizes()
    table = []
    for layer in model.layers:
        col, edges = 0, []
        for e in layer.inputs:
            n = sizes[e.source]
            edges.append(EdgeInfo(-1 if e.source == INPUT else index[e.source], e.delay, slice(col, col + n)))
            col += n
        table.append(edges)
    return table


def loop_gain_bound(W: list[np.ndarray], edges: list[list[EdgeInfo]], Vd: list[float]) -> float:
    """An upper bound on the feedback loop's contraction factor, without square roots: the
    gain G_l = max_j sum_e G_e sum_i |W_le[j, i]| / V_d,l of each spiking layer, with G_e = 1
    for a feedback edge and G_k for a same-step edge from layer k; the loop gain is the
    largest G of a feedback source (0 for a feed-forward net). W, edges: every layer's,
    the readout last; Vd: the spiking layers'."""
    L = len(Vd)
    sources = [e.source for k in range(L) for e in edges[k] if e.delay > 0]
    if not sources:
        return 0.0
    gains = np.zeros(L)
    for l in range(L):
        rows = np.zeros(W[l].shape[0])
        for e in edges[l]:
            if e.source >= 0:
                rows += (1.0 if e.delay else gains[e.source]) * np.abs(W[l][:, e.cols]).sum(axis=1) / Vd[l]
        gains[l] = rows.max()
    return float(max(gains[k] for k in sources))


def reset_divisor(neuron) -> float:
    """V_d / th: what a spike subtracts, in thresholds."""
    return 2.0 if neuron.reset == "modified" else 1.0


def start(model: Model, gain: float = 0.5) -> None:
    """Scale a freshly initialised model's feedback weights so that its loop gain bound is
    at most ``gain`` (edgelearn.rules.init_model calls this, as the official code bounds
    the norm of its feedback weights): the runtimes refuse a loop whose bound is >= 1. A
    model the runtimes refuse for another reason is left as it is (they will say why)."""
    try:
        check(model)
    except ModelError:
        return
    edges = edge_table(model)
    W = [nx.from_fixed(model.params[l.name].weight, l.weight_frac) for l in model.layers]
    Vd = [float(nx.from_fixed(model.params[l.name].threshold[0], nx.STATE_FRAC)) * reset_divisor(l.neuron)
          for l in model.layers[:-1]]
    bound = loop_gain_bound(W, edges, Vd)
    if bound <= gain:
        return
    for k, layer in enumerate(model.layers):
        for e in edges[k]:
            if e.delay > 0:
                W[k][:, e.cols] *= gain / bound
        model.params[layer.name].weight = nx.to_fixed(W[k], layer.weight_frac, *layer.weight_range, np.int16)


def dead_equilibrium(samples: int) -> str:
    return (f"for {samples} samples in a row every spiking neuron was silent or fired on every step (rate 0 "
            "or 1): the equilibrium passes no gradient. Use a smaller learning rate (a larger lr_weight_shift) "
            "or smaller initial weights")


def not_contractive(gain: float) -> ModelError:
    return ModelError(f"the feedback loop is not contractive: its gain bound (products of the largest "
                      f"absolute row sums of W / V_d around the loop) is {gain:.3f} >= 1, so the rates need "
                      "not settle; scale the feedback weights down")


def health_report(counts: dict, T: int, loop_gain: float) -> dict:
    """The health signals from raw counters (shared by both twins; docs/spide.md)."""
    samples = max(counts["samples"], 1)
    neurons = max(counts["neurons"], 1)
    masked = max(counts["masked"], 1)
    report = {
        "samples": counts["samples"],
        "mask_fraction": counts["masked"] / neurons,
        "forward_oscillation": counts["oscillation"] / (neurons * (T // 2)),
        "backward_saturated": counts["saturated"] / neurons,
        "backward_silent": counts["silent"] / masked,
        "scale_retries": counts["retries"] / samples,
        "loop_gain": loop_gain,
        "guard_halvings": counts["halvings"],
    }
    problems = []
    if counts["samples"] and report["backward_silent"] > 0.25:
        problems.append(f"{report['backward_silent']:.0%} of the unclamped backward couples never fired: "
                        "Tb is too small for the spread of the gradient")
    if report["backward_saturated"] > 0.01:
        problems.append(f"{report['backward_saturated']:.1%} of the backward counts saturated even after "
                        "halving the gradient scale: the adjoint is clipped")
    if report["forward_oscillation"] > 0.1:
        problems.append(f"forward rates differ by {report['forward_oscillation']:.2f} between the two halves "
                        "of the window: the equilibrium has not settled (raise T or shrink the loop)")
    if counts["samples"] and report["mask_fraction"] < 0.01:
        problems.append("almost every spiking neuron is silent or saturated: no gradient reaches the weights")
    report["problems"] = problems
    return report


HEALTH_KEYS = ("samples", "neurons", "masked", "oscillation", "saturated", "silent", "retries", "halvings")
# The fixed runtimes' counter slots (int64): the health keys, then the run of dead samples
HealthSlot = IntEnum("HealthSlot", [(k, i) for i, k in enumerate(HEALTH_KEYS + ("dead_run",))])

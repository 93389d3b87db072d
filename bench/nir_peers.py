"""snnTorch <-> edgelearn through NIR: the same spikes for the same input, both ways.

Runs in the peers' environment (bench/.venv-peers: torch, snntorch 1.0.0, nir, nirtorch):

    bench/.venv-peers/bin/python bench/nir_peers.py          # writes bench/results/nir_peers.{json,md}

(a) snnTorch -> NIR -> edgelearn: a Linear + Leaky network (reset by subtraction, reset_delay
    False, leak 0.875, threshold 1) written by ``snntorch.export_nir.export_to_nir``, read by
    ``edgelearn.interop.from_nir``; the float twin's spikes, and the fixed-point runtime's, are
    compared with snnTorch's (float64) on digits samples (direct input: byte / 256 every step).
    The snnTorch weights are put on the int16 grid edgelearn will store them on first, so what
    is compared is the mapping, not the quantisation.
(b) edgelearn -> NIR -> snnTorch: the zoo's digits-stop model written by
    ``edgelearn.interop.to_nir``, read by ``snntorch.import_nir.import_from_nir``, compared
    with the float twin. snnTorch's reader builds its Leaky neurons with reset_mechanism
    'zero' (NIR's LIF resets *to* v_reset): the spikes are compared as it builds them and again
    with those neurons rebuilt to reset by subtraction, edgelearn's reset.
(c), (d) the same both ways for a small convolutional network on the digits as [1, 8, 8] images:
    Conv2d 3x3 (4 channels, padding 1) -> Leaky -> AvgPool2d 2x2 -> Flatten -> Linear -> Leaky.
    (c) snnTorch builds it with ``torch.nn.Flatten(-3, -1)``: export_to_nir traces the net on one
    sample without a batch dimension (NIR types have none), where the default Flatten (start_dim
    1) would flatten the wrong dimensions, and a sample with a batch dimension makes the Input's
    type [1, 1, 8, 8], which nir's type inference cannot pass to the Conv2d (both probed, their
    errors recorded). (d) edgelearn writes the Flatten NIR's way, start_dim 0 of a [C, H, W]
    value; snnTorch's reader makes it ``torch.nn.Flatten(0, -1)`` as it stands (its writer
    subtracts the batch dimension, its reader does not add it back), which in a batch flattens
    the batch too: the batched run's error is recorded and snnTorch's net is run one sample at a
    time, as it is built.

Why the snnTorch neurons use reset_delay=False: with snnTorch's default (True) the reset of a
spike is subtracted at the next step after the leak, U[t] = b U[t-1] + I[t] - th s[t-1];
edgelearn (STOP) subtracts it before the leak, U[t] = a (U[t-1] - th s[t-1]) + I[t], which is
what reset_delay=False computes. snnTorch fires at U > th, edgelearn at U >= th: a membrane
that lands exactly on its threshold is the one place the two may differ; ties are counted."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import nir
import numpy as np
import snntorch as snn
import torch
from snntorch.export_nir import export_to_nir
from snntorch.import_nir import import_from_nir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from edgelearn import datasets                                   # noqa: E402
from edgelearn import numerics as nx                             # noqa: E402
from edgelearn.executors import make_learner                     # noqa: E402
from edgelearn.interop import from_nir, to_nir                   # noqa: E402
from edgelearn.interop.fixed_point import weight_frac_for        # noqa: E402
from edgelearn.model import (Edge, InputSpec, Layer, Learning, Model, Neuron, Window,   # noqa: E402
                             init_params, mlp)
from edgelearn.modelfile import load_model                       # noqa: E402
from edgelearn.ops import NEURONS                                # noqa: E402

LEAK, THRESHOLD = 0.875, 1.0
RESULTS = ROOT / "bench" / "results"


def leaky(n: int | tuple[int, ...], **kw) -> snn.Leaky:
    # per-neuron beta and threshold: export_to_nir writes scalar ones with shape (), which
    # nir's type check refuses; a conv layer's are [C, H, W], the Conv2d's output type
    shape = (n,) if isinstance(n, int) else tuple(n)
    return snn.Leaky(beta=torch.full(shape, LEAK), threshold=torch.full(shape, THRESHOLD), init_hidden=True,
                     reset_mechanism="subtract", reset_delay=False, **kw)


def snntorch_spikes(net: torch.nn.Module, x: np.ndarray, T: int, shape: tuple[int, ...] | None = None,
                    one_at_a_time: bool = False) -> np.ndarray:
    """Spikes of every Leaky of ``net``, [B, T, neurons] (a [C, H, W] layer's flat in that order, as
    edgelearn's), direct input x / 256 every step, float64; each sample shaped ``shape`` (flat by
    default), the whole batch at once or, ``one_at_a_time``, as batches of one."""
    if one_at_a_time:
        return np.concatenate([snntorch_spikes(net, x[i:i + 1], T, shape) for i in range(len(x))])
    neurons = [m for m in net.modules() if isinstance(m, snn.Leaky)]
    recorded: list[list[torch.Tensor]] = [[] for _ in neurons]
    hooks = [m.register_forward_hook(lambda mod, inp, out, r=r: r.append((out[0] if isinstance(out, tuple) else out)
                                                                           .detach().clone().reshape(len(x), -1)))
             for m, r in zip(neurons, recorded)]
    # snnTorch's spikes are float32 whatever the membrane's type: each Linear / Conv2d reads them in float64
    hooks += [m.register_forward_pre_hook(lambda mod, args: tuple(a.to(mod.weight.dtype) for a in args))
              for m in net.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    for m in neurons:
        m.mem = torch.zeros(0, dtype=torch.float64)       # a new batch: snnTorch re-zeros on a shape change
    current = torch.from_numpy(x.astype(np.float64) / 256)
    if shape is not None:
        current = current.reshape(len(x), *shape)
    try:
        with torch.no_grad():
            for _ in range(T):
                net(current)
    finally:              # a run that fails (error_of) must not leave its hooks on the net
        for h in hooks:
            h.remove()
    return torch.cat([torch.stack(r, dim=1) for r in recorded], dim=2).numpy().astype(np.uint8)


def edgelearn_spikes(model, x: np.ndarray, executor: str) -> np.ndarray:
    """The spikes of the model's spiking layers, [B, T, neurons] (a pool's counts, which the
    raster also holds, are left out: snnTorch's pools are no neurons)."""
    net = make_learner(model.copy(), executor)
    sizes = [layer.size for layer in model.layers]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    columns = np.concatenate([np.arange(starts[i], starts[i + 1]) for i, layer in enumerate(model.layers)
                              if layer.neuron is not None and NEURONS[layer.neuron.kind].spiking])
    return np.stack([net.spike_raster(sample)[:, columns] for sample in x])


def where_they_differ(model, x: np.ndarray) -> dict:
    """The float twin's counts of the two events where snnTorch computes otherwise: a membrane
    on its threshold (edgelearn fires at U >= th, snnTorch at U > th), and a membrane still
    above threshold after its reset (an input of more than twice the threshold: snnTorch's
    reset_delay=False then subtracts the threshold before the step, so it fires only above
    2 th and keeps U when it does not). Of the latter, those whose next step gives
    th <= U <= 2 th, where edgelearn fires and snnTorch does not: where spikes first differ."""
    net = make_learner(model.copy(), "float")
    st, ties, overdriven, diverging = net.init_state(len(x)), 0, 0, 0
    for inp in net.batch_inputs(x):
        before = [v.copy() for v in st["V"]]
        net.forward_step(st, inp, traces=False)
        for l in (l for l in range(len(net.W)) if net.spiking[l]):
            ties += int(np.sum(st["U"][l] == net.th[l]))
            overdriven += int(np.sum(st["V"][l] > net.th[l]))
            diverging += int(np.sum((before[l] > net.th[l]) & (st["U"][l] >= net.th[l])
                                    & (st["U"][l] <= 2 * net.th[l])))
    return {"ties": ties, "membrane_above_threshold_after_reset": overdriven,
            "then_between_one_and_two_thresholds": diverging}


def compare(a: np.ndarray, b: np.ndarray) -> dict:
    return {"spikes_equal": bool(np.array_equal(a, b)), "agreement": float(np.mean(a == b)),
            "differing": int(np.sum(a != b)), "spike_events": int(a.sum()), "rate": float(a.mean())}


IMAGE = (1, 8, 8)     # the digits as images, for the convolutional network


def snntorch_conv_net(flatten: torch.nn.Module | None = None) -> torch.nn.Sequential:
    """Conv2d 3x3 (4 channels, padding 1) -> Leaky -> AvgPool2d 2x2 -> Flatten -> Linear -> Leaky over [1, 8, 8]."""
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1, bias=False), leaky((4, 8, 8)),
                               torch.nn.AvgPool2d(2), flatten or torch.nn.Flatten(-3, -1),
                               torch.nn.Linear(64, 10, bias=False), leaky(10, output=True))


def error_of(call) -> str | None:
    try:
        call()
    except Exception as e:            # what snnTorch / nir raise, recorded as they say it
        return f"{type(e).__name__}: {e}"
    return None


def conv_export_probes() -> dict:
    """How export_to_nir takes the same network with torch's default Flatten (start_dim 1), traced
    on a sample without and with a batch dimension: the errors, if any."""
    return {"Flatten() traced on [1, 8, 8]": error_of(lambda: export_to_nir(snntorch_conv_net(torch.nn.Flatten()),
                                                                            torch.zeros(IMAGE))),
            "Flatten() traced on [1, 1, 8, 8]": error_of(lambda: export_to_nir(snntorch_conv_net(torch.nn.Flatten()),
                                                                               torch.zeros(1, *IMAGE)))}


def snntorch_to_edgelearn(x: np.ndarray, T: int, seed: int, gain: float, conv: bool = False) -> dict:
    torch.manual_seed(seed)
    if conv:
        net, shape, name = snntorch_conv_net(), IMAGE, "snntorch-conv4-avgpool-10"
    else:
        net = torch.nn.Sequential(torch.nn.Linear(64, 128, bias=False), leaky(128),
                                  torch.nn.Linear(128, 10, bias=False), leaky(10, output=True))
        shape, name = None, "snntorch-64-128-10"
    with torch.no_grad():
        for lin in (m for m in net if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))):
            w = lin.weight.double() * gain    # livelier than the default init, and on edgelearn's int16 grid
            frac = weight_frac_for(w.numpy(), "snntorch")
            lin.weight.copy_(torch.round(w * 2 ** frac) / 2 ** frac)
    # one sample, no batch dimension (NIR types have none)
    graph = export_to_nir(net, torch.zeros(shape if shape else (64,)))
    imported = from_nir(graph, T=T, name=name)
    theirs = snntorch_spikes(net.double(), x, T, shape)
    return {"gain": gain, "T": T, "graph_nodes": {k: type(n).__name__ for k, n in graph.nodes.items()},
            "notes": imported.notes,
            "float_twin": compare(edgelearn_spikes(imported.model, x, "float"), theirs),
            "fixed_point": compare(edgelearn_spikes(imported.model, x, "fixed"), theirs),
            "float_twin_events": where_they_differ(imported.model, x)}


QUIET_GAIN = 0.5      # edgelearn's init_params gain (1.5 by default) at which no membrane stays above threshold
CONV_GAIN = 1.0       # (d): the conv model's init_params gain


def quiet_model(T: int):
    return init_params(mlp("digits-64-128-10", [64, 128, 10], learning=Learning(T=T)), weight_gain=QUIET_GAIN)


def rebuilt_with_subtraction(net: torch.nn.Module) -> torch.nn.Module:
    """snnTorch's imported Leaky neurons, rebuilt with reset by subtraction (the rest kept)."""
    for name, mod in list(net.named_children()):
        if isinstance(mod, snn.Leaky):
            setattr(net, name, snn.Leaky(beta=mod.beta.clone(), threshold=mod.threshold.clone(), init_hidden=True,
                                         reset_mechanism="subtract", reset_delay=False).double())
    return net


def conv_model(T: int, gain: float):
    """edgelearn's conv2d 3x3 (4 channels, padding 1) -> avgpool 2x2 -> dense 10, LIF, over [1, 8, 8]."""
    layers = (Layer("conv1", "conv2d", (Edge("input"),), (4, 8, 8), Neuron("lif"), 12, Window((3, 3), (1, 1), (1, 1))),
              Layer("pool1", "avgpool", (Edge("conv1"),), (4, 4, 4), None, 12, Window((2, 2), (2, 2))),
              Layer("readout", "dense", (Edge("pool1"),), (10,), Neuron("lif"), 12))
    return init_params(Model("digits-conv4-avgpool-10", InputSpec(IMAGE), layers, Learning(T=T)), weight_gain=gain)


def edgelearn_to_snntorch(x: np.ndarray, model, label: str) -> dict:
    T = model.learning.T
    graph = nir.NIRGraph.from_dict(to_nir(model).to_dict())      # as a reader of the file sees it
    ours = edgelearn_spikes(model, x, "float")
    net = import_from_nir(graph).double()
    resets = sorted({m.reset_mechanism for m in net.modules() if isinstance(m, snn.Leaky)})
    shape = tuple(model.input.shape) if len(model.input.shape) > 1 else None
    flattens = [(m.start_dim, m.end_dim) for m in net.modules() if isinstance(m, torch.nn.Flatten)]
    extra = {}
    one_at_a_time = False
    if flattens:      # snnTorch builds NIR's Flatten(start_dim 0) as torch's Flatten(0, -1): it takes the batch too
        extra = {"snntorch_flatten_as_imported": flattens,
                 "batch_of_2_as_imported": error_of(lambda: snntorch_spikes(net, x[:2], 1, shape))}
        one_at_a_time = extra["batch_of_2_as_imported"] is not None
        extra["run"] = "one sample at a time" if one_at_a_time else "batched"
    as_imported = compare(ours, snntorch_spikes(net, x, T, shape, one_at_a_time))
    repaired = compare(ours, snntorch_spikes(rebuilt_with_subtraction(net), x, T, shape, one_at_a_time))
    a = model.params[model.layers[0].name].leak / nx.ONE
    return {"model": label, "T": T, "leak": a, "snntorch_reset_as_imported": resets, **extra,
            "graph_nodes": {k: type(n).__name__ for k, n in graph.nodes.items()},
            "as_imported": as_imported, "reset_by_subtraction": repaired, "float_twin_events": where_they_differ(model, x)}


def table(result: dict) -> str:
    a = result["snntorch_to_edgelearn"]
    rows = [(f"(a) snnTorch 64-128-10 (weight gain {a['gain']}) -> NIR -> edgelearn float twin", a["float_twin"],
             a["float_twin_events"]),
            ("(a) the same -> edgelearn fixed point (rounds a V to Q16)", a["fixed_point"], a["float_twin_events"])]
    c = result["snntorch_to_edgelearn_conv"]
    rows += [(f"(c) snnTorch Conv2d-Leaky-AvgPool2d-Flatten-Linear-Leaky (weight gain {c['gain']}) -> NIR -> edgelearn "
              "float twin", c["float_twin"], c["float_twin_events"]),
             ("(c) the same -> edgelearn fixed point", c["fixed_point"], c["float_twin_events"])]
    for b in result["edgelearn_to_snntorch"] + [result["edgelearn_to_snntorch_conv"]]:
        run = f", {b['run']}" if "run" in b else ""
        d = "(d)" if "run" in b else "(b)"
        rows += [(f"{d} {b['model']} -> NIR -> snnTorch as imported (reset {', '.join(b['snntorch_reset_as_imported'])}"
                  f"{run})", b["as_imported"], b["float_twin_events"]),
                 (f"{d} {b['model']} -> NIR -> snnTorch, Leaky rebuilt to reset by subtraction{run}",
                  b["reset_by_subtraction"], b["float_twin_events"])]
    lines = [f"{result['samples']} digits test samples, direct input (byte / 256); spikes of every neuron at every "
             f"step, float64 in both", "",
             "| direction | spikes identical | agreement | differing | spike events | membranes above threshold "
             "after reset | of which next U in [th, 2 th] | on threshold |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {name} | {'yes' if r['spikes_equal'] else 'no'} | {r['agreement']:.6f} | {r['differing']} | "
              f"{r['spike_events']} | {e['membrane_above_threshold_after_reset']} | "
              f"{e['then_between_one_and_two_thresholds']} | {e['ties']} |"
              for name, r, e in rows]
    notes = [f"- (c) export_to_nir of the same net with torch's default `Flatten()`: {k}: "
             + (f"`{v}`" if v else "exported") for k, v in result["conv_export_probes"].items()]
    conv = result["edgelearn_to_snntorch_conv"]
    if "batch_of_2_as_imported" in conv:
        notes.append(f"- (d) snnTorch builds the NIR Flatten as `torch.nn.Flatten{tuple(conv['snntorch_flatten_as_imported'][0])}`;"
                     f" a batch of 2: " + (f"`{conv['batch_of_2_as_imported']}`" if conv["batch_of_2_as_imported"]
                                           else "runs"))
    return "\n".join(lines + [""] + notes) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=450, help="digits test samples (default: all 450)")
    parser.add_argument("--T", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gain", type=float, default=1.0, help="(a), (c): torch's initial weights times this")
    parser.add_argument("--out", default=str(RESULTS / "nir_peers"), help="writes OUT.json and OUT.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    x = datasets.load("digits").x_test[:args.samples]
    result = {"samples": len(x), "T": args.T, "versions": {"torch": torch.__version__, "snntorch": snn.__version__,
                                                           "nir": nir.__version__},
              "snntorch_to_edgelearn": snntorch_to_edgelearn(x, args.T, args.seed, args.gain),
              "edgelearn_to_snntorch": [edgelearn_to_snntorch(x, load_model(ROOT / "models" / "digits-stop.json"),
                                                              "models/digits-stop.json (initial weights)"),
                                        edgelearn_to_snntorch(x, quiet_model(args.T), f"64-128-10 LIF, initial weight "
                                                              f"gain {QUIET_GAIN}, T = {args.T}")],
              "snntorch_to_edgelearn_conv": snntorch_to_edgelearn(x, args.T, args.seed, args.gain, conv=True),
              "conv_export_probes": conv_export_probes(),
              "edgelearn_to_snntorch_conv": edgelearn_to_snntorch(x, conv_model(args.T, CONV_GAIN),
                                                                  f"conv2d 4x3x3 - avgpool 2x2 - 10 LIF over [1, 8, 8], "
                                                                  f"initial weight gain {CONV_GAIN}, T = {args.T}")}
    result["seconds"] = round(time.perf_counter() - start, 1)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(table(result))
    print(table(result), end="")


if __name__ == "__main__":
    main()

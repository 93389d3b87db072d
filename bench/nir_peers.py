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
from edgelearn.model import Learning, init_params, mlp           # noqa: E402
from edgelearn.modelfile import load_model                       # noqa: E402

LEAK, THRESHOLD = 0.875, 1.0
RESULTS = ROOT / "bench" / "results"


def leaky(n: int, **kw) -> snn.Leaky:
    # per-neuron beta and threshold: export_to_nir writes scalar ones with shape (), which
    # nir's type check refuses
    return snn.Leaky(beta=torch.full((n,), LEAK), threshold=torch.full((n,), THRESHOLD), init_hidden=True,
                     reset_mechanism="subtract", reset_delay=False, **kw)


def snntorch_spikes(net: torch.nn.Module, x: np.ndarray, T: int) -> np.ndarray:
    """Spikes of every Leaky of ``net``, [B, T, neurons], direct input x / 256 every step, float64."""
    neurons = [m for m in net.modules() if isinstance(m, snn.Leaky)]
    recorded: list[list[torch.Tensor]] = [[] for _ in neurons]
    hooks = [m.register_forward_hook(lambda mod, inp, out, r=r: r.append((out[0] if isinstance(out, tuple) else out)
                                                                           .detach().clone()))
             for m, r in zip(neurons, recorded)]
    # snnTorch's spikes are float32 whatever the membrane's type: each Linear reads them in float64
    hooks += [m.register_forward_pre_hook(lambda mod, args: tuple(a.to(mod.weight.dtype) for a in args))
              for m in net.modules() if isinstance(m, torch.nn.Linear)]
    for m in neurons:
        m.mem = torch.zeros(0, dtype=torch.float64)       # a new batch: snnTorch re-zeros on a shape change
    current = torch.from_numpy(x.astype(np.float64) / 256)
    with torch.no_grad():
        for _ in range(T):
            net(current)
    for h in hooks:
        h.remove()
    return torch.cat([torch.stack(r, dim=1) for r in recorded], dim=2).numpy().astype(np.uint8)


def edgelearn_spikes(model, x: np.ndarray, executor: str) -> np.ndarray:
    net = make_learner(model.copy(), executor)
    return np.stack([net.spike_raster(sample) for sample in x])


def where_they_differ(model, x: np.ndarray) -> dict:
    """The float twin's counts of the two events where snnTorch computes otherwise: a membrane
    on its threshold (edgelearn fires at U >= th, snnTorch at U > th), and a membrane still
    above threshold after its reset (an input of more than twice the threshold: snnTorch's
    reset_delay=False then subtracts the threshold before the step, so it fires only above
    2 th and keeps U when it does not)."""
    net = make_learner(model.copy(), "float")
    st, ties, overdriven = net.init_state(len(x)), 0, 0
    for inp in net.batch_inputs(x):
        net.forward_step(st, inp, traces=False)
        for l in (l for l in range(len(net.W)) if net.spiking[l]):
            ties += int(np.sum(st["U"][l] == net.th[l]))
            overdriven += int(np.sum(st["V"][l] > net.th[l]))
    return {"ties": ties, "membrane_above_threshold_after_reset": overdriven}


def compare(a: np.ndarray, b: np.ndarray) -> dict:
    return {"spikes_equal": bool(np.array_equal(a, b)), "agreement": float(np.mean(a == b)),
            "differing": int(np.sum(a != b)), "spike_events": int(a.sum()), "rate": float(a.mean())}


def snntorch_to_edgelearn(x: np.ndarray, T: int, seed: int, gain: float) -> dict:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(64, 128, bias=False), leaky(128),
                              torch.nn.Linear(128, 10, bias=False), leaky(10, output=True))
    with torch.no_grad():
        for lin in (net[0], net[2]):      # livelier than the default init, and on edgelearn's int16 grid
            w = lin.weight.double() * gain
            frac = weight_frac_for(w.numpy(), "snntorch")
            lin.weight.copy_(torch.round(w * 2 ** frac) / 2 ** frac)
    graph = export_to_nir(net, torch.zeros(64))     # one sample, no batch dimension (NIR types have none)
    imported = from_nir(graph, T=T, name="snntorch-64-128-10")
    theirs = snntorch_spikes(net.double(), x, T)
    return {"gain": gain, "T": T, "graph_nodes": {k: type(n).__name__ for k, n in graph.nodes.items()},
            "notes": imported.notes,
            "float_twin": compare(edgelearn_spikes(imported.model, x, "float"), theirs),
            "fixed_point": compare(edgelearn_spikes(imported.model, x, "fixed"), theirs),
            "float_twin_events": where_they_differ(imported.model, x)}


QUIET_GAIN = 0.5      # edgelearn's init_params gain (1.5 by default) at which no membrane stays above threshold


def quiet_model(T: int):
    return init_params(mlp("digits-64-128-10", [64, 128, 10], learning=Learning(T=T)), weight_gain=QUIET_GAIN)


def rebuilt_with_subtraction(net: torch.nn.Module) -> torch.nn.Module:
    """snnTorch's imported Leaky neurons, rebuilt with reset by subtraction (the rest kept)."""
    for name, mod in list(net.named_children()):
        if isinstance(mod, snn.Leaky):
            setattr(net, name, snn.Leaky(beta=mod.beta.clone(), threshold=mod.threshold.clone(), init_hidden=True,
                                         reset_mechanism="subtract", reset_delay=False).double())
    return net


def edgelearn_to_snntorch(x: np.ndarray, model, label: str) -> dict:
    T = model.learning.T
    graph = nir.NIRGraph.from_dict(to_nir(model).to_dict())      # as a reader of the file sees it
    ours = edgelearn_spikes(model, x, "float")
    net = import_from_nir(graph).double()
    resets = sorted({m.reset_mechanism for m in net.modules() if isinstance(m, snn.Leaky)})
    as_imported = compare(ours, snntorch_spikes(net, x, T))
    repaired = compare(ours, snntorch_spikes(rebuilt_with_subtraction(net), x, T))
    a = model.params[model.layers[0].name].leak / nx.ONE
    return {"model": label, "T": T, "leak": a, "snntorch_reset_as_imported": resets,
            "as_imported": as_imported, "reset_by_subtraction": repaired, "float_twin_events": where_they_differ(model, x)}


def table(result: dict) -> str:
    a = result["snntorch_to_edgelearn"]
    rows = [(f"(a) snnTorch 64-128-10 (weight gain {a['gain']}) -> NIR -> edgelearn float twin", a["float_twin"],
             a["float_twin_events"]),
            ("(a) the same -> edgelearn fixed point (rounds a V to Q16)", a["fixed_point"], a["float_twin_events"])]
    for b in result["edgelearn_to_snntorch"]:
        rows += [(f"(b) {b['model']} -> NIR -> snnTorch as imported (reset {', '.join(b['snntorch_reset_as_imported'])})",
                  b["as_imported"], b["float_twin_events"]),
                 (f"(b) {b['model']} -> NIR -> snnTorch, Leaky rebuilt to reset by subtraction",
                  b["reset_by_subtraction"], b["float_twin_events"])]
    lines = [f"{result['samples']} digits test samples, direct input (byte / 256); spikes of every neuron at every "
             f"step, float64 in both", "",
             "| direction | spikes identical | agreement | differing | spike events | membranes above threshold "
             "after reset | on threshold |", "|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {name} | {'yes' if r['spikes_equal'] else 'no'} | {r['agreement']:.6f} | {r['differing']} | "
              f"{r['spike_events']} | {e['membrane_above_threshold_after_reset']} | {e['ties']} |"
              for name, r, e in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=450, help="digits test samples (default: all 450)")
    parser.add_argument("--T", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gain", type=float, default=1.0, help="(a): torch's initial weights times this")
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
                                                              f"gain {QUIET_GAIN}, T = {args.T}")]}
    result["seconds"] = round(time.perf_counter() - start, 1)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(table(result))
    print(table(result), end="")


if __name__ == "__main__":
    main()

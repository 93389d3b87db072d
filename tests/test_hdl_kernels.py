"""The RTL's kernels replay the per-kernel golden vectors (tests/golden/kernels) bit for bit in
iverilog: the primitives through el_primitives_tb.v, every STOP kernel through the datapath
(el_datapath_tb.v), fed one element per cycle in the kernel's loop order, so the learning
stream's state after a case checks the number and order of the draws (docs/numerics.md §7).
Also: the RTL is accepted by iverilog and by verilator's lint, and the generated header of
contract constants is fresh. The simulators are installed by `make test` (the Makefile's
tools): without them these tests fail, they do not skip."""
import json
import subprocess
from pathlib import Path

import pytest

from edgelearn.hdl import contract, generate
from edgelearn.hdl.sim import RTL_DIR, Element, require, rtl_sources, run_datapath, run_primitives
from edgelearn.hdl.synth import BOARDS_DIR
from edgelearn.modelfile import load_model
from edgelearn.resources import MODELS

GOLDEN = Path(__file__).parent / "golden" / "kernels"


def golden(op: str) -> dict:
    return json.loads((GOLDEN / f"{op}.json").read_text())


def rows(matrix, block):
    """The rows of a golden matrix as the kernel sees them: the block's columns, with their offset."""
    col, cols = block if block else (0, len(matrix[0]) if matrix else 0)
    return [row[col:col + cols] for row in matrix], col


# -- the primitives ---------------------------------------------------------------------------

def primitive_calls(op: str, case: dict):
    i = case["inputs"]
    operands = {"round_shift": ("x", "s"), "stochastic_shift": ("p", "s", "rng"), "rng_next": ("rng",),
                "sat_sum": ("acc", "p"), "surrogate": ("x", "k")}[op]
    values = [i[name] for name in operands]
    return (op, *values, *[0] * (3 - len(values)))


def primitive_outputs(op: str, got: list[int]) -> dict:
    def s64(v):
        return v - (1 << 64) if v >> 63 else v
    if op == "stochastic_shift":
        return {"return": s64(got[0]), "rng": got[1]}
    if op == "rng_next":
        return {"return": got[0], "rng": got[0]}
    return {"return": s64(got[0])}


# -- the kernels, as loops of datapath elements ------------------------------------------------

def current_elements(W, x, shift):
    """dense_current's loop: per row, a chain of sum elements over the non-zero inputs, then the
    current (read at the lif element's current output); the row's elements carry its shift."""
    out = []
    for row in W:
        terms = [Element("sum", chain=int(bool(out_row)), w=row[i], x=x[i], current_shift=shift)
                 for out_row, i in enumerate(i for i in range(len(x)) if x[i] != 0)]
        out += terms + [Element("lif", chain=int(bool(terms)), current_shift=shift)]
    return out


def replay_kernel(op: str, case: dict) -> dict:
    i, block = case["inputs"], case.get("block", {})
    if op in ("lif_step", "li_step"):
        cur = i["cur"]
        kind = "lif" if op == "lif_step" else "li"
        res, _ = run_datapath([Element(kind, g=cur[j], a=i["a"], v=i["V"][j], th=i.get("th", [0] * len(cur))[j],
                                       reset_shift=i.get("reset_shift", 0)) for j in range(len(cur))])
        if kind == "li":
            return {"V": [r.value for r in res], "U": [r.value for r in res]}
        return {"V": [r.value for r in res], "s": [r.spike for r in res], "U": [r.potential for r in res]}
    if op == "current_from_sums":          # each sum as a chain of one term, then its current
        elements = []
        for v in i["sums"]:
            shift = i["w_frac"] + i["x_frac"] - 16
            elements += [Element("sum", g=v, current_shift=shift), Element("lif", chain=1, current_shift=shift)]
        res, _ = run_datapath(elements)
        return {"cur": [r.current for r in res[1::2]]}
    if op in ("dense_current", "spike_current"):
        W, _ = rows(i["W"], block.get("W"))
        x = i["x"] if op == "dense_current" else i["s"]
        x_frac = i["x_frac"] if op == "dense_current" else 0
        res, _ = run_datapath(current_elements(W, x, i["w_frac"] + x_frac - 16))
        return {"cur": [r.current for r, e in zip(res, current_elements(W, x, 0)) if e.kind == "lif"]}
    if op == "dense_sums":
        W, _ = rows(i["W"], block.get("W"))
        listed = i["nonzero"][:i["n"]]
        elements = []
        for row in W:
            terms = [Element("sum", chain=int(n > 0), w=row[m], x=i["x"][m]) for n, m in enumerate(listed)]
            elements += terms + [Element("sum_store", chain=int(bool(terms)))]
        res, _ = run_datapath(elements)
        return {"sums": [r.value for r, e in zip(res, elements) if e.kind == "sum_store"]}
    if op == "input_trace_step":
        res, _ = run_datapath([Element("input_trace", a=i["a"], trace=t, x=x, lift=16 - i["x_frac"])
                               for x, t in zip(i["x"], i["x_tr"])])
        return {"x_tr": [r.value for r in res]}
    if op == "neuron_trace_step":
        elements = []
        for j in range(len(i["V"])):
            elements += [Element("threshold_trace", a=i["a"], trace=i["th_tr"][j], s=i["s"][j]),
                         Element("leak_trace", a=i["a"], trace=i["a_tr"][j], v=i["V"][j])]
        res, _ = run_datapath(elements)
        return {"th_tr": [r.value for r in res[0::2]], "a_tr": [r.value for r in res[1::2]]}
    if op == "spiking_output_error":
        res, _ = run_datapath([Element("spike_error", s=s, u=u, th=th, target=int(j == i["label"]), k=i["k"])
                               for j, (s, u, th) in enumerate(zip(i["s"], i["U"], i["th"]))])
        return {"d": [r.value for r in res]}
    if op == "li_output_error":
        res, _ = run_datapath([Element("li_error", u=u, target=int(j == i["label"])) for j, u in enumerate(i["U"])])
        return {"d": [r.value for r in res]}
    if op == "hidden_error":
        W_up, d_up = i["W_up"], i["d_up"]
        gates = []
        for j in range(len(i["U"])):
            terms = [Element("back_sum", chain=int(bool(n)), w=W_up[m][j], d=d_up[m])
                     for n, m in enumerate(m for m in range(len(d_up)) if d_up[m] != 0)]
            gates += terms + [Element("back_gate", chain=int(bool(terms)), gate_shift=i["w_frac"])]
        res, _ = run_datapath(gates)
        g = [r.value for r, e in zip(res, gates) if e.kind == "back_gate"]
        res, _ = run_datapath([Element("hidden_error", d=g[j], u=i["U"][j], th=i["th"][j], k=i["k"])
                               for j in range(len(g))])
        return {"d": [r.value for r in res]}
    if op == "update_weights":
        W, col = rows(i["W"], block.get("W"))
        where, elements = [], []
        for j, dj in enumerate(i["d"]):
            for n, xt in enumerate(i["x_tr"]):
                if dj != 0 and xt != 0:
                    where.append((j, col + n))
                    elements.append(Element("update_weight", w=W[j][n], d=dj, trace=xt, weight_shift=i["shift"]))
        res, rng = run_datapath(elements, rng=i["rng"])
        out = [row[:] for row in i["W"]]
        for (j, c), r in zip(where, res):
            out[j][c] = r.value
        return {"W": out, "rng": rng}
    if op == "threshold_grads":
        g = i["g"][:]
        where = [j for j, dj in enumerate(i["d"]) if dj != 0]
        res, _ = run_datapath([Element("threshold_grad", g=g[j], d=i["d"][j], trace=i["th_tr"][j]) for j in where])
        for j, r in zip(where, res):
            g[j] = r.value
        return {"g": g}
    if op == "apply_threshold_grads":
        th = i["th"][:]
        where = [j for j, g in enumerate(i["g"]) if g != 0]
        res, rng = run_datapath([Element("apply_threshold", th=th[j], g=i["g"][j], threshold_shift=i["shift"],
                                         floor=i["floor"]) for j in where], rng=i["rng"])
        for j, r in zip(where, res):
            th[j] = r.value
        return {"th": th, "g": [0] * len(th), "rng": rng}
    if op == "leak_grad":
        where = [j for j, dj in enumerate(i["d"]) if dj != 0]
        res, _ = run_datapath([Element("leak_grad", chain=int(n > 0), d=i["d"][j], trace=i["a_tr"][j])
                               for n, j in enumerate(where)])
        return {"return": res[-1].value if res else 0}
    if op == "apply_leak_grad":
        res, rng = run_datapath([Element("apply_leak", a=i["a"], g=i["g"], leak_shift=i["shift"])], rng=i["rng"])
        return {"return": res[0].value, "rng": rng}
    raise AssertionError(f"no HDL replay for {op}")


PRIMITIVES = ("round_shift", "stochastic_shift", "rng_next", "sat_sum", "surrogate")
KERNELS = ("lif_step", "li_step", "current_from_sums", "dense_current", "spike_current", "dense_sums",
           "input_trace_step", "neuron_trace_step", "spiking_output_error", "li_output_error", "hidden_error",
           "update_weights", "threshold_grads", "apply_threshold_grads", "leak_grad", "apply_leak_grad")
# Golden files the RTL does not replay, and why; a new kernel is replayed or excluded here by name
# or by the rules of `excluded`
NOT_IN_HDL = {
    "encode_step": "the core reads direct input only: the sample's bytes are x (rate and event coding are refused)",
    "nonzero_index": "the core lists non-zero entries as it writes them; checked by the whole-model tests",
    "accumulate_weight_grads": "per-sample and batch updates are refused: a weight-gradient buffer does not fit",
    "apply_weight_grads": "per-sample and batch updates are refused (as accumulate_weight_grads)",
    "top2_gap": "the cutoff (anytime inference) is not in the RTL",
    "threshold_step": "the threshold neuron (psn layers') is not in the RTL (lif, if and li only)",
    **{op: "the core stores int16 weights only (the hdl executor refuses an int8 model)"
       for op in ("dense_current_int8", "dense_sums_int8", "update_weights_int8", "apply_weight_grads_int8")},
}


def excluded(doc: dict) -> str | None:
    """Why the RTL does not replay a golden file (None: it must)."""
    if doc["python"].startswith("edgelearn.rules.spide."):
        return "SPIDE is not in the RTL (STOP only)"
    module = doc["python"].rpartition(".")[0]
    if module.startswith("edgelearn.ops.layers.") and module != "edgelearn.ops.layers.dense":
        return f"layer kind {module.rpartition('.')[2]!r} is not in the RTL (dense only)"
    if "§5c" in doc["contract"]:
        return "a layer kind's backward kernels (§5c): the RTL's dense layers run hidden_error's elements"
    return NOT_IN_HDL.get(doc["op"])


def test_every_golden_file_is_replayed_or_excluded_with_a_reason():
    unplaced = [p.stem for p in GOLDEN.glob("*.json")
                if p.stem not in PRIMITIVES + KERNELS and excluded(golden(p.stem)) is None]
    assert not unplaced, f"golden files neither replayed by the RTL nor excluded with a reason: {unplaced}"


@pytest.mark.parametrize("op", PRIMITIVES)
def test_primitive_replays_golden_vectors(op):
    doc = golden(op)
    got = run_primitives([primitive_calls(op, case) for case in doc["cases"]])
    failures = [f"{case['name']}: want {case['outputs']} got {primitive_outputs(op, g)}"
                for case, g in zip(doc["cases"], got) if primitive_outputs(op, g) != case["outputs"]]
    assert len(got) == len(doc["cases"]) and not failures, "\n".join(failures)


@pytest.mark.parametrize("op", KERNELS)
def test_kernel_replays_golden_vectors(op):
    failures = []
    for case in golden(op)["cases"]:
        got = replay_kernel(op, case)
        want = case["outputs"]
        assert set(got) == set(want), (op, sorted(got), sorted(want))
        if got != want:
            diff = "; ".join(f"{k}: want {want[k]} got {got[k]}" for k in want if want[k] != got[k])
            failures.append(f"  {case['name']}: {diff}")
    assert not failures, f"{op} in the RTL:\n" + "\n".join(failures)


def test_contract_header_is_fresh():
    assert contract.HEADER.read_text() == contract.header(), "run python -m edgelearn.hdl.contract"


def test_rtl_is_accepted_by_iverilog_and_verilator_lint(tmp_path):
    """Every module compiles in iverilog; verilator's lint passes the digits model's core (its
    default warnings, widths among them) and the datapath with -Wall."""
    generate.write(load_model(MODELS / "digits-stop.json"), tmp_path)
    sources = [str(p) for p in rtl_sources()]
    iverilog = subprocess.run([require("iverilog"), "-g2012", f"-I{RTL_DIR}", "-o", "/dev/null", *sources],
                              capture_output=True, text=True)
    assert iverilog.returncode == 0, iverilog.stderr
    for top, flags, extra in (("el_datapath", ["-Wall"], []),
                              ("el_serial", [], [str(tmp_path / "el_model.v"), str(BOARDS_DIR / "el_serial.v")])):
        lint = subprocess.run([require("verilator"), "--lint-only", *flags, f"-I{RTL_DIR}", "--top-module", top,
                               *extra, *sources], capture_output=True, text=True)
        assert lint.returncode == 0, f"{top}:\n{lint.stderr}"

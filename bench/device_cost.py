"""Device cost: deterministic instruction counts of the C runtime on the emulated cores.

Each digits model runs on QEMU mps2-an386 (Cortex-M4F) and mps2-an500 (Cortex-M7) under
``-icount shift=7``: every instruction advances virtual time by 2**7 = 128 ns, and SysTick on
the 25 MHz core clock counts 128 / 40 = 3.2 ticks per instruction, so instructions =
ticks * 40 / 128. The firmware (targets/boards/mps2/runtime.c) reads SysTick around each
``el_run_sample`` (plus ``el_apply_accumulated`` for an update-"sample" model); the cost of
reading the clock is subtracted. The same run at shift=6 must give the same counts (a check
that the counts are instructions, not host time). QEMU counts instructions, not cycles.

Training samples are the first N of the digits training split, learned online in order;
inference samples the first M of the test split after that training. The final parameters
are compared bit for bit with the host's C runtime (the "c" executor).

A synaptic operation (SOP) is one weight of one dense layer in one forward time step:
T * (number of weights) per sample, spiking or not.

Anytime inference (the Top-K cutoff, docs/numerics.md §6b): digits-stop learned online on the
host (fixed executor, --cutoff-epochs over the digits training split), its margins calibrated
on that split for --tolerance (edgelearn.cutoff.calibrate_model), then every test sample
inferred on each core twice, for all T steps and with the cutoff (runtime.c's cutoff flag:
el_set_cutoff outside the timed call). Predictions and steps are checked against both host
executors (fixed, c); the instructions per inference are fitted as a + b * steps.

    .venv/bin/python bench/device_cost.py [--train 100] [--infer 100] [--tolerance 0.01] [--cutoff-only]
writes bench/results/device_cost.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgelearn.executors import make_learner  # noqa: E402
from edgelearn.datasets import load_digits  # noqa: E402
from edgelearn.modelblob import to_blob  # noqa: E402
from edgelearn.modelfile import load_model  # noqa: E402
from firmware_host import qemu  # noqa: E402

MODELS = ("models/digits-stop.json", "models/digits-spide.json")
CUTOFF_MODEL = "models/digits-stop.json"
SHIFT = 7


def host_reference(model, x, y, n_train):
    """The host's C runtime fed the same stream: final blob."""
    ref = make_learner(model, "c")
    for i in range(len(x)):
        learn = i < n_train
        ref.run(x[i:i + 1], y[i:i + 1] if learn else None, learn)
    return ref.blob()


def measure(model_path: str, board: str, ds, n_train: int, n_infer: int) -> dict:
    model = load_model(ROOT / model_path)
    blob = to_blob(model)
    x = np.concatenate([ds.x_train[:n_train], ds.x_test[:n_infer]])
    y = np.concatenate([ds.y_train[:n_train], ds.y_test[:n_infer]])
    learn = np.arange(len(x)) < n_train
    t0 = time.perf_counter()
    out = qemu.run_runtime(blob, x, y, learn, board=board, icount=SHIFT)
    wall = time.perf_counter() - t0
    if out["exit"] != 0 or out["status"].any():
        raise RuntimeError(f"{model_path} on {board}: exit {out['exit']}, statuses {set(out['status'].tolist())}")
    check = qemu.run_runtime(blob, x[:3], y[:3], learn[:3], board=board, icount=SHIFT - 1)
    ticks = out["ticks"].astype(np.int64) - out["tick_overhead"]
    insns = qemu.ticks_to_instructions(ticks, SHIFT)
    check_insns = qemu.ticks_to_instructions(check["ticks"].astype(np.int64) - check["tick_overhead"], SHIFT - 1)
    agree = float(np.max(np.abs(check_insns - insns[:3]) / insns[:3]))
    train, infer = insns[:n_train], insns[n_train:]
    synapses = sum(int(p.weight.size) for p in model.params.values())
    T = int(model.learning.T)
    sops = T * synapses
    elf = qemu.runtime_firmware((len(blob) + 7) // 8 * 8, out["arena_bytes"], board)
    size = qemu.firmware_size(elf)
    acc = float(np.mean(out["prediction"][n_train:] == ds.y_test[:n_infer])) if n_infer else None
    return {
        "model": model_path, "board": board, "core": qemu.board_memory(board)["core"],
        "rule": model.learning.rule, "T": T, "synapses": synapses, "sops_per_sample": sops,
        "blob_bytes": len(blob), "arena_bytes": out["arena_bytes"],
        "firmware": size, "sram_used": size["data"] + size["bss"],
        "train_samples": n_train, "infer_samples": n_infer,
        "train_instructions": {"mean": float(train.mean()), "min": float(train.min()), "max": float(train.max())},
        "infer_instructions": {"mean": float(infer.mean()), "min": float(infer.min()), "max": float(infer.max())},
        "train_instructions_per_sop": float(train.mean() / sops),
        "infer_instructions_per_sop": float(infer.mean() / sops),
        "shift6_vs_shift7_max_rel_diff": agree,
        "accuracy_after_training": acc,
        "bit_exact_with_host": out["blob"] == host_reference(model, x, y, n_train),
        "wall_seconds": wall,
    }


def calibrated_model(ds, epochs: int, tolerance: float):
    """digits-stop learned online on the host (fixed executor), margins calibrated on the
    training split for ``tolerance``."""
    model = load_model(ROOT / CUTOFF_MODEL)
    learner = make_learner(model, "fixed")
    for _ in range(epochs):
        for i in range(len(ds.x_train)):
            learner.run(ds.x_train[i:i + 1], ds.y_train[i:i + 1], True)
    from edgelearn.cutoff import calibrate_model
    return calibrate_model(learner.to_model(), ds.x_train, ds.y_train, tolerance, progress=False)


def measure_cutoff(model, board: str, ds, n_infer: int) -> dict:
    """Instructions per inference on ``board`` for all T steps and with the cutoff, the same
    test samples (direct encoding: each inference starts from the zero state)."""
    blob = to_blob(model)
    x, y = ds.x_test[:n_infer], ds.y_test[:n_infer]
    T = int(model.learning.T)
    runs = {}
    for name, cut in (("full", False), ("cutoff", True)):
        out = qemu.run_runtime(blob, x, np.zeros(len(x), dtype=int), False, cutoff=cut, board=board, icount=SHIFT)
        if out["exit"] != 0 or out["status"].any():
            raise RuntimeError(f"cutoff={cut} on {board}: exit {out['exit']}, statuses {set(out['status'].tolist())}")
        runs[name] = out
    host = {ex: make_learner(model, ex).infer(x, cutoff=True) for ex in ("fixed", "c")}
    host_full = make_learner(model, "c").infer(x, cutoff=False)[0].argmax(1)
    steps = runs["cutoff"]["steps"].astype(np.int64)
    bit_exact = (all(np.array_equal(runs["cutoff"]["prediction"], s.argmax(1)) and np.array_equal(steps, st)
                     for s, st in host.values())
                 and np.array_equal(runs["full"]["prediction"], host_full)
                 and bool((runs["full"]["steps"] == T).all()))
    insns = {k: qemu.ticks_to_instructions(r["ticks"].astype(np.int64) - r["tick_overhead"], SHIFT)
             for k, r in runs.items()}
    per_step, fixed = np.polyfit(steps, insns["cutoff"], 1)
    resid = insns["cutoff"] - (per_step * steps + fixed)
    mean_full, mean_cut = float(insns["full"].mean()), float(insns["cutoff"].mean())
    saved_steps = 1 - float(steps.mean()) / T
    saved_insns = 1 - mean_cut / mean_full
    by_steps = {int(s): {"samples": int(np.sum(steps == s)), "mean_instructions": float(insns["cutoff"][steps == s].mean())}
                for s in np.unique(steps)}
    return {
        "model": CUTOFF_MODEL, "board": board, "core": qemu.board_memory(board)["core"], "T": T,
        "tolerance": model.cutoff.tolerance,
        "margins": [None if m >= 2 ** 63 - 1 else int(m) for m in model.cutoff.margins],
        "infer_samples": len(x),
        "accuracy_full": float(np.mean(runs["full"]["prediction"] == y)),
        "accuracy_cutoff": float(np.mean(runs["cutoff"]["prediction"] == y)),
        "mean_steps": float(steps.mean()), "steps_saved": saved_steps,
        "steps_histogram": np.bincount(steps - 1, minlength=T).tolist(),
        "infer_instructions_full": mean_full, "infer_instructions_cutoff": mean_cut,
        "instructions_saved": saved_insns, "saved_ratio": saved_insns / saved_steps if saved_steps else None,
        "instructions_per_step": float(per_step), "instructions_fixed_per_inference": float(fixed),
        "fit_r2": float(1 - np.sum(resid ** 2) / np.sum((insns["cutoff"] - mean_cut) ** 2)),
        "full_instructions_per_step": mean_full / T,
        "by_steps": by_steps,
        "bit_exact_with_host": bool(bit_exact),
    }


def cutoff_lines(rows: list[dict], args) -> list[str]:
    if not rows:
        return []
    r0 = rows[0]
    lines = [
        "",
        "## Anytime inference: the Top-K cutoff",
        "",
        f"{Path(r0['model']).stem} (T = {r0['T']}) learned online on the host for {args.cutoff_epochs} epochs of the "
        f"digits training split (fixed executor), margins calibrated on that split for tolerance {r0['tolerance']} "
        f"(`edgelearn.cutoff`; margins {r0['margins']}, null: never stop there). The {r0['infer_samples']} test "
        "samples inferred on each core for all T steps, then with the cutoff; predictions and steps equal both host "
        "executors' (`fixed`, `c`). Instructions per inference fitted as a + b x steps over the cutoff run "
        "(R²: the share of their variance the steps explain; the rest is spike activity, the dense layers "
        "being event-driven).",
        "",
        "| board (core) | accuracy, all T / cutoff | mean steps | steps saved | insn/inference, all T | with cutoff "
        "| insn saved | insn per step (fit) | fixed insn per inference (fit) | fit R² | bit-exact |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['board']} ({r['core']}) | {r['accuracy_full']:.2%} / {r['accuracy_cutoff']:.2%} | "
            f"{r['mean_steps']:.2f} of {r['T']} | {r['steps_saved']:.1%} | {r['infer_instructions_full']:,.0f} | "
            f"{r['infer_instructions_cutoff']:,.0f} | {r['instructions_saved']:.1%} | {r['instructions_per_step']:,.0f} | "
            f"{r['instructions_fixed_per_inference']:,.0f} | {r['fit_r2']:.3f} | "
            f"{'yes' if r['bit_exact_with_host'] else 'NO'} |")
    lines += ["", "Instructions per inference by the steps it ran (cutoff run):", "",
              "| steps | " + " | ".join(f"{r['board']}: samples, mean insn" for r in rows) + " |",
              "|---:|" + "---:|" * len(rows)]
    for s in range(1, r0["T"] + 1):
        cells = []
        for r in rows:
            b = r["by_steps"].get(s)
            cells.append(f"{b['samples']}, {b['mean_instructions']:,.0f}" if b else "0, -")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=int, default=100)
    ap.add_argument("--infer", type=int, default=100)
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--boards", nargs="+", default=list(qemu.JOB_ADDR))   # the boards with room for a preloaded job
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "device_cost"))
    ap.add_argument("--tolerance", type=float, default=0.01, help="the cutoff's calibration tolerance")
    ap.add_argument("--cutoff-epochs", type=int, default=2, help="epochs of host learning before calibrating")
    ap.add_argument("--cutoff-infer", type=int, default=450, help="test samples inferred with and without the cutoff")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--no-cutoff", action="store_true", help="skip the cutoff measurement")
    group.add_argument("--cutoff-only", action="store_true", help="only the cutoff measurement")
    args = ap.parse_args(argv)
    ds = load_digits()
    rows = []
    for m in ([] if args.cutoff_only else args.models):
        for b in args.boards:
            r = measure(m, b, ds, args.train, args.infer)
            rows.append(r)
            print(f"{m} on {b}: train {r['train_instructions']['mean']:.0f} insn/sample, "
                  f"infer {r['infer_instructions']['mean']:.0f} insn/sample, bit-exact {r['bit_exact_with_host']}")
    cutoff_rows = []
    if not args.no_cutoff:
        model = calibrated_model(ds, args.cutoff_epochs, args.tolerance)
        for b in args.boards:
            r = measure_cutoff(model, b, ds, args.cutoff_infer)
            cutoff_rows.append(r)
            print(f"cutoff on {b}: {r['mean_steps']:.2f} of {r['T']} steps ({r['steps_saved']:.1%} saved), "
                  f"{r['infer_instructions_full']:.0f} -> {r['infer_instructions_cutoff']:.0f} insn/inference "
                  f"({r['instructions_saved']:.1%} saved), accuracy {r['accuracy_full']:.2%} -> "
                  f"{r['accuracy_cutoff']:.2%}, bit-exact {r['bit_exact_with_host']}")
    qemu_version = subprocess.run([qemu.qemu_binary(), "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    gcc_version = subprocess.run([qemu.cross_compiler(), "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    result = {"icount_shift": SHIFT, "qemu": qemu_version, "cc": gcc_version, "cflags": list(qemu.CFLAGS),
              "host": platform.platform(), "results": rows, "cutoff": cutoff_rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        "# Device cost: instructions per sample on the emulated cores",
        "",
        f"QEMU `-icount shift={SHIFT}` + SysTick (deterministic; instructions, not cycles). {qemu_version}; "
        f"{gcc_version}, `{' '.join(qemu.CFLAGS)}`. Training: the first {args.train} digits training samples "
        f"online; inference: the first {args.infer} test samples afterwards. SOP = one weight in one forward "
        "step (T x weights per sample). Written by `bench/device_cost.py`.",
        "",
        "| model | board (core) | T | weights | train insn/sample | infer insn/sample | train insn/SOP | infer insn/SOP | SRAM used | bit-exact |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {Path(r['model']).stem} | {r['board']} ({r['core']}) | {r['T']} | {r['synapses']} | "
            f"{r['train_instructions']['mean']:,.0f} | {r['infer_instructions']['mean']:,.0f} | "
            f"{r['train_instructions_per_sop']:.2f} | {r['infer_instructions_per_sop']:.2f} | "
            f"{r['sram_used']:,} B | {'yes' if r['bit_exact_with_host'] else 'NO'} |")
    if not rows:                               # --cutoff-only: the header without the training run's details
        lines = lines[:2] + [f"QEMU `-icount shift={SHIFT}` + SysTick (deterministic; instructions, not cycles). "
                             f"{qemu_version}; {gcc_version}. Written by `bench/device_cost.py --cutoff-only`."]
    lines += cutoff_lines(cutoff_rows, args)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0 if all(r["bit_exact_with_host"] for r in rows + cutoff_rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())

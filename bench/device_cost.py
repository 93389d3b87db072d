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

    .venv/bin/python bench/device_cost.py [--train 100] [--infer 100]
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=int, default=100)
    ap.add_argument("--infer", type=int, default=100)
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--boards", nargs="+", default=list(qemu.BOARDS))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "device_cost"))
    args = ap.parse_args(argv)
    ds = load_digits()
    rows = []
    for m in args.models:
        for b in args.boards:
            r = measure(m, b, ds, args.train, args.infer)
            rows.append(r)
            print(f"{m} on {b}: train {r['train_instructions']['mean']:.0f} insn/sample, "
                  f"infer {r['infer_instructions']['mean']:.0f} insn/sample, bit-exact {r['bit_exact_with_host']}")
    qemu_version = subprocess.run([qemu.qemu_binary(), "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    gcc_version = subprocess.run([qemu.cross_compiler(), "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    result = {"icount_shift": SHIFT, "qemu": qemu_version, "cc": gcc_version, "cflags": list(qemu.CFLAGS),
              "host": platform.platform(), "results": rows}
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
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0 if all(r["bit_exact_with_host"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""The executors side by side: seconds per sample of online learning and of inference for
``float``, ``fixed`` and ``c`` (edgelearn.executors), each in a fresh process, interleaved
round after round with the order rotating (the machines are shared and noisy). With
``--tree PATH`` the fixed and float executors of another checkout of edgelearn run in the
same rounds (e.g. a commit before a change: ``git worktree add /tmp/old <commit>``), through
``edgelearn.train.make_learner``, which every version has. Writes
bench/results/executors.{json,md}.

    make bench-executors           # .venv/bin/python bench/executors.py
    .venv/bin/python bench/executors.py --tree /tmp/old --rounds 5
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TASKS = {"mnist-stop": "mnist", "digits-spide": "digits"}          # model of the zoo -> its data


def worker(tree: str, executor: str, model_name: str, samples: int) -> dict:
    """Time one executor in this process: ``samples`` online learning steps, then as many
    inferences, after one warm-up sample (numba and cffi load or compile first)."""
    sys.path.insert(0, tree)
    from edgelearn import datasets
    from edgelearn.modelfile import load_model
    from edgelearn.train import make_learner

    data = datasets.load(TASKS[model_name])
    net = make_learner(load_model(Path(tree) / "models" / f"{model_name}.json"), executor)
    x, y = data.x_train, data.y_train
    net.run(x[:1], y[:1], learn=True)
    out = {}
    for phase, learn in (("train", True), ("infer", False)):
        before = int(net.rng_learn[0]) if hasattr(net, "rng_learn") else None
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(1, samples + 1):
            net.run(x[i:i + 1], y[i:i + 1] if learn else None, learn=learn)
        out[phase] = {"seconds_per_sample": (time.perf_counter() - wall) / samples,
                      "cpu_seconds_per_sample": (time.process_time() - cpu) / samples}
        if learn and before is not None:     # the contract's stochastic-rounding draws, counted afterwards
            out[phase]["draws_per_sample"] = draws_between(before, int(net.rng_learn[0])) / samples
    return out


def draws_between(start: int, end: int) -> int:
    """xorshift32 steps from one learning-stream state to another (docs/numerics.md §3)."""
    from numba import njit

    @njit
    def steps(x, end):
        n = 0
        while x != end:
            x ^= (x << 13) & 0xFFFFFFFF
            x ^= x >> 17
            x ^= (x << 5) & 0xFFFFFFFF
            n += 1
        return n
    return int(steps(start, end))


def measure(tree: str, executor: str, model_name: str, samples: int) -> dict:
    env = {**os.environ, "EDGELEARN_DATA": os.environ.get("EDGELEARN_DATA", str(ROOT.parent / "shared" / "data"))}
    run = subprocess.run([sys.executable, __file__, "--worker", tree, executor, model_name, str(samples)],
                         capture_output=True, text=True, env=env)
    if run.returncode != 0:
        raise SystemExit(f"{executor} of {tree} on {model_name} failed:\n{run.stderr}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", nargs=4, metavar=("TREE", "EXECUTOR", "MODEL", "SAMPLES"), help=argparse.SUPPRESS)
    p.add_argument("--tree", help="another checkout whose fixed and float executors run in the same rounds")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--samples", type=int, default=300, help="samples per measurement (each phase)")
    p.add_argument("--executors", nargs="+", default=["fixed", "c", "float"])
    p.add_argument("--models", nargs="+", default=list(TASKS), choices=list(TASKS))
    args = p.parse_args()
    if args.worker:
        tree, executor, model_name, samples = args.worker
        print(json.dumps(worker(tree, executor, model_name, int(samples))))
        return
    contenders = [(str(ROOT), e, e) for e in args.executors]
    if args.tree:
        old = str(Path(args.tree).resolve())
        contenders += [(old, e, f"{e} ({Path(old).name})") for e in ("fixed", "float") if e in args.executors]
    times = {(m, label): {"train": [], "infer": []} for m in args.models for _, _, label in contenders}
    cpu = {key: {"train": [], "infer": []} for key in times}
    draws = {key: [] for key in times}
    for r in range(args.rounds):
        order = contenders[r % len(contenders):] + contenders[:r % len(contenders)]
        for model_name in args.models:
            for tree, executor, label in order:
                got = measure(tree, executor, model_name, args.samples)
                print(f"round {r + 1}/{args.rounds} {model_name} {label}: "
                      f"train {1e3 * got['train']['seconds_per_sample']:.3f} ms, "
                      f"infer {1e3 * got['infer']['seconds_per_sample']:.3f} ms", flush=True)
                for phase in ("train", "infer"):
                    times[model_name, label][phase].append(got[phase]["seconds_per_sample"])
                    cpu[model_name, label][phase].append(got[phase]["cpu_seconds_per_sample"])
                if "draws_per_sample" in got["train"]:
                    draws[model_name, label].append(got["train"]["draws_per_sample"])
    rows = ["| model | executor | train ms/sample (median, min–max) | infer ms/sample | train CPU ms "
            "| learning draws/sample | train CPU ns/draw |",
            "|---|---|---:|---:|---:|---:|---:|"]
    report = {"benchmark": "executors", "rounds": args.rounds, "samples": args.samples,
              "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
              "loadavg": os.getloadavg(), "tree": args.tree, "results": []}
    for (model_name, label), phases in times.items():
        med = {ph: statistics.median(v) for ph, v in phases.items()}
        train_cpu = statistics.median(cpu[model_name, label]["train"])
        d = statistics.median(draws[model_name, label]) if draws[model_name, label] else None
        report["results"].append({"model": model_name, "executor": label, "seconds_per_sample": phases,
                                  "cpu_seconds_per_sample": cpu[model_name, label], "median": med,
                                  "learning_draws_per_sample": d})
        tr = phases["train"]
        rows.append(f"| {model_name} | {label} | {1e3 * med['train']:.3f} ({1e3 * min(tr):.3f}–{1e3 * max(tr):.3f}) "
                    f"| {1e3 * med['infer']:.3f} | {1e3 * train_cpu:.3f} "
                    + (f"| {d:,.0f} | {1e9 * train_cpu / d:.1f} |" if d else "| – | – |"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "executors.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "executors.md").write_text("\n".join(rows) + f"\n\n{args.rounds} rounds of {args.samples} samples "
                                          f"per phase, interleaved; load average {os.getloadavg()[0]:.2f}.\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

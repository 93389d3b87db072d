"""A learning rule in fixed point (the device's arithmetic) beside its float64 twin,
trained online (batch 1) from the same initial weights, in two processes of one run; by
default MNIST 10k/10k with a 784-256-10 network. Writes
bench/results/<data>_<rule>.{json,md,png}.

    make bench-mnist            # STOP:  .venv/bin/python bench/twins.py --rule stop
    make bench-mnist-spide      # SPIDE: .venv/bin/python bench/twins.py --rule spide
"""
import argparse
import json
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from edgelearn import datasets
from edgelearn.contract import MAX_LR_SHIFT
from edgelearn.model import Schedule
from edgelearn.modelfile import load_model
from edgelearn.plots import accuracy_curves
from edgelearn.train import make_learner, train, warm_up

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
EXECUTORS = ("fixed", "float")      # the bit-exact reference beside the float64 twin


def run(executor: str, position: int, args) -> tuple[list, dict]:
    data = datasets.load(args.data)
    model = load_model(args.model)
    # every N epochs, without a limit: the host-side slow-down these figures were first measured with
    model.schedule = Schedule(args.decay_every * len(data.x_train), MAX_LR_SHIFT) if args.decay_every else None
    warm_up(model, executor, data)
    net = make_learner(model, executor)
    history = train(net, data, args.epochs, shuffle_seed=model.learning.seed, label=executor,
                    position=position).history
    return history, net.health()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rule", choices=("stop", "spide"), default="stop")
    p.add_argument("--model", help="default: models/<data>-<rule>.json")
    p.add_argument("--data", default="mnist")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--decay-every", type=int, default=5,
                   help="halve the learning rates every N epochs (the model's schedule, docs/numerics.md §6c)")
    args = p.parse_args()
    args.model = args.model or str(ROOT / "models" / f"{Path(args.data).name}-{args.rule}.json")
    model = load_model(args.model)
    if model.learning.rule != args.rule:
        raise SystemExit(f"{args.model} learns with {model.learning.rule!r}, not {args.rule!r}")
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2) as pool:
        jobs = {prec: pool.submit(run, prec, i, args) for i, prec in enumerate(EXECUTORS)}
        done = {prec: job.result() for prec, job in jobs.items()}
    results = {prec: history for prec, (history, _) in done.items()}
    final = {prec: h[-1].test_accuracy for prec, h in results.items()}
    cfg = model.learning
    report = {
        "benchmark": f"{Path(args.data).name}_{args.rule}", "model": model.name, "data": args.data, "epochs": args.epochs,
        "T": cfg.T, **({"Tb": cfg.Tb} if args.rule == "spide" else {}), "lr_weight_shift": cfg.lr_weight_shift,
        "decay_every": args.decay_every, "final_test_accuracy": final,
        "best_test_accuracy": {prec: max(r.test_accuracy for r in h) for prec, h in results.items()},
        "gap_points": round(100 * (final["float"] - final["fixed"]), 2),
        "seconds_per_epoch": {prec: round(sum(r.seconds for r in h) / len(h), 1) for prec, h in results.items()},
        "wall_seconds": round(time.perf_counter() - start, 1),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        **({"health": {prec: health for prec, (_, health) in done.items()}}
           if any(health for _, health in done.values()) else {}),
        "history": {prec: [r.as_dict() for r in h] for prec, h in results.items()},
    }
    out = RESULTS / f"{Path(args.data).name}_{args.rule}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    rows = ["| epoch | fixed test | float test |", "|---:|---:|---:|"]
    rows += [f"| {f.epoch} | {f.test_accuracy:.2%} | {g.test_accuracy:.2%} |"
             for f, g in zip(results["fixed"], results["float"])]
    summary = (f"Final test accuracy: fixed {final['fixed']:.2%}, float {final['float']:.2%} "
               f"(gap {report['gap_points']:+.2f} points); seconds per epoch: fixed "
               f"{report['seconds_per_epoch']['fixed']}, float {report['seconds_per_epoch']['float']}. "
               f"T = {cfg.T}" + (f", Tb = {cfg.Tb}" if args.rule == "spide" else "") +
               f", lr 2^-{cfg.lr_weight_shift}.")
    out.with_suffix(".md").write_text("\n".join(rows) + "\n\n" + summary + "\n")
    accuracy_curves(results, str(out.with_suffix(".png")),
                    title=f"{model.name}: {args.rule.upper()} on {args.data}")
    print("\n".join(rows))
    print(summary)


if __name__ == "__main__":
    main()

"""MNIST 10k/10k with a 784-256-10 feed-forward network: fixed-point SPIDE (the device's
arithmetic) beside its float64 twin, trained online (batch 1) from the same initial weights,
in two processes of one run. Writes bench/results/mnist_spide.{json,md,png}.

    .venv/bin/python bench/mnist_spide.py [--epochs N] [--model models/mnist-spide.json]
"""
import argparse
import json
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from edgelearn import datasets
from edgelearn.learning.spide_fixed import FixedSPIDE
from edgelearn.learning.spide_float import FloatSPIDE
from edgelearn.modelfile import load_model
from edgelearn.plots import accuracy_curves
from edgelearn.train import train

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
LEARNERS = {"fixed": FixedSPIDE, "float": FloatSPIDE}


def run(precision: str, position: int, args) -> tuple[str, list, dict, str]:
    data = datasets.load(args.data)
    model = load_model(args.model)
    net = LEARNERS[precision](model)
    history = train(net, data, args.epochs, slow_down_every=args.slow_down_every,
                    shuffle_seed=model.learning.seed, label=precision, position=position)
    return precision, history, net.health(), model.name


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "models" / "mnist-spide.json"))
    p.add_argument("--data", default="mnist")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--slow-down-every", type=int, default=5)
    args = p.parse_args()
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2) as pool:
        jobs = [pool.submit(run, precision, i, args) for i, precision in enumerate(LEARNERS)]
        done = [j.result() for j in jobs]
    results = {precision: history for precision, history, _, _ in done}
    health = {precision: report for precision, _, report, _ in done}
    name = done[0][3]
    model = load_model(args.model)
    final = {prec: h[-1].test_accuracy for prec, h in results.items()}
    report = {
        "benchmark": "mnist_spide", "model": name, "data": args.data, "epochs": args.epochs,
        "T": model.learning.T, "Tb": model.learning.Tb, "lr_weight_shift": model.learning.lr_weight_shift,
        "slow_down_every": args.slow_down_every, "final_test_accuracy": final,
        "best_test_accuracy": {prec: max(r.test_accuracy for r in h) for prec, h in results.items()},
        "gap_points": round(100 * (final["float"] - final["fixed"]), 2),
        "seconds_per_epoch": {prec: round(sum(r.seconds for r in h) / len(h), 1) for prec, h in results.items()},
        "wall_seconds": round(time.perf_counter() - start, 1),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "health": health,
        "history": {prec: [r.as_dict() for r in h] for prec, h in results.items()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "mnist_spide.json").write_text(json.dumps(report, indent=2) + "\n")
    rows = ["| epoch | fixed test | float test |", "|---:|---:|---:|"]
    rows += [f"| {f.epoch} | {f.test_accuracy:.2%} | {g.test_accuracy:.2%} |"
             for f, g in zip(results["fixed"], results["float"])]
    summary = (f"Final test accuracy: fixed {final['fixed']:.2%}, float {final['float']:.2%} "
               f"(gap {report['gap_points']:+.2f} points); seconds per epoch: fixed "
               f"{report['seconds_per_epoch']['fixed']}, float {report['seconds_per_epoch']['float']}. "
               f"T = {report['T']}, Tb = {report['Tb']}, lr 2^-{report['lr_weight_shift']}.")
    (RESULTS / "mnist_spide.md").write_text("\n".join(rows) + "\n\n" + summary + "\n")
    accuracy_curves(results, str(RESULTS / "mnist_spide.png"), title=f"{name}: SPIDE on MNIST 10k/10k")
    print("\n".join(rows))
    print(summary)


if __name__ == "__main__":
    main()

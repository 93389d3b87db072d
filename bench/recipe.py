"""The default training recipe on data nobody tuned it for, beside a scikit-learn MLP of the
same size on the same split (issue 18). Each dataset goes through the public command,
unchanged: `edgelearn train --data DIR --json` on an MNIST-like directory written for it
(digits, MNIST, MNIST with inverted pixels, MNIST with noisy pixels), fixed-point STOP with
its defaults (validation split 0.1, weights fitted to the data, the schedule), and
`MLPClassifier((hidden,))` with early stopping on its own 10% of the same training data.
The two run in two processes of one run. Writes bench/results/recipe.{json,md,png}.

    make bench-recipe        # .venv/bin/python bench/recipe.py
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import matplotlib
import numpy as np

from edgelearn import datasets
from edgelearn.cli import main as edgelearn

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TRANSFORMS = ("none", "inverted", "noisy")
LAST = 5          # the window: test accuracy over the last five epochs varies by at most 0.5 points


def transformed(ds: datasets.Dataset, kind: str, seed: int = 7) -> datasets.Dataset:
    """MNIST as data nobody tuned for: inverted pixels (255 - x: a bright background, 7.6x the
    input energy) or noisy ones (uniform noise in -64..64 added, clipped: every pixel non-zero)."""
    if kind == "none":
        return ds
    rng = np.random.default_rng(seed)

    def apply(x):
        if kind == "inverted":
            return (255 - x).astype(np.uint8)
        return np.clip(x.astype(np.int16) + rng.integers(-64, 65, size=x.shape), 0, 255).astype(np.uint8)
    return replace(ds, name=f"{ds.name}-{kind}", x_train=apply(ds.x_train), x_test=apply(ds.x_test))


def cases(args) -> dict[str, datasets.Dataset]:
    out = {"digits": datasets.load_digits()}
    mnist = datasets.load_mnist()
    for kind in args.transforms:
        out["mnist" if kind == "none" else f"mnist-{kind}"] = transformed(mnist, kind)
    return out


def run_edgelearn(name: str, ds: datasets.Dataset, args) -> dict:
    """The public command on a directory holding the dataset, as a user would run it."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = datasets.write_idx_dir(ds, Path(tmp) / name)
        argv = ["train", "--data", str(directory), "--epochs", str(args.epochs), "--hidden", str(args.hidden),
                "--json"] + (["--twin"] if name == "mnist" and args.twin else [])
        out = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(out):
            code = edgelearn(argv)
        seconds = time.perf_counter() - start
    if code != 0:
        return {"command": "edgelearn " + " ".join(argv), "exit": code}
    report = json.loads(out.getvalue())
    result = {"command": "edgelearn " + " ".join(argv[:2] + [name] + argv[3:]), "seconds": round(seconds, 1)}
    for executor, history in report["history"].items():
        best = report["best_epoch"][executor]
        tests = [e["test_accuracy"] for e in history]
        result[executor] = {"best_epoch": best, "test_at_best": tests[best - 1], "final_test": tests[-1],
                            "last_epochs_spread_points": round(100 * (max(tests[-LAST:]) - min(tests[-LAST:])), 2),
                            "test": tests, "validation": [e["validation_accuracy"] for e in history],
                            "silent": [e["silent_fraction"] for e in history]}
    result["init"] = report["init"]
    return result


def run_mlp(name: str, ds: datasets.Dataset, args) -> dict:
    from sklearn.neural_network import MLPClassifier
    start = time.perf_counter()
    accuracies = []
    for seed in range(args.mlp_seeds):
        clf = MLPClassifier((args.hidden,), early_stopping=True, validation_fraction=0.1, max_iter=200,
                            random_state=seed)
        clf.fit(ds.x_train / 255.0, ds.y_train)
        accuracies.append(float(clf.score(ds.x_test / 255.0, ds.y_test)))
    return {"test": accuracies, "mean_test": float(np.mean(accuracies)), "seconds": round(time.perf_counter() - start, 1)}


def plot(report: dict, path: Path) -> None:
    names = list(report["cases"])
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(names))
    ours = [100 * report["cases"][n]["edgelearn"].get("fixed", {}).get("test_at_best", 0) for n in names]
    mlp = [100 * report["cases"][n]["mlp"]["mean_test"] for n in names]
    ax.bar(x - 0.2, ours, 0.4, label="edgelearn fixed-point STOP (default recipe)")
    ax.bar(x + 0.2, mlp, 0.4, label=f"scikit-learn MLP ({report['hidden']} hidden)")
    ax.set_xticks(x, names)
    ax.set_ylim(min(ours + mlp) - 5, 100)
    ax.set_ylabel("test accuracy (%)")
    ax.legend(loc="lower left")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--transforms", nargs="+", choices=TRANSFORMS, default=list(TRANSFORMS))
    p.add_argument("--mlp-seeds", type=int, default=2)
    p.add_argument("--twin", action=argparse.BooleanOptionalAction, default=True,
                   help="train the float twin beside fixed point on MNIST (the issue's 'within 1 point')")
    args = p.parse_args()
    data = cases(args)
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2) as pool:
        jobs = {name: (pool.submit(run_edgelearn, name, ds, args), pool.submit(run_mlp, name, ds, args))
                for name, ds in data.items()}
        results = {name: {"edgelearn": ours.result(), "mlp": mlp.result()} for name, (ours, mlp) in jobs.items()}
    report = {"benchmark": "recipe", "epochs": args.epochs, "hidden": args.hidden, "cases": results,
              "wall_seconds": round(time.perf_counter() - start, 1),
              "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "recipe.json").write_text(json.dumps(report, indent=2) + "\n")
    rows = ["| data | edgelearn fixed (best on validation, its test) | last 5 epochs spread | float twin | "
            "scikit-learn MLP | gap (points) |", "|---|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        ours, mlp = r["edgelearn"], r["mlp"]
        if "fixed" not in ours:
            rows.append(f"| {name} | failed (exit {ours['exit']}) | | | {mlp['mean_test']:.2%} | |")
            continue
        f = ours["fixed"]
        twin = f"{ours['float']['test_at_best']:.2%}" if "float" in ours else ""
        rows.append(f"| {name} | {f['test_at_best']:.2%} (epoch {f['best_epoch']}) | "
                    f"{f['last_epochs_spread_points']:.2f} | {twin} | {mlp['mean_test']:.2%} | "
                    f"{100 * (f['test_at_best'] - mlp['mean_test']):+.2f} |")
    text = "\n".join(rows) + f"\n\n{args.epochs} epochs, 784/64-{args.hidden}-10, T = 8; wall {report['wall_seconds']} s.\n"
    (RESULTS / "recipe.md").write_text(text)
    plot(report, RESULTS / "recipe.png")
    print(text)


if __name__ == "__main__":
    main()

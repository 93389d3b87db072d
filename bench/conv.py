"""A convolutional STOP model in fixed point (the device's arithmetic) beside its float64 twin:
by default the LeNet-5-style models/lenet5-mnist-stop.json on MNIST 10k/10k, online (batch 1),
from the same data-fitted start, the recipe of ``edgelearn train`` (docs/training.md): the
initial weights fitted to a few training samples, the learning-rate schedule in the model,
10% of the training split held out to choose the best epoch. Both twins run side by side in
two processes. Writes bench/results/<model>.{json,md,png}.

    .venv/bin/python bench/conv.py                                   # LeNet-5, 20 epochs
    .venv/bin/python bench/conv.py --model models/onestep-mnist-stop.json --epochs 10
    .venv/bin/python bench/conv.py --augment-shift 2 --executors fixed   # -> lenet5-mnist-stop-shift2-fixed.*
    .venv/bin/python bench/conv.py --model models/lenet5-wide-mnist-stop.json --epochs 10 \
        --decay-every 3 --decay-steps 3 --augment-shift 1 --executors fixed   # 98.56% (docs/conv.md)
"""
import argparse
import json
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from edgelearn import datasets
from edgelearn.adapt import fit_to_data
from edgelearn.cli import epoch_line
from edgelearn.model import Schedule
from edgelearn.modelfile import load_model, save_model
from edgelearn.plots import accuracy_curves
from edgelearn.train import make_learner, train, warm_up

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
EXECUTORS = ("fixed", "float")


def start(args):
    """The data, and the model fitted to it with its schedule: the same for both twins."""
    data = datasets.hold_out(datasets.load(args.data), args.validation) if args.validation else datasets.load(args.data)
    model, _ = fit_to_data(load_model(args.model), data.x_train, learning_rate=args.lr_shift is None)
    if args.lr_shift is not None:
        from dataclasses import replace
        model.learning = replace(model.learning, lr_weight_shift=args.lr_shift, lr_threshold_shift=args.lr_shift + 2)
    model.schedule = Schedule(args.decay_every * len(data.x_train), args.decay_steps) if args.decay_every else None
    return data, model


def run(executor: str, position: int, args):
    data, model = start(args)
    warm_up(model, executor, data)
    net = make_learner(model, executor)
    training = train(net, data, args.epochs, shuffle_seed=model.learning.seed, label=executor, position=position,
                     augment_shift=args.augment_shift, on_epoch=epoch_line(executor, False))
    if executor == "fixed":
        save_model(training.best, RESULTS / (model.name + (f"-shift{args.augment_shift}" if args.augment_shift else "") + ".elm"))
    return training.history, training.best_epoch, model.learning.lr_weight_shift


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "models" / "lenet5-mnist-stop.json"))
    p.add_argument("--data", default="mnist")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--decay-every", type=int, default=5, help="halve the rates every N epochs (0: never)")
    p.add_argument("--decay-steps", type=int, default=3)
    p.add_argument("--validation", type=float, default=0.1, help="held out to choose the best epoch (0: none)")
    p.add_argument("--lr-shift", type=int, help="the weight rate 2^-N (default: from the input energy)")
    p.add_argument("--augment-shift", type=int, default=0, metavar="PX",
                   help="move each training image by up to PX pixels every epoch (edgelearn.augment; 0: none)")
    p.add_argument("--executors", nargs="+", choices=EXECUTORS, default=list(EXECUTORS),
                   help="the twins to run (both by default: the table compares them)")
    args = p.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2) as pool:
        jobs = {e: pool.submit(run, e, i, args) for i, e in enumerate(args.executors)}
        done = {e: job.result() for e, job in jobs.items()}
    histories = {e: h for e, (h, _, _) in done.items()}
    best = {e: b for e, (_, b, _) in done.items()}
    at_best = {e: histories[e][best[e] - 1].test_accuracy for e in args.executors}
    # a run that differs from the default recipe gets its own files beside it
    name = load_model(args.model).name + (f"-shift{args.augment_shift}" if args.augment_shift else "") \
        + ("" if len(args.executors) == len(EXECUTORS) else "-" + "-".join(args.executors))
    gap = round(100 * (at_best["float"] - at_best["fixed"]), 2) if len(at_best) == 2 else None
    first = args.executors[0]
    report = {
        "benchmark": name, "model": args.model, "data": args.data, "epochs": args.epochs,
        "validation": args.validation, "decay_every": args.decay_every, "decay_steps": args.decay_steps,
        "augment_shift": args.augment_shift, "lr_weight_shift": done[first][2], "best_epoch": best,
        "test_accuracy_at_best_epoch": at_best,
        "final_test_accuracy": {e: h[-1].test_accuracy for e, h in histories.items()},
        "gap_points": gap,
        "seconds_per_epoch": {e: round(sum(r.seconds for r in h) / len(h), 1) for e, h in histories.items()},
        "wall_seconds": round(time.perf_counter() - began, 1),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "history": {e: [r.as_dict() for r in h] for e, h in histories.items()},
    }
    out = RESULTS / name
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    rows = ["| epoch | " + " | ".join(f"{e} validation | {e} test" for e in args.executors) + " |",
            "|---:|" + "---:|---:|" * len(args.executors)]
    rows += [f"| {results[0].epoch} | " + " | ".join(f"{r.validation_accuracy or 0:.2%} | {r.test_accuracy:.2%}"
                                                  for r in results) + " |"
             for results in zip(*(histories[e] for e in args.executors))]
    summary = ("Test accuracy at the best epoch on validation: "
               + ", ".join(f"{e} {at_best[e]:.2%} (epoch {best[e]})" for e in args.executors)
               + (f"; gap {gap:+.2f} points" if gap is not None else "")
               + ". Seconds per epoch: " + ", ".join(f"{e} {report['seconds_per_epoch'][e]}" for e in args.executors)
               + f"; lr 2^-{report['lr_weight_shift']}"
               + (f"; training images moved by up to {args.augment_shift} px each epoch" if args.augment_shift else "")
               + ".")
    out.with_suffix(".md").write_text("\n".join(rows) + "\n\n" + summary + "\n")
    accuracy_curves(histories, str(out.with_suffix(".png")), title=f"{name}: STOP on {args.data}")
    print("\n".join(rows))
    print(summary)


if __name__ == "__main__":
    main()

"""MNIST 10k/10k, 784-256-10 fixed-point STOP with int8 weights beside the same model with int16
weights: the accuracy int8 storage costs (docs/numerics.md §1). Both from models/mnist-stop.json,
the int8 one with Q0.7 hidden and Q1.6 readout weights (``--fracs``), trained online (batch 1)
by the bit-exact reference, one after the other in one process.

    .venv/bin/python bench/int8_weights.py --epochs 3
"""
import argparse
import dataclasses
import json
from pathlib import Path

from edgelearn import datasets
from edgelearn.contract import MAX_LR_SHIFT
from edgelearn.model import Schedule, init_params
from edgelearn.modelfile import load_model
from edgelearn.train import make_learner, train, warm_up

ROOT = Path(__file__).resolve().parents[1]


def accuracy(model, data, epochs: int, decay_every: int) -> list:
    model.schedule = Schedule(decay_every * len(data.x_train), MAX_LR_SHIFT) if decay_every else None
    warm_up(model, "fixed", data)
    net = make_learner(model, "fixed")
    return train(net, data, epochs, shuffle_seed=model.learning.seed, label=model.name).history


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--decay-every", type=int, default=5, help="halve the learning rates every N epochs (0: never)")
    p.add_argument("--fracs", type=int, nargs=2, default=(7, 6), help="weight_frac of the hidden and readout layers")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "mnist_int8_weights.json")
    args = p.parse_args()
    data = datasets.load("mnist")
    wide = load_model(ROOT / "models" / "mnist-stop.json")
    layers = tuple(dataclasses.replace(layer, weight_bits=8, weight_frac=frac)
                   for layer, frac in zip(wide.layers, args.fracs))
    narrow = init_params(dataclasses.replace(wide, name="mnist-stop-int8", layers=layers))
    report = {}
    for model in (narrow, wide):
        history = accuracy(model, data, args.epochs, args.decay_every)
        report[model.name] = [dataclasses.asdict(h) if dataclasses.is_dataclass(h) else h for h in history]
        print(model.name, report[model.name][-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"epochs": args.epochs, "fracs": list(args.fracs), "runs": report}, indent=1))


if __name__ == "__main__":
    main()

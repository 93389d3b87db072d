"""Make the ONNX fixtures of tests/data/: a PyTorch MLP and a small CNN trained on MNIST,
exported with torch.onnx.export (run in the peers' environment, which has torch):

    bench/.venv-peers/bin/python bench/make_onnx_fixtures.py

- mlp-mnist.onnx: Flatten, Linear 784-128, ReLU, Linear 128-10 (what `edgelearn import`
  converts to a spiking 784-128-10 network);
- cnn-mnist.onnx: Conv 1->8 (5x5), ReLU, AveragePool 2, Flatten, Linear 1152-10 (for the
  conv layers: it imports as conv2d (IF), avgpool and an 'li' readout).

The layers have no bias: edgelearn's dense layers have none (docs/interop.md), and
conversion work has trained bias-free networks since Diehl et al. 2015. The input is what
edgelearn's direct encoding presents, pixel byte / 256, shaped [batch, 1, 28, 28]. Data:
the shared MNIST (10k train / 10k test) read by edgelearn.datasets; nothing is downloaded.
Writes tests/data/onnx_fixtures.json with the accuracies torch measured."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from edgelearn import datasets

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data"
INPUT_SCALE = 1.0 / 256          # edgelearn's direct input: pixel byte / 256


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128, bias=False), nn.ReLU(), nn.Linear(128, 10, bias=False))


def cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 5, bias=False), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(8 * 12 * 12, 10, bias=False))


def as_images(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x.astype(np.float32) * INPUT_SCALE).reshape(-1, 1, 28, 28)


def accuracy(net: nn.Module, x: torch.Tensor, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((net(x).argmax(1).numpy() == y).mean())


def fit(net: nn.Module, data: datasets.Dataset, epochs: int, seed: int) -> float:
    """Adam, cross-entropy, batches of 64; returns the test accuracy."""
    x, y = as_images(data.x_train), torch.from_numpy(data.y_train.astype(np.int64))
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=generator).split(64):
            optimiser.zero_grad()
            nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            optimiser.step()
    return accuracy(net.eval(), as_images(data.x_test), data.y_test)


def export(net: nn.Module, path: Path) -> None:
    # the TorchScript exporter writes plain Gemm / Conv / Flatten nodes; opset 17
    torch.onnx.export(net, (torch.zeros(1, 1, 28, 28),), str(path), input_names=["pixels"], output_names=["logits"],
                      dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17, dynamo=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)          # a shared 2-core machine
    data = datasets.load("mnist")
    record = {"data": "mnist (10k train / 10k test)", "input": "pixel byte / 256, [batch, 1, 28, 28]",
              "torch": torch.__version__, "epochs": args.epochs, "seed": args.seed, "optimiser": "Adam 1e-3, batch 64",
              "fixtures": {}}
    for name, make in (("mlp-mnist", mlp), ("cnn-mnist", cnn)):
        torch.manual_seed(args.seed)
        net = make()
        test = fit(net, data, args.epochs, args.seed)
        path = OUT / f"{name}.onnx"
        export(net, path)
        record["fixtures"][name] = {"file": f"tests/data/{path.name}", "torch_test_accuracy": test,
                                    "bytes": path.stat().st_size}
        print(f"{path.relative_to(ROOT)}: test accuracy {test:.2%} (torch), {path.stat().st_size} bytes")
    (OUT / "onnx_fixtures.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""A task that needs memory: the lagged XOR (docs/psn.md §5). Two bits arrive as cues ``lag`` steps apart
(each a 2-step pulse on one of two channels: channel 0 for a 0, channel 1 for a 1, the first at a
random step 0..jitter), under uniform distractor noise on every channel and step; the class is
A xor B. The readout's score is its output summed over all steps, so a network whose neurons see
only the last few steps scores f(A) + g(B), which cannot be XOR (f(0)+g(0), f(1)+g(1) below,
f(0)+g(1), f(1)+g(0) above is a contradiction): a feed-forward LIF network with a leak of
0.875 forgets a cue in about 8 steps. A PSN layer whose taps reach ``lag`` steps back sees both cues
at once.

Contenders, on the same data (``sequence`` encoding, Q0.8 currents):
- STOP, feed-forward LIF (learned thresholds and leaks), li readout: FixedSTOP, the device's arithmetic;
- PSN, float twin on the host: weights and taps learned online (taps through the power-of-two
  projection, straight-through), then the device's network (taps as codes, weights Q12);
- PSN, fixed point: that network evaluated, then fine-tuned online on the device (the STOP runtime of
  its model of psn layers, psnnet.runtime: taps frozen, per-step weight updates), and the C runtime
  checked to give the same scores.

    .venv/bin/python bench/delayed_cue.py                      # lag 16, 2000 / 1000 samples
    .venv/bin/python bench/delayed_cue.py --lag 24 --taps 4 --dilation 8

Writes bench/results/delayed_cue.{json,md}."""
import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from edgelearn.model import Learning, Neuron, init_params, mlp
from edgelearn.cli_psn import device_bytes
from edgelearn.psnnet import FloatPSN, make_net, runtime, trained
from edgelearn.rules.stop.fixed import FixedSTOP
from edgelearn.synthetic import LAGGED_XOR, lagged_xor_splits

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def accuracy(scores, y) -> float:
    return float(np.mean(np.argmax(scores, axis=1) == y))


def run_lif(args, data):
    """STOP on a feed-forward LIF network, at each weight rate of --lif-lr (the best is reported)."""
    (xtr, ytr), (xte, yte) = data
    runs = {}
    for lr in args.lif_lr:
        model = init_params(mlp("lagged-xor-lif", [2, args.hidden, 2], encoding="sequence", hidden=Neuron("lif"),
                                readout=Neuron("li"), learning=Learning(T=args.T, seed=args.seed, lr_weight_shift=lr,
                                                                        lr_threshold_shift=lr + 2)), weight_gain=2.0)
        learner, curve = FixedSTOP(model), []
        for _ in range(args.epochs):
            for i in np.random.default_rng(len(curve)).permutation(len(xtr)):
                learner.run(xtr[i:i + 1], ytr[i:i + 1], True)              # online: a batch of one
            curve.append(accuracy(learner.run(xte, None, False), yte))
        runs[lr] = {"test_accuracy": curve[-1], "best": max(curve), "curve": curve,
                    "leaks": [round(float(v) / 65536, 4) for v in np.asarray(learner.leaks).ravel()]}
    best = max(runs, key=lambda lr: runs[lr]["best"])
    return {**runs[best], "lr_weight_shift": best, "runs": {str(k): v for k, v in runs.items()}}


def run_psn(args, data):
    """The float twin on the host (10% of the training split held out to choose the best epoch, the
    recipe of bench/conv.py), its device network (tap codes, Q12 weights), then online learning on the
    device (psnnet.runtime, taps frozen, the weight rate halving every epoch: the device's schedule,
    numerics.md §6c), and the C runtime's scores against the reference's."""
    (xtr, ytr), (xte, yte) = data
    n_val = len(xtr) // 10
    (xva, yva), (xtr, ytr) = (xtr[:n_val], ytr[:n_val]), (xtr[n_val:], ytr[n_val:])
    net = make_net([2, args.hidden, 2], taps=args.taps, dilations=[args.dilation], seed=args.seed, T=args.T,
                   weight_scale=2.0, threshold=args.threshold, lr_weight_shift=args.device_lr)
    fl = FloatPSN.of(net, lr=2.0 ** -args.float_lr, lr_taps=2.0 ** -args.tap_lr)
    curve, best = [], (-1.0, None)
    for e in range(args.epochs):
        for i in np.random.default_rng(100 + e).permutation(len(xtr)):
            fl.run_sample(xtr[i], int(ytr[i]), True)
        val = accuracy(fl.run(xva, None, False), yva)
        curve.append({"validation": val, "test": accuracy(fl.run(xte, None, False), yte)})
        if val > best[0]:
            best = (val, fl.to_net(net))
    device = best[1]
    fx = runtime(device, "fixed", epoch_samples=len(xtr), epochs=args.device_epochs)   # the step decay
    quantised = accuracy(fx.run(xte, None, False), yte)
    tuned = []
    for e in range(args.device_epochs):
        order = np.random.default_rng(200 + e).permutation(len(xtr))
        for i in order:
            fx.run(xtr[i:i + 1], ytr[i:i + 1], True)
        tuned.append(accuracy(fx.run(xte, None, False), yte))
    learned = trained(fx)
    bit_exact = bool(np.array_equal(runtime(learned, "fixed").run(xte[:200], None, False),
                                    runtime(learned, "c").run(xte[:200], None, False)))
    float_best = max(curve, key=lambda r: r["validation"])
    return {"float_accuracy": float_best["test"], "float_curve": curve, "fixed_quantised": quantised,
            "fixed_after_device_learning": tuned[-1] if tuned else quantised, "device_curve": tuned,
            "c_equals_fixed": bit_exact, "taps_first_channels": device.layers[0].taps.tolist()[:4],
            "memory_bytes": device_bytes(device), "ring_length": device.layers[0].ring}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    task = LAGGED_XOR                      # the defaults: the named dataset (--data lagged-xor)
    p.add_argument("--n-train", type=int, default=task["n_train"])
    p.add_argument("--n-test", type=int, default=task["n_test"])
    p.add_argument("--lag", type=int, default=task["lag"])
    p.add_argument("--jitter", type=int, default=task["jitter"])
    p.add_argument("--noise", type=int, default=task["noise"], help="distractor amplitude (of 255)")
    p.add_argument("--T", type=int, default=task["T"])
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--taps", type=int, default=2)
    p.add_argument("--dilation", type=int, default=16)
    p.add_argument("--threshold", type=float, default=0.75)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--device-epochs", type=int, default=2)
    p.add_argument("--float-lr", type=int, default=12, help="the float twin's weight rate 2^-n")
    p.add_argument("--tap-lr", type=int, default=14, help="the float twin's tap rate 2^-n")
    p.add_argument("--device-lr", type=int, default=12, help="the device's lr_weight_shift")
    p.add_argument("--lif-lr", type=int, nargs="+", default=[6, 9, 12], help="STOP's lr_weight_shift(s)")
    p.add_argument("--seed", type=int, default=task["seed"])
    p.add_argument("--target", choices=("xor", "a", "b"), default="xor",
                   help="xor (the task) or one cue's bit (controls: no memory across the lag needed)")
    p.add_argument("--only", choices=("lif", "psn"))
    p.add_argument("--out", default=str(RESULTS / "delayed_cue"))
    args = p.parse_args(argv)
    task = (args.n_train, args.n_test, args.T, args.lag, args.jitter, args.noise, args.seed)
    train, test = lagged_xor_splits(*task, args.target)
    out = {"task": vars(args), "host": platform.node(), "load": os.getloadavg()}
    for name, fn in (("lif", run_lif), ("psn", run_psn)):
        if args.only in (None, name):
            t = time.time()
            out[name] = fn(args, (train, test))
            out[name]["seconds"] = round(time.time() - t, 1)
            print(name, json.dumps(out[name]))
    if args.only is None:
        controls = {}
        for target in ("a", "b"):             # the same LIF learner on one cue's bit: no memory across the lag
            controls[target] = run_lif(args, lagged_xor_splits(*task, target))
            print("lif control", target, controls[target]["best"])
        out["lif_controls"] = controls
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out + ".json").write_text(json.dumps(out, indent=1) + "\n")
        lif, ps = out["lif"], out["psn"]
        Path(args.out + ".md").write_text(
            f"# Lagged XOR, lag {args.lag} (bench/delayed_cue.py)\n\n"
            f"{args.n_train} training / {args.n_test} test sequences of {args.T} steps, jitter {args.jitter}, "
            f"noise {args.noise}/255, {args.epochs} epochs, {args.hidden} hidden neurons.\n\n"
            "| network | test accuracy |\n|---|---|\n"
            f"| feed-forward LIF, STOP, fixed point (best of lr shifts {args.lif_lr}) | "
            f"{lif['test_accuracy']:.3f} (best epoch {lif['best']:.3f}) |\n"
            f"| PSN float twin (K={args.taps}, D={args.dilation}), best epoch on validation | "
            f"{ps['float_accuracy']:.3f} |\n"
            f"| PSN fixed point, quantised | {ps['fixed_quantised']:.3f} |\n"
            f"| PSN fixed point, after {args.device_epochs} epochs on the device | "
            f"{ps['fixed_after_device_learning']:.3f} |\n\n"
            f"Controls (the same LIF learner, one cue's bit as the class, no memory across the lag needed): "
            f"first cue {controls['a']['best']:.3f}, second cue {controls['b']['best']:.3f} (best epoch).\n\n"
            f"C runtime = fixed reference on the test scores: {ps['c_equals_fixed']}. Device memory of the PSN "
            f"network while learning: {ps['memory_bytes']['online']} bytes (independent of T).\n")
    return out


if __name__ == "__main__":
    main()

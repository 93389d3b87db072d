"""Sequential MNIST (each image row one step: 28 steps of 28 Q0.8 currents; the 10k / 10k split) with a
PSN network (docs/psn.md §3, §7; issue 12: at least 95% in fixed point, the float twin within 1 point).

The recipe: the stack trained on the host through time (edgelearn/psn_bptt.py: the whole sequence in
parallel, Adam on the cross-entropy of the summed readout, taps through the straight-through
power-of-two projection, thresholds learned), then quantised (FloatPSN.to_net: tap codes, Q12
weights, Q16 thresholds) and evaluated in fixed point with the bit-exact reference (the STOP runtime
of its model of psn layers, psnnet.runtime); the C runtime is checked to give the reference's scores
on the first test images. Optionally (--device-epochs N) the quantised network then learns online on
the device's arithmetic (the per-step rule of docs/psn.md §3, taps frozen, the rate halving each
epoch: the device's schedule); with --epochs 0 that is
the untuned online variant from scratch.

    .venv/bin/python bench/psn_smnist.py                  # 28-256-256-256-10, K = 4, D = 1, 4, 16
    .venv/bin/python bench/psn_smnist.py --hidden 256 256 --epochs 5
    .venv/bin/python bench/psn_smnist.py --epochs 0 --device-epochs 1 --hidden 128 --dilations 2 \\
        --threshold 0.5 --weight-scale 1 --device-lr 11           # the online variant (no host training)

Writes bench/results/psn_smnist.{json,md,png}."""
import argparse
import json
import os
import platform
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from tqdm import tqdm

from edgelearn import datasets, psnfile
from edgelearn import psn_bptt as bptt
from edgelearn.ops.layers import psn
from edgelearn.plots import accuracy_curves
from edgelearn.cli_psn import device_bytes
from edgelearn.psnnet import FloatPSN, runtime

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def recipe(args) -> dict:
    """The spec with the options given on the command line; ``args`` gets the values used."""
    _, spec = psnfile.load(args.model)
    hidden, readout = spec["layers"][:-1], spec["layers"][-1]
    sizes = args.hidden or [ly["neurons"] for ly in hidden]
    taps = [args.taps] * len(sizes) if args.taps else [ly["taps"] for ly in hidden] if not args.hidden \
        else [hidden[0]["taps"]] * len(sizes)
    dilations = args.dilations or ([ly["dilation"] for ly in hidden] if not args.hidden and not args.taps
                                   else psn.sawtooth(len(sizes), taps[0]))
    spec["layers"] = [{"kind": "psn", "neurons": n, "taps": k, "dilation": d}
                      for n, k, d in zip(sizes, taps, dilations, strict=True)] + [readout]
    for section, key, option in (("init", "seed", "seed"), ("init", "threshold", "threshold"),
                                 ("init", "weight_scale", "weight_scale"),
                                 ("learning", "surrogate_shift", "surrogate_shift"), ("learning", "epochs", "epochs"),
                                 ("learning", "batch", "batch"), ("learning", "lr", "lr"),
                                 ("learning", "lr_weight_shift", "device_lr")):
        if getattr(args, option) is not None:
            spec[section][key] = getattr(args, option)
    if args.fixed_thresholds:
        spec["learning"]["learn_thresholds"] = False
    spec = psnfile.check_spec(spec)
    init, learning = spec["init"], spec["learning"]
    args.hidden, args.taps, args.dilations = sizes, taps[0] if len(set(taps)) == 1 else taps, dilations
    args.seed, args.threshold, args.weight_scale = init["seed"], init["threshold"], init["weight_scale"]
    args.surrogate_shift, args.epochs, args.batch = learning["surrogate_shift"], learning["epochs"], learning["batch"]
    args.lr, args.device_lr = learning["lr"], learning["lr_weight_shift"]
    args.fixed_thresholds = not learning["learn_thresholds"]
    return spec


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(ROOT / "models" / "psn" / "smnist-psn.json"),
                   help="the PSN spec (edgelearn.psnfile) whose layers and recipe the options below change")
    p.add_argument("--hidden", type=int, nargs="+", help="hidden layer sizes (default: the spec's)")
    p.add_argument("--taps", type=int, help="K, taps per hidden channel (default: the spec's)")
    p.add_argument("--dilations", type=int, nargs="+",
                   help="one per hidden layer (default: the spec's, or the sawtooth 1, K, K^2, ... for --hidden)")
    p.add_argument("--threshold", type=float, help="initial hidden thresholds")
    p.add_argument("--weight-scale", type=float, help="initial weights N(0, scale^2 / n_in)")
    p.add_argument("--surrogate-shift", type=int, help="phi's half-width 2^k")
    p.add_argument("--epochs", type=int, help="host epochs through time")
    p.add_argument("--batch", type=int)
    p.add_argument("--lr", type=float, help="Adam's initial rate (cosine to 0)")
    p.add_argument("--fixed-thresholds", action="store_true", help="do not learn the thresholds")
    p.add_argument("--device-epochs", type=int, default=0, help="online epochs on the device afterwards")
    p.add_argument("--device-lr", type=int, help="the device's lr_weight_shift (first epoch)")
    p.add_argument("--n-train", type=int, default=10000)
    p.add_argument("--n-test", type=int, default=10000)
    p.add_argument("--seed", type=int, help="initial weights and every stream (default: the spec's)")
    p.add_argument("--out", default=str(RESULTS / "psn_smnist"))
    args = p.parse_args(argv)
    spec = recipe(args)
    started = time.time()
    ds = datasets.load("smnist")
    xtr, ytr = ds.x_train[:args.n_train], ds.y_train[:args.n_train]
    xte, yte = ds.x_test[:args.n_test], ds.y_test[:args.n_test]
    net = psnfile.net_of_spec(spec)
    fl = FloatPSN.of(net)
    X_test = bptt.inputs(fl, xte)
    history = []

    def on_epoch(epoch, loss):
        acc = bptt.accuracy(bptt.evaluate(fl, X_test), yte)
        history.append(SimpleNamespace(epoch=epoch + 1, test_accuracy=acc, train_loss=loss))
        bar.write(f"epoch {epoch + 1}: training loss {loss:.4f}, float twin test accuracy {acc:.4f}")

    with tqdm(total=args.epochs * len(xtr), desc="host, through time", unit="seq") as bar:
        bptt.train(fl, bptt.inputs(fl, xtr, np.float32), ytr, args.epochs, args.batch, args.lr,
                   learn_thresholds=not args.fixed_thresholds, seed=args.seed, on_epoch=on_epoch,
                   progress=bar.update)
    host_seconds = time.time() - started
    float_acc = bptt.accuracy(bptt.evaluate(fl, X_test), yte)
    device = fl.to_net(net)
    fx = runtime(device, "fixed", epoch_samples=len(xtr), epochs=args.device_epochs)   # the step decay
    t = time.time()
    fixed_scores = np.concatenate([fx.run(xte[i:i + 500], None, False)
                                   for i in tqdm(range(0, len(xte), 500), desc="fixed point", unit="500 seq")])
    fixed_acc = bptt.accuracy(fixed_scores, yte)
    fixed_seconds = time.time() - t
    c = runtime(device, "c")
    n_c = min(500, len(xte))
    c_equals_fixed = bool(np.array_equal(c.run(xte[:n_c], None, False), fixed_scores[:n_c]))
    device_curve = []
    for e in range(args.device_epochs):
        for i in tqdm(np.random.default_rng(200 + e).permutation(len(xtr)), desc=f"device epoch {e + 1}",
                      unit="seq"):
            fx.run(xtr[i:i + 1], ytr[i:i + 1], True)
        device_curve.append(bptt.accuracy(fx.run(xte, None, False), yte))
        print(f"device epoch {e + 1}: fixed-point test accuracy {device_curve[-1]:.4f}", flush=True)
    rates = [float(np.mean(H >= fl.th[l])) for l, (_, _, H) in
             enumerate(bptt.forward(fl, X_test[:500], keep=True)[1][:-1])]
    out = {
        "task": {**vars(args), "dilations": [ly.dilation for ly in device.layers[:-1]],
                 "field": 1 + sum((ly.K - 1) * ly.dilation for ly in device.layers[:-1]),
                 "loss": "cross-entropy of softmax(sum_t U / T)", "optimiser": "Adam, cosine rate"},
        "host": platform.node(), "load": os.getloadavg(),
        "float_accuracy": float_acc, "fixed_accuracy": fixed_acc, "gap_points": round(100 * (float_acc - fixed_acc), 2),
        "curve": [{"epoch": r.epoch, "float_test_accuracy": r.test_accuracy, "train_loss": r.train_loss}
                  for r in history],
        "device_curve": device_curve, "c_equals_fixed": c_equals_fixed, "c_checked_sequences": n_c,
        "spike_rates": rates,
        "taps_changed": [float(np.mean(ly.taps != ly0.taps)) for ly, ly0 in zip(device.layers[:-1], net.layers)],
        "tap_code_histogram": [dict(zip(*map(lambda a: a.tolist(), np.unique(ly.taps, return_counts=True))))
                               for ly in device.layers[:-1]],
        "memory_bytes_inference": device_bytes(device)["inference"],
        "seconds": {"host_training": round(host_seconds, 1), "fixed_eval": round(fixed_seconds, 1),
                    "total": round(time.time() - started, 1)},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(out, indent=1) + "\n")
    sizes = "-".join(map(str, [28, *args.hidden, 10]))
    rows = "".join(f"| {r.epoch} | {r.train_loss:.4f} | {r.test_accuracy:.4f} |\n" for r in history)
    tuned = "".join(f"| fixed point after {e + 1} online epoch(s) on the device | {a:.4f} |\n"
                    for e, a in enumerate(device_curve))
    Path(args.out + ".md").write_text(
        f"# Sequential MNIST with PSN (bench/psn_smnist.py)\n\n"
        f"{len(xtr)} training / {len(xte)} test images, 28 rows as 28 steps. {sizes}, K = {args.taps}, "
        f"dilations {out['task']['dilations']} (field {out['task']['field']} steps), {args.epochs} host epochs "
        f"through time (Adam {args.lr:g}, cosine; batch {args.batch}; cross-entropy of the summed readout), seed "
        f"{args.seed}.\n\n"
        "| network | test accuracy |\n|---|---|\n"
        f"| float twin (device taps, float weights and thresholds) | {float_acc:.4f} |\n"
        f"| fixed point (to_net: tap codes, Q12 weights, Q16 thresholds; the fixed reference) | {fixed_acc:.4f} |\n"
        f"{tuned}\n"
        f"Float − fixed: {out['gap_points']} points. C runtime = the reference on the first {n_c} test scores: "
        f"{c_equals_fixed}. Hidden spike rates {', '.join(f'{r:.3f}' for r in rates)}; tap codes changed from "
        f"the initial 2^-1: {', '.join(f'{100 * v:.0f}%' for v in out['taps_changed'])} per layer. Device memory "
        f"for inference {out['memory_bytes_inference']} bytes. Host training {host_seconds:.0f} s, fixed-point "
        f"evaluation {fixed_seconds:.0f} s, all {out['seconds']['total']:.0f} s on one core ({platform.node()}).\n\n"
        "| epoch | training loss | float twin test accuracy |\n|---|---|---|\n" + rows)
    accuracy_curves({"float twin": history,
                     "fixed point (quantised)": [SimpleNamespace(epoch=args.epochs, test_accuracy=fixed_acc)]},
                    args.out + ".png", f"sequential MNIST, PSN {sizes}")
    return out


if __name__ == "__main__":
    main()

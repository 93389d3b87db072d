"""The one-time-step model on MNIST (T = 1, a scan2d layer; docs/one-step.md; issue 14: at least 98%
in fixed point) trained on the host, then quantised and run in fixed point.

The recipe: the model's data-fitted start (edgelearn.adapt.fit_to_data, as ``edgelearn train``), then
the float twin (FloatSTOP) trained in batches by edgelearn/host_train.py (Adam on the softmax
cross-entropy of the 'li' readout's potential, the twin's surrogate gradient with the scan's
recurrence detached, learned thresholds, optional 1-pixel shifts of the training images), 10% of
the training split held out to choose the epoch; the chosen parameters (and the last epoch's) quantised by
FloatSTOP.to_model (round to nearest: Q w_frac weights, Q16 thresholds) and evaluated on the whole
test split by the bit-exact fixed-point reference (make_learner(model, "fixed")); the C runtime
is checked to give the reference's scores on the first test images. Host-trained, not online
device learning: the device runs the quantised model (and may go on learning online from it).

    OMP_NUM_THREADS=1 .venv/bin/python bench/onestep_host.py --epochs 40 --shift 1     # docs/one-step.md
    .venv/bin/python bench/onestep_host.py --model models/onestep-mnist-stop.json --epochs 1 --n-train 2000

Writes bench/results/onestep-host.{json,md,png,elm} (--out; the model of the last epoch: .last.elm)."""
import argparse
import json
import os
import platform
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from edgelearn import datasets
from edgelearn import host_train as ht
from edgelearn.adapt import fit_to_data
from edgelearn.modelfile import load_model, save_model
from edgelearn.plots import accuracy_curves
from edgelearn.rules.stop.float import FloatSTOP
from edgelearn.train import evaluate, make_learner, scores_of

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(ROOT / "models" / "onestep-mnist-stop.json"))
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3, help="Adam's initial rate (cosine to 0)")
    p.add_argument("--scale", type=float, default=1.0, help="the logits: scale times the readout's potential")
    p.add_argument("--weight-decay", type=float, default=0.0, help="decoupled weight decay (AdamW-style; 0: none)")
    p.add_argument("--shift", type=int, default=1, help="move each training image by up to PX pixels each epoch")
    p.add_argument("--validation", type=float, default=0.1, help="held out to choose the epoch")
    p.add_argument("--n-train", type=int, default=None, help="the first N training samples (after the hold-out)")
    p.add_argument("--n-test", type=int, default=10000)
    p.add_argument("--c-check", type=int, default=300, help="test images the C runtime must score as the reference")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(RESULTS / "onestep-host"))
    args = p.parse_args(argv)
    started = time.time()
    data = datasets.hold_out(datasets.load("mnist"), args.validation)
    xtr, ytr = data.x_train[:args.n_train], data.y_train[:args.n_train]
    xte, yte = data.x_test[:args.n_test], data.y_test[:args.n_test]
    model, _ = fit_to_data(load_model(args.model), xtr)
    net = FloatSTOP(model)
    history, best = [], {"validation": -1.0}
    epoch_began = [time.time()]

    def on_epoch(epoch, loss):
        seconds = time.time() - epoch_began[0]
        val, test = ht.accuracy(net, data.x_val, data.y_val), ht.accuracy(net, xte, yte)
        history.append(SimpleNamespace(epoch=epoch + 1, train_loss=loss, validation_accuracy=val, test_accuracy=test,
                                       seconds=round(seconds, 1)))
        if val > best["validation"]:
            best.update(validation=val, epoch=epoch + 1, W=[w.copy() for w in net.W], th=[t.copy() for t in net.th])
        print(f"epoch {epoch + 1}: loss {loss:.4f}, float validation {val:.4f}, test {test:.4f}, "
              f"{seconds:.0f} s training", flush=True)
        epoch_began[0] = time.time()

    ht.train(net, xtr, ytr, args.epochs, batch=args.batch, lr=args.lr, scale=args.scale, weight_decay=args.weight_decay,
             shift=args.shift, image_shape=data.shape, seed=args.seed, on_epoch=on_epoch)
    host_seconds = time.time() - started
    last = {"float": history[-1].test_accuracy if history else ht.accuracy(net, xte, yte)}
    last_model = net.to_model()                  # the last epoch's, quantised and run in fixed point too
    last["fixed"] = evaluate(make_learner(last_model, "fixed"), xte, yte, batch=500)
    if history:                                  # quantise the epoch chosen on validation
        net.W, net.th = best["W"], best["th"]
    chosen = {"epoch": best.get("epoch", 0), "float": ht.accuracy(net, xte, yte)}
    device = net.to_model()
    t = time.time()
    fixed_scores = scores_of(make_learner(device, "fixed"), xte, batch=500)
    chosen["fixed"] = float(np.mean(np.argmax(fixed_scores, axis=1) == yte))
    fixed_seconds = time.time() - t
    n_c = min(args.c_check, len(xte))
    c_scores = scores_of(make_learner(device, "c"), xte[:n_c], batch=n_c)
    c_equals_fixed = bool(np.array_equal(c_scores, fixed_scores[:n_c]))
    float_pred = np.argmax(ht.scores(net, xte), axis=1)
    agree = float(np.mean(float_pred == np.argmax(fixed_scores, axis=1)))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_model(device, args.out + ".elm")
    save_model(last_model, args.out + ".last.elm")
    out = {
        "task": {**vars(args), "loss": "cross-entropy of softmax(scale * U), U the li readout's potential",
                 "optimiser": "Adam, cosine rate", "gradient": "STOP at T = 1: surrogate spikes, the scan's "
                 "recurrence detached", "n_train": len(xtr), "n_validation": len(data.x_val), "n_test": len(xte)},
        "model_name": model.name, "host": platform.node(), "load": os.getloadavg(),
        "chosen_epoch": chosen["epoch"], "float_accuracy": chosen["float"], "fixed_accuracy": chosen["fixed"],
        "gap_points": round(100 * (chosen["float"] - chosen["fixed"]), 2), "last_epoch_float_accuracy": last["float"],
        "last_epoch_fixed_accuracy": last["fixed"],
        "float_fixed_prediction_agreement": agree, "c_equals_fixed": c_equals_fixed, "c_checked_images": n_c,
        "curve": [vars(r) for r in history],
        "seconds": {"host_training": round(host_seconds, 1), "fixed_eval": round(fixed_seconds, 1),
                    "total": round(time.time() - started, 1)},
    }
    Path(args.out + ".json").write_text(json.dumps(out, indent=1) + "\n")
    rows = "".join(f"| {r.epoch} | {r.train_loss:.4f} | {r.validation_accuracy:.4f} | {r.test_accuracy:.4f} | "
                   f"{r.seconds} |\n" for r in history)
    Path(args.out + ".md").write_text(
        f"# The one-step model trained on the host (bench/onestep_host.py)\n\n"
        f"`{os.path.relpath(args.model, ROOT)}` (T = 1), MNIST {len(xtr)} training / {len(data.x_val)} validation / "
        f"{len(xte)} test "
        f"images; {args.epochs} host epochs (Adam {args.lr:g}, cosine; batch {args.batch}; cross-entropy of the "
        f"li readout's potential, scale {args.scale:g}; weight decay {args.weight_decay:g}; images moved by up to "
        f"{args.shift} px each epoch), seed {args.seed}; the epoch chosen on validation: {chosen['epoch']}.\n\n"
        "| network | test accuracy |\n|---|---|\n"
        f"| float twin (FloatSTOP, float64 weights and thresholds) | {chosen['float']:.4f} |\n"
        f"| fixed point (to_model: Q w_frac weights, Q16 thresholds; the reference) | {chosen['fixed']:.4f} |\n"
        f"| after the last epoch: float twin | {last['float']:.4f} |\n"
        f"| after the last epoch: fixed point | {last['fixed']:.4f} |\n\n"
        f"Float − fixed: {out['gap_points']} points; the two predict the same class on {100 * agree:.2f}% of the "
        f"test images. C runtime = the reference on the first {n_c} test scores: {c_equals_fixed}. Host training "
        f"{host_seconds:.0f} s, fixed-point evaluation {fixed_seconds:.0f} s, all {out['seconds']['total']:.0f} s on "
        f"one core ({platform.node()}).\n\n"
        "| epoch | training loss | float validation | float test | seconds |\n|---|---|---|---|---|\n" + rows)
    quantised = [SimpleNamespace(epoch=chosen["epoch"], test_accuracy=chosen["fixed"])]
    accuracy_curves({"float twin (host training)": history, "fixed point (quantised)": quantised},
                    args.out + ".png", f"{model.name}, T = 1, trained on the host")
    print(f"float {chosen['float']:.4f}, fixed {chosen['fixed']:.4f} (epoch {chosen['epoch']}), C = fixed on {n_c}: "
          f"{c_equals_fixed}", flush=True)
    return out


if __name__ == "__main__":
    main()

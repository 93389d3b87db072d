"""``edgelearn train / eval / info`` for a PSN model (edgelearn.psnfile: a spec of format
"edgelearn-psn" or a trained ``.psn``; docs/psn.md §7): its recipe (the host rule through time, or
the online rule) and its float twin. edgelearn.cli hands these commands here when the model is one;
the options that only a STOP/SPIDE model has are refused by name. Every other command (profile,
compile, push, stream, ...) reads a PSN file as the model of psn layers it is (modelfile.load_model,
psnnet.to_model), like any model."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from . import profile, psn_train, psnfile
from .cli_util import check_writable, emit
from .errors import ModelError
from .modelblob import to_blob
from .plan import arena_plan
from .psnnet import PSNNet, to_model

# train's options a PSN model does not read (name, how it shows on the command line)
STOP_ONLY = (("hidden", "--hidden"), ("learner", "--learner"), ("twin", "--twin"), ("T", "--T"), ("Tb", "--Tb"),
             ("decay_every", "--decay-every"), ("decay_steps", "--decay-steps"), ("init", "--init"),
             ("augment_shift", "--augment-shift"), ("regulariser", "--regulariser"),
             ("late_fraction", "--late-fraction"), ("threads", "--threads"))
DEFAULT_HIDDEN = 256


def given(args, name: str) -> bool:
    """Whether the option was on the command line (the parser's defaults are None or False, and
    --hidden's its default MLP's width)."""
    value = getattr(args, name, None)
    return value is not None and value is not False and not (name == "hidden" and value == DEFAULT_HIDDEN)


def refuse_options(args, rule: str) -> None:
    """The options a PSN model, or its rule, does not read: refused by name, not ignored."""
    stop_only = [flag for name, flag in STOP_ONLY if given(args, name)]
    if stop_only:
        raise ModelError(f"{', '.join(stop_only)}: not an option of a PSN model ({args.model}); its layers, T and "
                         "recipe are in its spec (docs/psn.md §7)")
    if rule == "host" and (given(args, "lr_shift") or args.executor != "fixed"):
        raise ModelError("--lr-shift and --executor: the rule 'host' trains the float twin through time with Adam "
                         "(the spec's learning.lr); they are the online rule's (learning.rule 'online')")
    if rule == "online" and (given(args, "batch") and args.batch != 1 or args.executor == "float"):
        raise ModelError("--batch and --executor float: the rule 'online' learns one sequence at a time in the "
                         "device's arithmetic (--executor fixed or c); the float twin trains with the rule 'host'")


def describe(net: PSNNet) -> list[dict]:
    return [{"layer": l, "kind": "readout" if l == len(net.layers) - 1 else "psn", "inputs": ly.n_in,
             "neurons": ly.n_out, "taps": ly.K, "dilation": ly.dilation, "field": ly.ring,
             "weights": f"int16 Q{15 - ly.w_frac}.{ly.w_frac}", "parameters": ly.weights.size + ly.taps.size
             + (0 if l == len(net.layers) - 1 else ly.thresholds.size)} for l, ly in enumerate(net.layers)]


def device_bytes(net: PSNNet) -> dict:
    """What the C runtime holds to run it and to learn online: its blob (the parameters, learned in
    place) and the arena of its plan. None of it grows with T; `edgelearn profile` adds the code,
    the context and the stack for a target."""
    model = to_model(net)
    blob = len(to_blob(model))
    return {"inference": blob + arena_plan(profile.with_learner(model, "none"))["total"],
            "online": blob + arena_plan(model)["total"]}


def cmd_info(args) -> int:
    net, spec = psnfile.load(args.model)
    layers = describe(net)
    field = 1 + sum((ly.K - 1) * ly.dilation for ly in net.layers)
    info = {"name": spec["name"], "format": psnfile.FORMAT, "input": spec["input"], "T": net.T,
            "temporal_field": field, "learning": spec["learning"], "layers": layers,
            "total_parameters": sum(l["parameters"] for l in layers),
            "device_bytes": device_bytes(net)}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{spec['name']}: PSN network, {net.n_in} inputs per step ({spec['input']['encoding']}), T={net.T}, "
          f"temporal field {field} steps")
    cols = ["layer", "kind", "inputs", "neurons", "taps", "dilation", "field", "weights", "parameters"]
    rows = [cols] + [[str(l[c]) for c in cols] for l in layers]
    rows.append(["total", "", "", "", "", "", "", "", str(info["total_parameters"])])
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    lr = spec["learning"]
    print(f"learning: {lr['rule']} ({'through time on the host, then quantised' if lr['rule'] == 'host' else 'online, per step, in fixed point, taps frozen'}), "
          f"{lr['epochs']} epochs; device bytes: inference {info['device_bytes']['inference']:,}, online learning "
          f"{info['device_bytes']['online']:,} (none grows with T)")
    return 0


def cmd_train(args, data) -> int:
    """``data``: the dataset as edgelearn.cli loaded it (limits and the validation split applied)."""
    check_writable(args.output, (psnfile.SUFFIX,), "PSN model")
    check_writable(args.plot, (".png",), "plot")
    net, spec = psnfile.load(args.model)
    learning = dict(spec["learning"])
    refuse_options(args, learning["rule"])
    for key, value in (("epochs", args.epochs), ("batch", args.batch), ("lr_weight_shift", args.lr_shift)):
        if value is not None:
            learning[key] = value
    if args.seed is not None:         # a spec's initial weights and every seed; a trained network's streams
        spec = {**spec, "init": {**spec["init"], "seed": args.seed}}
        net = psnfile.net_of_spec(spec) if args.model.lower().endswith(".json") else net
        net.seed = args.seed
    psn_train.check_fits(net, data)
    began = time.perf_counter()

    def show(e: psn_train.Epoch) -> None:
        line = {"epoch": e.epoch, "validation_accuracy": e.validation_accuracy, "test_accuracy": e.test_accuracy,
                "train_loss": e.train_loss}
        text = json.dumps(line) if args.json else (
            f"{learning['rule']} epoch {e.epoch}: " + ("" if e.validation_accuracy is None else
                                                       f"validation {e.validation_accuracy:.2%}, ")
            + f"test {e.test_accuracy:.2%}" + ("" if e.train_loss is None else f", loss {e.train_loss:.4f}"))
        tqdm.write(text, file=sys.stderr)

    trained = psn_train.train(net, learning, data, learning["epochs"], on_epoch=show, executor=args.executor)
    if args.output:
        psnfile.save(trained.net, {**spec, "learning": learning}, args.output)
    # the device network on each executor: the float twin, the fixed reference, the C runtime
    accuracy, c_equals_fixed = psn_train.on_every_executor(trained.net, data.x_test, data.y_test, not args.json)
    if args.plot:
        from .plots import accuracy_curves
        accuracy_curves({learning["rule"]: trained.history}, args.plot, title=f"{spec['name']}: PSN on {data.name}")
    report = {"model": spec["name"], "data": data.name, "rule": learning["rule"], "T": trained.net.T,
              "train_samples": len(data.x_train), "validation_samples": 0 if data.x_val is None else len(data.x_val),
              "test_samples": len(data.x_test), "test_accuracy": accuracy, "c_equals_fixed": c_equals_fixed,
              "best_epoch": trained.best_epoch, "seconds": round(time.perf_counter() - began, 1),
              "history": [vars(e) for e in trained.history]}
    if args.output:
        report["output"] = args.output
    chosen = (f"epoch {trained.best_epoch} of {learning['epochs']}, the best on validation" if data.x_val is not None
              else f"the last of {learning['epochs']} epochs")
    emit(json.dumps(report, indent=2) if args.json else
         f"{spec['name']} on {data.name} ({learning['rule']}; {chosen}; {len(data.x_test)} test sequences): float "
         f"twin {accuracy['float']:.2%}, fixed point {accuracy['fixed']:.2%}, C runtime {accuracy['c']:.2%} ("
         + ("the reference's scores bit for bit" if c_equals_fixed else "NOT the reference's scores") + ")"
         + (f"; written to {args.output}" if args.output else ""))
    return 0


def cmd_eval(args, data) -> int:
    if args.cutoff or args.plot or args.T is not None:
        raise ModelError("--cutoff, --plot and --T: not options of a PSN model (its T is in its spec)")
    net, spec = psnfile.load(args.model)
    psn_train.check_fits(net, data)
    acc = psn_train.accuracy(net, data.x_test, data.y_test, args.executor)
    if args.json:
        print(json.dumps({"model": spec["name"], "data": data.name, "executor": args.executor,
                          "test_samples": len(data.x_test), "test_accuracy": acc}))
    else:
        print(f"{spec['name']} on {data.name} ({len(data.x_test)} test sequences, {args.executor}): {acc:.2%}")
    return 0

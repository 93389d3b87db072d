"""The ``edgelearn`` command line: train, eval, calibrate, info, compile, profile, and the verbs other
installed packages add through the entry point group ``edgelearn.commands`` (the board verbs:
firmware_host.cli). Each entry point is a function ``add_commands(subparsers)`` that adds its
subcommands and may return the exception types they raise; main() prints those as one line
and exits 2, as it does the core's own errors."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from importlib.metadata import entry_points
from pathlib import Path

from . import cutoff, datasets, profile
from .cli_util import check_writable, emit, int_in
from .contract import CUTOFF_MAX_PPM, CUTOFF_NEVER
from .errors import ModelError, TrainingDiverged
from .executors import EXECUTORS, TWIN, exactness
from .model import Learning, mlp
from .modelfile import load_model, save_model
from .rules import init_model
from .rules.spide.spec import spide_mlp
from .train import evaluate, make_learner, train, warm_up

EXECUTOR_HELP = "; ".join(f"{name}: {exactness(name).value}" for name in EXECUTORS)
COMMANDS_GROUP = "edgelearn.commands"
TOLERANCES = ",".join(f"{e:g}" for e in cutoff.DEFAULT_TOLERANCES)     # argparse parses a string default


def add_installed_commands(sub) -> tuple[type[BaseException], ...]:
    """The verbs of the ``edgelearn.commands`` entry points, added to ``sub``; returns the
    exception types they declare. An entry point whose package is not installed is skipped;
    one that fails otherwise is reported on stderr and skipped: the core verbs always work."""
    errors: list[type[BaseException]] = []
    for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        try:
            declared = ep.load()(sub) or ()
        except Exception as err:
            absent = isinstance(err, ModuleNotFoundError) and err.name == ep.module.split(".")[0]
            if not absent:                    # absent: its package is not installed, nor its verbs
                print(f"edgelearn: warning: the {ep.name!r} commands ({ep.value}) are unavailable: {err}",
                      file=sys.stderr)
            continue
        errors += [e for e in declared if isinstance(e, type) and issubclass(e, BaseException)]
    return tuple(errors)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every verb; ``.command_errors``: the exception types the installed
    commands declare (see add_installed_commands)."""
    p = argparse.ArgumentParser(prog="edgelearn", description="On-device learning for spiking neural networks.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model on a dataset and report test accuracy")
    t.add_argument("--data", default="digits", help="digits, mnist, or a directory of MNIST-style IDX files")
    t.add_argument("--model", help="model spec (.json) or trained blob (.elm); default: an MLP sized to the data")
    t.add_argument("--hidden", type=int_in(1, 65535), default=256, help="hidden neurons of the default MLP")
    t.add_argument("--learner", choices=("stop", "readout", "spide"), default="stop",
                   help="stop: every layer; readout: the last layer only (the cheap baseline); spide: "
                        "equilibrium rates and a spiking adjoint (docs/spide.md)")
    t.add_argument("--executor", choices=tuple(EXECUTORS), default="fixed",
                   help=f"what runs the rule ({EXECUTOR_HELP})")
    t.add_argument("--twin", action=argparse.BooleanOptionalAction, default=True,
                   help="also train the twin from the same start (float beside fixed or c, fixed beside "
                        "float) and print it beside")
    t.add_argument("--epochs", type=int_in(1), default=15)
    t.add_argument("--T", type=int_in(1, 65535), help="time steps per sample (default: the model's)")
    t.add_argument("--Tb", type=int_in(1, 65535), help="SPIDE's backward time steps (default: the model's)")
    t.add_argument("--lr-shift", type=int_in(0, 40), help="weight learning rate 2^-N (default: the model's)")
    t.add_argument("--slow-down-every", type=int_in(0), default=4, metavar="N",
                   help="halve the learning rates every N epochs (0: never)")
    t.add_argument("--batch", type=int_in(1), default=1, help="1 is online learning, as on the device")
    t.add_argument("--regulariser", type=float, metavar="W",
                   help="the cutoff's RCS regulariser of weight W >= 0 (early steps like late ones, so a calibrated "
                        "cutoff stops sooner; docs/cutoff.md): float twin of STOP only (--executor float)")
    t.add_argument("--late-fraction", type=float, metavar="F",
                   help="with --regulariser: the share of the last steps whose mean is the target (default 0.25)")
    t.add_argument("--seed", type=int_in(0, 0xFFFFFFFF), help="initial weights and PRNG streams")
    t.add_argument("--limit-train", type=int_in(1), metavar="N", help="use the first N training samples")
    t.add_argument("--limit-test", type=int_in(1), metavar="N", help="use the first N test samples")
    t.add_argument("-o", "--output", help="write the trained model (.elm blob)")
    t.add_argument("--plot", help="write the accuracy curves as a PNG")
    t.add_argument("--json", action="store_true", help="print the results as JSON")
    t.set_defaults(run=cmd_train)

    e = sub.add_parser("eval", help="test accuracy of a trained model")
    e.add_argument("model")
    e.add_argument("--data", default="digits")
    e.add_argument("--executor", choices=tuple(EXECUTORS), default="fixed", help=f"what runs it ({EXECUTOR_HELP})")
    e.add_argument("--limit-test", type=int_in(1), metavar="N")
    e.add_argument("--T", type=int_in(1, 65535), help="time steps per sample (default: the model's); a calibrated "
                                                      "cutoff holds only for the T it was calibrated for")
    e.add_argument("--cutoff", action="store_true",
                   help="stop each sample per the model's calibrated cutoff (edgelearn calibrate): accuracy "
                        "beside full T, and the time steps used")
    e.add_argument("--plot", help="with --cutoff: a PNG of accuracy against mean steps for --tolerances "
                                  "(calibrated on the training split) and the steps used")
    e.add_argument("--tolerances", type=tolerance_list, default=TOLERANCES, metavar="E,E,...",
                   help="the plot's tolerances (default: %(default)s)")
    e.add_argument("--limit-train", type=int_in(1), metavar="N", help="the plot calibrates on the first N "
                                                                      "training samples")
    e.add_argument("--min-support", type=int_in(1), metavar="N", help="the plot's calibration support "
                                                                      "(default: max(30, 1/tolerance))")
    e.add_argument("--json", action="store_true")
    e.set_defaults(run=cmd_eval)

    k = sub.add_parser("calibrate", help="anytime inference: per-step cutoff margins from the training split, "
                                         "stored in the model (docs/cutoff.md)")
    k.add_argument("model", help="a trained model (.elm)")
    k.add_argument("--data", default="digits", help="its training split calibrates: digits, mnist, or a directory "
                                                    "of MNIST-style IDX files")
    k.add_argument("--tolerance", type=tolerance, required=True, metavar="E",
                   help="the share of calibration samples above a step's margin allowed to be unsettled "
                        "(wrong then or later), in (0, 1)")
    k.add_argument("--executor", choices=tuple(EXECUTORS), default="fixed",
                   help=f"what runs the full-T inferences ({EXECUTOR_HELP})")
    k.add_argument("--T", type=int_in(1, 65535), help="calibrate for T time steps (default: the model's); the "
                                                      "written model runs T steps")
    k.add_argument("--min-support", type=int_in(1), metavar="N",
                   help="the fewest calibration samples a margin may rest on (default: max(30, 1/tolerance))")
    k.add_argument("--limit", type=int_in(1), metavar="N", help="calibrate on the first N training samples")
    k.add_argument("-o", "--output", help="write the calibrated model (.elm); default: MODEL itself when it is "
                                          "a .elm blob")
    k.add_argument("--plot", help="a PNG: accuracy against mean steps on the calibration set for --tolerances, "
                                  "and the steps used at --tolerance")
    k.add_argument("--tolerances", type=tolerance_list, default=TOLERANCES, metavar="E,E,...",
                   help="the plot's tolerances (default: %(default)s)")
    k.add_argument("--json", action="store_true")
    k.set_defaults(run=cmd_calibrate)

    i = sub.add_parser("info", help="layers, parameter counts and bytes of a model")
    i.add_argument("model")
    i.add_argument("--json", action="store_true")
    i.set_defaults(run=cmd_info)

    c = sub.add_parser("compile", help="config header, blob and the C runtime cross-compiled for a target")
    c.add_argument("model")
    c.add_argument("--target", required=True, help="a board of targets/catalogue.json")
    c.add_argument("-o", "--output", default="out/compile", help="directory for the generated files")
    c.set_defaults(run=cmd_compile)

    f = sub.add_parser("profile", help="memory per buffer against a target's budget, BPTT beside it")
    f.add_argument("model")
    f.add_argument("--target", required=True, help="a board of targets/catalogue.json")
    f.add_argument("--learner", choices=profile.LEARNERS, default="stop")
    f.add_argument("--T", type=int_in(1, 65535), help="time steps per sample (default: the model's)")
    f.add_argument("--plot", help="write a stacked-bar PNG")
    f.add_argument("--json", action="store_true")
    f.set_defaults(run=cmd_profile)
    p.command_errors = add_installed_commands(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except parser.command_errors as err:   # e.g. boards and links: one line, no traceback
        print(f"edgelearn: error: {err}", file=sys.stderr)
        return 2
    except (ModelError, datasets.DatasetError, ValueError) as err:
        print(f"edgelearn: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"edgelearn: error: cannot use {err.filename or 'a file'}: {err.strerror or err}", file=sys.stderr)
        return 2
    except profile.ToolchainMissing as err:
        print(f"edgelearn: error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"edgelearn: training diverged: {err}", file=sys.stderr)
        return 1


def load_data(args) -> datasets.Dataset:
    data = datasets.load(args.data)
    return datasets.subset(data, getattr(args, "limit_train", None), args.limit_test)


def model_for(args, data: datasets.Dataset):
    if args.model:
        model = load_model(args.model)
        if model.cutoff is not None:        # margins hold for the weights they were calibrated with
            print(f"note: {args.model}'s cutoff is dropped (training changes the weights); calibrate the "
                  "trained model again (edgelearn calibrate)", file=sys.stderr)
            model.cutoff = None
    else:
        name = f"{Path(data.name).name}-{args.learner}"
        sizes = [data.x_train.shape[1], args.hidden, data.n_classes]
        seed = 1 if args.seed is None else args.seed
        model = (spide_mlp(name, sizes, seed=seed) if args.learner == "spide"
                 else init_model(mlp(name, sizes, learning=Learning(seed=seed))))
    changes = {"rule": args.learner}
    if args.T is not None:
        changes["T"] = args.T
    if args.Tb is not None:
        changes["Tb"] = args.Tb
    if args.lr_shift is not None:
        changes["lr_weight_shift"] = args.lr_shift
    if args.seed is not None:
        changes["seed"] = args.seed
    model.learning = replace(model.learning, **changes)
    check_fits(model, data)
    return model.validate()


def check_fits(model, data: datasets.Dataset) -> None:
    """Refuse a model that cannot read this dataset's samples or name its classes."""
    if model.input.encoding == "events":
        raise ModelError(f"the model expects recorded event streams but {data.name} holds images; "
                         "use a model with 'direct' or 'rate' input encoding")
    if model.input.size != data.x_train.shape[1]:
        raise ModelError(f"the model takes {model.input.size} inputs but {data.name} samples have "
                         f"{data.x_train.shape[1]} features")
    if model.readout.size < data.n_classes:
        raise ModelError(f"the model's readout has {model.readout.size} neurons but {data.name} "
                         f"has {data.n_classes} classes")


def cmd_train(args) -> int:
    check_writable(args.output, (".elm",), "model")
    check_writable(args.plot, (".png",), "plot")
    data = load_data(args)
    model = model_for(args, data)
    options = {name: value for name, value in (("regulariser", args.regulariser),
                                               ("late_fraction", args.late_fraction)) if value is not None}
    if "late_fraction" in options and "regulariser" not in options:
        raise ModelError("--late-fraction sets the regulariser's target: use it with --regulariser")
    runs = [args.executor] + ([TWIN[args.executor]] if args.twin and not options else [])
    results, trained = {}, None
    for executor in runs:
        warm_up(model, executor, data)
        net = make_learner(model.copy(), executor, **options)
        results[executor] = train(net, data, args.epochs, batch=args.batch, shuffle_seed=model.learning.seed,
                                  slow_down_every=args.slow_down_every, progress=not args.json,
                                  label=executor)
        if trained is None:
            trained = net.to_model()
    if args.output:
        save_model(trained, args.output)
    if args.plot:
        from .plots import accuracy_curves
        accuracy_curves(results, args.plot, title=f"{model.name}: {args.learner} on {data.name}")
    report = {
        "model": model.name, "data": data.name, "learner": args.learner, "T": model.learning.T,
        "train_samples": len(data.x_train), "test_samples": len(data.x_test),
        "final_test_accuracy": {p: h[-1].test_accuracy for p, h in results.items()},
        "seconds": {p: round(sum(r.seconds for r in h), 2) for p, h in results.items()},
        "history": {p: [r.as_dict() for r in h] for p, h in results.items()},
    }
    if any(h[-1].health for h in results.values()):
        report["health"] = {p: h[-1].health for p, h in results.items()}
    emit(json.dumps(report, indent=2) if args.json else training_table(report, runs))
    return 0


def training_table(report: dict, runs: list[str]) -> str:
    head = f"{report['model']}: {report['learner']} on {report['data']} " \
           f"({report['train_samples']} train / {report['test_samples']} test, T={report['T']})"
    cols = ["epoch"] + [f"{p} test" for p in runs] + [f"{p} silent" for p in runs] + [f"{p} s" for p in runs]
    rows = [cols]
    for e in range(len(report["history"][runs[0]])):
        h = {p: report["history"][p][e] for p in runs}
        rows.append([str(e + 1)] + [f"{h[p]['test_accuracy']:.2%}" for p in runs]
                    + [f"{h[p]['silent_fraction']:.1%}" for p in runs] + [f"{h[p]['seconds']:.1f}" for p in runs])
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
    lines = [head, ""] + ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    lines.append("")
    lines += [f"final test accuracy, {p}: {report['final_test_accuracy'][p]:.2%} "
              f"({report['seconds'][p]:.1f} s)" for p in runs]
    for p, health in report.get("health", {}).items():
        lines.append(f"health of the last epoch, {p}: " + ("; ".join(health["problems"]) or "no problems") +
                     f" (backward couples saturated {health['backward_saturated']:.1%}, silent "
                     f"{health['backward_silent']:.1%}; loop gain {health['loop_gain']:.2f})")
    return "\n".join(lines)


def tolerance(text: str) -> float:
    """An argparse type: a tolerance in (0, 1), exclusive."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), exclusive, got {text}")
    if not 1 <= round(value * 1e6) <= CUTOFF_MAX_PPM:
        raise argparse.ArgumentTypeError(f"must be within 1e-6 and 1 - 1e-6 (a model records it in parts per "
                                         f"million), got {text}")
    return value


def tolerance_list(text: str) -> tuple[float, ...]:
    """An argparse type: comma-separated tolerances."""
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers in (0, 1), got {text!r}")
    return tuple(tolerance(p.strip()) for p in parts)


def margin_text(margins) -> str:
    return " ".join("never" if m == CUTOFF_NEVER else str(m) for m in margins)


def steps_lines(result: cutoff.CutoffEval) -> list[str]:
    """The distribution of steps used, one line per step some sample stopped at."""
    lines = []
    for step, count in enumerate(result.histogram, start=1):
        if count:
            share = count / result.samples
            lines.append(f"  {step:>5}  {count:>6}  {share:6.1%}  {'#' * max(1, round(40 * share))}")
    return ["  steps  samples  share"] + lines


def cutoff_report(result: cutoff.CutoffEval) -> dict:
    return {"accuracy": result.accuracy, "full_T_accuracy": result.full_accuracy,
            "loss_points": round(result.loss_points, 4), "agreement_with_full_T": result.agreement,
            "mean_steps": result.mean_steps,
            "steps_saved": result.steps_saved, "steps_histogram": list(result.histogram)}


def cmd_eval(args) -> int:
    if (args.plot or args.limit_train or args.min_support) and not args.cutoff:
        raise ModelError("--plot, --limit-train and --min-support draw the cutoff's trade-off curve: use them "
                         "with --cutoff")
    check_writable(args.plot, (".png",), "plot")
    data = load_data(args)
    model = load_model(args.model)
    check_fits(model, data)
    if args.T is not None:
        if model.cutoff is not None and not args.cutoff:
            model.cutoff = None          # not used: full-T inference at this T
        model.learning = replace(model.learning, T=args.T)
    if args.cutoff:
        return eval_cutoff(args, model, data)
    model.validate()
    acc = evaluate(make_learner(model, args.executor), data.x_test, data.y_test)
    if args.json:
        print(json.dumps({"model": model.name, "data": data.name, "executor": args.executor,
                          "test_samples": len(data.x_test), "test_accuracy": acc}))
    else:
        print(f"{model.name} on {data.name} ({len(data.x_test)} test samples, {args.executor}): {acc:.2%}")
    return 0


def eval_cutoff(args, model, data: datasets.Dataset) -> int:
    if model.cutoff is None:
        raise ModelError(f"{args.model}: the model has no calibrated cutoff; run 'edgelearn calibrate "
                         f"{args.model} --data {args.data} --tolerance E' first")
    model.validate()                       # margins for another T are refused here
    progress = not args.json
    result = cutoff.evaluate_model(model, data.x_test, data.y_test, args.executor, progress=progress)
    T = model.learning.T
    points = []
    report = {"model": model.name, "data": data.name, "executor": args.executor,
              "test_samples": len(data.x_test), "T": T, "tolerance": model.cutoff.tolerance,
              "margins": [None if m == CUTOFF_NEVER else int(m) for m in model.cutoff.margins],
              "test_accuracy": result.accuracy, **cutoff_report(result)}
    if args.plot:
        calib = cutoff.score_trajectories(model, data.x_train, args.executor, progress)
        test = cutoff.score_trajectories(model, data.x_test, args.executor, progress)
        points = cutoff.tradeoff(calib, data.y_train, args.tolerances, test, data.y_test, args.min_support)
        cutoff.plot_tradeoff({f"calibrated on {len(data.x_train)} training samples": points}, args.plot,
                             title=f"{model.name} on {data.name} ({len(data.x_test)} test samples, T={T})",
                             mark=result, mark_label=f"the model's cutoff (tolerance {model.cutoff.tolerance:g})")
        report["tradeoff"] = [p.as_dict() for p in points]
    if args.json:
        print(json.dumps(report))
        return 0
    lines = [f"{model.name} on {data.name} ({len(data.x_test)} test samples, {args.executor}, cutoff calibrated "
             f"at tolerance {model.cutoff.tolerance:g}): {result.accuracy:.2%}",
             f"full T = {T}: {result.full_accuracy:.2%} ({0.0 - result.loss_points:+.2f} points with the cutoff)",
             f"steps: mean {result.mean_steps:.2f} of {T} ({result.steps_saved:.1%} saved)"]
    lines += steps_lines(result)
    if args.plot:
        lines.append("trade-off (margins calibrated on the training split, evaluated on the test split):")
        lines += [f"  tolerance {p.tolerance:g}: {p.result.accuracy:.2%}, mean steps {p.result.mean_steps:.2f} "
                  f"({p.result.steps_saved:.1%} saved)" for p in points]
        lines.append(f"plot: {args.plot}")
    emit("\n".join(lines))
    return 0


def cmd_calibrate(args) -> int:
    output = args.output
    if output is None:
        if Path(args.model).suffix.lower() != ".elm":
            raise ModelError(f"{args.model} is not a .elm blob: give -o OUT.elm for the calibrated model (a .json "
                             "spec holds no weights, and margins hold only for the weights they were computed with)")
        output = args.model
    if Path(output).suffix.lower() == ".json":
        raise ModelError(f"cannot write {output}: a .json spec holds no weights, and the margins hold only for the "
                         "weights they were calibrated with; write a .elm blob")
    check_writable(output, (".elm",), "model")
    check_writable(args.plot, (".png",), "plot")
    data = datasets.subset(datasets.load(args.data), args.limit, None)
    model = load_model(args.model)
    check_fits(model, data)
    model.cutoff = None                   # recalibrated: old margins may be for another T
    if args.T is not None:
        model.learning = replace(model.learning, T=args.T)
    model.validate()
    progress = not args.json
    traj = cutoff.score_trajectories(model, data.x_train, args.executor, progress)
    calibrated = cutoff.calibrate_model(model, data.x_train, data.y_train, args.tolerance,
                                        min_support=args.min_support, trajectories=traj)
    margins = calibrated.cutoff.margins
    result = cutoff.evaluate(traj, data.y_train, margins)
    support = args.min_support or cutoff.default_support(args.tolerance)
    save_model(calibrated, output)
    T = model.learning.T
    report = {"model": model.name, "data": data.name, "executor": args.executor,
              "calibration_samples": len(data.x_train), "T": T, "tolerance": args.tolerance,
              "min_support": support, "margins": [None if m == CUTOFF_NEVER else int(m) for m in margins],
              "on_calibration_set": cutoff_report(result), "output": output}
    if args.plot:
        points = cutoff.tradeoff(traj, data.y_train, args.tolerances, min_support=args.min_support)
        cutoff.plot_tradeoff({"calibration set": points}, args.plot, mark=result,
                             mark_label=f"tolerance {args.tolerance:g}",
                             title=f"{model.name}: the cutoff on its {len(data.x_train)} calibration samples "
                                   f"({data.name}, T={T})")
        report["tradeoff_on_calibration_set"] = [p.as_dict() for p in points]
        report["plot"] = args.plot
    if args.json:
        print(json.dumps(report))
        return 0
    lines = [f"{model.name}: cutoff calibrated on {len(data.x_train)} training samples of {data.name} "
             f"(T={T}, tolerance {args.tolerance:g}, at least {support} samples per margin)",
             f"margins: {margin_text(margins)}",
             f"on the calibration set (optimistic: the margins were fit to it): {result.accuracy:.2%} (full T: "
             f"{result.full_accuracy:.2%}), mean steps {result.mean_steps:.2f} of {T} ({result.steps_saved:.1%} saved)",
             f"wrote {output}" + (f" and {args.plot}" if args.plot else "")]
    emit("\n".join(lines))
    return 0


def cmd_info(args) -> int:
    model = load_model(args.model)
    sizes = model.sizes()
    layers = []
    for layer in model.layers:
        p = model.params[layer.name]
        layers.append({
            "name": layer.name, "kind": layer.kind, "neuron": layer.neuron.kind,
            "inputs": [f"{e.source}" + (f"@-{e.delay}" if e.delay else "") for e in layer.inputs],
            "shape": list(layer.shape), "fan_in": model.fan_in(layer),
            "weight_format": f"int16 Q{15 - layer.weight_frac}.{layer.weight_frac}",
            "parameters": model.n_parameters()[layer.name], "bytes": model.parameter_bytes()[layer.name],
            "leak": p.leak / (1 << 16),
        })
    info = {"name": model.name, "input": {"shape": list(model.input.shape), "encoding": model.input.encoding,
                                          "size": sizes["input"]},
            "learning": model.learning.__dict__, "layers": layers,
            "total_parameters": sum(l["parameters"] for l in layers),
            "total_bytes": sum(l["bytes"] for l in layers)}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{model.name}: input {tuple(model.input.shape)} ({model.input.encoding})")
    cols = ["layer", "kind", "neuron", "inputs", "shape", "fan-in", "weights", "params", "bytes"]
    rows = [cols] + [[l["name"], l["kind"], l["neuron"], ",".join(l["inputs"]), "x".join(map(str, l["shape"])),
                      str(l["fan_in"]), l["weight_format"], str(l["parameters"]), str(l["bytes"])] for l in layers]
    rows.append(["total", "", "", "", "", "", "", str(info["total_parameters"]), str(info["total_bytes"])])
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    lr = model.learning
    if lr.rule == "spide":      # SPIDE learns weights only, once per sample (docs/spide.md)
        print(f"learning: spide, T={lr.T}, Tb={lr.Tb}, lr 2^-{lr.lr_weight_shift} (weights), seed {lr.seed}")
        return 0
    print(f"learning: {lr.rule}, T={lr.T}, lr 2^-{lr.lr_weight_shift} (weights) 2^-{lr.lr_threshold_shift} "
          f"(thresholds) 2^-{lr.lr_leak_shift} (leaks), surrogate half-width 2^{lr.surrogate_shift}, "
          f"updates per {lr.update}, seed {lr.seed}")
    return 0


def cmd_compile(args) -> int:
    model = load_model(args.model)
    build = profile.compile_for_target(model, args.target, args.output)
    print(f"{args.output}/model.elm, {args.output}/edgelearn_config.h "
          f"(arena {profile.arena_plan(model)['total']} bytes), objects for {args.target}:")
    print(build.size_output, end="")
    print(f"stack (estimate, -fstack-usage): {build.stack} bytes")
    return 0


def cmd_profile(args) -> int:
    if args.plot:
        check_writable(args.plot, (".png",), "plot")
    model = load_model(args.model)
    report = profile.profile(model, args.target, args.learner, args.T or model.learning.T)
    if args.plot:
        profile.plot(report, args.plot)
    print(json.dumps(report, indent=2) if args.json else profile.format_table(report))
    return 0 if report["fits"] else 1


if __name__ == "__main__":
    sys.exit(main())

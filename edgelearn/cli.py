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

from tqdm import tqdm

from . import __version__, cli_psn, cutoff, datasets, deploy, profile
from .cli_util import DefaultsShown, check_writable, emit, int_in, parsers_of
from .adapt import fit_to_data
from .augment import recipe_shift
from .contract import CUTOFF_MAX_PPM, CUTOFF_NEVER, MAX_LR_SHIFT
from .encoders import RECORDED
from .errors import ModelError, TrainingDiverged
from .executors import EXECUTORS, TWIN, exactness
from .executors import options as executor_options
from .model import Learning, Schedule, mlp
from .modelfile import load_model, save_model
from .modelread import is_psn_file
from .rules import init_model
from .rules.spide.spec import spide_mlp
from .plan import runtime_of
from .train import evaluate, make_learner, train, warm_up

EXECUTOR_HELP = "; ".join(f"{name}: {exactness(name).value}" for name in EXECUTORS)
COMMANDS_GROUP = "edgelearn.commands"
DECAY_EVERY, DECAY_STEPS = 3, 3      # the default schedule, measured in docs/training.md
VALIDATION = 0.1                     # the default validation share
EPOCHS = 15
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


def memory_size(text: str) -> int:
    """An argparse type: a memory size (edgelearn.profile.parse_bytes: 128K, 1M, bytes)."""
    try:
        return profile.parse_bytes(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def firmware_size_args(p) -> None:
    p.add_argument("--model-area", type=memory_size, metavar="BYTES",
                   help="the link-protocol firmware's model areas (two of them), e.g. 512K "
                        "(default: the firmware's own; profile prints it)")
    p.add_argument("--arena", type=memory_size, metavar="BYTES",
                   help="the link-protocol firmware's arena (default: the firmware's own; profile prints it)")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every verb; ``.command_errors``: the exception types the installed
    commands declare (see add_installed_commands)."""
    p = argparse.ArgumentParser(prog="edgelearn", description="On-device learning for spiking neural networks.")
    p.add_argument("--version", action="version", version=f"edgelearn {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model on a dataset and report test accuracy")
    t.add_argument("--data", default="digits",
                   help="digits, mnist, smnist (sequential MNIST: a row per step), lagged-xor (a memory task), an .npz "
                        "of x_train/y_train/"
                        "x_test/y_test arrays ([n, features] or sequences [n, steps, features]), or a directory "
                        "of MNIST-style IDX files or of those .npy arrays (docs/datasets.md)")
    t.add_argument("--model", help="model spec (.json) or trained blob (.elm), or a PSN network's spec or trained "
                                   ".psn (docs/psn.md); default: an MLP sized to the data")
    t.add_argument("--hidden", type=int_in(1, 65535), default=256, help="hidden neurons of the default MLP")
    t.add_argument("--learner", choices=("stop", "readout", "spide"),
                   help="stop: every layer; readout: the last layer only (the cheap baseline); spide: "
                        "equilibrium rates and a spiking adjoint (docs/spide.md) (default: --model's "
                        "learning.rule, else stop)")
    t.add_argument("--executor", choices=tuple(EXECUTORS), default="fixed",
                   help=f"what runs the rule ({EXECUTOR_HELP})")
    t.add_argument("--twin", action=argparse.BooleanOptionalAction, default=False,
                   help="also train the twin from the same start (float beside fixed or c, fixed beside "
                        "float) and print it beside")
    t.add_argument("--epochs", type=int_in(1), help=f"passes over the training data (default: {EPOCHS}, or a PSN "
                                                    "spec's learning.epochs)")
    t.add_argument("--T", type=int_in(1, 65535), help="time steps per sample (default: the model's)")
    t.add_argument("--Tb", type=int_in(1, 65535), help="SPIDE's backward time steps (default: the model's)")
    t.add_argument("--lr-shift", type=int_in(0, 40), help="weight learning rate 2^-N (default: the model's)")
    t.add_argument("--decay-every", type=int_in(0, 1 << 16), metavar="N",
                   help=f"the learning-rate schedule, run by the device too (docs/numerics.md §6c): halve the "
                        f"rates every N epochs' worth of samples (0: no schedule; default {DECAY_EVERY}, or the "
                        "model's own schedule)")
    t.add_argument("--decay-steps", type=int_in(1, MAX_LR_SHIFT), metavar="S",
                   help=f"... at most S times (default {DECAY_STEPS})")
    t.add_argument("--validation", type=fraction_or_zero, metavar="F",
                   help=f"hold out this share of the training data (seeded, stratified) to choose the best epoch, "
                        f"which -o writes (0: no split, -o writes the last epoch; default {VALIDATION}, or none when "
                        "the training data is too small to hold every class in both parts)")
    t.add_argument("--init", choices=("data", "model"),
                   help="data: scale a new model's initial weights to a few training samples so each layer's "
                        "currents have the same spread, and choose the weight rate from the input energy (the "
                        "default for a new STOP model; docs/training.md); model: the seeded initialisation as is "
                        "(the default for a trained .elm)")
    t.add_argument("--batch", type=int_in(1), help="1 is online learning, as on the device (default: 1, or a PSN "
                                                  "spec's learning.batch for its host rule)")
    t.add_argument("--threads", type=int_in(1), metavar="N",
                   help="threads for a batch (--batch > 1) of the fixed executor of STOP, the same results for any "
                        "N (docs/numerics.md §6e; default: numba's count, NUMBA_NUM_THREADS)")
    t.add_argument("--augment-shift", type=int_in(0, 255), metavar="PX",
                   help="move every training image by up to PX pixels each way, drawn anew each epoch, the border "
                        "filled from the image's edge; validation and test data stay as they are (default: 1 for images of at least "
                        "16 pixels a side, such as MNIST's 28x28, else 0; docs/training.md)")
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
    e.add_argument("model", help="a trained model (.elm or a PSN network's .psn) or a spec (.json)")
    e.add_argument("--data", default="digits", help="digits, mnist, smnist, lagged-xor, an .npz/.csv file or a directory (as train)")
    e.add_argument("--executor", choices=tuple(EXECUTORS), default="fixed", help=f"what runs it ({EXECUTOR_HELP})")
    e.add_argument("--limit-test", type=int_in(1), metavar="N", help="use the first N test samples")
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
    e.add_argument("--json", action="store_true", help="print the results as JSON")
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
    k.add_argument("--json", action="store_true", help="print the margins and their effect as JSON")
    k.set_defaults(run=cmd_calibrate)

    i = sub.add_parser("info", help="layers, parameter counts and bytes of a model")
    i.add_argument("model", help="a model spec (.json) or blob (.elm), or a PSN network's (.json, .psn)")
    i.add_argument("--json", action="store_true", help="print the description as JSON")
    i.set_defaults(run=cmd_info)

    c = sub.add_parser("compile", help="config header, blob, the C runtime cross-compiled for a target and a library "
                                       "bundle; --firmware: a flashable image; for an FPGA target the Verilog, "
                                       "synthesis, place and route and the bitstream")
    c.add_argument("model", help="a model spec (.json) or trained blob (.elm), or a PSN network's (.json, .psn)")
    c.add_argument("--target", required=True, help="a board of targets/catalogue.json")
    c.add_argument("-o", "--output", default="out/compile", help="directory for the generated files (default "
                                                                  "out/compile)")
    c.add_argument("--firmware", action="store_true",
                   help="also firmware.elf, .bin and .hex: the link-protocol firmware for the board, booting with "
                        "the model (boards that run it: a firmware package's, e.g. mps2-an386)")
    firmware_size_args(c)
    c.set_defaults(run=cmd_compile)

    f = sub.add_parser("profile", help="memory per buffer against a target's budget: inference, the learner and "
                                       "BPTT, and what training adds")
    f.add_argument("model", help="a model spec (.json) or trained blob (.elm), or a PSN network's (.json, .psn)")
    f.add_argument("--target", help="a board of targets/catalogue.json (or give --ram and --flash)")
    f.add_argument("--ram", type=memory_size, help="the board's SRAM, e.g. 128K (over the target's; "
                                                   "without --target: a custom board)")
    f.add_argument("--flash", type=memory_size, help="the board's flash, e.g. 1M (as --ram)")
    f.add_argument("--learner", choices=profile.LEARNERS, default="stop", help="the rule to train with (default stop)")
    f.add_argument("--T", type=int_in(1, 65535), help="time steps per sample (default: the model's)")
    f.add_argument("--plot", help="write a stacked-bar PNG")
    f.add_argument("--json", action="store_true", help="print the profile as JSON")
    firmware_size_args(f)
    f.set_defaults(run=cmd_profile)
    add_interchange_commands(sub)
    p.command_errors = add_installed_commands(sub)
    for parser in parsers_of(p):               # every verb's --help shows the defaults
        parser.formatter_class = DefaultsShown
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
    except KeyboardInterrupt:
        print("edgelearn: interrupted", file=sys.stderr)
        return 130


def load_data(args) -> datasets.Dataset:
    data = datasets.load(args.data)
    return datasets.subset(data, getattr(args, "limit_train", None), args.limit_test)


def model_for(args, data: datasets.Dataset) -> tuple:
    """The model to train, with the CLI's changes, and what fitting it to the data chose
    (None when it was not fitted)."""
    trained = bool(args.model) and load_model_kind(args.model) == "blob"
    if args.model:
        model = load_model(args.model)
        if model.cutoff is not None:        # margins hold for the weights they were calibrated with
            print(f"note: {args.model}'s cutoff is dropped (training changes the weights); calibrate the "
                  "trained model again (edgelearn calibrate)", file=sys.stderr)
            model.cutoff = None
    else:
        name = f"{Path(data.name).name}-{args.learner or 'stop'}"
        sizes = [data.x_train.shape[-1], args.hidden, data.n_classes]
        seed = 1 if args.seed is None else args.seed
        if datasets.is_sequence(data):      # one row per step, graded currents, over the whole recording
            model = init_model(mlp(name, sizes, encoding="sequence",
                                   learning=Learning(seed=seed, T=data.x_train.shape[1])))
        else:
            model = (spide_mlp(name, sizes, seed=seed) if args.learner == "spide"
                     else init_model(mlp(name, sizes, learning=Learning(seed=seed))))
    changes = {"rule": args.learner} if args.learner else {}
    if args.T is not None:
        changes["T"] = args.T
    if args.Tb is not None:
        changes["Tb"] = args.Tb
    if args.seed is not None:
        changes["seed"] = args.seed
    model.learning = replace(model.learning, **changes)
    check_fits(model, data)
    model.validate()
    fit = None
    init = args.init or ("model" if trained or runtime_of(model) != "stop" else "data")
    if init == "data":
        if trained:
            print(f"note: --init data rescales {args.model}'s trained weights", file=sys.stderr)
        # a new model's rates are fitted too; a spec's author chose its own
        model, fit = fit_to_data(model, data.x_train, learning_rate=not args.model and args.lr_shift is None)
    if args.lr_shift is not None:
        model.learning = replace(model.learning, lr_weight_shift=args.lr_shift)
    if args.decay_every is not None or args.decay_steps is not None or model.schedule is None:
        every = DECAY_EVERY if args.decay_every is None else args.decay_every
        steps = DECAY_STEPS if args.decay_steps is None else args.decay_steps
        model.schedule = Schedule(every * len(data.x_train), steps) if every else None
    return model.validate(), fit


def load_model_kind(path: str) -> str:
    """'blob' for a trained model file, 'spec' for a JSON spec (load_model decides the same way)."""
    return "spec" if Path(path).suffix.lower() == ".json" else "blob"


def check_fits(model, data: datasets.Dataset) -> None:
    """Refuse a model that cannot read this dataset's samples or name its classes."""
    recorded = model.input.encoding in RECORDED
    if datasets.is_sequence(data) and not recorded:
        raise ModelError(f"{data.name} holds sequences ({data.x_train.shape[1]} steps of {data.x_train.shape[2]} "
                         f"features) but the model's input is {model.input.encoding!r}, the same every step; use "
                         "a model with 'sequence' (graded currents) or 'events' (spikes) input encoding")
    if recorded and not datasets.is_sequence(data):
        raise ModelError(f"the model expects recordings ({model.input.encoding!r}, one row per step) but "
                         f"{data.name} holds static samples; use a model with 'direct' or 'rate' input encoding")
    if model.input.size != data.x_train.shape[-1]:
        raise ModelError(f"the model takes {model.input.size} inputs but {data.name} samples have "
                         f"{data.x_train.shape[-1]} features")
    if datasets.is_sequence(data) and data.x_train.shape[1] > model.learning.T:
        raise ModelError(f"{data.name}'s sequences have {data.x_train.shape[1]} steps but the model runs "
                         f"T = {model.learning.T}: the steps past T would be dropped; use --T "
                         f"{data.x_train.shape[1]}")
    if model.readout.size < data.n_classes:
        raise ModelError(f"the model's readout has {model.readout.size} neurons but {data.name} "
                         f"has {data.n_classes} classes")


def cmd_train(args) -> int:
    if args.model and is_psn_file(args.model):
        return cli_psn.cmd_train(args, validation_split(args, load_data(args)))
    check_writable(args.output, (".elm",), "model")
    check_writable(args.plot, (".png",), "plot")
    args.epochs, args.batch = args.epochs or EPOCHS, args.batch or 1
    data = validation_split(args, load_data(args))
    model, fit = model_for(args, data)
    shift = recipe_shift(data) if args.augment_shift is None else args.augment_shift
    options = {name: value for name, value in (("regulariser", args.regulariser),
                                               ("late_fraction", args.late_fraction)) if value is not None}
    if "late_fraction" in options and "regulariser" not in options:
        raise ModelError("--late-fraction sets the regulariser's target: use it with --regulariser")
    runs = [args.executor] + ([TWIN[args.executor]] if args.twin and not options else [])
    if fit is not None and not args.json:
        print(f"note: {fit_line(fit)}", file=sys.stderr)
    if shift and args.augment_shift is None and not args.json:
        print(f"note: training images move by up to {shift} pixel each epoch (--augment-shift 0: never)",
              file=sys.stderr)
    threaded = [executor for executor in runs if "threads" in executor_options(executor, runtime_of(model))]
    if args.threads is not None and not threaded:
        raise ModelError(f"--threads: the fixed executor of STOP runs a batch on several threads (docs/numerics.md "
                         f"§6e); the {args.executor!r} executor of rule {model.learning.rule!r} does not")
    results = {}
    for executor in runs:
        warm_up(model, executor, data)
        threads = {"threads": args.threads} if args.threads is not None and executor in threaded else {}
        net = make_learner(model.copy(), executor, **options, **threads)
        results[executor] = train(net, data, args.epochs, batch=args.batch, shuffle_seed=model.learning.seed,
                                  progress=not args.json, label=executor, on_epoch=epoch_line(executor, args.json),
                                  augment_shift=shift)
        if args.output and executor == runs[0]:      # written before the twin runs
            save_model(results[executor].best, args.output)
        if results[executor].interrupted:
            runs = list(results)
            break
    primary = results[runs[0]]
    if args.plot:
        from .plots import accuracy_curves
        accuracy_curves({p: r.history for p, r in results.items()}, args.plot,
                        title=f"{model.name}: {model.learning.rule} on {data.name}")
    report = {
        "model": model.name, "data": data.name, "learner": model.learning.rule, "T": model.learning.T,
        "train_samples": len(data.x_train), "validation_samples": 0 if data.x_val is None else len(data.x_val),
        "test_samples": len(data.x_test),
        "schedule": None if model.schedule is None else {"every": model.schedule.every, "steps": model.schedule.steps},
        "init": None if fit is None else fit_report(fit),
        "augment_shift": shift,
        "final_test_accuracy": {p: r.history[-1].test_accuracy for p, r in results.items() if r.history},
        "best_epoch": {p: r.best_epoch for p, r in results.items()},
        "seconds": {p: round(sum(e.seconds for e in r.history), 2) for p, r in results.items()},
        "warnings": {p: r.warnings for p, r in results.items()},
        "history": {p: [e.as_dict() for e in r.history] for p, r in results.items()},
    }
    if args.output:
        report["output"] = {"path": args.output, "epoch": primary.best_epoch, "executor": runs[0]}
    if any(r.history and r.history[-1].health for r in results.values()):
        report["health"] = {p: r.history[-1].health for p, r in results.items() if r.history}
    interrupted = [p for p, r in results.items() if r.interrupted]
    if interrupted:
        report["interrupted"] = {p: len(results[p].history) for p in interrupted}
    emit(json.dumps(report, indent=2) if args.json else training_table(report, runs))
    return 130 if interrupted else 0


def epoch_line(executor: str, as_json: bool):
    """What ``train`` reports after each epoch: a line on stderr while training goes on (one
    JSON object per line with --json, whose report comes on stdout at the end)."""
    def show(e) -> None:
        if as_json:
            text = json.dumps({"executor": executor, **e.as_dict()})
        else:
            validation = "" if e.validation_accuracy is None else f"validation {e.validation_accuracy:.2%}, "
            text = (f"{executor} epoch {e.epoch}: {validation}test {e.test_accuracy:.2%}, silent "
                    f"{e.silent_fraction:.1%}, weight rate 2^-{e.lr_weight_shift}, {e.seconds:.1f} s")
        tqdm.write(text, file=sys.stderr)
    return show


def validation_split(args, data: datasets.Dataset) -> datasets.Dataset:
    """The data with the validation share held out: --validation's, or by default VALIDATION
    where the training data can spare it (every class in both parts), else none, with a note."""
    seed = 1 if args.seed is None else args.seed
    if args.validation is not None:
        return datasets.hold_out(data, args.validation, seed) if args.validation else data
    try:
        return datasets.hold_out(data, VALIDATION, seed)
    except datasets.DatasetError as err:
        print(f"note: no validation split ({err}); -o writes the last epoch", file=sys.stderr)
        return data


def fit_report(fit) -> dict:
    return {"input_energy": round(fit.input_energy, 3), "scales": {k: round(v, 4) for k, v in fit.scales.items()},
            "current_std": {k: round(v, 4) for k, v in fit.current_std.items()},
            "rates": {k: round(v, 4) for k, v in fit.rates.items()},
            "lr_weight_shift": fit.lr_weight_shift, "lr_threshold_shift": fit.lr_threshold_shift}


def fit_line(fit) -> str:
    layers = ", ".join(f"{name} x{fit.scales[name]:.2f} (fires {fit.rates[name]:.1%})" for name in fit.scales)
    return (f"the initial weights are fitted to the data (--init data): input energy {fit.input_energy:.1f}; {layers}; "
            f"rates 2^-{fit.lr_weight_shift} (weights), 2^-{fit.lr_threshold_shift} (thresholds)")


def training_table(report: dict, runs: list[str]) -> str:
    head = f"{report['model']}: {report['learner']} on {report['data']} " \
           f"({report['train_samples']} train / {report['validation_samples']} validation / " \
           f"{report['test_samples']} test, T={report['T']})"
    validated = report["validation_samples"] > 0
    cols = (["epoch"] + ([f"{p} valid" for p in runs] if validated else []) + [f"{p} test" for p in runs]
            + [f"{p} silent" for p in runs] + ["lr"] + [f"{p} s" for p in runs])
    rows = [cols]
    for e in range(min(len(report["history"][p]) for p in runs)):
        h = {p: report["history"][p][e] for p in runs}
        rows.append([str(e + 1)] + ([f"{h[p]['validation_accuracy']:.2%}" for p in runs] if validated else [])
                    + [f"{h[p]['test_accuracy']:.2%}" for p in runs]
                    + [f"{h[p]['silent_fraction']:.1%}" for p in runs] + [f"2^-{h[runs[0]]['lr_weight_shift']}"]
                    + [f"{h[p]['seconds']:.1f}" for p in runs])
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
    lines = [head, ""] + ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    lines.append("")
    for p, epochs in report.get("interrupted", {}).items():
        lines.append(f"interrupted (Ctrl-C): {p} completed {epochs} of its epochs")
    for p in runs:
        best = report["best_epoch"][p]
        if not report["history"][p]:
            continue
        lines.append(f"final test accuracy, {p}: {report['final_test_accuracy'][p]:.2%} "
                     f"({report['seconds'][p]:.1f} s)" + (f"; best on validation: epoch {best}, test "
                                                          f"{report['history'][p][best - 1]['test_accuracy']:.2%}"
                                                          if validated else ""))
    if "output" in report:
        out = report["output"]
        lines.append(f"wrote {out['path']}: the {out['executor']} model of epoch {out['epoch']}"
                     + (" (best on validation)" if validated else " (the last)"))
    for p, health in report.get("health", {}).items():
        lines.append(f"health of the last epoch, {p}: " + ("; ".join(health["problems"]) or "no problems") +
                     f" (backward couples saturated {health['backward_saturated']:.1%}, silent "
                     f"{health['backward_silent']:.1%}; loop gain {health['loop_gain']:.2f})")
    return "\n".join(lines)


def fraction_or_zero(text: str) -> float:
    """An argparse type: 0, or a share in (0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be 0 (no split) or in (0, 1), got {text}")
    return value


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
    if is_psn_file(args.model):
        return cli_psn.cmd_eval(args, load_data(args))
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
    if is_psn_file(args.model):
        return cli_psn.cmd_info(args)
    model = load_model(args.model)
    sizes = model.sizes()
    layers = []
    for layer in model.layers:
        p = model.params[layer.name]
        layers.append({
            "name": layer.name, "kind": layer.kind, "neuron": layer.neuron.kind if layer.neuron else "-",
            "inputs": [f"{e.source}" + (f"@-{e.delay}" if e.delay else "") for e in layer.inputs],
            "shape": list(layer.shape), "fan_in": model.fan_in(layer),
            "weight_format": (f"int{layer.weight_bits} Q{layer.weight_bits - 1 - layer.weight_frac}.{layer.weight_frac}"
                              if p.weight.size else "-"),
            "parameters": model.n_parameters()[layer.name], "bytes": model.parameter_bytes()[layer.name],
            "leak": p.leak / (1 << 16),
            **({"filter": {"taps": layer.filter.taps, "dilation": layer.filter.dilation, "field": layer.ring}}
               if layer.filter else {}),
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
    kinds = [l["kind"] + (f" K{l['filter']['taps']} D{l['filter']['dilation']}" if "filter" in l else "") for l in layers]
    rows = [cols] + [[l["name"], kind, l["neuron"], ",".join(l["inputs"]), "x".join(map(str, l["shape"])),
                      str(l["fan_in"]), l["weight_format"], str(l["parameters"]), str(l["bytes"])]
                     for l, kind in zip(layers, kinds)]
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


def fpga_report(model, target: str, output: str | None = None) -> tuple[str, bool, dict]:
    """An FPGA target's plan, synthesis and place-and-route report (edgelearn.hdl.synth, cached):
    its text, whether the model fits, the numbers; with ``output``, the design, its reports and
    the bitstream go there. A model whose buffers do not fit is not synthesised."""
    import shutil
    from .hdl import synth
    plan = synth.memory_plan(model, target)
    numbers = {"target": target, "model": model.name, "placement": plan.placement, "blocks": plan.blocks,
               "block_ram": plan.block_ram, "spram": plan.spram, "fits": plan.fits}
    if not plan.fits:
        return synth.format_report(model, plan, None), False, numbers
    report, built = synth.synthesize(model, target)
    if output:
        Path(output).mkdir(parents=True, exist_ok=True)
        for f in built.iterdir():
            shutil.copyfile(f, Path(output) / f.name)
    numbers.update(report, fits=synth.fits(report))
    return synth.format_report(model, plan, report), numbers["fits"], numbers


def firmware_layout(args, target: str | None, need: bool = False) -> dict | None:
    """The link-protocol firmware's layout on ``target`` (its two model areas and its arena, with
    --model-area and --arena), from the installed firmware package; None when the target does
    not run it. ``need``: refuse that (--firmware)."""
    fw = deploy.firmware()
    layout = fw.layout(target) if fw is not None and target is not None else None
    sized = args.model_area is not None or args.arena is not None
    if layout is None and (need or sized):
        flags = "--firmware" if need else "--model-area and --arena"
        if fw is None:
            raise ModelError(f"{flags}: no firmware package is installed (firmware_host, the edgelearn.firmware "
                             "entry point)")
        raise ModelError(f"{flags}: the link-protocol firmware runs on {', '.join(fw.boards)}, not on "
                         f"{target or 'a custom board'}")
    if layout is None:
        return None
    return {**layout, "model_area": layout["model_area"] if args.model_area is None else args.model_area,
            "arena": layout["arena"] if args.arena is None else args.arena}


def cmd_compile(args) -> int:
    model = load_model(args.model)
    if "fpga" in profile.target_info(args.target):
        if args.firmware or args.model_area or args.arena:
            raise ModelError(f"{args.target} is an FPGA: --firmware, --model-area and --arena are for a "
                             "microcontroller")
        from .hdl import synth
        plan = synth.memory_plan(model, args.target)
        if not plan.fits:
            raise ModelError(synth.not_fitting(model, plan))
        text, fits, _ = fpga_report(model, args.target, args.output)
        print(text)
        print(f"{args.output}: el_model.v, memory images, RTL, the board top, flow.ys, reports"
              + (", design.bin (icepack)" if (Path(args.output) / "design.bin").is_file() else ""))
        return 0 if fits else 1
    layout = firmware_layout(args, args.target, need=args.firmware)
    fit = profile.profile(model, args.target, model.learning.rule, model.learning.T, firmware=layout)
    if not fit["fits"]:
        hint = "; --model-area and --arena build the firmware with other sizes" if layout is not None else ""
        raise ModelError(f"{model.name!r} does not fit {args.target}: {'; '.join(fit['refusals'])}{hint} "
                         f"(edgelearn profile {args.model} --target {args.target}: every buffer)")
    build = profile.compile_for_target(model, args.target, args.output)
    out = Path(args.output)
    print(f"{out}/model.elm, {out}/edgelearn_config.h "
          f"(arena {profile.arena_plan(model)['total']} bytes), objects for {args.target}:")
    print(build.size_output, end="")
    print(f"stack (estimate, -fstack-usage): {build.stack} bytes")
    print(f"{out}/bundle: the runtime's sources, model_blob.c/.h, main.c, Makefile, CMakeLists.txt "
          f"(cp -r {out}/bundle DIR && make -C DIR)")
    if layout is not None:
        print(f"RAM with the link-protocol firmware's model areas and arena: {fit['total_ram']:,} of {fit['sram']:,} bytes")
    if args.firmware:
        image = deploy.firmware().write_firmware(args.target, out / "bundle" / "model_blob.c", out,
                                                 model_area=layout["model_area"], arena=layout["arena"])
        print(f"{image['elf']}, {image['bin']} ({image['bin'].stat().st_size:,} bytes), {image['hex']}: the "
              f"link-protocol firmware for {args.target} booting with {model.name!r} "
              f"(text {image['text']:,}, data {image['data']:,}, bss {image['bss']:,})")
    return 0


def cmd_profile(args) -> int:
    if args.plot:
        check_writable(args.plot, (".png",), "plot")
    model = load_model(args.model)
    sized = args.ram is not None or args.flash is not None
    if args.target is not None and "fpga" in profile.target_info(args.target) and args.learner == "stop" \
            and not args.plot and not sized:
        text, fits, numbers = fpga_report(model, args.target)
        print(json.dumps(numbers, indent=2) if args.json else text)
        return 0 if fits else 1
    layout = firmware_layout(args, args.target)
    report = profile.profile(model, args.target, args.learner, args.T or model.learning.T, sram=args.ram,
                             flash=args.flash, firmware=layout)
    if args.plot:
        profile.plot(report, args.plot)
    print(json.dumps(report, indent=2) if args.json else profile.format_table(report))
    return 0 if report["fits"] else 1


# -- import / export: ONNX and NIR (edgelearn.interop, docs/interop.md) -------------------------
INTERCHANGE_FORMATS = {".onnx": "onnx", ".nir": "nir"}


def add_interchange_commands(sub) -> None:
    m = sub.add_parser("import", help="bring a model in: an ONNX ReLU network converted to a spiking one, or a NIR "
                                      "graph (docs/interop.md)")
    m.add_argument("file", help="model.onnx or model.nir")
    m.add_argument("-o", "--output", required=True, help="the edgelearn model: a .elm blob (structure and parameters)")
    m.add_argument("--format", choices=tuple(INTERCHANGE_FORMATS.values()), help="default: by the file's suffix")
    m.add_argument("--data", help="digits, mnist, or a directory of MNIST-style IDX files. ONNX (required): the "
                                  "training split calibrates the thresholds, the test split measures the ANN and the "
                                  "SNN; NIR (optional): the test split measures the model")
    m.add_argument("--calibration", type=int_in(1), default=1000, metavar="N",
                   help="ONNX: calibration samples, the first N of the training split (default: %(default)s)")
    m.add_argument("--T", type=int_in(1, 65535), help="time steps per sample (ONNX default: 32; NIR: the file's, "
                                                      "else 8)")
    m.add_argument("--percentile", type=float, default=99.9, metavar="P",
                   help="ONNX: each layer's scale is the P-th percentile of its positive activations (default: "
                        "%(default)s, Rueckauer et al. 2017)")
    m.add_argument("--input-divisor", type=float, default=256, metavar="D",
                   help="ONNX: the network reads a pixel byte as byte / D (256: edgelearn's direct input; "
                        "torchvision's ToTensor: 255)")
    m.add_argument("--dt", type=float, help="NIR: seconds per time step (default: the file's, else 1e-4, snnTorch's)")
    m.add_argument("--limit-test", type=int_in(1), metavar="N", help="measure on the first N test samples")
    m.add_argument("--json", action="store_true", help="print the conversion's report as JSON")
    m.set_defaults(run=cmd_import)

    x = sub.add_parser("export", help="take a model out: ONNX (the float twin's inference unrolled over T) or NIR "
                                      "(docs/interop.md)")
    x.add_argument("model", help="a model (.elm, or a .json spec: freshly initialised parameters)")
    x.add_argument("-o", "--output", required=True, help="OUT.onnx or OUT.nir")
    x.add_argument("--format", choices=tuple(INTERCHANGE_FORMATS.values()), help="default: by the output's suffix")
    x.add_argument("--T", type=int_in(1, 65535), help="ONNX: the steps to unroll (default: the model's T)")
    x.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="ONNX: the graph's arithmetic (default: float64, the float twin's)")
    x.add_argument("--dt", type=float, default=1e-4, help="NIR: seconds per time step (default: %(default)s, snnTorch's)")
    x.set_defaults(run=cmd_export)


def interchange_format(path: str, given: str | None) -> str:
    if given:
        return given
    fmt = INTERCHANGE_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ModelError(f"cannot tell the format of {path!r} from its suffix: use {' or '.join(INTERCHANGE_FORMATS)}, "
                         "or --format")
    return fmt


def test_accuracy(model, data: datasets.Dataset, executor: str, progress: bool) -> float:
    """evaluate() over the test split in chunks, with a progress bar."""
    from .train import predictions
    net, right = make_learner(model.copy(), executor), 0
    for lo in tqdm(range(0, len(data.x_test), 500), desc=f"{executor} test", unit="x500", disable=not progress,
                   leave=False):
        right += int((predictions(net, data.x_test[lo:lo + 500]) == data.y_test[lo:lo + 500]).sum())
    return right / len(data.x_test)


def cmd_import(args) -> int:
    from . import interop

    fmt = interchange_format(args.file, args.format)
    if Path(args.output).suffix.lower() == ".json":
        raise ModelError(f"cannot write {args.output}: a .json spec holds no parameters, and an import's are its "
                         "point (the converted weights and thresholds); write a .elm blob (edgelearn info shows it)")
    check_writable(args.output, (".elm",), "model")
    progress = not args.json
    data = datasets.subset(datasets.load(args.data), None, args.limit_test) if args.data else None
    report = {"file": args.file, "format": fmt, "output": args.output}
    if fmt == "onnx":
        if data is None:
            raise ModelError("an ONNX import converts with data: give --data (its training split calibrates the "
                             "thresholds, its test split measures the ANN and the SNN)")
        made = interop.import_onnx(args.file, data.x_train[:args.calibration], T=args.T or interop.onnx_import.DEFAULT_T,
                                   percentile=args.percentile, input_divisor=args.input_divisor)
        model, notes = made.model, made.notes
        check_fits(model, data)
        report.update(scales=made.scales, weight_fracs=made.weight_fracs, calibration_samples=made.calibration_samples,
                      ann_test_accuracy=interop.ann_accuracy(args.file, made.net, data.x_test, data.y_test,
                                                             args.input_divisor))
    else:
        made = interop.read_nir(args.file, dt=args.dt, T=args.T)
        model, notes = made.model, made.notes
        if data is not None:
            check_fits(model, data)
    if data is not None:
        report.update(data=data.name, test_samples=len(data.x_test),
                      snn_test_accuracy=test_accuracy(model, data, "fixed", progress))
    save_model(model, args.output)
    report.update(model=model.name, T=model.learning.T, rule=model.learning.rule, notes=notes,
                  layers=[f"{l.name}: {l.kind} {'x'.join(map(str, l.shape))}, "
                          + (f"{l.neuron.kind}, int{l.weight_bits} Q{l.weight_bits - 1 - l.weight_frac}.{l.weight_frac}"
                             if l.neuron else "no neurons")        # a pool maps its input
                          for l in model.layers])
    if args.json:
        emit(json.dumps(report, indent=2))
        return 0
    lines = [f"{args.file} ({fmt}) -> {args.output}: {model.name}, input {model.input.size} "
             f"({model.input.encoding}), T = {model.learning.T}, rule {model.learning.rule}"]
    lines += [f"  {text}" for text in report["layers"]]
    if fmt == "onnx":
        lines.append(f"thresholds balanced on {made.calibration_samples} training samples: layer scales "
                     + ", ".join(f"{v:.4g}" for v in made.scales) + f" (the {args.percentile:g}th percentile)")
        lines.append(f"test accuracy on {data.name} ({len(data.x_test)} samples): ANN (onnxruntime) "
                     f"{report['ann_test_accuracy']:.2%}, SNN (fixed point, T = {model.learning.T}) "
                     f"{report['snn_test_accuracy']:.2%}")
    elif data is not None:
        lines.append(f"test accuracy on {data.name} ({len(data.x_test)} samples, fixed point): "
                     f"{report['snn_test_accuracy']:.2%}")
    lines += [f"note: {text}" for text in notes]
    emit("\n".join(lines))
    return 0


def cmd_export(args) -> int:
    from . import interop

    fmt = interchange_format(args.output, args.format)
    check_writable(args.output, (Path(args.output).suffix,) if args.format else (f".{fmt}",), fmt.upper())
    model = load_model(args.model)
    if fmt == "onnx":
        if args.T is not None and args.T != model.learning.T:
            model.cutoff = None                   # margins hold for the T they were calibrated for
            model.learning = replace(model.learning, T=args.T)
        interop.export_onnx(model, args.output, dtype=args.dtype)
        emit(f"wrote {args.output}: {model.name}'s float-twin inference, {model.learning.T} steps unrolled, "
             f"{args.dtype}; input 'pixels' uint8 [batch, {', '.join(map(str, model.input.shape))}], output 'scores' "
             f"[batch, {model.readout.size}]")
    else:
        if args.T is not None:
            raise ModelError("--T sets the steps an ONNX graph unrolls; a NIR graph is not unrolled (its T is in "
                             "edgelearn's metadata)")
        interop.write_nir(model, args.output, dt=args.dt)
        emit(f"wrote {args.output}: {model.name} as a NIR graph ({len(model.layers)} layers, dt = {args.dt:g} s); "
             "edgelearn's formats and learning fields are in its metadata")
    return 0


if __name__ == "__main__":
    sys.exit(main())

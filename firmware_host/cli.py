"""The board verbs of the ``edgelearn`` command line (docs/protocol.md):

    edgelearn board start [--kind mps2-an386|mps2-an500|native] [--name N]   prints the URL
    edgelearn board stop NAME | --all
    edgelearn board list
    edgelearn push MODEL --port URL|NAME [--model-version N] [--force]
    edgelearn stream DATA --port URL|NAME --train|--infer [--cutoff [--plot PNG]] [--limit N] [--restart] [--json]
    edgelearn pull --port URL|NAME -o FILE.elm
    edgelearn stats --port URL|NAME [--json]
    edgelearn keys new [-o FILE] | provision STORAGE [--key FILE] | list

Every verb that talks to a board authenticates with the board's key (docs/security.md): the
keystore's (``edgelearn board start`` and ``edgelearn keys new`` put keys there) or ``--key FILE``.
``stream --train`` resumes: a stream is named by its data and options, and the board remembers
(in its checkpoints) how far it learned one, so a killed and re-run stream learns every sample once.
Ctrl-C ends a stream with exit status 130 and a line saying how far the board got, checkpointed
when learning, and where a re-run resumes.

``--port`` takes a pyserial URL (``socket://127.0.0.1:PORT``, ``/dev/ttyACM0``) or the name of
a board started with ``edgelearn board start``.

They join the ``edgelearn`` command through the entry point group ``edgelearn.commands``
(setup.cfg: ``board = firmware_host.cli:add_commands``): edgelearn.cli calls ``add_commands``
with its subparsers, and the exception types it returns (``ERRORS``: what a board or a link can
raise) are printed by edgelearn.cli.main as one line, exit status 2. edgelearn never imports
firmware_host; without it installed, the core verbs work and these are absent.
"""
from __future__ import annotations

import json
import secrets
import time
import zlib
from pathlib import Path

from edgelearn.cli_util import check_writable, emit, int_in

from . import boards, keys
from . import qemu as _qemu
from . import storage as _storage
from .board import Board, BoardError, LinkTimeout
from .native_board import BoardStartError



class UsageError(RuntimeError):
    """Options that do not go together, or a board that cannot do what they ask."""


ERRORS = (LinkTimeout, BoardError, boards.RegistryError, BoardStartError, _qemu.QemuError, UsageError,
          keys.KeyFileError)
MODE_NAMES = {0: "infer", 1: "train", 2: "cutoff"}


def seconds(text: str) -> float:
    """An argparse type: a positive number of seconds."""
    import argparse
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 seconds, got {text}")
    return value


def add_commands(sub) -> tuple[type[BaseException], ...]:
    """Add the board verbs to the ``edgelearn`` subparsers; returns the errors they raise."""
    b = sub.add_parser("board", help="start, stop and list boards (emulated Cortex-M or native)")
    bsub = b.add_subparsers(dest="board_command", required=True)
    s = bsub.add_parser("start", help="start a board in the background and print its URL")
    s.add_argument("--kind", choices=boards.KINDS, default="mps2-an386",
                   help="mps2-an386 (Cortex-M4F) or mps2-an500 (Cortex-M7) on QEMU, or native (a host process)")
    s.add_argument("--name", help="the board's name for --port (default: KIND-N)")
    s.add_argument("--json", action="store_true", help="print the started board's entry as JSON")
    s.set_defaults(run=cmd_board_start)
    t = bsub.add_parser("stop", help="stop a board (its whole process group)")
    t.add_argument("name", nargs="?", help="the board's name, as 'edgelearn board list' shows it")
    t.add_argument("--all", action="store_true", help="stop every board of the registry")
    t.set_defaults(run=cmd_board_stop)
    ls = bsub.add_parser("list", help="the running boards (dead ones are dropped)")
    ls.add_argument("--json", action="store_true", help="print the running boards as JSON")
    ls.set_defaults(run=cmd_board_list)

    def port_args(p) -> None:
        p.add_argument("--port", required=True, metavar="URL|NAME",
                       help="socket://127.0.0.1:PORT, /dev/tty..., or a name from 'edgelearn board list'")
        p.add_argument("--timeout", type=seconds, default=0.3, help="seconds before a request is retransmitted")
        p.add_argument("--retries", type=int_in(0, 1000), default=10, help="retransmissions before giving up")
        p.add_argument("--key", metavar="FILE", help="the board's key file (default: the keystore's, by device id)")

    p = sub.add_parser("push", help="push a model (.json spec or .elm blob) to a board and commit it")
    p.add_argument("model", help="a model spec (.json) or trained blob (.elm) to push")
    port_args(p)
    p.add_argument("--model-version", type=int_in(1, 2**32 - 1), default=1, metavar="N",
                   help="the model's version: the board refuses one not above its own (no rollback; default 1)")
    p.add_argument("--force", action="store_true", help="commit even if the version does not rise (a rollback)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_push)

    st = sub.add_parser("stream", help="stream a dataset's samples to the board: on-device learning or inference")
    st.add_argument("data", help="digits, mnist, or a directory of MNIST-style IDX files")
    port_args(st)
    mode = st.add_mutually_exclusive_group(required=True)
    mode.add_argument("--train", dest="mode", action="store_const", const="train",
                      help="learn on the device (default split: train)")
    mode.add_argument("--infer", dest="mode", action="store_const", const="infer",
                      help="inference only (default split: test)")
    st.add_argument("--split", choices=("train", "test"), help="which samples to send")
    st.add_argument("--limit", type=int_in(1), metavar="N", help="the first N samples")
    st.add_argument("--epochs", type=int_in(1), default=1, help="times through the samples (--train)")
    st.add_argument("--cutoff", action="store_true",
                    help="--infer with the model's Top-K cutoff (docs/numerics.md §6b): a sample stops at its first "
                         "confident step; reports the steps used")
    st.add_argument("--plot", metavar="PNG", help="with --cutoff: a histogram of the steps used")
    st.add_argument("--restart", action="store_true",
                    help="--train from the first sample again, even where the board already learned this stream")
    st.add_argument("--json", action="store_true", help="print the summary as JSON")
    st.set_defaults(run=cmd_stream)

    pl = sub.add_parser("pull", help="pull the board's model with the parameters it learned")
    port_args(pl)
    pl.add_argument("-o", "--output", required=True, help="the .elm file to write")
    pl.set_defaults(run=cmd_pull)

    sa = sub.add_parser("stats", help="the board's model, mode and counters")
    port_args(sa)
    sa.add_argument("--json", action="store_true", help="print the statistics as JSON")
    sa.set_defaults(run=cmd_stats)

    k = sub.add_parser("keys", help="device keys: make one, provision a board's storage with it, list the keystore")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    kn = ksub.add_parser("new", help="a new key, kept in the keystore; prints its device id")
    kn.add_argument("-o", "--output", metavar="FILE", help="also write the key file here")
    kn.set_defaults(run=cmd_keys_new)
    kp = ksub.add_parser("provision", help="write a key into a board's storage file (what a board reads at boot)")
    kp.add_argument("storage", help="the storage file (made when missing)")
    kp.add_argument("--key", metavar="FILE", help="the key file (default: a new key, kept in the keystore)")
    kp.set_defaults(run=cmd_keys_provision)
    kl = ksub.add_parser("list", help="the device ids of the keystore's keys (never the secrets)")
    kl.set_defaults(run=cmd_keys_list)
    return ERRORS


# -- board start|stop|list --------------------------------------------------------------------

def cmd_board_start(args) -> int:
    entry = boards.start(args.kind, args.name)
    emit(json.dumps(entry) if args.json else entry["url"])
    return 0


def cmd_board_stop(args) -> int:
    if args.all == (args.name is not None):
        raise boards.RegistryError("board stop takes a board name or --all (not both)")
    stopped = boards.stop_all() if args.all else [boards.stop(args.name)]
    emit("\n".join(f"stopped {e['name']} ({e['kind']}, pid {e['pid']})" for e in stopped) or "no boards running")
    return 0


def cmd_board_list(args) -> int:
    entries = boards.running()
    if args.json:
        emit(json.dumps(entries, indent=2))
        return 0
    if not entries:
        emit(f"no boards running (registry {boards.registry_path()})")
        return 0
    cols = ["name", "kind", "pid", "url", "started"]
    rows = [cols] + [[str(e[c]) for c in cols] for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
    emit("\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows))
    return 0


# -- talking to a board -----------------------------------------------------------------------

def connect(args) -> Board:
    """A Board on --port (a URL or a registry name) that has answered HELLO."""
    url = boards.resolve(args.port)
    board = Board(url, timeout=args.timeout, retries=args.retries, key=keys.load(args.key) if args.key else None)
    try:
        board.ready = board.hello()
    except LinkTimeout:
        board.close()
        raise LinkTimeout(f"the port {args.port} does not answer" + (f" ({url})" if url != args.port else "")
                          + ": is a board running the edgelearn firmware there? ('edgelearn board list')") from None
    except BaseException:
        board.close()
        raise
    return board


def progress_bar(total: int, unit: str, desc: str, disable: bool = False):
    from tqdm import tqdm

    bar = tqdm(total=total, unit=unit, desc=desc, disable=disable, leave=False,
               unit_scale=unit == "B", dynamic_ncols=True)

    def update(done: int, _n: int) -> None:
        bar.update(done - bar.n)
    return bar, update


def model_blob(path: str) -> tuple[bytes, str]:
    """The bytes to push: an .elm blob as it is (checked), a spec freshly initialised."""
    from edgelearn import rules
    from edgelearn.modelblob import BLOB_MAGIC, check_blob, to_blob
    from edgelearn.modelfile import load_model

    data = Path(path).read_bytes()
    if data.startswith(BLOB_MAGIC):
        return data, check_blob(data).name        # the device's loader gives the same verdict
    model = rules.check(load_model(path))
    return to_blob(model), model.name


def cmd_push(args) -> int:
    blob, name = model_blob(args.model)
    with connect(args) as b:
        bar, update = progress_bar(len(blob), "B", f"push {name}", args.no_progress)
        t0 = time.monotonic()
        with bar:
            b.push_model(blob, progress=update, version=args.model_version, force=args.force)
        b.commit()
        ready = b.hello()
        seconds = time.monotonic() - t0
    emit(f"pushed {name} to {ready.name} at {b.url}: {len(blob)} bytes, crc32 {zlib.crc32(blob):08x}, "
         f"model version {ready.model_version}, committed and active ({seconds:.2f} s, "
         f"{b.counters.retransmissions} retransmissions)")
    return 0


def steps_report(steps, T: int) -> dict:
    """Mean, saved fraction and distribution of the steps used per sample (``--cutoff``)."""
    import numpy as np

    steps = np.asarray(steps, dtype=np.int64)
    ran = steps[steps > 0]                     # 0 or -1: a result that never came
    counts = np.bincount(ran, minlength=T + 1)[1:T + 1] if len(ran) else np.zeros(T, dtype=np.int64)
    mean = float(ran.mean()) if len(ran) else 0.0
    return {"T": T, "mean_steps": round(mean, 4), "steps_saved": round(1 - mean / T, 4) if T else 0.0,
            "stopped_early": int(np.sum(ran < T)), "steps_histogram": {str(t + 1): int(c) for t, c in enumerate(counts)}}


def plot_steps(report: dict, path: str, title: str) -> None:
    """A histogram of the steps used per sample (one bar per step count 1..T)."""
    from edgelearn.plots import plt

    hist = report["steps_histogram"]
    T = report["T"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar([int(k) for k in hist], list(hist.values()), width=0.8, color="tab:blue")
    ax.axvline(report["mean_steps"], color="tab:red", linestyle="--",
               label=f"mean {report['mean_steps']:.2f} of T = {T} ({report['steps_saved']:.1%} saved)")
    ax.set_xlabel("time steps used")
    ax.set_ylabel("samples")
    ax.set_xlim(0.4, T + 0.6)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def steps_table(report: dict, width: int = 40) -> str:
    hist = {int(k): v for k, v in report["steps_histogram"].items()}
    top = max(hist.values()) or 1
    lines = ["  steps  samples"]
    lines += [f"  {t:5d}  {c:7d}  " + "#" * round(width * c / top) for t, c in hist.items()]
    return "\n".join(line.rstrip() for line in lines)


def cmd_stream(args) -> int:
    import numpy as np

    from edgelearn import datasets

    if args.cutoff and args.mode != "infer":
        raise UsageError("--cutoff is for --infer only: a learning sample always runs all T steps")
    if args.plot and not args.cutoff:
        raise UsageError("--plot draws the steps used with --cutoff: add --cutoff")
    check_writable(args.plot, (".png",), "plot")
    data = datasets.load(args.data)
    split = args.split or ("train" if args.mode == "train" else "test")
    x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    if args.limit:
        x, y = x[:args.limit], y[:args.limit]
    epochs = args.epochs if args.mode == "train" else 1
    n = len(x)
    total = n * epochs
    with connect(args) as b:
        if not b.ready.has_model:
            raise boards.RegistryError(
                f"the board at {b.url} has no model: push one first (edgelearn push MODEL --port {args.port})")
        if args.cutoff and not b.ready.can_cutoff:
            raise UsageError(f"the firmware of {b.ready.name} at {b.url} has no cutoff (caps {b.ready.caps:#x})")
        if args.cutoff and not b.ready.model_cutoff:
            raise UsageError(f"the model on {b.ready.name} at {b.url} has no cutoff margins: calibrate it "
                             "(edgelearn calibrate MODEL --data D --tolerance E) and push it again")
        b.set_mode("cutoff" if args.cutoff else args.mode)
        # learning resumes where the board is in this stream; inference runs every sample again
        sid = stream_id(data.name, split, epochs, x, y) if args.mode == "train" else secrets.randbits(63) + 1
        start = min(b.open_stream(sid, restart=args.restart), total)
        before = b.stats()
        t0 = time.monotonic()
        predicted, steps = [], []
        try:
            for epoch in range(start // n if start < total else epochs, epochs):
                first = start - epoch * n if epoch == start // n else 0
                desc = (f"{args.mode}{' with cutoff' if args.cutoff else ''} {data.name}"
                        + (f" epoch {epoch + 1}/{epochs}" if epochs > 1 else ""))
                bar, update = progress_bar(n - first, "sample", desc, args.json)
                with bar:
                    results = b.stream(x[first:], y[first:], progress=update)
                predicted += [r.predicted if r is not None else -1 for r in results]
                steps += [r.steps if r is not None else -1 for r in results]
        except KeyboardInterrupt:
            return stream_interrupted(b, args, before, start, total)
        if args.mode == "train" and b.ready.durable:
            b.checkpoint()                     # the stream's end is durable too
        seconds = time.monotonic() - t0
        after = b.stats()
    labels = np.tile(np.asarray(y), epochs)[start:]
    correct = int(np.sum(np.asarray(predicted) == labels))
    report = {"board": b.ready.name, "url": b.url, "data": data.name, "split": split, "mode": args.mode,
              "samples": len(predicted), "epochs": epochs, "correct": correct,
              "accuracy": correct / max(1, len(predicted)),
              "learned": after.get("learned", 0) - before.get("learned", 0),
              "device_correct": after.get("correct", 0) - before.get("correct", 0),
              "seconds": round(seconds, 3), "samples_per_s": round(len(predicted) / max(seconds, 1e-9), 1),
              "retransmissions": b.counters.retransmissions, "next_seq": after["next_seq"],
              "resumed_at": start, "stream_samples": total, "cutoff": bool(args.cutoff)}
    if args.cutoff:
        report.update(steps_report(steps, b.ready.T))
        report["device_steps"] = after.get("steps", 0) - before.get("steps", 0)
        if args.plot:
            plot_steps(report, args.plot, f"{data.name} on {report['board']}: steps used with the cutoff "
                                          f"(accuracy {report['accuracy']:.1%})")
            report["plot"] = args.plot
    if args.json:
        emit(json.dumps(report, indent=2))
    else:
        what = "online accuracy while learning" if args.mode == "train" else "on-device accuracy"
        mode = "infer with the cutoff" if args.cutoff else args.mode
        text = (f"{report['samples']} {split} samples of {data.name} through {report['board']} at {b.url} "
                f"({mode}, {seconds:.2f} s, {report['samples_per_s']:.0f} samples/s, "
                f"{report['retransmissions']} retransmissions): {what} {report['accuracy']:.2%}"
                + (f", {report['learned']} learned" if args.mode == "train" else "")
                + (f" (resumed at sample {start} of {total}: the board had learned those)" if start else ""))
        if args.cutoff:
            text += (f"\nsteps used: mean {report['mean_steps']:.2f} of T = {report['T']} "
                     f"({report['steps_saved']:.1%} of the steps saved), {report['stopped_early']} of "
                     f"{report['samples']} samples stopped early\n" + steps_table(report))
            if args.plot:
                text += f"\nhistogram of the steps -> {args.plot}"
        emit(text)
    return 0


def stream_interrupted(b: Board, args, before: dict, start: int, total: int) -> int:
    """Ctrl-C during a stream: the board has run, in order, every sample that reached it (the
    ones in flight are run or never were, none half-way), so ask it how far it got, make that
    durable with a checkpoint when learning, say where a re-run resumes, exit status 130. A
    second Ctrl-C is ignored meanwhile: this takes a few round trips."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        after = b.stats()
        checkpointed = args.mode == "train" and b.ready.durable
        if checkpointed:
            b.checkpoint()
    finally:
        signal.signal(signal.SIGINT, previous)
    at = after["next_seq"]
    report = {"interrupted": True, "board": b.ready.name, "url": b.url, "mode": args.mode, "samples": at - start,
              "learned": after.get("learned", 0) - before.get("learned", 0), "next_seq": at,
              "resumed_at": start, "stream_samples": total, "checkpointed": checkpointed}
    if args.json:
        emit(json.dumps(report, indent=2))
    elif args.mode == "train":
        emit(f"interrupted (Ctrl-C): {report['samples']} samples run on {b.ready.name} at {b.url} in this run, "
             f"{report['learned']} learned; the stream is at sample {at} of {total}"
             + (", checkpointed" if checkpointed else " (no storage: a restart of the board loses it)")
             + f". Run the same command again to resume at sample {at} (--restart starts over).")
    else:
        emit(f"interrupted (Ctrl-C): {report['samples']} of {total} samples run on {b.ready.name} at {b.url}; "
             "inference does not resume: a re-run sends every sample again.")
    return 130


def stream_id(name: str, split: str, epochs: int, x, y) -> int:
    """A stream's name: the hash of its samples, labels and passes (never 0), so the same command
    names the same stream and a re-run resumes it."""
    import hashlib

    import numpy as np

    h = hashlib.sha256(f"{name}|{split}|{epochs}|{np.shape(x)}".encode())
    h.update(np.ascontiguousarray(x, dtype=np.uint8).tobytes())
    h.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    return int.from_bytes(h.digest()[:8], "little") >> 1 or 1


def cmd_pull(args) -> int:
    from edgelearn.modelblob import from_blob

    check_writable(args.output, (".elm",), "model")
    with connect(args) as b:
        if not b.ready.has_model:
            raise boards.RegistryError(f"the board at {b.url} has no model to pull")
        blob = b.pull_params()
    model = from_blob(blob)
    Path(args.output).write_bytes(blob)
    emit(f"pulled {model.name} from {b.ready.name} at {b.url}: {len(blob)} bytes, "
         f"crc32 {zlib.crc32(blob):08x} -> {args.output}")
    return 0


def cmd_stats(args) -> int:
    with connect(args) as b:
        stats = b.stats()
        ready = b.ready
    stats = {"board": ready.name, "url": b.url, "version": ready.version, "model_area": ready.model_bytes,
             "arena": ready.arena_bytes, "device": ready.device_id.hex(), "authenticated": ready.authenticated,
             "boot": ready.boot, "model_version": ready.model_version, "checkpoint": ready.checkpoint_seq,
             "restored_at_boot": ready.restored, **stats, "active_crc": f"{stats['active_crc']:08x}",
             "mode": MODE_NAMES.get(stats["mode"], stats["mode"])}
    if args.json:
        emit(json.dumps(stats, indent=2))
    else:
        width = max(map(len, stats))
        emit("\n".join(f"{k.ljust(width)}  {v}" for k, v in stats.items()))
    return 0


# -- keys -------------------------------------------------------------------------------------

def cmd_keys_new(args) -> int:
    key = keys.Key.generate()
    path = keys.store(key)
    if args.output:
        keys.save(key, args.output)
    emit(f"device {key.id_hex}: key in {path}" + (f" and {args.output}" if args.output else ""))
    return 0


def cmd_keys_provision(args) -> int:
    key = keys.load(args.key) if args.key else keys.Key.generate()
    if not args.key:
        keys.store(key)
    path = _storage.write_key(args.storage, key, _qemu.PROTOCOL_MODEL_BYTES)
    emit(f"provisioned {path} with the key of device {key.id_hex}: a board booted on it answers to that key only")
    return 0


def cmd_keys_list(args) -> int:
    found = keys.stored()
    emit("\n".join(f"{p.stem}  {p}" for p in found) if found else f"no keys in {keys.keystore()}")
    return 0

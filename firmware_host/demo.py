"""edgelearn's main job end to end (``make demo``, ``python -m firmware_host.demo``): fine-tuning
on the device for a writer the pre-trained model has never seen.

1. The host pre-trains the digits STOP model (the C runtime, edgelearn's ``train``) on part of
   the digits training set.
2. The host pushes it to an emulated board (QEMU mps2-an386 by default, the protocol firmware)
   over the serial link.
3. A new writer: the rest of the training set and the test set, each image shifted one pixel
   to the right (``writer_style``). The pre-trained model's accuracy drops on it.
4. The board fine-tunes by learning the writer's fine-tuning samples streamed to it; every
   ``--every`` samples it classifies the writer's held-out samples (the shifted test set). Before
   and after, it also classifies the original test set: how much did it forget?
5. The host pulls the weights and checks them bit for bit against the host reference (the C
   runtime, edgelearn.executors.c.NativeSTOP) fed the very same stream, and draws the held-out
   accuracy during fine-tuning (``--plot``, a PNG).

Without qemu-system-arm or arm-none-eabi-gcc it falls back to the native board (the same
firmware main loop as a host process) and says so. Exit status 1 when not bit-exact.

    python -m firmware_host.demo [--board KIND] [--every 50] [--plot out/demo-fine-tuning.png]
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from edgelearn import resources

from .boards import KINDS

MODEL = resources.MODELS / "digits-stop.json"
PRETRAIN_SAMPLES = 1000     # of the 1347 training images; the other 347 are the writer's to fine-tune on


class CountingPort:
    """A pyserial port that counts the bytes each way (for the link statistics)."""

    def __init__(self, ser):
        self.ser, self.sent, self.received = ser, 0, 0

    def write(self, data):
        self.sent += len(data)
        return self.ser.write(data)

    def read(self, n=1):
        data = self.ser.read(n)
        self.received += len(data)
        return data

    @property
    def in_waiting(self):
        return self.ser.in_waiting

    def close(self):
        self.ser.close()


def missing_tools() -> list[str]:
    return [t for t in ("qemu-system-arm", "arm-none-eabi-gcc") if shutil.which(t) is None]


def start_board(kind: str):
    """A context manager around the running board (boards.launch), and a line saying what it is."""
    from .boards import launch
    from .qemu import board_memory

    if kind != "native":
        missing = missing_tools()
        if not missing:
            return launch(kind), f"{kind} ({board_memory(kind)['core']}) emulated by QEMU"
        print(f"NOTE: {' and '.join(missing)} not found: falling back to the native board (the same firmware "
              f"main loop built for this host). Install them for the emulated {kind}:\n"
              f"      apt-get install qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi", flush=True)
    return launch("native"), "native board (the firmware's main loop as a host process)"


def writer_style(x: np.ndarray) -> np.ndarray:
    """The new writer's digits: each 8x8 image shifted one pixel to the right (its last column
    dropped). The digits are centred, so the pre-trained model sees mostly unfamiliar pixels."""
    images = x.reshape(len(x), 8, 8)
    shifted = np.zeros_like(images)
    shifted[:, :, 1:] = images[:, :, :-1]
    return shifted.reshape(x.shape)


@dataclasses.dataclass
class Split:
    pretrain_x: np.ndarray
    pretrain_y: np.ndarray
    finetune_x: np.ndarray      # the writer's samples the board learns
    finetune_y: np.ndarray
    heldout_x: np.ndarray       # the writer's samples it never learns (the shifted test set)
    heldout_y: np.ndarray
    original_x: np.ndarray      # the original test set: what it may forget
    original_y: np.ndarray


def split(seed: int, limit_finetune: int | None = None, limit_test: int | None = None) -> Split:
    """The digits data for the demo: the training set shuffled with ``seed``, its first
    PRETRAIN_SAMPLES for pre-training and the rest, in the writer's style, for fine-tuning; the test
    set in the writer's style (held out) and as it is (original). The three are disjoint images."""
    from edgelearn.datasets import load_digits

    data = load_digits()
    order = np.random.default_rng(seed).permutation(len(data.x_train))
    pre, fine = order[:PRETRAIN_SAMPLES], order[PRETRAIN_SAMPLES:][:limit_finetune]
    x_test, y_test = data.x_test[:limit_test], data.y_test[:limit_test]
    return Split(data.x_train[pre], data.y_train[pre], writer_style(data.x_train[fine]), data.y_train[fine],
                 writer_style(x_test), y_test, x_test, y_test)


def pretrain(s: Split, epochs: int):
    """The pre-trained model: the default recipe (edgelearn.fit_to_data, then train) on the host."""
    import edgelearn
    from edgelearn.datasets import Dataset

    model, _ = edgelearn.fit_to_data(edgelearn.load_model(MODEL), s.pretrain_x)
    data = Dataset("digits-pretrain", s.pretrain_x, s.pretrain_y, s.original_x, s.original_y, (8, 8), 10)
    return edgelearn.train(edgelearn.make_learner(model, "c"), data, epochs, progress=False).best


def checkpoints_of(n: int, every: int) -> list[int]:
    """The fine-tuning sample counts after which the held-out accuracy is measured: 0, every, ..., n."""
    return sorted(set(range(0, n, every)) | {n})


def fine_tune(s: Split, every: int, learn, classify) -> dict:
    """The fine-tuning session, on the board or on the host reference: ``learn(x, y)`` learns
    samples and returns its predictions, ``classify(x, y)`` returns predictions without learning.
    Both are called in the same order on both, so their states match bit for bit."""
    predictions = []

    def accuracy(x, y):
        got = classify(x, y)
        predictions.extend(got)
        return float(np.mean(np.asarray(got) == y))

    original_before = accuracy(s.original_x, s.original_y)
    counts = checkpoints_of(len(s.finetune_x), every)
    curve = [accuracy(s.heldout_x, s.heldout_y)]
    for a, b in zip(counts, counts[1:]):
        predictions.extend(learn(s.finetune_x[a:b], s.finetune_y[a:b]))
        curve.append(accuracy(s.heldout_x, s.heldout_y))
    return {"counts": counts, "heldout_curve": curve, "original_before": original_before,
            "original_after": accuracy(s.original_x, s.original_y), "predictions": predictions}


def on_board(kind: str, blob: bytes, s: Split, every: int, progress: bool) -> dict:
    import serial
    from tqdm import tqdm

    from .board import Board

    board, what = start_board(kind)
    with board:
        print(f"board: {what}, serial link on {board.url}", flush=True)
        port = CountingPort(serial.serial_for_url(board.url, baudrate=115200, timeout=0.01))
        with Board(board.url, ser=port) as b:
            ready = b.hello()
            print(f"  firmware protocol v{ready.version} on {ready.name!r}: model area {ready.model_bytes} B, "
                  f"arena {ready.arena_bytes} B, window {ready.window}; authenticated with the key of device "
                  f"{ready.device_id.hex()}", flush=True)
            t_link = time.monotonic()
            b.push_model(blob)
            b.commit()
            print(f"  pushed the pre-trained model ({len(blob)} bytes, crc32 {zlib.crc32(blob):08x}) and committed",
                  flush=True)
            streamed = (2 * len(s.original_x) + len(s.finetune_x)
                        + len(checkpoints_of(len(s.finetune_x), every)) * len(s.heldout_x))
            bar = tqdm(total=streamed, unit="sample", desc="fine-tune and measure on the device",
                       disable=not progress, leave=False, dynamic_ncols=True)

            def run(x, y, mode):
                b.set_mode(mode)
                got = [r.predicted for r in b.stream(x, y)]
                bar.update(len(x))
                return got

            with bar:
                r = fine_tune(s, every, lambda x, y: run(x, y, "train"), lambda x, y: run(x, y, "infer"))
            r["pulled"] = b.pull_params()
            r["learned"] = b.stats()["learned"]
            r["link_seconds"] = time.monotonic() - t_link
            r["retransmissions"] = b.counters.retransmissions
    r.update(board=what, bytes_sent=port.sent, bytes_received=port.received)
    return r


def on_host(model, s: Split, every: int) -> dict:
    """The host reference: the C runtime on this machine, fed the same stream as the board."""
    from edgelearn.executors.c import NativeSTOP

    net = NativeSTOP(model)

    def run(x, y, learn):
        return [int(np.argmax(net.run(x[i:i + 1], y[i:i + 1], learn)[0])) for i in range(len(x))]

    r = fine_tune(s, every, lambda x, y: run(x, y, True), lambda x, y: run(x, y, False))
    r["blob"] = net.blob()
    return r


def plot(r: dict, path: str, board: str) -> None:
    import matplotlib

    matplotlib.use("Agg")      # a file only: no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(r["counts"], [100 * a for a in r["heldout_curve"]], marker="o", label="new writer, held out")
    ax.plot([r["counts"][0], r["counts"][-1]], [100 * r["original_before"], 100 * r["original_after"]],
            marker="s", linestyle="--", label="original test set (before, after)")
    ax.set_xlabel("fine-tuning samples learned on the device")
    ax.set_ylabel("accuracy on the device (%)")
    ax.set_title(f"fine-tuning digits on {board}")
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summary(r: dict) -> str:
    curve = r["heldout_curve"]
    rows = [
        ("board", r["board"]),
        ("pre-trained on the host", f"{r['pretrain_samples']} samples x {r['epochs']} epochs"),
        ("fine-tuning samples", f"{r['finetune_samples']} (the new writer's; {r['learned']} learned on the device)"),
        ("held-out samples", f"{r['heldout_samples']} (the new writer's, never learned)"),
        ("new writer before", f"{curve[0]:.2%} on the device"),
        ("new writer after", f"{curve[-1]:.2%} on the device ({100 * (curve[-1] - curve[0]):+.1f} points)"),
        ("original test before", f"{r['original_before']:.2%}"),
        ("original test after", f"{r['original_after']:.2%} ({100 * (r['original_after'] - r['original_before']):+.1f}"
                                " points)"),
        ("weights bit-exact", "yes" if r["weights_bit_exact"] else "NO"),
        ("predictions equal", "yes" if r["predictions_equal"] else "NO"),
        ("accuracy curve", r["plot"]),
        ("link: retransmissions", str(r["retransmissions"])),
        ("link: bytes sent / received", f"{r['bytes_sent']} / {r['bytes_received']}"),
        ("link: seconds", f"{r['link_seconds']:.1f}"),
    ]
    w = max(len(k) for k, _ in rows)
    lines = ["", "summary", "-" * (w + 40)] + [f"{k.ljust(w)}  {v}" for k, v in rows]
    lines.append("")
    exact = r["weights_bit_exact"] and r["predictions_equal"]
    lines.append("BIT-EXACT: the board learned exactly what the host reference learned." if exact else
                 "NOT BIT-EXACT: the board's parameters or predictions differ from the host reference.")
    return "\n".join(lines)


def run(kind: str, epochs: int, every: int, plot_path: str, seed: int, limit_finetune: int | None = None,
        limit_test: int | None = None, progress: bool = True) -> dict:
    from edgelearn.modelblob import to_blob

    t_start = time.monotonic()
    s = split(seed, limit_finetune, limit_test)
    model = pretrain(s, epochs)
    blob = to_blob(model)
    print(f"  pre-trained {model.name} on the host: {len(s.pretrain_x)} samples x {epochs} epochs "
          f"({time.monotonic() - t_start:.1f} s)", flush=True)
    device = on_board(kind, blob, s, every, progress)
    host = on_host(model, s, every)
    plot(device, plot_path, device["board"].split(" (")[0])
    device.update(kind=kind, epochs=epochs, pretrain_samples=len(s.pretrain_x), finetune_samples=len(s.finetune_x),
                  heldout_samples=len(s.heldout_x), plot=plot_path, weights_bit_exact=device["pulled"] == host["blob"],
                  predictions_equal=device["predictions"] == host["predictions"],
                  total_seconds=time.monotonic() - t_start)
    return device


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m firmware_host.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--board", choices=KINDS, default="mps2-an386")
    p.add_argument("--epochs", type=int, default=2, help="pre-training epochs on the host")
    p.add_argument("--every", type=int, default=50, metavar="N",
                   help="measure the held-out accuracy on the device every N fine-tuning samples")
    p.add_argument("--seed", type=int, default=1, help="the shuffle splitting pre-training from fine-tuning data")
    p.add_argument("--plot", default="out/demo-fine-tuning.png", metavar="PNG", help="the accuracy curve (its folder is made)")
    p.add_argument("--limit-finetune", type=int, metavar="N", help="the first N fine-tuning samples (tests)")
    p.add_argument("--limit-test", type=int, metavar="N", help="the first N test samples (tests)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.every < 1:
        p.error("--epochs and --every must be at least 1")
    from .board import BoardError, LinkTimeout
    from .native_board import BoardStartError
    from .qemu import QemuError
    print(f"edgelearn demo: fine-tuning digits on the device for a new writer ({MODEL.name})", flush=True)
    try:
        r = run(args.board, args.epochs, args.every, args.plot, args.seed, args.limit_finetune, args.limit_test,
                progress=not args.no_progress)
    except (BoardError, LinkTimeout, BoardStartError, QemuError) as err:
        print(f"demo: error: {err}", file=sys.stderr)
        return 2
    print(summary(r))
    print(f"({r['total_seconds']:.1f} s in all)")
    return 0 if r["weights_bit_exact"] and r["predictions_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())

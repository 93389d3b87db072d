"""edgelearn's main job end to end (``make demo``, ``python -m firmware_host.demo``):

on an emulated Cortex-M4 (QEMU mps2-an386, the protocol firmware) a host pushes the digits
STOP model over the serial link, streams the digits training set with on-device learning,
runs the test set in inference, pulls the learned weights and checks them against the host
reference (the C runtime on the host, edgelearn.executors.c.NativeSTOP, fed the same stream) bit
for bit. Without qemu-system-arm or arm-none-eabi-gcc it falls back to the native board (the
same firmware main loop as a host process) and says so. Exit status 1 when not bit-exact.

    python -m firmware_host.demo [--board mps2-an386|mps2-an500|native] [--epochs 2]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
import zlib

import numpy as np

from edgelearn import resources

MODEL = resources.MODELS / "digits-stop.json"
BOARDS = ("mps2-an386", "mps2-an500", "native")


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

    if kind != "native":
        missing = missing_tools()
        if not missing:
            core = {"mps2-an386": "Cortex-M4F", "mps2-an500": "Cortex-M7"}[kind]
            return launch(kind), f"{kind} ({core}) emulated by QEMU"
        print(f"NOTE: {' and '.join(missing)} not found: falling back to the native board (the same firmware "
              f"main loop built for this host). Install them for the emulated {kind}:\n"
              f"      apt-get install qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi", flush=True)
    return launch("native"), "native board (the firmware's main loop as a host process)"


def run(kind: str, epochs: int, limit_train: int | None, limit_test: int | None, progress: bool = True) -> dict:
    import serial
    from tqdm import tqdm

    from edgelearn.datasets import load_digits
    from edgelearn.modelblob import to_blob
    from edgelearn.modelfile import load_model
    from edgelearn.executors.c import NativeSTOP

    from .board import Board

    data = load_digits()
    x_train, y_train = data.x_train[:limit_train], data.y_train[:limit_train]
    x_test, y_test = data.x_test[:limit_test], data.y_test[:limit_test]
    model = load_model(MODEL)
    blob = to_blob(model)

    def bar(total, unit, desc):
        b = tqdm(total=total, unit=unit, desc=desc, disable=not progress, leave=False, dynamic_ncols=True,
                 unit_scale=unit == "B")
        return b, (lambda done, _n: b.update(done - b.n))

    t_start = time.monotonic()
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
            pb, update = bar(len(blob), "B", "push")
            with pb:
                b.push_model(blob, progress=update)
            b.commit()
            print(f"  pushed {model.name} ({len(blob)} bytes, crc32 {zlib.crc32(blob):08x}) and committed", flush=True)
            b.set_mode("train")
            dev_train = []
            for e in range(epochs):
                pb, update = bar(len(x_train), "sample", f"learn epoch {e + 1}/{epochs}")
                with pb:
                    dev_train += [r.predicted for r in b.stream(x_train, y_train, progress=update)]
                acc = np.mean(np.asarray(dev_train[-len(x_train):]) == y_train)
                print(f"  epoch {e + 1}/{epochs}: {len(x_train)} training samples learned on the device "
                      f"(accuracy of predictions made while learning each sample: {acc:.2%})", flush=True)
            b.set_mode("infer")
            pb, update = bar(len(x_test), "sample", "infer")
            with pb:
                dev_test = [r.predicted for r in b.stream(x_test, y_test, progress=update)]
            pulled = b.pull_params()
            stats = b.stats()
            link_seconds = time.monotonic() - t_link
            counters = b.counters
    print(f"  pulled the learned model: {len(pulled)} bytes, crc32 {zlib.crc32(pulled):08x}", flush=True)

    # the host reference: the C runtime on this machine, the very same stream
    t_host = time.monotonic()
    net = NativeSTOP(model)
    host_train = [int(np.argmax(net.run(x_train[i:i + 1], y_train[i:i + 1], True)[0]))
                  for _ in range(epochs) for i in range(len(x_train))]
    host_test = [int(np.argmax(net.run(x_test[i:i + 1], None, False)[0])) for i in range(len(x_test))]
    reference = net.blob()
    host_seconds = time.monotonic() - t_host

    dev_acc = float(np.mean(np.asarray(dev_test) == y_test))
    host_acc = float(np.mean(np.asarray(host_test) == y_test))
    return {
        "board": what, "kind": kind, "epochs": epochs, "train_samples": len(x_train) * epochs,
        "test_samples": len(x_test), "device_accuracy": dev_acc, "host_accuracy": host_acc,
        "weights_bit_exact": pulled == reference,
        "predictions_equal": dev_train == host_train and dev_test == host_test,
        "device_learned": stats["learned"], "device_correct": stats["correct"],
        "checkpoints": stats["checkpoints"],
        "retransmissions": counters.retransmissions, "bytes_sent": port.sent, "bytes_received": port.received,
        "link_seconds": link_seconds, "host_seconds": host_seconds, "total_seconds": time.monotonic() - t_start,
    }


def summary(r: dict) -> str:
    exact = r["weights_bit_exact"] and r["predictions_equal"]
    rows = [
        ("board", r["board"]),
        ("training samples streamed", f"{r['train_samples']} ({r['epochs']} epoch{'s' * (r['epochs'] > 1)}, "
                                      f"{r['device_learned']} learned on the device)"),
        ("test samples", str(r["test_samples"])),
        ("on-device test accuracy", f"{r['device_accuracy']:.2%}"),
        ("host reference accuracy", f"{r['host_accuracy']:.2%}"),
        ("weights bit-exact", "yes" if r["weights_bit_exact"] else "NO"),
        ("predictions equal", "yes" if r["predictions_equal"] else "NO"),
        ("checkpoints written", f"{r['checkpoints']} (the board restores the newest at boot)"),
        ("link: retransmissions", str(r["retransmissions"])),
        ("link: bytes sent / received", f"{r['bytes_sent']} / {r['bytes_received']}"),
        ("link: seconds", f"{r['link_seconds']:.1f}"),
        ("host reference seconds", f"{r['host_seconds']:.1f}"),
    ]
    w = max(len(k) for k, _ in rows)
    lines = ["", "summary", "-" * (w + 40)] + [f"{k.ljust(w)}  {v}" for k, v in rows]
    lines.append("")
    lines.append("BIT-EXACT: the board learned exactly what the host reference learned." if exact else
                 "NOT BIT-EXACT: the board's parameters or predictions differ from the host reference.")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m firmware_host.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--board", choices=BOARDS, default="mps2-an386")
    p.add_argument("--epochs", type=int, choices=(1, 2), default=2, help="passes over the training set")
    p.add_argument("--limit-train", type=int, metavar="N", help="the first N training samples (tests)")
    p.add_argument("--limit-test", type=int, metavar="N", help="the first N test samples (tests)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    from .board import BoardError, LinkTimeout
    from .native_board import BoardStartError
    from .qemu import QemuError
    print(f"edgelearn demo: on-device STOP learning of digits over the serial link ({MODEL.name})", flush=True)
    try:
        r = run(args.board, args.epochs, args.limit_train, args.limit_test, progress=not args.no_progress)
    except (BoardError, LinkTimeout, BoardStartError, QemuError) as err:
        print(f"demo: error: {err}", file=sys.stderr)
        return 2
    print(summary(r))
    print(f"({r['total_seconds']:.1f} s in all)")
    return 0 if r["weights_bit_exact"] and r["predictions_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())

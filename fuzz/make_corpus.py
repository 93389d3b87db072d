"""Write the fuzzers' seed corpus (fuzz/corpus/<target>): small valid blobs of every feature, frames
of every message type, and whole firmware sessions in fuzz_firmware.c's record format. Run it again
when a format changes: ``python fuzz/make_corpus.py``."""
from __future__ import annotations

import dataclasses
import struct
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from edgelearn.model import (Cutoff, Edge, InputSpec, Layer, Learning, Model, Neuron, Schedule, Window,  # noqa: E402
                             init_params, mlp)
from edgelearn.modelblob import to_blob  # noqa: E402
from firmware_host import frames as fr  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "corpus"
RAW, AUTH, PLAIN, HELLO, REBOOT, CUT = range(6)      # fuzz_firmware.c's record ops


def models() -> dict[str, bytes]:
    base = init_params(mlp("seed", [16, 8, 4]))
    T = base.learning.T
    out = {
        "stop": base,
        "rate-sample": dataclasses.replace(base, learning=Learning(rule="stop", T=4, update="sample")),
        "readout": dataclasses.replace(base, learning=Learning(rule="readout", T=4)),
        "cutoff": dataclasses.replace(base, cutoff=Cutoff(margins=tuple([5] * (T - 1) + [0]), tolerance=0.01)),
        "schedule": dataclasses.replace(base, schedule=Schedule(every=3, steps=2)),
        "spide": dataclasses.replace(base, learning=Learning(rule="spide", T=8, Tb=8)),
    }
    out.update(window_models())
    blobs = {}
    for name, model in out.items():
        try:
            blobs[name] = to_blob(model)
        except ValueError as e:              # a seed the model checks refuse is no seed
            print(f"skipped {name}: {e}")
    return blobs


def window_models() -> dict[str, Model]:
    """Small models of the window kinds (blob version 4's WINDOW sections): conv2d with stride and
    padding into a max or an average pool, and the one-time-step scan2d."""
    def conv(pool: str) -> Model:
        layers = (Layer("c", "conv2d", (Edge("input"),), (2, 4, 4), Neuron("lif"),
                        window=Window((3, 3), (1, 1), (1, 1))),
                  Layer("p", pool, (Edge("c"),), (2, 2, 2), None, window=Window((2, 2), (2, 2))),
                  Layer("out", "dense", (Edge("p"),), (4,), Neuron("lif")))
        return init_params(Model(f"seed-{pool}", InputSpec((1, 4, 4), "direct"), layers, Learning(T=4)))
    scan = (Layer("s", "scan2d", (Edge("input"),), (2, 4, 4), Neuron("lif"), window=Window((3, 3), padding=(1, 1))),
            Layer("out", "dense", (Edge("s"),), (4,), Neuron("lif")))
    return {"conv-maxpool": conv("maxpool"), "conv-avgpool": conv("avgpool"),
            "scan2d": init_params(Model("seed-scan", InputSpec((1, 4, 4), "direct"), scan, Learning(T=1)))}


def record(op: int, body: bytes = b"") -> bytes:
    return struct.pack("<BH", op, len(body)) + body


def session(blob: bytes, *, cut: int | None = None) -> bytes:
    """HELLO, push and commit the blob, learn a few samples, checkpoint, pull; reboot; pull again."""
    def auth(type_: int, payload: bytes = b"") -> bytes:
        return record(AUTH, bytes([type_]) + payload)
    stream = 0x1234
    out = record(HELLO) + auth(fr.HELLO)
    out += auth(fr.PUSH_BEGIN, struct.pack("<IIIB", len(blob), zlib.crc32(blob), 1, 0))
    for off in range(0, len(blob), 600):
        out += auth(fr.PUSH_CHUNK, struct.pack("<I", off) + blob[off:off + 600])
    out += auth(fr.COMMIT, struct.pack("<II", len(blob), zlib.crc32(blob)))
    out += auth(fr.CONFIG, struct.pack("<I", 2)) + auth(fr.SET_MODE, b"\x01") + auth(fr.STREAM, struct.pack("<QB", stream, 0))
    if cut is not None:
        out += record(CUT, struct.pack("<H", cut))
    rng = np.random.default_rng(len(blob))
    for i in range(4):
        out += auth(fr.SAMPLE, struct.pack("<QIhH", stream, i, i % 4, 1) + rng.integers(0, 256, 16, dtype=np.uint8).tobytes())
    out += auth(fr.CHECKPOINT) + auth(fr.PULL, struct.pack("<IH", 0, 900)) + auth(fr.STATS) + auth(fr.SEQLOG, struct.pack("<IH", 0, 10))
    out += record(REBOOT) + record(HELLO) + auth(fr.HELLO) + auth(fr.PULL, struct.pack("<IH", 0, 900))
    out += auth(fr.SET_MODE, b"\x02") + auth(fr.RESET) + record(PLAIN, bytes([fr.RESET])) + auth(fr.EXIT, b"\x00")
    return out


def main() -> None:
    blobs = models()
    for target in ("blob", "frames", "firmware"):
        d = CORPUS / target
        d.mkdir(parents=True, exist_ok=True)
        for old in d.iterdir():
            old.unlink()
    for name, blob in blobs.items():
        (CORPUS / "blob" / f"{name}.elm").write_bytes(blob)
    frames = [fr.Frame(t, 1, p) for t, p in ((fr.HELLO, b""), (fr.SET_MODE, b"\x01"), (fr.STATS, b""),
                                             (fr.PUSH_CHUNK, b"\0\0\0\0" + bytes(300)), (fr.READY, bytes(84) + b"x"))]
    for i, f in enumerate(frames):
        (CORPUS / "frames" / f"frame-{i}.bin").write_bytes(fr.encode(f))
    (CORPUS / "frames" / "stream.bin").write_bytes(b"\0\x05junk\0" + b"".join(fr.encode(f) for f in frames))
    for name in ("stop", "schedule", "cutoff"):
        if name in blobs:
            (CORPUS / "firmware" / f"session-{name}.bin").write_bytes(session(blobs[name]))
    for cut in (10, 5000, 9000):
        (CORPUS / "firmware" / f"power-cut-{cut}.bin").write_bytes(session(blobs["stop"], cut=cut))
    print(f"corpus in {CORPUS}: " + ", ".join(f"{t} {len(list((CORPUS / t).iterdir()))}"
                                             for t in ("blob", "frames", "firmware")))


if __name__ == "__main__":
    main()

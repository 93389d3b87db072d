"""Build the libFuzzer harnesses (clang, ASan + UBSan) and run each for a bounded time on its corpus:

    python fuzz/run.py [--seconds 20] [TARGET ...]        # make fuzz; .ci/run calls it

Targets: ``blob`` (the C loader, fuzz_blob.c), ``frames`` (the link's codec, fuzz_frames.c),
``firmware`` (the whole firmware behind an authenticated link, fuzz_firmware.c). The builds go to
the build cache (``edgelearn.buildcache``, ``fuzz/<hash>``). The corpus in ``fuzz/corpus/<target>``
is only read: what a run discovers goes to a temporary directory. Prints, per target, the inputs
executed; exits 1 on a finding, with the input that caused it saved beside the run's output
(``--artifacts``, default: the current directory) and shown in hex.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgelearn import buildcache  # noqa: E402
from edgelearn.resources import C_DIR, FIRMWARE_DIR  # noqa: E402

FUZZ_DIR = Path(__file__).resolve().parent
CORPUS = FUZZ_DIR / "corpus"
FLAGS = ("-g", "-O1", "-std=c99", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all",
         f"-I{C_DIR}", f"-I{FIRMWARE_DIR}")
FIRMWARE_DEFINES = ("-Dmain=el_firmware_main", "-DEL_FW_MODEL_BYTES=16384u", "-DEDGELEARN_ARENA_BYTES=65536",
                    "-DEL_FW_SEQLOG=256u", '-DEL_FW_BOARD_NAME="fuzz"')


def targets() -> dict[str, tuple[list[Path], tuple[str, ...]]]:
    firmware = [FIRMWARE_DIR / n for n in ("main_loop.c", "protocol.c", "session.c", "checkpoint.c", "hmac_sha256.c")]
    return {
        "blob": ([FUZZ_DIR / "fuzz_blob.c", *buildcache.runtime_sources()], ()),
        "frames": ([FUZZ_DIR / "fuzz_frames.c", FIRMWARE_DIR / "protocol.c", *buildcache.runtime_sources()], ()),
        "firmware": ([FUZZ_DIR / "fuzz_firmware.c", *firmware, *buildcache.runtime_sources(device=True)],
                     FIRMWARE_DEFINES),
    }


def clang() -> str:
    path = shutil.which("clang")
    if path is None:
        raise SystemExit("fuzz: clang not found: install it with apt-get install -y clang (make tools does)")
    return path


def build(name: str) -> Path:
    sources, defines = targets()[name]
    cc = clang()
    headers = sorted(C_DIR.glob("*.h")) + sorted(FIRMWARE_DIR.glob("*.h"))
    key = buildcache.key(files=[*sources, *headers], flags=[*FLAGS, *defines], tools=[cc])

    def compile_into(out: Path) -> None:
        r = subprocess.run([cc, *FLAGS, *defines, "-o", str(out / f"fuzz_{name}"), *map(str, sources)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"fuzz: building {name} failed:\n{r.stderr}")

    return buildcache.cached("fuzz", key, compile_into) / f"fuzz_{name}"


def run(name: str, seconds: float, artifacts: Path) -> dict:
    """Fuzz one target for ``seconds``; its counts, or the finding."""
    exe = build(name)
    seeds = CORPUS / name
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as work:
        out_dir = Path(work) / "found"
        out_dir.mkdir()
        cmd = [str(exe), str(out_dir), str(seeds), f"-max_total_time={seconds:g}", "-print_final_stats=1",
               "-timeout=10", "-rss_limit_mb=2048", "-max_len=8192", f"-artifact_prefix={Path(work)}/",
               "-close_fd_mask=1"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
        executed = re.search(r"stat::number_of_executed_units:\s*(\d+)", r.stderr)
        corpus = len(list(seeds.iterdir()))
        result = {"target": name, "executed": int(executed.group(1)) if executed else 0, "seeds": corpus,
                  "new": len(list(out_dir.iterdir())), "seconds": seconds, "finding": None}
        crashes = [p for p in Path(work).iterdir() if p.is_file() and p.name.split("-")[0] in
                   ("crash", "leak", "timeout", "oom")]
        if r.returncode != 0 or crashes:
            saved = []
            for p in crashes:
                dest = artifacts / f"fuzz-{name}-{p.name}"
                shutil.copy(p, dest)
                saved.append(f"{dest}: {p.read_bytes()[:256].hex()}")
            result["finding"] = "\n".join(saved) or "(no artifact)"
            result["log"] = r.stderr[-4000:]
        return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="fuzz/run.py", description=__doc__.split("\n\n")[0])
    p.add_argument("targets", nargs="*", metavar="TARGET", help=f"of {', '.join(targets())} (default: all)")
    p.add_argument("--seconds", type=float, default=20.0, help="fuzzing time per target")
    p.add_argument("--artifacts", type=Path, default=Path.cwd(), help="where an input that failed is saved")
    args = p.parse_args(argv)
    unknown = set(args.targets) - set(targets())
    if unknown:
        p.error(f"unknown target {', '.join(sorted(unknown))}; targets: {', '.join(targets())}")
    failed = 0
    for name in args.targets or list(targets()):
        r = run(name, args.seconds, args.artifacts)
        print(f"fuzz {name}: {r['executed']} inputs executed in {r['seconds']:g} s "
              f"({r['seeds']} seeds, {r['new']} new inputs), "
              + ("no findings" if r["finding"] is None else f"FINDING:\n{r['finding']}\n{r['log']}"), flush=True)
        failed += r["finding"] is not None
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

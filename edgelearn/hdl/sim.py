"""Running the RTL in a simulator: iverilog (compiles in a fraction of a second; the kernel
testbenches and small models) and verilator (compiles in tens of seconds, simulates hundreds
of times faster; whole models learning). Both run the same testbenches, which read commands
on stdin and answer on stdout, so a Python process drives a simulation for as long as it likes.

Builds go to the build cache (edgelearn.buildcache), keyed by every source, the flags and the
simulator's version. A simulator that is not installed is an error that says how to install
it (``ToolMissing``): a test that needs one fails, never skips."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

from .. import buildcache
from ..profile import ToolchainMissing
from . import HDL_DIR
from .contract import CODES

RTL_DIR = HDL_DIR / "rtl"
SIM_DIR = HDL_DIR / "sim"
APT_PACKAGES = "iverilog verilator yosys nextpnr-ice40 fpga-icestorm"
VERILATOR_FLAGS = ("--binary", "--timing", "-Wno-fatal", "-O2", "--x-assign", "fast", "--x-initial", "fast")


class ToolMissing(ToolchainMissing):
    """A simulator or an FPGA tool is not installed (the CLI reports it in one line)."""


def require(tool: str) -> str:
    """The path of ``tool``, or ToolMissing naming the packages that bring it."""
    path = shutil.which(tool)
    if path is None:
        raise ToolMissing(f"{tool} not found; install the FPGA tools with: apt-get install -y {APT_PACKAGES} "
                          "(make test does when it runs as root or with sudo)")
    return path


def rtl_sources() -> list[Path]:
    """The RTL of the contract: the primitives, the op modules, the datapath and the core."""
    return sorted(RTL_DIR.glob("el_*.v"))


def rtl_headers() -> list[Path]:
    return sorted(RTL_DIR.glob("*.vh"))


def iverilog_build(top: str, sources: list[Path], include_dirs: list[Path], defines: dict | None = None) -> Path:
    """A vvp image of ``top`` (cached); run it with ``vvp -n``."""
    iverilog = require("iverilog")
    require("vvp")
    flags = ["-g2012", "-s", top, *(f"-I{d}" for d in include_dirs),
             *(f"-D{k}={v}" for k, v in (defines or {}).items())]
    headers = [h for d in include_dirs for h in sorted(Path(d).glob("*.vh"))]
    key = buildcache.key(files=[*sources, *headers], flags=flags, tools=[iverilog])

    def build(out: Path) -> None:
        run = subprocess.run([iverilog, *flags, "-o", str(out / f"{top}.vvp"), *map(str, sources)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"iverilog failed on {top}:\n{run.stderr}")

    return buildcache.cached("hdl-iverilog", key, build) / f"{top}.vvp"


def verilator_build(top: str, sources: list[Path], include_dirs: list[Path]) -> Path:
    """A verilator binary of the testbench ``top`` (cached: a first build takes tens of seconds)."""
    verilator = require("verilator")
    flags = [*VERILATOR_FLAGS, "--top-module", top, *(f"-I{d}" for d in include_dirs)]
    headers = [h for d in include_dirs for h in sorted(Path(d).glob("*.vh"))]
    key = buildcache.key(files=[*sources, *headers], flags=flags, tools=[verilator])

    def build(out: Path) -> None:
        run = subprocess.run([verilator, *flags, "-j", "2", "--Mdir", str(out / "obj"), "-o", top, *map(str, sources)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"verilator failed on {top}:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}")
        shutil.move(str(out / "obj" / top), str(out / top))
        shutil.rmtree(out / "obj")

    return buildcache.cached("hdl-verilator", key, build) / top


def run_batch(command: list[str], stdin: str, timeout: float = 300) -> list[str]:
    """Run a testbench over all of ``stdin`` at once; its output lines (simulator notes dropped)."""
    run = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({run.returncode}):\n{run.stderr[-4000:]}")
    return [line for line in run.stdout.splitlines() if line and not line.startswith(("- ", "VCD", "WARNING"))]


def hex_of(value: int, bits: int) -> str:
    return format(value & ((1 << bits) - 1), "x")


def signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


# -- the primitives' testbench ----------------------------------------------------------------

PRIMITIVES = {"round_shift": 0, "stochastic_shift": 1, "rng_next": 2, "sat_sum": 3, "surrogate": 4}


def primitives_tb() -> list[str]:
    return ["vvp", "-n", str(iverilog_build("el_primitives_tb", [SIM_DIR / "el_primitives_tb.v", *rtl_sources()],
                                            [RTL_DIR]))]


def run_primitives(calls: list[tuple[str, int, int, int]]) -> list[list[int]]:
    """Each (op, a, b, c) of el_primitives_tb.v through the RTL: its results as integers."""
    stdin = "".join(f"{PRIMITIVES[op]} {hex_of(a, 64)} {hex_of(b, 64)} {hex_of(c, 64)}\n" for op, a, b, c in calls)
    return [[int(v, 16) for v in line.split()] for line in run_batch(primitives_tb(), stdin)]


# -- the datapath's testbench -----------------------------------------------------------------

@dataclass
class Element:
    """One element for el_datapath_tb.v, by its kind's name (edgelearn.hdl.contract.ELEMENTS);
    the operands a kind does not read stay 0 (docs/fpga.md, the element table)."""
    kind: str
    chain: int = 0
    w: int = 0
    x: int = 0
    a: int = 0
    v: int = 0
    u: int = 0
    th: int = 0
    s: int = 0
    trace: int = 0
    d: int = 0
    g: int = 0
    target: int = 0
    lift: int = 0
    current_shift: int = 0
    gate_shift: int = 0
    weight_shift: int = 0
    threshold_shift: int = 0
    leak_shift: int = 0
    k: int = 0
    reset_shift: int = 0
    floor: int = 0


# the testbench's line: (field, bits), after `valid` and `kind`
_BITS = {"chain": 1, "w": 16, "x": 32, "a": 32, "v": 32, "u": 32, "th": 32, "s": 1, "trace": 32, "d": 32, "g": 64,
         "target": 1, "lift": 5, "current_shift": 8, "gate_shift": 8, "weight_shift": 9, "threshold_shift": 9,
         "leak_shift": 9, "k": 8, "reset_shift": 1, "floor": 32}
_FIELDS = [f.name for f in fields(Element)][1:]
LATENCY = 1          # the output line of an element's results is this many lines after its own


@dataclass
class Result:
    value: int
    potential: int
    spike: int
    current: int


def _line(valid: int, kind: int, values: dict, rng_load: int = 0, rng_value: int = 0) -> str:
    parts = [str(valid), format(kind, "x"), *(hex_of(values.get(f, 0), _BITS[f]) for f in _FIELDS),
             str(rng_load), hex_of(rng_value, 32)]
    return " ".join(parts) + "\n"


def datapath_tb() -> list[str]:
    return ["vvp", "-n", str(iverilog_build("el_datapath_tb", [SIM_DIR / "el_datapath_tb.v", *rtl_sources()],
                                            [RTL_DIR]))]


def run_datapath(elements: list[Element], rng: int = 1) -> tuple[list[Result], int]:
    """The elements through the datapath one per cycle from learning-stream state ``rng``:
    each element's results and the state after the last."""
    lines = [_line(0, 0, {}, rng_load=1, rng_value=rng)]
    lines += [_line(1, CODES[e.kind], {f: getattr(e, f) for f in _FIELDS}) for e in elements]
    lines += [_line(0, 0, {})] * (LATENCY + 2)
    out = [line.split() for line in run_batch(datapath_tb(), "".join(lines))]
    results = []
    for n in range(len(elements)):
        valid, value, potential, spike, current, _ = out[1 + n + LATENCY]
        assert valid == "1", f"element {n} ({elements[n].kind}) did not reach X after {LATENCY} cycles"
        results.append(Result(signed(int(value, 16), 64), signed(int(potential, 16), 32), int(spike, 16),
                              signed(int(current, 16), 32)))
    return results, int(out[-1][-1], 16)


# -- a model's core, driven through its ports ---------------------------------------------------

SIMULATORS = ("verilator", "iverilog")


def model_build(model, simulator: str, single_port: frozenset = frozenset()) -> list[str]:
    """The command that runs el_model_tb.v over the model's generated core (cached per model
    structure: the state arrives through the parameter port and the memory images)."""
    from .generate import top_level
    source = top_level(model, single_port, state=False)
    with tempfile.TemporaryDirectory() as tmp:
        generated = Path(tmp) / "el_model.v"
        generated.write_text(source)
        sources = [generated, SIM_DIR / "el_model_tb.v", *rtl_sources()]
        if simulator == "iverilog":
            return ["vvp", "-n", str(iverilog_build("el_model_tb", sources, [RTL_DIR]))]
        if simulator == "verilator":
            return [str(verilator_build("el_model_tb", sources, [RTL_DIR]))]
    raise ValueError(f"unknown simulator {simulator!r} (known: {', '.join(SIMULATORS)})")


class Simulation:
    """A model's core in a simulator, driven as a host drives the chip: samples and scores
    through the streams, parameters and state through the parameter port (el_model_tb.v).
    It starts in the model's state: the memory images, then the leaks and the registers written."""

    def __init__(self, model, simulator: str = "verilator", single_port: frozenset = frozenset()):
        from .generate import REGISTERS, address_map, memory_images, registers
        self.model = model
        self.addresses = address_map(model)
        command = model_build(model, simulator, frozenset(single_port))
        self._dir = tempfile.TemporaryDirectory(prefix="edgelearn-hdl-")
        for name, text in memory_images(model).items():
            (Path(self._dir.name) / name).write_text(text)
        self._proc = subprocess.Popen(command, cwd=self._dir.name, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, bufsize=1)
        for l, layer in enumerate(model.layers):
            self.write(self.addresses["leaks"] + l, int(model.params[layer.name].leak))
        for name, value in zip(REGISTERS, registers(model)):
            self.write(self.addresses[name], value)

    def _answer(self, tag: str) -> list[int]:
        while True:
            line = self._proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the simulation ended: {self._proc.stderr.read()[-4000:]}")
            if line.startswith(tag + " ") or line.strip() == tag:
                return [int(v, 16) for v in line.split()[1:]]

    def sample(self, pixels, learn: bool, label: int) -> tuple[list[int], int]:
        """One sample through the core: its scores and the cycles it took."""
        self._proc.stdin.write(f"1 {int(learn):x} {max(label, 0):x} " + " ".join(f"{int(p):x}" for p in pixels) + "\n")
        self._proc.stdin.flush()
        *scores, cycles = self._answer("R")
        return scores, cycles

    def write(self, address: int, value: int) -> None:
        self._proc.stdin.write(f"2 {address:x} {value & 0xFFFFFFFF:x}\n")

    def read(self, address: int, count: int) -> list[int]:
        """count words of the parameter port from address (32-bit, as the port gives them)."""
        self._proc.stdin.write(f"3 {address:x} {count:x}\n")
        self._proc.stdin.flush()
        return self._answer("D")

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.write("0\n")
            self._proc.stdin.close()
            self._proc.wait(timeout=60)
        self._dir.cleanup()

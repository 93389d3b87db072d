"""What an FPGA holds of a model, and the flow that proves it: the buffers' placement in block
RAM and SPRAM (``memory_plan``, before any tool runs), then yosys (synth_ice40 / synth_ecp5),
nextpnr-ice40 (place and route, Fmax) and icepack (the bitstream) over the generated design
(``synthesize``, cached in the build cache like every other build).

The FPGA targets are the catalogue's entries with an ``fpga`` section (targets/catalogue.json).
The iCE40 UP5K's design is the core behind a UART on two pins (targets/hdl/boards: the SG48
package has 39 I/Os, the core's ports some 110); on the ECP5 the core alone is synthesised for
its resources: Debian has no nextpnr-ecp5, so there is no place and route or Fmax for it here."""
from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .. import buildcache
from ..errors import ModelError
from ..model import Model
from ..profile import catalogue
from . import HDL_DIR, generate
from .sim import require, rtl_headers, rtl_sources

BOARDS_DIR = HDL_DIR / "boards"
DEFAULT_BAUD = 115200


def fpga(target: str) -> dict:
    """The catalogue's FPGA section of a target; a ModelError for a target that is none."""
    targets = catalogue()
    if target not in targets:
        raise ModelError(f"unknown target {target!r} (known: {', '.join(sorted(targets))})")
    if "fpga" not in targets[target]:
        raise ModelError(f"target {target!r} is not an FPGA (FPGA targets: {', '.join(fpga_targets())})")
    return targets[target]["fpga"]


def fpga_targets() -> list[str]:
    return sorted(name for name, info in catalogue().items() if "fpga" in info)


# -- where the buffers go ----------------------------------------------------------------------

# block RAM shapes (depth, width) a block can take: iCE40 SB_RAM40_4K, ECP5 DP16KD (dual-port)
BLOCK_SHAPES = {"ice40": ((256, 16), (512, 8), (1024, 4), (2048, 2)),
                "ecp5": ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))}
SPRAM_SHAPE = (16384, 16)        # iCE40 UltraPlus SB_SPRAM256KA


def blocks(family: str, width: int, depth: int) -> int:
    """Block RAMs a width x depth buffer takes in its best shape."""
    return min(math.ceil(depth / d) * math.ceil(width / w) for d, w in BLOCK_SHAPES[family])


def spram_tiles(width: int, depth: int) -> int:
    return math.ceil(depth / SPRAM_SHAPE[0]) * math.ceil(width / SPRAM_SHAPE[1])


@dataclass
class MemoryPlan:
    target: str
    placement: dict[str, str]                 # buffer -> "block RAM" or "SPRAM"
    blocks: dict[str, int]                    # block RAMs (or SPRAM tiles) each takes
    block_ram: int
    block_ram_available: int
    spram: int
    spram_available: int
    single_port: frozenset = field(default_factory=frozenset)

    @property
    def fits(self) -> bool:
        return self.block_ram <= self.block_ram_available and self.spram <= self.spram_available


def memory_plan(model: Model, target: str) -> MemoryPlan:
    """Every buffer in block RAM while they fit; then the buffers the core may run single-ported
    (weights, thresholds) move to SPRAM, largest first, as long as block RAM overflows."""
    info = fpga(target)
    family = info["family"]
    bufs = generate.buffers(generate.check(model))
    where = {b.name: "block RAM" for b in bufs}
    cost = {b.name: blocks(family, b.width, b.depth) for b in bufs}
    movable = sorted((b for b in bufs if b.single_port_ok), key=lambda b: -cost[b.name])
    for b in movable:
        if sum(cost[n] for n, w in where.items() if w == "block RAM") <= info["block_ram"] or not info.get("spram"):
            break
        where[b.name], cost[b.name] = "SPRAM", spram_tiles(b.width, b.depth)
    spram = frozenset(n for n, w in where.items() if w == "SPRAM")
    return MemoryPlan(target, where, cost, sum(cost[n] for n, w in where.items() if w == "block RAM"),
                      info["block_ram"], sum(cost[n] for n in spram), info.get("spram", 0), spram)


# -- the flow ----------------------------------------------------------------------------------

def design_files(model: Model, target: str, out_dir, baud: int = DEFAULT_BAUD) -> list[Path]:
    """The model's design for the target in out_dir: el_model.v and its memory images, the board
    top (iCE40: el_serial.v, el_up5k_top.v, the pin file) and the flow's script (flow.ys)."""
    info = fpga(target)
    plan = memory_plan(model, target)
    if not plan.fits:
        raise ModelError(not_fitting(model, plan))
    out = Path(out_dir)
    files = generate.write(model, out, plan.single_port)
    sources = [*rtl_sources(), *rtl_headers()]
    top = "el_model"
    if info["family"] == "ice40":
        sources += [BOARDS_DIR / "el_serial.v", BOARDS_DIR / "up5k" / "el_up5k_top.v", BOARDS_DIR / "up5k" / "upduino3.pcf"]
        top = "el_up5k_top"
    for src in sources:
        shutil.copyfile(src, out / src.name)
        files.append(out / src.name)
    verilog = ["el_model.v", *(s.name for s in sources if s.suffix == ".v")]
    params = ""
    if info["family"] == "ice40":
        divisor = round(info["clock_hz"] / baud)
        params = f"chparam -set DIVISOR {divisor} el_up5k_top; "
    script = (f"read_verilog -I. {' '.join(verilog)}; {params}"
              f"synth_{info['family']} -top {top} {' '.join(info['synth_flags'])} -json design.json; "
              "tee -o stat.txt stat\n")
    (out / "flow.ys").write_text(script)
    return [*files, out / "flow.ys"]


def not_fitting(model: Model, plan: MemoryPlan) -> str:
    rows = ", ".join(f"{n} {plan.blocks[n]} {'SPRAM tiles' if w == 'SPRAM' else 'blocks'}"
                     for n, w in plan.placement.items())
    return (f"model {model.name!r} does not fit {plan.target}: {plan.block_ram} block RAMs of "
            f"{plan.block_ram_available} and {plan.spram} SPRAM tiles of {plan.spram_available} ({rows})")


CELLS = {   # yosys stat's cells -> the report's resources
    "ice40": {"SB_LUT4": "luts", "SB_CARRY": "carries", "SB_RAM40_4K": "block_ram", "SB_SPRAM256KA": "spram",
              "SB_MAC16": "dsp"},
    "ecp5": {"LUT4": "luts", "CCU2C": "carries", "DP16KD": "block_ram", "MULT18X18D": "dsp",
             "TRELLIS_DPR16X4": "lut_ram"},
}


def parse_stat(text: str, family: str) -> dict[str, int]:
    """The resources of yosys's last `stat`: LUTs, flip-flops, block RAM, SPRAM, DSP tiles."""
    last = text[text.rfind("Number of cells"):]
    counts = {name: int(n) for name, n in re.findall(r"^\s+(\w+)\s+(\d+)\s*$", last, re.M)}
    out = {v: 0 for v in CELLS[family].values()}
    for cell, n in counts.items():
        if cell in CELLS[family]:
            out[CELLS[family][cell]] += n
    out["flip_flops"] = sum(n for cell, n in counts.items() if re.match(r"(SB_DFF|TRELLIS_FF)", cell))
    return out


def run_flow(design: Path, target: str) -> dict:
    """yosys, then (iCE40) nextpnr-ice40 and icepack in the design directory; the report."""
    info = fpga(target)
    report: dict = {"target": target, "device": info["device"]}
    run = subprocess.run([require("yosys"), "-q", "-s", "flow.ys"], cwd=design, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"yosys failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    report["synthesis"] = parse_stat((design / "stat.txt").read_text(), info["family"])
    report["available"] = {k: info[k] for k in ("luts", "flip_flops", "block_ram", "spram", "dsp") if k in info}
    if info["family"] != "ice40":
        report["place_and_route"] = None
        report["note"] = "no nextpnr-ecp5 in Debian: resources from yosys synth_ecp5, no place and route or Fmax"
        return report
    clock_mhz = info["clock_hz"] / 1e6
    pnr = subprocess.run([require("nextpnr-ice40"), f"--{info['device']}", "--package", info["package"],
                          "--json", "design.json", "--pcf", "upduino3.pcf", "--asc", "design.asc",
                          "--freq", f"{clock_mhz:g}", "--report", "pnr.json", "--seed", "1"],
                         cwd=design, capture_output=True, text=True)
    (design / "nextpnr.log").write_text(pnr.stderr)
    used = re.findall(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)", pnr.stderr)
    cells = {name: int(u) for name, u, _ in used}
    if pnr.returncode != 0:
        report["place_and_route"] = {"placed": False, "logic_cells": cells.get("ICESTORM_LC"),
                                     "logic_cells_available": info["logic_cells"],
                                     "error": next((l for l in pnr.stderr.splitlines() if "ERROR" in l), "")}
        return report
    pnr_report = json.loads((design / "pnr.json").read_text())
    fmax = min(c["achieved"] for c in pnr_report["fmax"].values())
    report["place_and_route"] = {"placed": True, "logic_cells": cells.get("ICESTORM_LC"),
                                 "logic_cells_available": info["logic_cells"], "fmax_mhz": round(fmax, 2),
                                 "clock_mhz": clock_mhz, "meets_clock": fmax >= clock_mhz}
    pack = subprocess.run([require("icepack"), "design.asc", "design.bin"], cwd=design, capture_output=True, text=True)
    if pack.returncode != 0:
        raise RuntimeError(f"icepack failed: {pack.stderr}")
    report["bitstream"] = "design.bin"
    return report


def synthesize(model: Model, target: str, baud: int = DEFAULT_BAUD) -> tuple[dict, Path]:
    """The flow's report for the model on the target and the directory of its design and outputs
    (cached: the same model, RTL and tools are synthesised once)."""
    info = fpga(target)
    tools = ["yosys"] + (["nextpnr-ice40", "icepack"] if info["family"] == "ice40" else [])
    for tool in tools:
        require(tool)
    staging = buildcache.root() / "hdl-staging"
    staging.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=staging) as tmp:
        files = design_files(model, target, tmp, baud)
        key = buildcache.key(files=files, tools=tools, texts=[target])

        def build(out: Path) -> None:
            for f in files:
                shutil.copyfile(f, out / f.name)
            (out / "report.json").write_text(json.dumps(run_flow(out, target), indent=2))

        out = buildcache.cached("hdl-synth", key, build)
    return json.loads((out / "report.json").read_text()), out


def format_report(model: Model, plan: MemoryPlan, report: dict | None) -> str:
    """What `edgelearn compile` and `edgelearn profile` print for an FPGA target."""
    info = fpga(plan.target)
    lines = [f"{model.name} on {plan.target} ({info['family']} {info['device']}): the STOP core, "
             f"{sum(l.size for l in model.layers)} neurons, {sum(l.size * model.fan_in(l) for l in model.layers):,} "
             "synapses"]
    placed = ", ".join(f"{n} {plan.blocks[n]} {'SPRAM tiles' if w == 'SPRAM' else 'block RAMs'}"
                       for n, w in plan.placement.items())
    lines.append(f"  buffers (planned): {placed}; block RAM {plan.block_ram} / {plan.block_ram_available}, "
                 f"SPRAM {plan.spram} / {plan.spram_available}")
    if report is None:
        lines.append("  DOES NOT FIT: " + not_fitting(model, plan))
        return "\n".join(lines)
    syn, have = report["synthesis"], report["available"]
    lines.append(f"  synthesis (yosys): {syn['luts']:,} LUT4 of {have['luts']:,}, {syn['flip_flops']:,} flip-flops, "
                 f"{syn['carries']:,} carries, block RAM {syn['block_ram']} / {have['block_ram']}, "
                 + (f"SPRAM {syn['spram']} / {have['spram']}, " if "spram" in have else "")
                 + f"DSP {syn['dsp']} / {have['dsp']}")
    pnr = report.get("place_and_route")
    if pnr is None:
        lines.append(f"  {report['note']}")
    elif not pnr["placed"]:
        lines.append(f"  place and route (nextpnr): DOES NOT FIT, {pnr['logic_cells']:,} logic cells of "
                     f"{pnr['logic_cells_available']:,}: {pnr['error']}")
    else:
        lines.append(f"  place and route (nextpnr): {pnr['logic_cells']:,} logic cells of "
                     f"{pnr['logic_cells_available']:,} ({100 * pnr['logic_cells'] / pnr['logic_cells_available']:.0f}%), "
                     f"Fmax {pnr['fmax_mhz']} MHz; the board's clock {pnr['clock_mhz']:g} MHz "
                     + ("is met" if pnr["meets_clock"] else "is NOT met"))
    lines.append(f"  {'fits' if fits(report) else 'DOES NOT FIT'}")
    return "\n".join(lines)


def fits(report: dict) -> bool:
    syn, have, pnr = report["synthesis"], report["available"], report.get("place_and_route")
    within = all(syn[k] <= have[k] for k in ("luts", "block_ram", "spram", "dsp") if k in have and k in syn)
    return within and (pnr is None or (pnr["placed"] and pnr["meets_clock"]))

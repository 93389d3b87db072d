"""The memory profiler: does training this model with this rule fit this board?

``profile(model, target, learner, T)`` returns, per buffer, the bytes the C runtime
(targets/c) holds on the device, against the board's SRAM and flash (targets/catalogue.json),
with the same model trained by BPTT at the same T beside it.

- The arena is edgelearn.plan's, from the model alone: the table of buffers the C runtime's
  el_plan_t is generated from, laid out as el_layout lays it out; tests check that every
  buffer equals what the C runtime reserves (``el_plan`` through cffi), so this is what
  the firmware allocates, not an estimate.
- Parameters (weights, thresholds, leaks) are learned in place in the blob, which
  therefore sits in RAM; the structure part of the blob (header, table, MODEL and LAYER
  sections) rides along. A copy of the blob in flash restores the initial model.
- Code size and the runtime context come from the runtime cross-compiled for the target
  (``size`` of the objects); the stack from ``-fstack-usage`` over the runtime's call chains.
- BPTT stores, for every one of the T steps, what its backward pass reads: each neuron's
  membrane U (int32, for the surrogate and the leak gradient) and spike (1 byte), and
  each input (1 byte): ``T x (5 x neurons + inputs)`` bytes. It keeps the state of the
  current step, carries one int32 error and one int32 membrane error per neuron back
  through time, and needs a weight-gradient sum for every trainable synapse (int64, as
  STOP's per-sample mode): the gradient only exists after the last step. It needs no traces.
- Inference beside them: the same model under rule ``none`` (no traces, errors or gradients), so
  one run answers how much training adds (bytes and percent).
- A board that runs the link-protocol firmware (targets/firmware: its layout comes from the
  installed firmware package, edgelearn.deploy) holds two model areas of a fixed size, the
  active one and the one a push fills, and an arena of a fixed size: the profile counts both
  areas and the arena's unused part, and refuses a blob larger than an area or a plan larger
  than the arena, as the board would (TOO_BIG, ARENA_TOO_SMALL).
- A custom board: ``sram``/``flash`` instead of (or over) a catalogue target's; without a
  target it has no toolchain, so code, context and stack are not measured.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import textwrap
from dataclasses import dataclass, replace
from pathlib import Path

from . import buildcache, deploy, resources, rules
from .errors import ModelError
from .model import Model
from .modelblob import to_blob
from .contract import RULES
from .plan import BUFFERS, align, arena_plan

CATALOGUE = resources.CATALOGUE
C_DIR = resources.C_DIR
RUNTIME_SOURCES = buildcache.DEVICE_SOURCES
CROSS_FLAGS = ("-std=c99", "-ffreestanding", "-Os", "-Wall", "-Wextra", "-Werror", "-pedantic", "-ffunction-sections",
               "-fdata-sections", "-fstack-usage")
LEARNERS = RULES                                   # every rule runs on the C runtime
DEFAULT_TB = 32                # backward steps given to a model profiled as spide without its own Tb

# Call chains of the runtime (caller first), for the stack estimate: the deepest sum of
# -fstack-usage frames along any of them. A function inlined away has no frame (0).
CALL_CHAINS = (
    ("el_run_sample", "forward_layer", "el_dense_current"),
    ("el_run_sample", "forward_layer", "el_layer_forward_dense", "el_dense_current_int8"),   # int8 weights
    ("el_run_sample", "forward_layer", "el_neuron_trace_step"),
    ("el_run_sample", "errors", "el_hidden_error"),
    ("el_run_sample", "errors", "el_layer_back_dense", "el_dense_back_int8"),
    ("el_run_sample", "updates", "el_update_weights"),
    ("el_run_sample", "updates", "el_layer_update_dense", "el_update_weights_int8"),
    ("el_run_sample", "forward_layer", "el_layer_forward_conv2d", "el_conv2d_current", "el_conv2d_sums"),
    ("el_run_sample", "errors", "el_layer_back_conv2d", "el_conv2d_back"),
    ("el_run_sample", "errors", "el_layer_back_maxpool", "el_maxpool_back"),
    ("el_run_sample", "updates", "el_layer_update_conv2d", "el_conv2d_update_weights", "add_tap_terms"),
    ("el_run_sample", "updates", "el_apply_threshold_grads"),
    ("el_run_sample", "forward_layer", "el_layer_filter_psn", "el_layer_forward_dense", "el_dense_current"),
    ("el_run_sample", "forward_layer", "el_layer_filter_psn", "el_psn_filter", "el_psn_apply_tap"),
    ("el_run_sample", "errors", "el_layer_lag0_psn", "el_psn_lag0_error", "el_psn_apply_tap"),
    ("el_run_sample", "updates", "el_layer_ring_update_psn", "el_psn_update_weights", "eligibility", "el_psn_apply_tap"),
    ("el_run_sample", "updates", "el_layer_ring_grads_psn", "el_psn_weight_grads", "eligibility", "el_psn_apply_tap"),
    ("el_apply_accumulated", "el_apply_weight_grads"),
    ("el_apply_accumulated", "el_apply_weight_grads_int8"),
    ("el_init_static", "el_init", "el_plan", "load", "check_layer_semantics", "source_size", "find_section"),
    ("el_init_static", "el_init", "el_plan", "load", "check_header", "blob_crc", "el_crc32"),
    ("el_init_static", "el_init", "el_plan", "load", "check_layer", "find_section"),
    ("el_init_static", "el_init", "el_plan", "load", "check_filter", "find_section"),
    ("el_init_static", "el_init", "el_plan", "load", "tables", "neuron_offset", "source_size", "find_section"),
    ("el_run_sample", "el_spide_run_sample", "forward_pass", "input_currents", "el_dense_current"),
    ("el_run_sample", "el_spide_run_sample", "forward_pass", "el_spike_current"),
    ("el_run_sample", "el_spide_run_sample", "backward_pass", "couples", "el_backward_input"),
    ("el_run_sample", "el_spide_run_sample", "apply_updates", "el_update_weights"),
    ("el_run_sample", "el_spide_run_sample", "guard", "el_spide_loop_gain", "el_row_abs_sums"),
)

GROUPS = {b.name: b.group for b in BUFFERS}    # arena buffer -> row of the table
FIRMWARE_OWN = "the firmware's own (link, log, stack, context)"


def catalogue() -> dict[str, dict]:
    return json.loads(CATALOGUE.read_text())["targets"]


def target_info(name: str) -> dict:
    targets = catalogue()
    if name not in targets:
        raise ModelError(f"unknown target {name!r} (known: {', '.join(sorted(targets))})")
    return targets[name]


CUSTOM = "custom"                       # the name of a board given by its sizes alone
SIZE_UNITS = {"": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1024 ** 2, "MB": 1024 ** 2, "MIB": 1024 ** 2}


def parse_bytes(text: str) -> int:
    """A memory size: an integer of bytes, or with K/KB/KiB or M/MB/MiB (1024-based, as the
    catalogue's figures); ValueError with what was wrong."""
    m = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", text)
    unit = m.group(2).upper() if m else None
    if m is None or unit not in SIZE_UNITS:
        raise ValueError(f"not a memory size: {text!r} (give bytes, or a number with K or M: 128K, 1M)")
    value = int(m.group(1)) * SIZE_UNITS[unit]
    if not 0 < value < 2 ** 32:                   # the firmware and the link carry sizes as u32
        raise ValueError(f"a memory size must be above 0 and below 4G, got {text!r}")
    return value


def budget(target: str | None, sram: int | None = None, flash: int | None = None) -> dict:
    """What a model is judged against: a catalogue target's entry, its sizes replaced by
    ``sram``/``flash`` where given; with no target, a custom board of those sizes (both needed)
    and no toolchain."""
    if target is None:
        if sram is None or flash is None:
            raise ModelError("give --target, or a custom board's --ram and --flash (e.g. --ram 128K --flash 1M)")
        return {"name": CUSTOM, "sram": sram, "flash": flash, "toolchain": None}
    info = dict(target_info(target), name=target)
    return {**info, **({"sram": sram} if sram is not None else {}), **({"flash": flash} if flash is not None else {})}


def with_learner(model: Model, learner: str, T: int | None = None) -> Model:
    if learner not in LEARNERS:
        raise ModelError(f"learner {learner!r} is not in the C runtime yet (known: {', '.join(LEARNERS)})")
    changes = {"rule": learner, **({"T": T} if T is not None else {})}
    if learner == "spide" and model.learning.Tb == 0:
        changes["Tb"] = DEFAULT_TB
    learning = replace(model.learning, **changes)
    return replace(model.copy(), learning=learning)


def runnable(model: Model, learner: str, T: int | None = None) -> Model:
    """The model under ``learner``, refused (ModelError, the reason) when the C runtime
    would refuse its blob: what is profiled or compiled is what a device can load."""
    return rules.check(with_learner(model, learner, T))


def blob_parts(model: Model) -> dict[str, int]:
    """The blob's bytes: parameters (learned in place) and structure."""
    weights = sum(model.params[layer.name].weight.size * layer.weight_bits // 8 for layer in model.layers)
    thresholds = sum(model.params[layer.name].threshold.nbytes for layer in model.layers)   # none for a pool
    leaks = 4 * len(model.layers)
    total = len(to_blob(model))
    return {"weights": weights, "thresholds and leaks": thresholds + leaks,
            "model structure": total - weights - thresholds - leaks, "total": total}


# -- cross-compilation --------------------------------------------------------------------

class ToolchainMissing(RuntimeError):
    pass


@dataclass
class Build:
    text: int                   # code and constants (flash)
    data: int                   # initialised data (flash and RAM)
    bss: int                    # zeroed data: the static arena and the context
    arena: int                  # of which the arena
    stack: int                  # deepest call chain, -fstack-usage
    size_output: str            # what `size` printed


def cross_compile(target: str, arena_bytes: int, out_dir: Path | None = None, sources: list[Path] | None = None,
                  chains=CALL_CHAINS) -> Build:
    """Compile the runtime (or ``sources`` of targets/c) for a catalogue target with -Werror (once
    per sources, flags and compiler, in edgelearn.buildcache); measure it, the stack over
    ``chains``. With out_dir, the objects (and their -fstack-usage files) are copied there."""
    tc = target_info(target)["toolchain"]
    if tc is None:
        raise ToolchainMissing(f"target {target!r} has no C toolchain (an FPGA: the HDL issue)")
    cc = tc["cc"]
    size_tool = cc[:-3] + "size" if cc.endswith("gcc") else "size"
    for tool in (cc, size_tool):
        if shutil.which(tool) is None:
            raise ToolchainMissing(f"{tool} not found; install it with: apt-get install -y gcc-arm-none-eabi "
                                   "libnewlib-arm-none-eabi gcc-riscv64-unknown-elf")
    sources = sources or buildcache.runtime_sources(device=True)
    flags = [*tc["flags"], *CROSS_FLAGS, f"-DEDGELEARN_ARENA_BYTES={arena_bytes}", "-I", str(C_DIR)]

    def build(work: Path) -> None:
        for src in sources:
            cmd = [cc, *flags, "-c", str(src), "-o", str(work / (src.stem + ".o"))]
            run = subprocess.run(cmd, capture_output=True, text=True)
            if run.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed:\n{run.stderr}")

    key = buildcache.key(files=[*sources, *buildcache.runtime_headers()], flags=[cc, *flags], tools=[cc])
    work = buildcache.cached("cross", key, build)
    objects = [work / (src.stem + ".o") for src in sources]
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for src in sources:
            for suffix in (".o", ".su"):
                shutil.copyfile(work / (src.stem + suffix), out / (src.stem + suffix))
        objects = [out / (src.stem + ".o") for src in sources]
    size_out = subprocess.run([size_tool, *map(str, objects)], capture_output=True, text=True,
                              check=True).stdout
    text = data = bss = 0
    for line in size_out.splitlines()[1:]:
        t, d, b = (int(v) for v in line.split()[:3])
        text, data, bss = text + t, data + d, bss + b
    frames = {}
    for su in work.glob("*.su"):
        for line in su.read_text().splitlines():   # file:line:col:function<TAB>bytes<TAB>kind
            m = re.match(r".*:(\w+)\t(\d+)\t", line)
            if m:
                frames[m.group(1)] = max(frames.get(m.group(1), 0), int(m.group(2)))
    stack = max(sum(frames.get(f, 0) for f in chain) for chain in chains)
    arena = align(arena_bytes)
    return Build(text, data, bss, arena, stack, size_out)


# -- the profile --------------------------------------------------------------------------

def profile(model: Model, target: str | None, learner: str, T: int, measure_code: bool = True, *,
            sram: int | None = None, flash: int | None = None, firmware: dict | None = None) -> dict:
    """Bytes per buffer for ``learner`` (the C runtime), inference (rule none) and BPTT at the
    same T, against the board's SRAM and flash (``budget``). ``firmware``: the link-protocol
    firmware's layout on this board, {"model_area", "arena", "own": bytes} (its two model areas,
    its arena, the rest of its RAM), or None (the runtime in a firmware of one's own)."""
    info = budget(target, sram, flash)
    m = runnable(model, learner, T)
    plan = arena_plan(m)
    blob = blob_parts(m)
    build = None
    if measure_code and info["toolchain"] is not None:
        build = cross_compile(target, plan["total"])
    context = build.bss - build.arena if build else 0
    stack = build.stack if build else 0
    code = build.text + build.data if build else 0

    def group(name, of=plan):
        return sum(n for b, n in of.items() if GROUPS.get(b) == name)

    learns = learner != "none"
    neurons = sum(layer.size for layer in m.layers)
    inputs = m.input.size
    # BPTT trains every layer (as STOP's plan lays them out) and keeps T steps of activations
    bptt_train = with_learner(model, "stop", T) if learner in ("readout", "spide") else m
    bptt_plan = arena_plan(replace(bptt_train, learning=replace(bptt_train.learning, update="sample")))
    infer_plan = arena_plan(with_learner(model, "none", T))
    trainable_neurons = bptt_plan["error"] // 4
    arena_rows = ("layer table", "neuron state", "I/O buffers", "traces", "backward couples", "guard and health")
    rows = {  # name: (runtime bytes, BPTT bytes, inference bytes)
        "weights": (blob["weights"],) * 3,
        "thresholds and leaks": (blob["thresholds and leaks"],) * 3,
        "model structure": (blob["model structure"],) * 3,
        **{k: (group(k), group(k, bptt_plan) if k in arena_rows[:3] else 0, group(k, infer_plan))
           for k in arena_rows},
        "stored activations (T steps)": (0, T * (5 * neurons + inputs) if learns else 0, 0),
        "errors": (group("errors"), (2 * 4 * trainable_neurons + bptt_plan["error_backprop"]) if learns else 0,
                   group("errors", infer_plan)),
        "gradient accumulators": (group("gradient accumulators"),
                                  (bptt_plan["threshold_grad"] + bptt_plan["leak_grad"] + bptt_plan["weight_grad"])
                                  if learns else 0, group("gradient accumulators", infer_plan)),
        "runtime context": (context,) * 3,
        "stack (estimate)": (stack,) * 3,
    }
    refusals = []
    if firmware is not None:
        area, fw_arena = firmware["model_area"], firmware["arena"]
        in_words = (area + 7) // 8 * 8, (fw_arena + 7) // 8 * 8    # the C arrays are of uint64_t
        if blob["total"] > area:
            refusals.append(f"the model blob is {blob['total']:,} bytes, the firmware's model area "
                            f"{area:,} (the board would refuse the push: TOO_BIG)")
        if plan["total"] > fw_arena:
            refusals.append(f"the model's arena is {plan['total']:,} bytes, the firmware's {fw_arena:,} "
                            f"(the board would refuse the commit: ARENA_TOO_SMALL)")
        rows["active model area, unused"] = (max(0, in_words[0] - blob["total"]),) * 3
        rows["second model area (a push fills it)"] = (in_words[0],) * 3
        in_arena = [k for k in rows if k in arena_rows or k in ("errors", "gradient accumulators")]
        rows["firmware arena, unused"] = tuple(0 if c == 1 else max(0, in_words[1] - sum(rows[k][c] for k in in_arena))
                                               for c in range(3))     # BPTT: not in this arena
        # measured on the firmware itself, which holds the runtime's context and reserves its stack
        del rows["runtime context"], rows["stack (estimate)"]
        rows[FIRMWARE_OWN] = (firmware["own"],) * 3
    ram = {k: v[0] for k, v in rows.items()}
    ram_bptt = {k: v[1] for k, v in rows.items()}
    ram_inference = {k: v[2] for k, v in rows.items()}
    flash_rows = {"code": code, "initial model (blob)": blob["total"]}
    total_ram, total_bptt, total_flash = sum(ram.values()), sum(ram_bptt.values()), sum(flash_rows.values())
    total_inference = sum(ram_inference.values())
    if total_ram > info["sram"]:
        refusals.append(f"RAM: {total_ram:,} bytes needed, the board has {info['sram']:,}")
    if total_flash > info["flash"]:
        refusals.append(f"flash: {total_flash:,} bytes needed, the board has {info['flash']:,}")
    # a firmware's arena is of a fixed size: training's buffers may fill what inference leaves unused
    training_adds = total_ram - total_inference
    return {
        "model": model.name, "target": info["name"], "learner": learner, "T": T,
        "arena": plan["total"], "arena_buffers": {k: v for k, v in plan.items() if k != "total"},
        "arena_inference": infer_plan["total"],
        "ram": ram, "ram_bptt": ram_bptt, "ram_inference": ram_inference, "flash": flash_rows,
        "total_ram": total_ram, "total_ram_bptt": total_bptt, "total_ram_inference": total_inference,
        "total_flash": total_flash,
        "training_adds": training_adds,
        "training_adds_percent": round(100 * training_adds / total_inference, 1),
        "sram": info["sram"], "flash_budget": info["flash"], "firmware": firmware,
        "fits": not refusals, "refusals": refusals,
        "bptt_fits": total_bptt <= info["sram"] and total_flash <= info["flash"],
        "code_measured": build is not None, "size_output": build.size_output if build else "",
    }


def format_table(p: dict) -> str:
    w = max(len(k) for k in [*p["ram"], *p["flash"]]) + 2
    lines = [f"{p['model']} on {p['target']}: inference, {p['learner']} and BPTT, T = {p['T']}"
             + (f"; the link-protocol firmware's two model areas of {p['firmware']['model_area']:,} bytes and "
                f"arena of {p['firmware']['arena']:,}" if p["firmware"] else ""),
             f"{'RAM':<{w}}{'inference':>12}{p['learner']:>12}{'BPTT':>12}"]
    for k in p["ram"]:
        lines.append(f"  {k:<{w - 2}}{p['ram_inference'][k]:>12,}{p['ram'][k]:>12,}{p['ram_bptt'][k]:>12,}")
    lines.append(f"  {'total':<{w - 2}}{p['total_ram_inference']:>12,}{p['total_ram']:>12,}{p['total_ram_bptt']:>12,}"
                 f"   of {p['sram']:,} SRAM")
    lines.append(f"{'flash':<{w}}")
    for k, v in p["flash"].items():
        lines.append(f"  {k:<{w - 2}}{v:>12,}")
    lines.append(f"  {'total':<{w - 2}}{p['total_flash']:>12,}   of {p['flash_budget']:,} flash")
    if not p["code_measured"]:
        lines.append("  (no C toolchain for this target: code, context and stack not measured)")
    lines.append(f"arena (what the C runtime reserves): {p['arena']:,} bytes")
    used = [(name, n) for name, n in p["arena_buffers"].items() if n]
    lines.append(textwrap.fill(", ".join(f"{name} {n:,}" for name, n in used), 100, initial_indent="  ",
                               subsequent_indent="  "))
    fixed = " (the firmware's arena is of a fixed size)" if p["firmware"] else ""
    lines.append(f"training ({p['learner']}) adds {p['training_adds']:,} bytes of RAM over inference "
                 f"(+{p['training_adds_percent']}%){fixed}: an arena of {p['arena']:,} bytes instead of "
                 f"{p['arena_inference']:,}")
    verdict = "fits" if p["fits"] else "DOES NOT FIT: " + "; ".join(p["refusals"])
    lines.append(f"{p['learner']}: {verdict}; BPTT: {'fits' if p['bptt_fits'] else 'does not fit'}")
    return "\n".join(lines)


def plot(p: dict, path) -> None:
    """Stacked bars of RAM by buffer: inference, the learner, BPTT, and the budget line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    # learner none is inference itself: one bar for it
    columns = {"inference": p["ram_inference"], **({p["learner"]: p["ram"]} if p["learner"] != "none" else {}),
               "BPTT": p["ram_bptt"]}
    bottoms = [0] * len(columns)
    for k in p["ram"]:
        vals = [column[k] / 1024 for column in columns.values()]
        if any(vals):
            ax.bar(list(columns), vals, bottom=bottoms, label=k)
            bottoms = [b + v for b, v in zip(bottoms, vals)]
    ax.axhline(p["sram"] / 1024, color="k", linestyle="--", label=f"{p['target']} SRAM")
    ax.set_ylabel("KiB")
    ax.set_title(f"{p['model']}, T = {p['T']}")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def compile_for_target(model: Model, target: str, out_dir) -> Build:
    """What ``edgelearn compile`` writes into out_dir: the model blob (model.elm), the
    config header (edgelearn_config.h: the arena the model needs, the blob's size, a sample's
    shape), the runtime's objects cross-compiled for the target with that arena, and the
    library bundle in out_dir/bundle (edgelearn.deploy)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rules.check(model)
    blob = to_blob(model)
    arena = arena_plan(model)["total"]
    (out / "model.elm").write_bytes(blob)
    (out / "edgelearn_config.h").write_text(deploy.config_header(model, target, blob, arena))
    build = cross_compile(target, arena, out)
    deploy.write_bundle(model, target, target_info(target)["toolchain"], blob, arena, out / "bundle",
                        cflags=CROSS_FLAGS)      # the flags the runtime is checked with here
    return build

"""Per-kernel golden vectors (tests/golden/kernels/<op>.json, CMSIS-NN style) replayed
through every bit-exact executor: the Python reference named by the file's "python" field
and the C twin named by its "c" field (through cffi). How each kernel is called lives in
one table, tests/kernel_calls.py. Also: every C kernel of el_kernels.h / el_kernels_spide.h
has a file, and the committed files equal a fresh run of the generator, so any change to
the integer arithmetic shows up as a changed golden file."""
import json
import re
import sys
from pathlib import Path

import kernel_calls as kc
import pytest

from edgelearn import native
from edgelearn.executors import bit_exact
from edgelearn.resources import C_DIR

GOLDEN = Path(__file__).parent / "golden" / "kernels"
sys.path.insert(0, str(GOLDEN.parent))
import make_kernel_golden

FILES = sorted(GOLDEN.glob("*.json"))
KERNEL_HEADERS = ("el_kernels.h", "el_kernels_spide.h", "el_conv2d.h", "el_pool.h", "el_scan2d.h")
# Declared in those headers but not kernels of the contract: no golden file.
NOT_KERNELS = {
    "el_zero": "the runtime's memory helper (clears bytes); no Python twin",
    "el_dense_current_buffer_size": "scratch size helper (Python: edgelearn.ops.layers.dense.scratch)",
    "el_error_backprop_buffer_size": "scratch size helper",
    "el_conv2d_nonzero_size": "scratch size helper (Python: edgelearn.ops.layers.conv2d.scratch)",
    "el_conv2d_sums_size": "scratch size helper",
    "el_cutoff_margin": "reads a margin of the blob bytewise (Python reads the CUTOFF section with numpy)",
}


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _diff(want: dict, got: dict) -> str:
    keys = sorted(set(want) | set(got))
    return "; ".join(f"{k}: want {want.get(k)} got {got.get(k)}" for k in keys if want.get(k) != got.get(k))


@pytest.mark.parametrize("executor", bit_exact())
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_replay(path, executor):
    doc = load(path)
    kernel = kc.KERNELS[doc["op"]]
    failures = []
    for case in doc["cases"]:
        got = kc.RUNNERS[executor](kernel, case)
        if got != case["outputs"]:
            failures.append(f"  {case['name']}: {_diff(case['outputs'], got)}")
    impl = doc["python"] if executor == "fixed" else doc["c"]
    assert not failures, f"{doc['op']} on {executor} ({impl}):\n" + "\n".join(failures)


def test_every_bit_exact_executor_has_a_runner():
    assert set(bit_exact()) <= set(kc.RUNNERS), "a new bit-exact executor needs a runner in tests/kernel_calls.py"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_file_describes_its_kernel(path):
    doc = load(path)
    assert doc["op"] == path.stem and doc["op"] in kc.KERNELS
    kernel = kc.KERNELS[doc["op"]]
    assert {k: v for k, v in doc.items() if k != "cases"} == kernel.header()
    assert callable(kc.python_function(kernel))
    assert callable(kc.c_function(kernel, native.load_native().lib))
    assert 1 <= len(doc["cases"]) and len({c["name"] for c in doc["cases"]}) == len(doc["cases"])
    assert path.stat().st_size < 100_000


def _declared_functions(header: str) -> set[str]:
    text = re.sub(r"/\*.*?\*/", "", (C_DIR / header).read_text(), flags=re.DOTALL)
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return set(re.findall(r"\b(el_\w+)\s*\(", text))


def test_every_c_kernel_has_a_golden_file():
    declared = set().union(*(_declared_functions(h) for h in KERNEL_HEADERS))
    assert declared >= set(NOT_KERNELS), "a helper of NOT_KERNELS left the headers"
    covered = {load(p)["c"] for p in FILES}
    missing = declared - set(NOT_KERNELS) - covered
    assert not missing, f"C kernels without a golden file: {sorted(missing)} (add them to tests/kernel_calls.py " \
                        "and tests/golden/make_kernel_golden.py)"
    assert {p.stem for p in FILES} == set(kc.KERNELS)


def test_golden_files_are_fresh():
    """A changed kernel (or generator) changes the golden vectors: regenerate them with
    .venv/bin/python tests/golden/make_kernel_golden.py and review the diff."""
    fresh = make_kernel_golden.render_all()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in FILES}
    assert sorted(on_disk) == sorted(fresh)
    stale = sorted(name for name, text in fresh.items() if on_disk[name] != text)
    assert not stale, f"stale golden files {stale}: run .venv/bin/python tests/golden/make_kernel_golden.py"

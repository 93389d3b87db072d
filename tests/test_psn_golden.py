"""PSN golden vectors (tests/golden/psn/<op>.json) replayed through the Python reference and the C
runtime (targets/c/el_psn.c through cffi); the committed files equal a fresh run of the generator,
so any change to the integer arithmetic shows up as a changed file (docs/numerics.md §11)."""
import json
import sys
from pathlib import Path

import psn_calls as pc
import pytest

GOLDEN = Path(__file__).parent / "golden" / "psn"
sys.path.insert(0, str(GOLDEN.parent))
import make_psn_golden

FILES = sorted(GOLDEN.glob("*.json"))


def test_every_op_has_a_file():
    assert {p.stem for p in FILES} == set(make_psn_golden.BUILDERS) == set(pc.PYTHON)


@pytest.mark.parametrize("executor", ["fixed", "c"])
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_replay(path, executor):
    doc = json.loads(path.read_text(encoding="utf-8"))
    run = pc.PYTHON[doc["op"]] if executor == "fixed" else pc.c_runner(doc["op"])
    for case in doc["cases"]:
        got = run(make_psn_golden.inputs_for(doc["op"], case))
        got = got if doc["op"] == "run_sample" else pc.lists(got)
        assert got == case["outputs"], f"{doc['op']} {case['name']} on {executor}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_committed_files_equal_a_fresh_run(path):
    assert path.read_text(encoding="utf-8") == make_psn_golden.text(make_psn_golden.build(path.stem)), \
        f"{path.name} is stale: run tests/golden/make_psn_golden.py (and say why the arithmetic changed)"

"""`edgelearn fleet`'s refusals, each before any board or Flower process starts (the runs
themselves: tests/test_fleet_run.py)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgelearn.datasets import Dataset, write_idx_dir

# a Flower deployment is a dozen processes polling on timers: one at a time, in one worker of
# pytest -n, so two never share the two cores and stretch each other's rounds past their timeouts
pytestmark = pytest.mark.xdist_group("flower")

ROOT = Path(__file__).resolve().parent.parent
FLEET_BIN = ROOT / ".venv-fleet" / "bin"


def fleet(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "edgelearn.cli", "fleet", *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def test_the_verb_is_installed_through_its_entry_point():
    r = fleet("--help")
    assert r.returncode == 0 and "--partition {iid,by-class,shifted}" in r.stdout and "--flower-bin" in r.stdout


@pytest.mark.parametrize("args, message", [
    (("--partition", "random"), "invalid choice: 'random'"),
    (("--boards", "0"), "must be between 1 and 256, got 0"),
    (("--rounds", "x"), "expected an integer, got 'x'"),
    (("--kind", "stm32"), "invalid choice: 'stm32'"),
    (("--round-timeout", "-3"), "must be between 0 and 3600 seconds"),
])
def test_bad_options(args, message):
    r = fleet(*args)
    assert r.returncode == 2 and message in r.stderr


def test_a_bad_plot_path_is_refused_before_the_run(tmp_path):
    r = fleet("--plot", tmp_path / "curve.jpg", "--flower-bin", tmp_path)
    assert r.returncode == 2 and "unknown plot file suffix '.jpg'" in r.stderr


def test_without_flower_it_says_how_to_get_it(tmp_path):
    r = fleet("--flower-bin", tmp_path)
    assert r.returncode == 2
    assert f"Flower's commands (flower-superlink, flower-supernode, flwr) are not in {tmp_path}" in r.stderr
    assert "pip install 'edgelearn[fleet]'" in r.stderr and "make fleet-setup" in r.stderr


def test_refusals_that_need_flower_to_get_that_far(tmp_path):
    assert (FLEET_BIN / "flwr").exists(), f"{FLEET_BIN}: run `make fleet-setup` (make test does)"
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "old.txt").write_text("x")
    r = fleet("--flower-bin", FLEET_BIN, "--out", busy)
    assert r.returncode == 2 and f"the output directory {busy} is not empty" in r.stderr
    r = fleet("--flower-bin", FLEET_BIN, "--data", tmp_path / "nothing")
    assert r.returncode == 2 and "edgelearn: error:" in r.stderr
    r = fleet("--flower-bin", FLEET_BIN, "--data", "digits", "--boards", "3", "--model", tmp_path / "none.json")
    assert r.returncode == 2 and "none.json" in r.stderr
    tiny = write_idx_dir(Dataset("tiny", np.zeros((2, 64), np.uint8), np.array([0, 1], np.uint8),
                                 np.zeros((2, 64), np.uint8), np.array([0, 1], np.uint8), (8, 8), 2), tmp_path / "tiny")
    r = fleet("--flower-bin", FLEET_BIN, "--data", tiny, "--boards", "3", "--model", ROOT / "models" / "digits-stop.json")
    assert r.returncode == 2 and "3 boards for 2 training samples" in r.stderr

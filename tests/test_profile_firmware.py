"""``edgelearn profile`` answers what training adds over inference, profiles a custom board given
by its sizes, and counts the link-protocol firmware's two model areas and fixed arena on a board
that runs it (issue 16)."""
import json
from pathlib import Path

import pytest

from edgelearn import native
from edgelearn import profile as pf
from edgelearn.cli import main
from edgelearn.modelblob import to_blob
from edgelearn.modelfile import load_model
from firmware_host import deploy as fw_deploy

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "models" / "digits-stop.json"
MNIST = ROOT / "models" / "mnist-stop.json"


def run_cli(capsys, *argv):
    try:
        rc = main(["profile", *map(str, argv)])
    except SystemExit as exit_:                  # argparse refused an argument
        rc = exit_.code
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("learner", ["stop", "readout", "none"])
def test_training_adds_what_its_buffers_add_over_inference(capsys, learner):
    model = load_model(DIGITS)
    p = pf.profile(model, "stm32l476", learner, 8)
    inference = native.arena_required(to_blob(pf.with_learner(model, "none", 8)))
    training = native.arena_required(to_blob(pf.with_learner(model, learner, 8)))
    assert p["arena_inference"] == inference and p["arena"] == training
    assert p["training_adds"] == p["total_ram"] - p["total_ram_inference"] == training - inference
    assert (p["training_adds"] > 0) == (learner != "none")
    assert p["training_adds_percent"] == round(100 * (training - inference) / p["total_ram_inference"], 1)
    rc, out, err = run_cli(capsys, DIGITS, "--target", "stm32l476", "--learner", learner)
    assert rc == 0, err
    assert f"training ({learner}) adds {training - inference:,} bytes of RAM over inference " \
           f"(+{p['training_adds_percent']}%)" in out


def test_a_custom_board_is_judged_by_its_sizes(capsys):
    rc, out, err = run_cli(capsys, DIGITS, "--ram", "128K", "--flash", "1M", "--json")
    assert rc == 0, err
    p = json.loads(out)
    assert (p["target"], p["sram"], p["flash_budget"], p["code_measured"]) == ("custom", 131072, 1048576, False)
    assert p["firmware"] is None
    # too little RAM: the profile says by how much, and the exit status says it does not fit
    rc, out, err = run_cli(capsys, DIGITS, "--ram", "32K", "--flash", "1M", "--json")
    p = json.loads(out)
    assert rc == 1 and not p["fits"] and f"RAM: {p['total_ram']:,} bytes needed, the board has 32,768" in p["refusals"]
    # over a catalogue target: its toolchain measures the code, the budget is the one given
    rc, out, err = run_cli(capsys, DIGITS, "--target", "stm32l476", "--ram", "1048576", "--json")
    p = json.loads(out)
    assert rc == 0 and p["sram"] == 1048576 and p["flash_budget"] == 1048576 and p["code_measured"]


@pytest.mark.parametrize("argv,needle", [
    (["--ram", "12Q", "--flash", "1M"], "not a memory size: '12Q'"),
    (["--ram", "1.5K", "--flash", "1M"], "not a memory size: '1.5K'"),
    (["--ram", "-5", "--flash", "1M"], "not a memory size"),
    (["--ram", "0", "--flash", "1M"], "above 0"),
    (["--ram", "4096M", "--flash", "1M"], "below 4G"),
    (["--ram", "128K"], "give --target, or a custom board's --ram and --flash"),
    ([], "give --target, or a custom board's --ram and --flash"),
    (["--ram", "128K", "--flash", "1M", "--model-area", "64K"], "not on a custom board"),
    (["--target", "stm32l476", "--arena", "64K"], "not on stm32l476"),
    (["--target", "nosuch"], "unknown target 'nosuch'"),
])
def test_profile_refuses_bad_sizes_in_one_line(capsys, argv, needle):
    rc, out, err = run_cli(capsys, DIGITS, *argv)
    assert rc == 2 and needle in err and "Traceback" not in err, err


def test_a_board_running_the_protocol_firmware_counts_its_second_model_area(capsys):
    model = load_model(DIGITS)
    layout = fw_deploy.layout("mps2-an386")
    bare = pf.profile(model, "mps2-an386", "stop", 8)
    with_fw = pf.profile(model, "mps2-an386", "stop", 8, firmware=layout)
    blob = len(to_blob(model))
    assert with_fw["ram"]["second model area (a push fills it)"] == layout["model_area"]
    assert with_fw["ram"]["active model area, unused"] == layout["model_area"] - blob
    # both areas, the arena and the firmware's own RAM (measured: tests/test_compile_firmware.py)
    assert with_fw["total_ram"] == 2 * layout["model_area"] + layout["arena"] + layout["own"] > bare["total_ram"]
    assert "runtime context" not in with_fw["ram"] and pf.FIRMWARE_OWN in with_fw["ram"]
    rc, out, err = run_cli(capsys, DIGITS, "--target", "mps2-an386", "--json")
    assert rc == 0 and json.loads(out)["total_ram"] == with_fw["total_ram"]
    # a catalogue board without the protocol firmware: the runtime in a firmware of one's own
    assert json.loads(run_cli(capsys, DIGITS, "--target", "stm32l476", "--json")[1])["firmware"] is None


def test_a_model_larger_than_the_firmware_model_area_does_not_fit(capsys):
    rc, out, err = run_cli(capsys, MNIST, "--target", "mps2-an386")
    assert rc == 1 and "the model blob is 407,848 bytes, the firmware's model area 131,072" in out
    rc, out, err = run_cli(capsys, MNIST, "--target", "mps2-an386", "--model-area", "512K", "--json")
    p = json.loads(out)
    assert rc == 0 and p["fits"] and p["ram"]["second model area (a push fills it)"] == 512 * 1024

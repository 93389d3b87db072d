"""The FPGA flow on the digits model: where its buffers go (planned before any tool runs), then
yosys, nextpnr-ice40 and icepack for the iCE40 UP5K through `edgelearn compile`, with the same
numbers from `edgelearn profile`; yosys for the ECP5-25F. The flow takes minutes (place and
route near full occupancy), so it is marked slow; `make test` runs it. The tools come with
`make test` (the Makefile's tools): without them these tests fail, they do not skip."""
import json

import pytest

from edgelearn.cli import main
from edgelearn.hdl import synth
from edgelearn.modelfile import load_model
from edgelearn.resources import MODELS

DIGITS = MODELS / "digits-stop.json"


def test_digits_buffers_fit_the_up5k_with_the_weights_in_spram():
    plan = synth.memory_plan(load_model(DIGITS), "ice40up5k")
    assert plan.fits and plan.single_port == {"weights"}
    assert plan.placement["weights"] == "SPRAM" and plan.blocks["weights"] == 2      # 18,944 x 16 bits
    assert plan.block_ram <= 30


def test_block_ram_shapes():
    assert synth.blocks("ice40", 32, 266) == 4 and synth.blocks("ice40", 9, 916) == 3
    assert synth.blocks("ecp5", 16, 18944) == 19 and synth.spram_tiles(32, 266) == 2


@pytest.mark.slow
def test_compile_synthesises_places_and_routes_digits_for_the_up5k(tmp_path, capsys):
    rc = main(["compile", str(DIGITS), "--target", "ice40up5k", "-o", str(tmp_path)])
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "report.json").read_text())
    pnr = report["place_and_route"]
    assert pnr["placed"], out
    assert pnr["logic_cells"] <= 5280 and report["synthesis"]["dsp"] <= 8 and report["synthesis"]["spram"] <= 4
    assert (tmp_path / "design.bin").stat().st_size > 100_000 and (tmp_path / "el_model.v").is_file()
    assert f"Fmax {pnr['fmax_mhz']} MHz" in out
    assert rc == (0 if synth.fits(report) else 1)
    rc_profile = main(["profile", str(DIGITS), "--target", "ice40up5k"])       # the cached flow: the same numbers
    assert rc_profile == rc and capsys.readouterr().out.strip() == out.strip().rsplit("\n", 1)[0].strip()


@pytest.mark.slow
def test_ecp5_synthesis_reports_its_resources(capsys):
    rc = main(["profile", str(DIGITS), "--target", "ecp5-25f", "--json"])
    numbers = json.loads(capsys.readouterr().out)
    assert rc == 0 and numbers["fits"] and numbers["place_and_route"] is None
    assert 0 < numbers["synthesis"]["luts"] < 24288 and numbers["synthesis"]["block_ram"] <= 56

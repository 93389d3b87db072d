"""The fleet's environment (docs/fleet.md, "Why a venv of its own"): Flower cannot share the
main venv's pins, so constraints-fleet.txt pins .venv-fleet, and differs from constraints.txt
only where Flower needs it to."""
import configparser
import json
import re
import subprocess
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
FLEET_PYTHON = ROOT / ".venv-fleet" / "bin" / "python"
MOVED_FOR_FLOWER = {"protobuf", "packaging"}       # flwr 1.42: protobuf < 7, packaging < 26


def pins(name: str) -> dict[str, str]:
    out = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            m = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!_-]+)", line)
            assert m, f"{name}: not an exact pin: {line!r}"
            out[canonicalize_name(m.group(1))] = m.group(2)
    return out


def test_the_fleet_pins_cover_edgelearn_and_flower_and_move_only_what_flower_needs():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    fleet, core = pins("constraints-fleet.txt"), pins("constraints.txt")
    declared = [Requirement(r) for r in cfg["options"]["install_requires"].split("\n") if r.strip()]
    declared += [Requirement(r) for r in cfg["options.extras_require"]["fleet"].split("\n") if r.strip()]
    assert "flwr" in {canonicalize_name(r.name) for r in declared}
    for req in declared:
        name = canonicalize_name(req.name)
        assert name in fleet, f"{req.name} (setup.cfg) has no exact pin in constraints-fleet.txt"
        assert req.specifier.contains(fleet[name], prereleases=True), f"{name}=={fleet[name]} is outside {req}"
    differ = {n for n in fleet.keys() & core.keys() if fleet[n] != core[n]}
    assert differ == MOVED_FOR_FLOWER, f"constraints-fleet.txt moves {sorted(differ)} away from constraints.txt"


def test_the_fleet_venv_is_what_its_pins_say():
    assert FLEET_PYTHON.exists(), "no .venv-fleet: run `make fleet-setup` (make test does)"
    code = ("import json, importlib.metadata as m\n"
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")
    r = subprocess.run([FLEET_PYTHON, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    installed = {canonicalize_name(k): v for k, v in json.loads(r.stdout).items()}
    wrong = {n: (v, installed.get(n)) for n, v in pins("constraints-fleet.txt").items() if installed.get(n) != v}
    assert not wrong, f".venv-fleet differs from constraints-fleet.txt (pinned, installed): {wrong}; make fleet-setup"


def test_make_test_builds_the_fleet_venv_with_its_pins():
    makefile = (ROOT / "Makefile").read_text()
    rule = re.search(r"^\$\(FLEET_STAMP\):(.*)\n((?:\t.*\n)+)", makefile, re.M)
    assert rule, "the fleet venv's stamp rule is gone from the Makefile"
    assert "constraints-fleet.txt" in rule.group(1).split()
    assert "-c constraints-fleet.txt -e '.[fleet]'" in rule.group(2)
    test = re.search(r"^test:(.*)$", makefile, re.M)
    assert "$(FLEET_STAMP)" in test.group(1).split()

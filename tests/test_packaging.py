"""What `pip install .` gives, outside the checkout: the wheel carries targets/ and models/ as
edgelearn/_data, and the installed `edgelearn` profiles, cross-compiles, starts a native board
and pushes to it from any directory, writing nothing into site-packages (numba's cache and the
cffi and firmware builds go to the user's cache). The editable install of the Makefile finds
the checkout's top-level directories instead. And constraints.txt pins the environment.

The fresh venv reuses this venv's dependencies through a .pth line naming its site-packages
(a directory named by a .pth is put on sys.path, but .pth files inside it are not processed,
so this venv's editable finder stays out; checked below), so nothing is downloaded. Permission
bits would not stop root (who runs these tests here), so "site-packages may be read-only" is
checked by listing the installed files against the wheel's RECORD after everything ran."""
import configparser
import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import zipfile
import zlib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PYVER = f"python{sys.version_info.major}.{sys.version_info.minor}"
RUNTIME_OBJECTS = ("el_kernels", "el_kernels_spide", "el_conv2d", "el_pool", "el_scan2d", "el_psn", "el_blob",
                   "el_stop", "el_spide", "el_static")
IGNORED = ("__pycache__", "*.pyc", ".*")
EM_ARM = 40      # ELF e_machine of an ARM object


def run(cmd, env, cwd, timeout=180):
    return subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def ok(r):
    assert r.returncode == 0, f"$ {' '.join(r.args)}\nexit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def tree(root: Path) -> set[str]:
    """Files under root, relative, without caches and hidden files."""
    return {str(p.relative_to(root)) for p in root.rglob("*")
            if p.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(root).parts)
            and p.suffix != ".pyc"}


def copy_checkout(dest: Path) -> Path:
    """The sources as a fresh clone has them (builds in the checkout would leave build/ there)."""
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns("build", "out", "*.egg-info", *IGNORED))
    return dest


def fresh_venv(path: Path) -> Path:
    """A venv outside the checkout whose only link to this one is a .pth naming its site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    site = path / "lib" / PYVER / "site-packages"
    assert site.is_dir(), f"no {site} in the fresh venv"
    dev = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    (site / "_edgelearn_dev_deps.pth").write_text("".join(d + "\n" for d in dev))
    return path


def isolated_env(tmp: Path, venv: Path) -> dict:
    """The environment of a user whose home, cache and board registry are tmp dirs."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("EDGELEARN_", "NUMBA_", "PYTHON", "VIRTUAL_ENV", "PIP_REQUIRE"))}
    dev_bin = str(Path(sys.executable).parent)
    env.update(HOME=str(tmp / "home"), XDG_CACHE_HOME=str(tmp / "cache"), MPLCONFIGDIR=str(tmp / "mpl"),
               EDGELEARN_BUILD_DIR=str(tmp / "build"), EDGELEARN_BOARDS_FILE=str(tmp / "registry" / "boards.json"),
               PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1",
               PATH=os.pathsep.join([str(venv / "bin")] + [p for p in env.get("PATH", "").split(os.pathsep)
                                                           if p and p != dev_bin]))
    (tmp / "home").mkdir()
    return env


def require_tools():
    missing = [t for t in ("gcc", "arm-none-eabi-gcc", "arm-none-eabi-size") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: `make tools` installs them (apt-get install gcc "
                    "gcc-arm-none-eabi libnewlib-arm-none-eabi)")
    try:
        have = Version(metadata.version("setuptools"))
    except metadata.PackageNotFoundError:
        have = None
    if have is None or have < Version("70.1"):
        pytest.fail(f"building the wheel without isolation needs setuptools>=70.1 in {sys.prefix} (found {have}): "
                    "pip install -c constraints.txt -e '.[test]' (or make setup)")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel, venv, site-packages, env, cwd): the wheel built from a copy of the checkout and
    installed alone into a fresh venv; env points HOME and every cache at tmp dirs."""
    require_tools()
    tmp = tmp_path_factory.mktemp("wheel")
    src = copy_checkout(tmp / "src")
    ok(run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
            "-w", tmp / "dist", src], os.environ, tmp))
    [wheel] = (tmp / "dist").glob("edgelearn-*.whl")
    venv = fresh_venv(tmp / "venv")
    env = isolated_env(tmp, venv)
    # --ignore-installed: pip sees this venv's editable edgelearn through the .pth; never touch it
    ok(run([venv / "bin" / "python", "-m", "pip", "install", "--no-index", "--no-deps", "--no-compile",
            "--ignore-installed", "--quiet", wheel], env, tmp))
    cwd = tmp / "elsewhere"
    cwd.mkdir()
    return wheel, venv, venv / "lib" / PYVER / "site-packages", env, cwd


def test_wheel_ships_the_packages_targets_and_models(installed):
    wheel = installed[0]
    names = set(zipfile.ZipFile(wheel).namelist())
    for pkg in ("edgelearn", "firmware_host"):
        py = {f"{pkg}/{p}" for p in tree(ROOT / pkg) if p.endswith(".py")}
        assert py <= names, f"modules of {pkg}/ missing from the wheel (add their package to setup.py): {sorted(py - names)}"
    for top in ("targets", "models"):
        want = {f"edgelearn/_data/{top}/{p}" for p in tree(ROOT / top)}
        have = {n for n in names if n.startswith(f"edgelearn/_data/{top}/")}
        assert want == have, (f"{top}/ and the wheel's edgelearn/_data/{top} differ (package_data in setup.py): "
                              f"missing {sorted(want - have)}, extra {sorted(have - want)}")
    for must in ("c/edgelearn.h", "c/el_stop.c", "boards/mps2/mps2.ld.S", "firmware/main_loop.c",
                 "catalogue.json", "README.md"):
        assert f"edgelearn/_data/targets/{must}" in names
    assert "edgelearn/_data/models/digits-stop.json" in names


def test_installed_package_is_the_wheel_not_the_checkout(installed):
    _, venv, site, env, cwd = installed
    probe = ("import json, sys, edgelearn, firmware_host, numpy; from edgelearn import resources; "
             "print(json.dumps({'edgelearn': edgelearn.__file__, 'firmware_host': firmware_host.__file__, "
             "'numpy': numpy.__file__, 'targets': str(resources.TARGETS), 'models': str(resources.MODELS), "
             "'path': sys.path, 'prefix': sys.prefix, "
             "'editable': [m for m in sys.modules if 'editable' in m] + "
             "[repr(f) for f in sys.meta_path if 'editable' in repr(f).lower()]}))")
    got = json.loads(ok(run([venv / "bin" / "python", "-c", probe], env, cwd)))
    assert Path(got["prefix"]) == venv
    assert got["editable"] == [], f"the dev venv's editable finder leaked in: {got['editable']}"
    assert Path(got["edgelearn"]) == site / "edgelearn" / "__init__.py"
    assert Path(got["firmware_host"]) == site / "firmware_host" / "__init__.py"
    assert Path(got["targets"]) == site / "edgelearn" / "_data" / "targets"
    assert Path(got["models"]) == site / "edgelearn" / "_data" / "models"
    assert not Path(got["numpy"]).is_relative_to(venv), "numpy should come from the dev venv, through the .pth"
    dev = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    leaks = [p for p in got["path"] if p and Path(p).resolve().is_relative_to(ROOT) and p not in dev]
    assert leaks == [], f"the checkout is on the fresh venv's sys.path: {leaks}"
    assert dev <= set(got["path"]), "the .pth naming the dev venv's site-packages was not processed"
    assert (venv / "bin" / "edgelearn").read_text().startswith(f"#!{venv}/bin/python")


def test_installed_command_profiles_compiles_and_drives_a_board(installed):
    from edgelearn.modelblob import to_blob
    from edgelearn.modelfile import load_model
    from edgelearn.native import arena_required

    _, venv, site, env, cwd = installed
    edgelearn = venv / "bin" / "edgelearn"
    models = site / "edgelearn" / "_data" / "models"
    model = models / "digits-stop.json"
    blob = to_blob(load_model(ROOT / "models" / "digits-stop.json"))      # the checkout's model, in this process
    arena = arena_required(blob)                                          # what the C loader reserves
    assert arena > 0

    out = ok(run([edgelearn, "profile", model, "--target", "mps2-an386"], env, cwd))
    assert "digits-stop on mps2-an386" in out
    m = re.search(r"^arena \(what the C runtime reserves\): ([\d,]+) bytes$", out, re.M)
    assert m and int(m.group(1).replace(",", "")) == arena, out
    m = re.search(r"^\s+initial model \(blob\)\s+([\d,]+)$", out, re.M)
    assert m and int(m.group(1).replace(",", "")) == len(blob), out
    assert re.search(r"^\s+code\s+[1-9][\d,]*$", out, re.M), out          # the cross-compiled runtime, measured
    assert "stop: fits" in out

    compiled = cwd / "compiled"
    out = ok(run([edgelearn, "compile", model, "--target", "mps2-an386", "-o", compiled], env, cwd))
    assert (compiled / "model.elm").read_bytes() == blob
    config = (compiled / "edgelearn_config.h").read_text()
    assert f"#define EDGELEARN_ARENA_BYTES {arena}u" in config
    assert f"#define EDGELEARN_MODEL_BYTES {len(blob)}u" in config
    for name in RUNTIME_OBJECTS:
        obj = (compiled / f"{name}.o").read_bytes()
        assert obj[:4] == b"\x7fELF" and int.from_bytes(obj[18:20], "little") == EM_ARM, name
        assert name in out

    registry = Path(env["EDGELEARN_BOARDS_FILE"])
    try:
        url = ok(run([edgelearn, "board", "start", "--kind", "native"], env, cwd, timeout=120)).strip()
        assert re.fullmatch(r"socket://127\.0\.0\.1:\d+", url), url
        [entry] = json.loads(ok(run([edgelearn, "board", "list", "--json"], env, cwd)))
        assert (entry["kind"], entry["url"]) == ("native", url)
        assert json.loads(registry.read_text())[0]["name"] == entry["name"]

        out = ok(run([edgelearn, "push", model, "--port", entry["name"], "--no-progress"], env, cwd))
        assert f"pushed digits-stop to native at {url}: {len(blob)} bytes, crc32 {zlib.crc32(blob):08x}" in out
        assert "committed and active" in out
        stats = json.loads(ok(run([edgelearn, "stats", "--port", url, "--json"], env, cwd)))
        assert stats["active_crc"] == f"{zlib.crc32(blob):08x}"

        out = ok(run([edgelearn, "board", "stop", "--all"], env, cwd))
        assert f"stopped {entry['name']} (native, pid {entry['pid']})" in out
        assert json.loads(registry.read_text()) == []
    finally:
        if registry.exists():                  # never leave a board running, even on failure
            for e in json.loads(registry.read_text()):
                pid = int(e.get("pid", 0) or 0)
                if pid > 0:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass

    exe = list(Path(env["EDGELEARN_BUILD_DIR"]).glob("firmware/*/el_board_native"))
    assert len(exe) == 1, "the native board should be built into $EDGELEARN_BUILD_DIR"


def test_installed_caches_live_outside_site_packages(installed):
    """numba's cache and the cffi build work with a site-packages that is never written to."""
    _, venv, site, env, cwd = installed
    out = ok(run([venv / "bin" / "python", "-c", "from edgelearn import native; print(native.load_native().__file__)"],
                 env, cwd))
    assert Path(out.strip()).is_relative_to(Path(env["EDGELEARN_BUILD_DIR"]) / "native"), out

    train = [venv / "bin" / "edgelearn", "train", "--data", "digits", "--epochs", "1", "--limit-train", "40",
             "--limit-test", "20", "--hidden", "16", "--no-twin", "-o", cwd / "tiny.elm"]
    ok(run(train, env, cwd, timeout=300))
    numba_cache = Path(env["XDG_CACHE_HOME"]) / "edgelearn" / "numba"
    assert list(numba_cache.rglob("*.nbi")), f"numba wrote no cache index under {numba_cache}"
    again = run(train, {**env, "NUMBA_DEBUG_CACHE": "1"}, cwd, timeout=300)   # a second process reuses it
    ok(again)
    log = again.stdout + again.stderr
    assert "data loaded from" in log and "data saved to" not in log, log[-3000:]

    record = {row[0] for row in csv.reader(io.StringIO((site / "edgelearn-0.1.0.dist-info" / "RECORD").read_text()))}
    written = {str(p.relative_to(site)) for top in ("edgelearn", "firmware_host") for p in (site / top).rglob("*")
               if p.is_file()} - record
    assert written == set(), f"files written into site-packages: {sorted(written)}"


def test_editable_install_uses_the_checkout(tmp_path):
    """The Makefile's `pip install -e`: no edgelearn/_data, so resources finds the top-level trees."""
    require_tools()
    src = copy_checkout(tmp_path / "checkout")
    venv = fresh_venv(tmp_path / "venv")
    env = isolated_env(tmp_path, venv)
    ok(run([venv / "bin" / "python", "-m", "pip", "install", "--no-index", "--no-deps", "--no-build-isolation",
            "--ignore-installed", "--quiet", "-e", src], env, tmp_path))
    probe = ("import json, edgelearn; from edgelearn import resources; from firmware_host import native_board; "
             "print(json.dumps([edgelearn.__file__, str(resources.TARGETS), str(resources.MODELS), "
             "str(native_board.FW_DIR)]))")
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    init, targets, models, fw = map(Path, json.loads(ok(run([venv / "bin" / "python", "-c", probe], env, cwd))))
    assert init == src / "edgelearn" / "__init__.py"
    assert (targets, models, fw) == (src / "targets", src / "models", src / "targets" / "firmware")
    assert not (src / "edgelearn" / "_data").exists()
    out = ok(run([venv / "bin" / "edgelearn", "info", src / "models" / "digits-stop.json"], env, cwd))
    assert "digits-stop" in out


# -- constraints.txt ------------------------------------------------------------------------------

def pins() -> dict[str, str]:
    text = (ROOT / "constraints.txt").read_text()
    out = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            m = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!_-]+)", line)
            assert m, f"constraints.txt: not an exact pin: {line!r}"
            out[canonicalize_name(m.group(1))] = m.group(2)
    return out


def test_constraints_pin_every_dependency_and_match_this_venv():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    declared = [Requirement(r) for r in cfg["options"]["install_requires"].split("\n") if r.strip()]
    declared += [Requirement(r) for r in cfg["options.extras_require"]["test"].split("\n") if r.strip()]
    pinned = pins()
    for req in declared:
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} (setup.cfg) has no exact pin in constraints.txt"
        assert req.specifier.contains(pinned[name], prereleases=True), \
            f"constraints.txt pins {req.name}=={pinned[name]}, outside setup.cfg's {req}"
        assert not any(s.operator == "==" for s in req.specifier), f"setup.cfg pins {req}: keep ranges there"
    wrong = {}
    for name, version in pinned.items():
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = None
        if have != version:
            wrong[name] = (version, have)
    assert not wrong, (f"this venv differs from constraints.txt (pinned, installed): {wrong}; "
                       "`make setup` reinstalls it, or move the pins deliberately")


def test_makefile_installs_with_the_constraints():
    makefile = (ROOT / "Makefile").read_text()
    rule = re.search(r"^\$\(STAMP\):(.*)\n((?:\t.*\n)+)", makefile, re.M)
    assert rule, "the venv's stamp rule is gone from the Makefile"
    assert "constraints.txt" in rule.group(1).split(), "the stamp must depend on constraints.txt"
    assert "-c constraints.txt -e '.[test]'" in rule.group(2)

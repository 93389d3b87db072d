"""The one build cache (edgelearn.buildcache): where it is, what a key covers, atomic publish
under concurrent builders, and every builder (cffi, the native board, QEMU firmware, the
cross-compiled runtime) building into it once."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgelearn import buildcache

ROOT = Path(__file__).resolve().parent.parent


def test_root_is_the_env_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EDGELEARN_BUILD_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert buildcache.root() == tmp_path / "home" / ".cache" / "edgelearn"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert buildcache.root() == tmp_path / "home" / ".cache" / "edgelearn"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert buildcache.root() == tmp_path / "xdg" / "edgelearn"
    monkeypatch.setenv("EDGELEARN_BUILD_DIR", str(tmp_path / "build"))
    assert buildcache.root() == tmp_path / "build"


def test_runtime_sources():
    names = [p.name for p in buildcache.runtime_sources()]
    assert names == ["el_kernels.c", "el_kernels_spide.c", "el_conv2d.c", "el_pool.c", "el_scan2d.c", "el_psn.c",
                     "el_blob.c", "el_stop.c", "el_spide.c"]
    assert [p.name for p in buildcache.runtime_sources(device=True)] == names + ["el_static.c"]
    assert all(p.is_file() for p in buildcache.runtime_sources(device=True))
    assert "edgelearn.h" in {p.name for p in buildcache.runtime_headers()}


def test_a_key_covers_files_flags_and_tools(tmp_path, monkeypatch):
    src = tmp_path / "a.c"
    src.write_text("int a;\n")
    tool = tmp_path / "bin" / "fakecc"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\necho 'fakecc 1.0'\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tool.parent}{os.pathsep}{os.environ['PATH']}")
    base = buildcache.key(files=[src], flags=["-O2"], tools=["fakecc"])
    assert base == buildcache.key(files=[src], flags=["-O2"], tools=["fakecc"])
    assert len(base) == buildcache.KEY_LENGTH
    assert base != buildcache.key(files=[src], flags=["-Os"], tools=["fakecc"])
    assert base != buildcache.key(files=[src], flags=["-O", "2"], tools=["fakecc"])
    assert base != buildcache.key(files=[src], flags=["-O2"], tools=["fakecc"], texts=["x"])
    src.write_text("int b;\n")
    changed = buildcache.key(files=[src], flags=["-O2"], tools=["fakecc"])
    assert changed != base
    tool.write_text("#!/bin/sh\necho 'fakecc 2.0 (a longer version line)'\n")      # reinstalled compiler
    assert buildcache.key(files=[src], flags=["-O2"], tools=["fakecc"]) != changed
    assert "not found" in buildcache.tool_identity("no-such-compiler-xyz")


def test_cached_builds_once_and_a_failure_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGELEARN_BUILD_DIR", str(tmp_path))
    calls = []

    def build(out):
        calls.append(out)
        assert out.is_dir() and not any(out.iterdir()) and out.parent == tmp_path / "kind"
        (out / "thing").write_text("built")

    first = buildcache.cached("kind", "k1", build)
    assert first == tmp_path / "kind" / "k1" and (first / "thing").read_text() == "built"
    assert buildcache.cached("kind", "k1", build) == first and len(calls) == 1

    def fail(out):
        (out / "half").write_text("half a build")
        raise RuntimeError("compiler error")

    with pytest.raises(RuntimeError, match="compiler error"):
        buildcache.cached("kind", "k2", fail)
    assert sorted(p.name for p in (tmp_path / "kind").iterdir()) == ["k1"]   # nothing half-built, no leftovers


RACE = """
import sys, time, os
from pathlib import Path
from edgelearn import buildcache

def build(out):
    for i in range(20):
        (out / f"part{i}").write_text(str(os.getpid()))
        time.sleep(0.005)
out = buildcache.cached("race", "same", build)
pids = {p.read_text() for p in out.iterdir()}
print(len(list(out.iterdir())), len(pids))
"""


def test_parallel_builders_all_see_one_complete_build(tmp_path):
    env = {**os.environ, "EDGELEARN_BUILD_DIR": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", RACE], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs == [["20", "1"]] * 4                 # complete, and from one builder only
    assert [p.name for p in (tmp_path / "race").iterdir()] == ["same"]


# -- every builder builds into it -------------------------------------------------------------

def test_every_builder_uses_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGELEARN_BUILD_DIR", str(tmp_path))
    from edgelearn import profile
    from firmware_host import native_board, qemu

    exe = native_board.build()
    assert exe.parent.parent == tmp_path / "firmware" and exe.name == "el_board_native"
    assert native_board.build() == exe
    assert native_board.build(seqlog=1024) != exe                   # a define is part of the key

    elf = qemu.build_firmware(["echo.c"], "mps2-an386", name="echo")
    assert elf.parent.parent == tmp_path / "firmware" / "mps2-an386" and elf.name == "echo.elf"
    assert [p.name for p in elf.parent.iterdir()] == ["echo.elf"]   # the linker script and map are not kept
    assert qemu.build_firmware(["echo.c"], "mps2-an386", name="echo") == elf

    build = profile.cross_compile("mps2-an386", 4096)
    [objects] = list((tmp_path / "cross").iterdir())
    assert sorted(p.name for p in objects.glob("*.o")) == sorted(f"{p.stem}.o" for p in
                                                                  buildcache.runtime_sources(device=True))
    assert build.bss >= 4096 and str(objects) in build.size_output
    out = tmp_path / "compiled"
    again = profile.cross_compile("mps2-an386", 4096, out)           # from the cache, copied out
    assert (again.text, again.data, again.bss, again.stack) == (build.text, build.data, build.bss, build.stack)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{p.stem}{s}" for p in
                                                           buildcache.runtime_sources(device=True)
                                                           for s in (".o", ".su"))
    assert str(out / "el_stop.o") in again.size_output
    assert len(list((tmp_path / "cross").iterdir())) == 1

    so = subprocess.run([sys.executable, "-c", "from edgelearn import native; print(native.load_native().__file__)"],
                        env={**os.environ, "EDGELEARN_BUILD_DIR": str(tmp_path)}, capture_output=True, text=True,
                        timeout=300, cwd=ROOT)
    assert so.returncode == 0, so.stderr
    so = Path(so.stdout.strip())
    assert so.parent.parent == tmp_path / "native" and [p.name for p in so.parent.iterdir()] == [so.name]
    assert not [p for kind in tmp_path.iterdir() for p in kind.rglob(".*")]   # no build left aside

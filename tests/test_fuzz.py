"""The libFuzzer harnesses (fuzz/: the C blob loader, the link's frame codec, the whole firmware
behind an authenticated link) under ASan and UBSan, each for a few seconds on its corpus: no
findings, and they really run (inputs executed, the corpus' seeds accepted). `make fuzz` runs them
longer. These tests need clang and FAIL (never skip) without it: .ci/run installs it."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fuzz"))

import run as fuzz  # noqa: E402  (fuzz/run.py)

SECONDS = 8


def test_clang_is_installed():
    assert shutil.which("clang"), "clang not found: install it with apt-get install -y clang (make tools does)"


@pytest.mark.parametrize("target", sorted(fuzz.targets()))
def test_the_fuzzer_finds_nothing(target, tmp_path):
    result = fuzz.run(target, SECONDS, tmp_path)
    print(f"fuzz {target}: {result['executed']} inputs executed in {SECONDS} s")
    assert result["finding"] is None, f"{result['finding']}\n{result.get('log', '')}"
    assert result["seeds"] >= 3 and result["executed"] > 1000, result


def test_every_seed_runs_clean(tmp_path):
    """The corpus replayed as it is (libFuzzer's -runs on the files): what CI fuzzes from."""
    for target in fuzz.targets():
        seeds = sorted((fuzz.CORPUS / target).iterdir())
        r = subprocess.run([str(fuzz.build(target)), *map(str, seeds)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-3000:]
        assert r.stderr.count("Executed ") == len(seeds), target


def test_the_blob_corpus_is_what_make_corpus_writes():
    """A format change must regenerate the seeds (python fuzz/make_corpus.py): stale seeds would
    be refused at the loader's first check and fuzz nothing behind it."""
    import make_corpus
    expected = {f"{name}.elm": blob for name, blob in make_corpus.models().items()}
    assert {"conv-maxpool.elm", "conv-avgpool.elm", "scan2d.elm"} <= set(expected)
    found = {p.name: p.read_bytes() for p in (fuzz.CORPUS / "blob").iterdir()}
    assert found == expected, "fuzz/corpus/blob is stale: run python fuzz/make_corpus.py"

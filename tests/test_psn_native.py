"""The PSN in C (targets/c/el_psn.c): the filter's Cortex-M
builds (M0+, M4F, M7) free of multiply instructions (the disassembly of el_psn_filter and the
helpers it calls). A network of psn layers learning in C bit for bit as the reference is
tests/test_psn_kind_c.py's; its kernels' golden vectors tests/test_psn_golden.py's. Needs
arm-none-eabi-gcc (.ci/run installs it)."""
import re
import shutil
import subprocess

import pytest

from edgelearn.native import load_native
from edgelearn.ops.layers import psn
from edgelearn.resources import C_DIR


CORES = {"cortex-m0plus": ["-mcpu=cortex-m0plus", "-mthumb"],
         "cortex-m4f": ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
         "cortex-m7": ["-mcpu=cortex-m7", "-mthumb"]}
# Arm multiply and divide mnemonics (ARMv6-M, v7-M, v7E-M DSP): mul, mla, mls, (s|u)mull, (s|u)mlal,
# smla.., smul.., smmul, smmla, smlsd, smuad, umaal, sdiv, udiv; and calls to libgcc's helpers.
MULTIPLY = re.compile(r"^\s*[0-9a-f]+:\s+(?:[0-9a-f]{4}\s?){1,2}\s+(mul|mla|mls|[su]mull|[su]mlal|smla\w*|smul\w*|"
                      r"smml\w*|smmul\w*|smlsd\w*|smuad\w*|smusd\w*|umaal|[su]div)s?(\.w)?\b", re.MULTILINE)
NEURON_FUNCTIONS = ("el_psn_filter", "el_psn_apply_tap", "el_psn_input_ring", "el_psn_lag0_error")


def disassembly(core, tmp_path):
    gcc, objdump = shutil.which("arm-none-eabi-gcc"), shutil.which("arm-none-eabi-objdump")
    assert gcc and objdump, "arm-none-eabi-gcc / objdump missing: apt-get install -y gcc-arm-none-eabi"
    obj = tmp_path / f"el_psn_{core}.o"
    subprocess.run([gcc, "-std=c99", "-ffreestanding", "-O2", "-Wall", "-Wextra", "-Werror", "-ffunction-sections",
                    "-fdata-sections", *CORES[core], "-I", str(C_DIR), "-c", str(C_DIR / "el_psn.c"), "-o", str(obj)],
                   check=True)
    return subprocess.run([objdump, "-dr", str(obj)], check=True, capture_output=True, text=True).stdout


def function(dump: str, name: str) -> str:
    m = re.search(rf"^[0-9a-f]+ <{name}>:\n(.*?)(?=\n\n|\Z)", dump, re.MULTILINE | re.DOTALL)
    assert m, f"{name} not in the object"
    return m.group(1)


@pytest.mark.parametrize("core", sorted(CORES))
def test_the_neuron_has_no_multiply_instruction(core, tmp_path):
    dump = disassembly(core, tmp_path)
    for name in NEURON_FUNCTIONS:
        body = function(dump, name)
        assert len(body.splitlines()) > 3
        assert not MULTIPLY.findall(body), f"{name} on {core}:\n{body}"
        calls = re.findall(r"R_ARM_THM_CALL\s+(\S+)", body)
        assert set(calls) <= {"el_psn_apply_tap"}, f"{name} calls {calls}"
    # the detector itself finds the learning rule's products (d * e) in the weight update
    assert MULTIPLY.findall(function(dump, "el_psn_update_weights")) or \
        re.search(r"__aeabi_lmul", function(dump, "el_psn_update_weights"))

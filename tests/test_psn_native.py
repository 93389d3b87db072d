"""The PSN in C (targets/c/el_psn.c): bit for bit the Python reference over learning streams (every
buffer, both PRNG streams, after every sample), its buffer sizes the same as Python's, and the
neuron's Cortex-M builds (M0+, M4F, M7) free of multiply instructions (the disassembly of
el_psn_step and the helpers it calls). Needs arm-none-eabi-gcc (.ci/run installs it)."""
import re
import shutil
import subprocess

import numpy as np
import pytest

from edgelearn.ops.layers import psn
from edgelearn.psn_native import NativePSN, load
from edgelearn.psnnet import FixedPSN, make_net
from edgelearn.resources import C_DIR


def stream(net, n, seed):
    rng = np.random.default_rng(seed)
    if net.encoding in ("sequence", "events"):
        hi = 256 if net.encoding == "sequence" else 2
        xs = rng.integers(0, hi, (n, net.T, net.n_in))
    else:
        xs = rng.integers(0, 256, (n, net.n_in))
    return xs.astype(np.uint8), rng.integers(0, net.n_out, n)


def same_state(a, b):
    for name, want in a.buffers().items():
        assert np.array_equal(want, b.buffers()[name]), name


@pytest.mark.parametrize("sizes,taps,dilations,encoding", [
    ([6, 12, 3], 4, [2], "sequence"),
    ([5, 10, 8, 4], 3, [1, 3], "sequence"),            # a sawtooth of two hidden layers
    ([8, 16, 3], 2, [5], "rate"),
    ([8, 9, 3], 5, [1], "events"),
])
def test_c_learns_a_stream_as_the_reference(sizes, taps, dilations, encoding):
    net = make_net(sizes, taps=taps, dilations=dilations, seed=3, T=24, weight_scale=2.0, threshold=0.25,
                   encoding=encoding, lr_weight_shift=4)
    rng = np.random.default_rng(7)
    for ly in net.layers[:-1]:                               # signed taps of every size
        ly.taps[:] = rng.choice([-15, -4, -2, -1, 0, 1, 2, 3, 15], size=ly.taps.shape)
    ref, c = FixedPSN(net), NativePSN(net)
    xs, ys = stream(net, 10, seed=len(sizes) + taps)
    for x, y in zip(xs, ys):
        assert np.array_equal(ref.run(x[None], y[None], True), c.run(x[None], y[None], True))
        same_state(ref, c)
    assert not np.array_equal(ref.W, FixedPSN(net).W)                 # it learned
    scores = ref.run(xs[:3], None, False)                      # inference advances the input stream too
    assert scores.any() and np.array_equal(scores, c.run(xs[:3], None, False))
    same_state(ref, c)


def test_saturation_and_large_shifts_agree():
    net = make_net([4, 6, 2], taps=3, dilations=[2], seed=1, T=12, weight_scale=40.0, threshold=0.01,
                   lr_weight_shift=-2)
    for ly in net.layers:
        ly.weights[:] = np.where(np.arange(ly.weights.size).reshape(ly.weights.shape) % 2, 32767, -32768)
        ly.w_frac = 0                                           # currents far beyond int32: sat32 everywhere
    ref, c = FixedPSN(net), NativePSN(net)
    xs, ys = stream(net, 4, seed=2)
    assert np.array_equal(ref.run(xs, ys, True), c.run(xs, ys, True))
    same_state(ref, c)


def test_buffer_sizes_are_the_same_in_c_and_python():
    lib = load().lib
    for n_in, n_out, K, D in [(28, 64, 4, 4), (1, 1, 1, 1), (100, 10, 16, 1024)]:
        for learning in (False, True):
            assert lib.el_psn_buffer_size(n_in, n_out, K, D, learning) == \
                psn.buffer_bytes(n_in, n_out, K, D, learning)


CORES = {"cortex-m0plus": ["-mcpu=cortex-m0plus", "-mthumb"],
         "cortex-m4f": ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
         "cortex-m7": ["-mcpu=cortex-m7", "-mthumb"]}
# Arm multiply and divide mnemonics (ARMv6-M, v7-M, v7E-M DSP): mul, mla, mls, (s|u)mull, (s|u)mlal,
# smla.., smul.., smmul, smmla, smlsd, smuad, umaal, sdiv, udiv; and calls to libgcc's helpers.
MULTIPLY = re.compile(r"^\s*[0-9a-f]+:\s+(?:[0-9a-f]{4}\s?){1,2}\s+(mul|mla|mls|[su]mull|[su]mlal|smla\w*|smul\w*|"
                      r"smml\w*|smmul\w*|smlsd\w*|smuad\w*|smusd\w*|umaal|[su]div)s?(\.w)?\b", re.MULTILINE)
NEURON_FUNCTIONS = ("el_psn_step", "el_psn_apply_tap", "el_psn_input_ring", "el_psn_lag0_error")


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

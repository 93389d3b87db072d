"""The 32-bit forms of the contract's primitives (targets/c/el_numerics.h, docs/numerics.md §8a)
give exactly the 64-bit primitive's value on their domains: at the edges (saturation, the
largest shifts, leaks 0 and ONE) and on random operands, checked against the Python reference,
in the portable C on the host and with the core's QADD / SSAT on the emulated Cortex-M4 and M7."""
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgelearn import numerics as nx
from edgelearn.resources import C_DIR
from firmware_host import qemu

CHECK = Path(__file__).resolve().parent / "c" / "numerics_check.c"
I32 = [nx.INT32_MIN, nx.INT32_MIN + 1, -(1 << 16) - 1, -1, 0, 1, 1 << 15, nx.INT32_MAX - 1, nx.INT32_MAX]
P62 = [-(1 << 62) + 1, -(1 << 47), -(1 << 31) - 1, -(1 << 31), -1, 0, 1, (1 << 31) - 1, 1 << 31, 1 << 47, (1 << 62) - 1]


def reference(op: int, a: int, b: int, c: int) -> int:
    if op == 0:
        return int(nx.sat32(np.int64(a) >> b))
    if op == 1:
        return int(nx.sat32(nx.round_shift(a, b)))
    if op == 2:
        return int(nx.sat32(nx.shift_with_draw(np.int64(a), b, np.int64(c))))
    if op == 3:
        return int(nx.sat16(a - b))
    if op == 4:
        return int(nx.mul_state(a, b))
    return int(nx.sat32(a + b))


def cases() -> list[tuple[int, int, int, int]]:
    rng = np.random.default_rng(7)
    out = []
    shifts = [1, 2, 4, 12, 16, 26, 30, 31]
    draws = [1, 0x80000000, 0xFFFFFFFF]
    i64 = P62 + [-(1 << 63), (1 << 63) - 1]
    for s in shifts:
        out += [(0, t, s, 0) for t in i64] + [(1, x, s, 0) for x in P62]
        out += [(2, p, s, u) for p in P62 for u in draws]
    out += [(3, w, q, 0) for w in (nx.INT16_MIN, -1, 0, nx.INT16_MAX) for q in I32 + [65536, 65537, -65536, -65537]]
    out += [(4, a, v, 0) for a in (0, 1, 1 << 15, 65535, 65536) for v in I32]
    out += [(5, x, y, 0) for x in I32 for y in I32]
    for _ in range(200):                                  # random operands inside each domain
        s = int(rng.integers(1, 32))
        big = int(rng.integers(-(1 << 62) + 1, 1 << 62))
        out += [(0, int(rng.integers(-(1 << 63), (1 << 63) - 1)), s, 0), (1, big, s, 0),
                (2, big >> int(rng.integers(0, 40)), s, int(rng.integers(1, 1 << 32))),
                (3, int(rng.integers(nx.INT16_MIN, nx.INT16_MAX + 1)), int(rng.integers(nx.INT32_MIN, nx.INT32_MAX)), 0),
                (4, int(rng.integers(0, 65537)), int(rng.integers(nx.INT32_MIN, nx.INT32_MAX)), 0),
                (5, int(rng.integers(nx.INT32_MIN, nx.INT32_MAX)), int(rng.integers(nx.INT32_MIN, nx.INT32_MAX)), 0)]
    return out


CASES = cases()
REQUEST = struct.pack("<I", len(CASES)) + b"".join(struct.pack("<4q", *c) for c in CASES)


def check_answers(answers: bytes) -> None:
    got = struct.unpack(f"<{len(CASES)}q", answers)
    wrong = [(c, g, reference(*c)) for c, g in zip(CASES, got) if g != reference(*c)]
    assert not wrong, f"{len(wrong)} of {len(CASES)} differ (case, C, reference): {wrong[:5]}"


def test_the_portable_c_forms_equal_the_reference(tmp_path):
    exe = tmp_path / "numerics_check"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-DEL_CHECK_NATIVE", f"-I{C_DIR}",
                    str(CHECK), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], input=REQUEST, capture_output=True, check=True, timeout=60).stdout
    check_answers(out)


@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an500"])
def test_the_cortex_m_forms_equal_the_reference(board):
    elf = qemu.build_firmware([CHECK], board, name="numerics_check")
    with qemu.QemuBoard(elf, board, timeout=120) as b:
        assert b.read_exactly(4) == b"ELNC"
        b.serial.write(REQUEST)
        check_answers(b.read_exactly(8 * len(CASES)))
        assert b.wait() == 0

"""The numeric contract, implemented once (see docs/numerics.md).

Every integer operation of the device path goes through these functions. They are
numba ``njit`` functions so the fixed-point kernels call them natively, and Python
(tests, the host tools) calls the very same code. The C runtime and the HDL mirror
them one for one.
"""
import numpy as np
from numba import njit

from .contract import SUM_LIMIT

# Q-formats (fractional bits). Membranes, thresholds, leaks, traces, errors and the
# surrogate share one format so that no shift is needed when they meet.
STATE_FRAC = 16
ONE = 1 << STATE_FRAC            # 1.0 in the state format
INPUT_FRAC = 8                   # direct input currents: uint8, value = byte / 256
INT8_MIN, INT8_MAX = -(1 << 7), (1 << 7) - 1
INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1

XORSHIFT_DEFAULT_SEED = 0x2545F491   # replaces a seed of 0, which xorshift cannot leave
SR_MAX_SHIFT = 62                    # |p| < 2^62 and r < 2^62 keep p + r inside int64


@njit(cache=True)
def round_shift(x, s):
    """x * 2^-s rounded to nearest, ties toward +inf: add half, then arithmetic shift.

    A negative s is an exact left shift. Operands are int64; defined for s <= 62 (every
    shift of the runtime is far below)."""
    x = np.int64(x)
    if s > 0:
        return (x + (np.int64(1) << (s - 1))) >> s
    if s < 0:
        return x << (-s)
    return x


@njit(cache=True)
def saturate(x, lo, hi):
    """Clamp to [lo, hi]: every write to a narrower format saturates, never wraps."""
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


@njit(cache=True)
def sat32(x):
    return saturate(np.int64(x), INT32_MIN, INT32_MAX)


@njit(cache=True)
def sat16(x):
    return saturate(np.int64(x), INT16_MIN, INT16_MAX)


@njit(cache=True)
def sat8(x):
    return saturate(np.int64(x), INT8_MIN, INT8_MAX)


def weight_range(bits: int) -> tuple[int, int]:
    """The integer range of weights stored in ``bits`` bits (16 or 8; docs/numerics.md §1)."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


_SUM_LIMIT = np.int64(SUM_LIMIT)


@njit(cache=True)
def sat_sum(acc, p):
    """acc + p, saturated at +-SUM_LIMIT so that adding one more int64 product never overflows."""
    return saturate(acc + p, -_SUM_LIMIT, _SUM_LIMIT)


@njit(cache=True)
def seed_state(seed):
    """The 32-bit PRNG state for a seed (a zero seed would stick at zero)."""
    s = np.int64(seed) & 0xFFFFFFFF
    if s == 0:
        s = XORSHIFT_DEFAULT_SEED
    return s


@njit(cache=True)
def xorshift32(x):
    """The state after x (Marsaglia 2003, shifts 13, 17, 5), x in 1..2^32-1 as an int64."""
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    return x


@njit(cache=True)
def rng_next(rng):
    """xorshift32 on a uint32[1] state array, advanced in place; the new state is the number
    drawn."""
    x = xorshift32(np.int64(rng[0]))
    rng[0] = np.uint32(x)
    return x


@njit(cache=True)
def rng_skip(rng, n):
    """Advance a uint32[1] state by n draws, as n calls of ``rng_next`` would (where a batch's
    later samples start their input stream)."""
    x = np.int64(rng[0])
    for _ in range(n):
        x = xorshift32(x)
    rng[0] = np.uint32(x)


@njit(cache=True)
def stochastic_shift(p, s, rng):
    """p * 2^-s rounded stochastically: floor((p + r) / 2^s) with r uniform on [0, 2^s).

    Draws exactly one number when s > 0 (none otherwise); r is the top s bits of the
    draw for s <= 32, the draw shifted left by s - 32 beyond. Shifts above 62 first drop
    s - 62 bits by an arithmetic (floor) shift so p + r stays inside int64; a drop of 64
    bits or more leaves the sign alone (0 or -1), as a shift by 63 does (an int64 shift by
    64 or more is undefined). Unbiased to within 2^-32 (a draw is never 0)."""
    p = np.int64(p)
    if s <= 0:
        return p << (-s)
    return shift_with_draw(p, s, rng_next(rng))


@njit(cache=True)
def shift_with_draw(p, s, u):
    """stochastic_shift's rounding for s > 0 given its draw u: a kernel that keeps the PRNG
    state in a local variable (one draw per call, xorshift32) calls this directly."""
    if s > SR_MAX_SHIFT:
        p = p >> min(s - SR_MAX_SHIFT, 63)
        s = SR_MAX_SHIFT
    r = u >> (32 - s) if s <= 32 else u << (s - 32)
    return (p + r) >> s


@njit(cache=True)
def mul_state(a, b):
    """Product of two state-format (Q16) numbers, rounded back to Q16."""
    return round_shift(np.int64(a) * np.int64(b), STATE_FRAC)


def new_rng(seed):
    """A PRNG state array for ``seed``: the one object every executor advances."""
    return np.array([seed_state(seed)], dtype=np.uint32)


def to_fixed(x, frac, lo=INT32_MIN, hi=INT32_MAX, dtype=np.int32):
    """Quantise floats to a Q-format: floor(x * 2^frac + 0.5), i.e. round to nearest
    with ties toward +inf like ``round_shift``, then saturate. Host side only."""
    x = np.asarray(x, dtype=np.float64)
    if np.isnan(x).any():
        raise ValueError("cannot quantise NaN (did the float model diverge?)")
    q = np.floor(x * (1 << frac) + 0.5)
    return np.clip(q, lo, hi).astype(dtype)


def from_fixed(q, frac):
    """The real value of a Q-format integer array."""
    return np.asarray(q, dtype=np.float64) / (1 << frac)

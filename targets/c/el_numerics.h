/* The primitives of the numeric contract (docs/numerics.md §3), mirroring
 * edgelearn/numerics.py one for one. Header-only so every kernel inlines them. */
#ifndef EL_NUMERICS_H
#define EL_NUMERICS_H

#include <stdint.h>

#include "el_contract.h"      /* the constants: Q-formats, PRNG seeds, limits */

/* x * 2^s for s >= 0 without the undefined left shift of a negative int64_t. */
static inline int64_t el_shl(int64_t x, int s) { return (int64_t)((uint64_t)x << s); }

/* x * 2^-s, nearest, ties toward +inf; a negative s is an exact left shift. Relies on
 * >> of a negative int64_t being arithmetic (true of gcc and clang on every target). */
static inline int64_t el_round_shift(int64_t x, int s)
{
    if (s > 0) return (x + ((int64_t)1 << (s - 1))) >> s;
    if (s < 0) return el_shl(x, -s);
    return x;
}

static inline int64_t el_saturate(int64_t x, int64_t lo, int64_t hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}
static inline int32_t el_sat32(int64_t x) { return (int32_t)el_saturate(x, INT32_MIN, INT32_MAX); }
static inline int16_t el_sat16(int64_t x) { return (int16_t)el_saturate(x, INT16_MIN, INT16_MAX); }

/* Product of two Q16 numbers, rounded back to Q16. */
static inline int64_t el_mul_state(int64_t a, int64_t b) { return el_round_shift(a * b, EL_STATE_FRAC); }

/* The 32-bit PRNG state for a seed (zero would stick at zero). */
static inline uint32_t el_seed_state(uint32_t seed) { return seed ? seed : EL_XORSHIFT_DEFAULT_SEED; }

/* xorshift32 (13, 17, 5); the draw IS the new state. */
static inline uint32_t el_rng_next(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

/* floor((p + r) / 2^s), r uniform on [0, 2^s): exactly one draw when s > 0. Shifts above
 * 62 first floor-drop the excess so that p + r stays inside int64. */
static inline int64_t el_stochastic_shift(int64_t p, int s, uint32_t *state)
{
    uint64_t u;
    int64_t r;
    if (s <= 0) return el_shl(p, -s);
    if (s > EL_SR_MAX_SHIFT) {
        int drop = s - EL_SR_MAX_SHIFT;
        p = drop > 63 ? (p < 0 ? -1 : 0) : p >> drop;   /* a shift >= 64 is undefined in C */
        s = EL_SR_MAX_SHIFT;
    }
    u = el_rng_next(state);
    r = (s <= 32) ? (int64_t)(u >> (32 - s)) : (int64_t)(u << (s - 32));
    return (p + r) >> s;
}

/* Saturating gradient sum: one more product can never overflow int64. */
static inline int64_t el_sat_sum(int64_t acc, int64_t p)
{
    return el_saturate(acc + p, -EL_SUM_LIMIT, EL_SUM_LIMIT);
}

#endif /* EL_NUMERICS_H */

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
static inline int8_t el_sat8(int64_t x) { return (int8_t)el_saturate(x, INT8_MIN, INT8_MAX); }

/* Product of two Q16 numbers, rounded back to Q16. */
static inline int64_t el_mul_state(int64_t a, int64_t b) { return el_round_shift(a * b, EL_STATE_FRAC); }

/* The 32-bit PRNG state for a seed (zero would stick at zero). */
static inline uint32_t el_seed_state(uint32_t seed) { return seed ? seed : EL_XORSHIFT_DEFAULT_SEED; }

/* xorshift32 (13, 17, 5); the draw IS the new state. */
static inline uint32_t el_xorshift32(uint32_t x)
{
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
}
static inline uint32_t el_rng_next(uint32_t *state) { return *state = el_xorshift32(*state); }

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

/* ---- 32-bit forms of the primitives where the contract's bounds allow (docs/numerics.md §8a).
 * Each returns exactly what the 64-bit primitive it names returns; the kernels use them in
 * their inner loops, where a general 64-bit shift costs a dozen instructions on a 32-bit core. */
#if defined(__ARM_FEATURE_SAT) || defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>             /* __ssat, __qadd (ACLE; gcc and clang ship it, freestanding too) */
#endif

/* el_sat32(t >> s) (arithmetic) for 0 < s < 32, from t's two 32-bit halves: the high word of
 * the result is hi >> s; it fits int32 iff that is the sign extension of the low word. */
static inline int32_t el_shift_sat32(uint64_t t, int s)
{
    uint32_t lo = (uint32_t)t;
    int32_t hi = (int32_t)(t >> 32);
    int32_t q = (int32_t)((lo >> s) | ((uint32_t)hi << (32 - s)));
    return (hi >> s) == (q >> 31) ? q : hi < 0 ? INT32_MIN : INT32_MAX;
}

/* el_sat32(el_round_shift(x, s)) for 0 < s < 32. */
static inline int32_t el_round_shift_sat32(int64_t x, int s)
{
    return el_shift_sat32((uint64_t)x + ((uint64_t)1 << (s - 1)), s);
}

/* el_stochastic_shift(p, s) saturated to int32 for 0 < s < 32, given its one draw u (the
 * new PRNG state): floor((p + (u >> (32 - s))) / 2^s). */
static inline int32_t el_sr_shift_sat32(int64_t p, int s, uint32_t u)
{
    return el_shift_sat32((uint64_t)p + (u >> (32 - s)), s);
}

/* el_sat16(w - q) for an int16 w and any int32 q, el_sat8 for an int8 w: a |q| beyond 2^17
 * saturates alike, so q is clamped first and the difference stays inside int32 (SSAT where
 * the core has it). */
#if defined(__ARM_FEATURE_SAT)
static inline int16_t el_sub_sat16(int32_t w, int32_t q) { return (int16_t)__ssat(w - __ssat(q, 18), 16); }
static inline int8_t el_sub_sat8(int32_t w, int32_t q) { return (int8_t)__ssat(w - __ssat(q, 18), 8); }
#else
static inline int32_t el_sub_clamped(int32_t w, int32_t q) { return w - (q > 131071 ? 131071 : q < -131072 ? -131072 : q); }
static inline int16_t el_sub_sat16(int32_t w, int32_t q)
{
    int32_t v = el_sub_clamped(w, q);
    return (int16_t)(v > INT16_MAX ? INT16_MAX : v < INT16_MIN ? INT16_MIN : v);
}
static inline int8_t el_sub_sat8(int32_t w, int32_t q)
{
    int32_t v = el_sub_clamped(w, q);
    return (int8_t)(v > INT8_MAX ? INT8_MAX : v < INT8_MIN ? INT8_MIN : v);
}
#endif

/* el_mul_state(a, v) for a leak a in [0, ONE] (the loader and apply_leak_grad keep it there):
 * |round(a v / 2^16)| <= |v|, so the value is an int32 and only the product is 64-bit. */
static inline int32_t el_mul_leak(int32_t a, int32_t v)
{
    return (int32_t)(((int64_t)a * v + ((int64_t)1 << (EL_STATE_FRAC - 1))) >> EL_STATE_FRAC);
}

/* el_sat32((int64_t)x + y): QADD where the core has the DSP extension (Cortex-M4/M7). */
#if defined(__ARM_FEATURE_DSP)
static inline int32_t el_add_sat32(int32_t x, int32_t y) { return __qadd(x, y); }
#else
static inline int32_t el_add_sat32(int32_t x, int32_t y) { return el_sat32((int64_t)x + y); }
#endif

/* Saturating gradient sum: one more product can never overflow int64. */
static inline int64_t el_sat_sum(int64_t acc, int64_t p)
{
    return el_saturate(acc + p, -EL_SUM_LIMIT, EL_SUM_LIMIT);
}

#endif /* EL_NUMERICS_H */

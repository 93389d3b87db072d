/* The 32-bit forms of the contract's primitives (targets/c/el_numerics.h, docs/numerics.md §8a)
 * applied to cases the host sends: tests/test_numerics_32bit.py checks every answer against the
 * Python reference, on the host (portable C) and on the emulated Cortex-M (QADD, SSAT).
 *
 * A case is four little-endian int64 (op, a, b, c); the answer one int64. The host first sends
 * a u32 count; the board answers "ELNC" before reading and exits 0 after the last answer. */
#include <stdint.h>
#include "el_numerics.h"

static int64_t check_case(int64_t op, int64_t a, int64_t b, int64_t c)
{
    switch (op) {
    case 0: return el_shift_sat32((uint64_t)a, (int)b);
    case 1: return el_round_shift_sat32(a, (int)b);
    case 2: return el_sr_shift_sat32(a, (int)b, (uint32_t)c);
    case 3: return el_sub_sat16((int32_t)a, (int32_t)b);
    case 4: return el_mul_leak((int32_t)a, (int32_t)b);
    case 5: return el_add_sat32((int32_t)a, (int32_t)b);
    default: return INT64_MIN;
    }
}

#ifdef EL_CHECK_NATIVE
#include <stdio.h>
static int read_bytes(uint8_t *p, uint32_t n) { return fread(p, 1, n, stdin) == n; }
static void write_bytes(const uint8_t *p, uint32_t n) { fwrite(p, 1, n, stdout); }
static void finish(int code) { fflush(stdout); (void)code; }
#else
#include "board.h"
static int read_bytes(uint8_t *p, uint32_t n)
{
    while (n--) {
        int c = board_read_byte();
        if (c < 0) return 0;
        *p++ = (uint8_t)c;
    }
    return 1;
}
static void write_bytes(const uint8_t *p, uint32_t n) { board_write(p, n); }
static void finish(int code) { board_exit(code); }
#endif

static int64_t get_i64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--) v = v << 8 | p[i];
    return (int64_t)v;
}

int main(void)
{
    uint8_t buf[32], out[8];
    uint32_t n, k;
    int i;
#ifndef EL_CHECK_NATIVE
    board_init();
    write_bytes((const uint8_t *)"ELNC", 4);
#endif
    if (!read_bytes(buf, 4)) return 1;
    n = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 24;
    for (k = 0; k < n; k++) {
        uint64_t r;
        if (!read_bytes(buf, 32)) return 1;
        r = (uint64_t)check_case(get_i64(buf), get_i64(buf + 8), get_i64(buf + 16), get_i64(buf + 24));
        for (i = 0; i < 8; i++) out[i] = (uint8_t)(r >> (8 * i));
        write_bytes(out, 8);
    }
    finish(0);
    return 0;
}

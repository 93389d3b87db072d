/* Board test firmware: a PSN network (targets/c/el_psn.c, docs/psn.md) learning on the emulated core.
 *
 * The host preloads a job at BOARD_JOB_ADDR (as for runtime.c), little-endian:
 *     "ELPJ", u32 n_layers, n_w, n_taps, n_neurons, n_ring, n_xr, wide, n_in, n_out, code, T,
 *     i32 lr_shift, i32 k, u32 rng_in, rng_learn, n_samples, sample_bytes, rows,
 *     n_layers x el_psn_layer_t (11 u32), int16 W[n_w] (padded to 4), int8 taps[n_taps] (padded to 4),
 *     int32 th[n_neurons], n_samples x uint8[sample_bytes] (padded to 4), n_samples x {i32 label, u32 learn}
 * The weights are copied into RAM (they learn), the arena is carved from a static buffer of
 * PSN_ARENA_BYTES (.bss: the linker checks it fits). Each sample runs through el_psn_run_sample.
 * The UART carries back
 *     "ELPR", u32 status (0, or 1: the arena is too small), n_samples x n_out x i64 scores,
 *     int16 W[n_w], u32 rng_in, u32 rng_learn, "END!"
 * and the firmware exits with the status. */
#include "board.h"
#include "el_psn.h"

#ifndef BOARD_JOB_ADDR
#error "define BOARD_JOB_ADDR (where the host preloads the job: the board's PSRAM)"
#endif
#ifndef PSN_ARENA_BYTES
#error "define PSN_ARENA_BYTES (the RAM for the network's weights and buffers)"
#endif
#define PSN_MAX_LAYERS 8

static uint64_t arena[(PSN_ARENA_BYTES + 7) / 8];
static el_psn_layer_t layers[PSN_MAX_LAYERS];

static void put_u32(uint32_t v)
{
    uint8_t b[4];
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
    board_write(b, 4);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t pad4(uint32_t n) { return (n + 3u) & ~3u; }

/* n bytes of the arena, 8-aligned; 0 when it is full. */
static void *take(uint32_t *used, uint32_t n)
{
    uint32_t at = (*used + 7u) & ~7u;
    if (at > PSN_ARENA_BYTES || n > PSN_ARENA_BYTES - at) return 0;
    *used = at + n;
    return (uint8_t *)arena + at;
}

int main(void)
{
    const uint8_t *job = (const uint8_t *)BOARD_JOB_ADDR, *p, *samples, *tail;
    uint32_t h[18], i, j, used = 0, n_w, n_out, n, sample_bytes, rows, rng_in, rng_learn;
    el_psn_net_t net;
    int16_t *W;
    int ok = 1;

    board_init();
    board_write((const uint8_t *)"ELPR", 4);
    if (job[0] != 'E' || job[1] != 'L' || job[2] != 'P' || job[3] != 'J') {
        put_u32(2);
        board_exit(2);
    }
    for (i = 0; i < 18; i++) h[i] = get_u32(job + 4 + 4 * i);
    if (h[0] == 0 || h[0] > PSN_MAX_LAYERS) {
        put_u32(3);
        board_exit(3);
    }
    p = job + 4 + 4 * 18;
    for (i = 0; i < h[0]; i++) {
        uint32_t *f = (uint32_t *)&layers[i];
        for (j = 0; j < 11; j++) f[j] = get_u32(p + 4 * j);
        p += 44;
    }
    n_w = h[1];
    n_out = h[8];
    n = h[15];
    sample_bytes = h[16];
    rows = h[17];
    rng_in = h[13];
    rng_learn = h[14];
    net.layers = layers;
    net.n_layers = h[0];
    W = take(&used, 2 * n_w);
    net.W = W;
    net.taps = (const int8_t *)(p + pad4(2 * n_w));
    net.th = (const int32_t *)(p + pad4(2 * n_w) + pad4(h[2]));
    samples = p + pad4(2 * n_w) + pad4(h[2]) + 4 * h[3];
    tail = samples + pad4(n * sample_bytes);
    net.ring = take(&used, 4 * h[4]);
    net.xr = take(&used, 4 * h[5]);
    net.cur = take(&used, 4 * h[3]);
    net.U = take(&used, 4 * h[3]);
    net.d = take(&used, 4 * h[3]);
    net.s = take(&used, h[3]);
    net.x0 = take(&used, 4 * h[7]);
    net.inp = take(&used, 4 * h[6]);
    net.nonzero = take(&used, 4 * h[6]);
    net.lag0 = take(&used, 4 * h[6]);
    net.back = take(&used, 8 * h[6]);
    net.scores = take(&used, 8 * n_out);
    if (!W || !net.ring || !net.xr || !net.cur || !net.U || !net.d || !net.s || !net.x0 || !net.inp || !net.nonzero
        || !net.lag0 || !net.back || !net.scores)
        ok = 0;
    put_u32(ok ? 0u : 1u);
    if (!ok) board_exit(1);
    for (i = 0; i < n_w; i++) W[i] = (int16_t)(p[2 * i] | p[2 * i + 1] << 8);
    for (i = 0; i < n; i++) {
        int32_t label = (int32_t)get_u32(tail + 8 * i);
        int learn = get_u32(tail + 8 * i + 4) != 0;
        el_psn_run_sample(&net, samples + i * sample_bytes, rows, (uint8_t)h[9], h[10], label, learn, (int)h[11],
                          (int)h[12], &rng_in, &rng_learn);
        for (j = 0; j < n_out; j++) {
            uint64_t v = (uint64_t)net.scores[j];
            put_u32((uint32_t)v);
            put_u32((uint32_t)(v >> 32));
        }
    }
    board_write((const uint8_t *)W, 2 * n_w);
    put_u32(rng_in);
    put_u32(rng_learn);
    board_write((const uint8_t *)"END!", 4);
    board_exit(0);
}

/* Board test firmware: the C runtime (targets/c) on the emulated core.
 *
 * The host preloads a job at BOARD_JOB_ADDR (QEMU -device loader,file=JOB,addr=...: the
 * 16 MiB PSRAM, 0x21000000 on mps2-an386 but 0x60000000 on mps2-an500, where 0x21000000 is
 * unbacked; it stands for flash or a stream and is not counted in the SRAM budget):
 *     "ELJB", u32 blob_bytes, u32 n_samples, u32 sample_bytes, u32 rows,
 *     blob (padded to 4 bytes), n x sample (uint8[sample_bytes]), n x {u8 label, u8 flags}
 * with flags bit0 learn, bit1 infer with the model's cutoff (docs/numerics.md §6b; set with
 * el_set_cutoff before the sample, outside the timed call).
 * The blob is copied into a static RAM buffer of EDGELEARN_BLOB_BYTES (parameters learn in
 * place), the net lives in el_static.c's arena of EDGELEARN_ARENA_BYTES: both in .bss, so
 * the linker checks that they fit the real board. Each sample runs through el_run_sample
 * (learning when asked; an update-"sample" model applies its sums after each sample, as
 * NativeSTOP does for a batch of one), timed with SysTick. The UART carries back
 *     "ELRS", u32 init_status, u32 arena_bytes, u32 arena_required, u32 n, u32 tick_overhead,
 *     n x {u32 status, u32 prediction, u32 ticks, u32 steps}, u32 blob_size, blob (sealed), "END!"
 * and the firmware exits with 0 (every call EL_OK) or 1. */
#include "board.h"
#include "el_static.h"

#ifndef EDGELEARN_BLOB_BYTES
#error "define EDGELEARN_BLOB_BYTES (the RAM reserved for the model blob)"
#endif
#ifndef BOARD_JOB_ADDR
#error "define BOARD_JOB_ADDR (where the host preloads the job: the board's PSRAM)"
#endif

static uint64_t blob_ram[(EDGELEARN_BLOB_BYTES + 7) / 8];

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

int main(void)
{
    const uint8_t *job = (const uint8_t *)BOARD_JOB_ADDR;
    uint32_t blob_bytes, n, sample_bytes, rows, i, overhead;
    const uint8_t *samples, *labels;
    uint8_t *blob = (uint8_t *)blob_ram;
    el_status_t st = EL_ERR_ARGUMENT;
    el_net_t *net = el_static_net();
    int failed = 0, cutoff = 0;
    uint64_t t0;

    board_init();
    board_write((const uint8_t *)"ELRS", 4);
    if (job[0] != 'E' || job[1] != 'L' || job[2] != 'J' || job[3] != 'B') {
        put_u32(0xFFFFFFFFu);
        board_exit(2);
    }
    blob_bytes = get_u32(job + 4);
    n = get_u32(job + 8);
    sample_bytes = get_u32(job + 12);
    rows = get_u32(job + 16);
    samples = job + 20 + ((blob_bytes + 3u) & ~3u);
    labels = samples + n * sample_bytes;

    if (blob_bytes <= sizeof blob_ram) {
        for (i = 0; i < blob_bytes; i++)
            blob[i] = job[20 + i];
        st = el_init_static(blob, blob_bytes, 0);
    } else {
        st = EL_ERR_ARENA_TOO_SMALL;
    }
    put_u32((uint32_t)st);
    put_u32(el_static_arena_bytes());
    put_u32(st == EL_OK ? net->plan.total : 0u);
    if (st != EL_OK) {
        put_u32(0);
        board_exit(2);
    }
    t0 = board_ticks();
    overhead = (uint32_t)(board_ticks() - t0);   /* the cost of reading the clock */
    put_u32(n);
    put_u32(overhead);

    for (i = 0; i < n; i++) {
        int learn = (labels[2 * i + 1] & 1u) != 0;
        int want_cutoff = (labels[2 * i + 1] & 2u) != 0;
        int per_step = net->update == EL_UPDATE_STEP;
        int32_t label = learn ? (int32_t)labels[2 * i] : -1;
        uint64_t t1 = 0, t2 = 0;
        el_status_t s = EL_OK;
        if (want_cutoff != cutoff) {
            s = el_set_cutoff(net, want_cutoff);
            if (s == EL_OK) cutoff = want_cutoff;
        }
        if (s == EL_OK) {
            t1 = board_ticks();
            s = el_run_sample(net, samples + i * sample_bytes, rows, label, learn, per_step);
            if (s == EL_OK && learn && !per_step && net->rule != EL_RULE_SPIDE)
                el_apply_accumulated(net, 0);
            t2 = board_ticks();
        }
        failed |= s != EL_OK;
        put_u32((uint32_t)s);
        put_u32(el_predict(net));
        put_u32((uint32_t)(t2 - t1));
        put_u32(s == EL_OK ? net->steps : 0u);
    }
    el_seal(net);
    put_u32(net->blob_size);
    board_write(net->blob, net->blob_size);
    board_write((const uint8_t *)"END!", 4);
    board_exit(failed ? 1 : 0);
}

/* libFuzzer harness: the C runtime's blob loader (targets/c/el_blob.c) on arbitrary bytes, under
 * ASan and UBSan (fuzz/run.py builds and runs it; corpus: fuzz/corpus/blob).
 *
 * Whatever the bytes, el_plan must return a status without touching memory it should not; a blob
 * it accepts must be accepted by el_init on an arena of the size it planned, run a learning
 * sample and an inference with the cutoff when small enough to be quick, and seal. Each input is
 * loaded twice: as it is, and with its file size and CRC made right, so that the fuzzer's
 * mutations reach the checks after the CRC instead of stopping there. */
#include <stdint.h>
#include <string.h>

#include "edgelearn.h"

#define MAX_BLOB (1u << 20)
#define MAX_ARENA (8u << 20)
#define MAX_WORK 400000u                      /* steps x neurons of a sample worth running */

static uint64_t blob[MAX_BLOB / 8];
static uint64_t arena[MAX_ARENA / 8];
static uint8_t sample[1u << 16];
static el_net_t net;

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static void load(const uint8_t *data, size_t size, int mend);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_BLOB) return 0;
    load(data, size, 0);
    if (size >= 32) load(data, size, 1);
    return 0;
}

/* The header's file_size (offset 8) and crc32 (offset 20, computed with itself zero) made right. */
static void mend_header(uint8_t *b, size_t size)
{
    put_u32(b + 8, (uint32_t)size);
    put_u32(b + 20, 0);
    put_u32(b + 20, el_crc32(0, b, size));
}

static void load(const uint8_t *data, size_t size, int mend)
{
    uint8_t *b = (uint8_t *)blob;
    el_plan_t plan;
    uint32_t i;
    memcpy(b, data, size);
    if (mend) mend_header(b, size);
    if (el_plan(b, size, 0, &plan) != EL_OK || plan.total > MAX_ARENA) return;
    if (el_init(&net, b, size, arena, plan.total, 0) != EL_OK) __builtin_trap();   /* planned, then refused */
    if (net.input_size > sizeof sample || (uint64_t)(net.T + net.Tb) * net.neurons > MAX_WORK) return;
    for (i = 0; i < net.input_size; i++) sample[i] = data[i % size];
    (void)el_run_sample(&net, sample, 1, 0, 1, net.update == EL_UPDATE_STEP);
    if (net.update != EL_UPDATE_STEP && net.rule != EL_RULE_SPIDE) el_apply_accumulated(&net, 0);
    if (el_set_cutoff(&net, 1) == EL_OK) (void)el_run_sample(&net, sample, 1, -1, 0, 0);
    el_seal(&net);
    if (el_plan(b, size, 0, &plan) != EL_OK) __builtin_trap();   /* learning in place keeps it a valid model */
}

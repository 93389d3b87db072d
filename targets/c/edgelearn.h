/* edgelearn: on-device learning for spiking neural networks, integer arithmetic only.
 *
 * The public API of the portable C99 runtime. It executes and trains a model from its
 * binary blob (docs/model-format.md) to the numeric contract (docs/numerics.md), bit for
 * bit with the Python reference (edgelearn/rules/stop/fixed.py, rules/spide/fixed.py).
 *
 * Memory. The runtime never allocates. The caller gives it
 *   - the blob, 4-byte aligned and writable: parameters (weights, thresholds, leaks) are
 *     used and learned IN PLACE, so the blob lives in RAM on a device that learns;
 *   - an arena for everything else (neuron state, traces, errors, gradient sums, I/O);
 *     el_arena_required() says how many bytes a blob needs, el_plan() how they are split;
 *   - an el_net_t (a small struct of pointers and scalars).
 * el_static.c provides both statically for device builds (EDGELEARN_ARENA_BYTES).
 *
 * Only <stdint.h> and <stddef.h> are used (no libc at all); no float anywhere.
 */
#ifndef EDGELEARN_H
#define EDGELEARN_H

#include <stddef.h>
#include <stdint.h>

#include "el_plan.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- error codes: one per way a blob (or a call) can be refused ------------------- */
typedef enum {
    EL_OK = 0,
    EL_ERR_ARGUMENT = 1,          /* a NULL pointer or a bad argument */
    EL_ERR_MISALIGNED = 2,        /* blob or arena not 4/8-byte aligned in memory */
    EL_ERR_TOO_SHORT = 3,         /* fewer bytes than a header */
    EL_ERR_BAD_MAGIC = 4,         /* not "ELRN" */
    EL_ERR_VERSION = 5,           /* a format version this loader does not read */
    EL_ERR_TRUNCATED = 6,         /* header file_size > bytes given */
    EL_ERR_TRAILING = 7,          /* header file_size < bytes given */
    EL_ERR_CRC = 8,               /* CRC-32 mismatch */
    EL_ERR_HEADER_RESERVED = 9,   /* header flags or reserved bytes not zero */
    EL_ERR_TABLE_BOUNDS = 10,     /* section table outside the file or misaligned */
    EL_ERR_SECTION_TYPE = 11,     /* unknown section type */
    EL_ERR_SECTION_BOUNDS = 12,   /* a section outside the file, overlapping the table, misaligned */
    EL_ERR_SECTION_DUPLICATE = 13,/* the same (type, index) twice */
    EL_ERR_SECTION_MISSING = 14,  /* a required section is absent */
    EL_ERR_SECTION_INDEX = 15,    /* a layer section for a layer the model does not have */
    EL_ERR_SECTION_SIZE = 16,     /* a section's size does not match its shapes */
    EL_ERR_UNKNOWN_CODE = 17,     /* unknown encoding, rule, update, layer or neuron kind code */
    EL_ERR_RESERVED_FIELD = 18,   /* a layer's reserved field or unknown flag bit set */
    EL_ERR_SHAPE = 19,            /* empty shape, zero dimension, product != size */
    EL_ERR_EDGE = 20,             /* edge source out of range or fan_in != sum of sources */
    EL_ERR_VALUE = 21,            /* a parameter or learning field out of its range */
    EL_ERR_UNSUPPORTED = 22,      /* valid blob this runtime cannot run (STOP: not a chain; SPIDE:
                                     a topology outside docs/spide.md §2, or int8 weights) */
    EL_ERR_ARENA_TOO_SMALL = 23,  /* the model does not fit the arena */
    EL_ERR_SECTION_OVERLAP = 24,  /* a section starts before the end of the one listed before it
                                     (payloads lie in table order and never overlap) */
    EL_ERR_NAME = 25              /* a name not UTF-8, a layer named "input", two layers of one name */
} el_status_t;

/* The newest blob format version el_plan reads (docs/model-format.md): EL_BLOB_VERSION. Define an
 * older one (-DEL_LOADER_VERSION=2u) only to stand in for an older loader (tests/test_board_schedule.py). */
#ifndef EL_LOADER_VERSION
#define EL_LOADER_VERSION EL_BLOB_VERSION
#endif

/* el_plan() options */
enum {
    EL_PLAN_WEIGHT_GRAD = 1       /* reserve weight-gradient sums even for update "step"
                                     (batches of B > 1 on a per-step model) */
};

/* The codes of docs/model-format.md, the contract's constants (el_contract.h), the layer
 * and edge tables, the arena plan and its layout (el_plan.h) are generated from the
 * Python sources of truth by `python -m edgelearn.cgen`. */

/* The running network. Caller-owned; filled by el_init. */
typedef struct {
    uint8_t *blob;
    uint32_t blob_size;
    uint32_t layer_count, input_size, T;
    uint8_t  encoding, rule, update;
    int8_t   surrogate_shift;
    uint32_t lr_shift[3];         /* the base shifts (MODEL section) of the weight, threshold, leak
                                     rates; the effective ones add the schedule's decay (el_lr_shift) */
    uint32_t rng_input, rng_learn;
    uint32_t neurons, lowest;     /* lowest trainable layer (layer_count: none) */
    /* anytime inference (docs/numerics.md §6b) */
    uint32_t cutoff_at;           /* the CUTOFF margins' offset in the blob (0: the model has none) */
    uint32_t cutoff_on;           /* inference stops early (el_set_cutoff); off after el_init */
    uint32_t steps;               /* steps the last el_run_sample ran: T unless it was cut off */
    /* the learning-rate schedule (docs/numerics.md §6c) */
    uint32_t schedule_at;         /* the SCHEDULE section's offset in the blob (0: the model has none) */
    el_plan_t plan;
    /* SPIDE */
    uint32_t Tb, edge_count;
    uint8_t  log2T, log2Tb, feedback, reserved;
    /* every arena buffer, typed (el_plan.h) */
    EL_BUFFER_POINTERS
} el_net_t;

/* CRC-32 (IEEE 802.3, zlib's) of a byte range, continuing from `crc` (start with 0). */
uint32_t el_crc32(uint32_t crc, const uint8_t *data, size_t n);

/* Check a blob and compute its arena plan. `options`: EL_PLAN_* bits. */
el_status_t el_plan(const uint8_t *blob, size_t size, unsigned options, el_plan_t *plan);

/* Arena bytes a blob needs (0 if the blob is refused; el_plan says why). */
uint32_t el_arena_required(const uint8_t *blob, size_t size, unsigned options);

/* Check the blob, lay out the arena and seed both PRNG streams from the model's seed. */
el_status_t el_init(el_net_t *net, uint8_t *blob, size_t size, void *arena, size_t arena_bytes,
                    unsigned options);

/* Present one sample for T steps from the zero state; learn when `learn`. `sample` is
 * uint8[input_size] (direct, rate) or uint8[rows][input_size] (events). `per_step`:
 * apply updates every step, else accumulate them for el_apply_accumulated. The scores
 * (spike counts, or summed membranes for an 'li' readout) are in net->scores, the steps
 * it ran in net->steps (fewer than T when an inference with the cutoff stopped early). */
el_status_t el_run_sample(el_net_t *net, const uint8_t *sample, uint32_t rows, int32_t label,
                          int learn, int per_step);

/* Inference with the cutoff (on) or for all T steps (off, the default). A learning sample
 * always runs T steps. EL_ERR_UNSUPPORTED when turning it on for a model without margins. */
el_status_t el_set_cutoff(el_net_t *net, int on);

/* SPIDE's sample (el_run_sample calls it for rule spide; docs/spide.md §5): the
 * equilibrium of T steps, the scores o = W_R c / T (Q16) in net->scores; when `learn`,
 * the spiking adjoint over Tb steps, the health counters, the updates and the guard. */
el_status_t el_spide_run_sample(el_net_t *net, const uint8_t *sample, uint32_t rows, int32_t label, int learn);

/* SPIDE's feedback loop gain bound in Q16 (0 without feedback edges). */
int64_t el_spide_loop_gain(el_net_t *net);

/* Apply the accumulated gradients of a sample or a batch of 2^extra_shift samples. */
void el_apply_accumulated(el_net_t *net, uint32_t extra_shift);

/* Highest score, ties to the lowest index. */
uint32_t el_predict(const el_net_t *net);

/* The learning-rate schedule (docs/numerics.md §6c). el_lr_shift: the effective shift of rate k
 * (0 weight, 1 threshold, 2 leak) that an update made now uses: lr_shift[k] + min(learned / every,
 * steps), at most EL_MAX_LR_SHIFT (the base shift itself without a SCHEDULE section). el_learned:
 * the samples learned, as the SCHEDULE section holds it (0 without one). el_count_learned: one more
 * (saturating at 2^32-1), written into the blob in place; el_run_sample and el_spide_run_sample
 * call it at the end of every sample they learn, so a caller never needs to. */
uint32_t el_lr_shift(const el_net_t *net, uint32_t k);
uint32_t el_learned(const el_net_t *net);
void el_count_learned(el_net_t *net);

/* Refresh the blob's CRC, so the blob (with the parameters and the schedule's count learned in
 * place) is a valid model file again. */
void el_seal(el_net_t *net);

#ifdef __cplusplus
}
#endif
#endif /* EDGELEARN_H */

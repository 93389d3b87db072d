/* edgelearn: on-device learning for spiking neural networks, integer arithmetic only.
 *
 * The public API of the portable C99 runtime. It executes and trains a model from its
 * binary blob (docs/model-format.md) to the numeric contract (docs/numerics.md), bit for
 * bit with the Python reference (edgelearn/learning/stop_fixed.py).
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
                                     a topology outside docs/spide.md §2) */
    EL_ERR_ARENA_TOO_SMALL = 23   /* the model does not fit the arena */
} el_status_t;

/* ---- codes of docs/model-format.md ----------------------------------------------- */
enum { EL_ENC_DIRECT = 0, EL_ENC_RATE = 1, EL_ENC_EVENTS = 2 };
enum { EL_RULE_STOP = 0, EL_RULE_READOUT = 1, EL_RULE_NONE = 2, EL_RULE_SPIDE = 3 };
enum { EL_UPDATE_STEP = 0, EL_UPDATE_SAMPLE = 1 };
enum { EL_NEURON_LIF = 0, EL_NEURON_IF = 1, EL_NEURON_LI = 2 };

/* layer flags of the runtime (as in stop_fixed.py's layer table) */
enum { EL_LEARN_THRESHOLD = 1, EL_LEARN_LEAK = 2, EL_TRAINABLE = 4 };

/* el_plan() options */
enum {
    EL_PLAN_WEIGHT_GRAD = 1       /* reserve weight-gradient sums even for update "step"
                                     (batches of B > 1 on a per-step model) */
};

/* One layer as the runtime runs it. Offsets, not pointers, so the arena's bytes are the
 * same on a 64-bit host and a 32-bit device. Element offsets into the arena buffers. */
typedef struct {
    uint32_t n_in, n_out;
    uint32_t weights_at, thresholds_at, leak_at; /* byte offsets of the sections in the blob */
    uint32_t n_off;               /* first neuron in membrane, spikes, potential, current */
    uint32_t learn_off;           /* first neuron in threshold_trace, leak_trace, error, threshold_grad */
    uint32_t in_off;              /* first input in input_trace */
    uint32_t w_off;               /* first synapse in weight_grad */
    uint8_t  neuron, weight_frac, flags;
    uint8_t  reset_shift;         /* SPIDE: V_d = th << reset_shift (1: the modified reset) */
    uint32_t e_start;             /* SPIDE: the layer's first edge in the edge table */
    uint16_t e_count;             /* SPIDE: its number of edges */
    int8_t   vd;                  /* SPIDE: log2 of V_d in real units */
    uint8_t  reserved;
} el_layer_t;

/* One edge of a SPIDE layer (spide_fixed.py's edge table): the reader's weight columns
 * col .. col + n_src - 1 read the input (src -1) or layer src's spikes, delay 0 or 1
 * step late; src_off is the source's first neuron. */
typedef struct {
    int32_t  src;
    uint32_t delay, col, n_src, src_off;
} el_edge_t;

/* Where each buffer lies in the arena: byte offset and size. The arena is the buffers in
 * this order, each 8-byte aligned. */
typedef struct { uint32_t offset, bytes; } el_span_t;

typedef struct {
    el_span_t layers;             /* el_layer_t[L] */
    el_span_t membrane, potential, current;   /* int32[N] */
    el_span_t spikes;             /* uint8[N] */
    el_span_t layer_input;        /* int32[max fan-in]: the encoder's output for layer 0,
                                     the spikes below widened to int32 for the others */
    el_span_t nonzero_index;      /* int32[max fan-in] */
    el_span_t scores;             /* int64[readout size] */
    el_span_t input_trace;        /* int32[fan-in of trainable layers]  (learning only) */
    el_span_t threshold_trace, leak_trace, error;   /* int32[neurons of trainable layers] */
    el_span_t error_backprop;     /* int64[widest hidden trainable layer] */
    el_span_t threshold_grad;     /* int64[neurons of trainable layers] */
    el_span_t leak_grad;          /* int64[L] */
    el_span_t weight_grad;        /* int64[synapses of trainable layers] (update "sample") */
    /* SPIDE only (docs/spide.md §3; it also uses layers, membrane, current, spikes,
       nonzero_index, scores and error): N neurons, W = max(inputs, widest layer) */
    el_span_t edges;              /* el_edge_t[edges] */
    el_span_t input_current;      /* int32[N]: F x, the input edges' currents */
    el_span_t spikes_prev;        /* uint8[N] */
    el_span_t count, half_count;  /* int32[N] */
    el_span_t mask;               /* uint8[N] */
    el_span_t edge_current;       /* int32[W] */
    el_span_t input, input_sum;   /* int32[inputs] */
    el_span_t output_gradient, drive, back_membrane;   /* int32[N] */
    el_span_t back_spikes, back_spikes_prev;           /* int8[N] */
    el_span_t back_count;         /* int32[N] */
    el_span_t back_input, back_sum, row_sums, row_gains;   /* int64[W] */
    el_span_t loop_gains;         /* int64[L] */
    el_span_t health;             /* int64[EL_HEALTH_COUNTERS] */
    uint32_t total;               /* bytes of the whole arena */
} el_plan_t;

/* SPIDE's health counters (docs/spide.md §7), the slots of net->health */
enum {
    EL_H_SAMPLES = 0, EL_H_NEURONS = 1, EL_H_MASKED = 2, EL_H_OSCILLATION = 3, EL_H_SATURATED = 4,
    EL_H_SILENT = 5, EL_H_RETRIES = 6, EL_H_HALVINGS = 7, EL_H_DEAD_RUN = 8, EL_HEALTH_COUNTERS = 9
};

/* The running network. Caller-owned; filled by el_init. */
typedef struct {
    uint8_t *blob;
    uint32_t blob_size;
    uint32_t layer_count, input_size, T;
    uint8_t  encoding, rule, update;
    int8_t   surrogate_shift;
    uint32_t lr_shift[3];         /* weight, threshold, leak: learning rates 2^-shift */
    uint32_t rng_input, rng_learn;
    uint32_t neurons, lowest;     /* lowest trainable layer (layer_count: none) */
    el_layer_t *layers;
    int32_t *membrane, *potential, *current, *layer_input, *nonzero_index;
    uint8_t *spikes;
    int64_t *scores;
    int32_t *input_trace, *threshold_trace, *leak_trace, *error;
    int64_t *error_backprop, *threshold_grad, *leak_grad, *weight_grad;
    el_plan_t plan;
    /* SPIDE */
    uint32_t Tb, edge_count;
    uint8_t  log2T, log2Tb, feedback, reserved;
    el_edge_t *edges;
    int32_t *input_current, *count, *half_count, *edge_current, *input, *input_sum;
    int32_t *output_gradient, *drive, *back_membrane, *back_count;
    uint8_t *spikes_prev, *mask;
    int8_t *back_spikes, *back_spikes_prev;
    int64_t *back_input, *back_sum, *row_sums, *row_gains, *loop_gains, *health;
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
 * (spike counts, or summed membranes for an 'li' readout) are in net->scores. */
el_status_t el_run_sample(el_net_t *net, const uint8_t *sample, uint32_t rows, int32_t label,
                          int learn, int per_step);

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

/* Halve every learning rate (one more right shift); SPIDE has only the weights'. */
void el_slow_down(el_net_t *net);

/* Write the learning rates back into the MODEL section and refresh the CRC, so the blob
 * (with the parameters learned in place) is a valid model file again. */
void el_seal(el_net_t *net);

/* Device convenience (el_static.c): el_init of a static el_net_t on a static arena of
 * EDGELEARN_ARENA_BYTES, so the whole runtime state is in .bss and the linker checks it. */
el_status_t el_init_static(uint8_t *blob, size_t size, unsigned options);
el_net_t *el_static_net(void);
uint32_t el_static_arena_bytes(void);

#ifdef __cplusplus
}
#endif
#endif /* EDGELEARN_H */

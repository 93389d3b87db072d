/* Fixed-point kernels: one function per operation, each the mirror of the function of
 * the same name in edgelearn/ops/ and edgelearn/rules/ (docs/architecture.md lists which)
 * (docs/numerics.md §5). Weights are int16, row-major [n_out][n_in], Q`w_frac`; a dense
 * kernel that reads or stores weights also has an _int8 twin for a layer of int8 weights
 * (one body for both, el_dense_width.h: the same sums, updates saturated to int8); everything
 * else is Q16 in int32; products and sums are int64. Loops run in ascending index order: the
 * order decides PRNG draws. */
#ifndef EL_KERNELS_H
#define EL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Clear n bytes. The runtime's only memory helper: no libc is needed on a target. */
static inline void el_zero(void *p, size_t n)
{
    uint8_t *b = (uint8_t *)p;
#if defined(__GNUC__)                      /* a word at a time: may_alias lets it clear any type */
    typedef uint32_t __attribute__((may_alias)) el_word_t;
    while (n && ((uintptr_t)b & 3u)) { *b++ = 0; n--; }
    for (; n >= 4; n -= 4, b += 4) *(el_word_t *)(void *)b = 0;
#endif
    while (n--) *b++ = 0;
}

/* ---- encoders (edgelearn/encoders.py) --------------------------------------------- */
/* Fill x[n] with the input of step t and return its fractional bits. `sample` is
 * uint8[n] (direct, rate) or uint8[rows][n] (events). */
int el_encode_step(uint8_t code, const uint8_t *sample, uint32_t rows, uint32_t n, uint32_t t,
                   uint32_t *rng_input, int32_t *x);

/* ---- forward ---------------------------------------------------------------------- */
/* Scratch of el_dense_current: the indices of the non-zero inputs. */
static inline uint32_t el_dense_current_buffer_size(uint32_t n_in) { return n_in * (uint32_t)sizeof(int32_t); }
/* W is a block of n_out rows and n_in columns inside a row-major matrix of row stride `ld`
 * (ld = n_in for a whole layer; SPIDE passes an edge's columns of a wider layer). */
void el_dense_current(const int16_t *W, uint32_t ld, uint32_t n_out, uint32_t n_in, const int32_t *x,
                      int x_frac, int w_frac, int32_t *nonzero, int32_t *cur);
void el_dense_current_int8(const int8_t *W, uint32_t ld, uint32_t n_out, uint32_t n_in, const int32_t *x,
                           int x_frac, int w_frac, int32_t *nonzero, int32_t *cur);
/* The indices of x's non-zero entries, ascending, into nonzero[]; returns their count. */
uint32_t el_nonzero_index(const int32_t *x, uint32_t n, int32_t *nonzero);
/* An input that stays the same all sample (direct coding, numerics.md §5b): the exact sums
 * W x over the n listed non-zero inputs once, then each step's current from them. */
void el_dense_sums(const int16_t *W, uint32_t ld, uint32_t n_out, const int32_t *x, const int32_t *nonzero,
                   uint32_t n, int64_t *sums);
void el_dense_sums_int8(const int8_t *W, uint32_t ld, uint32_t n_out, const int32_t *x, const int32_t *nonzero,
                        uint32_t n, int64_t *sums);
void el_current_from_sums(const int64_t *sums, uint32_t n, int x_frac, int w_frac, int32_t *cur);
void el_input_trace_step(int64_t a, const int32_t *x, uint32_t n, int x_frac, int32_t *x_tr);
void el_neuron_trace_step(int64_t a, const int32_t *V, const uint8_t *s, uint32_t n, int32_t *th_tr,
                          int32_t *a_tr);
/* LIF and IF (edgelearn/ops/neurons/lif.py): a spike subtracts th << reset_shift. U may be
 * cur itself (SPIDE keeps no potential): each current is read before its potential is written. */
void el_lif_step(const int32_t *cur, int64_t a, const int32_t *th, int reset_shift, uint32_t n, int32_t *V,
                 uint8_t *s, int32_t *U);
/* LI (edgelearn/ops/neurons/li.py), with the neuron kinds' one signature: th, reset_shift and s
 * are not read. el_neurons.h (generated) dispatches on the kind's code. */
void el_li_step(const int32_t *cur, int64_t a, const int32_t *th, int reset_shift, uint32_t n, int32_t *V,
                uint8_t *s, int32_t *U);
/* The threshold unit (edgelearn/ops/neurons/threshold.py), memoryless: V = U = cur, s = cur >= th;
 * a and reset_shift are not read. V and U may be cur itself. */
void el_threshold_step(const int32_t *cur, int64_t a, const int32_t *th, int reset_shift, uint32_t n, int32_t *V,
                       uint8_t *s, int32_t *U);

/* ---- errors ----------------------------------------------------------------------- */
int64_t el_surrogate(int64_t x, int k);
void el_spiking_output_error(const uint8_t *s, const int32_t *U, const int32_t *th, uint32_t n,
                             int32_t label, int k, int32_t *d);
void el_li_output_error(const int32_t *U, uint32_t n, int32_t label, int32_t *d);
/* back = W_up^T d_up over the non-zero d_up, unsaturated (the dense kind's carrying of errors);
 * returns how many were non-zero. Every kind's (el_layers.h) fills the same scratch: */
static inline uint32_t el_error_backprop_buffer_size(uint32_t n) { return n * (uint32_t)sizeof(int64_t); }
uint32_t el_dense_back(const int16_t *W_up, uint32_t n_up, const int32_t *d_up, uint32_t n, int64_t *back);
uint32_t el_dense_back_int8(const int8_t *W_up, uint32_t n_up, const int32_t *d_up, uint32_t n, int64_t *back);
/* A hidden layer's error below a dense layer, d = (W_up^T d_up) * phi(U - th): el_dense_back then
 * el_surrogate_error in one call (back: the scratch). */
void el_hidden_error(const int16_t *W_up, uint32_t n_up, const int32_t *d_up, const int32_t *U,
                     const int32_t *th, uint32_t n, int w_frac_up, int k, int64_t *back, int32_t *d);
/* A hidden layer's error from the errors above carried onto it: d = back 2^-frac phi(U - th);
 * all 0 when `active` (the non-zero errors above) is 0. */
void el_surrogate_error(const int64_t *back, uint32_t active, const int32_t *U, const int32_t *th, uint32_t n,
                        int frac, int k, int32_t *d);
/* A layer without neurons (a pool): d = back 2^-frac, dE/d(its output). */
void el_pass_error(const int64_t *back, uint32_t active, uint32_t n, int frac, int32_t *d);

/* ---- learning --------------------------------------------------------------------- */
/* nonzero: scratch of n_in indices (el_dense_current_buffer_size): the non-zero traces. */
void el_update_weights(int16_t *W, uint32_t ld, uint32_t n_out, uint32_t n_in, const int32_t *d,
                       const int32_t *x_tr, int shift, uint32_t *rng, int32_t *nonzero);
void el_update_weights_int8(int8_t *W, uint32_t ld, uint32_t n_out, uint32_t n_in, const int32_t *d,
                            const int32_t *x_tr, int shift, uint32_t *rng, int32_t *nonzero);
void el_accumulate_weight_grads(int64_t *gW, uint32_t n_out, uint32_t n_in, const int32_t *d,
                                const int32_t *x_tr);
void el_apply_weight_grads(int16_t *W, int64_t *gW, uint32_t n_out, uint32_t n_in, int shift, uint32_t *rng);
void el_apply_weight_grads_int8(int8_t *W, int64_t *gW, uint32_t n_out, uint32_t n_in, int shift, uint32_t *rng);
void el_threshold_grads(const int32_t *d, const int32_t *th_tr, uint32_t n, int64_t *g);
void el_apply_threshold_grads(int32_t *th, int64_t *g, uint32_t n, int shift, int64_t floor, uint32_t *rng);
int64_t el_leak_grad(const int32_t *d, const int32_t *a_tr, uint32_t n);
int64_t el_apply_leak_grad(int64_t a, int64_t g, int shift, uint32_t *rng);

/* ---- anytime inference (docs/numerics.md §6b) ------------------------------------ */
/* The leader's score minus the runner-up's over n >= 2 scores (0 on a tie). */
int64_t el_top2_gap(const int64_t *scores, uint32_t n);
/* Margin t of a CUTOFF section's little-endian int64 array, read bytewise: a blob is only
 * 4-byte aligned. */
static inline int64_t el_cutoff_margin(const uint8_t *margins, uint32_t t)
{
    const uint8_t *p = margins + 8u * t;
    uint64_t v = 0;
    int k;
    for (k = 7; k >= 0; k--) v = v << 8 | p[k];
    return (int64_t)v;
}

#endif /* EL_KERNELS_H */

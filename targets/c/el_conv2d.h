/* conv2d's kernels (docs/numerics.md §5c), one for one with edgelearn/ops/layers/conv2d.py:
 * a [out_c, out_h, out_w] population of neurons reading a [in_c, in_h, in_w] source through
 * shared kernels. W is int16 row-major [out_c][in_c kh kw] in Q`w_frac`; buffers are flat in
 * (channel, row, column) order; `g` is the window (el_plan.h). Sums are exact int64; the
 * loops run in the order of the Python reference, which decides the PRNG draws. */
#ifndef EL_CONV2D_H
#define EL_CONV2D_H

#include <stdint.h>

#include "el_plan.h"

/* Scratch of the conv2d calls, in elements: the non-zero inputs (int32), and one output channel's
 * sums or its tap sums (int64). */
static inline uint32_t el_conv2d_nonzero_size(const el_window_t *g) { return (uint32_t)g->in_c * g->in_h * g->in_w; }
static inline uint32_t el_conv2d_sums_size(const el_window_t *g)
{
    uint32_t plane = (uint32_t)g->out_h * g->out_w, taps = (uint32_t)g->in_c * g->kernel_h * g->kernel_w;
    return plane > taps ? plane : taps;
}

/* sums[p] = output channel co's exact sums over its plane, from the n non-zero inputs listed. */
void el_conv2d_sums(const int16_t *W, const int32_t *x, const el_window_t *g, const int32_t *nonzero, uint32_t n,
                    uint32_t co, int64_t *sums);
/* cur = the convolution of x in Q16 (scratch: nonzero, one channel's plane of sums). */
void el_conv2d_current(const int16_t *W, const int32_t *x, int x_frac, int w_frac, const el_window_t *g,
                       int32_t *nonzero, int64_t *plane, int32_t *cur);
/* back = the transposed convolution of the errors d, unsaturated; returns how many d were non-zero. */
uint32_t el_conv2d_back(const int16_t *W, const int32_t *d, const el_window_t *g, int64_t *back);
/* W -= SR(gradient, shift), one draw per non-zero tap sum (acc: in_c kh kw int64, a channel's tap sums). */
void el_conv2d_update_weights(int16_t *W, const int32_t *d, const int32_t *x_tr, const el_window_t *g, int shift,
                              uint32_t *rng, int64_t *acc);
/* gW += gradient, term by term with el_sat_sum (each tap's in ascending position order). */
void el_conv2d_weight_grads(int64_t *gW, const int32_t *d, const int32_t *x_tr, const el_window_t *g);

#endif /* EL_CONV2D_H */

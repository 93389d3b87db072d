/* scan2d's kernels (docs/numerics.md §5d, docs/one-step.md), one for one with
 * edgelearn/ops/layers/scan2d.py: a [C, H, W] population that reads a [C_in, H, W] source through
 * a column (kh x 1) and a row (1 x kw) field centred on each position and the spikes its left and
 * upper neighbours fired in the same step, scanned row by row and stepped neuron by neuron.
 * W is int16 row-major [C][C_in kh | C_in kw | C | C] in Q`w_frac`; `g` is the window (el_plan.h). */
#ifndef EL_SCAN2D_H
#define EL_SCAN2D_H

#include <stdint.h>

#include "el_plan.h"

/* One step of the scan: every neuron's current, then its step (neuron kind `code`), position by position. */
void el_scan2d_step(const int16_t *W, const int32_t *x, int x_frac, int w_frac, const el_window_t *g, uint32_t code,
                    int64_t a, const int32_t *th, int reset_shift, int32_t *V, uint8_t *s, int32_t *U, int32_t *cur);
/* r^ = a r^ + s over n neurons (Q16): the neighbours' spike traces, after the scan. */
void el_scan2d_spike_trace(int64_t a, const uint8_t *s, uint32_t n, int32_t *r_tr);
/* back = the transposed fields of the errors d, unsaturated; returns how many d were non-zero. */
uint32_t el_scan2d_back(const int16_t *W, const int32_t *d, const el_window_t *g, int64_t *back);
/* W -= SR(gradient, shift): per channel, per input of its row, one draw per non-zero sum (acc: a row of sums). */
void el_scan2d_update_weights(int16_t *W, const int32_t *d, const int32_t *x_tr, const el_window_t *g, int shift,
                              uint32_t *rng, int64_t *acc);
/* gW += gradient, term by term with el_sat_sum. */
void el_scan2d_weight_grads(int64_t *gW, const int32_t *d, const int32_t *x_tr, const el_window_t *g);

#endif /* EL_SCAN2D_H */

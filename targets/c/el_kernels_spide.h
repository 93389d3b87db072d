/* SPIDE's fixed-point kernels (docs/spide.md §4): one function per operation, each the
 * mirror of the function of the same name in edgelearn/rules/spide/kernels.py. Weight blocks are
 * `n_out` rows of `n_in` columns inside a row-major matrix of row stride `ld` (an edge's
 * columns of its reader's weights). Loops run in ascending index order. */
#ifndef EL_KERNELS_SPIDE_H
#define EL_KERNELS_SPIDE_H

#include <stddef.h>
#include <stdint.h>

#define EL_HALF (EL_ONE >> 1)      /* the couples' threshold: a backward spike is worth ONE */

/* dense_current (kernels.py) on 0/1 spikes held as uint8, x_frac 0: the same sums and
 * rounding as el_dense_current on the spikes widened to int32, without the copy. */
void el_spike_current(const int16_t *W, uint32_t ld, uint32_t n_out, uint32_t n_in, const uint8_t *s,
                      int w_frac, int32_t *nonzero, int32_t *cur);

/* count += s: the spike counts whose rates are the equilibrium. */
void el_count_spikes(const uint8_t *s, uint32_t n, int32_t *count);
/* cur += part (saturating). */
void el_add_current(const int32_t *part, uint32_t n, int32_t *cur);
/* mask = 0 < count < T. */
void el_equilibrium_mask(const int32_t *count, uint32_t n, int64_t T, uint8_t *mask);
/* g += W^T e (Q16); W is n_e rows (one per error) of n columns; acc: int64[n] scratch. */
void el_readout_gradient(const int16_t *W, uint32_t ld, uint32_t n_e, uint32_t n, const int32_t *e, int w_frac,
                         int64_t *acc, int32_t *g);
/* The shift that puts max|g| 2^gs in [ONE/2, ONE); 0 when g is all zero. */
int el_gradient_scale(const int32_t *g, uint32_t n);
/* drive = sat32(g 2^gs). */
void el_scale_drive(const int32_t *g, uint32_t n, int gs, int32_t *drive);
/* inp += (W^T (mask sb)) 2^-shift: additions of weights only. W is n_up rows of n columns. */
void el_backward_input(const int16_t *W, uint32_t ld, uint32_t n_up, uint32_t n, const uint8_t *mask,
                       const int8_t *sb, int shift, int64_t *acc, int64_t *inp);
/* Ternary couples: u += inp; fire +1 at u >= ONE/2, -1 at u <= -ONE/2, reset by ONE. */
void el_couple_step(const int64_t *inp, uint32_t n, int32_t *u, int8_t *sb, int32_t *count);
/* count = mask count. */
void el_gate_counts(const uint8_t *mask, uint32_t n, int32_t *count);
/* sums[j] = sum_i |W[j][i]|. */
void el_row_abs_sums(const int16_t *W, uint32_t ld, uint32_t n_out, uint32_t n_in, int64_t *sums);
/* W = round_shift(W, 1). */
void el_halve_weights(int16_t *W, uint32_t ld, uint32_t n_out, uint32_t n_in);

#endif /* EL_KERNELS_SPIDE_H */

/* The multiplication-free channel-wise parallel spiking neuron (PSN), docs/numerics.md §5e and
 * docs/psn.md; one for one with edgelearn/ops/layers/psn.py: the kernels, and the psn layer kind's
 * ops of el_layers.h (el_layer_filter_psn ..., which el_stop.c runs like any registered kind).
 * Per channel j, a ring of its last L = (K-1) D + 1 currents; the filter
 * H_j = sum_k tap(q_jk, I_j[t - k D]) with power-of-two taps is shifts and adds only (the
 * Cortex-M build of el_psn_filter holds no multiply instruction: tests/test_psn_native.py). */
#ifndef EL_PSN_H
#define EL_PSN_H

#include <stddef.h>
#include <stdint.h>

/* The tap of code q applied to v: 0; round_shift(v, q - 1); or -round_shift(v, -q - 1). */
int64_t el_psn_apply_tap(int8_t q, int64_t v);
/* The filter of one step of a layer of n channels of K taps at dilation D, in place, rings of
 * L = (K-1) D + 1 currents (the layer table's ring_len): ring[j][pos] = cur[j] (the newest current),
 * then cur[j] = sat32(sum_k tap(q_jk, ring[j][(pos - k D) mod L])), its neuron's input (the
 * threshold unit, el_threshold_step). The filter computes no product. */
void el_psn_filter(int32_t *cur, const int8_t *taps, uint32_t n, uint32_t K, uint32_t D, uint32_t L, uint32_t pos,
                   int32_t *ring);
/* xr[i][pos] = x[i] << (16 - x_frac): the ring of the layer's recent inputs (learning only). */
void el_psn_input_ring(const int32_t *x, uint32_t n, int x_frac, uint32_t L, uint32_t pos, int32_t *xr);
/* W[j][i] -= SR(d[j] e_ji, shift), e_ji = sum_k tap(q_jk, xr[i][(pos - k D) mod L]), for j with
 * d[j] != 0 and i with e_ji != 0, ascending: one draw each. */
void el_psn_update_weights(int16_t *W, uint32_t n_out, uint32_t n_in, const int32_t *d, const int8_t *taps,
                           uint32_t K, uint32_t D, uint32_t L, uint32_t pos, const int32_t *xr, int shift,
                           uint32_t *rng);
/* gW[j][i] += d[j] e_ji (exact, saturating sums) for the rows with d[j] != 0: per-sample updates. */
void el_psn_weight_grads(int64_t *gW, uint32_t n_out, uint32_t n_in, const int32_t *d, const int8_t *taps,
                         uint32_t K, uint32_t D, uint32_t L, uint32_t pos, const int32_t *xr);
/* out[j] = sat32(tap(q_j0, d[j])): the errors as this step's inputs see them (lag 0). */
void el_psn_lag0_error(const int8_t *taps, const int32_t *d, uint32_t n, uint32_t K, int32_t *out);

#endif /* EL_PSN_H */

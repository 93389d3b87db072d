/* PSN kernels and the psn layer kind's ops (el_layers.h), which el_stop.c runs like any registered
 * kind: docs/numerics.md §5e, docs/psn.md; one for one with edgelearn/ops/layers/psn.py. The filter
 * (el_psn_filter, el_psn_apply_tap) is shifts, adds and compares only: rows and slots advance by
 * addition, never by index products. */
#include "el_psn.h"

#include "el_kernels.h"
#include "el_layers.h"
#include "el_numerics.h"

int64_t el_psn_apply_tap(int8_t q, int64_t v)
{
    if (q == 0) return 0;
    if (q > 0) return el_round_shift(v, q - 1);
    return -el_round_shift(v, -q - 1);
}

void el_psn_filter(int32_t *cur, const int8_t *taps, uint32_t n, uint32_t K, uint32_t D, uint32_t L, uint32_t pos,
                   int32_t *ring)
{
    uint32_t j, k;
    for (j = 0; j < n; j++, ring += L, taps += K) {
        int64_t acc = 0;
        int32_t slot = (int32_t)pos;
        ring[pos] = cur[j];
        for (k = 0; k < K; k++) {
            acc += el_psn_apply_tap(taps[k], ring[slot]);
            slot -= (int32_t)D;
            if (slot < 0) slot += (int32_t)L;
        }
        cur[j] = el_sat32(acc);
    }
}

void el_psn_input_ring(const int32_t *x, uint32_t n, int x_frac, uint32_t L, uint32_t pos, int32_t *xr)
{
    uint32_t i;
    for (i = 0; i < n; i++, xr += L) xr[pos] = (int32_t)el_shl(x[i], EL_STATE_FRAC - x_frac);
}

static int64_t eligibility(const int8_t *q, uint32_t K, uint32_t D, uint32_t L, uint32_t pos, const int32_t *xr)
{
    uint32_t k;
    int64_t acc = 0;
    int32_t slot = (int32_t)pos;
    for (k = 0; k < K; k++) {
        acc += el_psn_apply_tap(q[k], xr[slot]);
        slot -= (int32_t)D;
        if (slot < 0) slot += (int32_t)L;
    }
    return acc;
}

void el_psn_update_weights(int16_t *W, uint32_t n_out, uint32_t n_in, const int32_t *d, const int8_t *taps,
                           uint32_t K, uint32_t D, uint32_t L, uint32_t pos, const int32_t *xr, int shift,
                           uint32_t *rng)
{
    uint32_t i, j;
    for (j = 0; j < n_out; j++, W += n_in, taps += K) {
        int64_t dj = d[j];
        const int32_t *row = xr;
        if (dj == 0) continue;
        for (i = 0; i < n_in; i++, row += L) {
            int64_t e = eligibility(taps, K, D, L, pos, row);
            if (e == 0) continue;
            W[i] = el_sat16(W[i] - el_stochastic_shift(dj * e, shift, rng));
        }
    }
}

void el_psn_weight_grads(int64_t *gW, uint32_t n_out, uint32_t n_in, const int32_t *d, const int8_t *taps,
                         uint32_t K, uint32_t D, uint32_t L, uint32_t pos, const int32_t *xr)
{
    uint32_t i, j;
    for (j = 0; j < n_out; j++, gW += n_in, taps += K) {
        int64_t dj = d[j];
        const int32_t *row = xr;
        if (dj == 0) continue;
        for (i = 0; i < n_in; i++, row += L) {
            int64_t e = eligibility(taps, K, D, L, pos, row);
            if (e != 0) gW[i] = el_sat_sum(gW[i], dj * e);
        }
    }
}

void el_psn_lag0_error(const int8_t *taps, const int32_t *d, uint32_t n, uint32_t K, int32_t *out)
{
    uint32_t j;
    for (j = 0; j < n; j++, taps += K) out[j] = el_sat32(el_psn_apply_tap(taps[0], d[j]));
}

/* ---- the psn layer kind's ops (el_layers.h; edgelearn/ops/layers/psn.py filter_step ... ring_grads) ---- */

void el_layer_filter_psn(const el_layer_t *ly, const void *W, const int32_t *x, int x_frac, const int8_t *taps,
                         uint32_t pos, int32_t *ring, int32_t *x_ring, int32_t *nonzero, int32_t *cur)
{
    if (x_ring != NULL)                   /* learning: the eligibility's history */
        el_psn_input_ring(x, ly->n_in, x_frac, ly->ring_len, pos, x_ring);
    el_layer_forward_dense(ly, W, x, NULL, x_frac, nonzero, NULL, cur, NULL);   /* the synapses: W x */
    el_psn_filter(cur, taps, ly->n_out, ly->taps, ly->dilation, ly->ring_len, pos, ring);
}

void el_layer_lag0_psn(const el_layer_t *ly, const int8_t *taps, const int32_t *d, int32_t *out)
{
    el_psn_lag0_error(taps, d, ly->n_out, ly->taps, out);
}

void el_layer_ring_update_psn(const el_layer_t *ly, void *W, const int32_t *d, const int8_t *taps, uint32_t pos,
                              const int32_t *x_ring, int shift, uint32_t *rng)
{
    el_psn_update_weights(W, ly->n_out, ly->n_in, d, taps, ly->taps, ly->dilation, ly->ring_len, pos, x_ring, shift,
                          rng);
}

void el_layer_ring_grads_psn(const el_layer_t *ly, int64_t *gW, const int32_t *d, const int8_t *taps, uint32_t pos,
                             const int32_t *x_ring)
{
    el_psn_weight_grads(gW, ly->n_out, ly->n_in, d, taps, ly->taps, ly->dilation, ly->ring_len, pos, x_ring);
}

/* PSN kernels and the per-sample driver: docs/numerics.md §5e, docs/psn.md; one for one with
 * edgelearn/ops/layers/psn.py and edgelearn/psnnet.py. The neuron (el_psn_step, el_psn_apply_tap)
 * is shifts, adds and compares only: rows and slots advance by addition, never by index products. */
#include "el_psn.h"

#include "el_kernels.h"
#include "el_numerics.h"

int64_t el_psn_apply_tap(int8_t q, int64_t v)
{
    if (q == 0) return 0;
    if (q > 0) return el_round_shift(v, q - 1);
    return -el_round_shift(v, -q - 1);
}

static uint32_t ring_length(uint32_t K, uint32_t D) { return (K - 1) * D + 1; }   /* host and driver only */

void el_psn_step(const int32_t *cur, const int8_t *taps, uint32_t n, uint32_t K, uint32_t D, uint32_t L,
                 uint32_t pos, int32_t *ring, const int32_t *th, int32_t *U, uint8_t *s)
{
    uint32_t j, k;
    for (j = 0; j < n; j++, ring += L, taps += K) {
        int64_t acc = 0;
        int32_t slot = (int32_t)pos, h;
        ring[pos] = cur[j];
        for (k = 0; k < K; k++) {
            acc += el_psn_apply_tap(taps[k], ring[slot]);
            slot -= (int32_t)D;
            if (slot < 0) slot += (int32_t)L;
        }
        h = el_sat32(acc);
        U[j] = h;
        s[j] = h >= th[j] ? 1 : 0;
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

void el_psn_lag0_error(const int8_t *taps, const int32_t *d, uint32_t n, uint32_t K, int32_t *out)
{
    uint32_t j;
    for (j = 0; j < n; j++, taps += K) out[j] = el_sat32(el_psn_apply_tap(taps[0], d[j]));
}

size_t el_psn_buffer_size(uint32_t n_in, uint32_t n_out, uint32_t K, uint32_t D, int learning)
{
    size_t L = ring_length(K, D);
    size_t bytes = (size_t)n_out * n_in * sizeof(int16_t) + (size_t)n_out * K * sizeof(int8_t)
                 + (size_t)n_out * (3 * sizeof(int32_t) + sizeof(uint8_t)) + (size_t)n_out * L * sizeof(int32_t);
    if (learning) bytes += (size_t)n_in * L * sizeof(int32_t) + (size_t)n_out * sizeof(int32_t);
    return bytes;
}

void el_psn_run_sample(const el_psn_net_t *net, const uint8_t *sample, uint32_t rows, uint8_t code, uint32_t T,
                       int32_t label, int learn, int lr_shift, int k, uint32_t *rng_in, uint32_t *rng_learn)
{
    const el_psn_layer_t *ly = net->layers;
    uint32_t nl = net->n_layers, t, l, i, n_ring = 0, n_xr = 0, n0 = ly[0].n_in;
    const el_psn_layer_t *last = ly + nl - 1;
    for (l = 0; l < nl; l++) {
        n_ring += ly[l].n_out * ly[l].ring_len;
        n_xr += ly[l].n_in * ly[l].ring_len;
    }
    for (i = 0; i < n_ring; i++) net->ring[i] = 0;
    for (i = 0; i < n_xr; i++) net->xr[i] = 0;
    for (i = 0; i < last->n_out; i++) net->scores[i] = 0;
    for (t = 0; t < T; t++) {
        int x_frac = el_encode_step(code, sample, rows, n0, t, rng_in, net->x0);
        for (l = 0; l < nl; l++) {
            const el_psn_layer_t *a = ly + l;
            uint32_t L = a->ring_len, pos = t % L;
            int frac = l == 0 ? x_frac : 0;
            if (l == 0) for (i = 0; i < a->n_in; i++) net->inp[i] = net->x0[i];
            else for (i = 0; i < a->n_in; i++) net->inp[i] = net->s[ly[l - 1].n_off + i];
            if (learn) el_psn_input_ring(net->inp, a->n_in, frac, L, pos, net->xr + a->xr_off);
            el_dense_current(net->W + a->w_off, a->n_in, a->n_out, a->n_in, net->inp, frac, a->w_frac,
                             net->nonzero, net->cur + a->n_off);
            el_psn_step(net->cur + a->n_off, net->taps + a->tap_off, a->n_out, a->taps, a->dilation, L, pos,
                        net->ring + a->ring_off, net->th + a->n_off, net->U + a->n_off, net->s + a->n_off);
        }
        for (i = 0; i < last->n_out; i++) net->scores[i] += net->U[last->n_off + i];
        if (!learn) continue;
        el_li_output_error(net->U + last->n_off, last->n_out, label, net->d + last->n_off);
        for (l = nl - 1; l-- > 0;) {
            const el_psn_layer_t *a = ly + l, *up = ly + l + 1;
            uint32_t active;
            el_psn_lag0_error(net->taps + up->tap_off, net->d + up->n_off, up->n_out, up->taps, net->lag0);
            active = el_dense_back(net->W + up->w_off, up->n_out, net->lag0, a->n_out, net->back);
            el_surrogate_error(net->back, active, net->U + a->n_off, net->th + a->n_off, a->n_out, up->w_frac, k,
                               net->d + a->n_off);
        }
        for (l = 0; l < nl; l++) {
            const el_psn_layer_t *a = ly + l;
            el_psn_update_weights(net->W + a->w_off, a->n_out, a->n_in, net->d + a->n_off, net->taps + a->tap_off,
                                  a->taps, a->dilation, a->ring_len, t % a->ring_len, net->xr + a->xr_off, 32 - a->w_frac + lr_shift,
                                  rng_learn);
        }
    }
}

/* The kernels of docs/spide.md §4, one for one with edgelearn/rules/spide/kernels.py. */
#include "el_numerics.h"
#include "el_kernels.h"
#include "el_kernels_spide.h"

void el_spike_current(const int16_t *W, uint32_t ld, uint32_t n_out, uint32_t n_in, const uint8_t *s,
                      int w_frac, int32_t *nonzero, int32_t *cur)
{
    uint32_t i, j, k, n = 0;
    int shift = w_frac - EL_STATE_FRAC;
    for (i = 0; i < n_in; i++)       /* event-driven: visit only the spikes */
        if (s[i] != 0) nonzero[n++] = (int32_t)i;
    for (j = 0; j < n_out; j++) {
        const int16_t *row = W + (size_t)j * ld;
        int64_t acc = 0;
        for (k = 0; k < n; k++) acc += (int64_t)row[nonzero[k]] * s[nonzero[k]];
        cur[j] = el_sat32(el_round_shift(acc, shift));
    }
}

void el_count_spikes(const uint8_t *s, uint32_t n, int32_t *count)
{
    uint32_t j;
    for (j = 0; j < n; j++) count[j] += s[j];
}

void el_add_current(const int32_t *part, uint32_t n, int32_t *cur)
{
    uint32_t j;
    for (j = 0; j < n; j++) cur[j] = el_sat32((int64_t)cur[j] + part[j]);
}

void el_equilibrium_mask(const int32_t *count, uint32_t n, int64_t T, uint8_t *mask)
{
    uint32_t j;
    for (j = 0; j < n; j++) mask[j] = (uint8_t)(count[j] > 0 && count[j] < T);
}

void el_readout_gradient(const int16_t *W, uint32_t ld, uint32_t n_e, uint32_t n, const int32_t *e, int w_frac,
                         int64_t *acc, int32_t *g)
{
    uint32_t m, j;
    for (j = 0; j < n; j++) acc[j] = 0;
    for (m = 0; m < n_e; m++) {            /* event-driven over non-zero errors */
        const int16_t *row = W + (size_t)m * ld;
        int64_t em = e[m];
        if (em == 0) continue;
        for (j = 0; j < n; j++) acc[j] += (int64_t)row[j] * em;
    }
    for (j = 0; j < n; j++) g[j] = el_sat32((int64_t)g[j] + el_round_shift(acc[j], w_frac));
}

int el_gradient_scale(const int32_t *g, uint32_t n)
{
    uint32_t j;
    int64_t top = 0;
    int bits = 0;
    for (j = 0; j < n; j++) {
        int64_t v = g[j] < 0 ? -(int64_t)g[j] : (int64_t)g[j];
        if (v > top) top = v;
    }
    if (top == 0) return 0;
    while (top > 0) {                      /* bit length: a count-leading-zeros on a device */
        top >>= 1;
        bits++;
    }
    return EL_STATE_FRAC - bits;
}

void el_scale_drive(const int32_t *g, uint32_t n, int gs, int32_t *drive)
{
    uint32_t j;
    for (j = 0; j < n; j++) drive[j] = el_sat32(el_round_shift(g[j], -gs));
}

void el_backward_input(const int16_t *W, uint32_t ld, uint32_t n_up, uint32_t n, const uint8_t *mask,
                       const int8_t *sb, int shift, int64_t *acc, int64_t *inp)
{
    uint32_t m, j;
    for (j = 0; j < n; j++) acc[j] = 0;
    for (m = 0; m < n_up; m++) {           /* only unclamped readers that spiked */
        const int16_t *row = W + (size_t)m * ld;
        if (mask[m] == 0 || sb[m] == 0) continue;
        if (sb[m] > 0)
            for (j = 0; j < n; j++) acc[j] += row[j];
        else
            for (j = 0; j < n; j++) acc[j] -= row[j];
    }
    for (j = 0; j < n; j++) inp[j] += el_round_shift(acc[j], shift);
}

void el_couple_step(const int64_t *inp, uint32_t n, int32_t *u, int8_t *sb, int32_t *count)
{
    uint32_t j;
    for (j = 0; j < n; j++) {
        int64_t v = el_sat32((int64_t)u[j] + inp[j]);
        if (v >= EL_HALF) {
            sb[j] = 1;
            v -= EL_ONE;
        } else if (v <= -EL_HALF) {
            sb[j] = -1;
            v += EL_ONE;
        } else {
            sb[j] = 0;
        }
        u[j] = (int32_t)v;
        count[j] += sb[j];
    }
}

void el_gate_counts(const uint8_t *mask, uint32_t n, int32_t *count)
{
    uint32_t j;
    for (j = 0; j < n; j++)
        if (mask[j] == 0) count[j] = 0;
}

void el_row_abs_sums(const int16_t *W, uint32_t ld, uint32_t n_out, uint32_t n_in, int64_t *sums)
{
    uint32_t i, j;
    for (j = 0; j < n_out; j++) {
        const int16_t *row = W + (size_t)j * ld;
        int64_t acc = 0;
        for (i = 0; i < n_in; i++) acc += row[i] < 0 ? -(int64_t)row[i] : (int64_t)row[i];
        sums[j] = acc;
    }
}

void el_halve_weights(int16_t *W, uint32_t ld, uint32_t n_out, uint32_t n_in)
{
    uint32_t i, j;
    for (j = 0; j < n_out; j++) {
        int16_t *row = W + (size_t)j * ld;
        for (i = 0; i < n_in; i++) row[i] = (int16_t)el_round_shift(row[i], 1);
    }
}

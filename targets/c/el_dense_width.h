/* The dense kernels that read or store weights, written once for both weight widths: a
 * layer's weights are int16 or int8 (docs/numerics.md §1), and only their storage and the
 * saturation of an update (satW: sat16 or sat8) differ; products and sums are int64 either way.
 * el_kernels.c includes this file once per width, having defined
 *   EL_W             the weight type (int16_t, int8_t)
 *   EL_WIDTH(name)   the name of this width's instance of a kernel (el_dense_current, el_dense_current_int8)
 *   EL_SAT_W(x)      satW(x), and EL_SUB_SAT_W(w, q) satW(w - q) for an int32 q
 * and this file undefines them, ready for the next width. No include guard on purpose. */

/* One row of W x over the listed inputs, exact (docs/numerics.md §8: no overflow). */
static inline int64_t EL_WIDTH(row_sum)(const EL_W *row, const int32_t *x, const int32_t *nonzero, uint32_t n)
{
    uint32_t k;
    int64_t acc = 0;
    for (k = 0; k + 1u < n; k += 2u) {    /* two a turn: the loop's own cost halves */
        int32_t i0 = nonzero[k], i1 = nonzero[k + 1u];
        acc += (int64_t)row[i0] * x[i0];
        acc += (int64_t)row[i1] * x[i1];
    }
    if (k < n) acc += (int64_t)row[nonzero[k]] * x[nonzero[k]];
    return acc;
}

/* The same sum when every listed input is 1 (spikes): no products, and below 2^16 terms of
 * at most 2^15 it fits int32. */
static inline int32_t EL_WIDTH(row_sum_of_spikes)(const EL_W *row, const int32_t *nonzero, uint32_t n)
{
    uint32_t k;
    int32_t acc = 0;
    for (k = 0; k + 1u < n; k += 2u) acc += row[nonzero[k]] + row[nonzero[k + 1u]];
    if (k < n) acc += row[nonzero[k]];
    return acc;
}

void EL_WIDTH(el_dense_current)(const EL_W *W, uint32_t ld, uint32_t n_out, uint32_t n_in, const int32_t *x,
                                int x_frac, int w_frac, int32_t *nonzero, int32_t *cur)
{
    uint32_t i, j, n = 0;
    int32_t spikes = 1;
    int shift = w_frac + x_frac - EL_STATE_FRAC;
    for (i = 0; i < n_in; i++) {           /* event-driven: only the non-zero inputs */
        if (x[i] == 0) continue;
        nonzero[n++] = (int32_t)i;
        spikes &= x[i] == 1;
    }
    if (spikes && n < 65536u) {
        for (j = 0; j < n_out; j++)
            cur[j] = el_sat32(el_round_shift(EL_WIDTH(row_sum_of_spikes)(W + (size_t)j * ld, nonzero, n), shift));
        return;
    }
    for (j = 0; j < n_out; j++) cur[j] = el_sat32(el_round_shift(EL_WIDTH(row_sum)(W + (size_t)j * ld, x, nonzero, n), shift));
}

void EL_WIDTH(el_dense_sums)(const EL_W *W, uint32_t ld, uint32_t n_out, const int32_t *x, const int32_t *nonzero,
                             uint32_t n, int64_t *sums)
{
    uint32_t j;
    for (j = 0; j < n_out; j++) sums[j] = EL_WIDTH(row_sum)(W + (size_t)j * ld, x, nonzero, n);
}

/* The dense kind's refresh (el_layer_refresh_dense): the sums of the rows that learned. */
static void EL_WIDTH(dense_refresh)(const EL_W *W, uint32_t n_out, uint32_t n_in, const int32_t *x, const int32_t *d,
                                    int32_t *nonzero, int64_t *sums)
{
    uint32_t j, n = el_nonzero_index(x, n_in, nonzero);
    for (j = 0; j < n_out; j++)
        if (d[j] != 0) sums[j] = EL_WIDTH(row_sum)(W + (size_t)j * n_in, x, nonzero, n);
}

uint32_t EL_WIDTH(el_dense_back)(const EL_W *W_up, uint32_t n_up, const int32_t *d_up, uint32_t n, int64_t *back)
{
    uint32_t m, j, active = 0;
    el_zero(back, (size_t)n * sizeof(int64_t));
    for (m = 0; m < n_up; m++) {           /* event-driven over non-zero upper errors */
        const EL_W *row = W_up + (size_t)m * n;
        int64_t dm = d_up[m];
        if (dm == 0) continue;
        active++;
        for (j = 0; j < n; j++) back[j] += (int64_t)row[j] * dm;   /* unsaturated: §8 */
    }
    return active;
}

void EL_WIDTH(el_update_weights)(EL_W *W, uint32_t ld, uint32_t n_out, uint32_t n_in, const int32_t *d,
                                 const int32_t *x_tr, int shift, uint32_t *rng, int32_t *nonzero)
{
    uint32_t j, k, n = el_nonzero_index(x_tr, n_in, nonzero);   /* the non-zero traces, once */
    uint32_t state = *rng;                 /* in a register: the draws in the same order */
    for (j = 0; j < n_out; j++) {
        EL_W *row = W + (size_t)j * ld;
        int64_t dj = d[j];
        if (dj == 0) continue;
        if (shift > 0 && shift < 32) {     /* the usual case: 32 - wf + lr_weight_shift */
            for (k = 0; k < n; k++) {
                uint32_t i = (uint32_t)nonzero[k];
                state = el_xorshift32(state);
                row[i] = EL_SUB_SAT_W(row[i], el_sr_shift_sat32(dj * x_tr[i], shift, state));
            }
            continue;
        }
        for (k = 0; k < n; k++) {
            uint32_t i = (uint32_t)nonzero[k];
            row[i] = EL_SAT_W(row[i] - el_stochastic_shift(dj * x_tr[i], shift, &state));
        }
    }
    *rng = state;
}

void EL_WIDTH(el_apply_weight_grads)(EL_W *W, int64_t *gW, uint32_t n_out, uint32_t n_in, int shift, uint32_t *rng)
{
    size_t i, n = (size_t)n_out * n_in;
    uint32_t state = *rng;
    for (i = 0; i < n; i++) {              /* row-major, non-zero entries only */
        if (gW[i] == 0) continue;
        if (shift > 0 && shift < 32) {
            state = el_xorshift32(state);
            W[i] = EL_SUB_SAT_W(W[i], el_sr_shift_sat32(gW[i], shift, state));
        } else {
            W[i] = EL_SAT_W(W[i] - el_stochastic_shift(gW[i], shift, &state));
        }
        gW[i] = 0;
    }
    *rng = state;
}

#undef EL_W
#undef EL_WIDTH
#undef EL_SAT_W
#undef EL_SUB_SAT_W

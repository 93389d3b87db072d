/* The kernels of docs/numerics.md §5, one for one with the ops (edgelearn/ops), STOP's and
 * the shared kernels (edgelearn/rules/stop/kernels.py, rules/kernels.py) and encoders.py. Skipping zero inputs, errors and gradient entries never changes
 * a result but decides which PRNG draws happen, so the skips are part of the contract. */
#include "el_kernels.h"
#include "el_layers.h"
#include "el_numerics.h"
#include "edgelearn.h"

int el_encode_step(uint8_t code, const uint8_t *sample, uint32_t rows, uint32_t n, uint32_t t,
                   uint32_t *rng_input, int32_t *x)
{
    uint32_t i;
    if (code == EL_ENC_DIRECT) {
        for (i = 0; i < n; i++) x[i] = sample[i];
        return EL_INPUT_FRAC;
    }
    if (code == EL_ENC_RATE) {      /* one draw per input per step: p = sample / 256 */
        for (i = 0; i < n; i++) x[i] = (el_rng_next(rng_input) >> 24) < sample[i] ? 1 : 0;
        return 0;
    }
    /* events, sequence: row t of a [rows][n] recording (spikes, or Q0.8 currents); steps past
     * the recording are silent */
    for (i = 0; i < n; i++) {
        uint8_t v = t < rows ? sample[(size_t)t * n + i] : 0;
        x[i] = code == EL_ENC_SEQUENCE ? v : (v != 0 ? 1 : 0);
    }
    return code == EL_ENC_SEQUENCE ? EL_INPUT_FRAC : 0;
}

uint32_t el_nonzero_index(const int32_t *x, uint32_t n, int32_t *nonzero)
{
    uint32_t i, count = 0;
    for (i = 0; i < n; i++)
        if (x[i] != 0) nonzero[count++] = (int32_t)i;
    return count;
}

/* The dense kernels that read or store weights, once for each weight width (el_dense_width.h):
 * int16 under their own names, int8 as their _int8 twins. */
#define EL_W int16_t
#define EL_WIDTH(name) name
#define EL_SAT_W el_sat16
#define EL_SUB_SAT_W el_sub_sat16
#include "el_dense_width.h"

#define EL_W int8_t
#define EL_WIDTH(name) name##_int8
#define EL_SAT_W el_sat8
#define EL_SUB_SAT_W el_sub_sat8
#include "el_dense_width.h"

void el_current_from_sums(const int64_t *sums, uint32_t n, int x_frac, int w_frac, int32_t *cur)
{
    uint32_t j;
    int shift = w_frac + x_frac - EL_STATE_FRAC;
    if (shift > 0 && shift < 32) {         /* the usual case (e.g. Q3.12 weights, Q0.8 input: 4) */
        for (j = 0; j < n; j++) cur[j] = el_round_shift_sat32(sums[j], shift);
        return;
    }
    for (j = 0; j < n; j++) cur[j] = el_sat32(el_round_shift(sums[j], shift));
}

void el_input_trace_step(int64_t a, const int32_t *x, uint32_t n, int x_frac, int32_t *x_tr)
{
    uint32_t i;
    int lift = EL_STATE_FRAC - x_frac;     /* inputs enter the trace in Q16 */
    /* x in [0, 255] and lift in [0, 16]: x 2^lift < 2^24 is an int32 (§8a) */
    for (i = 0; i < n; i++) x_tr[i] = el_add_sat32(el_mul_leak((int32_t)a, x_tr[i]), (int32_t)el_shl(x[i], lift));
}

void el_neuron_trace_step(int64_t a, const int32_t *V, const uint8_t *s, uint32_t n, int32_t *th_tr,
                          int32_t *a_tr)
{
    uint32_t j;
    for (j = 0; j < n; j++) {              /* reads V[t-1], s[t-1]: before the neuron step */
        /* after a spike th~ - ONE may leave int32: the 64-bit primitive there */
        th_tr[j] = s[j] ? el_sat32(el_mul_state(a, (int64_t)th_tr[j] - EL_ONE)) : el_mul_leak((int32_t)a, th_tr[j]);
        a_tr[j] = el_add_sat32(el_mul_leak((int32_t)a, a_tr[j]), V[j]);
    }
}

void el_lif_step(const int32_t *cur, int64_t a, const int32_t *th, int reset_shift, uint32_t n, int32_t *V,
                 uint8_t *s, int32_t *U)
{
    uint32_t j;
    for (j = 0; j < n; j++) {              /* reset by subtraction, leak after reset */
        int32_t u = el_add_sat32(el_mul_leak((int32_t)a, V[j]), cur[j]);
        U[j] = u;
        if (u >= th[j]) {
            s[j] = 1;
            V[j] = el_sat32((int64_t)u - el_shl(th[j], reset_shift));
        } else {
            s[j] = 0;
            V[j] = u;
        }
    }
}

void el_li_step(const int32_t *cur, int64_t a, const int32_t *th, int reset_shift, uint32_t n, int32_t *V,
                uint8_t *s, int32_t *U)
{
    uint32_t j;
    (void)th;                              /* the shared neuron signature: no threshold, reset or spikes */
    (void)reset_shift;
    (void)s;
    for (j = 0; j < n; j++) {
        V[j] = el_add_sat32(el_mul_leak((int32_t)a, V[j]), cur[j]);
        U[j] = V[j];
    }
}

void el_threshold_step(const int32_t *cur, int64_t a, const int32_t *th, int reset_shift, uint32_t n, int32_t *V,
                       uint8_t *s, int32_t *U)
{
    uint32_t j;
    (void)a;                               /* the shared neuron signature: no leak, no reset */
    (void)reset_shift;
    for (j = 0; j < n; j++) {
        const int32_t c = cur[j];          /* read once: V or U may be cur */
        V[j] = c;
        U[j] = c;
        s[j] = c >= th[j] ? 1 : 0;
    }
}

int64_t el_surrogate(int64_t x, int k)
{
    int64_t phi = EL_ONE - el_round_shift(x < 0 ? -x : x, k);   /* triangle, half-width 2^k */
    return phi > 0 ? phi : 0;
}

void el_spiking_output_error(const uint8_t *s, const int32_t *U, const int32_t *th, uint32_t n,
                             int32_t label, int k, int32_t *d)
{
    uint32_t j;
    for (j = 0; j < n; j++) {              /* E = 1/2 |s - y|^2 */
        int64_t e = (int64_t)s[j] - ((int32_t)j == label ? 1 : 0);
        d[j] = el_sat32(e * el_surrogate((int64_t)U[j] - th[j], k));
    }
}

void el_li_output_error(const int32_t *U, uint32_t n, int32_t label, int32_t *d)
{
    uint32_t j;
    for (j = 0; j < n; j++) d[j] = el_sat32((int64_t)U[j] - ((int32_t)j == label ? EL_ONE : 0));
}

void el_surrogate_error(const int64_t *back, uint32_t active, const int32_t *U, const int32_t *th, uint32_t n,
                        int frac, int k, int32_t *d)
{
    uint32_t j;
    if (active == 0) {                     /* no upper error: every d is round_shift(0) = 0 */
        for (j = 0; j < n; j++) d[j] = 0;
        return;
    }
    for (j = 0; j < n; j++) {
        /* phi in [0, ONE]: phi g / 2^16 rounds inside int32, as a leak's product (§8a) */
        int32_t phi = (int32_t)el_surrogate((int64_t)U[j] - th[j], k);
        int32_t g;
        if (phi == 0) {                    /* away from the threshold: round_shift(0) */
            d[j] = 0;
            continue;
        }
        g = frac > 0 && frac < 32 ? el_round_shift_sat32(back[j], frac) : el_sat32(el_round_shift(back[j], frac));
        d[j] = el_mul_leak(phi, g);
    }
}

void el_hidden_error(const int16_t *W_up, uint32_t n_up, const int32_t *d_up, const int32_t *U,
                     const int32_t *th, uint32_t n, int w_frac_up, int k, int64_t *back, int32_t *d)
{
    el_surrogate_error(back, el_dense_back(W_up, n_up, d_up, n, back), U, th, n, w_frac_up, k, d);
}

void el_pass_error(const int64_t *back, uint32_t active, uint32_t n, int frac, int32_t *d)
{
    uint32_t j;
    for (j = 0; j < n; j++) d[j] = active == 0 ? 0 : el_sat32(el_round_shift(back[j], frac));
}

void el_accumulate_weight_grads(int64_t *gW, uint32_t n_out, uint32_t n_in, const int32_t *d,
                                const int32_t *x_tr)
{
    uint32_t i, j;
    for (j = 0; j < n_out; j++) {
        int64_t *row = gW + (size_t)j * n_in;
        int64_t dj = d[j];
        if (dj == 0) continue;
        for (i = 0; i < n_in; i++)
            if (x_tr[i] != 0) row[i] = el_sat_sum(row[i], dj * x_tr[i]);
    }
}

void el_threshold_grads(const int32_t *d, const int32_t *th_tr, uint32_t n, int64_t *g)
{
    uint32_t j;
    for (j = 0; j < n; j++)
        if (d[j] != 0) g[j] = el_sat_sum(g[j], (int64_t)d[j] * ((int64_t)th_tr[j] - EL_ONE));
}

void el_apply_threshold_grads(int32_t *th, int64_t *g, uint32_t n, int shift, int64_t floor, uint32_t *rng)
{
    uint32_t j;
    for (j = 0; j < n; j++) {
        if (g[j] != 0) {
            int64_t v = el_sat32(th[j] - el_stochastic_shift(g[j], shift, rng));
            th[j] = (int32_t)(v > floor ? v : floor);
            g[j] = 0;
        }
    }
}

int64_t el_leak_grad(const int32_t *d, const int32_t *a_tr, uint32_t n)
{
    uint32_t j;
    int64_t acc = 0;
    for (j = 0; j < n; j++)
        if (d[j] != 0) acc = el_sat_sum(acc, (int64_t)d[j] * a_tr[j]);
    return acc;
}

int64_t el_apply_leak_grad(int64_t a, int64_t g, int shift, uint32_t *rng)
{
    if (g == 0) return a;                  /* no draw without a gradient */
    return el_saturate(a - el_stochastic_shift(g, shift, rng), 0, EL_ONE);
}

int64_t el_top2_gap(const int64_t *scores, uint32_t n)
{
    uint32_t j, best = 0, second;
    for (j = 1; j < n; j++)                /* the first maximum, as el_predict */
        if (scores[j] > scores[best]) best = j;
    second = best == 0 ? 1u : 0u;
    for (j = 0; j < n; j++)
        if (j != best && scores[j] > scores[second]) second = j;
    return scores[best] - scores[second];
}

/* ---- the dense kind's layer ops (el_layers.h), as edgelearn/ops/layers/dense.py's -------- */
/* W is the layer's weights, int8 when its flags say EL_WEIGHTS_INT8 (docs/numerics.md §1). */

void el_layer_forward_dense(const el_layer_t *ly, const void *W, const int32_t *x, const uint8_t *s, int x_frac,
                            int32_t *nonzero, int64_t *plane, int32_t *cur, uint8_t *out)
{
    (void)s, (void)plane, (void)out;
    if (ly->flags & EL_WEIGHTS_INT8)
        el_dense_current_int8(W, ly->n_in, ly->n_out, ly->n_in, x, x_frac, ly->weight_frac, nonzero, cur);
    else
        el_dense_current(W, ly->n_in, ly->n_out, ly->n_in, x, x_frac, ly->weight_frac, nonzero, cur);
}

void el_layer_sums_dense(const el_layer_t *ly, const void *W, const int32_t *x, const int32_t *nonzero, uint32_t n,
                         int64_t *sums)
{
    if (ly->flags & EL_WEIGHTS_INT8)
        el_dense_sums_int8(W, ly->n_in, ly->n_out, x, nonzero, n, sums);
    else
        el_dense_sums(W, ly->n_in, ly->n_out, x, nonzero, n, sums);
}

void el_layer_refresh_dense(const el_layer_t *ly, const void *W, const int32_t *x, const int32_t *d,
                            int32_t *nonzero, int64_t *sums)
{
    if (ly->flags & EL_WEIGHTS_INT8)
        dense_refresh_int8(W, ly->n_out, ly->n_in, x, d, nonzero, sums);
    else
        dense_refresh(W, ly->n_out, ly->n_in, x, d, nonzero, sums);
}

uint32_t el_layer_back_dense(const el_layer_t *ly, const void *W, const int32_t *d, const uint8_t *s, int64_t *back)
{
    (void)s;
    return ly->flags & EL_WEIGHTS_INT8 ? el_dense_back_int8(W, ly->n_out, d, ly->n_in, back)
                                       : el_dense_back(W, ly->n_out, d, ly->n_in, back);
}

void el_layer_update_dense(const el_layer_t *ly, void *W, const int32_t *d, const int32_t *x_tr, int shift,
                           uint32_t *rng, int32_t *nonzero, int64_t *plane)
{
    (void)plane;
    if (ly->flags & EL_WEIGHTS_INT8)
        el_update_weights_int8(W, ly->n_in, ly->n_out, ly->n_in, d, x_tr, shift, rng, nonzero);
    else
        el_update_weights(W, ly->n_in, ly->n_out, ly->n_in, d, x_tr, shift, rng, nonzero);
}

void el_layer_grads_dense(const el_layer_t *ly, int64_t *gW, const int32_t *d, const int32_t *x_tr, int32_t *nonzero)
{
    (void)nonzero;
    el_accumulate_weight_grads(gW, ly->n_out, ly->n_in, d, x_tr);
}

void el_dense_scratch(const el_layer_t *ly, uint32_t *nonzero, uint32_t *plane)
{
    *nonzero = ly->n_in;                      /* the non-zero inputs (el_dense_current_buffer_size) */
    *plane = 0;
}

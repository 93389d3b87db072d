/* scan2d (docs/numerics.md §5d): the kernels of el_scan2d.h and the layer ops of el_layers.h,
 * one for one with edgelearn/ops/layers/scan2d.py. */
#include "el_scan2d.h"
#include "el_kernels.h"
#include "el_layers.h"
#include "el_neurons.h"
#include "el_numerics.h"

static int32_t max32(int32_t a, int32_t b) { return a > b ? a : b; }
static int32_t min32(int32_t a, int32_t b) { return a < b ? a : b; }

void el_scan2d_step(const int16_t *W, const int32_t *x, int x_frac, int w_frac, const el_window_t *g, uint32_t code,
                    int64_t a, const int32_t *th, int reset_shift, int32_t *V, uint8_t *s, int32_t *U, int32_t *cur)
{
    const int32_t in_c = g->in_c, in_h = g->in_h, in_w = g->in_w, C = g->out_c, H = g->out_h, Wd = g->out_w;
    const int32_t kh = g->kernel_h, kw = g->kernel_w, ph = g->pad_h, pw = g->pad_w;
    const int32_t P = H * Wd, row0 = in_c * kh, left0 = in_c * (kh + kw), up0 = left0 + C, cols = up0 + C;
    const int shift = w_frac + x_frac - EL_STATE_FRAC;
    int32_t y, xx, c, ci, c2, k;
    for (y = 0; y < H; y++)
        for (xx = 0; xx < Wd; xx++) {
            const int32_t p = y * Wd + xx;
            for (c = 0; c < C; c++) {
                const int16_t *w = W + (size_t)c * (size_t)cols;
                int64_t acc = 0, rec = 0;
                for (ci = 0; ci < in_c; ci++) {
                    for (k = max32(0, ph - y); k < min32(kh, in_h + ph - y); k++) {   /* the column field */
                        const int32_t v = x[(ci * in_h + y + k - ph) * in_w + xx];
                        if (v != 0) acc += (int64_t)w[ci * kh + k] * v;
                    }
                    for (k = max32(0, pw - xx); k < min32(kw, in_w + pw - xx); k++) {  /* the row field */
                        const int32_t v = x[(ci * in_h + y) * in_w + xx + k - pw];
                        if (v != 0) acc += (int64_t)w[row0 + ci * kw + k] * v;
                    }
                }
                for (c2 = 0; c2 < C; c2++) {         /* this step's spikes of the neighbours scanned */
                    if (xx > 0 && s[c2 * P + p - 1] != 0) rec += w[left0 + c2];
                    if (y > 0 && s[c2 * P + p - Wd] != 0) rec += w[up0 + c2];
                }
                cur[c * P + p] = el_sat32(el_round_shift(acc + el_shl(rec, x_frac), shift));
            }
            for (c = 0; c < C; c++) {                /* then the neurons of the position */
                const int32_t j = c * P + p;
                el_neuron_step(code, cur + j, a, th + j, reset_shift, 1, V + j, s + j, U + j);
            }
        }
}

void el_scan2d_spike_trace(int64_t a, const uint8_t *s, uint32_t n, int32_t *r_tr)
{
    uint32_t j;
    for (j = 0; j < n; j++) r_tr[j] = el_add_sat32(el_mul_leak((int32_t)a, r_tr[j]), (int32_t)s[j] << EL_STATE_FRAC);
}

uint32_t el_scan2d_back(const int16_t *W, const int32_t *d, const el_window_t *g, int64_t *back)
{
    const int32_t in_c = g->in_c, in_h = g->in_h, in_w = g->in_w, C = g->out_c, Wd = g->out_w;
    const int32_t kh = g->kernel_h, kw = g->kernel_w, ph = g->pad_h, pw = g->pad_w;
    const int32_t P = (int32_t)g->out_h * Wd, row0 = in_c * kh, cols = in_c * (kh + kw) + 2 * C;
    int32_t c, p, ci, k;
    uint32_t active = 0;
    el_zero(back, (size_t)in_c * (size_t)(in_h * in_w) * sizeof(int64_t));
    for (c = 0; c < C; c++)
        for (p = 0; p < P; p++) {
            const int64_t dv = d[c * P + p];
            const int32_t y = p / Wd, xx = p % Wd;
            const int16_t *w = W + (size_t)c * (size_t)cols;
            if (dv == 0) continue;
            active++;
            for (ci = 0; ci < in_c; ci++) {
                for (k = max32(0, ph - y); k < min32(kh, in_h + ph - y); k++)
                    back[(ci * in_h + y + k - ph) * in_w + xx] += (int64_t)w[ci * kh + k] * dv;
                for (k = max32(0, pw - xx); k < min32(kw, in_w + pw - xx); k++)
                    back[(ci * in_h + y) * in_w + xx + k - pw] += (int64_t)w[row0 + ci * kw + k] * dv;
            }
        }
    return active;
}

/* acc[k] = sat_sum(acc[k], d[c][p] trace[input k of p]) for the positions p of channel c with a
 * non-zero error, ascending: the fields' x^, then the neighbours' r^; returns how many there were. */
static uint32_t add_terms(const int32_t *d, const int32_t *x_tr, const el_window_t *g, int32_t c, int64_t *acc)
{
    const int32_t in_c = g->in_c, in_h = g->in_h, in_w = g->in_w, C = g->out_c, Wd = g->out_w;
    const int32_t kh = g->kernel_h, kw = g->kernel_w, ph = g->pad_h, pw = g->pad_w;
    const int32_t P = (int32_t)g->out_h * Wd, row0 = in_c * kh, left0 = in_c * (kh + kw), up0 = left0 + C;
    const int32_t *r_tr = x_tr + in_c * in_h * in_w;
    int32_t p, ci, k, c2;
    uint32_t active = 0;
    for (p = 0; p < P; p++) {
        const int64_t dv = d[c * P + p];
        const int32_t y = p / Wd, xx = p % Wd;
        if (dv == 0) continue;
        active++;
        for (ci = 0; ci < in_c; ci++) {
            for (k = max32(0, ph - y); k < min32(kh, in_h + ph - y); k++)
                acc[ci * kh + k] = el_sat_sum(acc[ci * kh + k], dv * x_tr[(ci * in_h + y + k - ph) * in_w + xx]);
            for (k = max32(0, pw - xx); k < min32(kw, in_w + pw - xx); k++)
                acc[row0 + ci * kw + k] = el_sat_sum(acc[row0 + ci * kw + k],
                                                     dv * x_tr[(ci * in_h + y) * in_w + xx + k - pw]);
        }
        for (c2 = 0; c2 < C; c2++) {
            if (xx > 0) acc[left0 + c2] = el_sat_sum(acc[left0 + c2], dv * r_tr[c2 * P + p - 1]);
            if (y > 0) acc[up0 + c2] = el_sat_sum(acc[up0 + c2], dv * r_tr[c2 * P + p - Wd]);
        }
    }
    return active;
}

void el_scan2d_update_weights(int16_t *W, const int32_t *d, const int32_t *x_tr, const el_window_t *g, int shift,
                              uint32_t *rng, int64_t *acc)
{
    const int32_t cols = g->in_c * (g->kernel_h + g->kernel_w) + 2 * g->out_c;
    int32_t c, k;
    for (c = 0; c < g->out_c; c++) {
        int16_t *w = W + (size_t)c * (size_t)cols;
        for (k = 0; k < cols; k++) acc[k] = 0;
        if (add_terms(d, x_tr, g, c, acc) == 0) continue;
        for (k = 0; k < cols; k++)            /* one draw per non-zero sum, in the row's order */
            if (acc[k] != 0) w[k] = el_sat16(w[k] - el_stochastic_shift(acc[k], shift, rng));
    }
}

void el_scan2d_weight_grads(int64_t *gW, const int32_t *d, const int32_t *x_tr, const el_window_t *g)
{
    const int32_t cols = g->in_c * (g->kernel_h + g->kernel_w) + 2 * g->out_c;
    int32_t c;
    for (c = 0; c < g->out_c; c++) (void)add_terms(d, x_tr, g, c, gW + (size_t)c * (size_t)cols);
}

/* ---- the layer ops (el_layers.h) ------------------------------------------------ */

void el_layer_scan_scan2d(const el_layer_t *ly, const void *W, const int32_t *x, int x_frac, int64_t a,
                          const int32_t *th, int32_t *V, uint8_t *s, int32_t *U, int32_t *cur, int32_t *rec_tr)
{
    const el_window_t g = el_window_of(ly);
    el_scan2d_step(W, x, x_frac, ly->weight_frac, &g, ly->neuron, a, th, ly->reset_shift, V, s, U, cur);
    if (rec_tr != NULL) el_scan2d_spike_trace(a, s, ly->n_out, rec_tr);   /* learning: this step's spikes */
}

uint32_t el_layer_back_scan2d(const el_layer_t *ly, const void *W, const int32_t *d, const uint8_t *s,
                              int64_t *back)
{
    const el_window_t g = el_window_of(ly);
    (void)s;
    return el_scan2d_back(W, d, &g, back);
}

void el_layer_update_scan2d(const el_layer_t *ly, void *W, const int32_t *d, const int32_t *x_tr, int shift,
                            uint32_t *rng, int32_t *nonzero, int64_t *plane)
{
    const el_window_t g = el_window_of(ly);
    (void)nonzero;
    el_scan2d_update_weights(W, d, x_tr, &g, shift, rng, plane);
}

void el_layer_grads_scan2d(const el_layer_t *ly, int64_t *gW, const int32_t *d, const int32_t *x_tr, int32_t *nonzero)
{
    const el_window_t g = el_window_of(ly);
    (void)nonzero;
    el_scan2d_weight_grads(gW, d, x_tr, &g);
}

el_status_t el_scan2d_window_check(const el_window_t *g, int binary_source, el_layer_t *ly)
{
    (void)binary_source;                      /* it reads any source */
    if (g->stride_h != 1 || g->stride_w != 1 || g->kernel_h % 2 == 0 || g->kernel_w % 2 == 0
        || g->pad_h != g->kernel_h / 2 || g->pad_w != g->kernel_w / 2)
        return EL_ERR_VALUE;                  /* centred fields: odd kernels, stride 1, half padding */
    if ((uint32_t)g->out_c * (g->kernel_h + g->kernel_w) > EL_MAX_LAYER_SIZE) return EL_ERR_VALUE;
    ly->w_rows = g->out_c;
    ly->w_cols = (uint32_t)g->in_c * (g->kernel_h + g->kernel_w) + 2u * g->out_c;
    ly->out_frac = 0;
    return EL_OK;
}

void el_scan2d_scratch(const el_layer_t *ly, uint32_t *nonzero, uint32_t *plane)
{
    *nonzero = 0;
    *plane = ly->w_cols;                      /* a channel's row of gradient sums */
}

/* conv2d (docs/numerics.md §5c): the kernels of el_conv2d.h and the layer ops of
 * el_layers.h, one for one with edgelearn/ops/layers/conv2d.py. */
#include "el_conv2d.h"
#include "el_kernels.h"
#include "el_layers.h"
#include "el_numerics.h"

/* The outputs whose window holds an input at padded coordinate t (= index + padding): the o
 * with 0 <= t - o stride < kernel and o < out, as [*lo, *hi). */
static void reach(int32_t t, int32_t kernel, int32_t stride, int32_t out, int32_t *lo, int32_t *hi)
{
    const int32_t first = t - kernel + 1, last = t / stride + 1;
    *lo = first <= 0 ? 0 : (first + stride - 1) / stride;
    *hi = last < out ? last : out;
}

void el_conv2d_sums(const int16_t *W, const int32_t *x, const el_window_t *g, const int32_t *nonzero, uint32_t n,
                    uint32_t co, int64_t *sums)
{
    const int32_t in_h = g->in_h, in_w = g->in_w, out_h = g->out_h, out_w = g->out_w;
    const int32_t kh = g->kernel_h, kw = g->kernel_w, sh = g->stride_h, sw = g->stride_w;
    const int32_t hw = in_h * in_w, taps = (int32_t)g->in_c * kh * kw;
    const int16_t *Wc = W + (size_t)co * (size_t)taps;
    int32_t oy, ox, p, y_lo, y_hi, x_lo, x_hi;
    uint32_t k;
    for (p = 0; p < out_h * out_w; p++) sums[p] = 0;
    for (k = 0; k < n; k++) {              /* each non-zero input into the outputs its window reaches */
        const int32_t i = nonzero[k], ci = i / hw, iy = (i - ci * hw) / in_w, ix = i - ci * hw - iy * in_w;
        const int64_t xv = x[i];
        reach(iy + g->pad_h, kh, sh, out_h, &y_lo, &y_hi);
        reach(ix + g->pad_w, kw, sw, out_w, &x_lo, &x_hi);
        for (oy = y_lo; oy < y_hi; oy++) {
            /* the tap (ky, kx) output (oy, ox) reads this input with: row - ox sw */
            const int16_t *row = Wc + ci * kh * kw + (iy + g->pad_h - oy * sh) * kw + ix + g->pad_w;
            int64_t *out = sums + oy * out_w;
            for (ox = x_lo; ox < x_hi; ox++) out[ox] += (int64_t)row[-ox * sw] * xv;
        }
    }
}

void el_conv2d_current(const int16_t *W, const int32_t *x, int x_frac, int w_frac, const el_window_t *g,
                       int32_t *nonzero, int64_t *plane, int32_t *cur)
{
    const uint32_t P = (uint32_t)g->out_h * g->out_w;
    uint32_t co, n = el_nonzero_index(x, (uint32_t)g->in_c * g->in_h * g->in_w, nonzero);
    for (co = 0; co < g->out_c; co++) {
        el_conv2d_sums(W, x, g, nonzero, n, co, plane);
        el_current_from_sums(plane, P, x_frac, w_frac, cur + (size_t)co * P);
    }
}

uint32_t el_conv2d_back(const int16_t *W, const int32_t *d, const el_window_t *g, int64_t *back)
{
    const int32_t in_h = g->in_h, in_w = g->in_w, out_w = g->out_w, kh = g->kernel_h, kw = g->kernel_w;
    const int32_t P = (int32_t)g->out_h * out_w, hw = in_h * in_w, taps = (int32_t)g->in_c * kh * kw;
    int32_t co, p, ci, ky, kx;
    uint32_t active = 0;
    el_zero(back, (size_t)g->in_c * (size_t)hw * sizeof(int64_t));
    for (co = 0; co < g->out_c; co++) {
        for (p = 0; p < P; p++) {          /* event-driven over the non-zero errors */
            const int64_t dv = d[co * P + p];
            const int32_t oy = p / out_w, ox = p - oy * out_w;
            if (dv == 0) continue;
            active++;
            for (ci = 0; ci < g->in_c; ci++) {
                const int16_t *Wt = W + (size_t)co * (size_t)taps + (size_t)ci * (size_t)(kh * kw);
                for (ky = 0; ky < kh; ky++) {
                    const int32_t iy = oy * g->stride_h + ky - g->pad_h;
                    if (iy < 0 || iy >= in_h) continue;
                    for (kx = 0; kx < kw; kx++) {
                        const int32_t ix = ox * g->stride_w + kx - g->pad_w;
                        if (ix >= 0 && ix < in_w) back[ci * hw + iy * in_w + ix] += (int64_t)Wt[ky * kw + kx] * dv;
                    }
                }
            }
        }
    }
    return active;
}

/* acc[c] = sat_sum(acc[c], d[co][p] x^[the input tap c of p reads]) for every position p of channel co
 * with a non-zero error, ascending, and every tap c inside the source; returns how many there were. */
static uint32_t add_tap_terms(const int32_t *d, const int32_t *x_tr, const el_window_t *g, uint32_t co, int64_t *acc)
{
    const int32_t in_h = g->in_h, in_w = g->in_w, out_w = g->out_w, kh = g->kernel_h, kw = g->kernel_w;
    const int32_t P = (int32_t)g->out_h * out_w;
    int32_t p, ci, ky, kx;
    uint32_t active = 0;
    for (p = 0; p < P; p++) {
        const int64_t dv = d[(int32_t)co * P + p];
        const int32_t oy = p / out_w;
        const int32_t y0 = oy * g->stride_h - g->pad_h, x0 = (p - oy * out_w) * g->stride_w - g->pad_w;
        const int32_t ky_lo = y0 < 0 ? -y0 : 0, ky_hi = in_h - y0 < kh ? in_h - y0 : kh;
        const int32_t kx_lo = x0 < 0 ? -x0 : 0, kx_hi = in_w - x0 < kw ? in_w - x0 : kw;
        if (dv == 0) continue;
        active++;
        for (ci = 0; ci < g->in_c; ci++)
            for (ky = ky_lo; ky < ky_hi; ky++) {
                int64_t *a = acc + (ci * kh + ky) * kw;
                const int32_t *xt = x_tr + (ci * in_h + y0 + ky) * in_w + x0;
                for (kx = kx_lo; kx < kx_hi; kx++) a[kx] = el_sat_sum(a[kx], dv * xt[kx]);
            }
    }
    return active;
}

void el_conv2d_update_weights(int16_t *W, const int32_t *d, const int32_t *x_tr, const el_window_t *g, int shift,
                              uint32_t *rng, int64_t *acc)
{
    const uint32_t taps = (uint32_t)g->in_c * g->kernel_h * g->kernel_w;
    uint32_t co, c;
    for (co = 0; co < g->out_c; co++) {
        int16_t *w = W + (size_t)co * taps;
        for (c = 0; c < taps; c++) acc[c] = 0;
        if (add_tap_terms(d, x_tr, g, co, acc) == 0) continue;
        for (c = 0; c < taps; c++)       /* taps row-major: one draw per non-zero sum */
            if (acc[c] != 0) w[c] = el_sat16(w[c] - el_stochastic_shift(acc[c], shift, rng));
    }
}

void el_conv2d_weight_grads(int64_t *gW, const int32_t *d, const int32_t *x_tr, const el_window_t *g)
{
    const uint32_t taps = (uint32_t)g->in_c * g->kernel_h * g->kernel_w;
    uint32_t co;
    for (co = 0; co < g->out_c; co++) (void)add_tap_terms(d, x_tr, g, co, gW + (size_t)co * taps);
}

/* ---- the layer ops (el_layers.h) ------------------------------------------------ */

void el_layer_forward_conv2d(const el_layer_t *ly, const void *W, const int32_t *x, const uint8_t *s, int x_frac,
                             int32_t *nonzero, int64_t *plane, int32_t *cur, uint8_t *out)
{
    const el_window_t g = el_window_of(ly);
    (void)s, (void)out;
    el_conv2d_current(W, x, x_frac, ly->weight_frac, &g, nonzero, plane, cur);
}

uint32_t el_layer_back_conv2d(const el_layer_t *ly, const void *W, const int32_t *d, const uint8_t *s,
                              int64_t *back)
{
    const el_window_t g = el_window_of(ly);
    (void)s;
    return el_conv2d_back(W, d, &g, back);
}

void el_layer_update_conv2d(const el_layer_t *ly, void *W, const int32_t *d, const int32_t *x_tr, int shift,
                            uint32_t *rng, int32_t *nonzero, int64_t *plane)
{
    const el_window_t g = el_window_of(ly);
    (void)nonzero;
    el_conv2d_update_weights(W, d, x_tr, &g, shift, rng, plane);
}

void el_layer_grads_conv2d(const el_layer_t *ly, int64_t *gW, const int32_t *d, const int32_t *x_tr, int32_t *nonzero)
{
    const el_window_t g = el_window_of(ly);
    (void)nonzero;
    el_conv2d_weight_grads(gW, d, x_tr, &g);
}

el_status_t el_conv2d_window_check(const el_window_t *g, int binary_source, el_layer_t *ly)
{
    const uint32_t taps = (uint32_t)g->kernel_h * g->kernel_w;
    (void)binary_source;                      /* a convolution reads any source */
    /* the transposed convolution sums out_c kh kw terms per input: exact below 2^17 (numerics.md §8) */
    if ((uint64_t)g->out_c * taps > EL_MAX_LAYER_SIZE) return EL_ERR_VALUE;
    ly->w_rows = g->out_c;
    ly->w_cols = g->in_c * taps;
    ly->out_frac = 0;
    return EL_OK;
}

void el_conv2d_scratch(const el_layer_t *ly, uint32_t *nonzero, uint32_t *plane)
{
    const el_window_t g = el_window_of(ly);
    *nonzero = el_conv2d_nonzero_size(&g);
    *plane = el_conv2d_sums_size(&g);
}

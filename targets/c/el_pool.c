/* Pooling (docs/numerics.md §5c): the kernels of el_pool.h and the layer ops of el_layers.h,
 * one for one with edgelearn/ops/layers/pool.py. */
#include "el_pool.h"
#include "el_kernels.h"
#include "el_layers.h"

/* The source rows [y0, y1) and columns [x0, x1) of output (oy, ox)'s window, padding cut off. */
typedef struct { int32_t y0, y1, x0, x1; } bounds_t;

static bounds_t window_bounds(const el_window_t *g, int32_t oy, int32_t ox)
{
    const int32_t y = oy * g->stride_h - g->pad_h, x = ox * g->stride_w - g->pad_w;
    bounds_t b;
    b.y0 = y > 0 ? y : 0;
    b.y1 = y + g->kernel_h < g->in_h ? y + g->kernel_h : g->in_h;
    b.x0 = x > 0 ? x : 0;
    b.x1 = x + g->kernel_w < g->in_w ? x + g->kernel_w : g->in_w;
    return b;
}

void el_avgpool_forward(const uint8_t *s, const el_window_t *g, uint8_t *out)
{
    int32_t c, oy, ox, iy, ix;
    for (c = 0; c < g->in_c; c++)
        for (oy = 0; oy < g->out_h; oy++)
            for (ox = 0; ox < g->out_w; ox++) {
                const bounds_t b = window_bounds(g, oy, ox);
                int32_t count = 0;
                for (iy = b.y0; iy < b.y1; iy++)
                    for (ix = b.x0; ix < b.x1; ix++) count += s[(c * g->in_h + iy) * g->in_w + ix];
                out[(c * g->out_h + oy) * g->out_w + ox] = (uint8_t)count;
            }
}

void el_maxpool_forward(const uint8_t *s, const el_window_t *g, uint8_t *out)
{
    int32_t c, oy, ox, iy, ix;
    for (c = 0; c < g->in_c; c++)
        for (oy = 0; oy < g->out_h; oy++)
            for (ox = 0; ox < g->out_w; ox++) {
                const bounds_t b = window_bounds(g, oy, ox);
                uint8_t fired = 0;
                for (iy = b.y0; iy < b.y1; iy++)
                    for (ix = b.x0; ix < b.x1; ix++)
                        if (s[(c * g->in_h + iy) * g->in_w + ix] != 0) fired = 1;
                out[(c * g->out_h + oy) * g->out_w + ox] = fired;
            }
}

uint32_t el_avgpool_back(const int32_t *d, const el_window_t *g, int64_t *back)
{
    int32_t c, oy, ox, iy, ix;
    uint32_t active = 0;
    el_zero(back, (size_t)g->in_c * g->in_h * g->in_w * sizeof(int64_t));
    for (c = 0; c < g->in_c; c++)
        for (oy = 0; oy < g->out_h; oy++)
            for (ox = 0; ox < g->out_w; ox++) {
                const int64_t dv = d[(c * g->out_h + oy) * g->out_w + ox];
                bounds_t b;
                if (dv == 0) continue;     /* event-driven over the non-zero errors */
                active++;
                b = window_bounds(g, oy, ox);
                for (iy = b.y0; iy < b.y1; iy++)
                    for (ix = b.x0; ix < b.x1; ix++) back[(c * g->in_h + iy) * g->in_w + ix] += dv;
            }
    return active;
}

uint32_t el_maxpool_back(const int32_t *d, const el_window_t *g, const uint8_t *s, int64_t *back)
{
    int32_t c, oy, ox, iy, ix;
    uint32_t active = 0;
    el_zero(back, (size_t)g->in_c * g->in_h * g->in_w * sizeof(int64_t));
    for (c = 0; c < g->in_c; c++)
        for (oy = 0; oy < g->out_h; oy++)
            for (ox = 0; ox < g->out_w; ox++) {
                const int64_t dv = d[(c * g->out_h + oy) * g->out_w + ox];
                int32_t count = 0, spiking = 0;
                bounds_t b;
                if (dv == 0) continue;
                active++;
                b = window_bounds(g, oy, ox);
                for (iy = b.y0; iy < b.y1; iy++)
                    for (ix = b.x0; ix < b.x1; ix++) {
                        const int32_t i = (c * g->in_h + iy) * g->in_w + ix;
                        if (s[i] != 0) {
                            count++;
                            spiking = i;
                        }
                    }
                if (count == 1) {
                    back[spiking] += dv;
                } else if (count == 0) {   /* any input alone would turn the window on */
                    for (iy = b.y0; iy < b.y1; iy++)
                        for (ix = b.x0; ix < b.x1; ix++) back[(c * g->in_h + iy) * g->in_w + ix] += dv;
                }
            }
    return active;
}

/* ---- the layer ops (el_layers.h) ------------------------------------------------ */

void el_layer_forward_avgpool(const el_layer_t *ly, const void *W, const int32_t *x, const uint8_t *s, int x_frac,
                              int32_t *nonzero, int64_t *plane, int32_t *cur, uint8_t *out)
{
    const el_window_t g = el_window_of(ly);
    (void)W, (void)x, (void)x_frac, (void)nonzero, (void)plane, (void)cur;
    el_avgpool_forward(s, &g, out);
}

uint32_t el_layer_back_avgpool(const el_layer_t *ly, const void *W, const int32_t *d, const uint8_t *s,
                               int64_t *back)
{
    const el_window_t g = el_window_of(ly);
    (void)W, (void)s;
    return el_avgpool_back(d, &g, back);
}

void el_layer_forward_maxpool(const el_layer_t *ly, const void *W, const int32_t *x, const uint8_t *s, int x_frac,
                              int32_t *nonzero, int64_t *plane, int32_t *cur, uint8_t *out)
{
    const el_window_t g = el_window_of(ly);
    (void)W, (void)x, (void)x_frac, (void)nonzero, (void)plane, (void)cur;
    el_maxpool_forward(s, &g, out);
}

uint32_t el_layer_back_maxpool(const el_layer_t *ly, const void *W, const int32_t *d, const uint8_t *s,
                               int64_t *back)
{
    const el_window_t g = el_window_of(ly);
    (void)W;
    return el_maxpool_back(d, &g, s, back);
}

el_status_t el_avgpool_window_check(const el_window_t *g, int binary_source, el_layer_t *ly)
{
    uint32_t taps = (uint32_t)g->kernel_h * g->kernel_w;
    if (!binary_source) return EL_ERR_VALUE;  /* pooling reads 0/1 spikes */
    if ((taps & (taps - 1u)) != 0 || taps > EL_MAX_AVERAGE_WINDOW) return EL_ERR_VALUE;   /* a shift, a byte */
    ly->w_rows = ly->w_cols = 0;
    for (ly->out_frac = 0; taps > 1u; taps >>= 1) ly->out_frac++;   /* the average in Q(log2 kh kw) */
    return EL_OK;
}

el_status_t el_maxpool_window_check(const el_window_t *g, int binary_source, el_layer_t *ly)
{
    (void)g;
    if (!binary_source) return EL_ERR_VALUE;
    ly->w_rows = ly->w_cols = 0;
    ly->out_frac = 0;
    return EL_OK;
}

void el_pool_scratch(const el_layer_t *ly, uint32_t *nonzero, uint32_t *plane)
{
    (void)ly;                                 /* a pool reads its input and writes its output: no scratch */
    *nonzero = *plane = 0;
}

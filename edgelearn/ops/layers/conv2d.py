"""2-D convolution: the current of a population of [out_c, out_h, out_w] neurons from a
[in_c, in_h, in_w] source through shared kernels, and its learning.

    I[co, oy, ox] = sum_{ci, ky, kx} W[co, (ci kh + ky) kw + kx] x[ci, oy sh + ky - ph, ox sw + kx - pw]

(zero outside the source: padding; ops/layers/window.py). W [out_c, in_c kh kw] int16 in
Q(15-wf).wf, x in Q(x_frac), I in Q16, as dense (docs/numerics.md §5c).

Fixed point: every current is an exact int64 sum, rounded by wf + x_frac - 16 and
saturated, exactly as dense's; the sum is gathered by scattering each non-zero input into
the outputs it reaches, one output channel at a time (``conv2d_sums``, an int64 plane of
scratch), so silent inputs cost nothing. A convolution keeps no sums of a direct input for the
sample (docs/numerics.md §5b): every step's per-step update changes the kernels of nearly
every channel, whose sums would all be summed again, so they would only cost their memory. Learning (STOP): the errors of the outputs go back
through the transposed convolution (``conv2d_back``), event-driven over the non-zero
errors; a kernel weight's gradient is the sum over the output positions of d x^ (x^ the
input trace at the position the tap reads), summed exactly in ascending position order,
then one stochastic rounding per weight whose sum is non-zero (``conv2d_update_weights``).
C twin: targets/c/el_conv2d.c, one function per function here."""
from __future__ import annotations

import numpy as np
from numba import njit

from ... import contract as ct
from ...errors import ModelError
from ...numerics import sat16, sat_sum, shift_with_draw, xorshift32
from ..registry import LayerKind, register_layer
from .dense import current_from_sums, nonzero_index
from .window import G, Geometry, col2im, im2col


# -- float64 ------------------------------------------------------------------------------------

def current_float(W: np.ndarray, x: np.ndarray, g: Geometry) -> np.ndarray:
    """The currents of a batch x [B, n_in]: [B, out_c * out_h * out_w]."""
    out = im2col(x, g) @ W.T                                    # [B, P, out_c]
    return out.transpose(0, 2, 1).reshape(x.shape[0], -1)


def back_float(W: np.ndarray, d: np.ndarray, g: Geometry, x=None) -> np.ndarray:
    """dE/dx: the errors d [B, n_out] through the transposed convolution, [B, n_in]."""
    per_position = d.reshape(d.shape[0], g.out_c, g.plane).transpose(0, 2, 1) @ W    # [B, P, in_c taps]
    return col2im(per_position, g)


def grad_float(d: np.ndarray, x_tr: np.ndarray, g: Geometry):
    """dE/dW = sum over the batch and the positions of d x^ at each tap, for the output
    channels with an error: (channels, [channels, in_c taps])."""
    d3 = d.reshape(d.shape[0], g.out_c, g.plane)
    rows = np.flatnonzero(np.any(d3 != 0, axis=(0, 2)))
    return rows, np.tensordot(d3[:, rows], im2col(x_tr, g), axes=([0, 2], [0, 1]))


# -- fixed point: the kernels -------------------------------------------------------------------

@njit(cache=True)
def reach(t, kernel, stride, out):
    """The outputs whose window holds an input at padded coordinate t (= index + padding):
    o with 0 <= t - o stride < kernel, o < out, as the range [lo, hi)."""
    first = t - kernel + 1
    lo = 0 if first <= 0 else (first + stride - 1) // stride
    return lo, min(t // stride + 1, out)


@njit(cache=True)
def conv2d_sums(W, x, g, nonzero, n, co, sums):
    """sums[p] = exact int64 sum of output channel co's currents over the plane p =
    oy out_w + ox, from the n non-zero inputs listed in ``nonzero`` (each scattered into the
    outputs whose window holds it)."""
    in_h, in_w, out_h, out_w = g[G.in_h], g[G.in_w], g[G.out_h], g[G.out_w]
    kh, kw, sh, sw, ph, pw = g[G.kernel_h], g[G.kernel_w], g[G.stride_h], g[G.stride_w], g[G.pad_h], g[G.pad_w]
    hw = in_h * in_w
    sums[:] = 0
    for k in range(n):
        i = nonzero[k]
        ci = i // hw
        iy = (i - ci * hw) // in_w
        ix = i - ci * hw - iy * in_w
        xv = np.int64(x[i])
        tap = ci * kh * kw
        y_lo, y_hi = reach(iy + ph, kh, sh, out_h)
        x_lo, x_hi = reach(ix + pw, kw, sw, out_w)
        for oy in range(y_lo, y_hi):
            row = tap + (iy + ph - oy * sh) * kw + ix + pw       # the tap (ky, kx) of output (oy, ox) is
            for ox in range(x_lo, x_hi):                         # row - ox sw
                sums[oy * out_w + ox] += np.int64(W[co, row - ox * sw]) * xv


@njit(cache=True)
def conv2d_current(W, x, x_frac, w_frac, g, nonzero, plane, cur):
    """cur = the convolution of x in Q16. Scratch: ``nonzero`` (len(x) int32: the non-zero
    inputs) and ``plane`` (out_h out_w int64: one channel's sums)."""
    n = nonzero_index(x, nonzero)
    P = g[G.out_h] * g[G.out_w]
    for co in range(g[G.out_c]):
        conv2d_sums(W, x, g, nonzero, n, co, plane[:P])
        current_from_sums(plane[:P], x_frac, w_frac, cur[co * P:(co + 1) * P])


@njit(cache=True)
def conv2d_back(W, d, g, back):
    """back = the transposed convolution of the errors d (one per output neuron), exact and
    unsaturated, event-driven over the non-zero errors; returns how many there were."""
    in_c, in_h, in_w, out_w = g[G.in_c], g[G.in_h], g[G.in_w], g[G.out_w]
    kh, kw, sh, sw, ph, pw = g[G.kernel_h], g[G.kernel_w], g[G.stride_h], g[G.stride_w], g[G.pad_h], g[G.pad_w]
    P, hw = g[G.out_h] * out_w, in_h * in_w
    back[:] = 0
    active = 0
    for co in range(g[G.out_c]):
        for p in range(P):
            dv = np.int64(d[co * P + p])
            if dv == 0:
                continue
            active += 1
            oy = p // out_w
            ox = p - oy * out_w
            for ci in range(in_c):
                for ky in range(kh):
                    iy = oy * sh + ky - ph
                    if iy < 0 or iy >= in_h:
                        continue
                    for kx in range(kw):
                        ix = ox * sw + kx - pw
                        if 0 <= ix < in_w:
                            back[ci * hw + iy * in_w + ix] += np.int64(W[co, (ci * kh + ky) * kw + kx]) * dv
    return active


@njit(cache=True)
def add_tap_terms(d, x_tr, g, co, acc):
    """acc[c] = sat_sum(acc[c], d[co, p] x^[the input tap c of p reads]) for every position p of
    output channel co with a non-zero error, ascending, and every tap c inside the source:
    each tap's terms in ascending position order. Returns how many errors were non-zero."""
    in_c, in_h, in_w, out_w = g[G.in_c], g[G.in_h], g[G.in_w], g[G.out_w]
    kh, kw, sh, sw, ph, pw = g[G.kernel_h], g[G.kernel_w], g[G.stride_h], g[G.stride_w], g[G.pad_h], g[G.pad_w]
    P = g[G.out_h] * out_w
    active = 0
    for p in range(P):
        dv = np.int64(d[co * P + p])
        if dv == 0:
            continue
        active += 1
        oy = p // out_w
        y0, x0 = oy * sh - ph, (p - oy * out_w) * sw - pw        # the window's corner in the source
        for ci in range(in_c):
            for ky in range(max(0, -y0), min(kh, in_h - y0)):
                c = (ci * kh + ky) * kw
                at = (ci * in_h + y0 + ky) * in_w + x0
                for kx in range(max(0, -x0), min(kw, in_w - x0)):
                    acc[c + kx] = sat_sum(acc[c + kx], dv * x_tr[at + kx])
    return active


@njit(cache=True)
def conv2d_update_weights(W, d, x_tr, g, shift, rng, acc):
    """W -= SR(gradient, shift) now: for each output channel with errors, each tap (ci, ky,
    kx) row-major, its exact gradient sum (``add_tap_terms``), then one draw if it is
    non-zero. ``acc``: int64 scratch of in_c kh kw (a channel's tap sums)."""
    taps = W.shape[1]
    state = np.int64(rng[0])             # the stream in a local: one draw per non-zero sum, in order
    for co in range(g[G.out_c]):
        acc[:taps] = 0
        if add_tap_terms(d, x_tr, g, co, acc) == 0:
            continue
        for c in range(taps):
            G_c = acc[c]
            if G_c == 0:
                continue
            if shift > 0:
                state = xorshift32(state)
                G_c = shift_with_draw(G_c, shift, state)
            else:
                G_c <<= -shift                  # SR draws nothing for shifts <= 0
            W[co, c] = sat16(W[co, c] - G_c)
    rng[0] = np.uint32(state)


@njit(cache=True)
def conv2d_weight_grads(gW, d, x_tr, g):
    """gW += gradient (exact, saturating sums, each tap's terms in ascending position order):
    for updates once per sample or batch."""
    for co in range(g[G.out_c]):
        add_tap_terms(d, x_tr, g, co, gW[co])


# -- the layer ops (registry.LAYER_OPS) -----------------------------------------------------------

@njit(cache=True)
def forward(W, x, s, x_frac, w_frac, g, nonzero, plane, cur, out):
    conv2d_current(W, x, x_frac, w_frac, g, nonzero, plane, cur)


@njit(cache=True)
def back(W, d, g, s, out):
    return conv2d_back(W, d, g, out)


@njit(cache=True)
def update(W, d, x_tr, g, shift, rng, nonzero, plane):
    conv2d_update_weights(W, d, x_tr, g, shift, rng, plane)


@njit(cache=True)
def grads(gW, d, x_tr, g, nonzero):
    conv2d_weight_grads(gW, d, x_tr, g)


def weight_shape(n_out: int, fan_in: int, g: Geometry) -> tuple[int, int]:
    return g.out_c, g.in_c * g.taps


def check(where: str, binary_source: bool, g: Geometry) -> None:
    """The transposed convolution sums at most out_c kh kw terms of 2^46 per input: exact in
    int64 below 2^17 terms (docs/numerics.md §8), the bound of a dense layer above."""
    if g.out_c * g.taps > ct.MAX_LAYER_SIZE:
        raise ModelError(f"{where}: {g.out_c} channels x a {g.kernel_h}x{g.kernel_w} kernel = {g.out_c * g.taps} "
                         f"taps per input; at most {ct.MAX_LAYER_SIZE}")


def out_frac(g: Geometry) -> int:
    return 0


def scratch(n_in: int, g: Geometry) -> dict[str, int]:
    """Its input widened to int32, the non-zero inputs, and one channel's sums or its tap sums
    (el_conv2d_nonzero_size, el_conv2d_plane_size)."""
    return {"layer_input": n_in, "nonzero_index": n_in, "plane_sums": max(g.plane, g.in_c * g.taps)}


CONV2D = register_layer(LayerKind(
    name="conv2d", code=1, has_neurons=True, windowed=True, weight_shape=weight_shape, check=check,
    out_frac=out_frac, forward_float=current_float, back_float=back_float, grad_float=grad_float,
    fixed={"forward": forward, "back": back, "update": update, "grads": grads},
    c_ops={op: f"el_layer_{op}_conv2d" for op in ("forward", "back", "update", "grads")},
    scratch=scratch, c_scratch="el_conv2d_scratch", c_window_check="el_conv2d_window_check"))

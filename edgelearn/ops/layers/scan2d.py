"""A one-time-step layer (after Yao et al., ACML 2023, arXiv 2401.10843; docs/one-step.md): a
population of [C, H, W] neurons that reads a [C_in, H, W] source through two receptive fields,
a column (kh x 1) and a row (1 x kw) centred on each position, and the spikes of its own
neighbours already computed in the same step, in a fixed scan order: positions row by row
(y, then x), every channel of a position at once. The neuron at (c, y, x) takes

    I = sum_{ci, ky} Wcol[c, ci, ky] x[ci, y + ky - kh//2, x]          (the column field)
      + sum_{ci, kx} Wrow[c, ci, kx] x[ci, y, x + kx - kw//2]          (the row field)
      + sum_{c'} Wleft[c, c'] s[c', y, x-1] + Wup[c, c'] s[c', y-1, x]   (this step's neighbours)

one learned linear projection of the concatenated feed-forward and recurrent inputs, its
weights one row per channel: W[c] = [Wcol (C_in kh) | Wrow (C_in kw) | Wleft (C) | Wup (C)].
Its neurons are any registered spiking kind (a learnable threshold per neuron, as every STOP
layer's), stepped neuron by neuron as the scan reaches them: on a device the scan plays the
role of time, and a model runs at T = 1. Zero outside the source (padding kh//2, kw//2: the
output has the source's height and width, kh and kw odd, stride 1).

Fixed point (docs/numerics.md §5d): the feed-forward sum (Q(wf + x_frac)) and the recurrent sum
of weights (spikes: Q(wf)) meet exactly in int64, the recurrent one lifted by x_frac, then one
rounding by wf + x_frac - 16 and saturation, as every current. STOP through it: the recurrence
carries no derivative (it is detached as STOP detaches the temporal paths of other layers): a
neuron's error comes from the layer above only, and the recurrent weights learn from the traces
of the neighbours' spikes, r^ = a r^ + s, kept per neuron after the feed-forward input traces
(the layer's traces: C_in H W + C H W). C twin: targets/c/el_scan2d.c."""
from __future__ import annotations

import numpy as np
from numba import njit

from ... import contract as ct
from ...errors import ModelError
from ...numerics import STATE_FRAC, mul_state, round_shift, sat16, sat32, sat_sum, shift_with_draw, xorshift32
from ..builtin_steps import builtin_step
from ..registry import LayerKind, register_layer
from .conv2d import back_float as conv_back_float, current_float as conv_current_float, im2col
from .window import G, Geometry


def fields(g: Geometry) -> tuple[Geometry, Geometry]:
    """The column and the row receptive fields as convolutions over the source."""
    common = dict(in_c=g.in_c, in_h=g.in_h, in_w=g.in_w, out_c=g.out_c, out_h=g.out_h, out_w=g.out_w,
                  stride_h=1, stride_w=1)
    return (Geometry(**common, kernel_h=g.kernel_h, kernel_w=1, pad_h=g.pad_h, pad_w=0),
            Geometry(**common, kernel_h=1, kernel_w=g.kernel_w, pad_h=0, pad_w=g.pad_w))


def columns(g: Geometry) -> tuple[slice, slice, slice, slice]:
    """W's column blocks: the column field, the row field, the left and the upper neighbour."""
    a, b = g.in_c * g.kernel_h, g.in_c * (g.kernel_h + g.kernel_w)
    return slice(0, a), slice(a, b), slice(b, b + g.out_c), slice(b + g.out_c, b + 2 * g.out_c)


# -- float64 ------------------------------------------------------------------------------------

def feed_forward_float(W: np.ndarray, x: np.ndarray, g: Geometry) -> np.ndarray:
    """The two fields' currents [B, C H W] (complex-step ready)."""
    column, row = fields(g)
    cs, rs, _, _ = columns(g)
    return conv_current_float(W[:, cs], x, column) + conv_current_float(W[:, rs], x, row)


def scan_float(W: np.ndarray, x: np.ndarray, g: Geometry, kind, params, state):
    """One step of the scan for a batch x [B, n_in]: (spikes, new state) as a neuron kind's
    step_float gives them. The neighbours' spikes enter with their real part only: the
    recurrence carries no derivative (STOP's detachment; the complex-step tests rely on it)."""
    _, _, ls, us = columns(g)
    C, Wd, P = g.out_c, g.out_w, g.plane
    ff = feed_forward_float(W, x, g).reshape(x.shape[0], C, P)
    th = np.broadcast_to(params.threshold, (C * P,)).reshape(C, P)
    V, U = state.membrane.reshape(-1, C, P).copy(), state.potential.reshape(-1, C, P).copy()
    spikes = np.zeros((x.shape[0], C, P), dtype=ff.dtype)
    values = params._asdict()
    for p in range(P):
        y, xx = divmod(p, Wd)
        cur = ff[:, :, p]
        if xx > 0:
            cur = cur + spikes[:, :, p - 1].real @ W[:, ls].T
        if y > 0:
            cur = cur + spikes[:, :, p - Wd].real @ W[:, us].T
        here = kind.Params(**{**values, "threshold": th[:, p]})
        s, new = kind.step_float(cur, kind.State(V[:, :, p], U[:, :, p]), here)
        spikes[:, :, p], V[:, :, p], U[:, :, p] = s, new.membrane, new.potential
    return spikes.reshape(x.shape[0], -1), kind.State(V.reshape(x.shape[0], -1), U.reshape(x.shape[0], -1))


def back_float(W: np.ndarray, d: np.ndarray, g: Geometry, x=None) -> np.ndarray:
    """dE/dx through the two fields (the recurrence is detached)."""
    column, row = fields(g)
    cs, rs, _, _ = columns(g)
    return conv_back_float(W[:, cs], d, column) + conv_back_float(W[:, rs], d, row)


def grad_float(d: np.ndarray, x_tr: np.ndarray, g: Geometry):
    """dE/dW from the feed-forward traces x^ (x_tr[:, :n_in]) and the neighbours' spike traces
    r^ (x_tr[:, n_in:]), for the channels with an error."""
    column, row = fields(g)
    cs, rs, ls, us = columns(g)
    n_in = g.in_c * g.in_h * g.in_w
    C, H, Wd = g.out_c, g.out_h, g.out_w
    d3 = d.reshape(d.shape[0], C, g.plane)
    rows = np.flatnonzero(np.any(d3 != 0, axis=(0, 2)))
    grad = np.zeros((len(rows), W_cols(g)), dtype=np.result_type(d, x_tr))
    for part, field in ((cs, column), (rs, row)):
        grad[:, part] = np.tensordot(d3[:, rows], im2col(x_tr[:, :n_in], field), axes=([0, 2], [0, 1]))
    dg = d.reshape(d.shape[0], C, H, Wd)[:, rows]
    r = x_tr[:, n_in:].reshape(d.shape[0], C, H, Wd)
    grad[:, ls] = np.einsum("bcyx,bkyx->ck", dg[:, :, :, 1:], r[:, :, :, :-1], optimize=True)
    grad[:, us] = np.einsum("bcyx,bkyx->ck", dg[:, :, 1:, :], r[:, :, :-1, :], optimize=True)
    return rows, grad


def W_cols(g: Geometry) -> int:
    return g.in_c * (g.kernel_h + g.kernel_w) + 2 * g.out_c


# -- fixed point --------------------------------------------------------------------------------

@njit(cache=True)
def scan2d_step(W, x, x_frac, w_frac, g, code, a, th, reset_shift, V, s, U, cur):
    """One step of the scan, positions row by row: at each, every channel's current from the two
    fields (exact, over the non-zero inputs) and the spikes its left and upper neighbours fired
    this step, then the neuron step of those channels (kind ``code``, built in)."""
    in_c, in_h, in_w, C, H, Wd = g[G.in_c], g[G.in_h], g[G.in_w], g[G.out_c], g[G.out_h], g[G.out_w]
    kh, kw, ph, pw = g[G.kernel_h], g[G.kernel_w], g[G.pad_h], g[G.pad_w]
    P, row0 = H * Wd, in_c * kh
    left0 = in_c * (kh + kw)
    up0 = left0 + C
    shift = w_frac + x_frac - STATE_FRAC
    for y in range(H):
        for xx in range(Wd):
            p = y * Wd + xx
            for c in range(C):
                acc = np.int64(0)
                for ci in range(in_c):
                    for ky in range(max(0, ph - y), min(kh, in_h + ph - y)):
                        v = x[(ci * in_h + y + ky - ph) * in_w + xx]
                        if v != 0:
                            acc += np.int64(W[c, ci * kh + ky]) * np.int64(v)
                    for kx in range(max(0, pw - xx), min(kw, in_w + pw - xx)):
                        v = x[(ci * in_h + y) * in_w + xx + kx - pw]
                        if v != 0:
                            acc += np.int64(W[c, row0 + ci * kw + kx]) * np.int64(v)
                rec = np.int64(0)
                for c2 in range(C):                 # this step's spikes of the neighbours scanned
                    if xx > 0 and s[c2 * P + p - 1] != 0:
                        rec += W[c, left0 + c2]
                    if y > 0 and s[c2 * P + p - Wd] != 0:
                        rec += W[c, up0 + c2]
                cur[c * P + p] = sat32(round_shift(acc + (rec << x_frac), shift))
            for c in range(C):                      # then the neurons of the position
                j = c * P + p
                builtin_step(code, cur[j:j + 1], a, th[j:j + 1], reset_shift, V[j:j + 1], s[j:j + 1], U[j:j + 1])


@njit(cache=True)
def scan2d_spike_trace(a, s, r_tr):
    """r^ = a r^ + s (Q16): the neighbours' spike traces, after the scan (the spikes of this step)."""
    for j in range(s.shape[0]):
        r_tr[j] = sat32(mul_state(a, r_tr[j]) + (np.int64(s[j]) << STATE_FRAC))


@njit(cache=True)
def scan2d_back(W, d, g, back):
    """back = the transposed fields of the errors d, exact and unsaturated, event-driven over
    the non-zero errors (the recurrence carries none); returns how many there were."""
    in_c, in_h, in_w, C, Wd = g[G.in_c], g[G.in_h], g[G.in_w], g[G.out_c], g[G.out_w]
    kh, kw, ph, pw = g[G.kernel_h], g[G.kernel_w], g[G.pad_h], g[G.pad_w]
    P, row0 = g[G.out_h] * Wd, in_c * kh
    back[:] = 0
    active = 0
    for c in range(C):
        for p in range(P):
            dv = np.int64(d[c * P + p])
            if dv == 0:
                continue
            active += 1
            y, xx = p // Wd, p % Wd
            for ci in range(in_c):
                for ky in range(max(0, ph - y), min(kh, in_h + ph - y)):
                    back[(ci * in_h + y + ky - ph) * in_w + xx] += np.int64(W[c, ci * kh + ky]) * dv
                for kx in range(max(0, pw - xx), min(kw, in_w + pw - xx)):
                    back[(ci * in_h + y) * in_w + xx + kx - pw] += np.int64(W[c, row0 + ci * kw + kx]) * dv
    return active


@njit(cache=True)
def add_terms(d, x_tr, g, c, acc):
    """acc[k] = sat_sum(acc[k], d[c, p] trace[input k of p]) for the positions p of channel c with
    a non-zero error, ascending, and each of its inputs k inside the source (the fields' x^, then
    the neighbours' r^); returns how many errors were non-zero."""
    in_c, in_h, in_w, C, Wd = g[G.in_c], g[G.in_h], g[G.in_w], g[G.out_c], g[G.out_w]
    kh, kw, ph, pw = g[G.kernel_h], g[G.kernel_w], g[G.pad_h], g[G.pad_w]
    P, row0, n_in = g[G.out_h] * Wd, in_c * kh, in_c * in_h * in_w
    left0 = in_c * (kh + kw)
    up0 = left0 + C
    active = 0
    for p in range(P):
        dv = np.int64(d[c * P + p])
        if dv == 0:
            continue
        active += 1
        y, xx = p // Wd, p % Wd
        for ci in range(in_c):
            for ky in range(max(0, ph - y), min(kh, in_h + ph - y)):
                k = ci * kh + ky
                acc[k] = sat_sum(acc[k], dv * x_tr[(ci * in_h + y + ky - ph) * in_w + xx])
            for kx in range(max(0, pw - xx), min(kw, in_w + pw - xx)):
                k = row0 + ci * kw + kx
                acc[k] = sat_sum(acc[k], dv * x_tr[(ci * in_h + y) * in_w + xx + kx - pw])
        for c2 in range(C):
            if xx > 0:
                acc[left0 + c2] = sat_sum(acc[left0 + c2], dv * x_tr[n_in + c2 * P + p - 1])
            if y > 0:
                acc[up0 + c2] = sat_sum(acc[up0 + c2], dv * x_tr[n_in + c2 * P + p - Wd])
    return active


@njit(cache=True)
def scan2d_update_weights(W, d, x_tr, g, shift, rng, acc):
    """W -= SR(gradient, shift) now: per channel with errors, per input k of W's row ascending,
    its exact sum (``add_terms``), one draw when it is non-zero. ``acc``: int64 scratch of W's
    columns."""
    cols = W.shape[1]
    state = np.int64(rng[0])
    for c in range(g[G.out_c]):
        acc[:cols] = 0
        if add_terms(d, x_tr, g, c, acc) == 0:
            continue
        for k in range(cols):
            q = acc[k]
            if q == 0:
                continue
            if shift > 0:
                state = xorshift32(state)
                q = shift_with_draw(q, shift, state)
            else:
                q <<= -shift
            W[c, k] = sat16(W[c, k] - q)
    rng[0] = np.uint32(state)


@njit(cache=True)
def scan2d_weight_grads(gW, d, x_tr, g):
    """gW += gradient, exact saturating sums term by term (per-sample updates)."""
    for c in range(g[G.out_c]):
        add_terms(d, x_tr, g, c, gW[c])


# -- the layer ops (registry.LAYER_OPS) -----------------------------------------------------------

@njit(cache=True)
def scan(W, x, x_frac, w_frac, g, neuron, leak, th, reset_shift, V, s, U, cur, rec_tr):
    scan2d_step(W, x, x_frac, w_frac, g, neuron, leak, th, reset_shift, V, s, U, cur)
    if rec_tr.shape[0]:                             # learning: the neighbours' traces of this step
        scan2d_spike_trace(leak, s, rec_tr)


@njit(cache=True)
def back(W, d, g, s, out):
    return scan2d_back(W, d, g, out)


@njit(cache=True)
def update(W, d, x_tr, g, shift, rng, nonzero, plane):
    scan2d_update_weights(W, d, x_tr, g, shift, rng, plane)


@njit(cache=True)
def grads(gW, d, x_tr, g, nonzero):
    scan2d_weight_grads(gW, d, x_tr, g)


def weight_shape(n_out: int, fan_in: int, g: Geometry) -> tuple[int, int]:
    return g.out_c, W_cols(g)


def check(where: str, binary_source: bool, g: Geometry) -> None:
    if (g.stride_h, g.stride_w) != (1, 1) or g.kernel_h % 2 == 0 or g.kernel_w % 2 == 0 \
            or (g.pad_h, g.pad_w) != (g.kernel_h // 2, g.kernel_w // 2):
        raise ModelError(f"{where}: a scan2d layer's fields are centred: odd kernels, stride (1, 1) and padding "
                         f"({g.kernel_h // 2}, {g.kernel_w // 2}) for a {g.kernel_h}x{g.kernel_w} window")
    if g.out_c * (g.kernel_h + g.kernel_w) > ct.MAX_LAYER_SIZE:
        raise ModelError(f"{where}: {g.out_c} channels x ({g.kernel_h} + {g.kernel_w}) taps per input; at most "
                         f"{ct.MAX_LAYER_SIZE}")


def out_frac(g: Geometry) -> int:
    return 0


def traces(n_in: int, n_out: int, ring: int) -> int:
    """Its input traces: one per input (the fields'), then one per neuron (the neighbours')."""
    return n_in + n_out


def scratch(n_in: int, g: Geometry) -> dict[str, int]:
    """Its input widened to int32 and one channel's sums of its weights' gradient."""
    return {"layer_input": n_in, "nonzero_index": 0, "plane_sums": W_cols(g)}


SCAN2D = register_layer(LayerKind(
    name="scan2d", code=4, has_neurons=True, windowed=True, weight_shape=weight_shape, check=check,
    out_frac=out_frac, forward_float=feed_forward_float, back_float=back_float, grad_float=grad_float,
    fixed={"scan": scan, "back": back, "update": update, "grads": grads},
    c_ops={op: f"el_layer_{op}_scan2d" for op in ("scan", "back", "update", "grads")},
    scratch=scratch, c_scratch="el_scan2d_scratch", c_window_check="el_scan2d_window_check",
    scan_float=scan_float, traces=traces))

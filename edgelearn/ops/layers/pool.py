"""Pooling of spikes over a kernel window, channel by channel: layers without neurons, a
fixed map of their input (no weights, thresholds, leak or state).

    avgpool:  out[c, oy, ox] = (1 / (kh kw)) sum_{ky, kx} s[c, oy sh + ky - ph, ox sw + kx - pw]
    maxpool:  out[c, oy, ox] = max_{ky, kx} s[...] = OR of the window's spikes

(padding reads as silence: an average counts it in its kh kw, a maximum ignores it;
ops/layers/window.py). Both read the spikes (0/1) of the layer below them, a spiking layer or a
maximum pool, as they lie in ``spikes`` (never the model's input: downsample data before it is
presented). Fixed point (docs/numerics.md §5c): the average is stored exactly as the count of
spikes in the window, in Q(log2 kh kw) (so kh kw is a power of two, at most 128: the count
fits the uint8 output, and the layer above reads it with x_frac = log2 kh kw); the maximum
is a 0/1 spike.

Errors (STOP) carry the derivative of the map: the average's is 1 / (kh kw) for every input
of the window (a shift by log2 kh kw); the OR's, as the multilinear OR(s) = 1 - prod(1 - s_k),
is prod_{k != i} (1 - s_k): every input of a silent window (any of them would turn it on),
the one spiking input of a window with exactly one, nothing when two or more spike (one of
them alone changes nothing). C twin: targets/c/el_pool.c."""
from __future__ import annotations

import numpy as np
from numba import njit

from ...errors import ModelError
from ..registry import LayerKind, register_layer
from .window import G, Geometry, channel_col2im, channel_windows

MAX_AVERAGE_WINDOW = 128        # the largest power of two whose count fits the uint8 output


# -- float64 ------------------------------------------------------------------------------------

def avgpool_float(W, x: np.ndarray, g: Geometry) -> np.ndarray:
    return channel_windows(x, g).sum(axis=-1).reshape(x.shape[0], -1) / g.taps


def maxpool_float(W, x: np.ndarray, g: Geometry) -> np.ndarray:
    """The OR of each window, as 1 - prod(1 - s) (the max of 0/1 spikes; complex-step ready)."""
    return (1.0 - np.prod(1.0 - channel_windows(x, g), axis=-1)).reshape(x.shape[0], -1)


def avgpool_back_float(W, d: np.ndarray, g: Geometry, x=None) -> np.ndarray:
    parts = np.broadcast_to(d.reshape(d.shape[0], g.in_c, g.plane, 1) / g.taps, (d.shape[0], g.in_c, g.plane, g.taps))
    return channel_col2im(np.ascontiguousarray(parts), g)


def maxpool_back_float(W, d: np.ndarray, g: Geometry, x: np.ndarray) -> np.ndarray:
    """d times dOR/ds_i = prod_{k != i} (1 - s_k) for the 0/1 input spikes x."""
    windows = channel_windows(x, g)
    count = windows.sum(axis=-1, keepdims=True)
    alone = (count == 0) | ((count == 1) & (windows == 1))
    return channel_col2im(d.reshape(d.shape[0], g.in_c, g.plane, 1) * alone, g)


# -- fixed point --------------------------------------------------------------------------------

@njit(cache=True)
def window_bounds(g, oy, ox):
    """The source rows and columns of output (oy, ox)'s window inside the source: [y0, y1) x
    [x0, x1) (padding cut off)."""
    y = oy * g[G.stride_h] - g[G.pad_h]
    x = ox * g[G.stride_w] - g[G.pad_w]
    return max(y, 0), min(y + g[G.kernel_h], g[G.in_h]), max(x, 0), min(x + g[G.kernel_w], g[G.in_w])


@njit(cache=True)
def avgpool_forward(s, g, out):
    """out = the number of spikes s in each window (the average in Q(log2 kh kw))."""
    in_h, in_w, out_h, out_w = g[G.in_h], g[G.in_w], g[G.out_h], g[G.out_w]
    for c in range(g[G.in_c]):
        for oy in range(out_h):
            for ox in range(out_w):
                y0, y1, x0, x1 = window_bounds(g, oy, ox)
                count = 0
                for iy in range(y0, y1):
                    for ix in range(x0, x1):
                        count += s[(c * in_h + iy) * in_w + ix]
                out[(c * out_h + oy) * out_w + ox] = count


@njit(cache=True)
def maxpool_forward(s, g, out):
    """out = 1 where any spike s of the window is non-zero (the OR), else 0."""
    in_h, in_w, out_h, out_w = g[G.in_h], g[G.in_w], g[G.out_h], g[G.out_w]
    for c in range(g[G.in_c]):
        for oy in range(out_h):
            for ox in range(out_w):
                y0, y1, x0, x1 = window_bounds(g, oy, ox)
                fired = 0
                for iy in range(y0, y1):
                    for ix in range(x0, x1):
                        if s[(c * in_h + iy) * in_w + ix] != 0:
                            fired = 1
                out[(c * out_h + oy) * out_w + ox] = fired


@njit(cache=True)
def avgpool_back(d, g, back):
    """back[i] = the sum of the errors of the windows holding input i (the 1 / (kh kw) is the
    shift the caller applies), event-driven over non-zero errors; returns their count."""
    in_h, in_w, out_h, out_w = g[G.in_h], g[G.in_w], g[G.out_h], g[G.out_w]
    back[:] = 0
    active = 0
    for c in range(g[G.in_c]):
        for oy in range(out_h):
            for ox in range(out_w):
                dv = np.int64(d[(c * out_h + oy) * out_w + ox])
                if dv == 0:
                    continue
                active += 1
                y0, y1, x0, x1 = window_bounds(g, oy, ox)
                for iy in range(y0, y1):
                    for ix in range(x0, x1):
                        back[(c * in_h + iy) * in_w + ix] += dv
    return active


@njit(cache=True)
def maxpool_back(d, g, s, back):
    """back[i] = the sum over the windows holding input i of their error times dOR/ds_i: the
    error goes to every input of a silent window, to the spiking input of a window with one
    spike, nowhere from a window with more; ``s`` the input spikes. Returns how many errors
    were non-zero."""
    in_h, in_w, out_h, out_w = g[G.in_h], g[G.in_w], g[G.out_h], g[G.out_w]
    back[:] = 0
    active = 0
    for c in range(g[G.in_c]):
        for oy in range(out_h):
            for ox in range(out_w):
                dv = np.int64(d[(c * out_h + oy) * out_w + ox])
                if dv == 0:
                    continue
                active += 1
                y0, y1, x0, x1 = window_bounds(g, oy, ox)
                count, spiking = 0, 0
                for iy in range(y0, y1):
                    for ix in range(x0, x1):
                        i = (c * in_h + iy) * in_w + ix
                        if s[i] != 0:
                            count += 1
                            spiking = i
                if count == 1:
                    back[spiking] += dv
                elif count == 0:
                    for iy in range(y0, y1):
                        for ix in range(x0, x1):
                            back[(c * in_h + iy) * in_w + ix] += dv
    return active


# -- the layer ops (registry.LAYER_OPS) -----------------------------------------------------------

@njit(cache=True)
def forward_avg(W, x, s, x_frac, w_frac, g, nonzero, plane, cur, out):
    avgpool_forward(s, g, out)


@njit(cache=True)
def back_avg(W, d, g, s, out):
    return avgpool_back(d, g, out)


@njit(cache=True)
def forward_max(W, x, s, x_frac, w_frac, g, nonzero, plane, cur, out):
    maxpool_forward(s, g, out)


@njit(cache=True)
def back_max(W, d, g, s, out):
    return maxpool_back(d, g, s, out)


def weight_shape(n_out: int, fan_in: int, g: Geometry) -> tuple[int, int]:
    return 0, 0


def check_spikes(where: str, binary_source: bool, g: Geometry) -> None:
    if not binary_source:
        raise ModelError(f"{where}: pooling reads the spikes (0/1) of the layer below, a spiking layer or a "
                         "maximum pool: not the model's input (downsample the data instead) or an average")


def check_average(where: str, binary_source: bool, g: Geometry) -> None:
    check_spikes(where, binary_source, g)
    if g.taps & (g.taps - 1) or g.taps > MAX_AVERAGE_WINDOW:
        raise ModelError(f"{where}: an average over a {g.kernel_h}x{g.kernel_w} window; its {g.taps} inputs must be "
                         f"a power of two up to {MAX_AVERAGE_WINDOW} (the average is a shift, the count a byte)")


def average_frac(g: Geometry) -> int:
    return g.taps.bit_length() - 1


def spike_frac(g: Geometry) -> int:
    return 0


def scratch(n_in: int, g: Geometry) -> dict[str, int]:
    """None: a pool reads the spikes below where they lie and writes its own outputs."""
    return {"layer_input": 0, "nonzero_index": 0, "plane_sums": 0}


AVGPOOL = register_layer(LayerKind(
    name="avgpool", code=2, has_neurons=False, windowed=True, weight_shape=weight_shape, check=check_average,
    out_frac=average_frac, forward_float=avgpool_float, back_float=avgpool_back_float, grad_float=None,
    fixed={"forward": forward_avg, "back": back_avg},
    c_ops={"forward": "el_layer_forward_avgpool", "back": "el_layer_back_avgpool"}, scratch=scratch, c_scratch="el_pool_scratch",
    c_window_check="el_avgpool_window_check"))
MAXPOOL = register_layer(LayerKind(
    name="maxpool", code=3, has_neurons=False, windowed=True, weight_shape=weight_shape, check=check_spikes,
    out_frac=spike_frac, forward_float=maxpool_float, back_float=maxpool_back_float, grad_float=None,
    fixed={"forward": forward_max, "back": back_max},
    c_ops={"forward": "el_layer_forward_maxpool", "back": "el_layer_back_maxpool"}, scratch=scratch, c_scratch="el_pool_scratch",
    c_window_check="el_maxpool_window_check"))

"""What the windowed layer kinds (conv2d, avgpool, maxpool) share: the geometry of a kernel
window sliding over a [C, H, W] source, and its float64 gather/scatter (im2col, col2im).

Every buffer is flat in row-major (C, H, W) order: input i = (c H + y) W + x, output
o = (c H_out + y) W_out + x, and a kernel tap of output (y, x) reads input row
y stride_h + ky - pad_h and column x stride_w + kx - pad_w (zero outside: padding). The
output size is H_out = (H + 2 pad_h - kernel_h) // stride_h + 1, likewise for W. The
fixed-point kernels read the geometry as one int64 row indexed by ``G`` (the layer
table's window columns, edgelearn.plan; the C runtime's el_window_t)."""
from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

import numpy as np

from ...errors import ModelError


class Geometry(NamedTuple):
    """A window layer's shapes: its source [in_c, in_h, in_w], its output [out_c, out_h,
    out_w], the kernel, the stride and the zero padding on each side."""
    in_c: int
    in_h: int
    in_w: int
    out_c: int
    out_h: int
    out_w: int
    kernel_h: int
    kernel_w: int
    stride_h: int
    stride_w: int
    pad_h: int
    pad_w: int

    @property
    def plane(self) -> int:
        """Outputs per channel."""
        return self.out_h * self.out_w

    @property
    def taps(self) -> int:
        """Kernel taps per output channel and input channel."""
        return self.kernel_h * self.kernel_w


G = IntEnum("G", [(name, i) for i, name in enumerate(Geometry._fields)])   # the columns of a window row


def output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def geometry(where: str, window, source_shape: tuple[int, ...], out_c: int | None) -> Geometry:
    """The geometry of a window over ``source_shape`` (which must be [C, H, W]); ``out_c``:
    the output channels (None: as many as the source, for pooling). A ModelError names what
    does not fit."""
    if len(source_shape) != 3:
        raise ModelError(f"{where}: a window layer reads a [channels, height, width] source, got shape "
                         f"{tuple(source_shape)}")
    if max(source_shape) > MAX_WINDOW:
        raise ModelError(f"{where}: a window layer's source dimensions are at most {MAX_WINDOW}, got "
                         f"{tuple(source_shape)}")
    for name, pair, low in (("kernel", window.kernel, 1), ("stride", window.stride, 1), ("padding", window.padding, 0)):
        if len(pair) != 2 or any(not low <= v <= MAX_WINDOW for v in pair):
            raise ModelError(f"{where}: window {name} {tuple(pair)} must be two integers in {low}..{MAX_WINDOW}")
    (kh, kw), (sh, sw), (ph, pw) = window.kernel, window.stride, window.padding
    c, h, w = source_shape
    if ph >= kh or pw >= kw:
        raise ModelError(f"{where}: padding {window.padding} must be smaller than the kernel {window.kernel} "
                         "(every output sees at least one input)")
    if h + 2 * ph < kh or w + 2 * pw < kw:
        raise ModelError(f"{where}: kernel {window.kernel} is larger than the padded source {h + 2 * ph}x{w + 2 * pw}")
    return Geometry(c, h, w, c if out_c is None else out_c, output_size(h, kh, sh, ph), output_size(w, kw, sw, pw),
                    kh, kw, sh, sw, ph, pw)


MAX_WINDOW = 0xFFFF     # kernel, stride and padding are u16 in the blob's WINDOW section


# -- float64 (the twins): a batch [B, C*H*W] through the window ------------------------------

def taps_index(g: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """For every output position p (row-major) and every tap (c, ky, kx) (row-major): the
    flat index of the input it reads and whether it lies inside (not padding):
    two [out_h*out_w, in_c*kh*kw] arrays."""
    oy, ox = np.divmod(np.arange(g.plane), g.out_w)
    c, ky, kx = np.unravel_index(np.arange(g.in_c * g.taps), (g.in_c, g.kernel_h, g.kernel_w))
    iy = oy[:, None] * g.stride_h + ky[None, :] - g.pad_h
    ix = ox[:, None] * g.stride_w + kx[None, :] - g.pad_w
    inside = (iy >= 0) & (iy < g.in_h) & (ix >= 0) & (ix < g.in_w)
    index = (c[None, :] * g.in_h + np.clip(iy, 0, g.in_h - 1)) * g.in_w + np.clip(ix, 0, g.in_w - 1)
    return index, inside


_TAPS: dict[Geometry, tuple[np.ndarray, np.ndarray]] = {}


def _taps(g: Geometry):
    if g not in _TAPS:
        _TAPS[g] = taps_index(g)
    return _TAPS[g]


def im2col(x: np.ndarray, g: Geometry) -> np.ndarray:
    """x [B, in_c*in_h*in_w] -> its windows [B, out_h*out_w, in_c*kh*kw] (zeros for padding).
    Works on complex arrays (the complex-step gradient tests)."""
    index, inside = _taps(g)
    return x[:, index] * inside


def col2im(cols: np.ndarray, g: Geometry) -> np.ndarray:
    """The transpose of im2col: cols [B, out_h*out_w, in_c*kh*kw] summed back onto the
    inputs they read, [B, in_c*in_h*in_w] (padding taps dropped)."""
    index, inside = _taps(g)
    n = g.in_c * g.in_h * g.in_w
    B = cols.shape[0]
    flat = (np.arange(B)[:, None] * n + index[inside][None, :]).ravel()
    taken = cols[:, inside].ravel()

    def scatter(values):
        return np.bincount(flat, weights=values, minlength=B * n).reshape(B, n)
    if np.iscomplexobj(taken):
        return scatter(taken.real) + 1j * scatter(taken.imag)
    return scatter(taken)


def channel_windows(x: np.ndarray, g: Geometry) -> np.ndarray:
    """x [B, C*H*W] -> each output's window within its own channel: [B, C, out_h*out_w, kh*kw]
    (pooling: the window of output channel c reads input channel c only)."""
    cols = im2col(x, g)                                        # [B, P, C*taps]
    return cols.reshape(x.shape[0], g.plane, g.in_c, g.taps).transpose(0, 2, 1, 3)


def channel_col2im(parts: np.ndarray, g: Geometry) -> np.ndarray:
    """The transpose of channel_windows: [B, C, P, taps] summed onto the inputs [B, C*H*W]."""
    return col2im(parts.transpose(0, 2, 1, 3).reshape(parts.shape[0], g.plane, g.in_c * g.taps), g)

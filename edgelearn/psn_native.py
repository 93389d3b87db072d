"""The PSN kernels and driver of the C runtime (targets/c/el_psn.c) built for this host through cffi,
and ``NativePSN``: the C executor of a PSN network (edgelearn/psnnet.py), bit for bit equal to
``FixedPSN``. The module is the runtime's sources plus el_psn.c, built once into the build cache;
el_psn.h is its cffi declaration (comments and preprocessor lines removed, nothing retyped)."""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import sysconfig
from pathlib import Path

import numpy as np

from . import buildcache, resources
from .cgen import _declarations
from .encoders import CODES, as_rows
from .psnnet import FixedPSN, PSNNet

C_DIR = resources.C_DIR
SOURCES = ("el_psn.c",)
COMPILE_ARGS = ("-std=gnu99", "-O2")
SOURCE = '#include "el_psn.h"\n'

_module = None


def cdef() -> str:
    return _declarations((C_DIR / "el_psn.h").read_text())


def load():
    """The compiled module (``.ffi``, ``.lib``), built on first use."""
    global _module
    if _module is not None:
        return _module
    import cffi

    files = sorted(C_DIR.glob("*.[ch]"))
    digest = buildcache.key(files=files, flags=COMPILE_ARGS, tools=[buildcache.python_cc()],
                            texts=(SOURCE, cdef(), cffi.__version__, sys.implementation.cache_tag,
                                   sysconfig.get_platform()))
    name = f"_edgelearn_psn_{digest}"

    def build(out: Path) -> None:
        ffi = cffi.FFI()
        ffi.cdef(cdef())
        ffi.set_source(name, SOURCE, sources=[str(p) for p in buildcache.runtime_sources()]
                       + [str(C_DIR / s) for s in SOURCES], include_dirs=[str(C_DIR)],
                       extra_compile_args=list(COMPILE_ARGS))
        work = out / "work"
        so = Path(ffi.compile(tmpdir=str(work), verbose=False))
        os.replace(so, out / so.name)
        shutil.rmtree(work)

    out_dir = buildcache.cached("psn", digest, build)
    built = sorted(out_dir.glob(f"{name}*.so")) + sorted(out_dir.glob(f"{name}*.pyd"))
    spec = importlib.util.spec_from_file_location(name, built[0])
    _module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(_module)
    return _module


def buf(ffi, ctype: str, a: np.ndarray):
    """A C pointer onto a contiguous numpy array (cffi does not check dtypes: the caller does)."""
    assert a.flags.c_contiguous
    return ffi.cast(ctype, ffi.from_buffer(a))


class NativePSN(FixedPSN):
    """The C executor: the same arrays as FixedPSN, stepped by el_psn_run_sample."""

    def __init__(self, net: PSNNet):
        super().__init__(net)
        m = load()
        self._m = m
        self._tab = np.ascontiguousarray(self.tab, dtype=np.int32)     # el_psn_layer_t[]: ten 32-bit fields
        assert m.ffi.sizeof("el_psn_layer_t") == 4 * self._tab.shape[1]
        ffi, a = m.ffi, self.arena
        c = self._c = ffi.new("el_psn_net_t *")
        c.layers = buf(ffi, "el_psn_layer_t *", self._tab)
        c.n_layers = self._tab.shape[0]
        c.W = buf(ffi, "int16_t *", self.W)
        c.taps = buf(ffi, "int8_t *", self.taps)
        c.th = buf(ffi, "int32_t *", self.th)
        for name in ("ring", "xr", "cur", "U", "d", "x0", "inp", "nonzero", "lag0"):
            assert a[name].dtype == np.int32
            setattr(c, name, buf(ffi, "int32_t *", a[name]))
        c.s = buf(ffi, "uint8_t *", a["s"])
        c.back = buf(ffi, "int64_t *", a["back"])
        c.scores = buf(ffi, "int64_t *", a["scores"])

    def run(self, samples: np.ndarray, labels, learn: bool) -> np.ndarray:
        m, n = self._m, self.net
        out = np.zeros((len(samples), n.n_out), dtype=np.int64)
        rin = buf(m.ffi, "uint32_t *", self.rng_in)
        rlearn = buf(m.ffi, "uint32_t *", self.rng_learn)
        for b, sample in enumerate(samples):
            rows = np.ascontiguousarray(as_rows(sample), dtype=np.uint8)
            label = -1 if labels is None else int(labels[b])
            m.lib.el_psn_run_sample(self._c, buf(m.ffi, "uint8_t *", rows), rows.shape[0], CODES[n.encoding], n.T,
                                    label, int(bool(learn) and labels is not None), n.lr_weight_shift,
                                    n.surrogate_shift, rin, rlearn)
            out[b] = self.arena["scores"]
        return out

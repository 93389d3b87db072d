"""The C runtime (targets/c) on the host, through cffi in out-of-line API mode.

``load_native()`` compiles the runtime once into the build cache (``edgelearn.buildcache``:
``$EDGELEARN_BUILD_DIR``, ``$XDG_CACHE_HOME/edgelearn`` or ``~/.cache/edgelearn``, never the
source tree) under a name derived from a hash of the C sources, the declarations, the flags
and the compiler, so any change to the sources builds a fresh module and a stale one is
never loaded. The declarations are derived from the headers
(``edgelearn.cgen.cdef``), never retyped. The executors that run models on it are in
``edgelearn.executors.c``; this module is the build and the loader's entry points
(``plan``, ``arena_required``, ``init_status``).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import sysconfig
from pathlib import Path

import numpy as np

from . import buildcache, resources
from .cgen import cdef
from .errors import ModelError
from .plan import BUFFER_NAMES

C_DIR = resources.C_DIR
COMPILE_ARGS = ("-std=gnu99", "-O2")

# The numeric primitives (inline in el_numerics.h), given linkable names so tests can call them.
EXPORTS = """
int64_t el_round_shift_export(int64_t x, int s);
int64_t el_stochastic_shift_export(int64_t p, int s, uint32_t *state);
uint32_t el_rng_next_export(uint32_t *state);
int64_t el_sat_sum_export(int64_t acc, int64_t p);
"""
SOURCE = """
#include "edgelearn.h"
#include "el_kernels.h"
#include "el_kernels_spide.h"
#include "el_conv2d.h"
#include "el_pool.h"
#include "el_scan2d.h"
#include "el_psn.h"
#include "el_neurons.h"
#include "el_layers.h"
#include "el_numerics.h"
int64_t el_round_shift_export(int64_t x, int s) { return el_round_shift(x, s); }
int64_t el_stochastic_shift_export(int64_t p, int s, uint32_t *state) { return el_stochastic_shift(p, s, state); }
uint32_t el_rng_next_export(uint32_t *state) { return el_rng_next(state); }
int64_t el_sat_sum_export(int64_t acc, int64_t p) { return el_sat_sum(acc, p); }
"""

STATUS_NAMES = {}          # filled from the enum on first load: code -> "EL_ERR_..."

_module = None


class NativeError(ModelError):
    """The C runtime refused something; ``status`` is its el_status_t code."""

    def __init__(self, status: int, what: str):
        self.status = status
        super().__init__(f"{what}: {STATUS_NAMES.get(status, status)} ({status})")


def source_digest() -> str:
    """The build's cache key: every C source and header, the wrapper, the flags, the compiler,
    cffi and the Python that loads the module."""
    import cffi

    return buildcache.key(files=sorted(C_DIR.glob("*.[ch]")), flags=COMPILE_ARGS, tools=[buildcache.python_cc()],
                          texts=(SOURCE, EXPORTS, cdef(), cffi.__version__, sys.implementation.cache_tag,
                                 sysconfig.get_platform()))


def load_native():
    """The compiled runtime module (``.ffi``, ``.lib``), built on first use."""
    global _module
    if _module is not None:
        return _module
    if not (C_DIR / "edgelearn.h").is_file():
        raise FileNotFoundError(f"the C runtime sources are missing: expected {C_DIR}/edgelearn.h")
    digest = source_digest()
    name = f"_edgelearn_native_{digest}"
    out_dir = buildcache.cached("native", digest, lambda out: _compile(name, out))
    built = sorted(out_dir.glob(f"{name}*.so")) + sorted(out_dir.glob(f"{name}*.pyd"))
    spec = importlib.util.spec_from_file_location(name, built[0])
    _module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(_module)
    STATUS_NAMES.update({v: k for k, v in _module.ffi.typeof("el_status_t").relements.items()})
    return _module


def _compile(name: str, out_dir: Path) -> Path:
    """Build the module into out_dir (buildcache.cached publishes it): the .so alone."""
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(cdef() + EXPORTS)
    ffi.set_source(name, SOURCE, sources=[str(p) for p in buildcache.runtime_sources()],
                   include_dirs=[str(C_DIR)], extra_compile_args=list(COMPILE_ARGS))
    work = out_dir / "work"
    so = Path(ffi.compile(tmpdir=str(work), verbose=False))
    final = out_dir / so.name
    os.replace(so, final)
    shutil.rmtree(work)
    return final


def aligned_bytes(data: bytes) -> np.ndarray:
    """A writable, 8-byte aligned uint8 copy (numpy allocations are at least 16-aligned)."""
    buf = np.zeros((len(data) + 7) // 8, dtype=np.int64).view(np.uint8)[:len(data)]
    buf[:] = np.frombuffer(data, dtype=np.uint8)
    return buf


def plan(blob: bytes, weight_grad: bool = False) -> dict[str, int]:
    """The C runtime's arena plan for a blob: bytes per buffer and ``total``."""
    m = load_native()
    data = aligned_bytes(blob)
    p = m.ffi.new("el_plan_t *")
    st = m.lib.el_plan(m.ffi.from_buffer("uint8_t[]", data), len(data),
                       m.lib.EL_PLAN_WEIGHT_GRAD if weight_grad else 0, p)
    if st != m.lib.EL_OK:
        raise NativeError(st, "the C loader refused the blob")
    out = {name: getattr(p, name).bytes for name in BUFFER_NAMES}
    out["total"] = p.total
    return out


def arena_required(blob: bytes, weight_grad: bool = False) -> int:
    """``el_arena_required``: 0 when the loader refuses the blob."""
    m = load_native()
    data = aligned_bytes(blob)
    return m.lib.el_arena_required(m.ffi.from_buffer("uint8_t[]", data), len(data),
                                   m.lib.EL_PLAN_WEIGHT_GRAD if weight_grad else 0)


def init_status(blob: bytes, arena_bytes: int | None = None) -> int:
    """The status ``el_init`` returns for a blob and an arena of ``arena_bytes`` (default:
    what it needs). For testing the loader's refusals."""
    m = load_native()
    data = aligned_bytes(blob)
    if arena_bytes is None:
        arena_bytes = m.lib.el_arena_required(m.ffi.from_buffer("uint8_t[]", data), len(data), 0)
    arena = np.zeros(max(1, (arena_bytes + 7) // 8), dtype=np.int64)
    net = m.ffi.new("el_net_t *")
    return m.lib.el_init(net, m.ffi.from_buffer("uint8_t[]", data), len(data),
                         m.ffi.from_buffer("uint8_t[]", arena), arena_bytes, 0)

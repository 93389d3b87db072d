"""Where numba caches compiled kernels, keyed by the package's source.

numba's own cache is invalidated only when a jitted function's *own* file changes; a
kernel that inlines ``numerics.stochastic_shift`` keeps the old arithmetic after
numerics.py is edited. For a bit-exact runtime that is unacceptable, so the cache lives in
a directory named by a hash of every source file of the package: any edit starts afresh."""
import hashlib
import os
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def source_digest() -> str:
    h = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        h.update(str(path.relative_to(PACKAGE)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def use_source_keyed_cache() -> None:
    if "NUMBA_CACHE_DIR" in os.environ:      # the user chose; respect it
        return
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgelearn" / "numba"
    os.environ["NUMBA_CACHE_DIR"] = str(base / source_digest())
    if "numba" in sys.modules:               # numba read its config already: make it read again
        from numba.core import config
        config.reload_config()

"""The built-in layer kinds, in code order (importing registers them)."""
from . import dense, conv2d, pool, scan2d, psn  # noqa: F401

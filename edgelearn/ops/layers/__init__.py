"""The built-in layer kinds, in code order (importing registers them)."""
from . import dense  # noqa: F401

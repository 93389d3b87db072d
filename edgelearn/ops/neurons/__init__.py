"""The built-in neuron kinds, in code order (importing registers them)."""
from . import lif, if_neuron, li, threshold  # noqa: F401

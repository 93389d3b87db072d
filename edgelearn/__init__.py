"""edgelearn: on-device learning for spiking neural networks, bit-exact from host to device."""
from ._jit_cache import use_source_keyed_cache

use_source_keyed_cache()

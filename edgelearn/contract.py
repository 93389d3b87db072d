"""Every name and number the Python reference and the C runtime share, in one place.

The C side never retypes them: ``edgelearn.cgen`` writes targets/c/el_contract.h from
this module, the op registry (neuron and layer codes) and the rules' specs, and a test
checks the committed header against a fresh one. The arithmetic primitives and Q-formats
are in ``edgelearn.numerics``; the blob's byte layout in ``edgelearn.modelblob``.

Codes are indexes into these tuples, which therefore only grow at the end: a code, once
given to a device, keeps its meaning."""
from __future__ import annotations

ENCODINGS = ("direct", "rate", "events", "sequence")
RULES = ("stop", "readout", "none", "spide")
UPDATE_MODES = ("step", "sample")
RESETS = ("subtract", "modified")    # modified: fire at th, subtract 2 th (SPIDE; rates round, not floor)
INPUT = "input"                      # the reserved name of a model's input node

LEARN_STREAM_XOR = 0xA5A5A5A5        # the learning PRNG stream's seed is the model's seed ^ this
SUM_LIMIT = 1 << 61                  # gradient sums saturate here: one more product never overflows int64

# Ranges of the model's learning fields (a loader refuses values outside them)
MAX_T = 65535                        # T and Tb: u16 in the blob
MAX_LR_SHIFT = 40
MIN_SURROGATE_SHIFT, MAX_SURROGATE_SHIFT = -8, 8
# The widest layer: the hidden error's int64 sum of 2^46-sized terms stays exact below
# 2^17 terms (docs/numerics.md §8); 2^16 - 1 also fits the device's u16 counters.
MAX_LAYER_SIZE = 65535
# Anytime inference (docs/numerics.md §6b): a margin no int64 gap exceeds: never stop there
CUTOFF_NEVER = (1 << 63) - 1
CUTOFF_MAX_PPM = 999_999             # the tolerance the host calibrated for, in ppm: 1..this
# The learning-rate schedule (docs/numerics.md §6c): a u32 sample counter, saturating
MAX_LEARNED = 0xFFFFFFFF

# The runtime's per-layer flags (the layer table's ``flags``; not the blob's)
LEARN_THRESHOLD, LEARN_LEAK, TRAINABLE = 1, 2, 4
WEIGHTS_INT8 = 8                     # a runtime layer flag: its weights are int8, updates saturate to sat8
WEIGHT_BITS = (16, 8)                # a layer's weight storage widths (the model file's weight_bits)
NARROW_WEIGHT_KINDS = ("dense",)     # the kinds whose kernels also serve int8 weights

ARENA_ALIGN = 8                      # every arena buffer starts 8-byte aligned (int64 buffers)

"""One check that two bit-exact executors hold the same state, buffer by buffer."""
import numpy as np

from edgelearn.plan import LayerField, as_matrix

# where the parameters are: byte offsets in the blob (C), indexes of arrays (Python)
PARAMETER_COLUMNS = [LayerField.weights_at, LayerField.thresholds_at, LayerField.leak_at]


def assert_same_state(ref, other):
    """Every parameter, PRNG state and arena buffer (the tables field by field) of ``other``
    equals ``ref``'s."""
    want, got = ref.buffers(), other.buffers()
    assert want.keys() == got.keys()
    for name, a in want.items():
        b = got[name]
        if b.dtype.names:                       # a C table: structured records
            b = as_matrix(b)
        if name == "layers":
            a, b = np.delete(a, PARAMETER_COLUMNS, axis=1), np.delete(b, PARAMETER_COLUMNS, axis=1)
        assert a.shape == b.shape, name
        np.testing.assert_array_equal(a, b, err_msg=name)

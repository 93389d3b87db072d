"""The C runtime stores and learns int8 weights bit for bit with the Python reference
(docs/numerics.md §1, §5): streams learned per step and per sample, direct and rate coded, with
every buffer, the weights read back and the learned blob equal; one byte a weight in the blob
the C side learns in place and a loader plan equal to edgelearn.plan's; blobs that claim int8
weights wrongly refused by both loaders, and by a board, which keeps the model it had."""
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from agree import assert_same_state
from blob_bytes import LAYER, poke, section
from blob_verdicts import assert_agree, assert_both_refuse
from test_int8_weights import int8_mnist, narrow

from edgelearn import native
from edgelearn.datasets import load_digits
from edgelearn.executors import make_learner
from edgelearn.executors.c import NativeSTOP
from edgelearn.model import INPUT, Edge, InputSpec, Layer, Learning, Model, Neuron, Window, init_params, mlp
from edgelearn.modelblob import from_blob, to_blob
from edgelearn.modelfile import load_model
from edgelearn.plan import arena_plan
from edgelearn.rules.stop.fixed import FixedSTOP

ROOT = Path(__file__).resolve().parents[1]
FLAG_WEIGHTS_INT8 = 8                  # the LAYER section's flag bit 3 (docs/model-format.md)


def learning(update, encoding, sizes=(32, 16, 4), readout=Neuron("lif")):
    """A small int8 model learning at lr 0 (every update large: sat8 acts often)."""
    return narrow(mlp("m", list(sizes), encoding=encoding, readout=readout,
                      learning=Learning(T=6, seed=5, lr_weight_shift=0, update=update)), {"fc1": 7, "readout": 7})


def stream(model, count, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, size=(count, model.input.size), dtype=np.uint8),
            rng.integers(0, model.readout.size, count))


def weights_of(model):
    return np.concatenate([model.params[layer.name].weight.ravel() for layer in model.layers])


def assert_learn_alike(model, x, y, batch=1):
    """FixedSTOP and NativeSTOP over the same stream: equal scores and state after every call,
    the same learned blob; returns the C executor."""
    ref, c = FixedSTOP(model), NativeSTOP(model)
    for i in range(0, len(x), batch):
        xs, ys = x[i:i + batch], y[i:i + batch]
        np.testing.assert_array_equal(ref.run(xs, ys, True), c.run(xs, ys, True))
        assert_same_state(ref, c)
    assert to_blob(c.to_model()) == to_blob(ref.to_model())
    return c


@pytest.mark.parametrize("encoding", ["direct", "rate"])
@pytest.mark.parametrize("update", ["step", "sample"])
def test_c_learns_an_int8_stream_as_the_reference(update, encoding):
    model = learning(update, encoding)
    x, y = stream(model, 48)
    c = assert_learn_alike(model, x, y)
    w = c.weights
    assert not np.array_equal(w, weights_of(model))                  # it learned
    assert (w == 127).any() and (w == -128).any()                    # sat8 acted
    assert [layer.weight_bits for layer in c.to_model().layers] == [8, 8]


def test_c_learns_int8_batches_as_the_reference():
    model = learning("sample", "direct")
    x, y = stream(model, 32, seed=1)
    assert_learn_alike(model, x, y, batch=4)


@pytest.mark.parametrize("narrow_layer", ["fc1", "readout"])
def test_int8_and_int16_layers_mix(narrow_layer):
    """One layer int8, the other int16: the errors come back through the readout's weights of
    either width (the int16 dense kernel's own path, or the int8 layer's op)."""
    model = learning("step", "direct", sizes=(24, 12, 12, 4), readout=Neuron("li", leak=0.5))
    layers = tuple(dataclasses.replace(layer, weight_bits=16, weight_frac=12) if layer.name != narrow_layer else layer
                   for layer in model.layers)
    model = init_params(dataclasses.replace(model, layers=layers))
    x, y = stream(model, 32, seed=2)
    assert_learn_alike(model, x, y)


def test_an_int8_digits_model_learns_200_samples_as_the_reference():
    ds = load_digits()
    model = narrow(load_model(ROOT / "models" / "digits-stop.json"), {"fc1": 7, "readout": 6})
    c = assert_learn_alike(model, ds.x_train[:200], ds.y_train[:200])
    assert not np.array_equal(c.weights, weights_of(model))


def test_the_c_executor_runs_an_int8_model_and_the_blob_keeps_one_byte_a_weight():
    model = int8_mnist()
    c = make_learner(model, "c")
    assert len(c.blob()) == len(to_blob(model))                      # learned in place, at int8
    assert native.plan(to_blob(model)) == arena_plan(model)
    assert native.plan(to_blob(model), weight_grad=True) == arena_plan(model, weight_grad=True)
    assert c.arena_bytes() == arena_plan(model)["total"]


def test_a_per_sample_int8_model_is_planned_alike_and_accepted_by_both_loaders():
    model = learning("sample", "rate")
    blob = to_blob(model)
    assert native.plan(blob) == arena_plan(model) and assert_agree(blob, "int8, per sample")


# -- blobs that claim int8 weights wrongly ----------------------------------------------------

def flagged(blob, layer=0, flags=FLAG_WEIGHTS_INT8):
    """The blob with LAYER section ``layer``'s flags set to ``flags`` (CRC resealed)."""
    return poke(blob, section(blob, LAYER, layer)[1] + 2, "<B", flags)


def test_int16_weights_flagged_int8_are_refused_for_their_size():
    blob = to_blob(init_params(mlp("m", [16, 8, 4])))
    assert_both_refuse(flagged(blob), "EL_ERR_SECTION_SIZE",
                       "WEIGHTS section 0 is 256 bytes, expected 128 for shape (8, 16) of 1-byte integers")


def test_int8_weights_not_flagged_are_refused_for_their_size():
    blob = to_blob(narrow(mlp("m", [16, 8, 4])))
    assert_both_refuse(flagged(blob, flags=0), "EL_ERR_SECTION_SIZE",
                       "WEIGHTS section 0 is 128 bytes, expected 256 for shape (8, 16) of 2-byte integers")


def test_an_int8_weight_frac_above_7_is_refused():
    blob = to_blob(narrow(mlp("m", [16, 8, 4])))
    at = section(blob, LAYER, 1)[1]
    assert_both_refuse(poke(blob, at + 3, "<B", 8), "EL_ERR_VALUE", "weight_frac 8 outside 0..7 (int8 weights)")


def test_int8_weights_on_a_conv2d_layer_are_refused():
    conv = Layer("conv", "conv2d", (Edge(INPUT),), (2, 3, 3), Neuron("lif"), window=Window((2, 2), (1, 1), (0, 0)))
    readout = Layer("readout", "dense", (Edge("conv"),), (4,), Neuron("lif"))
    blob = flagged(to_blob(init_params(Model("m", InputSpec((1, 4, 4), "direct"), (conv, readout), Learning()))))
    assert native.STATUS_NAMES[native.init_status(blob)] == "EL_ERR_VALUE"
    assert not assert_agree(blob, "int8 flag on conv2d")


def test_spide_refuses_an_int8_blob_in_both_loaders():
    model = load_model(ROOT / "models" / "digits-spide.json")
    layers = (dataclasses.replace(model.layers[0], weight_bits=8, weight_frac=6),) + model.layers[1:]
    assert_both_refuse(to_blob(init_params(dataclasses.replace(model, layers=layers))), "EL_ERR_UNSUPPORTED",
                       "SPIDE stores int16 weights")


def test_a_board_refuses_an_int8_blob_of_the_wrong_size_and_keeps_its_model():
    from firmware_host.board import Board, BoardError
    from firmware_host.native_board import NativeBoard
    old = to_blob(narrow(mlp("old", [16, 8, 4])))
    wrong = flagged(to_blob(init_params(mlp("new", [16, 12, 4]))))   # int8 claimed, int16 stored
    x, y = stream(from_blob(old), 8)
    with NativeBoard() as nb, Board(nb.url) as b:
        b.push_model(old)
        b.commit()
        before = b.hello()
        b.push_model(wrong)
        with pytest.raises(BoardError, match="MODEL_REFUSED") as e:
            b.commit()
        assert native.STATUS_NAMES[e.value.detail] == "EL_ERR_SECTION_SIZE"
        after = b.hello()
        assert (after.has_model, after.active_size, after.active_crc) == (True, len(old), before.active_crc)
        b.set_mode("train")
        b.stream(x, y)
        pulled = b.pull_params()
    host = NativeSTOP(from_blob(old))
    for i in range(len(x)):
        host.run(x[i:i + 1], y[i:i + 1], True)
    assert pulled == host.blob()                   # the int8 model learned on the board as on the host

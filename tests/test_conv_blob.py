"""Window layers (conv2d, pooling) in the blob and the spec (docs/model-format.md, format and
spec version 4): the writer uses version 4 only for them, both loaders (Python check_blob, C
el_init) give one verdict on each way a WINDOW section or a pool's LAYER section can be wrong,
and the spec round-trips. The mutation tests (tests/test_blob_mutations.py) cover the same
models (blob_verdicts.stop_conv_maxpool, stop_avgpool_conv) at random."""
import struct

import numpy as np
import pytest
from blob_bytes import LAYER, LEAK, WINDOW, entries, poke, resealed, section
from blob_verdicts import SMALL, assert_agree, assert_both_refuse, stop_avgpool_conv, stop_conv_maxpool

from edgelearn import native
from edgelearn.model import Edge, InputSpec, Layer, Learning, Model, Neuron, Window, init_params, mlp
from edgelearn.modelblob import from_blob, to_blob
from edgelearn.modelfile import model_from_spec_dict, spec_to_dict

CONV = SMALL["stop_conv_maxpool"]     # layers: c (conv2d 3x3 s2 p1), p (maxpool 2x2 s1), o (dense)
POOL = SMALL["stop_avgpool_conv"]     # layers: c0 (conv2d 1x1), p (avgpool 2x2 s2), c (conv2d, li)


def window_at(blob: bytes, index: int) -> int:
    return section(blob, WINDOW, index)[1]


def test_the_writer_uses_version_4_only_for_window_layers():
    assert struct.unpack_from("<H", CONV, 4)[0] == 4 and struct.unpack_from("<H", POOL, 4)[0] == 4
    assert struct.unpack_from("<H", to_blob(init_params(mlp("d", [4, 3]))), 4)[0] == 1
    kinds = [(t, i) for _, t, i, _, _ in entries(CONV)]
    assert kinds.index((WINDOW, 0)) < kinds.index((WINDOW, 1)) < kinds.index((3, 0))   # before the parameters
    assert (WINDOW, 2) not in kinds                                                     # dense: no window
    assert section(CONV, 3, 1)[2] == 0 and section(CONV, 4, 1)[2] == 0                 # the pool: no weights
    for blob in (CONV, POOL):
        assert to_blob(from_blob(blob)) == blob and assert_agree(blob)


def test_the_spec_round_trips_and_is_version_4():
    for make in (stop_conv_maxpool, stop_avgpool_conv):
        model = make()
        spec = spec_to_dict(model)
        assert spec["version"] == 4 and "neuron" not in spec["layers"][1]
        assert model_from_spec_dict(spec).layers == model.layers
    spec = spec_to_dict(stop_conv_maxpool())
    spec["version"] = 3
    with pytest.raises(ValueError, match=r"layers\[0\]: a 'window' needs spec version 4"):
        model_from_spec_dict(spec)


def test_a_version_3_loader_refuses_a_window_by_its_version():
    assert_both_refuse(resealed(poke(CONV, 4, "<H", 3)), "EL_ERR_SECTION_TYPE", "a WINDOW section needs format version 4")


@pytest.mark.parametrize("field,value,code,fragment", [
    (0, 0, "EL_ERR_VALUE", "window kernel (0, 3)"),            # kernel_h 0
    (4, 0, "EL_ERR_VALUE", "window stride (0, 2)"),            # stride_h 0
    (8, 3, "EL_ERR_VALUE", "padding (3, 1) must be smaller than the kernel"),
    (0, 8, "EL_ERR_VALUE", "larger than the padded source"),   # kernel_h 8 over 5 + 2
    (4, 1, "EL_ERR_SHAPE", "gives (2, 5, 3)"),                 # stride 1: the layer's shape no longer fits
])
def test_both_loaders_refuse_a_bad_window(field, value, code, fragment):
    assert_both_refuse(poke(CONV, window_at(CONV, 0) + field, "<H", value), code, fragment)


def test_both_loaders_refuse_a_window_where_it_does_not_belong_and_miss_it_where_it_does():
    # the dense layer's LAYER section claims kind conv2d: it has no WINDOW section
    _, at, _ = section(CONV, LAYER, 2)
    assert_both_refuse(poke(CONV, at, "<B", 1), "EL_ERR_SECTION_MISSING", "missing WINDOW section 2")
    # the conv layer's LAYER section claims dense: a WINDOW section it cannot have
    _, at, _ = section(CONV, LAYER, 0)
    assert_both_refuse(poke(CONV, at, "<B", 0), "EL_ERR_VALUE", "WINDOW section 0: a 'dense' layer has no window")


def test_both_loaders_refuse_a_pool_with_neurons_a_leak_or_the_readouts_place():
    _, at, _ = section(CONV, LAYER, 1)
    assert_both_refuse(poke(CONV, at + 1, "<B", 1), "EL_ERR_UNKNOWN_CODE", "a 'maxpool' layer has no neurons")
    assert_both_refuse(poke(CONV, at + 2, "<B", 1), "EL_ERR_VALUE", "a 'maxpool' layer has no neurons")
    assert_both_refuse(poke(CONV, section(CONV, LEAK, 1)[1], "<i", 1), "EL_ERR_VALUE", "its leak must be 0")
    # a pool reads the spikes of a layer, not the input (whatever its coding)
    layers = (Layer("p", "maxpool", (Edge("input"),), (1, 2, 2), window=Window((2, 2), (2, 2))),
              Layer("o", "dense", (Edge("p"),), (2,), Neuron("lif")))
    with pytest.raises(ValueError, match="pooling reads the spikes .* not the model's input"):
        init_params(Model("m", InputSpec((1, 4, 4), "rate"), layers, Learning()))


def test_both_loaders_refuse_an_average_window_that_is_not_a_power_of_two():
    blob = bytearray(POOL)                                            # 3x3, padding 1: the same shape, 9 inputs
    struct.pack_into("<HHHHHH", blob, window_at(POOL, 1), 3, 3, 2, 2, 1, 1)
    assert_both_refuse(resealed(bytes(blob)), "EL_ERR_VALUE", "its 9 inputs must be a power of two")


def test_an_average_of_an_average_is_refused_and_a_max_of_a_max_is_not():
    def chain(first, second):
        layers = (Layer("c", "conv2d", (Edge("input"),), (1, 4, 4), Neuron("lif"), window=Window((1, 1))),
                  Layer("a", first, (Edge("c"),), (1, 4, 4), window=Window((1, 1))),
                  Layer("b", second, (Edge("a"),), (1, 2, 2), window=Window((2, 2), (2, 2))),
                  Layer("o", "dense", (Edge("b"),), (2,), Neuron("lif")))
        return Model("m", InputSpec((1, 4, 4), "events"), layers, Learning())
    assert assert_agree(to_blob(init_params(chain("maxpool", "maxpool"))))
    assert assert_agree(to_blob(init_params(chain("avgpool", "maxpool"))))      # a 1x1 average is a spike
    model = init_params(chain("maxpool", "avgpool"))
    blob = bytearray(to_blob(model))
    blob[window_at(bytes(blob), 1) + 0:window_at(bytes(blob), 1) + 4] = struct.pack("<HH", 1, 2)   # a 1x2 average
    # the first pool's shape no longer fits a 1x2 window: both refuse, the same check first
    assert not assert_agree(resealed(bytes(blob)))


def test_the_c_loader_lays_out_a_conv_arena_as_the_plan_does():
    from edgelearn.plan import arena_plan
    for make, plane in ((stop_conv_maxpool, 3 * 3), (stop_avgpool_conv, 4 * 4)):
        model = make()
        assert native.plan(to_blob(model)) == arena_plan(model)
        assert arena_plan(model)["plane_sums"] == 8 * plane           # one output channel's int64 sums


def test_a_conv_readout_scores_every_neuron():
    model = stop_avgpool_conv()
    assert model.readout.kind == "conv2d" and model.readout.size == 3
    assert np.array_equal(from_blob(to_blob(model)).params["c"].weight, model.params["c"].weight)

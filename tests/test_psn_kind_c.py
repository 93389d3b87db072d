"""The psn layer kind in the C runtime (targets/c/el_psn.c, el_stop.c, el_blob.c): NativeSTOP runs a
model of psn layers (psnnet.to_model) bit for bit like FixedSTOP over learning streams (the scores of
every sample, the weights, both PRNG states), per step and per sample (batches too); the C loader's
layer table and arena plan are Python's (edgelearn/plan.py); and it refuses the FILTER sections and
psn layers that modelblob.check_blob refuses."""
import struct
from dataclasses import replace

import numpy as np
import pytest
from blob_bytes import LAYER, LEAK, THRESHOLD, entries, poke, resealed, section
from blob_verdicts import assemble, assert_agree, assert_both_refuse

from edgelearn import native, plan
from edgelearn.executors.c import NativeSTOP
from edgelearn.model import Learning, Neuron, init_params, mlp
from edgelearn.modelblob import FLAG_LEARN_LEAK, FLAG_LEARN_THRESHOLD, SECTION_FILTER, check_blob, to_blob
from edgelearn.plan import LayerField as F
from edgelearn.psnnet import make_net, to_model
from edgelearn.rules.stop.fixed import FixedSTOP

FILTER = SECTION_FILTER


def psn_model(sizes, taps, dilations, encoding, T=12, update="step", seed=3, weight_scale=3.0, threshold=0.3,
              lr_weight_shift=4, signed_taps=True):
    net = make_net(sizes, taps=taps, dilations=dilations, seed=seed, T=T, weight_scale=weight_scale,
                   threshold=threshold, encoding=encoding, lr_weight_shift=lr_weight_shift)
    if signed_taps:                                        # taps of every sign and size, some 0
        rng = np.random.default_rng(seed)
        for ly in net.layers[:-1]:
            ly.taps[:] = rng.choice([-15, -4, -2, -1, 0, 1, 2, 3, 15], size=ly.taps.shape)
    model = to_model(net)
    if update != "step":
        model = replace(model, learning=replace(model.learning, update=update)).validate()
    return model


def stream(model, n, seed):
    rng = np.random.default_rng(seed)
    n_in, T, classes = model.input.size, model.learning.T, model.layers[-1].size
    if model.input.encoding in ("sequence", "events"):
        xs = rng.integers(0, 256 if model.input.encoding == "sequence" else 2, (n, T, n_in))
    else:
        xs = rng.integers(0, 256, (n, n_in))
    return xs.astype(np.uint8), rng.integers(0, classes, n)


def same_state(ref, c, what):
    for name in ("weights", "thresholds", "leaks", "rng_input", "rng_learn"):
        assert np.array_equal(getattr(ref, name), getattr(c, name)), f"{what}: {name}"


CASES = {   # sizes, taps, dilations, encoding
    "sequence_two_hidden_sawtooth": ([5, 7, 6, 3], 3, [1, 3], "sequence"),
    "sequence_one_hidden": ([6, 12, 3], 4, [2], "sequence"),
    "rate": ([8, 16, 3], 2, [5], "rate"),
    "direct_two_hidden": ([6, 9, 8, 4], 3, [2, 1], "direct"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_c_learns_a_stream_per_step_as_fixed_stop(name):
    sizes, taps, dilations, encoding = CASES[name]
    model = psn_model(sizes, taps, dilations, encoding)
    ref, c = FixedSTOP(model), NativeSTOP(model)
    xs, ys = stream(model, 10, seed=len(sizes) + taps)
    for i, (x, y) in enumerate(zip(xs, ys)):
        assert np.array_equal(ref.run(x[None], y[None], True), c.run(x[None], y[None], True)), f"{name} {i}"
        same_state(ref, c, f"{name} sample {i}")
    assert not np.array_equal(ref.weights, FixedSTOP(model).weights)          # it learned
    assert np.array_equal(ref.buffers()["current_ring"], c.buffers()["current_ring"])
    assert np.array_equal(ref.buffers()["input_trace"], c.buffers()["input_trace"])   # the input rings
    scores = ref.run(xs[:3], None, False)
    assert scores.any() and np.array_equal(scores, c.run(xs[:3], None, False))
    same_state(ref, c, f"{name} inference")
    back = c.to_model()                                   # the taps come back from the FILTER sections
    assert all(np.array_equal(back.params[l.name].taps, model.params[l.name].taps) for l in model.layers)


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("name", ["sequence_two_hidden_sawtooth", "rate"])
def test_c_learns_per_sample_and_in_batches_as_fixed_stop(name, batch):
    sizes, taps, dilations, encoding = CASES[name]
    model = psn_model(sizes, taps, dilations, encoding, update="sample", lr_weight_shift=2)
    ref, c = FixedSTOP(model), NativeSTOP(model)
    xs, ys = stream(model, 12, seed=batch)
    for i in range(0, len(xs), batch):
        got = c.run(xs[i:i + batch], ys[i:i + batch], True)
        assert np.array_equal(ref.run(xs[i:i + batch], ys[i:i + batch], True), got), f"{name} {i}"
        same_state(ref, c, f"{name} batch at {i}")
    assert not np.array_equal(ref.weights, FixedSTOP(model).weights)


def test_a_per_step_model_learns_a_batch_as_fixed_stop():
    model = psn_model(*CASES["sequence_one_hidden"])
    ref, c = FixedSTOP(model), NativeSTOP(model)
    xs, ys = stream(model, 8, seed=5)
    for i in (0, 4):
        assert np.array_equal(ref.run(xs[i:i + 4], ys[i:i + 4], True), c.run(xs[i:i + 4], ys[i:i + 4], True))
        same_state(ref, c, f"batch {i}")


def test_saturation_and_large_shifts_agree():
    model = psn_model([4, 6, 2], 3, [2], "rate", weight_scale=40.0, threshold=0.01, lr_weight_shift=0)
    for layer in model.layers:
        w = model.params[layer.name].weight
        w[:] = np.where(np.arange(w.size).reshape(w.shape) % 2, 32767, -32768)
    model = replace(model, layers=tuple(replace(l, weight_frac=0) for l in model.layers)).validate()
    ref, c = FixedSTOP(model), NativeSTOP(model)            # currents far beyond int32: sat32 everywhere
    xs, ys = stream(model, 4, seed=2)
    for x, y in zip(xs, ys):
        assert np.array_equal(ref.run(x[None], y[None], True), c.run(x[None], y[None], True))
        same_state(ref, c, "saturated")


def test_the_loader_fills_the_layer_table_and_plan_python_computes():
    for name, (sizes, taps, dilations, encoding) in CASES.items():
        for update in ("step", "sample"):
            model = psn_model(sizes, taps, dilations, encoding, update=update)
            blob = to_blob(model)
            for weight_grad in (False, True):
                assert native.plan(blob, weight_grad) == plan.arena_plan(model, weight_grad), (name, update)
            table = plan.tables(model)[0]
            c = NativeSTOP(model)
            filters = [section(bytes(c._blob), FILTER, l)[1] for l in range(len(model.layers))]
            for l in range(len(model.layers)):
                ly = c._net.layers[l]
                for f in F:
                    want = filters[l] + 4 if f == F.taps_at else table[l, f]   # C: the codes' byte offset
                    if f not in (F.weights_at, F.thresholds_at, F.leak_at):    # (C: offsets into the blob)
                        assert getattr(ly, f.name) == want, (name, update, l, f.name)


# -- the loader's verdicts on FILTER sections ----------------------------------------------------

@pytest.fixture(scope="module")
def blob():
    return to_blob(psn_model([5, 7, 6, 3], 3, [1, 3], "sequence"))


def with_filter(blob, index, payload):
    """The blob with FILTER section ``index``'s payload replaced by bytes of the same length."""
    entry, at, size = section(blob, FILTER, index)
    assert len(payload) == size
    return resealed(blob[:at] + payload + blob[at + size:])


def code_at(codes, k, q):
    out = bytearray(codes)
    out[k] = q & 0xFF
    return bytes(out)


def test_a_psn_blob_is_version_5_and_accepted_by_both(blob):
    assert struct.unpack_from("<H", blob, 4)[0] == 5
    assert assert_agree(blob, "psn")
    check_blob(blob)


def test_filter_fields_out_of_range_are_refused_by_both(blob):
    entry, at, size = section(blob, FILTER, 0)
    fixed = bytes(blob[at:at + 4])
    codes = bytearray(blob[at + 4:at + size])
    cases = {
        "reserved byte": (bytes([fixed[0], 1]) + fixed[2:] + codes, "EL_ERR_RESERVED_FIELD", "reserved byte"),
        "dilation 0": (fixed[:2] + struct.pack("<H", 0) + codes, "EL_ERR_VALUE", "dilation 0"),
        "dilation 1025": (fixed[:2] + struct.pack("<H", 1025) + codes, "EL_ERR_VALUE", "dilation 1025"),
        "tap code 16": (fixed + code_at(codes, 4, 16), "EL_ERR_VALUE", "tap codes"),
        "tap code -16": (fixed + code_at(codes, 4, -16), "EL_ERR_VALUE", "tap codes"),
        "tap code -128": (fixed + code_at(codes, 4, -128), "EL_ERR_VALUE", "tap codes"),
        "first tap code 16": (fixed + code_at(codes, 0, 16), "EL_ERR_VALUE", "tap codes"),
    }
    for what, (payload, code, fragment) in cases.items():
        assert_both_refuse(with_filter(blob, 0, payload), code, fragment)
    for q in (15, -15, 0):                                  # the extremes are taps
        for k in (0, 4):
            assert assert_agree(with_filter(blob, 0, fixed + code_at(codes, k, q)), f"code {q} at {k}")


def test_filter_sizes_are_refused_by_both(blob):
    entry, at, size = section(blob, FILTER, 0)
    n_out = 7
    # K stated 2 or 4 for codes of 3 per channel: the size does not match; K 0 with no codes: no taps
    for K in (2, 4):
        assert_both_refuse(with_filter(blob, 0, bytes([K]) + blob[at + 1:at + size]), "EL_ERR_SECTION_SIZE",
                           "FILTER section 0")
    shrunk = poke(blob, entry + 8, "<I", 3)                  # shorter than its fixed part
    assert_both_refuse(resealed(shrunk), "EL_ERR_SECTION_SIZE", "FILTER section 0")
    zero_taps = poke(blob, entry + 8, "<I", 4)
    zero_taps = resealed(zero_taps[:at] + b"\0" + zero_taps[at + 1:])
    assert_both_refuse(zero_taps, "EL_ERR_VALUE", "filter taps 0")
    k17 = poke(blob, entry + 8, "<I", 4 + 17 * n_out)
    assert not assert_agree(resealed(k17[:at] + b"\x11" + k17[at + 1:]), "K 17")   # beyond the file: refused


def rebuilt(blob, drop=(), add=()):
    """The blob's sections, less the (type, index) in ``drop`` and with ``add`` (type, index, payload)
    appended, assembled anew (format 5) by tests/blob_verdicts.py's writer, not modelblob's."""
    kept = [(t, i, bytes(blob[at:at + size])) for _, t, i, at, size in entries(blob) if (t, i) not in drop]
    return assemble(kept + list(add), version=5)


def test_a_missing_or_a_stray_filter_section_is_refused_by_both(blob):
    assert assert_agree(rebuilt(blob), "rebuilt as is")
    assert_both_refuse(rebuilt(blob, drop=[(FILTER, 1)]), "EL_ERR_SECTION_MISSING", "FILTER")
    _, at, size = section(blob, FILTER, 0)
    assert_both_refuse(rebuilt(blob, add=[(FILTER, 5, blob[at:at + size])]), "EL_ERR_SECTION_INDEX", "FILTER")
    # layer 0 relabelled dense (the same weights' shape): a dense layer has no FILTER section
    assert_both_refuse(resealed(poke(blob, section(blob, LAYER, 0)[1], "<B", 0)), "EL_ERR_VALUE", "has no filter")
    # a version 4 blob cannot hold one
    assert_both_refuse(resealed(poke(blob, 4, "<H", 4)), "EL_ERR_SECTION_TYPE", "needs format version 5")


def test_a_psn_layer_that_learns_its_threshold_or_leak_is_refused_by_both(blob):
    _, at, _ = section(blob, LAYER, 0)
    for flag in (FLAG_LEARN_THRESHOLD, FLAG_LEARN_LEAK):
        assert_both_refuse(resealed(poke(blob, at + 2, "<B", blob[at + 2] | flag)), "EL_ERR_VALUE",
                           "learns its weights only")


def test_a_psn_layer_of_threshold_units_must_not_leak(blob):
    """A threshold unit's leak is not a parameter (leak_fixed_at_one, as an IF neuron's): EL_ONE only."""
    _, at, _ = section(blob, LEAK, 0)
    assert_both_refuse(poke(blob, at, "<i", 1 << 15), "EL_ERR_VALUE", "leak")


def test_threshold_units_in_a_dense_chain_learn_as_fixed_stop():
    """The threshold neuron is any layer's: dense layers of them learn their thresholds (and never a
    leak: the flag is dropped, its leak is one) in C as in FixedSTOP."""
    model = init_params(mlp("thr", [6, 10, 3], encoding="rate",
                            hidden=Neuron("threshold", threshold=0.4, learn_threshold=True, learn_leak=True),
                            learning=Learning(T=10, seed=4, lr_weight_shift=3, lr_threshold_shift=4)))
    model = model.validate()
    ref, c = FixedSTOP(model), NativeSTOP(model)
    xs, ys = stream(model, 8, seed=1)
    for i, (x, y) in enumerate(zip(xs, ys)):
        assert np.array_equal(ref.run(x[None], y[None], True), c.run(x[None], y[None], True))
        same_state(ref, c, f"dense threshold {i}")
    assert not np.array_equal(ref.thresholds, FixedSTOP(model).thresholds)     # they learned


@pytest.mark.parametrize("variant", ["readout rule", "lif hidden neurons"])
def test_variants_learn_as_fixed_stop(variant):
    """Rule readout (only the last psn layer learns: no lag-0 errors go down) and a psn layer of
    leaky neurons (the filter feeds any neuron kind; its membrane carries over) run alike."""
    model = psn_model(*CASES["sequence_two_hidden_sawtooth"])
    if variant == "readout rule":
        model = replace(model, learning=replace(model.learning, rule="readout")).validate()
        assert plan.tables(model)[2].max_lag0 == 0
    else:
        lif = Neuron("lif", threshold=0.3, leak=0.75, learn_threshold=False, learn_leak=False)
        model = replace(model, layers=tuple(replace(l, neuron=lif) if l.name != "readout" else l
                                            for l in model.layers))
        for layer in model.layers[:-1]:
            model.params[layer.name].leak = 49152
        model = model.validate()
    ref, c = FixedSTOP(model), NativeSTOP(model)
    xs, ys = stream(model, 8, seed=9)
    for i, (x, y) in enumerate(zip(xs, ys)):
        assert np.array_equal(ref.run(x[None], y[None], True), c.run(x[None], y[None], True)), f"{variant} {i}"
        same_state(ref, c, f"{variant} {i}")
    assert not np.array_equal(ref.weights, FixedSTOP(model).weights)
    assert np.array_equal(ref.buffers()["membrane"], c.buffers()["membrane"])


def test_threshold_units_may_have_any_threshold(blob):
    """No reset subtracts a threshold unit's threshold (memoryless): 0 and negative ones are valid to
    both loaders, and run alike; a LIF neuron's must stay > 0."""
    _, at, _ = section(blob, THRESHOLD, 0)
    for th in (0, -(1 << 16)):
        assert assert_agree(poke(blob, at, "<i", th), f"threshold {th}")
    model = psn_model(*CASES["sequence_one_hidden"])
    model.params["psn1"].threshold[::2] = -(1 << 14)
    model.params["psn1"].threshold[1::4] = 0
    model = model.validate()
    ref, c = FixedSTOP(model), NativeSTOP(model)
    xs, ys = stream(model, 4, seed=11)
    for x, y in zip(xs, ys):
        assert np.array_equal(ref.run(x[None], y[None], True), c.run(x[None], y[None], True))
        same_state(ref, c, "any threshold")
    lif = poke(blob, section(blob, LAYER, 0)[1] + 1, "<B", 0)      # layer 0's neurons as LIF (leak 1)
    assert assert_agree(lif, "lif")
    assert_both_refuse(poke(lif, at, "<i", 0), "EL_ERR_VALUE", "threshold must be > 0")

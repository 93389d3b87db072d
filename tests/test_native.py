"""The C runtime (targets/c) against the Python reference, bit for bit: primitives,
golden vectors, random models (hypothesis), 500 digits samples, every loader error
code, warnings-as-errors on the host and every cross target."""
import json
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from blob_bytes import LAYER, LEAK, MODEL, THRESHOLD, WEIGHTS, poke, section
from agree import assert_same_state
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgelearn import numerics as nx
from edgelearn import native
from edgelearn.executors.c import NativeSTOP
from edgelearn import profile as pf
from edgelearn.rules.stop.fixed import FixedSTOP
from edgelearn.model import Learning, Neuron, Schedule, init_params, mlp
from edgelearn.modelblob import BLOB_VERSION, from_blob, to_blob

GOLDEN = Path(__file__).parent / "golden" / "stop.json"
lib, ffi = native.load_native().lib, native.load_native().ffi


# -- primitives (docs/numerics.md §3 worked values) -------------------------------------

def test_primitives_match_the_contract_values():
    state = ffi.new("uint32_t *", 1)
    assert [lib.el_rng_next_export(state) for _ in range(3)] == [270369, 67634689, 2647435461]
    assert lib.el_crc32(0, b"123456789", 9) == 0xCBF43926
    assert [lib.el_round_shift_export(x, s) for x, s in [(-3, 1), (3, 1), (-1, 1), (-5, 2), (-6, 2), (6, 2), (3, -2)]] \
        == [-1, 2, 0, -1, -1, 2, 12]
    state = ffi.new("uint32_t *", 1)
    assert lib.el_stochastic_shift_export(100, 4, state) == 6
    assert [lib.el_surrogate(x, 1) for x in (0, 65536, -65536, 131070, 131071)] == [65536, 32768, 32768, 1, 0]


@settings(max_examples=300, deadline=None)
@given(p=st.integers(-(1 << 62) + 1, (1 << 62) - 1), s=st.integers(-4, 100), seed=st.integers(1, 2**32 - 1))
def test_stochastic_shift_equals_the_reference(p, s, seed):
    if s < 0:
        p >>= 8                                  # a left shift must stay inside int64
    state, ref = ffi.new("uint32_t *", seed), nx.new_rng(seed)
    assert lib.el_stochastic_shift_export(p, s, state) == nx.stochastic_shift(p, s, ref)
    assert state[0] == ref[0]


# -- golden vectors ---------------------------------------------------------------------

def golden_cases():
    return json.loads(GOLDEN.read_text())


def replay(net, case):
    scores = [net.run(np.array(b["samples"], dtype=np.uint8), np.array(b["labels"]), True).tolist()
              for b in case["batches"]]
    return scores


@pytest.mark.parametrize("case", golden_cases(), ids=lambda c: c["name"])
def test_c_runtime_reproduces_the_golden_vectors(case):
    net = NativeSTOP(from_blob(bytes.fromhex(case["blob"])))
    assert replay(net, case) == [b["scores"] for b in case["batches"]]
    assert net.weights.tolist() == case["weights"]
    assert net.thresholds.tolist() == case["thresholds"]
    assert net.leaks.tolist() == case["leaks"]
    assert (int(net.rng_input[0]), int(net.rng_learn[0])) == (case["rng_input"], case["rng_learn"])
    assert learned(net) == case["learned"]


@pytest.mark.parametrize("case", golden_cases(), ids=lambda c: c["name"])
def test_python_reference_still_produces_the_golden_vectors(case):
    net = FixedSTOP(from_blob(bytes.fromhex(case["blob"])))
    assert replay(net, case) == [b["scores"] for b in case["batches"]]
    assert net.weights.tolist() == case["weights"]
    assert (int(net.rng_input[0]), int(net.rng_learn[0])) == (case["rng_input"], case["rng_learn"])
    assert learned(net) == case["learned"]


def learned(net) -> int | None:
    schedule = net.to_model().schedule
    return None if schedule is None else schedule.learned


def test_golden_cases_cover_the_schedule():
    assert sum(c["learned"] is not None for c in golden_cases()) >= 2


# -- random models ----------------------------------------------------------------------

neurons = st.builds(Neuron, kind=st.sampled_from(["lif", "if"]), threshold=st.sampled_from([0.25, 0.5, 1.0, 1.5]),
                    leak=st.sampled_from([0.5, 0.75, 0.875, 1.0]), learn_threshold=st.booleans(),
                    learn_leak=st.booleans())


@st.composite
def random_models(draw):
    L = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 12)) for _ in range(L + 1)]
    readout = draw(st.one_of(neurons, st.builds(Neuron, kind=st.just("li"), leak=st.sampled_from([0.5, 0.9]),
                                                 learn_leak=st.booleans())))
    learning = Learning(rule=draw(st.sampled_from(["stop", "readout", "none"])), T=draw(st.integers(1, 6)),
                        lr_weight_shift=draw(st.integers(0, 12)), lr_threshold_shift=draw(st.integers(0, 12)),
                        lr_leak_shift=draw(st.integers(0, 14)), surrogate_shift=draw(st.integers(-2, 3)),
                        update=draw(st.sampled_from(["step", "sample"])), seed=draw(st.integers(0, 2**32 - 1)))
    model = mlp("h", sizes, encoding=draw(st.sampled_from(["direct", "rate", "events"])), hidden=draw(neurons),
                readout=readout, weight_frac=draw(st.integers(6, 14)), learning=learning)
    model = init_params(model, weight_gain=draw(st.sampled_from([1.0, 2.5, 4.0])))
    model.schedule = draw(st.none() | st.builds(Schedule, every=st.integers(1, 4), steps=st.integers(1, 40),
                                                learned=st.integers(0, 6) | st.just(0xFFFFFFFE)))
    return model.validate()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=random_models(), data=st.data())
def test_random_models_train_bit_exactly(model, data):
    ref, c = FixedSTOP(model), NativeSTOP(model)
    n, T, classes = model.input.size, model.learning.T, model.layers[-1].size
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    for step in range(data.draw(st.integers(1, 4))):
        B = data.draw(st.sampled_from([1, 1, 2, 4]))
        if model.input.encoding == "events":
            samples = rng.integers(0, 2, size=(B, data.draw(st.integers(1, T + 1)), n), dtype=np.uint8)
        else:
            samples = rng.integers(0, 256, size=(B, n), dtype=np.uint8)
        labels = rng.integers(0, classes, size=B)
        learn = data.draw(st.booleans()) or step == 0
        np.testing.assert_array_equal(ref.run(samples, labels, learn), c.run(samples, labels, learn))
        assert_same_state(ref, c)
    got, want = c.to_model(), ref.to_model()
    assert to_blob(got) == to_blob(want)


def test_500_digits_samples_give_bit_identical_parameters():
    from edgelearn.datasets import load_digits
    ds = load_digits()
    model = init_params(mlp("digits", [64, 128, 10]))
    ref, c = FixedSTOP(model), NativeSTOP(model)
    for i in range(500):
        x, y = ds.x_train[i:i + 1], ds.y_train[i:i + 1]
        np.testing.assert_array_equal(ref.run(x, y, True), c.run(x, y, True))
    assert to_blob(ref.to_model()) == to_blob(c.to_model())
    assert not np.array_equal(c.weights[:64 * 128], model.params["fc1"].weight.ravel())   # it learned


def test_a_per_step_model_trains_a_batch_like_the_reference():
    model = init_params(mlp("b", [16, 8, 4], learning=Learning(T=4, update="step")), weight_gain=2.5)
    ref, c = FixedSTOP(model), NativeSTOP(model)
    x = np.random.default_rng(1).integers(0, 256, size=(4, 16), dtype=np.uint8)
    np.testing.assert_array_equal(ref.run(x, np.arange(4), True), c.run(x, np.arange(4), True))
    assert c.buffers()["weight_grad"].size == 0          # lent for the batch only, as in FixedSTOP
    assert_same_state(ref, c)


# -- the loader refuses bad blobs, each with its own code --------------------------------

def small_blob(**learning):
    return to_blob(init_params(mlp("bad", [6, 5, 3], learning=Learning(**learning))))


def bad_blobs():
    good = small_blob()
    e_model, model_at, _ = section(good, MODEL)
    e_l1, l1_at, _ = section(good, LAYER, 1)
    e_w0, w0_at, _ = section(good, WEIGHTS, 0)
    _, th0_at, _ = section(good, THRESHOLD, 0)
    _, leak0_at, _ = section(good, LEAK, 0)
    count = struct.unpack_from("<I", good, 12)[0]
    yield "EL_ERR_TOO_SHORT", good[:31]
    yield "EL_ERR_BAD_MAGIC", b"ELRX" + good[4:]
    yield "EL_ERR_VERSION", poke(good, 4, "<H", BLOB_VERSION + 1)
    yield "EL_ERR_TRUNCATED", good[:-4]
    yield "EL_ERR_TRAILING", good + b"\0\0\0\0"
    flipped = bytearray(good)
    flipped[w0_at + 3] ^= 0x10
    yield "EL_ERR_CRC", bytes(flipped)
    yield "EL_ERR_HEADER_RESERVED", poke(good, 6, "<H", 1)
    yield "EL_ERR_TABLE_BOUNDS", poke(good, 12, "<I", count + 10_000)
    yield "EL_ERR_SECTION_TYPE", poke(good, e_w0, "<H", 9)
    yield "EL_ERR_SECTION_BOUNDS", poke(good, e_w0 + 4, "<I", len(good) - 4)
    yield "EL_ERR_SECTION_DUPLICATE", poke(good, e_l1 + 2, "<H", 0)
    yield "EL_ERR_SECTION_MISSING", poke(poke(good, e_model, "<H", LAYER), e_model + 2, "<H", 7)   # no MODEL
    yield "EL_ERR_SECTION_INDEX", poke(good, e_w0 + 2, "<H", 5)
    yield "EL_ERR_SECTION_SIZE", poke(good, e_w0 + 8, "<I", 4)
    yield "EL_ERR_UNKNOWN_CODE", poke(good, model_at + 10, "<B", 9)          # rule 9
    yield "EL_ERR_RESERVED_FIELD", poke(good, l1_at + 15, "<B", 1)
    yield "EL_ERR_SHAPE", poke(good, l1_at + 4, "<I", 4)                     # out_size != shape
    yield "EL_ERR_EDGE", poke(good, l1_at + 24, "<H", 7)                     # source beyond the layers
    yield "EL_ERR_VALUE", poke(good, th0_at, "<i", 0)                        # threshold must be > 0
    yield "EL_ERR_VALUE", poke(good, leak0_at, "<i", 65537)
    yield "EL_ERR_VALUE", poke(good, model_at + 12, "<B", 41)                # lr shift
    yield "EL_ERR_UNSUPPORTED", poke(good, l1_at + 26, "<H", 1)              # a delayed edge: not a chain
    yield "EL_ERR_SECTION_OVERLAP", poke(good, e_w0 + 4, "<I", model_at)     # WEIGHTS 0 over MODEL
    yield "EL_ERR_NAME", poke(good, l1_at + 28, "<B", 0xFF)                  # layer name not UTF-8


@pytest.mark.parametrize("code,blob", list(bad_blobs()), ids=[c for c, _ in bad_blobs()])
def test_loader_refuses_each_bad_blob_with_its_own_code(code, blob):
    assert native.STATUS_NAMES[native.init_status(blob, 1 << 16)] == code


def test_every_loader_error_code_is_covered():
    covered = {code for code, _ in bad_blobs()} | {"EL_ERR_ARENA_TOO_SMALL", "EL_ERR_MISALIGNED", "EL_ERR_ARGUMENT"}
    assert covered == set(native.STATUS_NAMES.values()) - {"EL_OK"}


def test_loader_refuses_a_model_too_big_for_the_arena_and_a_misaligned_blob():
    good = small_blob()
    need = native.arena_required(good)
    assert native.init_status(good, need) == lib.EL_OK
    assert native.STATUS_NAMES[native.init_status(good, need - 1)] == "EL_ERR_ARENA_TOO_SMALL"
    data = np.zeros(len(good) + 8, dtype=np.uint8)
    data[1:1 + len(good)] = np.frombuffer(good, dtype=np.uint8)
    p = ffi.new("el_plan_t *")
    assert native.STATUS_NAMES[lib.el_plan(ffi.from_buffer("uint8_t[]", data) + 1, len(good), 0, p)] \
        == "EL_ERR_MISALIGNED"
    assert native.STATUS_NAMES[lib.el_plan(ffi.NULL, 0, 0, p)] == "EL_ERR_ARGUMENT"


def test_a_stop_model_relabelled_spide_is_checked_as_spide():
    """SPIDE runs here now (tests/test_native_spide.py); a STOP chain with rule 3 poked in is
    checked against SPIDE's restrictions: Tb, then the topology (its readout is not 'li')."""
    blob = poke(small_blob(T=8), section(small_blob(T=8), MODEL)[1] + 10, "<B", 3)   # rule spide, Tb 0
    assert native.STATUS_NAMES[native.init_status(blob, 1 << 16)] == "EL_ERR_VALUE"
    blob = poke(blob, section(blob, MODEL)[1] + 22, "<H", 10)                       # not a power of two
    assert native.STATUS_NAMES[native.init_status(blob, 1 << 16)] == "EL_ERR_VALUE"
    blob = poke(blob, section(blob, MODEL)[1] + 22, "<H", 16)
    assert native.STATUS_NAMES[native.init_status(blob, 1 << 16)] == "EL_ERR_UNSUPPORTED"


# -- builds -----------------------------------------------------------------------------

def test_runtime_is_warning_free_c99_on_the_host(tmp_path):
    for src in pf.RUNTIME_SOURCES:
        subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wconversion", "-O2",
                        "-DEDGELEARN_ARENA_BYTES=4096", "-I", str(pf.C_DIR), "-c", str(pf.C_DIR / src),
                        "-o", str(tmp_path / "x.o")], check=True)


@pytest.mark.parametrize("target", [t for t, info in pf.catalogue().items() if info["toolchain"]])
def test_runtime_cross_compiles_with_werror(target):
    """Fails (not skips) without the cross toolchains: CI installs them."""
    build = pf.cross_compile(target, 21440)
    assert build.text > 1000 and build.bss >= 21440 and build.stack > 0


def test_a_schedule_stops_at_the_largest_shift_in_every_executor():
    """The schedule's shifts saturate at 40, the blob's limit (docs/numerics.md §6c): the C
    executor, which re-seals and reloads its blob for a batch, keeps training beside fixed,
    the count survives the reload, and the learned model stays valid with its base shifts."""
    from edgelearn.contract import MAX_LR_SHIFT
    model = init_params(mlp("slow", [8, 6, 3], learning=Learning(T=4, seed=5, lr_weight_shift=38)))
    model.schedule = Schedule(every=1, steps=5)
    data = np.random.default_rng(0).integers(0, 256, size=(4, 8)).astype(np.uint8)
    labels = np.array([0, 1, 2, 1])
    ref, c = FixedSTOP(model.copy()), NativeSTOP(model.copy())
    for net in (ref, c):
        net.run(data[:2], labels[:2], learn=True)            # a batch: the C executor reloads its blob
        net.run(data[2:3], labels[2:3], learn=True)
        net.run(data[3:4], labels[3:4], learn=False)         # inference does not count
    learning = model.learning
    expected = [min(v + 3, MAX_LR_SHIFT) for v in (learning.lr_weight_shift, learning.lr_threshold_shift,
                                                   learning.lr_leak_shift)]
    assert c.lr_shifts.tolist() == expected and expected[0] == MAX_LR_SHIFT and c.learned == 3
    assert_same_state(ref, c)
    got, want = c.to_model(), ref.to_model()
    assert got.schedule == want.schedule == Schedule(every=1, steps=5, learned=3)
    assert got.learning == want.learning == learning                    # the base shifts never change
    assert to_blob(got) == to_blob(want) == c.blob()

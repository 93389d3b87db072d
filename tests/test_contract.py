"""The C runtime's generated headers, its cffi declarations and its arena layout follow the
Python sources of truth (edgelearn.cgen, edgelearn.plan), checked mechanically."""
from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgelearn import cgen, native, plan
from edgelearn.modelblob import to_blob
from edgelearn.modelfile import load_model
from edgelearn.psnnet import make_net, to_model
from edgelearn.resources import MODELS

lib, ffi = native.load_native().lib, native.load_native().ffi


def test_committed_headers_are_fresh():
    for path, make in cgen.GENERATED.items():
        assert path.read_text() == make(), f"{path.name} is stale: run python -m edgelearn.cgen"
    assert cgen.main(["--check"]) == 0


def test_a_stale_header_is_reported(tmp_path, monkeypatch, capsys):
    copies = {}
    for path, make in cgen.GENERATED.items():
        (tmp_path / path.name).write_text(path.read_text())
        copies[tmp_path / path.name] = make
    (tmp_path / "el_plan.h").write_text("/* edited by hand */\n")
    monkeypatch.setattr(cgen, "GENERATED", copies)
    assert cgen.main(["--check"]) == 1
    assert "el_plan.h" in capsys.readouterr().err


def test_tables_have_the_c_layout():
    """numpy's aligned records, ctypes and the C compiler agree on el_layer_t / el_edge_t."""
    for ctype, fields in (("el_layer_t", plan.LAYER_FIELDS), ("el_edge_t", plan.EDGE_FIELDS)):
        assert ffi.sizeof(ctype) == plan.ELEMENT_BYTES[ctype] == plan.DTYPES[ctype].itemsize
        for f in fields:
            assert ffi.offsetof(ctype, f.name) == plan.DTYPES[ctype].fields[f.name][1], (ctype, f.name)
    assert [f.name for f in plan.LAYER_FIELDS] == [m.name for m in plan.LayerField]


def test_plan_struct_has_every_buffer_in_order():
    fields = [name for name, _ in ffi.typeof("el_plan_t").fields]
    assert fields == [*plan.BUFFER_NAMES, "total"]
    net_fields = dict(ffi.typeof("el_net_t").fields)
    for b in plan.BUFFERS:
        assert net_fields[b.name].type.cname == f"{b.ctype} *", b.name


dims = st.builds(plan.Dims, *[st.integers(0, 5000) for _ in plan.Dims._fields])


@settings(max_examples=200, deadline=None)
@given(dims, st.sampled_from(plan.RUNTIMES))
def test_c_layout_equals_python_layout(d, runtime):
    """el_layout (generated C) lays out any counts exactly as plan.layout does."""
    c_dims = ffi.new("el_dims_t *", d._asdict())
    p = ffi.new("el_plan_t *")
    assert lib.el_layout(plan.RUNTIMES.index(runtime), c_dims, p) == 1
    spans, total = plan.layout(d, runtime)
    assert p.total == total
    for name, (offset, size) in spans.items():
        span = getattr(p, name)
        assert (span.offset, span.bytes) == (offset, size), name


def psn_models():
    """Chains of psn layers (their rings: current_ring, the input rings in input_trace, error_lag0),
    learning per step and per sample, and one with no trainable layer."""
    for sizes, taps, dilations, encoding in (([5, 7, 6, 3], 3, [1, 3], "sequence"), ([8, 16, 3], 2, [5], "rate"),
                                             ([6, 9, 8, 4], 16, [1024, 1], "direct")):
        model = to_model(make_net(sizes, taps=taps, dilations=dilations, encoding=encoding, T=8))
        for learning in (model.learning, replace(model.learning, update="sample"), replace(model.learning, rule="none")):
            yield f"psn {sizes} {learning.rule} {learning.update}", replace(model, learning=learning).validate()


def test_the_loader_fills_the_counts_python_computes():
    """For the zoo's models and psn chains the C loader's plan (el_plan) equals the Python plan
    buffer by buffer."""
    models = [(path.name, load_model(path)) for path in sorted(MODELS.glob("*.json"))] + list(psn_models())
    for name, model in models:
        for weight_grad in (False, True):
            assert native.plan(to_blob(model), weight_grad) == plan.arena_plan(model, weight_grad), name


def test_cffi_declarations_come_from_the_headers():
    text = cgen.cdef()
    for b in plan.BUFFERS:
        assert f"{b.ctype} *{b.name};" in text
    assert "EL_BUFFER_POINTERS" not in text and "#" not in text
    assert "void el_lif_step(" in text and "uint32_t el_runtime_of(uint32_t rule);" in text


def test_health_counters_match_the_spec():
    from edgelearn.rules.spide.spec import HealthSlot
    assert plan.HEALTH_COUNTERS == len(HealthSlot) == lib.EL_HEALTH_COUNTERS
    assert np.all([getattr(lib, f"EL_H_{s.name.upper()}") == s.value for s in HealthSlot])


def test_every_kind_s_state_has_a_buffer_per_neuron():
    """A kind's declared state buffers are neuron buffers of the STOP arena (SPIDE keeps no
    potential: its LIF step writes U over the current, which it rebuilds every step)."""
    from edgelearn.ops import NEURONS
    per_neuron = {runtime: {b.name for b in plan.BUFFERS if b.sizes.get(runtime) in ("neurons", "state_neurons")}
                  for runtime in plan.RUNTIMES}      # state_neurons: the neurons of the layers with neurons
    for kind in NEURONS.values():
        assert set(kind.buffers) <= per_neuron["stop"], kind.name
        if kind.spiking:
            assert set(kind.buffers) - {"potential"} <= per_neuron["spide"], kind.name

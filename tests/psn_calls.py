"""How each PSN kernel (docs/numerics.md §5e) is called in Python and in C: the one table that the
golden-vector generator (tests/golden/make_psn_golden.py) and the replay (tests/test_psn_golden.py)
share, in the per-kernel pattern of tests/kernel_calls.py. A case's "inputs" hold every argument
(arrays as nested lists, their numpy types fixed here), its "outputs" what the kernel writes or
returns; the last op, "run_sample", is a whole network of psn layers (psnnet.to_model) learning a few
samples through the STOP runtimes (both PRNG states and every weight after them): the stream the
standalone PSN driver recorded, which FixedSTOP and NativeSTOP replay (tests/test_psn_kind.py too)."""
from __future__ import annotations

import numpy as np

from edgelearn.ops.layers import psn
from edgelearn.psnnet import Layer, PSNNet, to_model
from edgelearn.rules.stop.fixed import FixedSTOP

CONTRACT = "docs/numerics.md §5e"
TYPES = {"cur": "int32", "taps": "int8", "ring": "int32", "x": "int32", "xr": "int32", "W": "int16", "gW": "int64",
         "d": "int32", "out": "int32", "rng": "uint32"}


def arrays(inputs: dict) -> dict:
    return {k: (np.array(v, dtype=TYPES[k]) if k in TYPES else v) for k, v in inputs.items()}


def lists(values: dict) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else int(v)) for k, v in values.items()}


# -- Python -------------------------------------------------------------------------------------

def py_apply_tap(a):
    return {"return": int(psn.apply_tap(a["q"], a["v"]))}


def py_psn_filter(a):
    psn.psn_filter(a["cur"], a["taps"], a["dilation"], a["pos"], a["ring"])
    return {"ring": a["ring"], "cur": a["cur"]}


def py_psn_input_ring(a):
    psn.psn_input_ring(a["x"], a["x_frac"], a["pos"], a["xr"])
    return {"xr": a["xr"]}


def py_psn_update_weights(a):
    rng = np.array([a["rng"]], dtype=np.uint32)
    psn.psn_update_weights(a["W"], a["d"], a["taps"], a["dilation"], a["pos"], a["xr"], a["shift"], rng)
    return {"W": a["W"], "rng": int(rng[0])}


def py_psn_weight_grads(a):
    psn.psn_weight_grads(a["gW"], a["d"], a["taps"], a["dilation"], a["pos"], a["xr"])
    return {"gW": a["gW"]}


def py_psn_lag0_error(a):
    out = np.zeros(len(a["d"]), np.int32)
    psn.psn_lag0_error(a["taps"], a["d"], out)
    return {"out": out}


def network(a) -> PSNNet:
    layers = [Layer(ly["n_in"], ly["n_out"], np.array(ly["taps"], np.int8), ly["dilation"],
                    np.array(ly["weights"], np.int16), np.array(ly["thresholds"], np.int32), ly["w_frac"])
              for ly in a["layers"]]
    return PSNNet(layers, encoding=a["encoding"], T=a["T"], lr_weight_shift=a["lr_weight_shift"],
                  surrogate_shift=a["surrogate_shift"], seed=a["seed"])


def run_network(learner, a):
    samples = np.array(a["samples"], dtype=np.uint8)
    scores = [learner.run(samples[i:i + 1], np.array(a["labels"][i:i + 1]), bool(a["learn"][i]))[0].tolist()
              for i in range(len(samples))]
    return {"scores": scores, "weights": learner.weights.tolist(), "rng_input": int(learner.rng_input[0]),
            "rng_learn": int(learner.rng_learn[0])}


def py_run_sample(a):
    return run_network(FixedSTOP(to_model(network(a))), a)


PYTHON = {"apply_tap": py_apply_tap, "psn_filter": py_psn_filter, "psn_input_ring": py_psn_input_ring,
          "psn_update_weights": py_psn_update_weights, "psn_weight_grads": py_psn_weight_grads,
          "psn_lag0_error": py_psn_lag0_error, "run_sample": py_run_sample}
C_SYMBOLS = {"apply_tap": "el_psn_apply_tap", "psn_filter": "el_psn_filter", "psn_input_ring": "el_psn_input_ring",
             "psn_update_weights": "el_psn_update_weights", "psn_weight_grads": "el_psn_weight_grads",
             "psn_lag0_error": "el_psn_lag0_error", "run_sample": "el_run_sample"}
PY_SYMBOLS = {"apply_tap": "edgelearn.ops.layers.psn.apply_tap", "psn_filter": "edgelearn.ops.layers.psn.psn_filter",
              "psn_input_ring": "edgelearn.ops.layers.psn.psn_input_ring",
              "psn_update_weights": "edgelearn.ops.layers.psn.psn_update_weights",
              "psn_weight_grads": "edgelearn.ops.layers.psn.psn_weight_grads",
              "psn_lag0_error": "edgelearn.ops.layers.psn.psn_lag0_error",
              "run_sample": "edgelearn.rules.stop.fixed.run_sample"}


# -- C ------------------------------------------------------------------------------------------

def c_runner(op):
    """The kernels from the runtime's own module (edgelearn.native: el_psn.c is a runtime source)."""
    from edgelearn.native import load_native

    m = load_native()
    ffi, lib = m.ffi, m.lib

    def p(ctype, arr):
        assert arr.flags.c_contiguous                      # written in place: never a copy
        return ffi.cast(ctype + " *", ffi.from_buffer(arr))

    def run(a):
        if op == "apply_tap":
            return {"return": int(lib.el_psn_apply_tap(a["q"], a["v"]))}
        if op == "psn_filter":
            n, K = a["taps"].shape
            L = a["ring"].shape[1]
            lib.el_psn_filter(p("int32_t", a["cur"]), p("int8_t", a["taps"]), n, K, a["dilation"], L, a["pos"],
                              p("int32_t", a["ring"]))
            return {"ring": a["ring"], "cur": a["cur"]}
        if op == "psn_input_ring":
            n, L = a["xr"].shape
            lib.el_psn_input_ring(p("int32_t", a["x"]), n, a["x_frac"], L, a["pos"], p("int32_t", a["xr"]))
            return {"xr": a["xr"]}
        if op == "psn_update_weights":
            (n_out, n_in), K, L = a["W"].shape, a["taps"].shape[1], a["xr"].shape[1]
            rng = np.array([a["rng"]], dtype=np.uint32)
            lib.el_psn_update_weights(p("int16_t", a["W"]), n_out, n_in, p("int32_t", a["d"]), p("int8_t", a["taps"]),
                                      K, a["dilation"], L, a["pos"], p("int32_t", a["xr"]), a["shift"],
                                      p("uint32_t", rng))
            return {"W": a["W"], "rng": int(rng[0])}
        if op == "psn_weight_grads":
            (n_out, n_in), K, L = a["gW"].shape, a["taps"].shape[1], a["xr"].shape[1]
            lib.el_psn_weight_grads(p("int64_t", a["gW"]), n_out, n_in, p("int32_t", a["d"]), p("int8_t", a["taps"]),
                                    K, a["dilation"], L, a["pos"], p("int32_t", a["xr"]))
            return {"gW": a["gW"]}
        if op == "psn_lag0_error":
            n, K = a["taps"].shape
            out = np.zeros(n, np.int32)
            lib.el_psn_lag0_error(p("int8_t", a["taps"]), p("int32_t", a["d"]), n, K, p("int32_t", out))
            return {"out": out}
        if op == "run_sample":
            from edgelearn.executors.c import NativeSTOP
            return run_network(NativeSTOP(to_model(network(a))), a)
        raise KeyError(op)
    return run


def header(op: str) -> dict:
    return {"op": op, "python": PY_SYMBOLS[op], "c": C_SYMBOLS[op], "contract": CONTRACT}

"""The C executor: the C runtime of targets/c, built for the host (edgelearn.native), with
the interface of the fixed-point executors and the arithmetic of the device.

A model reaches the C side only as its blob (``to_blob``), so every run exercises the C
loader; the parameters, and the learning-rate schedule's count of samples learned
(docs/numerics.md §6c), are learned in place in that blob, and ``to_model`` reads them
back through ``el_seal`` (which refreshes the CRC) and ``from_blob``. Buffers are views of
the C arena at the spans of its el_plan_t, typed by edgelearn.plan. A layer of int8 weights
keeps them as int8 in the blob, and learns them there (docs/numerics.md §1)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..contract import WEIGHTS_INT8
from ..encoders import as_rows
from ..errors import TrainingDiverged
from ..model import Model
from ..modelblob import from_blob, to_blob
from ..native import NativeError, aligned_bytes, load_native
from ..ops import LAYERS, Exactness
from ..plan import BUFFER_DTYPES, BUFFER_NAMES
from ..rules.spide import spec as spide_spec
from ..rules.spide.fixed import read_health
from ..rules.stop import spec as stop_spec


LAYER_CODES = {kind.code: kind for kind in LAYERS.values()}


class NativeSTOP:
    """STOP in the C runtime: the interface of FixedSTOP, the arithmetic of the device."""

    exactness = Exactness.BIT
    weight_bits = (16, 8)          # an int8 layer's weights stay int8 in the blob (EL_WEIGHTS_INT8)

    def __init__(self, model: Model):
        stop_spec.check(model)
        self.model = model
        self._m = load_native()
        self._blob = aligned_bytes(to_blob(model))
        self.per_step = model.learning.update == "step"
        self._net = self._m.ffi.new("el_net_t *")
        self._init(weight_grad=False)

    def _init(self, weight_grad: bool, keep_state: bool = False) -> None:
        """(Re)lay out the arena; ``keep_state`` carries both PRNG streams over (the parameters
        and the schedule's count live in the blob and persist anyway)."""
        ffi, lib, net = self._m.ffi, self._m.lib, self._net
        saved = None
        if keep_state:
            lib.el_seal(net)               # the learned parameters changed the CRC
            saved = (net.rng_input, net.rng_learn, {name: self._view(name).copy() for name in BUFFER_NAMES})
        options = lib.EL_PLAN_WEIGHT_GRAD if weight_grad else 0
        blob = ffi.from_buffer("uint8_t[]", self._blob)
        total = lib.el_arena_required(blob, len(self._blob), options)
        self._arena = np.zeros(max(1, total // 8), dtype=np.int64)
        st = lib.el_init(net, blob, len(self._blob), ffi.from_buffer("uint8_t[]", self._arena), total, options)
        if st != lib.EL_OK:
            raise NativeError(st, f"the C runtime refused model {self.model.name!r}")
        if saved:
            net.rng_input, net.rng_learn = saved[0], saved[1]
            for name, old in saved[2].items():   # the state of the last sample, as FixedSTOP keeps it
                view = self._view(name)
                if view.size == old.size:
                    view[:] = old
        self._has_weight_grad = weight_grad or not self.per_step

    def _view(self, name: str) -> np.ndarray:
        span = getattr(self._net.plan, name)
        raw = self._arena.view(np.uint8)[span.offset:span.offset + span.bytes]
        return raw.view(BUFFER_DTYPES[name])

    def _parameter(self, at: str, dtype, count) -> list[np.ndarray]:
        """Each layer's array at its offset ``at`` in the blob: ``count(ly)`` elements of
        ``dtype(ly)``."""
        out = []
        for l in range(self._net.layer_count):
            ly = self._net.layers[l]
            start, stored = getattr(ly, at), np.dtype(dtype(ly))
            out.append(self._blob[start:start + count(ly) * stored.itemsize].view(stored))
        return out

    @property
    def weights(self) -> np.ndarray:
        """Every layer's weights as int16, as FixedSTOP holds them (an int8 layer's widened)."""
        return np.concatenate(self._parameter("weights_at", lambda ly: np.int8 if ly.flags & WEIGHTS_INT8 else np.int16,
                                              lambda ly: ly.w_rows * ly.w_cols)).astype(np.int16)

    @property
    def thresholds(self) -> np.ndarray:
        return np.concatenate(self._parameter("thresholds_at", lambda ly: np.int32,
                                              lambda ly: ly.n_out if LAYER_CODES[ly.kind].has_neurons else 0))

    @property
    def leaks(self) -> np.ndarray:
        return np.concatenate(self._parameter("leak_at", lambda ly: np.int32, lambda ly: 1)).astype(np.int64)

    @property
    def rng_input(self) -> np.ndarray:
        return np.array([self._net.rng_input], dtype=np.uint32)

    @property
    def rng_learn(self) -> np.ndarray:
        return np.array([self._net.rng_learn], dtype=np.uint32)

    @property
    def lr_shifts(self) -> np.ndarray:
        """The effective shifts (weight, threshold, leak) an update made now would use: the
        base shifts plus the schedule's decay at the current count (el_lr_shift)."""
        return np.array([self._m.lib.el_lr_shift(self._net, k) for k in range(3)], dtype=np.int64)

    @property
    def learned(self) -> int:
        """The samples learned, as the blob's SCHEDULE section counts them (0 without one)."""
        return int(self._m.lib.el_learned(self._net))

    def arena_bytes(self) -> int:
        """What the C runtime reserves in its arena for this model (el_plan_t.total)."""
        return int(self._net.plan.total)

    def buffers(self) -> dict[str, np.ndarray]:
        """Every array the runtime holds, by name: the parameters (copies of the blob's
        sections), the arena buffers (live views) and the PRNG states."""
        return {"weights": self.weights, "thresholds": self.thresholds, "leaks": self.leaks,
                **{name: self._view(name) for name in BUFFER_NAMES},
                "rng_input": self.rng_input, "rng_learn": self.rng_learn}

    def _run(self, sample, label: int, learn: bool, per_step: bool) -> np.ndarray:
        rows = np.ascontiguousarray(as_rows(np.asarray(sample)), dtype=np.uint8)
        st = self._m.lib.el_run_sample(self._net, self._m.ffi.from_buffer("uint8_t[]", rows), rows.shape[0],
                                       label, learn, per_step)
        if st != self._m.lib.EL_OK:
            raise NativeError(st, "el_run_sample failed")
        return self._view("scores").copy()

    def infer(self, samples: np.ndarray, cutoff: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Inference with the model's cutoff (el_set_cutoff), or for T steps: the scores
        [B, classes] where each sample stopped and the steps it ran [B]."""
        if cutoff:
            stop_spec.cutoff_margins(self.model)          # the ModelError of a model without one
        st = self._m.lib.el_set_cutoff(self._net, int(cutoff))
        if st != self._m.lib.EL_OK:
            raise NativeError(st, "el_set_cutoff failed")
        try:
            scores = np.empty((len(samples), self.model.readout.size), dtype=np.int64)
            steps = np.empty(len(samples), dtype=np.int64)
            for b, sample in enumerate(samples):
                scores[b] = self._run(sample, -1, False, False)
                steps[b] = self._net.steps
        finally:
            self._m.lib.el_set_cutoff(self._net, 0)
        return scores, steps

    def run(self, samples: np.ndarray, labels: np.ndarray | None, learn: bool) -> np.ndarray:
        """Present a batch (one sample: online learning); return scores [B, classes].
        A batch of B > 1 accumulates and applies once, B must be a power of two."""
        B = len(samples)
        if learn and B > 1 and B & (B - 1):
            raise ValueError(f"fixed-point batches must be a power of two, got {B}")
        per_step = self.per_step and B == 1
        borrowed = learn and not per_step and not self._has_weight_grad   # as FixedSTOP lends gW
        if borrowed:
            self._init(weight_grad=True, keep_state=True)
        out = np.stack([self._run(samples[b], int(labels[b]) if learn else -1, learn, per_step)
                        for b in range(B)])
        if learn and not per_step:
            self._m.lib.el_apply_accumulated(self._net, B.bit_length() - 1)
        if borrowed:
            self._init(weight_grad=False, keep_state=True)
        return out

    def health(self, reset: bool = False) -> dict:
        """STOP keeps no health counters (SPIDE does)."""
        return {}

    def blob(self) -> bytes:
        """The model file with the learned parameters and schedule count (CRC refreshed)."""
        self._m.lib.el_seal(self._net)
        return self._blob.tobytes()

    def _schedule(self):
        """The model's schedule with the count the C side reached (it owns the counter)."""
        schedule = self.model.schedule
        return None if schedule is None else replace(schedule, learned=self.learned)

    def to_model(self) -> Model:
        learned = from_blob(self.blob())
        out = self.model.copy()
        out.params = learned.params
        out.schedule = self._schedule()
        return out.validate()


class NativeSPIDE(NativeSTOP):
    """SPIDE in the C runtime: the interface of FixedSPIDE (``run``, ``buffers``,
    ``to_model``, ``health``, ``loop_gain``), the arithmetic of the device."""

    weight_bits = (16,)            # SPIDE's kernels store int16 weights (rules/spide/spec.py)

    def __init__(self, model: Model):
        spide_spec.check(model)
        self.model = model
        self._m = load_native()
        self._blob = aligned_bytes(to_blob(model))
        self.per_step = False
        self._net = self._m.ffi.new("el_net_t *")
        self._init(weight_grad=False)
        gain = self.loop_gain()             # as FixedSPIDE: refused when the loop does not contract
        if gain >= 1.0:
            raise spide_spec.not_contractive(gain)

    @property
    def lr_shift(self) -> int:
        """The weights' effective shift for the next sample (the schedule's, el_lr_shift)."""
        return int(self._m.lib.el_lr_shift(self._net, 0))

    @property
    def scores(self) -> np.ndarray:
        return self._view("scores").copy()

    def _run(self, sample, label: int, learn: bool, per_step: bool = False) -> np.ndarray:
        rows = np.ascontiguousarray(as_rows(np.asarray(sample)), dtype=np.uint8)
        st = self._m.lib.el_spide_run_sample(self._net, self._m.ffi.from_buffer("uint8_t[]", rows), rows.shape[0],
                                             label, learn)
        if st != self._m.lib.EL_OK:
            raise NativeError(st, "el_spide_run_sample failed")
        dead = int(self._view("health")[spide_spec.HealthSlot.dead_run])
        if learn and dead >= spide_spec.DEAD_WINDOW:
            raise TrainingDiverged(spide_spec.dead_equilibrium(dead))
        return self._view("scores").copy()

    def run(self, samples: np.ndarray, labels: np.ndarray | None, learn: bool) -> np.ndarray:
        """Present samples one after the other; learn online when asked. Returns the readout
        scores o (Q16), [B, classes]."""
        if learn and len(samples) > 1:
            raise ValueError("fixed-point SPIDE learns online (batch 1): its gradient scale is chosen per sample")
        return np.stack([self._run(x, int(labels[b]) if learn else -1, learn) for b, x in enumerate(samples)])

    def loop_gain(self) -> float:
        """The feedback loop's gain bound (el_spide_loop_gain, Q16 / ONE)."""
        return self._m.lib.el_spide_loop_gain(self._net) / 65536

    def health(self, reset: bool = False) -> dict:
        """The health signals since construction (or the last reset; docs/spide.md §7)."""
        return read_health(self._view("health"), self.model.learning.T, self.loop_gain(), reset)

    def to_model(self) -> Model:
        learned = from_blob(self.blob())
        out = self.model.copy()
        for layer in out.layers:
            out.params[layer.name].weight = learned.params[layer.name].weight.copy()
        out.schedule = self._schedule()
        return out.validate()

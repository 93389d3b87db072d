"""STOP in float64: the mathematics, stated plainly (the fixed-point twin follows it).

LIF with reset by subtraction, leak applied after reset (per layer l, per step t):

    U[t] = a * (U[t-1] - th * s[t-1]) + W x[t]          s[t] = U[t] >= th
    V[t] = U[t] - th * s[t]                             (post-reset membrane)

Forward traces, each the derivative of U[t] with the reset path detached:

    x^[t] = a * x^[t-1] + x[t]                          dU/dW  = x^      (one per input)
    th~[t] = a * (th~[t-1] - s[t-1])                    dU/dth = th~
    a~[t] = a * a~[t-1] + V[t-1]                        dU/da  = a~

Spatial errors within the same step, with a triangle surrogate phi:

    d_L = dE[t]/ds_L * phi(U_L - th_L),   E[t] = 1/2 |s_L[t] - y|^2
    d_l = (W_{l+1}^T d_{l+1}) * phi(U_l - th_l)

Gradients: dW = d x^T, dth = d * (th~ - 1), da = sum(d * a~). A non-spiking leaky
integrator readout ('li') has U[t] = a*U[t-1] + W x[t] and d_L = U_L[t] - y.
Arrays are batch-first ([B, n]); online learning is B = 1. Each layer's neuron step and
current are its kinds' float steps (edgelearn.ops), so a registered kind runs here as is.

Anytime inference (docs/numerics.md §6b): ``infer`` stops each sample after the first step t
< T-1 at which the readout's top-1 score exceeds its top-2 by more than the model's margin
m[t]; ``score_trajectories`` gives the cumulative scores after every step. Both report scores
in the contract's units (spike counts; an 'li' readout's summed potential times 2^16, i.e.
Q16), so one set of margins serves both twins. The gap is compared in float64.

The RCS regulariser (``regulariser=w > 0``; after Wu et al., arXiv 2301.09522: reciprocal
cosine similarity). It makes each spiking hidden layer's per-step representation

    r[t] = s[t] + relu(V[t])                            (V: the membrane after reset)

point, at every step, in the direction of its late mean, on samples the network already
gets right late, so the readout is confident early and the cutoff stops sooner:

    q      = mean of r[t] over the last n = max(1, floor(late_fraction T)) steps (detached)
    cos[t] = r[t].q / (|r[t]|e |q|e),   |v|e = sqrt(|v|^2 + 1e-5)
    cs     = (1/T) sum_t cos[t],        R = 1 / (cs + 1e-5)
    loss   = sum_t E[t] + w * mask * (1/|S|) sum_{l in S} R_l      (per sample; a batch
             averages it as it does the rest; the paper's code takes the batch's max)

with S the spiking hidden layers that receive errors (from the lowest trainable one up to,
not including, the readout) and mask = 1 when the readout's scores summed over the late
window have a unique leader and it is the label (the paper's code asks every late step's
output to be right; one spike per step cannot say that, the window's sum can). The
constants are the paper's. The readout is left out, as in the paper (whose readout is a
non-spiking classifier): STOP's per-step loss E[t] already asks the readout for the right
answer at every step, and a regularised spiking readout finds the trivial optimum, the
same spikes every step whatever the input (measured on digits, 64-64-10, T = 16: test
accuracy 0.35 at weight 0.3 with rate coding on one seed, 0.1-0.2 at weights 10-100, while
hidden-only keeps 0.91-0.96 up to weight 30).

STOP is forward-mode and online: the error of step t is needed at step t, but q, cs and the
mask are known only at the end of the sample. Hence two passes per learning sample: an
inference pass (no traces, no learning, the same encoded inputs, the input stream drawn
once) gives q, cs and the mask per layer; then the learning pass adds to each regularised
layer's error at step t

    g[t] = dR/dr[t] = -(w mask / |S|) (1 / (T (cs + 1e-5)^2)) (q/(|r|e |q|e) - cos[t] r[t]/|r[t]|e^2)
    d[t] += g[t] * (phi(U[t] - th) + 1[V[t] > 0])      (dr/dU: surrogate spike + relu, reset detached)

before it is propagated down (so lower layers receive it through STOP's spatial path), and
the threshold gradient gets g[t] 1[V>0] (1 - s[t]) beside d (th~ - 1), since
dV/dth = th~ - s while STOP's d (th~ - 1) assumes ds/dth = phi (th~ - 1). When the
parameters are constant during the sample (update "sample", batches) pass 1's values are
exactly pass 2's and the update is the exact gradient of the loss above with STOP's usual
detachments (tests/test_cutoff_regulariser.py checks it by complex-step differentiation);
with per-step updates, q, cs and the mask are those of the parameters at the sample's start
and r[t] the current one. A single pass with a stale target (last epoch's q) was rejected:
its target would belong to other parameters. Cost: a second forward pass, and the T encoded
inputs and the T r[t] of the regularised layers are kept for the sample (a device could
stay flat in T with three passes: q, then cs, then learning; the rate stream replays from a
saved state).

Is there a shift-only fixed-point form? No, not a faithful one. The products and sums
(r.q, |r|^2) are integer MACs, q may be the late *sum* (cos is scale-invariant in q, so no
division by n), but the gradient needs |r|e |q|e (two square roots), the ratio cos[t]/|r|e^2
and 1/cs^2: per layer and step a few scalar divisions and one integer square root. Rounding
the norms to powers of two (the only shift-only option) breaks the projection
q/(|r||q|) - cos r/|r|^2, which is orthogonal to r only when those ratios are exact: with a
factor-of-two error it keeps a component along r of the size of the signal itself, a
gradient on the scale of r that cos, being scale-invariant, does not have. An integer form
with one isqrt (shifts and subtractions) and a few divisions per layer-step (hardware
divide on Cortex-M3 and up) is possible; it is not implemented.
"""
from __future__ import annotations

import numpy as np

from ... import numerics as nx
from ...contract import LEARN_LEAK, LEARN_THRESHOLD, TRAINABLE
from ...encoders import CODES, DRAWING, as_rows, encode_step
from ...errors import ModelError
from ...model import Model
from ...ops import LAYERS, NEURONS, Exactness
from ...plan import layer_flags
from ..schedule import LearningRates
from . import spec
from .kernels import top2_gap_rows
from .spec import THRESHOLD_FLOOR, check

RCS_NORM_EPS = 1e-5     # added to squared norms in the cosine (the paper's constant)
RCS_EPS = 1e-5          # added to the mean cosine before its reciprocal (the paper's)


def cosine(r, q):
    """cos(r, q) over the last axis with the paper's epsilon: r.q / (|r|e |q|e),
    |v|e = sqrt(|v|^2 + 1e-5). Written with v*v (not |v|^2) so a complex step works."""
    return np.sum(r * q, axis=-1) / np.sqrt((np.sum(r * r, axis=-1) + RCS_NORM_EPS) *
                                            (np.sum(q * q, axis=-1) + RCS_NORM_EPS))


def rcs(r, q):
    """The reciprocal cosine similarity 1 / (mean_t cos(r[t], q) + 1e-5): r [T, ..., n],
    q [..., n] (the detached late target); returns [...]."""
    return 1.0 / (np.mean(cosine(r, q), axis=0) + RCS_EPS)


def rcs_grad(r_t, q, cs, T: int):
    """d rcs / d r[t] at one step: r_t, q [B, n], cs [B] the mean cosine over the T steps."""
    nr2 = np.sum(r_t * r_t, axis=-1) + RCS_NORM_EPS
    nq = np.sqrt(np.sum(q * q, axis=-1) + RCS_NORM_EPS)
    cos = np.sum(r_t * q, axis=-1) / (np.sqrt(nr2) * nq)
    dcos = q / (np.sqrt(nr2) * nq)[:, None] - (cos / nr2)[:, None] * r_t
    return -(1.0 / (T * (cs + RCS_EPS) ** 2))[:, None] * dcos


def late_steps(T: int, late_fraction: float) -> int:
    """How many final steps make the late target: max(1, floor(late_fraction T))."""
    return max(1, int(np.floor(late_fraction * T + 1e-9)))


def top2_gaps(scores: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 score per row (0 on a tie): the contract's top2_gap (§6b) on each row."""
    scores = np.asarray(scores)
    return top2_gap_rows(np.ascontiguousarray(scores.reshape(-1, scores.shape[-1]))).reshape(scores.shape[:-1])


class FloatSTOP:
    """Float64 STOP over a model's (dequantised) parameters.

    ``regulariser`` (keyword-only, >= 0; 0 = off) weighs the RCS regulariser and
    ``late_fraction`` (in (0, 1]) sets its late window; see the module docstring."""

    exactness = Exactness.MATH
    weight_bits = (16, 8)          # float weights; to_model rounds each layer to its own width

    def __init__(self, model: Model, *, regulariser: float = 0.0, late_fraction: float = 0.25):
        check(model)
        for name, value in (("regulariser", regulariser), ("late_fraction", late_fraction)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ValueError(f"{name} must be a number, got {value!r}")
        if not (np.isfinite(regulariser) and regulariser >= 0):
            raise ValueError(f"regulariser (the RCS weight) must be a finite number >= 0 (0: off), got {regulariser!r}")
        if not 0.0 < late_fraction <= 1.0:       # also refuses NaN
            raise ValueError(f"late_fraction must be in (0, 1]: the share of the T steps whose mean is the "
                             f"regulariser's target, got {late_fraction!r}")
        self.regulariser = float(regulariser)
        self.late_fraction = float(late_fraction)
        self.model = model
        self.layer_kinds = [LAYERS[l.kind] for l in model.layers]
        self.has_neurons = [kind.has_neurons for kind in self.layer_kinds]
        self.kinds = [NEURONS[l.neuron.kind] if l.neuron is not None else None for l in model.layers]
        shapes = model.shapes()
        self.geometry = [model.geometry(l, shapes) for l in model.layers]
        self.W = [nx.from_fixed(model.params[l.name].weight, l.weight_frac) for l in model.layers]
        self.th = [nx.from_fixed(model.params[l.name].threshold, nx.STATE_FRAC) for l in model.layers]
        self.a = [model.params[l.name].leak / nx.ONE for l in model.layers]
        self.spiking = [kind is not None and kind.spiking for kind in self.kinds]
        # what a layer without neurons writes, in the fixed point's integers (an average's counts)
        self.out_scale = [2.0 ** k.out_frac(g) for k, g in zip(self.layer_kinds, self.geometry)]
        flags = layer_flags(model)                    # which layers learn what: as the device decides
        self.trainable = [l for l, f in enumerate(flags) if f & TRAINABLE]
        self.learn_th = [bool(f & LEARN_THRESHOLD) for f in flags]
        self.learn_a = [bool(f & LEARN_LEAK) for f in flags]
        cfg = model.learning
        self.learning_rates = LearningRates(model)      # the model's schedule (docs/numerics.md §6c)
        self.halfwidth = 2.0 ** cfg.surrogate_shift
        self.rng_input = nx.new_rng(cfg.seed)      # the same input stream as the device
        self.grads = self.zero_grads()
        lowest = min(self.trainable) if self.trainable else len(self.W)
        # S: the spiking hidden layers that receive errors (never the readout: see the module docstring)
        self.regularised = [l for l in range(lowest, len(self.W) - 1) if self.spiking[l]]
        if self.regulariser > 0 and not self.regularised:
            raise ValueError(f"the RCS regulariser acts on trainable spiking hidden layers; rule "
                             f"{model.learning.rule!r} on this model trains none (use rule 'stop' with a hidden layer)")

    # -- state ----------------------------------------------------------------------
    def init_state(self, batch: int) -> dict:
        z = lambda n: [np.zeros((batch, n)) for n in n]
        sizes = self.model.sizes()
        outs = [layer.size for layer in self.model.layers]
        ins = [kind.traces(self.model.fan_in(layer, sizes), layer.size, layer.ring)   # the input traces' count
               for kind, layer in zip(self.layer_kinds, self.model.layers)]
        return {"V": z(outs), "s": z(outs), "U": z(outs), "th_tr": z(outs), "a_tr": z(outs),
                "x_tr": z(ins), "d": z(outs)}

    def zero_grads(self) -> dict:
        """Gradient sums; ``rows`` marks the weight rows touched since the last apply
        (few neurons have a non-zero surrogate, so most rows are never visited)."""
        return {"W": [np.zeros_like(w) for w in self.W], "th": [np.zeros_like(t) for t in self.th],
                "a": [0.0 for _ in self.a], "rows": [np.zeros(w.shape[0], dtype=bool) for w in self.W]}

    def phi(self, x):
        return np.maximum(0.0, 1.0 - np.abs(x) / self.halfwidth)

    # -- one time step ------------------------------------------------------------------
    def forward_step(self, st: dict, x: np.ndarray, traces: bool) -> np.ndarray:
        inp = x
        for l, W in enumerate(self.W):
            if not self.has_neurons[l]:       # a fixed map of its input (pooling): its values pass on
                inp = st["s"][l] = self.layer_kinds[l].forward_float(W, inp, self.geometry[l])
                continue
            a = self.a[l]
            n_in = inp.shape[1]
            if traces:      # traces read V[t-1], s[t-1]: update them before the neuron
                st["th_tr"][l] = a * (st["th_tr"][l] - st["s"][l])
                st["a_tr"][l] = a * st["a_tr"][l] + st["V"][l]
                st["x_tr"][l][:, :n_in] = a * st["x_tr"][l][:, :n_in] + inp
            kind = self.kinds[l]
            values = {"threshold": self.th[l], "leak": a, "reset_shift": 0}
            params = kind.Params(**{name: values[name] for name in kind.Params._fields})
            state = kind.State(st["V"][l], st["U"][l])
            if self.layer_kinds[l].scans:            # it steps its neurons in its scan (scan2d)
                out, (st["V"][l], st["U"][l]) = self.layer_kinds[l].scan_float(W, inp, self.geometry[l], kind, params,
                                                                               state)
                if traces:                           # and its own spikes' traces, of this step
                    st["x_tr"][l][:, n_in:] = a * st["x_tr"][l][:, n_in:] + out
            else:
                current = self.layer_kinds[l].forward_float(W, inp, self.geometry[l])
                out, (st["V"][l], st["U"][l]) = kind.step_float(current, state, params)
            if self.spiking[l]:
                st["s"][l] = out
            inp = out
        return inp

    def error_step(self, st: dict, y: np.ndarray, targets: dict | None = None) -> None:
        """Spatial errors of this step, top-down; y is the one-hot target [B, classes].
        ``targets`` (from ``regulariser_targets``) adds the RCS term to each regularised
        (hidden) layer's error before it is propagated down."""
        L = len(self.W) - 1
        if self.spiking[L]:
            st["d"][L] = (st["s"][L] - y) * self.phi(st["U"][L] - self.th[L])
        else:
            st["d"][L] = st["U"][L] - y
        self.propagate_errors(st, targets)

    def propagate_errors(self, st: dict, targets: dict | None = None) -> None:
        """The hidden layers' errors of this step from the readout's error ``st["d"][-1]``
        (dE/dU of the readout), top-down through each layer's kind and surrogate (STOP's
        spatial path; a host trainer sets its own readout error: edgelearn/host_train.py)."""
        L = len(self.W) - 1
        lowest = min(self.trainable)
        for l in range(L - 1, lowest - 1, -1):
            up = l + 1                        # the errors above, carried back by that layer's kind
            back = self.layer_kinds[up].back_float(self.W[up], st["d"][up], self.geometry[up], st["s"][l])
            if not self.has_neurons[l]:       # a pool passes dE/d(its output) on, no surrogate
                st["d"][l] = back
                continue
            phi = self.phi(st["U"][l] - self.th[l])
            st["d"][l] = back * phi
            if targets is not None and l in targets["coef"]:
                self.add_rcs_error(st, l, phi, targets)

    # -- the RCS regulariser ----------------------------------------------------------------
    def representation(self, st: dict, l: int) -> np.ndarray:
        """r[t] = s[t] + relu(V[t]) of layer l, [B, n]."""
        return st["s"][l] + np.maximum(st["V"][l], 0.0)

    def regulariser_targets(self, inputs: list, labels: np.ndarray) -> dict:
        """Pass 1 (inference on the encoded ``inputs`` [T][B, n], no learning): per
        regularised layer the late target q [B, n] and the mean cosine cs [B]; ``correct``
        [B], whether the late window's summed readout has a unique leader equal to the
        label; ``coef`` per layer [B]: w mask / |S| (the factor of rcs_grad)."""
        T, B = len(inputs), len(labels)
        n_late = late_steps(T, self.late_fraction)
        st = self.init_state(B)
        r = {l: np.empty((T, B, self.model.layers[l].size)) for l in self.regularised}
        late = np.zeros((B, self.model.readout.size))
        for t, x in enumerate(inputs):
            out = self.forward_step(st, x, traces=False)
            for l in r:
                r[l][t] = self.representation(st, l)
            if t >= T - n_late:
                late += out
        correct = (np.argmax(late, axis=1) == np.asarray(labels)) & (top2_gaps(late) > 0)
        q = {l: r[l][T - n_late:].mean(axis=0) for l in r}
        cs = {l: np.mean(cosine(r[l], q[l]), axis=0) for l in r}
        coef = self.regulariser / len(self.regularised) * correct.astype(np.float64)
        return {"q": q, "cs": cs, "correct": correct, "coef": {l: coef for l in r}, "T": T}

    def add_rcs_error(self, st: dict, l: int, phi: np.ndarray, targets: dict) -> None:
        """d[l] += g (phi + 1[V > 0]) with g = w mask/|S| d rcs/d r[t]; keep the threshold
        correction g 1[V > 0] (1 - s) that ``accumulate`` adds."""
        coef = targets["coef"][l]
        if not np.any(coef):
            st.setdefault("th_fix", {})[l] = None
            return
        g = coef[:, None] * rcs_grad(self.representation(st, l), targets["q"][l], targets["cs"][l], targets["T"])
        above = (st["V"][l] > 0).astype(np.float64)
        st["d"][l] = st["d"][l] + g * (phi + above)
        st.setdefault("th_fix", {})[l] = g * above * (1.0 - st["s"][l])

    def similarity(self, samples: np.ndarray, early_fraction: float | None = None) -> dict[int, np.ndarray]:
        """Inference (no learning) measuring, per spiking layer, each sample's mean cosine of
        r[t] with its late target q: over all T steps (the regulariser's cs), or over the
        first ``early_fraction`` of the steps. {layer: [B]}; draws the input stream as run."""
        inputs = list(self.batch_inputs(samples))
        T = len(inputs)
        n_late = late_steps(T, self.late_fraction)
        st = self.init_state(len(samples))
        layers = [l for l in range(len(self.W)) if self.spiking[l]]
        r = {l: np.empty((T, len(samples), self.model.layers[l].size)) for l in layers}
        for t, x in enumerate(inputs):
            self.forward_step(st, x, traces=False)
            for l in layers:
                r[l][t] = self.representation(st, l)
        upto = T if early_fraction is None else max(1, int(np.floor(early_fraction * T + 1e-9)))
        return {l: np.mean(cosine(r[l][:upto], r[l][T - n_late:].mean(axis=0)), axis=0) for l in layers}

    def accumulate(self, st: dict, g: dict) -> None:
        fix = st.get("th_fix", {})        # the regulariser's threshold correction, if on
        for l in self.trainable:
            if not self.has_neurons[l]:
                continue
            d = st["d"][l]
            rows, grad = self.layer_kinds[l].grad_float(d, st["x_tr"][l], self.geometry[l])
            g["W"][l][rows] += grad
            g["rows"][l][rows] = True
            if self.learn_th[l]:
                g["th"][l] += np.sum(d * (st["th_tr"][l] - 1.0), axis=0)
                if fix.get(l) is not None:
                    g["th"][l] += np.sum(fix[l], axis=0)
            if self.learn_a[l]:
                g["a"][l] += float(np.sum(d * st["a_tr"][l]))

    def apply(self, g: dict, scale: float = 1.0) -> None:
        """Descend by the sums in ``g`` and clear them, at the schedule's current rates."""
        lr_w, lr_th, lr_a = self.learning_rates.rates()
        for l in self.trainable:
            rows = g["rows"][l]
            self.W[l][rows] -= lr_w * scale * g["W"][l][rows]
            g["W"][l][rows] = 0.0
            rows[:] = False
            if self.learn_th[l]:     # the floor binds where a threshold moves, as on the device
                moved = g["th"][l] != 0
                self.th[l][moved] = np.maximum(THRESHOLD_FLOOR, self.th[l][moved] - lr_th * scale * g["th"][l][moved])
                g["th"][l][:] = 0.0
            if self.learn_a[l]:
                self.a[l] = float(np.clip(self.a[l] - lr_a * scale * g["a"][l], 0.0, 1.0))
                g["a"][l] = 0.0

    # -- samples --------------------------------------------------------------------------
    def spike_raster(self, sample: np.ndarray) -> np.ndarray:
        """Inference on one sample, recording every neuron's spikes: [T, neurons]."""
        st = self.init_state(1)
        rows = []
        for x in self.batch_inputs(sample[None]):
            self.forward_step(st, x, traces=False)
            rows.append(np.concatenate([s[0] * scale for s, scale in zip(st["s"], self.out_scale)]))
        return np.array(rows, dtype=np.uint8)

    def encode(self, sample: np.ndarray, t: int) -> np.ndarray:
        """One sample's input at step t, from the device's input stream."""
        out = np.zeros(self.model.input.size, dtype=np.int32)
        frac = encode_step(CODES[self.model.input.encoding], as_rows(sample), t, self.rng_input, out)
        return out / float(1 << frac)

    def batch_inputs(self, samples: np.ndarray):
        """The inputs of a batch, [T][B, n]: one sample is encoded step by step (memory
        flat in T); a batch is encoded sample after sample, the order in which the device
        draws its input stream."""
        T = self.model.learning.T
        if len(samples) == 1:
            return (self.encode(samples[0], t)[None] for t in range(T))
        per_sample = [[self.encode(x, t) for t in range(T)] for x in samples]
        return (np.stack([steps[t] for steps in per_sample]) for t in range(T))

    def run(self, samples: np.ndarray, labels: np.ndarray | None, learn: bool) -> np.ndarray:
        """Present a batch for T steps; learn when asked. Returns the readout scores
        (spike counts, or summed membrane for an 'li' readout), [B, classes]."""
        update = self.model.learning.update
        learn = learn and bool(self.trainable)
        st = self.init_state(len(samples))
        scores = np.zeros((len(samples), self.model.readout.size))
        y = targets = None
        inputs = self.batch_inputs(samples)
        if learn:
            y = np.zeros_like(scores)
            y[np.arange(len(samples)), labels] = 1.0
            g = self.grads      # cleared by every apply
            if self.regulariser > 0 and self.regularised:     # pass 1: the late targets
                inputs = list(inputs)
                targets = self.regulariser_targets(inputs, labels)
        for x in inputs:
            scores += self.forward_step(st, x, traces=learn)
            if learn:
                self.error_step(st, y, targets)
                self.accumulate(st, g)
                if update == "step" and len(samples) == 1:
                    self.apply(g)
        if learn:
            self.learning_rates.count(len(samples))
        if learn and (update == "sample" or len(samples) > 1):
            self.apply(g, 1.0 / len(samples))
        return scores

    # -- anytime inference (docs/numerics.md §6b) -----------------------------------------
    def score_scale(self) -> float:
        """Float scores to the contract's units: 1 for spike counts, 2^16 for an 'li' readout."""
        return 1.0 if self.spiking[-1] else float(nx.ONE)

    def infer(self, samples: np.ndarray, cutoff: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Inference that stops each sample after the first step t < T-1 whose top-2 gap
        exceeds the model's margin m[t] (``cutoff``), else T steps: (scores [B, classes]
        float in the contract's units, where each sample stopped; steps [B] int64). The
        input stream advances only for the steps run, as on the device: with an encoder
        that draws (rate) the samples run one after the other. A ModelError if the model
        has no cutoff."""
        T = self.model.learning.T
        margins = None
        if cutoff:
            margins = spec.cutoff_margins(self.model).astype(np.float64)   # float(2^63 - 1): never
            if margins.shape != (T,):
                raise ModelError(f"cutoff: {margins.size} margins for T = {T} steps; recalibrate for this T")
        scale = self.score_scale()
        B = len(samples)
        scores = np.zeros((B, self.model.readout.size))
        steps = np.full(B, T, dtype=np.int64)
        chunk = 1 if self.model.input.encoding in DRAWING else B     # a drawing encoder: in the device's order
        for lo in range(0, B, chunk):
            part = slice(lo, min(lo + chunk, B))
            sc, live = scores[part], np.ones(part.stop - part.start, dtype=bool)
            st = self.init_state(len(live))
            for t, x in enumerate(self.batch_inputs(samples[part])):
                out = self.forward_step(st, x, traces=False)
                sc[live] += scale * out[live]
                if margins is not None and t + 1 < T:
                    stop = live & (top2_gaps(sc) > margins[t])
                    steps[part][stop] = t + 1
                    live &= ~stop
                    if not live.any():
                        break       # an unfinished generator draws nothing more
        return scores, steps

    def score_trajectories(self, samples: np.ndarray) -> np.ndarray:
        """Full-T inference recording the cumulative scores after every step, in the
        contract's units: float [B, T, classes] (the last row is ``run``'s scores, scaled)."""
        T = self.model.learning.T
        out = np.zeros((len(samples), T, self.model.readout.size))
        st = self.init_state(len(samples))
        acc = np.zeros((len(samples), self.model.readout.size))
        for t, x in enumerate(self.batch_inputs(samples)):
            acc += self.forward_step(st, x, traces=False)
            out[:, t] = acc
        return out * self.score_scale()

    def health(self, reset: bool = False) -> dict:
        """STOP keeps no health counters (SPIDE does)."""
        return {}

    def buffers(self) -> dict[str, np.ndarray]:
        """The float64 parameters it learns, by layer."""
        out = {}
        for layer, W, th, a in zip(self.model.layers, self.W, self.th, self.a):
            out.update({f"{layer.name}.weight": W, f"{layer.name}.threshold": th, f"{layer.name}.leak": np.array([a])})
        return out

    def to_model(self) -> Model:
        """The current parameters quantised back into a model (round to nearest)."""
        out = self.model.copy()
        for l, layer in enumerate(out.layers):
            p = out.params[layer.name]
            p.weight = nx.to_fixed(self.W[l], layer.weight_frac, *layer.weight_range, np.int16)
            p.threshold = nx.to_fixed(self.th[l], nx.STATE_FRAC)
            p.leak = int(nx.to_fixed(self.a[l], nx.STATE_FRAC))
        out.schedule = self.learning_rates.state()
        return out.validate()

"""The default recipe's data-adaptive start: initial weight scales and the weight learning
rate chosen from a few training samples, instead of constants tuned for MNIST pixels
(docs/training.md).

- **Initial scale, layer by layer** (LSUV, Mishkin & Matas, "All you need is a good init",
  ICLR 2016, adapted to spiking layers): each layer's weights are scaled so that the
  currents it receives from the calibration samples have a standard deviation of
  ``CURRENT_STD`` thresholds, whatever the input's range, density or encoding. Layer l's
  input is what layer l-1 fires once layer l-1 is scaled, so the layers are fitted in order.
- **Weight learning rate** (the normalised LMS step, Haykin, *Adaptive Filter Theory*,
  ch. 6): an update of size lr moves a layer-0 current by about lr · |x|², so a rate that
  is stable for one input energy E = E|x_t|² is too large for a much larger one (inverted
  pixels: E = 662 against MNIST's 87). ``lr_weight_shift = max(DEFAULT, ceil(log2 E))``:
  the rule only ever slows the default rate 2^-6 down, because below MNIST's energy
  (digits E = 15, sparse events E = 2..10) the measured best rate stays 2^-6
  (docs/training.md); the threshold's shift stays ``THRESHOLD_SHIFT_OFFSET`` above it.

Only the host does this, once, before training: the result is an ordinary model whose
parameters and shifts the device receives as always."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from . import numerics as nx
from .encoders import CODES, as_rows, encode_step
from .errors import ModelError
from .model import Learning, Model
from .ops import LAYERS, NEURONS
from .plan import runtime_of

CURRENT_STD = 0.5             # in thresholds; what the MNIST default (gain 1.5 on pixels) gives layer 0
THRESHOLD_SHIFT_OFFSET = 2    # lr_threshold_shift - lr_weight_shift of the defaults (6 and 8)
CALIBRATION_SAMPLES = 64
MAX_ADAPTED_LR_SHIFT = 20


@dataclass(frozen=True)
class Fit:
    """What ``fit_to_data`` chose and measured."""
    input_energy: float                  # E|x_t|^2 of the encoded inputs (real units)
    scales: dict[str, float]             # each layer's weight multiplier
    current_std: dict[str, float]        # each layer's current std after scaling, in its thresholds
    rates: dict[str, float]              # each layer's spike rate (spikes per neuron per step) after scaling
    lr_weight_shift: int
    lr_threshold_shift: int


def encoded_inputs(model: Model, samples: np.ndarray) -> np.ndarray:
    """The encoder's output for every step of every sample, real units: [B * T, n]. The
    rate code draws from a throwaway stream seeded like the model's (statistics only)."""
    T, code = model.learning.T, CODES[model.input.encoding]
    rng = nx.new_rng(model.learning.seed)
    out = np.zeros((len(samples) * T, model.input.size))
    x = np.zeros(model.input.size, dtype=np.int32)
    for b, sample in enumerate(samples):
        for t in range(T):
            frac = encode_step(code, as_rows(sample), t, rng, x)
            out[b * T + t] = x / float(1 << frac)
    return out


def spike_rows(model: Model, samples: np.ndarray) -> list[np.ndarray]:
    """Every layer's spikes for every step of every sample, by the fixed-point reference:
    per layer [B * T, n_out]."""
    from .rules.stop.fixed import FixedSTOP      # the rules import this package's model layer
    net = FixedSTOP(model.copy())
    rasters = np.concatenate([net.spike_raster(s) for s in samples])
    bounds = np.cumsum([0] + [layer.size for layer in model.layers])
    return [rasters[:, lo:hi].astype(np.float64) for lo, hi in zip(bounds[:-1], bounds[1:])]


def fit_to_data(model: Model, samples: np.ndarray, *, learning_rate: bool = True) -> tuple[Model, Fit]:
    """A copy of ``model`` with each layer's weights scaled to the data (and, with
    ``learning_rate``, its weight and threshold shifts chosen from the input energy).
    STOP-runtime models (a feed-forward chain); ``samples``: a few training samples."""
    if runtime_of(model) != "stop":
        raise ModelError(f"fitting the initial weights to the data is for STOP models; rule "
                         f"{model.learning.rule!r} starts from its own initialisation")
    if len(samples) == 0:
        raise ModelError("fitting the initial weights to the data needs at least one training sample")
    samples = samples[:CALIBRATION_SAMPLES]
    out = model.copy()
    x = encoded_inputs(out, samples)
    energy = float(np.mean(np.sum(x * x, axis=1)))
    if energy == 0.0:
        raise ModelError(f"the {len(samples)} calibration samples give no input at all (every encoded value "
                         "is 0): nothing can be learned from them")
    scales, stds = {}, {}
    inputs = x
    for l, layer in enumerate(out.layers):
        kind, g = LAYERS[layer.kind], out.geometry(layer)
        if kind.has_neurons:                                # a pool has no weights to fit
            p = out.params[layer.name]
            w = p.weight.astype(np.float64) / (1 << layer.weight_frac)
            threshold = np.mean(p.threshold) / nx.ONE if NEURONS[layer.neuron.kind].spiking else 1.0
            std = float(np.std(kind.forward_float(w, inputs, g))) / threshold
            scale = CURRENT_STD / std if std > 0 else 1.0   # a silent input below leaves the layer as it is
            p.weight = nx.to_fixed(w * scale, layer.weight_frac, *layer.weight_range, np.int16)
            scales[layer.name] = scale
            fitted = p.weight.astype(np.float64) / (1 << layer.weight_frac)
            stds[layer.name] = float(np.std(kind.forward_float(fitted, inputs, g))) / threshold
        if l + 1 < len(out.layers):                         # what it outputs, in real units (an average's counts
            inputs = spike_rows(out, samples)[l] / (1 << kind.out_frac(g))     # are in Q(log2 kh kw))
    rates = {layer.name: float(r.mean()) for layer, r in zip(out.layers, spike_rows(out, samples))}
    lr = model.learning
    if learning_rate:
        shift = min(max(math.ceil(math.log2(energy)), Learning().lr_weight_shift), MAX_ADAPTED_LR_SHIFT)
        out.learning = replace(lr, lr_weight_shift=shift, lr_threshold_shift=shift + THRESHOLD_SHIFT_OFFSET)
    fit = Fit(energy, scales, stds, rates, out.learning.lr_weight_shift, out.learning.lr_threshold_shift)
    return out.validate(), fit

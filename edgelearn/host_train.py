"""Training a one-time-step STOP model (T = 1) on the host, in batches, then quantising it for the
fixed-point executors (docs/one-step.md, "Trained on the host"). The network is the float twin's
(``FloatSTOP``): its forward step, its spatial errors (``propagate_errors``) and its gradient sums
(``accumulate``) are the layers' registered float functions, so every layer kind the twin runs
(scan2d, conv2d, pools, dense) trains here as it is.

At T = 1 the twin's STOP gradient is the gradient of the loss of the one step with two exceptions:

- a spike's derivative is the surrogate phi(U - th) (triangle, half-width 2^surrogate_shift), the
  twin's; the thresholds learn through it (ds/dth = -phi: the trace th~ is zero at the first step);
- a scan2d layer's recurrence within the step is detached: a neuron's error is not sent on to the
  neighbours whose spikes it read, and those spikes count as constants (their own dependence on
  the weights is ignored); the recurrent weights still learn from the spikes they multiplied.

Everything else (the fields, the pools, the convolutions, the dense layers) is exact: T = 1 has no
earlier step whose paths STOP would detach, so the leaks have nothing to learn and do not.

The loss is the cross-entropy of softmax(scale * U) with the label, U the 'li' readout's potential
(the score the device classifies by argmax; a spiking readout says 0 or 1 at T = 1 and is refused),
averaged over the batch. The optimiser is Adam on the weights and the learned thresholds, the rate
on a cosine to 0, optionally with decoupled weight decay; after each step the weights are clipped
to their layer's Q w_frac range and the thresholds to the device's floor, so ``FloatSTOP.to_model``
(round to nearest) saturates nothing."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .augment import shift_images
from .errors import ModelError
from .psn_bptt import Adam, cosine_epochs, cross_entropy
from .rules.stop.float import FloatSTOP
from .rules.stop.spec import THRESHOLD_FLOOR


def check(net: FloatSTOP) -> None:
    """The trainer's scope: T = 1 and a non-spiking readout whose potential is the score."""
    model = net.model
    if model.learning.T != 1:
        raise ModelError(f"the host trainer trains one-time-step models (T = 1); {model.name!r} has "
                         f"T = {model.learning.T}")
    if net.spiking[-1]:
        raise ModelError(f"the host trainer's loss reads the readout's potential: give {model.name!r} an 'li' "
                         f"readout (its {model.readout.neuron.kind!r} readout scores spikes, 0 or 1 at T = 1)")
    if not net.trainable:
        raise ModelError(f"rule {model.learning.rule!r} trains no layer of {model.name!r}")


def inputs(net: FloatSTOP, samples: np.ndarray) -> np.ndarray:
    """The encoder's input of each sample at the one step, [B, n] (the twin's, from the device's stream)."""
    return next(iter(net.batch_inputs(samples)))


def parameters(net: FloatSTOP) -> list[tuple[str, int]]:
    """What learns: ("W", l) per trainable layer with weights, ("th", l) where its thresholds learn."""
    out = []
    for l in net.trainable:
        if net.has_neurons[l]:
            out.append(("W", l))
            if net.learn_th[l]:
                out.append(("th", l))
    return out


def loss_and_grads(net: FloatSTOP, X: np.ndarray, labels: np.ndarray, scale: float = 1.0):
    """(loss, scores [B, classes], grads) of a batch X [B, n]: grads as ``FloatSTOP.zero_grads``
    ({"W": [...], "th": [...]}) hold d loss / d parameter, the gradient described above."""
    st = net.init_state(len(X))
    scores = net.forward_step(st, X, traces=True)
    loss, g_scores = cross_entropy(scores, np.asarray(labels), scale)
    st["d"][-1] = g_scores                   # the readout's error: d loss / dU (its potential is the score)
    net.propagate_errors(st)
    grads = net.zero_grads()
    net.accumulate(st, grads)
    return loss, scores, grads


def scores(net: FloatSTOP, x: np.ndarray, batch: int = 500) -> np.ndarray:
    """The readout's potentials of every sample, batch by batch (inference, no learning)."""
    out = []
    for i in range(0, len(x), batch):
        st = net.init_state(len(x[i:i + batch]))
        out.append(net.forward_step(st, inputs(net, x[i:i + batch]), traces=False))
    return np.concatenate(out)


def accuracy(net: FloatSTOP, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(scores(net, x), axis=1) == np.asarray(y)))


def weight_limits(net: FloatSTOP) -> list[tuple[float, float]]:
    """Each layer's representable weights, in real units: its int range over 2^w_frac."""
    return [(lo / 2.0 ** layer.weight_frac, hi / 2.0 ** layer.weight_frac)
            for layer in net.model.layers for lo, hi in [layer.weight_range]]


def train(net: FloatSTOP, x: np.ndarray, labels: np.ndarray, epochs: int, *, batch: int = 128, lr: float = 2e-3,
          scale: float = 1.0, weight_decay: float = 0.0, shift: int = 0, image_shape: tuple | None = None,
          seed: int = 0, on_epoch: Callable[[int, float], None] | None = None,
          progress: Callable[[int], None] | None = None) -> list[float]:
    """Adam on the T = 1 gradient, the rate on a cosine from ``lr`` to 0 over all the batches;
    ``weight_decay`` > 0 shrinks the weights (not the thresholds) by rate * weight_decay * W after
    each step (decoupled, as AdamW: a threshold is the neuron's only bias); ``shift`` > 0 moves
    every training image by up to that many pixels each epoch (edgelearn.augment, ``image_shape``
    its shape). ``on_epoch(epoch, mean loss)`` after each
    epoch (epoch from 0), ``progress(n)`` after each batch. Returns the mean loss of each epoch."""
    check(net)
    if epochs < 0 or batch < 1 or not weight_decay >= 0:
        raise ValueError(f"epochs >= 0, batch >= 1 and weight_decay >= 0, got {epochs}, {batch} and {weight_decay}")
    rng = np.random.default_rng(seed)
    learned = parameters(net)
    params = [getattr(net, "W" if key == "W" else "th")[l] for key, l in learned]
    limits = weight_limits(net)
    opt, seen = Adam(lr=lr), [x]

    def epoch_start(epoch) -> None:
        seen[0] = shift_images(x, image_shape, shift, rng) if shift else x

    def step(idx, rate) -> float:
        loss, _, grads = loss_and_grads(net, inputs(net, seen[0][idx]), labels[idx], scale)
        opt.step(params, [grads[key][l] for key, l in learned], rate)
        for key, l in learned:
            if key == "W":
                if weight_decay:
                    net.W[l] *= 1.0 - rate * weight_decay
                np.clip(net.W[l], *limits[l], out=net.W[l])
            else:
                np.maximum(net.th[l], THRESHOLD_FLOOR, out=net.th[l])
        return loss

    return cosine_epochs(len(x), epochs, batch, lr, rng, step, epoch_start, on_epoch, progress)

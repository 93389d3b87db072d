"""Training a PSN stack on the host through time (docs/psn.md §3, "the stack, on the host"): the float
twin's network (``FloatPSN``) over a batch of whole sequences at once, then its device codes
(``FloatPSN.to_net``) for the fixed-point executors.

A PSN layer has no recursion: its filter is a causal dilated convolution over time, per channel, so a
whole sequence [batch, T, n] goes through a layer in one pass (the paper trains it in parallel):

    I = x W^T                      [B, T, n_out]
    H[:, t] = sum_k P(c)[:, k] I[:, t - k D]       (the device's taps: P = the power-of-two projection)
    s = H >= th (hidden layers)    U = H (the readout)        scores = sum_t U

The backward runs the same graph in reverse, with every temporal path (nothing detached, unlike the
online rule): the filter's adjoint is the anti-causal filter dI[:, t] = sum_k P(c)[:, k] dH[:, t + k D],
a spike's derivative is the online rule's triangle surrogate phi(H - th) (half-width 2^k), the taps
learn through P with the straight-through estimate (dc~ = dP(c)) and stay clipped to P's range [-1, 1],
a threshold's derivative is -phi (learned thresholds are the only bias a PSN layer has).

The loss is the cross-entropy of softmax(scale * sum_t U) with the label, averaged over the batch:
the device classifies by argmax sum_t U, so the loss reads the same scores, and the softmax lets the
network spend its readout on the steps that tell classes apart (a per-step squared error, the online
rule's, asks every step, even the first rows of an image, to give the label). ``scale`` (default 1/T,
the mean over steps) only sets the initial logits' size; the argmax does not depend on it.

The optimiser is Adam (numpy); after each step the weights are clipped to the device's Q w_frac range
so that quantising them (to_net) saturates nothing."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .psnnet import FloatPSN, phi


def inputs(fl: FloatPSN, samples: np.ndarray, dtype=np.float64) -> np.ndarray:
    """The encoder's input of every sample, [B, T, n] (FloatPSN.inputs, sample by sample)."""
    return np.stack([fl.inputs(s) for s in samples]).astype(dtype, copy=False)


def _taps(fl: FloatPSN, dtype) -> list:
    return [c.astype(dtype) for c in fl.taps()]


def forward(fl: FloatPSN, X: np.ndarray, keep: bool = False):
    """scores [B, n_out] = sum_t U over a batch of sequences X [B, T, n_in] (the arithmetic of X's
    dtype); with ``keep``, also the per-layer (input, current, filtered current) for the backward."""
    dtype = X.dtype
    taps, cache, x = _taps(fl, dtype), [], X
    T = X.shape[1]
    for l, (W, c, D) in enumerate(zip(fl.W, taps, fl.dilation)):
        current = x @ W.astype(dtype).T
        H = np.zeros_like(current)
        for k in range(c.shape[1]):
            lag = k * D
            if lag < T:
                H[:, lag:] += c[:, k] * current[:, :T - lag]
        if keep:
            cache.append((x, current, H))
        if l < len(fl.W) - 1:
            x = (H >= np.asarray(fl.th[l], dtype)).astype(dtype)
    scores = H.sum(axis=1)
    return (scores, cache) if keep else scores


def backward(fl: FloatPSN, cache: list, g_scores: np.ndarray):
    """The gradients (by W, by the latent taps c~ through P, by the thresholds) of a loss whose
    derivative by the scores is ``g_scores`` [B, n_out]: every temporal path, the spikes through phi."""
    nl = len(fl.W)
    dtype = g_scores.dtype
    taps = _taps(fl, dtype)
    gW, gc, gth = [None] * nl, [None] * nl, [np.zeros_like(np.asarray(t, float)) for t in fl.th]
    T = cache[0][0].shape[1]
    gH = np.broadcast_to(g_scores[:, None, :], cache[-1][2].shape)     # d scores / d U[t] = 1
    for l in range(nl - 1, -1, -1):
        x, current, _ = cache[l]
        c, D = taps[l], fl.dilation[l]
        g_cur = np.zeros_like(current)
        gc[l] = np.zeros(c.shape)
        for k in range(c.shape[1]):
            lag = k * D
            if lag < T:
                gc[l][:, k] = np.einsum("btj,btj->j", gH[:, lag:], current[:, :T - lag])
                g_cur[:, :T - lag] += c[:, k] * gH[:, lag:]
        gW[l] = (g_cur.reshape(-1, g_cur.shape[2]).T @ x.reshape(-1, x.shape[2])).astype(np.float64)
        if l:
            H_below = cache[l - 1][2]
            th = np.asarray(fl.th[l - 1], dtype)
            gH = (g_cur @ fl.W[l].astype(dtype)) * phi(H_below - th, fl.k).astype(dtype)
            gth[l - 1] = -gH.sum(axis=(0, 1)).astype(np.float64)
    return gW, gc, gth


def cross_entropy(scores: np.ndarray, labels: np.ndarray, scale: float):
    """The batch's mean cross-entropy of softmax(scale * scores) and its derivative by the scores."""
    z = scale * scores
    z = z - z.max(axis=1, keepdims=True)
    log_total = np.log(np.exp(z).sum(axis=1))
    B = len(labels)
    loss = np.mean(log_total - z[np.arange(B), labels])
    p = np.exp(z - log_total[:, None])
    p[np.arange(B), labels] -= 1.0
    return float(loss), p * (scale / B)


def loss_and_grads(fl: FloatPSN, X: np.ndarray, labels: np.ndarray, scale: float | None = None):
    """(loss, scores, gW, gc, gth) of a batch: the through-time gradient of the cross-entropy."""
    scale = 1.0 / fl.T if scale is None else scale
    scores, cache = forward(fl, X, keep=True)
    loss, g = cross_entropy(scores, np.asarray(labels), scale)
    return (loss, scores, *backward(fl, cache, g))


@dataclass
class Adam:
    """Adam (Kingma & Ba) over a list of arrays, updated in place."""
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    t: int = 0
    m: list = field(default_factory=list)
    v: list = field(default_factory=list)

    def step(self, params: list, grads: list, lr: float | None = None) -> None:
        if not self.m:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.t += 1
        lr = self.lr if lr is None else lr
        a = lr * np.sqrt(1 - self.beta2 ** self.t) / (1 - self.beta1 ** self.t)
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m += (1 - self.beta1) * (g - m)
            v += (1 - self.beta2) * (g * g - v)
            p -= a * m / (np.sqrt(v) + self.eps)


def cosine_epochs(n: int, epochs: int, batch: int, lr: float, rng, step, epoch_start=None, on_epoch=None,
                  progress=None) -> list[float]:
    """The host trainers' loop (this module's and edgelearn.host_train's): each epoch ``epoch_start(epoch)``,
    then mini-batches of ``batch`` in a permutation drawn from ``rng``, each ``step(indices, rate)`` ->
    its mean loss, the rate on a cosine from ``lr`` to 0 over all the batches; ``progress(n)`` after
    each batch, ``on_epoch(epoch, mean loss)`` after each epoch. Returns the mean loss of each epoch."""
    per_epoch = -(-n // batch)
    total, losses = epochs * per_epoch, []
    for epoch in range(epochs):
        if epoch_start:
            epoch_start(epoch)
        order, epoch_loss = rng.permutation(n), 0.0
        for b in range(per_epoch):
            idx = order[b * batch:(b + 1) * batch]
            epoch_loss += step(idx, lr * 0.5 * (1 + np.cos(np.pi * (epoch * per_epoch + b) / total))) * len(idx)
            if progress:
                progress(len(idx))
        losses.append(epoch_loss / n)
        if on_epoch:
            on_epoch(epoch, losses[-1])
    return losses


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(scores, axis=1) == np.asarray(labels)))


def evaluate(fl: FloatPSN, X: np.ndarray, batch: int = 500) -> np.ndarray:
    """The scores of every sequence of X, batch by batch."""
    return np.concatenate([forward(fl, X[i:i + batch]) for i in range(0, len(X), batch)])


def train(fl: FloatPSN, X: np.ndarray, labels: np.ndarray, epochs: int, batch: int = 64, lr: float = 2e-3,
          w_limit: float = 32767 / 4096, learn_thresholds: bool = True, scale: float | None = None,
          seed: int = 0, on_epoch=None, progress=None) -> list[float]:
    """Adam on the through-time gradient, the rate on a cosine from ``lr`` to 0 over the epochs;
    weights, the hidden layers' latent taps (when fl.learn_taps) and thresholds (``learn_thresholds``)
    learn, the readout's taps stay; weights are clipped to [-w_limit, w_limit] (Q12's range by default).
    ``on_epoch(epoch, mean loss)`` after each epoch; ``progress(n)`` after each batch. Returns the
    mean training loss of each epoch."""
    rng = np.random.default_rng(seed)
    nl = len(fl.W)
    fl.th = [np.asarray(t, np.float64).copy() for t in fl.th]
    hidden = range(nl - 1)
    params = list(fl.W) + ([fl.c[l] for l in hidden] if fl.learn_taps else []) + \
        ([fl.th[l] for l in hidden] if learn_thresholds else [])
    opt = Adam(lr=lr)

    def step(idx, rate) -> float:
        loss, _, gW, gc, gth = loss_and_grads(fl, X[idx], labels[idx], scale)
        grads = list(gW) + ([gc[l] for l in hidden] if fl.learn_taps else []) + \
            ([gth[l] for l in hidden] if learn_thresholds else [])
        opt.step(params, grads, rate)
        for W in fl.W:
            np.clip(W, -w_limit, w_limit, out=W)
        for l in hidden:
            np.clip(fl.c[l], -1.0, 1.0, out=fl.c[l])
        return loss

    return cosine_epochs(len(X), epochs, batch, lr, rng, step, on_epoch=on_epoch, progress=progress)

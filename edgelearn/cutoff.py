"""Anytime inference: calibrating the Top-K cutoff (docs/cutoff.md; the decision itself is
the contract's, docs/numerics.md §6b).

After step t of an inference the device stops when the readout's leading score exceeds the
runner-up by more than an integer margin ``m[t]``. This module chooses the margins on the
host, from the scores of full-T inferences of labelled (training) samples, after Wu et al.,
"Optimising Event-Driven Spiking Neural Network with Regularisation and Cutoff"
(arXiv 2301.09522), adapted to integer scores:

- a sample is *settled at step t* when its prediction (argmax, ties to the lowest index) is
  correct at t and at every later step: stopping it at t loses nothing, even against the
  label;
- for each step t < T-1 the margin is the smallest integer m >= 0 such that, among the
  calibration samples whose gap at t exceeds m, at most ``tolerance`` of them are not
  settled (``unsettled <= tolerance * n``) and there are at least ``min_support`` of them;
  ``CUTOFF_NEVER`` when no m qualifies; the last margin is 0 (the sample ends there).

The search is exact: the set {gap > m} changes only where m crosses a gap value, so the
candidates are 0 and the distinct gaps, all tried at once (no bins, unlike the paper's code).

Pure numpy on arrays (``top2_gaps``, ``settled``, ``calibrate``, ``stop_steps``,
``evaluate``, ``tradeoff``), the plots, and the functions that run a model
(``score_trajectories``, ``calibrate_model``, ``infer_with_cutoff``, ``evaluate_model``).
Trajectories are int64 [N, T, classes]: the cumulative scores after each step.
"""
from __future__ import annotations

import math
import textwrap
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from .contract import CUTOFF_NEVER
from .errors import ModelError
from .executors import exactness, make_learner
from .model import Cutoff, Model
from .ops import Exactness
from .plan import runtime_of
from .rules.stop.kernels import top2_gap_rows
from .train import predictions as full_predictions

__all__ = ["CUTOFF_NEVER", "DEFAULT_TOLERANCES", "MIN_SUPPORT_FLOOR", "CutoffEval", "TradeoffPoint",
           "check_tolerance", "default_support", "top2_gaps", "predictions", "settled", "calibrate",
           "stop_steps", "evaluate", "summarise", "tradeoff", "operating_point", "plot_tradeoff", "plot_steps",
           "score_trajectories", "calibrate_model", "infer_with_cutoff", "evaluate_model"]

DEFAULT_TOLERANCES = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
MIN_SUPPORT_FLOOR = 30       # the fewest samples a margin may rest on, whatever the tolerance
BATCH = 256                  # samples per call into an executor
_SCORE_LIMIT = 1 << 62       # |score| below it: top-1 minus top-2 cannot overflow int64


# -- arguments --------------------------------------------------------------------------------
def check_tolerance(tolerance) -> float:
    """The tolerance as a float in (0, 1), or a ModelError that says why not."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float, np.floating, np.integer)):
        raise ModelError(f"tolerance must be a number in (0, 1), got {tolerance!r}")
    value = float(tolerance)
    if not 0.0 < value < 1.0:        # also refuses NaN
        raise ModelError(f"tolerance must be in (0, 1), exclusive, got {tolerance!r}")
    return value


def default_support(tolerance: float) -> int:
    """The fewest calibration samples above a margin: ``max(30, ceil(1 / tolerance))``.

    Below 1/tolerance samples the rule "at most tolerance * n unsettled" admits no error at
    all, so a margin would rest on the absence of a single mistake among a handful of samples
    (a lucky tail of large early gaps): it is certified at a tolerance the data cannot
    resolve. The floor of 30 keeps large tolerances from resting on a few samples too."""
    tolerance = check_tolerance(tolerance)
    return max(MIN_SUPPORT_FLOOR, math.ceil(round(1.0 / tolerance, 9)))


def _support(min_support, tolerance: float) -> int:
    if min_support is None:
        return default_support(tolerance)
    if isinstance(min_support, bool) or not isinstance(min_support, (int, np.integer)) or min_support < 1:
        raise ModelError(f"min_support must be an integer >= 1, got {min_support!r}")
    return int(min_support)


def _trajectories(trajectories) -> np.ndarray:
    """Checked int64 [N, T, classes] scores."""
    traj = np.asarray(trajectories)
    if traj.ndim != 3:
        raise ModelError(f"trajectories must be [samples, steps, classes], got shape {traj.shape}")
    n, T, classes = traj.shape
    if n < 1 or T < 1:
        raise ModelError(f"trajectories hold no samples or no steps (shape {traj.shape})")
    if classes < 2:
        raise ModelError(f"trajectories have {classes} class; the cutoff compares the top two scores")
    if not np.issubdtype(traj.dtype, np.integer):
        raise ModelError(f"trajectories must be integer scores, got dtype {traj.dtype}")
    traj = traj.astype(np.int64, copy=False)
    if traj.min() < -_SCORE_LIMIT or traj.max() > _SCORE_LIMIT:
        raise ModelError("trajectories hold scores beyond +-2^62: not scores of a model (docs/numerics.md §8)")
    return traj


def _labels(labels, n: int, classes: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (n,):
        raise ModelError(f"labels must be [samples] = [{n}], got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ModelError(f"labels must be integers, got dtype {y.dtype}")
    if n and (y.min() < 0 or y.max() >= classes):
        raise ModelError(f"labels must be class indices in 0..{classes - 1}, got {int(y.min())}..{int(y.max())}")
    return y.astype(np.int64, copy=False)


def _margins(margins, T: int) -> np.ndarray:
    m = np.asarray(margins, dtype=object)
    if m.shape != (T,):
        raise ModelError(f"{m.size if m.ndim == 1 else m.shape} margins for T = {T} steps; the cutoff "
                         "needs one margin per step (recalibrate for this T)")
    for t, v in enumerate(m):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v <= CUTOFF_NEVER:
            raise ModelError(f"margin {t} is {v!r}; margins are integers in 0..2^63-1")
    return m.astype(np.int64)


# -- the rule on arrays -----------------------------------------------------------------------
def top2_gaps(trajectories) -> np.ndarray:
    """int64 [N, T]: the top-1 score minus the best of the others at each step (ties give 0),
    the contract's ``top2_gap`` (docs/numerics.md §6b)."""
    traj = _trajectories(trajectories)
    n, T, classes = traj.shape
    return top2_gap_rows(np.ascontiguousarray(traj.reshape(n * T, classes))).reshape(n, T)


def predictions(trajectories) -> np.ndarray:
    """int64 [N, T]: the class predicted after each step (ties to the lowest index)."""
    return np.argmax(_trajectories(trajectories), axis=2)


def settled(trajectories, labels) -> np.ndarray:
    """bool [N, T]: the prediction is correct at step t and at every later step."""
    traj = _trajectories(trajectories)
    correct = predictions(traj) == _labels(labels, traj.shape[0], traj.shape[2])[:, None]
    return np.flip(np.logical_and.accumulate(np.flip(correct, axis=1), axis=1), axis=1)


def _smallest_margin(gap: np.ndarray, unsettled: np.ndarray, tolerance: float, support: int) -> int:
    """The smallest integer m >= 0 with n = #{gap > m} >= support and #{gap > m, unsettled}
    <= tolerance * n; CUTOFF_NEVER if none."""
    order = np.argsort(gap, kind="stable")
    g = gap[order]
    bad_in_first = np.concatenate(([0], np.cumsum(unsettled[order])))    # unsettled among the k smallest gaps
    candidates = np.unique(np.concatenate(([0], g)))      # where {gap > m} changes, and 0; ascending
    at_most = np.searchsorted(g, candidates, side="right")   # samples with gap <= m
    n = len(g) - at_most
    bad = bad_in_first[-1] - bad_in_first[at_most]
    ok = (n >= support) & (bad <= tolerance * n)
    return int(candidates[np.argmax(ok)]) if ok.any() else CUTOFF_NEVER


def calibrate(trajectories, labels, tolerance, min_support: int | None = None) -> np.ndarray:
    """Margins int64 [T] for an error tolerance (module docstring); ``min_support`` defaults
    to ``default_support(tolerance)``. Larger tolerances never give larger margins."""
    traj = _trajectories(trajectories)
    tolerance = check_tolerance(tolerance)
    support = _support(min_support, tolerance)
    gaps, unsettled = top2_gaps(traj), ~settled(traj, labels)
    T = traj.shape[1]
    margins = np.zeros(T, dtype=np.int64)             # margins[T-1] = 0: the sample ends there anyway
    for t in range(T - 1):
        margins[t] = _smallest_margin(gaps[:, t], unsettled[:, t], tolerance, support)
    return margins


def stop_steps(trajectories, margins) -> tuple[np.ndarray, np.ndarray]:
    """(steps [N], predictions [N]): the steps each sample runs under the margins (the first
    t with t + 1 < T and gap > m[t] stops after t + 1 steps, else T) and its class there."""
    traj = _trajectories(trajectories)
    n, T, _ = traj.shape
    m = _margins(margins, T)
    stops = np.ones((n, T), dtype=bool)               # the last step always ends the sample
    stops[:, :T - 1] = top2_gaps(traj)[:, :T - 1] > m[:T - 1]
    last = np.argmax(stops, axis=1)
    return last + 1, np.argmax(traj[np.arange(n), last], axis=1)


@dataclass(frozen=True)
class CutoffEval:
    """What a cutoff does on a labelled set, beside full-T inference."""
    samples: int
    T: int
    accuracy: float                 # with the cutoff
    full_accuracy: float            # all T steps
    mean_steps: float
    histogram: tuple[int, ...]      # histogram[s - 1]: samples that ran s steps
    agreement: float                # predicted as full T would (right or wrong)

    @property
    def steps_saved(self) -> float:
        """The fraction of the T steps per sample not run."""
        return 1.0 - self.mean_steps / self.T

    @property
    def loss_points(self) -> float:
        """Accuracy lost against full T, in percentage points (negative: gained)."""
        return 100.0 * (self.full_accuracy - self.accuracy)

    def as_dict(self) -> dict:
        return {**asdict(self), "histogram": list(self.histogram), "steps_saved": self.steps_saved,
                "loss_points": self.loss_points}


def summarise(predicted, steps, labels, full_predicted, T: int) -> CutoffEval:
    """A CutoffEval from the predictions and steps of a cutoff run and the predictions of a
    full-T run of the same samples."""
    predicted, steps, labels, full_predicted = (np.asarray(a) for a in (predicted, steps, labels, full_predicted))
    n = len(labels)
    if n == 0 or not predicted.shape == steps.shape == full_predicted.shape == (n,):
        raise ModelError(f"predictions, steps and labels must be [samples] alike, got {predicted.shape}, "
                         f"{steps.shape}, {labels.shape}, {full_predicted.shape}")
    if steps.min() < 1 or steps.max() > T:
        raise ModelError(f"steps must lie in 1..T = {T}, got {int(steps.min())}..{int(steps.max())}")
    return CutoffEval(n, T, float(np.mean(predicted == labels)), float(np.mean(full_predicted == labels)),
                      float(np.mean(steps)), tuple(int(c) for c in np.bincount(steps - 1, minlength=T)),
                      float(np.mean(predicted == full_predicted)))


def evaluate(trajectories, labels, margins) -> CutoffEval:
    """The cutoff's accuracy and steps on full-T trajectories (exactly what ``infer`` gives for
    direct encoding; rate-coded input draws differently once samples stop early)."""
    traj = _trajectories(trajectories)
    y = _labels(labels, traj.shape[0], traj.shape[2])
    steps, predicted = stop_steps(traj, margins)
    return summarise(predicted, steps, y, np.argmax(traj[:, -1], axis=1), traj.shape[1])


@dataclass(frozen=True)
class TradeoffPoint:
    tolerance: float
    margins: tuple[int, ...]
    result: CutoffEval

    def as_dict(self) -> dict:
        return {"tolerance": self.tolerance,
                "margins": [None if m == CUTOFF_NEVER else int(m) for m in self.margins],
                **self.result.as_dict()}


def tradeoff(calibration, calibration_labels, tolerances: Sequence[float] = DEFAULT_TOLERANCES,
             test=None, test_labels=None, min_support: int | None = None) -> list[TradeoffPoint]:
    """One point per tolerance: margins calibrated on ``calibration`` trajectories, evaluated on
    ``test`` (default: the calibration set itself, an optimistic figure)."""
    if not len(tolerances):
        raise ModelError("no tolerances for the trade-off curve")
    if test is None:
        test, test_labels = calibration, calibration_labels
    points = []
    for tol in sorted(check_tolerance(t) for t in tolerances):
        margins = calibrate(calibration, calibration_labels, tol, min_support)
        points.append(TradeoffPoint(tol, tuple(int(m) for m in margins), evaluate(test, test_labels, margins)))
    return points


def operating_point(points: Sequence[TradeoffPoint], max_loss_points: float = 0.5) -> TradeoffPoint | None:
    """The point with the fewest mean steps whose accuracy loss is within ``max_loss_points``."""
    fit = [p for p in points if p.result.loss_points <= max_loss_points]
    return min(fit, key=lambda p: (p.result.mean_steps, -p.result.accuracy)) if fit else None


# -- plots ------------------------------------------------------------------------------------
def plot_tradeoff(curves: dict[str, Sequence[TradeoffPoint]], path: str, title: str = "",
                  mark: CutoffEval | None = None, mark_label: str = "the model's cutoff") -> None:
    """Accuracy against mean steps, one line per curve (its tolerances annotated), each
    curve's full-T point marked with a star; ``mark`` adds one more point (e.g. the model's
    own calibration). With ``mark``, a second panel shows its distribution of steps."""
    from .plots import plt
    fig, axes = plt.subplots(1, 2 if mark else 1, figsize=(11 if mark else 6.5, 4.5), squeeze=False)
    ax = axes[0, 0]
    for i, (name, points) in enumerate(curves.items()):
        color = f"C{i}"
        xs = [p.result.mean_steps for p in points]
        ys = [100 * p.result.accuracy for p in points]
        ax.plot(xs, ys, marker="o", color=color, label=f"{name}: cutoff")
        labels: dict[tuple[float, float], list[str]] = {}      # tolerances that land on one point share a label
        for p, x, y in zip(points, xs, ys):
            labels.setdefault((x, y), []).append(f"{p.tolerance:g}")
        for (x, y), names in labels.items():
            ax.annotate(names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}", (x, y),
                        textcoords="offset points", xytext=(4, -10), fontsize=7, color=color)
        if points:
            full = points[0].result
            ax.plot([full.T], [100 * full.full_accuracy], marker="*", markersize=14, color=color, linestyle="",
                    label=f"{name}: full T = {full.T}")
    if mark:
        ax.plot([mark.mean_steps], [100 * mark.accuracy], marker="D", markersize=8, color="k", linestyle="",
                label=mark_label)
        plot_steps(mark, None, ax=axes[0, 1])
    longest = max([p.result.T for points in curves.values() for p in points] + ([mark.T] if mark else []) + [2])
    ticks = [2 ** k for k in range(int(math.log2(longest)) + 1)] + ([longest] if longest & (longest - 1) else [])
    ax.set_xscale("log", base=2)          # the early steps, where the cutoff lands, get the room
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlim(0.9, longest * 1.2)
    ax.set_xlabel("mean time steps per sample (log scale)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(textwrap.fill(title or "Top-K cutoff: accuracy against time steps (labels: tolerance)", 70),
                 fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_steps(result: CutoffEval, path: str | None, title: str = "", ax=None) -> None:
    """The distribution of steps used; into ``ax`` when given, else a PNG at ``path``."""
    from .plots import plt
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(6, 4))
    steps = np.arange(1, result.T + 1)
    ax.bar(steps, 100 * np.asarray(result.histogram) / result.samples, width=0.8)
    ax.axvline(result.mean_steps, color="k", linestyle="--", label=f"mean {result.mean_steps:.2f}")
    ax.set_xlabel("time steps used")
    ax.set_ylabel("samples (%)")
    ax.set_title(title or f"steps used: {result.steps_saved:.1%} saved, accuracy {result.accuracy:.2%} "
                          f"(full T {result.full_accuracy:.2%})", fontsize=9)
    ax.legend(fontsize=8)
    if own:
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)


# -- on a model -------------------------------------------------------------------------------
def _check_model(model: Model) -> None:
    if runtime_of(model) != "stop":
        raise ModelError(f"rule {model.learning.rule!r} has no per-step scores (its scores exist only at the "
                         "end of the equilibrium, docs/spide.md §5): the cutoff needs a stop-runtime rule "
                         "(stop, readout, none)")
    if model.readout.size < 2:
        raise ModelError(f"the readout has {model.readout.size} output; the cutoff compares the top two")


def _batches(n: int, progress: bool, desc: str):
    from tqdm import tqdm
    return tqdm(range(0, n, BATCH), desc=desc, unit="batch", disable=not progress or n <= BATCH, leave=False)


def score_trajectories(model: Model, samples, executor: str = "fixed", progress: bool = True) -> np.ndarray:
    """int64 [N, T, classes]: the cumulative scores after each step of full-T inferences on a
    fresh learner of ``model`` (the model is not changed). A bit-exact executor without
    trajectories (``c``) is replaced by ``fixed``: the contract makes their scores equal."""
    _check_model(model)
    net = make_learner(model.copy(), executor)
    if not hasattr(net, "score_trajectories") and exactness(executor) is Exactness.BIT:
        net = make_learner(model.copy(), "fixed")
    if not hasattr(net, "score_trajectories"):
        raise ModelError(f"the {executor!r} executor gives no score trajectories")
    x = np.asarray(samples)
    # the float twin's scores are in the contract's units but real-valued for an 'li' readout:
    # to the nearest integer score, not truncated toward zero
    return np.concatenate([np.rint(net.score_trajectories(x[i:i + BATCH])).astype(np.int64)
                           for i in _batches(len(x), progress, "score trajectories")])


def calibrate_model(model: Model, samples, labels, tolerance, executor: str = "fixed",
                    min_support: int | None = None, progress: bool = True,
                    trajectories: np.ndarray | None = None) -> Model:
    """A copy of ``model`` with its cutoff calibrated on labelled samples (full-T inferences,
    then ``calibrate``). Pass ``trajectories`` to reuse ones already computed for ``samples``."""
    tolerance = check_tolerance(tolerance)
    _check_model(model)
    if trajectories is None:
        trajectories = score_trajectories(model, samples, executor, progress)
    traj = _trajectories(trajectories)
    if traj.shape[1:] != (model.learning.T, model.readout.size):
        raise ModelError(f"trajectories of shape {traj.shape} do not belong to this model "
                         f"(T = {model.learning.T}, {model.readout.size} outputs)")
    margins = calibrate(traj, labels, tolerance, min_support)
    out = model.copy()
    out.cutoff = Cutoff(tuple(int(m) for m in margins), tolerance)
    return out.validate()


def infer_with_cutoff(model: Model, samples, executor: str = "fixed",
                      progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(scores [N, classes], steps [N]): inference that stops per the model's cutoff, on one
    fresh learner (so a rate-coded input stream runs on across samples as on the device)."""
    _check_model(model)
    if model.cutoff is None:
        raise ModelError(f"model {model.name!r} has no cutoff: calibrate it first (edgelearn calibrate)")
    model.validate()                  # margins that do not match T are refused here
    net = make_learner(model.copy(), executor)
    x = np.asarray(samples)
    scores, steps = [], []
    for i in _batches(len(x), progress, "inference with the cutoff"):
        s, n = net.infer(x[i:i + BATCH], cutoff=True)
        scores.append(np.asarray(s))
        steps.append(np.asarray(n, dtype=np.int64))
    return np.concatenate(scores), np.concatenate(steps)


def evaluate_model(model: Model, samples, labels, executor: str = "fixed", progress: bool = True) -> CutoffEval:
    """The model's cutoff on labelled samples, run for real (``infer``), beside full-T
    inference on a fresh learner."""
    scores, steps = infer_with_cutoff(model, samples, executor, progress)
    full = full_predictions(make_learner(model.copy(), executor), np.asarray(samples), batch=BATCH)
    return summarise(np.argmax(scores, axis=1), steps, labels, full, model.learning.T)

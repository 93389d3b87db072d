"""The model IR: a small graph of layers with shapes, Q-formats and parameters.

A model is an input node and a list of layers in execution order. Each layer reads
one or more edges; an edge with ``delay == 0`` is a feed-forward connection within
the same time step, an edge with ``delay >= 1`` reads its source's spikes from that
many steps back (recurrent and feedback connections). Parameters are stored in the
device formats (integers); the float twins dequantise them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from . import numerics as nx
from .contract import (CUTOFF_MAX_PPM, CUTOFF_NEVER, ENCODINGS, INPUT, MAX_LAYER_SIZE, MAX_LEARNED, MAX_LR_SHIFT, MAX_SURROGATE_SHIFT, MAX_T,
                       MIN_SURROGATE_SHIFT, NARROW_WEIGHT_KINDS, RESETS, RULES, UPDATE_MODES, WEIGHT_BITS)
from .errors import ModelError
from .ops import LAYERS, NEURONS
from .ops.layers.psn import MAX_DILATION, MAX_TAP_SHIFT, ring_length, tap_code
from .ops.layers.psn import MAX_TAPS as MAX_FILTER_TAPS
from .ops.layers.window import geometry as window_geometry

__all__ = ["ENCODINGS", "INPUT", "MAX_LAYER_SIZE", "RESETS", "RULES", "UPDATE_MODES", "ModelError", "Edge", "Neuron",
           "Layer", "Window", "Filter", "InputSpec", "Learning", "Cutoff", "Schedule", "LayerParams", "Model", "init_params", "mlp", "effective_leak"]


BINARY_ENCODINGS = ("rate", "events")     # the encoders that give 0/1 spikes (docs/numerics.md §4)


@dataclass(frozen=True)
class Edge:
    source: str        # "input" or the name of a layer
    delay: int = 0     # 0: same step; >= 1: read the source's output from `delay` steps back


@dataclass(frozen=True)
class Neuron:
    kind: str                      # a registered neuron kind (edgelearn.ops)
    threshold: float = 1.0         # initial threshold (spiking kinds)
    leak: float = 0.875            # initial leak a in U = a*(U - th*s) + I; IF forces 1.0
    learn_threshold: bool = True
    learn_leak: bool = True
    reset: str = "subtract"        # one of RESETS: what a spike subtracts, th or 2*th


@dataclass(frozen=True)
class Window:
    """A kernel window slid over a [channels, height, width] source: conv2d and the pools
    (edgelearn/ops/layers/window.py). Pairs are (height, width)."""
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)    # zeros (silence) on each side


@dataclass(frozen=True)
class Filter:
    """The temporal filter of a layer with a history (psn, docs/psn.md): ``taps`` signed
    power-of-two taps per channel at lags 0, D, 2D, ... (D = ``dilation``); the layer keeps the
    currents of its last (taps - 1) D + 1 steps. ``init`` is every tap's initial value (a power
    of two, or its negative: the parameters hold tap codes)."""
    taps: int
    dilation: int = 1
    init: float = 0.5


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str                      # a registered layer kind (edgelearn.ops)
    inputs: tuple[Edge, ...]
    shape: tuple[int, ...]         # output shape ([channels, height, width] for a window kind)
    neuron: Neuron | None = None   # the kind of its neurons; None for a kind without (pooling)
    weight_frac: int = 12          # weights are int<weight_bits> in Q(bits-1-f).f (kinds with weights)
    window: Window | None = None   # the kernel window of a window kind (conv2d, pooling)
    weight_bits: int = 16          # the weights' storage width: 16, or 8 (dense; docs/numerics.md §1)
    filter: Filter | None = None   # the temporal filter of a kind with a history (psn)

    @property
    def ring(self) -> int:
        """The length of its rings (a history kind's), 0 for the others."""
        return 0 if self.filter is None else ring_length(self.filter.taps, self.filter.dilation)

    @property
    def weight_range(self) -> tuple[int, int]:
        """The weights' integer range: every conversion clamps to it, every update saturates to it."""
        return nx.weight_range(self.weight_bits)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class InputSpec:
    shape: tuple[int, ...]
    encoding: str = "direct"       # direct current, Bernoulli rate code, or recorded events

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class Learning:
    """How the device learns; every field is part of the numeric contract."""
    rule: str = "stop"
    T: int = 8                     # time steps per sample
    lr_weight_shift: int = 6       # learning rates are 2^-shift (defaults tuned on digits/MNIST)
    lr_threshold_shift: int = 8
    lr_leak_shift: int = 12
    surrogate_shift: int = 1       # triangle surrogate of half-width 2^k (membrane units); a
                                   # narrower one lets MSE on spikes silence the outputs
    update: str = "step"           # apply updates every step, or once per sample
    seed: int = 1                  # seeds the PRNG streams and the initial weights
    Tb: int = 0                    # backward time steps (rule "spide"); 0: the rule has no backward pass


@dataclass(frozen=True)
class Cutoff:
    """Anytime inference (docs/numerics.md §6b): after step t (0-based) of an inference, stop
    when the readout's top-1 score exceeds its top-2 by more than ``margins[t]`` (in score
    units: spikes, or Q16 for an 'li' readout). ``CUTOFF_NEVER`` never stops; the last
    margin is 0. ``tolerance`` is the error rate the host calibrated them for
    (``edgelearn.cutoff``): a record, not read by the contract. Margins are calibrated for
    the parameters they were computed with; a model that learns on should be recalibrated."""
    margins: tuple[int, ...]
    tolerance: float

    def __post_init__(self):
        # recorded to the ppm the blob holds, so that spec, blob and model agree exactly
        if isinstance(self.tolerance, (int, float, np.integer, np.floating)) and not isinstance(self.tolerance, bool) \
                and np.isfinite(self.tolerance) and 1 <= math.floor(float(self.tolerance) * 1e6 + 0.5) <= CUTOFF_MAX_PPM:
            object.__setattr__(self, "tolerance", math.floor(float(self.tolerance) * 1e6 + 0.5) / 1e6)

    @property
    def ppm(self) -> int:
        """The tolerance in parts per million, as the blob stores it."""
        return round(self.tolerance * 1e6)


@dataclass(frozen=True)
class Schedule:
    """A learning-rate step decay that the device runs itself (docs/numerics.md §6c): every
    rate's shift grows by one each ``every`` learned samples, at most ``steps`` times, so a
    sample learned after ``learned`` others uses ``lr_*_shift + min(learned // every, steps)``
    (each at most MAX_LR_SHIFT). ``learned`` is state, like the parameters: it counts the
    samples this model has learned, so a model pulled from a board goes on where it stopped."""
    every: int
    steps: int
    learned: int = 0

    def decay(self) -> int:
        """The shifts' increment for the next sample learned."""
        return min(self.learned // self.every, self.steps)


@dataclass
class LayerParams:
    weight: np.ndarray             # int16 [rows, cols]: dense [out, fan_in], conv2d [out_c, in_c kh kw], pools [0, 0]
    threshold: np.ndarray          # int32 [out], Q16 (none for a kind without neurons)
    leak: int                      # Q16 in [0, ONE] (0 for a kind without neurons)
    taps: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int8))   # int8 tap codes [out, K] (psn)


@dataclass
class Model:
    name: str
    input: InputSpec
    layers: tuple[Layer, ...]
    learning: Learning = field(default_factory=Learning)
    params: dict[str, LayerParams] = field(default_factory=dict)
    cutoff: Cutoff | None = None
    schedule: Schedule | None = None

    # -- structure ---------------------------------------------------------------
    def sizes(self) -> dict[str, int]:
        """Output size of every node by name (the input's under ``INPUT``); O(layers)."""
        out = {INPUT: self.input.size}
        out.update({layer.name: layer.size for layer in self.layers})
        return out

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Output shape of every node by name (the input's under ``INPUT``)."""
        out = {INPUT: tuple(self.input.shape)}
        out.update({layer.name: tuple(layer.shape) for layer in self.layers})
        return out

    def geometry(self, layer: Layer, shapes: dict | None = None):
        """The window geometry of a window layer over its one source (ops/layers/window.py),
        None for a kind without a window; a ModelError when the window does not fit."""
        if not LAYERS[layer.kind].windowed:
            return None
        shapes = self.shapes() if shapes is None else shapes
        out_c = layer.shape[0] if LAYERS[layer.kind].has_neurons else None
        return window_geometry(f"layer {layer.name!r}", layer.window, shapes[layer.inputs[0].source], out_c)

    def fan_in(self, layer: Layer, sizes: dict[str, int] | None = None) -> int:
        """Total size of the layer's edge sources. Pass ``sizes()`` when asking for many
        layers: without it each call builds it again, O(layers) per call."""
        if sizes is None:
            sizes = self.sizes()
        return sum(sizes[e.source] for e in layer.inputs)

    @property
    def readout(self) -> Layer:
        return self.layers[-1]

    def is_feedforward_chain(self) -> bool:
        """Each layer reads only the previous node, same step: what STOP supports."""
        prev = INPUT
        for layer in self.layers:
            if layer.inputs != (Edge(prev, 0),):
                return False
            prev = layer.name
        return True

    def validate(self) -> "Model":
        """Raise ModelError naming the first problem; return self when consistent."""
        self.validate_structure()
        sizes, shapes = self.sizes(), self.shapes()     # once: validate is linear in the number of layers
        for layer in self.layers:
            self._validate_params(layer, sizes, shapes)
        return self

    def validate_structure(self) -> "Model":
        """Everything but the parameters: what ``init_params`` needs to be sound."""
        if not self.layers:
            raise ModelError("model has no layers")
        if self.input.encoding not in ENCODINGS:
            raise ModelError(f"unknown input encoding {self.input.encoding!r} (known: {', '.join(ENCODINGS)})")
        if not self.input.shape or any(d <= 0 for d in self.input.shape):
            raise ModelError(f"input shape {self.input.shape} must be positive")
        _validate_learning(self.learning)
        if self.cutoff is not None:
            _validate_cutoff(self.cutoff, self.learning)
        if self.schedule is not None:
            _validate_schedule(self.schedule)
        seen = {INPUT}
        names = {layer.name for layer in self.layers}
        binary = {INPUT: False}             # which nodes are layers with 0/1 spikes in ``spikes``
        shapes = self.shapes()
        for i, layer in enumerate(self.layers):
            where = f"layer {i} ({layer.name!r})"
            if layer.name == INPUT:
                raise ModelError(f"{where}: {INPUT!r} is the reserved name of the model's input")
            if layer.name in seen:
                raise ModelError(f"{where}: duplicate name")
            if layer.kind not in LAYERS:
                raise ModelError(f"{where}: unknown layer kind {layer.kind!r} (known: {', '.join(LAYERS)}; "
                                 "a dense layer reads any source flattened)")
            neurons = LAYERS[layer.kind].has_neurons and layer.neuron is not None
            if neurons and layer.neuron.kind not in NEURONS:
                raise ModelError(f"{where}: unknown neuron kind {layer.neuron.kind!r} (known: {', '.join(NEURONS)})")
            kind = NEURONS[layer.neuron.kind] if neurons else None
            if neurons and kind.readout_only and i != len(self.layers) - 1:
                raise ModelError(f"{where}: a non-spiking {layer.neuron.kind!r} neuron can only be the readout (last) layer")
            if not layer.shape or any(d <= 0 for d in layer.shape):
                raise ModelError(f"{where}: shape {layer.shape} must be positive")
            if layer.size > MAX_LAYER_SIZE:
                raise ModelError(f"{where}: {layer.size} neurons; a layer has at most {MAX_LAYER_SIZE}")
            if layer.weight_bits not in WEIGHT_BITS:
                raise ModelError(f"{where}: weight_bits {layer.weight_bits}; weights are stored in "
                                 f"{' or '.join(map(str, WEIGHT_BITS))} bits")
            if layer.weight_bits != 16 and layer.kind not in NARROW_WEIGHT_KINDS:
                raise ModelError(f"{where}: weight_bits {layer.weight_bits}: a {layer.kind!r} layer keeps int16 "
                                 f"weights (int8 storage serves {', '.join(NARROW_WEIGHT_KINDS)} layers)")
            if not 0 <= layer.weight_frac <= layer.weight_bits - 1:
                raise ModelError(f"{where}: weight_frac {layer.weight_frac} outside 0..{layer.weight_bits - 1} "
                                 f"(int{layer.weight_bits} weights)")
            if not layer.inputs:
                raise ModelError(f"{where}: has no inputs")
            for e in layer.inputs:
                if e.delay < 0:
                    raise ModelError(f"{where}: edge from {e.source!r} has negative delay {e.delay}")
                if e.delay == 0 and e.source not in seen:
                    if e.source in names:
                        raise ModelError(f"{where}: same-step edge from later layer {e.source!r}; "
                                         "a feedback edge needs delay >= 1")
                    raise ModelError(f"{where}: input {e.source!r} does not exist")
                if e.delay > 0 and e.source not in names:
                    raise ModelError(f"{where}: feedback source {e.source!r} is not a layer")
            binary[layer.name] = self._validate_kind(where, layer, binary, shapes)
            seen.add(layer.name)
            if not neurons:
                continue
            if layer.neuron.reset not in RESETS:
                raise ModelError(f"{where}: unknown reset {layer.neuron.reset!r} (known: {', '.join(RESETS)})")
            if layer.neuron.reset == "modified" and not kind.spiking:
                raise ModelError(f"{where}: a non-spiking {layer.neuron.kind!r} neuron has no reset to modify")
            if layer.neuron.reset == "modified" and self.learning.rule != "spide":
                raise ModelError(f"{where}: the modified reset is run by the SPIDE runtime only "
                                 f"(learning.rule 'spide', not {self.learning.rule!r})")
            if kind.spiking and not kind.memoryless and not layer.neuron.threshold > 0:   # a reset needs th > 0
                raise ModelError(f"{where}: threshold must be > 0, got {layer.neuron.threshold}")
            if not 0.0 <= layer.neuron.leak <= 1.0:
                raise ModelError(f"{where}: leak must be in [0, 1], got {layer.neuron.leak}")
        if not LAYERS[self.readout.kind].has_neurons:
            raise ModelError(f"the readout (last layer, {self.readout.name!r}) is a {self.readout.kind!r} layer, which "
                             "has no neurons to score with")
        if self.cutoff is not None and self.readout.size < 2:
            raise ModelError(f"cutoff: the readout has {self.readout.size} output; a cutoff compares the top two")
        return self

    def _validate_kind(self, where: str, layer: Layer, binary: dict[str, bool], shapes: dict) -> bool:
        """A layer's kind against its neuron, window and source; whether it outputs 0/1 spikes."""
        kind = LAYERS[layer.kind]
        if kind.has_neurons and layer.neuron is None:
            raise ModelError(f"{where}: a {layer.kind!r} layer needs a 'neuron'")
        if not kind.has_neurons and layer.neuron is not None:
            raise ModelError(f"{where}: a {layer.kind!r} layer has no neurons (it maps its input): remove its 'neuron'")
        if kind.history != (layer.filter is not None):
            raise ModelError(f"{where}: a {layer.kind!r} layer " + ("needs a 'filter' (taps, dilation)" if kind.history
                                                                     else "has no 'filter'"))
        if kind.history:
            _validate_filter(where, layer)
        if kind.windowed != (layer.window is not None):
            raise ModelError(f"{where}: a {layer.kind!r} layer " + ("needs a 'window' (kernel, stride, padding)"
                                                                     if kind.windowed else "has no 'window'"))
        if not kind.windowed:
            return NEURONS.get(layer.neuron.kind) is not None and NEURONS[layer.neuron.kind].spiking
        if len(layer.inputs) != 1 or layer.inputs[0].delay != 0 or layer.inputs[0].source not in binary:
            raise ModelError(f"{where}: a {layer.kind!r} layer reads one source of this step (an earlier layer or "
                             "the input)")
        g = self.geometry(layer, shapes)
        kind.check(where, binary[layer.inputs[0].source], g)
        if tuple(layer.shape) != (g.out_c, g.out_h, g.out_w):
            raise ModelError(f"{where}: shape {tuple(layer.shape)}; a {layer.window.kernel} window with stride "
                             f"{layer.window.stride} and padding {layer.window.padding} over "
                             f"{shapes[layer.inputs[0].source]} gives {(g.out_c, g.out_h, g.out_w)}")
        if kind.has_neurons:
            return NEURONS.get(layer.neuron.kind) is not None and NEURONS[layer.neuron.kind].spiking
        return kind.out_frac(g) == 0

    def _validate_params(self, layer: Layer, sizes: dict[str, int] | None = None, shapes: dict | None = None) -> None:
        p = self.params.get(layer.name)
        where = f"layer {layer.name!r}"
        if p is None:
            raise ModelError(f"{where}: no parameters")
        kind = LAYERS[layer.kind]
        expect = kind.weight_shape(layer.size, self.fan_in(layer, sizes), self.geometry(layer, shapes))
        if p.weight.shape != expect:
            raise ModelError(f"{where}: weight shape {p.weight.shape} does not match the {layer.kind} layer's "
                             + ("(outputs, fan-in)" if layer.kind == "dense" else "(rows, columns)") + f" = {expect}")
        if p.weight.dtype != np.int16:
            raise ModelError(f"{where}: weights must be int16, got {p.weight.dtype}")
        lo, hi = layer.weight_range
        if layer.weight_bits != 16 and p.weight.size and (p.weight.min() < lo or p.weight.max() > hi):
            raise ModelError(f"{where}: int{layer.weight_bits} weights must lie in {lo}..{hi}, got "
                             f"{p.weight.min()}..{p.weight.max()}")
        taps = (layer.size, layer.filter.taps) if kind.history else (0, 0)
        if p.taps.shape != taps or p.taps.dtype != np.int8:
            raise ModelError(f"{where}: tap codes must be int8 of shape {taps}, got {p.taps.dtype} {p.taps.shape}")
        if p.taps.size and np.abs(p.taps.astype(np.int16)).max() > MAX_TAP_SHIFT + 1:
            raise ModelError(f"{where}: tap codes within +-{MAX_TAP_SHIFT + 1} (taps down to 2^-{MAX_TAP_SHIFT})")
        neurons = layer.size if kind.has_neurons else 0
        if p.threshold.shape != (neurons,) or p.threshold.dtype != np.int32:
            raise ModelError(f"{where}: thresholds must be int32 of shape ({neurons},), "
                             f"got {p.threshold.dtype} {p.threshold.shape}")
        if not kind.has_neurons:
            if p.leak != 0:
                raise ModelError(f"{where}: a {layer.kind!r} layer has no neurons: its leak must be 0, got {p.leak}")
            return
        kind_n = NEURONS[layer.neuron.kind]
        if kind_n.spiking and not kind_n.memoryless and np.any(p.threshold <= 0):   # a reset needs th > 0
            raise ModelError(f"{where}: thresholds must be > 0")
        if not 0 <= p.leak <= nx.ONE:
            raise ModelError(f"{where}: leak {p.leak} outside [0, {nx.ONE}] (Q16)")
        if NEURONS[layer.neuron.kind].leak_fixed_at_one and p.leak != nx.ONE:
            raise ModelError(f"{where}: an {layer.neuron.kind!r} neuron does not leak: its leak must be {nx.ONE} (1.0 in Q16), "
                             f"got {p.leak}")

    # -- parameters ---------------------------------------------------------------
    def n_parameters(self) -> dict[str, int]:
        return {layer.name: self.params[layer.name].weight.size + self.params[layer.name].threshold.size
                + self.params[layer.name].taps.size + LAYERS[layer.kind].has_neurons for layer in self.layers}

    def parameter_bytes(self) -> dict[str, int]:
        return {layer.name: self.params[layer.name].weight.nbytes + self.params[layer.name].threshold.nbytes
                + self.params[layer.name].taps.nbytes + 4 for layer in self.layers}

    def copy(self) -> "Model":
        params = {k: LayerParams(v.weight.copy(), v.threshold.copy(), int(v.leak), v.taps.copy())
                  for k, v in self.params.items()}
        return replace(self, params=params)


def _validate_filter(where: str, layer: Layer) -> None:
    f = layer.filter
    if not 1 <= f.taps <= MAX_FILTER_TAPS:
        raise ModelError(f"{where}: filter taps {f.taps} outside 1..{MAX_FILTER_TAPS}")
    if not 1 <= f.dilation <= MAX_DILATION:
        raise ModelError(f"{where}: filter dilation {f.dilation} outside 1..{MAX_DILATION}")
    if isinstance(f.init, bool) or not isinstance(f.init, (int, float)) or not math.isfinite(f.init) \
            or f.init != 0 and not any(abs(f.init) == 2.0 ** -e for e in range(MAX_TAP_SHIFT + 1)):
        raise ModelError(f"{where}: filter init {f.init!r}: a tap is 0 or +-2^-e, e in 0..{MAX_TAP_SHIFT}")
    if layer.neuron.learn_threshold or layer.neuron.learn_leak:
        raise ModelError(f"{where}: a {layer.kind!r} layer learns its weights only (its neurons keep no threshold "
                         "or leak traces; the host learns thresholds and taps): set the neuron's learn_threshold and "
                         "learn_leak false")


def _validate_learning(lr: Learning) -> None:
    if lr.rule not in RULES:
        raise ModelError(f"unknown learning rule {lr.rule!r} (known: {', '.join(RULES)})")
    if lr.update not in UPDATE_MODES:
        raise ModelError(f"unknown update mode {lr.update!r} (known: {', '.join(UPDATE_MODES)})")
    if not 1 <= lr.T <= MAX_T:
        raise ModelError(f"T must be in 1..{MAX_T}, got {lr.T}")
    for name in ("lr_weight_shift", "lr_threshold_shift", "lr_leak_shift"):
        v = getattr(lr, name)
        if not 0 <= v <= MAX_LR_SHIFT:
            raise ModelError(f"{name} must be in 0..{MAX_LR_SHIFT}, got {v}")
    if not MIN_SURROGATE_SHIFT <= lr.surrogate_shift <= MAX_SURROGATE_SHIFT:
        raise ModelError(f"surrogate_shift must be in {MIN_SURROGATE_SHIFT}..{MAX_SURROGATE_SHIFT}, "
                         f"got {lr.surrogate_shift}")
    if not 0 <= lr.seed <= 0xFFFFFFFF:
        raise ModelError(f"seed must be a 32-bit unsigned integer, got {lr.seed}")
    if not 0 <= lr.Tb <= MAX_T:
        raise ModelError(f"Tb must be in 0..{MAX_T}, got {lr.Tb}")
    if lr.rule == "spide" and lr.Tb == 0:
        raise ModelError("rule 'spide' needs Tb >= 1 backward time steps")


def _validate_cutoff(c: Cutoff, lr: Learning) -> None:
    if lr.rule == "spide":
        raise ModelError("cutoff: rule 'spide' has no per-step scores (its scores exist only at the end of the "
                         "equilibrium, docs/spide.md §5); the cutoff needs a stop-runtime rule")
    if len(c.margins) != lr.T:
        raise ModelError(f"cutoff: {len(c.margins)} margins for T = {lr.T} steps; recalibrate for this T "
                         "(edgelearn calibrate)")
    for t, m in enumerate(c.margins):
        if not isinstance(m, (int, np.integer)) or isinstance(m, bool) or not 0 <= m <= CUTOFF_NEVER:
            raise ModelError(f"cutoff: margin {t} is {m!r}; margins are integers in 0..2^63-1")
    if c.margins[-1] != 0:
        raise ModelError(f"cutoff: the last margin is {c.margins[-1]}; it must be 0 (the last step always stops)")
    if isinstance(c.tolerance, bool) or not (isinstance(c.tolerance, (int, float, np.integer, np.floating))
                                             and 0.0 < c.tolerance < 1.0):
        raise ModelError(f"cutoff: tolerance {c.tolerance!r} outside (0, 1)")
    if not 1 <= c.ppm <= CUTOFF_MAX_PPM:
        raise ModelError(f"cutoff: tolerance {c.tolerance!r} is not within 1e-6 and 1 - 1e-6, the resolution a "
                         "model records (ppm)")


def _validate_schedule(s: Schedule) -> None:
    for name, lo, hi in (("every", 1, MAX_LEARNED), ("steps", 1, MAX_LR_SHIFT), ("learned", 0, MAX_LEARNED)):
        v = getattr(s, name)
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not lo <= v <= hi:
            raise ModelError(f"schedule: {name} is {v!r}; it must be an integer in {lo}..{hi}")


def effective_leak(neuron: Neuron) -> float:
    return 1.0 if NEURONS[neuron.kind].leak_fixed_at_one else neuron.leak


def init_params(model: Model, weight_gain: float = 1.5) -> Model:
    """Fill ``model.params`` with seeded initial values (host side; the device gets them
    in the model file). Weights are uniform with variance gain^2 / fan_in; the default
    gain makes a threshold-1 layer fire on direct pixel input from the first sample.
    Rule-agnostic: ``edgelearn.rules.init_model`` adds a rule's own start (SPIDE scales
    its feedback weights down to a loop gain bound of 1/2)."""
    model.validate_structure()
    rng = np.random.default_rng(model.learning.seed)
    params, sizes, shapes = {}, model.sizes(), model.shapes()
    for layer in model.layers:
        kind = LAYERS[layer.kind]
        rows, cols = kind.weight_shape(layer.size, model.fan_in(layer, sizes), model.geometry(layer, shapes))
        if not kind.has_neurons:                   # a fixed map: nothing to draw
            params[layer.name] = LayerParams(np.zeros((0, 0), np.int16), np.zeros(0, np.int32), 0)
            continue
        bound = weight_gain * np.sqrt(3.0 / cols)  # cols: the inputs one neuron sums
        w = rng.uniform(-bound, bound, size=(rows, cols))
        params[layer.name] = LayerParams(
            weight=nx.to_fixed(w, layer.weight_frac, *layer.weight_range, np.int16),
            threshold=nx.to_fixed(np.full(layer.size, layer.neuron.threshold), nx.STATE_FRAC),
            leak=int(nx.to_fixed(effective_leak(layer.neuron), nx.STATE_FRAC)),
            taps=np.zeros((0, 0), np.int8) if layer.filter is None
            else np.full((layer.size, layer.filter.taps), tap_code(layer.filter.init), np.int8),
        )
    model.params = params
    return model.validate()


def mlp(name: str, sizes: list[int], *, encoding: str = "direct", hidden: Neuron | None = None,
        readout: Neuron | None = None, weight_frac: int = 12, learning: Learning | None = None) -> Model:
    """A feed-forward chain sizes[0] -> ... -> sizes[-1] of dense layers (without parameters)."""
    hidden = hidden or Neuron("lif")
    readout = readout or Neuron("lif")
    layers, prev = [], INPUT
    for i, n in enumerate(sizes[1:]):
        last = i == len(sizes) - 2
        lname = "readout" if last else f"fc{i + 1}"
        layers.append(Layer(lname, "dense", (Edge(prev),), (n,), readout if last else hidden, weight_frac))
        prev = lname
    return Model(name, InputSpec((sizes[0],), encoding), tuple(layers), learning or Learning())

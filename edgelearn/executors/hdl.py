"""The HDL executor: the model's generated RTL (edgelearn.hdl, targets/hdl) learning in a
simulator, with the interface of the fixed-point executors and the arithmetic of the chip.

The model reaches the core as a chip receives it: memory images of its weights and thresholds,
then its leaks, PRNG states and schedule count written through the parameter port. Samples go
in and scores come out through the streams, one pixel and one score a beat; ``to_model`` reads
the learned parameters back through the port. verilator simulates (a first build of a model's
structure takes tens of seconds, cached; then some 50 ms a digits training sample, 55,000 of the
core's cycles); iverilog builds in a fraction of a second and simulates several hundred times
slower (small models)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .. import numerics as nx
from ..encoders import as_rows
from ..hdl.generate import address_map, check
from ..hdl.sim import Simulation
from ..hdl.synth import memory_plan
from ..model import Model
from ..ops import NEURONS, Exactness


def _signed(values: list[int], bits: int) -> np.ndarray:
    """Two's complement words of ``bits`` (as the port and the result stream give them) as int64."""
    return np.array([x - (1 << bits) if x >> (bits - 1) else x for x in values], dtype=np.int64)


class HdlSTOP:
    """STOP in the FPGA core (el_stop_core.v): online learning, one sample at a time."""

    exactness = Exactness.BIT

    def __init__(self, model: Model, *, simulator: str = "verilator", target: str | None = "ice40up5k"):
        """``target``: the FPGA whose memory placement the simulated core has (the buffers it runs
        single-ported because they sit in SPRAM); None: every buffer dual-ported."""
        self.model = check(model)
        self.simulator = simulator
        self.single_port = memory_plan(model, target).single_port if target else frozenset()
        self._sim = Simulation(model, simulator, self.single_port)
        self._addresses = address_map(model)
        self._li = not NEURONS[model.readout.neuron.kind].spiking
        self.scores = np.zeros(model.readout.size, dtype=np.int64)
        self.cycles: list[int] = []          # the core's clock cycles for each sample presented

    def run(self, samples: np.ndarray, labels: np.ndarray | None, learn: bool) -> np.ndarray:
        """Present the samples one after the other; scores [B, classes]. The core learns online
        (per step, batch 1): a learning batch of more than one sample is refused."""
        if learn and len(samples) > 1:
            raise ValueError(f"the FPGA core learns one sample at a time (online, per step), got a batch of "
                             f"{len(samples)}")
        out = np.empty((len(samples), self.model.readout.size), dtype=np.int64)
        for b, sample in enumerate(samples):
            label = int(labels[b]) if learn else 0
            scores, cycles = self._sim.sample(as_rows(sample)[0], learn, label)
            out[b] = _signed(scores, 64) if self._li else scores
            self.cycles.append(cycles)
        if len(samples):
            self.scores = out[-1].copy()
        return out

    def health(self, reset: bool = False) -> dict:
        """STOP keeps no health counters."""
        return {}

    def _read(self, name: str, count: int) -> list[int]:
        return self._sim.read(self._addresses[name], count)

    def buffers(self) -> dict[str, np.ndarray]:
        """What the core holds that the other executors hold too, read through the parameter port:
        the parameters, the learning stream's state and the last sample's scores; the input
        stream's state is the model's seed state, which direct coding never advances."""
        weights = sum(layer.size * self.model.fan_in(layer) for layer in self.model.layers)
        neurons = sum(layer.size for layer in self.model.layers)
        rng_learn = self._read("rng_learn", 1)[0]
        rng_input = int(nx.seed_state(self.model.learning.seed))   # direct coding never draws it
        return {"weights": _signed(self._read("weights", weights), 32).astype(np.int16),
                "thresholds": _signed(self._read("thresholds", neurons), 32).astype(np.int32),
                "leaks": _signed(self._read("leaks", len(self.model.layers)), 32),
                "rng_input": np.array([rng_input], dtype=np.uint32), "rng_learn": np.array([rng_learn], dtype=np.uint32),
                "scores": self.scores.copy()}

    def to_model(self) -> Model:
        out = self.model.copy()
        held = self.buffers()
        w_at = th_at = 0
        for l, layer in enumerate(out.layers):
            p = out.params[layer.name]
            n = p.weight.size
            p.weight = held["weights"][w_at:w_at + n].reshape(p.weight.shape).copy()
            p.threshold = held["thresholds"][th_at:th_at + layer.size].copy()
            p.leak = int(held["leaks"][l])
            w_at, th_at = w_at + n, th_at + layer.size
        if out.schedule is not None:
            out.schedule = replace(out.schedule, learned=self._read("learned", 1)[0])
        return out.validate()

    def close(self) -> None:
        self._sim.close()

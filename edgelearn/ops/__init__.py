"""Operations by kind: one module per neuron or layer kind, one registry (docs/architecture.md)."""
from . import neurons, layers  # noqa: F401  (registers the built-in kinds; a layer kind may step neurons)
from .registry import (LAYERS, NEURONS, Exactness, LayerKind, NeuronKind, extension_dispatch, neuron_dispatch,
                       register_layer,
                       register_neuron, registered_neuron, spiking_neurons)

__all__ = ["LAYERS", "NEURONS", "Exactness", "LayerKind", "NeuronKind", "extension_dispatch", "neuron_dispatch", "register_layer",
           "register_neuron", "registered_neuron", "spiking_neurons"]

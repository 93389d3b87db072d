"""edgelearn: on-device learning for spiking neural networks, bit-exact from host to device.

The public surface (docs/api.md) is imported on first use, so ``import edgelearn`` stays cheap:

    load_model, save_model          model files (.json specs, .elm blobs)
    make_learner, train, evaluate   an executor of the model's rule, the training loop, accuracy
    fit_to_data                     the default recipe's data-fitted start
    load_data                       a dataset by name, path or .npz (edgelearn.datasets.load)
"""
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from ._jit_cache import use_source_keyed_cache

use_source_keyed_cache()

try:
    __version__ = version("edgelearn")
except PackageNotFoundError:         # a checkout that was never installed
    __version__ = "unknown"

_PUBLIC = {"load_model": "modelfile", "save_model": "modelfile", "make_learner": "executors", "train": "train",
           "evaluate": "train", "fit_to_data": "adapt", "load_data": ("datasets", "load")}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'edgelearn' has no attribute {name!r}")
    module, attribute = _PUBLIC[name] if isinstance(_PUBLIC[name], tuple) else (_PUBLIC[name], name)
    return getattr(import_module(f".{module}", __name__), attribute)

"""edgelearn: on-device learning for spiking neural networks, bit-exact from host to device.

The public surface (docs/api.md), imported on first use so that ``import edgelearn`` stays cheap:

    load_model, save_model          model files (.json specs, .elm blobs)
    make_learner, train, evaluate   an executor of the model's rule, the training loop, accuracy
    fit_to_data                     the default recipe's data-fitted start
    load_data                       a dataset by name, path or file (edgelearn.datasets.load)
"""
import sys
import types
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from ._jit_cache import use_source_keyed_cache

use_source_keyed_cache()

try:
    __version__ = version("edgelearn")
except PackageNotFoundError:         # a checkout that was never installed
    __version__ = "unknown"

_PUBLIC = {"load_model": ("modelfile", "load_model"), "save_model": ("modelfile", "save_model"),
           "make_learner": ("executors", "make_learner"), "train": ("train", "train"),
           "evaluate": ("train", "evaluate"), "fit_to_data": ("adapt", "fit_to_data"),
           "load_data": ("datasets", "load")}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'edgelearn' has no attribute {name!r}")
    module, attribute = _PUBLIC[name]
    return getattr(import_module(f".{module}", __name__), attribute)


class _Package(types.ModuleType):
    """Importing a submodule binds its name in the package: edgelearn.train, the module, would
    then hide edgelearn.train, the function. The public names stay the functions (the
    submodules are still in sys.modules, so ``from edgelearn.train import ...`` works)."""

    def __setattr__(self, name, value):
        if name in _PUBLIC and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

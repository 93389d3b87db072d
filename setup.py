"""The package layout, which setup.cfg cannot say (metadata and dependencies are there).

The wheel holds the Python packages of the checkout and, as package data, its top-level
``targets/`` (the C runtime, the firmware, board support, the catalogue) and ``models/`` (the
zoo) under ``edgelearn/_data/targets`` and ``edgelearn/_data/models``. ``edgelearn.resources``
looks there first and falls back to the top-level directories in a checkout or an editable
install, where ``edgelearn/_data`` does not exist."""
from setuptools import find_namespace_packages, setup

DATA = {"edgelearn._data.targets": "targets", "edgelearn._data.models": "models"}

setup(
    packages=find_namespace_packages(include=["edgelearn", "edgelearn.*", "firmware_host", "firmware_host.*"],
                                     exclude=["*.__pycache__"]) + list(DATA),
    package_dir=DATA,
    package_data={
        "edgelearn._data.targets": ["README.md", "catalogue.json", "c/*.[ch]", "firmware/*.[ch]",
                                    "boards/*/*.[ch]", "boards/*/*.ld.S", "hdl/*/*.v", "hdl/*/*.vh",
                                    "hdl/boards/*/*.v", "hdl/boards/*/*.pcf"],
        "edgelearn._data.models": ["*.json", "psn/*.json"],
    },
)

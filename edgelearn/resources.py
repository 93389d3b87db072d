"""Where the files that ship with edgelearn live: the C runtime, board support and the
target catalogue (``targets/``) and the model zoo (``models/``).

In a checkout (and an editable install) they are the top-level directories beside the
package; a wheel carries the same trees as package data in ``edgelearn/_data`` (see
setup.py). Every module asks here, so no path is spelled twice."""
from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def _root(name: str) -> Path:
    shipped = PACKAGE / "_data" / name
    return shipped if shipped.is_dir() else PACKAGE.parent / name


TARGETS = _root("targets")
MODELS = _root("models")
C_DIR = TARGETS / "c"
FIRMWARE_DIR = TARGETS / "firmware"
BOARDS_DIR = TARGETS / "boards"
CATALOGUE = TARGETS / "catalogue.json"

"""Where the host keeps what outlives one command: the registry of running boards (beside it,
their logs and storage files: ``boards.py``) and the keystore of board keys (``keys.py``)."""
from __future__ import annotations

import os
from pathlib import Path


def registry_path() -> Path:
    """``$EDGELEARN_BOARDS_FILE``, else ``~/.cache/edgelearn/boards.json``."""
    env = os.environ.get("EDGELEARN_BOARDS_FILE")
    return Path(env) if env else Path.home() / ".cache" / "edgelearn" / "boards.json"


def keystore() -> Path:
    """``$EDGELEARN_KEYS_DIR``, else ``keys/`` beside the registry."""
    env = os.environ.get("EDGELEARN_KEYS_DIR")
    return Path(env) if env else registry_path().parent / "keys"

"""What the readers of model files share (edgelearn.modelfile: models, edgelearn.psnfile: PSN
networks' training files): reading a file's bytes with errors that name it, the bounds a spec may
ask for before anything is allocated, and the name of the PSN format."""
from __future__ import annotations

import json
from pathlib import Path

from .errors import ModelError

# What a spec may ask for: a few bytes of JSON must never make the loader allocate gigabytes or
# run for minutes (docs/model-format.md, "What is refused"). The blob format's own fields bound
# the rest (layer_count u16, name_length u16); thresholds must fit the Q16 membrane (int32).
MAX_SPEC_BYTES = 16 << 20
MAX_SPEC_LAYERS = 65534
MAX_SPEC_INPUT = 1 << 24                       # input values
MAX_SPEC_WEIGHTS = 1 << 24                     # weights of all layers together (32 MiB as int16)
MAX_NAME_BYTES = 65535
MAX_THRESHOLD = 32768.0                        # 2^31 / 2^16: the largest Q16 int32, exclusive
PSN_FORMAT = "edgelearn-psn"                   # the format of a PSN network's spec (edgelearn.psnfile)


def is_psn_file(path, data: bytes | None = None) -> bool:
    """Whether ``path`` (of contents ``data``, read when not given) is a PSN network's training file
    (docs/psn.md §7): a ``.psn`` archive, or JSON of format "edgelearn-psn". A file that cannot be
    read or parsed is not: the model loader says what is wrong with it."""
    if Path(path).suffix.lower() == ".psn":
        return True
    if data is None:
        try:
            data = Path(path).read_bytes()
        except OSError:
            return False
    if not data.lstrip().startswith(b"{"):
        return False
    try:
        spec = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(spec, dict) and spec.get("format") == PSN_FORMAT


def read_model_file(path) -> bytes:
    """The bytes of a model file, or a ModelError that names it."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ModelError(f"model file not found: {path}") from None
    except OSError as e:
        raise ModelError(f"cannot read model file {path}: {e.strerror}") from None

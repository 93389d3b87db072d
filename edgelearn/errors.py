"""The errors edgelearn raises on purpose, each with a message that says why."""


class ModelError(ValueError):
    """A model description or file that cannot be used; the message says why."""


class DatasetError(ValueError):
    """A dataset that cannot be loaded; the message names the file and what is wrong."""


class TrainingDiverged(RuntimeError):
    """Training reached a state it cannot leave (e.g. every output silent)."""

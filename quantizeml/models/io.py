"""Model files: save/load quantized models (.keras) and read float models safely."""
from __future__ import annotations

import keras

from ..errors import ModelFormatError


def save_model(model, path):
    """Save a (quantized) Keras model to a ``.keras`` file; returns the path."""
    path = str(path)
    if not path.endswith(".keras"):
        raise ModelFormatError(f"save_model: {path!r} must end with '.keras'.")
    model.save(path)
    return path


def load_model(path):
    """Load a ``.keras`` file."""
    return keras.saving.load_model(str(path), safe_mode=True)


def load_spec(path):
    """Read a float model file into a ModelSpec."""
    raise ModelFormatError(f"{path}: not supported yet")

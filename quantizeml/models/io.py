"""Model files: ``load_model`` (safe, for the CLI too), ``save_model`` and ``load_spec``."""
from __future__ import annotations

import os
import tempfile

import keras

from ..errors import ModelFormatError
from ..ir import ModelSpec, build_float_model, spec_from_model
from .files import (check_config_allowlist, check_layer_sizes, open_keras_zip, read_model_file,
                    write_keras_members)
from .h5 import read_h5_spec


def _load_keras_bytes(data: bytes, where: str) -> keras.Model:
    config = open_keras_zip(data, where)
    check_config_allowlist(config, where)
    check_layer_sizes(config, where)
    # Keras reads a path: load the checked members (and only those: no assets are extracted)
    # from a private copy.
    with tempfile.TemporaryDirectory() as folder:
        copy = os.path.join(folder, "model.keras")
        write_keras_members(data, copy)
        try:
            return keras.saving.load_model(copy, compile=False, safe_mode=True)
        except Exception as err:  # Keras raises many types for a bad archive
            raise ModelFormatError(f"{where}: Keras could not load the archive: "
                                   f"{type(err).__name__}: {err}") from err


def load_model(path) -> keras.Model:
    """Load a model file safely: ``.keras`` (quantized or float) or legacy ``.h5`` (float).

    ``.keras``: zip checked in memory (member count, sizes, names, encryption, compression,
    CRC), ``config.json`` parsed with depth/integer limits and checked against an allowlist
    (Keras built-ins and quantizeml classes; no Lambda, functions or other modules; no
    unconnected nodes), then its config, metadata and weights members alone are loaded with
    ``safe_mode=True``. ``.h5``: read with h5py only, the config checked for types and values
    (built-in activation names only) and rebuilt as a Keras 3 float model. Never compiles.

    Raises:
        ModelFormatError: missing/odd path, wrong magic, truncated or malformed file.
        UnsafeModelError: the file asks to run code or names non-allowlisted classes.
        QuantizationError: an .h5 model whose layers cannot be read into a chain.
    """
    name, data, kind = read_model_file(path)
    where = f"Model file '{name}'"
    if kind == "keras":
        return _load_keras_bytes(data, where)
    return build_float_model(read_h5_spec(data, where))


def load_spec(path) -> ModelSpec:
    """Read a float model file into a ModelSpec (used by ``quantize(path)``)."""
    name, data, kind = read_model_file(path)
    where = f"Model file '{name}'"
    if kind == "h5":
        return read_h5_spec(data, where)
    return spec_from_model(_load_keras_bytes(data, where))


def save_model(model: keras.Model, path, overwrite: bool = True) -> str:
    """Save a (quantized) Keras model to ``.keras`` atomically; return the path.

    Writes a temporary file in the target directory and renames it, so a failure leaves nothing
    half-written.

    Raises:
        ModelFormatError: wrong extension, existing file with ``overwrite=False``, unwritable
            directory.
    """
    path = os.fsdecode(os.fspath(path))
    if not path.endswith(".keras"):
        raise ModelFormatError(f"save_model: {path!r} must end with '.keras'.")
    if os.path.exists(path) and not overwrite:
        raise ModelFormatError(f"save_model: {path!r} exists; pass overwrite=True to replace it.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise ModelFormatError(f"save_model: directory {folder!r} does not exist or is not "
                               "writable.")
    handle, temporary = tempfile.mkstemp(suffix=".keras", dir=folder)
    os.close(handle)
    try:
        model.save(temporary, overwrite=True)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path

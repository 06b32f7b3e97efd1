"""Legacy Keras 2 / tf.keras ``.h5`` model reader built on h5py alone (no code can run)."""
from __future__ import annotations

import io
import json

import h5py
import numpy as np

from ..errors import ModelFormatError
from ..ir import ModelSpec, spec_from_config

MAX_DATASET_BYTES = 1024**3


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value.item())
    return str(value)


def _names(group, key: str, where: str) -> list[str]:
    if key not in group.attrs:
        raise ModelFormatError(f"{where}: group '{group.name}' lacks the '{key}' attribute.")
    return [_text(v) for v in np.atleast_1d(group.attrs[key])]


def _dataset(group, name: str, where: str) -> np.ndarray:
    try:
        node = group[name]
    except KeyError as err:
        raise ModelFormatError(
            f"{where}: weight dataset '{group.name}/{name}' is missing.") from err
    if not isinstance(node, h5py.Dataset):
        raise ModelFormatError(f"{where}: '{group.name}/{name}' is not a dataset.")
    if node.dtype.kind not in "fiub":
        raise ModelFormatError(
            f"{where}: weight '{name}' has dtype {node.dtype}; expected numbers.")
    if node.size * node.dtype.itemsize > MAX_DATASET_BYTES:
        raise ModelFormatError(
            f"{where}: weight '{name}' is larger than {MAX_DATASET_BYTES} bytes.")
    return np.asarray(node[()], dtype=np.float32)


def read_h5_spec(data: bytes, where: str) -> ModelSpec:
    """Read a full-model ``.h5`` (architecture + weights) into a ModelSpec.

    Raises:
        ModelFormatError: truncated/corrupted HDF5, weights-only file, bad or foreign config,
            missing or extra weights.
        UnsafeModelError: Lambda layers or functions in the config.
    """
    try:
        handle = h5py.File(io.BytesIO(data), "r")
    except (OSError, ValueError) as err:
        raise ModelFormatError(f"{where} is not a readable HDF5 file (truncated or corrupted: "
                               f"{err}).") from err
    with handle:
        try:
            attrs = dict(handle.attrs)
        except (OSError, KeyError) as err:
            raise ModelFormatError(f"{where}: HDF5 attributes cannot be read: {err}.") from err
        if "model_config" not in attrs:
            raise ModelFormatError(f"{where} holds weights only (written by save_weights); "
                                   "pass the architecture: save the full model with "
                                   "model.save().")
        backend = _text(attrs.get("backend", "tensorflow"))
        if backend != "tensorflow":
            raise ModelFormatError(f"{where}: written with backend {backend!r}; allowed: "
                                   "'tensorflow'.")
        version = _text(attrs.get("keras_version", "2"))
        if not version.split(".")[0].isdigit() or int(version.split(".")[0]) > 3:
            raise ModelFormatError(f"{where}: written by Keras {version}; this build reads <= 3.")
        try:
            config = json.loads(_text(attrs["model_config"]))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ModelFormatError(f"{where}: model_config is not valid JSON: {err}.") from err
        if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
            raise ModelFormatError(f"{where}: model_config lacks 'class_name'/'config'.")
        group = handle.get("model_weights", handle)
        weights = {}
        try:
            for layer_name in _names(group, "layer_names", where):
                if layer_name not in group:
                    raise ModelFormatError(f"{where}: layer group '{layer_name}' is missing.")
                layer_group = group[layer_name]
                weights[layer_name] = [_dataset(layer_group, n, where)
                                       for n in _names(layer_group, "weight_names", where)]
        except (OSError, RuntimeError) as err:
            raise ModelFormatError(f"{where}: weights cannot be read (truncated or corrupted: "
                                   f"{err}).") from err
    return spec_from_config(config, weights, "h5", where, refuse_code=True)

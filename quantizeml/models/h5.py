"""Legacy Keras 2 / tf.keras ``.h5`` model reader built on h5py alone (no code can run)."""
from __future__ import annotations

import io

import h5py
import numpy as np

from ..errors import ModelFormatError
from ..ir import ModelSpec, spec_from_config
from ..schema import check_keras_version, parse_json, short

MAX_DATASET_BYTES = 1024**3
MAX_WEIGHT_BYTES = 2 * 1024**3
#: What h5py raises on a corrupted or truncated file (HDF5 errors map to these).
H5_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, OverflowError)


def _text(value, where: str, what: str) -> str:
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ModelFormatError(f"{where}: {what} is not UTF-8 text ({err}).") from err
    if isinstance(value, str):
        return value
    raise ModelFormatError(f"{where}: {what} is {type(value).__name__} {short(value)}; expected "
                           "a string.")


def _names(group, key: str, where: str) -> list[str]:
    if key not in group.attrs:
        raise ModelFormatError(f"{where}: group '{group.name}' lacks the '{key}' attribute.")
    values = np.atleast_1d(group.attrs[key])
    if values.ndim != 1:
        raise ModelFormatError(f"{where}: attribute '{key}' of '{group.name}' has shape "
                               f"{values.shape}; expected a list of names.")
    return [_text(v, where, f"'{group.name}' {key} #{i}") for i, v in enumerate(values)]


def _child(group, name: str, where: str):
    """The object stored in the file under ``group/name`` (links are refused: an external link
    or a virtual dataset would read other files)."""
    link = group.get(name, getlink=True)
    if link is None:
        raise ModelFormatError(f"{where}: '{group.name}/{name}' is missing.")
    if not isinstance(link, h5py.HardLink):
        raise ModelFormatError(f"{where}: '{group.name}/{name}' is a link "
                               f"({type(link).__name__}); only objects stored in the file are "
                               "read.")
    return group[name]


def _dataset(group, name: str, where: str) -> np.ndarray:
    node = _child(group, name, where)
    if not isinstance(node, h5py.Dataset):
        raise ModelFormatError(f"{where}: '{group.name}/{name}' is not a dataset.")
    if node.is_virtual or node.external:
        raise ModelFormatError(f"{where}: weight '{group.name}/{name}' refers to data outside "
                               "the file; only datasets stored in the file are read.")
    if node.shape is None:
        raise ModelFormatError(f"{where}: weight '{group.name}/{name}' is empty (null "
                               "dataspace); expected an array of numbers.")
    if node.dtype.kind not in "fiub":
        raise ModelFormatError(
            f"{where}: weight '{name}' has dtype {node.dtype}; expected numbers.")
    if node.size * node.dtype.itemsize > MAX_DATASET_BYTES:
        raise ModelFormatError(
            f"{where}: weight '{name}' is larger than {MAX_DATASET_BYTES} bytes.")
    return np.asarray(node[()], dtype=np.float32)


def read_h5_config(handle, where: str) -> dict:
    """The checked model config of an open full-model HDF5 file.

    Raises:
        ModelFormatError: weights-only file, foreign backend, newer Keras, config attribute that
            is not JSON text of a model (``class_name``/``config``).
    """
    try:
        attrs = dict(handle.attrs)
    except H5_ERRORS as err:
        raise ModelFormatError(f"{where}: HDF5 attributes cannot be read: {err}.") from err
    if "model_config" not in attrs:
        raise ModelFormatError(f"{where} holds weights only (written by save_weights); "
                               "pass the architecture: save the full model with "
                               "model.save().")
    backend = _text(attrs.get("backend", "tensorflow"), where, "attribute 'backend'")
    if backend != "tensorflow":
        raise ModelFormatError(f"{where}: written with backend {short(backend)}; allowed: "
                               "'tensorflow'.")
    check_keras_version(_text(attrs.get("keras_version", "2"), where,
                              "attribute 'keras_version'"), where, "attribute 'keras_version'")
    config = parse_json(_text(attrs["model_config"], where, "attribute 'model_config'"), where,
                        "model_config")
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise ModelFormatError(f"{where}: model_config lacks 'class_name'/'config'.")
    return config


def read_h5_weights(handle, where: str) -> dict[str, list[np.ndarray]]:
    """``{layer name: [arrays]}`` of an open full-model HDF5 file (datasets stored in the file
    only, at most ``MAX_DATASET_BYTES`` each and ``MAX_WEIGHT_BYTES`` in total).

    Raises:
        ModelFormatError: missing groups, datasets or name attributes, links, non-numeric or
            empty datasets, sizes over the limits.
    """
    group = _child(handle, "model_weights", where) if "model_weights" in handle else handle
    if not isinstance(group, h5py.Group):
        raise ModelFormatError(f"{where}: 'model_weights' is not a group.")
    weights, total = {}, 0
    for layer_name in _names(group, "layer_names", where):
        if layer_name not in group:
            raise ModelFormatError(f"{where}: layer group '{layer_name}' is missing.")
        layer_group = _child(group, layer_name, where)
        if not isinstance(layer_group, h5py.Group):
            raise ModelFormatError(f"{where}: '{layer_group.name}' is not a group.")
        arrays = [_dataset(layer_group, n, where)
                  for n in _names(layer_group, "weight_names", where)]
        total += sum(array.nbytes for array in arrays)
        if total > MAX_WEIGHT_BYTES:
            raise ModelFormatError(f"{where}: weights exceed {MAX_WEIGHT_BYTES} bytes in total.")
        weights[layer_name] = arrays
    return weights


def read_h5_spec(data: bytes, where: str) -> ModelSpec:
    """Read a full-model ``.h5`` (architecture + weights) into a ModelSpec.

    Raises:
        ModelFormatError: truncated/corrupted HDF5, weights-only file, bad or foreign config,
            missing or extra weights, links to data outside the file.
        UnsafeModelError: Lambda layers or functions in the config.
    """
    try:
        handle = h5py.File(io.BytesIO(data), "r")
    except H5_ERRORS as err:
        raise ModelFormatError(f"{where} is not a readable HDF5 file (truncated or corrupted: "
                               f"{err}).") from err
    with handle:
        config = read_h5_config(handle, where)
        try:
            weights = read_h5_weights(handle, where)
        except ModelFormatError:
            raise
        except H5_ERRORS as err:  # HDF5 reports corrupted objects through these types
            raise ModelFormatError(f"{where}: weights cannot be read (truncated or corrupted: "
                                   f"{err}).") from err
    return spec_from_config(config, weights, "h5", where, refuse_code=True)

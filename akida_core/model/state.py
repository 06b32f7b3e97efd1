"""Rebuilding layers from their dict form, and the registry of extra model state saved in .fbz.

Mapping and edge learning register a (save, load) pair here, so Model.to_dict / from_dict (and so
the .fbz file) carry their state without model.py knowing about them.
"""
import dataclasses
import math

import numpy as np

from ..enums import LayerType
from ..errors import ModelFormatError
from ..layers import LAYER_KINDS, Layer
from ..layers.base import VariableSpec

_STATE_HOOKS = {}


def register_state(name, save, load):
    """Register `save(model) -> state or None` and `load(model, state)` under a top-level key."""
    if name in _STATE_HOOKS or name in ("format", "version", "layers", "ip_version"):
        raise ValueError(f"model state '{name}' is already registered")
    _STATE_HOOKS[name] = (save, load)


def state_hooks():
    """The registered (save, load) pairs, by name."""
    return dict(_STATE_HOOKS)


MAX_DESCRIPTION_DEPTH = 64
"""Nesting cap of a model description (the .fbz MAX_DEPTH): deeper input cannot recurse past it."""
_SPEC_DTYPES = ("uint8", "int8", "int16", "int32", "int64", "float32", "float64")
_JSON_DTYPES = ("int8", "int16", "int32", "float32", "uint8", "int64", "float64")
_SPEC_KEYS = {"shape", "dtype", "low", "high"}
_LEAF_TYPES = frozenset({int, float, str, bool, type(None)})


def check_depth(description):
    """Raise ModelFormatError when a description nests deeper than MAX_DESCRIPTION_DEPTH (or loops)."""
    stack = [(description, 0, None)]  # iterative, and paths only for a message: descriptions can be big
    while stack:
        node, depth, where = stack.pop()
        for key, value in (node.items() if type(node) is dict else enumerate(node)):
            if type(value) not in _LEAF_TYPES and isinstance(value, (dict, list, tuple)):
                if depth >= MAX_DESCRIPTION_DEPTH:
                    raise ModelFormatError(f"model description at {_path((where, key))} is nested deeper "
                                           f"than {MAX_DESCRIPTION_DEPTH} levels")
                stack.append((value, depth + 1, (where, key)))


def _path(where):
    keys = []
    while where is not None:
        where, key = where
        keys.append(str(key))
    text = "/" + "/".join(reversed(keys))
    return text if len(text) <= 80 else "..." + text[-77:]


def layer_from_dict(entry):
    """Create a layer (not in a model) from `Layer.to_dict()` output; validates every field.

    Args:
        entry: dict with 'layer_type', 'params' and optionally 'extra_variables'.

    Raises:
        ModelFormatError: unknown layer type, missing or unknown parameters, bad variable specs.
        LayerParameterError: a parameter value the layer cannot take.
    """
    if not isinstance(entry, dict):
        raise ModelFormatError(f"layer entry must be a dict, got {type(entry).__name__}")
    kind = entry.get("layer_type")
    known = [k.name for k in LAYER_KINDS]
    if not isinstance(kind, str) or kind not in known:
        raise ModelFormatError(f"unknown layer type {_short(kind)}; known: {known}")
    cls = LAYER_KINDS[LayerType[kind]]
    params = entry.get("params")
    fields = dataclasses.fields(cls.params_type)
    names = {f.name for f in fields}
    if not isinstance(params, dict) or set(params) - names:
        raise ModelFormatError(f"{kind}: bad parameters {_short(params)}; expected keys among {sorted(names)}")
    required = [f.name for f in fields if f.default is dataclasses.MISSING]
    missing = [name for name in required if name not in params]
    if missing:
        raise ModelFormatError(f"{kind} {params.get('name', '')!r}: missing parameter(s) {missing}; "
                               f"required: {required}")
    layer = cls.__new__(cls)
    Layer.__init__(layer, cls.params_type(**params))
    extra = entry.get("extra_variables")
    if extra is None:
        extra = {}
    if not isinstance(extra, dict):
        raise ModelFormatError(f"{kind} '{layer.name}': extra_variables must be a dict of variable specs, "
                               f"got {type(extra).__name__}")
    for name, spec in extra.items():
        layer._extra_specs[name] = _variable_spec(f"{kind} '{layer.name}'", name, spec)
    return layer


def _variable_spec(owner, name, spec):
    where = f"{owner}: extra variable {_short(name)}"
    if not isinstance(name, str) or not isinstance(spec, dict) or not {"shape", "dtype"} <= set(spec) <= _SPEC_KEYS:
        raise ModelFormatError(f"{where}: the spec must be a dict with 'shape' and 'dtype' and optionally "
                               f"'low' and 'high'; got {_short(spec)}")
    shape = spec["shape"]
    if not isinstance(shape, (list, tuple)) or not all(_is_int(d) and d >= 0 for d in shape):
        raise ModelFormatError(f"{where}: shape must be a list of integers >= 0, got {_short(shape)}")
    dtype = spec["dtype"]
    if not isinstance(dtype, str) or dtype not in _SPEC_DTYPES:
        raise ModelFormatError(f"{where}: dtype {_short(dtype)} is not allowed; allowed: {', '.join(_SPEC_DTYPES)}")
    bounds = [spec.get("low"), spec.get("high")]
    for bound in bounds:
        if bound is not None and not (_is_int(bound) or isinstance(bound, float) and math.isfinite(bound)):
            raise ModelFormatError(f"{where}: low/high must be None or finite numbers, got {_short(bounds)}")
    return VariableSpec(tuple(int(d) for d in shape), np.dtype(dtype).type, *bounds)


def arrays_to_lists(node):
    """Replace numpy arrays in a description by JSON-able {"__ndarray__": {dtype, shape, data}}."""
    if isinstance(node, np.ndarray):
        return {"__ndarray__": {"dtype": node.dtype.name, "shape": list(node.shape), "data": node.ravel().tolist()}}
    if isinstance(node, dict):
        return {key: arrays_to_lists(value) for key, value in node.items()}
    if isinstance(node, list):
        return [arrays_to_lists(value) for value in node]
    return node


def lists_to_arrays(node, path="", depth=0):
    """Inverse of `arrays_to_lists` (only integer and float dtypes are accepted; values range-checked).

    Raises:
        ModelFormatError: a malformed array, a value out of its dtype's range, nesting too deep.
    """
    if depth > MAX_DESCRIPTION_DEPTH:
        where = path if len(path) <= 80 else "..." + path[-77:]
        raise ModelFormatError(f"model JSON at {where} is nested deeper than {MAX_DESCRIPTION_DEPTH} levels")
    if isinstance(node, dict):
        if set(node) == {"__ndarray__"}:
            return _array_from_json(node["__ndarray__"], path or "/")
        return {key: lists_to_arrays(value, f"{path}/{key}", depth + 1) for key, value in node.items()}
    if isinstance(node, list):
        return [lists_to_arrays(value, f"{path}/{index}", depth + 1) for index, value in enumerate(node)]
    return node


def _array_from_json(spec, path):
    where = f"model JSON array at {path}"
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data"}:
        raise ModelFormatError(f"{where}: must be {{'dtype', 'shape', 'data'}}, got {_short(spec)}")
    dtype, shape, data = spec["dtype"], spec["shape"], spec["data"]
    if not isinstance(dtype, str) or dtype not in _JSON_DTYPES:
        raise ModelFormatError(f"{where}: unsupported array dtype {_short(dtype)}; allowed: {', '.join(_JSON_DTYPES)}")
    if not isinstance(shape, list) or len(shape) > 32 or not all(type(d) is int and d >= 0 for d in shape):
        raise ModelFormatError(f"{where}: shape must be a list of at most 32 integers >= 0, got {_short(shape)}")
    if not isinstance(data, list) or len(data) != math.prod(shape):
        raise ModelFormatError(f"{where}: data must be a flat list of {math.prod(shape)} numbers "
                               f"(shape {shape}), got {_short(data)}")
    if math.prod(d for d in shape if d) > 2 ** 32:  # numpy refuses such shapes even when empty
        raise ModelFormatError(f"{where}: shape {shape} is too large")
    integer = dtype.startswith(("int", "uint"))
    if not all(type(v) in ((int,) if integer else (int, float)) for v in data):
        raise ModelFormatError(f"{where}: {dtype} data must hold only {'integers' if integer else 'numbers'}")
    info = np.iinfo(dtype) if integer else np.finfo(dtype)
    low, high = (int(info.min), int(info.max)) if integer else (float(info.min), float(info.max))
    if data and (min(data) < low or max(data) > high):  # np.array would overflow or wrap
        raise ModelFormatError(f"{where}: values in [{min(data)}, {max(data)}] do not fit {dtype} [{low}, {high}]")
    return np.array(data, dtype=dtype).reshape(shape)


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _short(value):
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."

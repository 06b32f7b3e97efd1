"""Rebuilding layers from their dict form, and the registry of extra model state saved in .fbz.

Mapping and edge learning register a (save, load) pair here, so Model.to_dict / from_dict (and so
the .fbz file) carry their state without model.py knowing about them.
"""
import dataclasses

import numpy as np

from .enums import LayerType
from .errors import ModelFormatError
from .layers import LAYER_KINDS, Layer
from .layers.base import VariableSpec

_STATE_HOOKS = {}


def register_state(name, save, load):
    """Register `save(model) -> state or None` and `load(model, state)` under a top-level key."""
    if name in _STATE_HOOKS or name in ("format", "version", "layers"):
        raise ValueError(f"model state '{name}' is already registered")
    _STATE_HOOKS[name] = (save, load)


def state_hooks():
    """The registered (save, load) pairs, by name."""
    return dict(_STATE_HOOKS)


def layer_from_dict(entry):
    """Create a layer (not in a model) from `Layer.to_dict()` output; validates every field.

    Args:
        entry: dict with 'layer_type', 'params' and optionally 'extra_variables'.

    Raises:
        ModelFormatError: unknown layer type or parameters.
    """
    if not isinstance(entry, dict):
        raise ModelFormatError(f"layer entry must be a dict, got {type(entry).__name__}")
    kind = entry.get("layer_type")
    try:
        cls = LAYER_KINDS[LayerType[kind]]
    except (KeyError, TypeError):
        raise ModelFormatError(f"unknown layer type {kind!r}; known: {[k.name for k in LAYER_KINDS]}") from None
    params = entry.get("params")
    fields = {f.name for f in dataclasses.fields(cls.params_type)}
    if not isinstance(params, dict) or set(params) - fields:
        raise ModelFormatError(f"{kind}: bad parameters {params!r}; expected keys among {sorted(fields)}")
    layer = cls.__new__(cls)
    Layer.__init__(layer, cls.params_type(**params))
    for name, spec in (entry.get("extra_variables") or {}).items():
        if not isinstance(spec, dict):
            raise ModelFormatError(f"{kind}: bad extra variable spec for {name!r}")
        layer._extra_specs[name] = VariableSpec(tuple(int(d) for d in spec["shape"]),
                                                np.dtype(str(spec["dtype"])).type,
                                                spec.get("low"), spec.get("high"))
    return layer


def arrays_to_lists(node):
    """Replace numpy arrays in a description by JSON-able {"__ndarray__": {dtype, shape, data}}."""
    if isinstance(node, np.ndarray):
        return {"__ndarray__": {"dtype": node.dtype.name, "shape": list(node.shape), "data": node.ravel().tolist()}}
    if isinstance(node, dict):
        return {key: arrays_to_lists(value) for key, value in node.items()}
    if isinstance(node, list):
        return [arrays_to_lists(value) for value in node]
    return node


def lists_to_arrays(node):
    """Inverse of `arrays_to_lists` (only integer and float dtypes are accepted)."""
    if isinstance(node, dict):
        if set(node) == {"__ndarray__"}:
            spec = node["__ndarray__"]
            if spec["dtype"] not in ("int8", "int32", "float32", "uint8", "int64", "float64"):
                raise ValueError(f"unsupported array dtype {spec['dtype']!r}")
            return np.array(spec["data"], dtype=spec["dtype"]).reshape([int(d) for d in spec["shape"]])
        return {key: lists_to_arrays(value) for key, value in node.items()}
    if isinstance(node, list):
        return [lists_to_arrays(value) for value in node]
    return node

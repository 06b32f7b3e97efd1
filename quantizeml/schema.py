"""Type and structure checks of model configs read from files, before anything else uses them.

A config parsed from JSON can hold any JSON value anywhere. These checks state what each field
read by quantizeml must be (a dict, a string, a list of layer entries, inbound nodes of the Keras 2
or Keras 3 shape, positive sizes, a padding name...) and raise ``ModelFormatError`` naming the
file, the layer, the value found and what is allowed, so no malformed value reaches Keras or our
own code as a raw ``TypeError``/``KeyError``/``RecursionError``.
"""
from __future__ import annotations

import json
import math

import numpy as np

from .errors import ModelFormatError, UnsafeModelError

#: JSON nesting deeper than this is refused; real Keras configs nest about 8 levels.
MAX_JSON_DEPTH = 64
#: Integers with more digits are refused (seeds and sizes have at most 20).
MAX_JSON_INT_DIGITS = 30
#: Largest per-axis size a config may give (filters, units, kernel, stride, input dimension).
MAX_SIZE = 2**20
#: Most layer entries a model config may hold.
MAX_LAYERS = 4096
#: Activation names a file may give (Keras built-ins); anything else is refused.
ACTIVATIONS = frozenset({
    "linear", "relu", "relu6", "sigmoid", "hard_sigmoid", "softmax", "log_softmax", "tanh",
    "softplus", "softsign", "elu", "selu", "gelu", "swish", "silu", "hard_swish", "hard_silu",
    "exponential", "leaky_relu", "mish"})
#: Modules of the dict form ``{"class_name": "function", "config": "relu", "module": ...}``.
ACTIVATION_MODULES = ("keras.activations", "keras.src.activations.activations",
                      "tf_keras.activations", "tf_keras.src.activations")


def short(value, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def parse_json(raw, where: str, what: str):
    """Parse JSON text from a model file with bounded nesting and integer size.

    Raises:
        ModelFormatError: not UTF-8, not JSON, nested deeper than ``MAX_JSON_DEPTH`` or an
            integer longer than ``MAX_JSON_INT_DIGITS`` digits.
    """
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as err:
            raise ModelFormatError(f"{where}: {what} is not UTF-8 text ({err}).") from err

    def parse_int(text):
        if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
            raise ModelFormatError(f"{where}: {what} holds a {len(text)}-digit integer; the "
                                   f"limit is {MAX_JSON_INT_DIGITS} digits.")
        return int(text)

    try:
        value = json.loads(raw, parse_int=parse_int)
    except ModelFormatError:
        raise
    except RecursionError as err:
        raise ModelFormatError(f"{where}: {what} nests too deeply to parse; the limit is "
                               f"{MAX_JSON_DEPTH} levels.") from err
    except ValueError as err:  # JSONDecodeError
        raise ModelFormatError(f"{where}: {what} is not valid JSON: {err}.") from err
    depth = json_depth(value)
    if depth > MAX_JSON_DEPTH:
        raise ModelFormatError(f"{where}: {what} nests {depth} levels deep; the limit is "
                               f"{MAX_JSON_DEPTH}.")
    return value


def json_depth(value) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), computed without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in item
                         if isinstance(child, (dict, list)))
    return deepest


def check_keras_version(version, where: str, what: str = "keras_version") -> None:
    """Refuse a ``keras_version`` that is not a version string or names Keras > 3.

    Raises:
        ModelFormatError: non-string, no leading ASCII number, or a major version above 3.
    """
    major = version.split(".")[0] if isinstance(version, str) else ""
    if not (major.isascii() and major.isdigit() and len(major) <= 4):
        raise ModelFormatError(f"{where}: {what} {short(version)} is not a Keras version; "
                               "expected a string such as '2.15.0' or '3.8.0'.")
    if int(major) > 3:
        raise ModelFormatError(f"{where}: written by Keras {version[:20]}; this build reads "
                               "Keras <= 3 files.")


# ---- model structure ----

def _optional_str(entry: dict, key: str, where: str, label: str) -> None:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise ModelFormatError(f"{where}: {label} has {key}={short(value)}; expected a string.")


def validate_model_config(config, where: str) -> dict:
    """Check the structure of a Keras 2/3 model config; return the dict holding ``layers``.

    Accepts the file form ``{"class_name": ..., "config": {"layers": [...]}}`` and the inner
    form ``{"name": ..., "layers": [...]}`` that ``model.get_config()`` returns.

    Raises:
        ModelFormatError: naming the first field of the wrong type or shape.
    """
    if not isinstance(config, dict):
        raise ModelFormatError(f"{where}: the model config is {type(config).__name__}, not a "
                               "dict.")
    if "class_name" in config and "config" in config and "layers" not in config:
        _optional_str(config, "class_name", where, "the model config")
        _optional_str(config, "module", where, "the model config")
        if not isinstance(config["config"], dict):
            raise ModelFormatError(f"{where}: the model config of {short(config['class_name'])}"
                                   f" is {short(config['config'])}; expected a dict with "
                                   "'layers'.")
        config = config["config"]
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ModelFormatError(f"{where}: model config has no 'layers' list (found "
                               f"{short(layers)}); is it a Sequential or Functional model?")
    if len(layers) > MAX_LAYERS:
        raise ModelFormatError(f"{where}: model config has {len(layers)} layers; the limit is "
                               f"{MAX_LAYERS}.")
    _optional_str(config, "name", where, "the model config")
    for index, entry in enumerate(layers):
        if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
            found = short(entry.get("class_name") if isinstance(entry, dict) else entry)
            raise ModelFormatError(f"{where}: layer #{index} has no 'class_name' string (found "
                                   f"{found}); each layer entry is a dict with 'class_name' "
                                   "and 'config'.")
        label = f"layer #{index} ({entry['class_name']})"
        for key in ("module", "registered_name", "name"):
            _optional_str(entry, key, where, label)
        if "config" in entry and not isinstance(entry["config"], dict):
            raise ModelFormatError(f"{where}: {label} has config={short(entry['config'])}; "
                                   "expected a dict.")
        _optional_str(entry.get("config", {}), "name", where, label)
        inbound_names(entry, where)
    for key in ("input_layers", "output_layers"):
        if config.get(key) is not None:
            endpoint_names(config[key], where, key)
    return config


def _is_history(value) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and isinstance(value[0], str)


def inbound_names(entry: dict, where: str = "model config") -> list[str]:
    """Names of the layers feeding a layer entry (Keras 2 lists or Keras 3 node dicts).

    Raises:
        ModelFormatError: ``inbound_nodes`` of any other shape.
    """
    nodes = entry.get("inbound_nodes")
    if nodes is None:
        return []
    label = f"layer {short(entry.get('name') or entry.get('config', {}).get('name'))}"
    expected = ("expected a list of nodes, each {'args': [...], 'kwargs': {...}} (Keras 3) or "
                "[[layer name, node index, tensor index, kwargs], ...] (Keras 2)")
    if not isinstance(nodes, (list, tuple)):
        raise ModelFormatError(f"{where}: {label} has inbound_nodes={short(nodes)}; {expected}.")
    names = []
    for node in nodes:
        if isinstance(node, dict):
            args, kwargs = node.get("args", []), node.get("kwargs", {})
            if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict):
                raise ModelFormatError(f"{where}: {label} has an inbound node {short(node)}; "
                                       f"{expected}.")
            stack = list(reversed(list(args) + list(kwargs.values())))
            while stack:
                item = stack.pop()
                if isinstance(item, dict) and item.get("class_name") == "__keras_tensor__":
                    tensor = item.get("config")
                    history = tensor.get("keras_history") if isinstance(tensor, dict) else None
                    if not _is_history(history):
                        raise ModelFormatError(
                            f"{where}: {label} has an input tensor {short(item)} without a "
                            "keras_history [layer name, node index, tensor index].")
                    names.append(history[0])
                elif isinstance(item, (list, tuple)):
                    stack.extend(reversed(item))
        elif isinstance(node, (list, tuple)) and all(_is_history(item) for item in node):
            names.extend(item[0] for item in node)
        else:
            raise ModelFormatError(f"{where}: {label} has an inbound node {short(node)}; "
                                   f"{expected}.")
    return names


def _is_endpoint(value) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) == 3 and isinstance(value[0], str)
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value[1:]))


def endpoint_names(value, where: str, key: str = "output_layers") -> list[str]:
    """Layer names of ``input_layers`` / ``output_layers``: one [name, node, tensor] triple or a
    (nested) list/dict of them.

    Raises:
        ModelFormatError: any other value.
    """
    names, stack = [], [value]
    while stack:
        item = stack.pop()
        if _is_endpoint(item):
            names.append(item[0])
        elif isinstance(item, dict) or (isinstance(item, (list, tuple)) and all(
                isinstance(child, (list, tuple, dict)) for child in item)):
            stack.extend(reversed(list(item.values() if isinstance(item, dict) else item)))
        else:
            inner = "" if item is value else f" holds {short(item)}"
            raise ModelFormatError(f"{where}: {key}={short(value)}{inner}; expected [layer name, "
                                   "node index, tensor index] entries.")
    return names


# ---- layer config values (the LAYER_KEYS quantizeml passes to Keras constructors) ----

def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value.item()  # tf-keras layers keep some settings as 0-d arrays
    return _is_int(value) or (isinstance(value, (float, np.floating)) and math.isfinite(value))


def _positive(value) -> bool:
    return _is_int(value) and 1 <= value <= MAX_SIZE


def _pair(value) -> bool:
    return _positive(value) or (isinstance(value, (list, tuple)) and len(value) == 2
                                and all(_positive(v) for v in value))


def _axis(value) -> bool:
    values = value if isinstance(value, (list, tuple)) and value else [value]
    return all(_is_int(v) and -8 <= v < 8 for v in values)


def _target_shape(value) -> bool:
    return isinstance(value, (list, tuple)) and 1 <= len(value) <= 8 and all(
        _is_int(v) and (v == -1 or 1 <= v < 2**31) for v in value)


def _reals(value) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "iuf" and 0 < value.size <= MAX_SIZE and bool(
            np.all(np.isfinite(value)))
    if isinstance(value, (list, tuple)):
        return 0 < len(value) <= MAX_SIZE and all(_is_real(v) for v in value)
    return _is_real(value)


def _zero_padding(value) -> bool:
    def count(v):
        return _is_int(v) and 0 <= v <= MAX_SIZE
    if count(value):
        return True
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(
        count(v) or (isinstance(v, (list, tuple)) and len(v) == 2 and all(count(u) for u in v))
        for v in value)


def _non_negative(value) -> bool:
    return _is_real(value) and value >= 0


RULES = {
    "positive": (_positive, f"a positive integer <= {MAX_SIZE}"),
    "pair": (_pair, f"a positive integer or a pair of them (<= {MAX_SIZE})"),
    "padding": (lambda v: isinstance(v, str) and v in ("same", "valid"), "'same' or 'valid'"),
    "data_format": (lambda v: v is None or (isinstance(v, str) and v in (
        "channels_last", "channels_first")),
                    "null, 'channels_last' or 'channels_first'"),
    "bool": (lambda v: isinstance(v, (bool, np.bool_)), "true or false"),
    "epsilon": (lambda v: _is_real(v) and v > 0, "a finite number > 0"),
    "axis": (_axis, "an integer axis or a list of them, between -8 and 7"),
    "non_negative": (_non_negative, "a finite number >= 0"),
    "max_value": (lambda v: v is None or _non_negative(v), "null or a finite number >= 0"),
    "target_shape": (_target_shape, "a list of 1 to 8 positive integers (one may be -1)"),
    "reals": (_reals, "a finite number or a list of finite numbers"),
    "rate": (lambda v: _is_real(v) and 0 <= v <= 1, "a number between 0 and 1"),
    "pool_strides": (lambda v: v is None or _pair(v), f"null or a positive integer or pair "
                     f"(<= {MAX_SIZE})"),
    "zero_padding": (_zero_padding, "a count >= 0, a pair of them, or a pair of (before, after) "
                     "pairs"),
}
KEY_RULES = {
    "filters": "positive", "units": "positive", "groups": "positive",
    "depth_multiplier": "positive", "kernel_size": "pair", "strides": "pair",
    "dilation_rate": "pair", "pool_size": "pair", "padding": "padding",
    "data_format": "data_format", "use_bias": "bool", "center": "bool", "scale": "bool",
    "keepdims": "bool", "epsilon": "epsilon", "axis": "axis", "max_value": "max_value",
    "negative_slope": "non_negative", "threshold": "non_negative",
    "target_shape": "target_shape", "rate": "rate", "stddev": "non_negative",
}
#: (class, key) -> rule where a class reads a key differently.
CLASS_RULES = {("Rescaling", "scale"): "reals", ("Rescaling", "offset"): "reals",
               ("MaxPooling2D", "strides"): "pool_strides",
               ("ZeroPadding2D", "padding"): "zero_padding"}
#: Keys without a Keras default.
REQUIRED = {"Conv2D": ("filters", "kernel_size"), "SeparableConv2D": ("filters", "kernel_size"),
            "DepthwiseConv2D": ("kernel_size",), "Dense": ("units",),
            "Reshape": ("target_shape",), "Rescaling": ("scale",), "Dropout": ("rate",),
            "SpatialDropout2D": ("rate",), "GaussianNoise": ("stddev",),
            "GaussianDropout": ("rate",), "Activation": ("activation",)}


def _activation(value, label: str, refuse_code: bool):
    if value is None or (isinstance(value, str) and value in ACTIVATIONS):
        return value
    if isinstance(value, dict) and value.get("class_name") == "function" and all(
            isinstance(value.get(key), str) for key in ("config", "module")) and value[
            "config"] in ACTIVATIONS and value["module"] in ACTIVATION_MODULES:
        return value["config"]  # Keras passes on the name only: no module lookup
    if not refuse_code:
        return value  # an in-memory model's own function: reported by check_layers
    raise UnsafeModelError(f"{label}: activation={short(value)} is refused; allowed: one of the "
                           f"names {', '.join(sorted(ACTIVATIONS))} (a file may not name "
                           "functions or modules).")


def validate_layer_config(class_name: str, config: dict, label: str,
                          refuse_code: bool = True) -> dict:
    """Check the kept config values of a layer quantizeml rebuilds; return them (an activation
    given in the Keras dict form becomes its name).

    Args:
        class_name: a ``LAYER_KEYS`` class.
        config: the kept keys.
        label: ``"<where>: layer 'name' (Class)"`` for messages.
        refuse_code: refuse activations that are not built-in names (files).

    Raises:
        ModelFormatError: a missing required key or a value of the wrong type or range.
        UnsafeModelError: an activation naming a function or module (``refuse_code``).
    """
    missing = [key for key in REQUIRED.get(class_name, ()) if key not in config]
    if missing:
        raise ModelFormatError(f"{label}: config lacks {', '.join(missing)}.")
    checked = dict(config)
    for key, value in config.items():
        if key == "activation":
            checked[key] = _activation(value, label, refuse_code)
            continue
        rule = CLASS_RULES.get((class_name, key), KEY_RULES.get(key))
        if rule is None:
            continue
        accept, allowed = RULES[rule]
        if not accept(value):
            raise ModelFormatError(f"{label}: {key}={short(value)}; allowed: {allowed}.")
    return checked

"""A model file's layer chain rebuilt layer by layer, for the checker, when Keras cannot rebuild the
whole model (e.g. a tf-keras LSTM in a legacy `.h5`).

Each layer Keras can rebuild is called on a symbolic input of the shape that reaches it, so the
checks see its configuration and shapes as usual; a layer it cannot rebuild becomes an "unknown"
LayerInfo (one issue), and the layers after it are still checked: with shapes where they can be
inferred (recurrent layers: from `units` and `return_sequences`), without them otherwise.
Only configurations that passed the file reader's allowlist (`files.check_config`) get here.
"""
from __future__ import annotations

from typing import Optional

from .keras_model import ConfigChain, LayerInfo, describe

_RECURRENT = ("LSTM", "GRU", "SimpleRNN")


def _input_shape(layers) -> Optional[tuple]:
    for entry in layers[:2]:
        config = entry.get("config", {}) if isinstance(entry, dict) else {}
        shape = config.get("batch_input_shape") or config.get("batch_shape")
        if isinstance(shape, (list, tuple)) and len(shape) > 1:
            return tuple(shape[1:])
    return None


def _rebuild(entry):
    """The Keras 3 layer of a legacy layer entry, or None when Keras cannot rebuild it."""
    from keras.src.legacy.saving import saving_utils
    try:
        return saving_utils.model_from_config(entry)
    except Exception:  # Keras raises many types on configs it does not know: an issue, not a crash
        return None


def _unknown_output_shape(class_name, config, shape) -> Optional[tuple]:
    if class_name in _RECURRENT and shape is not None and len(shape) == 2 and \
            isinstance(config.get("units"), int):
        return (shape[0], config["units"]) if config.get("return_sequences") else \
            (config["units"],)
    return None


def _called(layer, shape) -> Optional[LayerInfo]:
    import keras
    if shape is None or any(d is None for d in shape):
        return None
    try:
        layer(keras.Input(shape))
    except Exception:  # a shape this layer refuses: checked without shapes
        return None
    return describe(layer)


def chain_from_config(config, source: str = "model") -> ConfigChain:
    """Reads a (legacy or Keras 3) Sequential/Functional configuration as a chain of LayerInfos.

    Args:
        config: the model configuration dict, already checked against the allowlist.
        source: the file name, for the model name when the configuration has none.

    Returns:
        A ConfigChain for `check_model_compatibility`.
    """
    inner = config.get("config", {}) if isinstance(config, dict) else {}
    layers = [e for e in inner.get("layers", []) if isinstance(e, dict)]
    shape = _input_shape(layers)
    infos = []
    for entry in layers:
        class_name = str(entry.get("class_name"))
        layer_config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
        name = str(layer_config.get("name", class_name))
        layer = _rebuild(entry) if class_name != "InputLayer" else None
        if class_name == "InputLayer":
            infos.append(LayerInfo(name, "input", class_name, layer_config, shape, shape))
            continue
        if layer is None:
            out = _unknown_output_shape(class_name, layer_config, shape)
            infos.append(LayerInfo(name, "unknown", class_name, layer_config, shape, out))
            shape = out
            continue
        info = _called(layer, shape) or describe(layer)
        infos.append(info)
        shape = info.output_shape
    return ConfigChain(str(inner.get("name") or source), infos, _input_shape(layers))

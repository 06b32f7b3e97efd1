"""Shared machinery of the quantized layers: registration, float32 policy, config checks."""
from __future__ import annotations

import keras
import numpy as np

from ..errors import QuantizationConfigError

PACKAGE = "quantizeml"


def register(cls):
    """Register a class for Keras serialization under the stable key ``quantizeml>ClassName``."""
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


def force_float32(kwargs: dict) -> dict:
    """Pin a quantized layer to float32 without autocasting.

    Mixed precision (float16/bfloat16) would break the exact integer arithmetic, and autocasting a
    float64 potential (used when a bound exceeds 2**24) to float32 would round it.
    """
    kwargs["dtype"] = "float32"
    kwargs["autocast"] = False
    return kwargs


def check_bits(layer_name: str, name: str, value, allowed) -> int:
    """Return ``value`` as an int if it is one of ``allowed``, else raise a clear error."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or (
        int(value) not in allowed
    ):
        raise QuantizationConfigError(
            f"Layer '{layer_name}': {name}={value!r} is not supported; allowed: "
            f"{', '.join(map(str, allowed))}."
        )
    return int(value)


def check_channels_last(layer_name: str, data_format) -> None:
    """Reject channels_first: Akida works on (height, width, channels)."""
    if data_format not in (None, "channels_last"):
        raise QuantizationConfigError(
            f"Layer '{layer_name}': data_format={data_format!r} is not supported; allowed: "
            "'channels_last'. Hint: transpose the model input and use channels_last layers."
        )


def refuse_float_features(layer_name, lora_rank, quantization_config) -> None:
    """Raise unless Keras' float-only Dense/Conv features (LoRA, Keras quantization) are left None."""
    if lora_rank is not None or quantization_config is not None:
        raise QuantizationConfigError(
            f"Layer '{layer_name}': lora_rank/quantization_config are Keras float features and "
            "cannot be combined with Akida quantization; leave them None.")

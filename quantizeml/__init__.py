"""quantizeml: quantized Keras 3 layers with exact Akida 1.0 integer semantics.

Never imports akida_core. See docs/quantization.md for the exactness and export contracts.
"""
import logging

import keras

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"quantizeml needs the TensorFlow Keras backend; KERAS_BACKEND is "
        f"{keras.backend.backend()!r}. Set KERAS_BACKEND=tensorflow before importing keras.")

from . import layers, quantizers  # noqa: E402
from .errors import (  # noqa: E402
    CalibrationError, ModelFormatError, QuantizationConfigError, QuantizationError, QuantizeMLError,
    UnsafeModelError, UnsupportedLayerError)
from .params import PRESETS, QuantizationParams  # noqa: E402

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "layers", "quantizers", "QuantizationParams", "PRESETS", "QuantizeMLError",
    "QuantizationConfigError", "QuantizationError", "UnsupportedLayerError", "CalibrationError",
    "ModelFormatError", "UnsafeModelError",
]

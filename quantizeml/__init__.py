"""quantizeml: quantized Keras 3 layers with exact Akida 1.0 integer semantics.

Never imports akida_core. See docs/quantization.md for the exactness and export contracts.
"""
import logging

from . import layers, quantizers
from .errors import (CalibrationError, ModelFormatError, QuantizationConfigError,
                     QuantizationError, QuantizeMLError, UnsafeModelError, UnsupportedLayerError)
from .params import PRESETS, QuantizationParams

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "layers", "quantizers", "QuantizationParams", "PRESETS", "QuantizeMLError",
    "QuantizationConfigError", "QuantizationError", "UnsupportedLayerError", "CalibrationError",
    "ModelFormatError", "UnsafeModelError",
]

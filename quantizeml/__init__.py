"""quantizeml: quantized Keras 3 layers with the exact integer semantics of Akida 1.0 and 2.0.

``QuantizationParams`` is MetaTF's settings object; ``Akida1QuantizationParams`` the explicit
Akida 1.0 recipe. ``quantizeml.models.quantize`` runs the scheme of the selected Akida version
(``cnn2snn.set_akida_version``, default Akida 2.0 as in MetaTF).

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
from .params import PRESETS, Akida1QuantizationParams  # noqa: E402
from .v2.params import QuantizationParams  # noqa: E402

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "layers", "quantizers", "QuantizationParams", "Akida1QuantizationParams", "PRESETS",
    "QuantizeMLError",
    "QuantizationConfigError", "QuantizationError", "UnsupportedLayerError", "CalibrationError",
    "ModelFormatError", "UnsafeModelError",
]

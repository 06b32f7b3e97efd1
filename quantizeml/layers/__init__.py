"""Quantized twins of the Keras layers used by Akida 1.0 blocks (all Keras-serializable)."""
from .activation import QuantizedReLU
from .io import Dequantizer, InputQuantizer
from .neural import (NEURAL_LAYERS, QuantizedConv2D, QuantizedDense, QuantizedDepthwiseConv2D,
                     QuantizedSeparableConv2D)
from .pooling import QuantizedGlobalAveragePooling2D, QuantizedMaxPool2D
from .reshaping import QuantizedFlatten, QuantizedRescaling, QuantizedReshape
from ..v2.params import QuantizationParams

__all__ = [
    "QuantizationParams", "QuantizedConv2D", "QuantizedSeparableConv2D", "QuantizedDepthwiseConv2D",
    "QuantizedDense", "QuantizedReLU", "QuantizedMaxPool2D", "QuantizedGlobalAveragePooling2D",
    "QuantizedFlatten", "QuantizedReshape", "QuantizedRescaling", "InputQuantizer", "Dequantizer",
    "NEURAL_LAYERS",
]

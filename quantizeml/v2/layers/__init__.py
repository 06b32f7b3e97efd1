"""Quantized Keras twins of the Akida 2.0 scheme (registered as ``quantizeml_v2>ClassName``)."""
from .io import Dequantizer, InputQuantizer
from .lut import LUT_LAYERS, QuantizedActivation, QuantizedLeakyReLU
from .merge import QuantizedAdd, QuantizedConcatenate, QuantizedFlatten
from .neural import (NEURAL_LAYERS, QuantizedConv2D, QuantizedConv2DTranspose, QuantizedDense,
                     QuantizedDepthwiseConv2D)
from .post import QuantizedGlobalAveragePooling2D, QuantizedMaxPool2D, QuantizedReLU

__all__ = ["QuantizedConv2D", "QuantizedDepthwiseConv2D", "QuantizedConv2DTranspose",
           "QuantizedDense", "QuantizedReLU", "QuantizedMaxPool2D",
           "QuantizedGlobalAveragePooling2D", "QuantizedAdd", "QuantizedConcatenate",
           "QuantizedFlatten", "QuantizedActivation", "QuantizedLeakyReLU", "InputQuantizer",
           "Dequantizer", "NEURAL_LAYERS", "LUT_LAYERS"]

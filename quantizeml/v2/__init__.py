"""The Akida 2.0 quantization scheme (quantizeml 1.x / MetaTF 2.x): 8-bit per-axis weights, 8-bit
activations, output scales and shifts; functional graphs with branches and skips.

    >>> from quantizeml.v2 import QuantizationParams, quantize
    >>> qmodel = quantize(model, qparams=QuantizationParams(), samples=x_calibration)

The quantized layers compute the integers of the Akida 2.0 layers (akida2-layers.md) exactly, so
``cnn2snn.convert`` only transfers integers. Never imports akida_core.
"""
from . import layers
from .params import QuantizationParams
from .quantize import quantize, strip_float_tail

__all__ = ["QuantizationParams", "quantize", "layers", "strip_float_tail"]

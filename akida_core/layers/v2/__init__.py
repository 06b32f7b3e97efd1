"""The Akida 2.0 layer kinds (IpVersion.v2): 8-bit scales and shifts, LUTs, skips, temporal layers.

One family per file: convolution (InputConv2D, Conv2D, DepthwiseConv2D), dense (Dense1D and the
transposed convolutions), temporal (BufferTempConv, DepthwiseBufferTempConv, StatefulRecurrent),
merge (Add, Concatenate) and quantizer (Quantizer, Dequantizer). They share `base.py` (exact-dtype
variables, the POST pipeline) and the integer kernels of `akida_core.kernels_v2`; InputData is
shared with Akida 1.0.
"""
from .base import LayerV2
from .convolution import Conv2D, DepthwiseConv2D, InputConv2D
from .dense import Conv2DTranspose, Dense1D, DepthwiseConv2DTranspose
from .merge import Add, Concatenate
from .quantizer import Dequantizer, Quantizer, validate_v2_inputs
from .temporal import BufferTempConv, DepthwiseBufferTempConv, StatefulRecurrent

V2_KINDS = (InputConv2D, Conv2D, DepthwiseConv2D, Conv2DTranspose, DepthwiseConv2DTranspose, Dense1D,
            BufferTempConv, DepthwiseBufferTempConv, StatefulRecurrent, Add, Concatenate, Quantizer, Dequantizer)

__all__ = ["LayerV2", "V2_KINDS", "validate_v2_inputs"] + [cls.__name__ for cls in V2_KINDS]

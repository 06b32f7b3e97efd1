"""Enumerations of the Akida API: padding, pooling and layer kinds."""
import enum


class Padding(enum.IntEnum):
    """Convolution padding: Valid (no padding), Same (output size ceil(input / stride), extra padding
    at the bottom/right like TF) or SameUpper (Akida 2.0 only: Same sizes, `floor((k - 1) / 2)` before)."""

    Valid = 0
    Same = 1
    SameUpper = 2


class PoolType(enum.IntEnum):
    """Pooling applied to the potentials, after the convolution and before the activation."""

    NoPooling = 0
    Max = 1
    Average = 2


class LayerType(enum.IntEnum):
    """Kinds of Akida layers: the Akida 1.0 set (1-5) and the Akida 2.0 set (6-18)."""

    Unknown = 0
    InputData = 1
    InputConvolutional = 2
    FullyConnected = 3
    Convolutional = 4
    SeparableConvolutional = 5
    Add = 6
    Concatenate = 7
    Conv2D = 8
    InputConv2D = 9
    DepthwiseConv2D = 10
    Conv2DTranspose = 11
    Dequantizer = 12
    DepthwiseConv2DTranspose = 13
    BufferTempConv = 14
    DepthwiseBufferTempConv = 15
    StatefulRecurrent = 16
    Dense1D = 17
    Quantizer = 18


class ActivationType(enum.IntEnum):
    """Activation of an Akida 2.0 neural layer: none, ReLU (with an optional max value) or a LUT."""

    NoActivation = 0
    ReLU = 1
    LUT = 2


class IpVersion(enum.Enum):
    """Akida IP generation of a device, a model or a layer."""

    none = 0
    v1 = 1
    v2 = 2
    pico = 3

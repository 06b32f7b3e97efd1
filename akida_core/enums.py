"""Enumerations of the Akida API: padding, pooling and layer kinds."""
import enum


class Padding(enum.IntEnum):
    """Convolution padding: Valid (no padding) or Same (output size ceil(input / stride))."""

    Valid = 0
    Same = 1


class PoolType(enum.IntEnum):
    """Pooling applied to the potentials, after the convolution and before the activation."""

    NoPooling = 0
    Max = 1
    Average = 2


class LayerType(enum.IntEnum):
    """Kinds of Akida layers (the Akida 1.0 set is implemented by this runtime)."""

    Unknown = 0
    InputData = 1
    InputConvolutional = 2
    FullyConnected = 3
    Convolutional = 4
    SeparableConvolutional = 5

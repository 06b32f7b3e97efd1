"""The layer kinds, one per file: Akida 1.0 here, Akida 2.0 in `v2/`, and the LayerType registry."""
from ..enums import LayerType
from .v1.convolutional import Convolutional
from .v1.fully_connected import FullyConnected
from .v1.input_convolutional import InputConvolutional
from .input_data import InputData
from .layer import Layer
from .v1.separable_convolutional import SeparableConvolutional

from .v2 import V2_KINDS

LAYER_KINDS = {cls.layer_type: cls for cls in
               (InputData, InputConvolutional, Convolutional, SeparableConvolutional, FullyConnected,
                *V2_KINDS)}
"""LayerType -> Layer class; .fbz loading and the contract tests iterate over it."""

__all__ = ["Layer", "LAYER_KINDS", "LayerType", "InputData", "InputConvolutional", "Convolutional",
           "SeparableConvolutional", "FullyConnected"]

"""The Akida 1.0 layer kinds, one per file, and the registry that maps LayerType to class."""
from ..enums import LayerType
from .convolutional import Convolutional
from .fully_connected import FullyConnected
from .input_convolutional import InputConvolutional
from .input_data import InputData
from .layer import Layer
from .separable_convolutional import SeparableConvolutional

LAYER_KINDS = {cls.layer_type: cls for cls in
               (InputData, InputConvolutional, Convolutional, SeparableConvolutional, FullyConnected)}
"""LayerType -> Layer class; .fbz loading and the contract tests iterate over it."""

__all__ = ["Layer", "LAYER_KINDS", "LayerType", "InputData", "InputConvolutional", "Convolutional",
           "SeparableConvolutional", "FullyConnected"]

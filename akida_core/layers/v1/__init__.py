"""The Akida 1.0 layer kinds (IpVersion.v1): thresholds, act_step and 1-4 bit activations.

One kind per file: InputConvolutional, Convolutional, SeparableConvolutional, FullyConnected. They
share `layers/base.py` and `layers/layer.py` with Akida 2.0, and the kernels in `akida_core.kernels`.
"""
from .convolutional import Convolutional
from .fully_connected import FullyConnected
from .input_convolutional import InputConvolutional
from .separable_convolutional import SeparableConvolutional

__all__ = ["Convolutional", "FullyConnected", "InputConvolutional", "SeparableConvolutional"]

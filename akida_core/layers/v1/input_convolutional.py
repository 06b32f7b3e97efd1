"""InputConvolutional: image input layer; cross-correlation padded with `padding_value`."""
import dataclasses

import numpy as np

from ... import kernels
from ...enums import LayerType, Padding, PoolType
from ..base import as_shape, check_int, weight_range
from .convolutional import (buffered_convolution, check_conv_fields, conv_output_shape, conv_positions,
                            pooled_positions)
from ..layer import Layer

INPUT_BITS = 8


@dataclasses.dataclass(frozen=True)
class InputConvolutionalParams:
    """Parameters of InputConvolutional (Akida 1.0). Inputs are uint8 images."""

    input_shape: tuple
    kernel_size: tuple
    filters: int
    name: str = ""
    padding: Padding = Padding.Same
    kernel_stride: tuple = (1, 1)
    weights_bits: int = 1
    pool_size: tuple = (-1, -1)
    pool_type: PoolType = PoolType.NoPooling
    pool_stride: tuple = (-1, -1)
    activation: bool = True
    act_bits: int = 1
    padding_value: int = 0
    threshold: int = 0

    def __post_init__(self):
        owner = f"InputConvolutional '{self.name}'"
        object.__setattr__(self, "input_shape", as_shape(owner, self.input_shape))
        check_conv_fields(self, owner, tuple(range(1, 9)))
        object.__setattr__(self, "padding_value",
                           check_int(owner, "padding_value", self.padding_value, 0, 255))


def output_shape(params, input_shape=None):
    """Output (height, width, filters) of the input convolution and its pooling."""
    return conv_output_shape(params, params.input_shape)


class InputConvolutional(Layer):
    """Image input layer: cross-correlation (no kernel flip) of uint8 inputs, pooling, activation."""

    layer_type = LayerType.InputConvolutional
    short_name = "InputConv"
    bands = True
    params_type = InputConvolutionalParams
    is_input = True

    def __init__(self, input_shape, kernel_size, filters, name="", padding=Padding.Same,
                 kernel_stride=(1, 1), weights_bits=1, pool_size=(-1, -1), pool_type=PoolType.NoPooling,
                 pool_stride=(-1, -1), activation=True, act_bits=1, padding_value=0, threshold=0):
        super().__init__(InputConvolutionalParams(
            input_shape, kernel_size, filters, name, padding, kernel_stride, weights_bits, pool_size,
            pool_type, pool_stride, activation, act_bits, padding_value, threshold))

    def _output_dims(self, input_dims):
        return output_shape(self._params)

    def _base_specs(self):
        p = self._params
        return {"weights": self._weight_spec((*p.kernel_size, p.input_shape[2], p.filters), p.weights_bits),
                **self._neuron_specs(p.filters)}

    def potential_bound(self):
        p = self._params
        fan_in = p.kernel_size[0] * p.kernel_size[1] * p.input_shape[2]
        w = max(map(abs, weight_range(p.weights_bits)))
        return w * (2 ** INPUT_BITS - 1) * fan_in * pooled_positions(p, p.input_shape)

    @property
    def macs(self):
        p = self._params
        return conv_positions(p, p.input_shape) * p.kernel_size[0] * p.kernel_size[1] \
            * p.input_shape[2] * p.filters

    def _forward(self, inputs, bands=1, run=None):
        p = self._params
        matrix = self._cached("kernel_matrix", self._kernel_matrix)
        if matrix is None:
            potentials = kernels.conv2d(inputs, self._values["weights"], p.kernel_stride, p.padding,
                                        p.padding_value)
        else:
            potentials = kernels.shared.conv2d_prepared(inputs, matrix, p.kernel_size, p.kernel_stride,
                                                        p.padding, p.padding_value, bands=bands, run=run)
        return self._activate(self._pool(potentials))

    def _buffered_forward(self, input_shape):
        p = self._params
        return buffered_convolution(self, input_shape, p.padding_value, max(2 ** INPUT_BITS - 1, p.padding_value))

    def _kernel_matrix(self):
        """The weights as a float32 (kh·kw·c, filters) matrix when float32 is exact for every uint8 input
        and the padding value (else None: conv2d then picks the dtype from the data)."""
        weights = self._values["weights"]
        kh, kw, c, filters = weights.shape
        if not self._exact_float32(weights, kh * kw * c, max(2 ** INPUT_BITS - 1, self._params.padding_value)):
            return None
        return np.ascontiguousarray(weights.reshape(kh * kw * c, filters), np.float32)

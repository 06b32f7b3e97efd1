"""Pooling on integer potentials: QuantizedMaxPool2D and QuantizedGlobalAveragePooling2D."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..errors import QuantizationConfigError
from .base import check_channels_last, force_float32, register


@register
class QuantizedMaxPool2D(keras.layers.MaxPooling2D):
    """Max pooling of integer potentials (before the activation, as on Akida); exact, any dtype."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(pool_size=pool_size, strides=strides, padding=padding,
                         data_format=data_format, name=name, **force_float32(kwargs))
        check_channels_last(self.name, data_format)

    def call(self, inputs):
        return tf.nn.max_pool2d(inputs, list(self.pool_size), list(self.strides),
                                self.padding.upper())

    def compute_output_spec(self, inputs):
        shape = self.compute_output_shape(inputs.shape)
        return keras.KerasTensor(shape, dtype=inputs.dtype)

    def akida_parameters(self) -> dict:
        """Export ``pool_type`` 'max', ``pool_size``, ``pool_stride`` and Keras ``padding``."""
        return {"layer_type": type(self).__name__, "pool_type": "max",
                "pool_size": tuple(int(v) for v in self.pool_size),
                "pool_stride": tuple(int(v) for v in self.strides), "padding": self.padding}


@register
class QuantizedGlobalAveragePooling2D(keras.layers.GlobalAveragePooling2D):
    """Global average pooling the Akida way: the SUM of the potentials over H·W (float64, exact).

    The following QuantizedReLU / Dequantizer are calibrated in sum units, so the exported threshold
    already includes the H·W factor.
    """

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(data_format=data_format, keepdims=keepdims, **force_float32(kwargs))
        check_channels_last(self.name, data_format)

    def build(self, input_shape):
        if input_shape[1] is None or input_shape[2] is None:
            raise QuantizationConfigError(
                f"Layer '{self.name}': input shape {tuple(input_shape)} has unknown height or "
                "width; the global sum needs a static H·W. Hint: give the model a fixed "
                "input_shape.")
        dims = (input_shape[1], input_shape[2])
        if not all(isinstance(d, (int, np.integer)) and 0 < d <= 2**20 for d in dims):
            raise QuantizationConfigError(
                f"Layer '{self.name}': input height and width {dims} must be integers in "
                "[1, 2**20] (a corrupted build config?).")
        self.sum_size = int(dims[0]) * int(dims[1])
        self.built = True

    def call(self, inputs):
        # A sum of H·W potentials may exceed 2**24: float64 keeps it exact.
        return tf.reduce_sum(tf.cast(inputs, tf.float64), axis=[1, 2], keepdims=self.keepdims)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype="float64")

    def akida_parameters(self) -> dict:
        """Export ``pool_type`` 'global_average' and ``sum_size`` (H·W of its input)."""
        return {"layer_type": type(self).__name__, "pool_type": "global_average",
                "sum_size": self.sum_size}

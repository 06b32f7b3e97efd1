"""The parts of an Akida 2.0 block after its neural layer: MaxPool2D, ReLU, GlobalAveragePooling2D.

They work on the raw integers ``A`` of the block (akida2-layers.md §3: max pool, then the
activation, then the global sum) and the last one of the block applies the output quantizer.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ...errors import QuantizationConfigError
from ..fixed_point import sat
from .base import POST_BITS, Float64Spec, OutputQuantization, as_float64, force_float64, register


@register
class QuantizedMaxPool2D(OutputQuantization, Float64Spec, keras.layers.MaxPooling2D):
    """Max pooling of a block's integers (padded cells are ignored, as on Akida)."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 name=None, *, output_bits=None, **kwargs):
        super().__init__(pool_size=pool_size, strides=strides, padding=padding,
                         data_format=data_format, name=name, **force_float64(kwargs))
        self._init_output(output_bits)

    def build(self, input_shape):
        self._build_output(int(input_shape[-1]))
        self.built = True

    def call(self, inputs):
        pooled = tf.nn.max_pool2d(as_float64(inputs), list(self.pool_size), list(self.strides),
                                  self.padding.upper())
        return self.quantize_output(pooled)

    def get_config(self):
        return {**super().get_config(), **self.output_config()}


@register
class QuantizedReLU(OutputQuantization, Float64Spec, keras.layers.ReLU):
    """ReLU of a block's integers: ``clip(A, 0, ceiling)``, ``ceiling = max_value_int ·
    2**max_value_shift`` (the Akida ``max_value`` / ``max_value_shift``, frozen by quantize);
    unbounded when ``max_value`` is None."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, *, output_bits=None,
                 **kwargs):
        super().__init__(max_value=max_value, negative_slope=negative_slope, threshold=threshold,
                         **force_float64(kwargs))
        if negative_slope != 0.0 or threshold != 0.0:
            raise QuantizationConfigError(
                f"Layer '{self.name}': negative_slope={negative_slope}, threshold={threshold}; "
                "allowed: 0 and 0 (Akida 2.0 ReLU).")
        self._init_output(output_bits)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        if self.max_value is not None:
            self.max_value_int = self.add_weight(name="max_value_int", shape=(channels,),
                                                 initializer="zeros", trainable=False)
            self.max_value_shift = self.add_weight(name="max_value_shift", shape=(channels,),
                                                   initializer="zeros", trainable=False)
        self._build_output(channels)
        self.built = True

    def set_ceiling(self, value, shift) -> None:
        """Freeze the 8-bit unsigned ``max_value`` integer and its shift (per channel)."""
        self.max_value_int.assign(np.broadcast_to(np.asarray(value, np.float64),
                                                  self.max_value_int.shape))
        self.max_value_shift.assign(np.broadcast_to(np.asarray(shift, np.float64),
                                                    self.max_value_shift.shape))

    def call(self, inputs):
        x = as_float64(inputs)
        if self.max_value is None:
            clipped = tf.maximum(x, 0.0)
        else:
            ceiling = sat(self.max_value_int * tf.pow(tf.constant(2.0, tf.float64),
                                                      self.max_value_shift), POST_BITS)
            clipped = tf.minimum(tf.maximum(x, 0.0), ceiling)
        return self.quantize_output(clipped)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), **self.output_config()}


@register
class QuantizedGlobalAveragePooling2D(OutputQuantization, Float64Spec,
                                      keras.layers.GlobalAveragePooling2D):
    """Global average pooling the Akida 2.0 way: the **sum** of the integers over H·W in a 32-bit
    register saturating after every addition, row-major (the 1/(H·W) is part of the output
    scale). After a ReLU the values are non-negative and the running saturation is one final clip;
    otherwise the pixels are added one by one."""

    def __init__(self, data_format=None, keepdims=False, *, output_bits=None,
                 nonnegative_inputs=False, **kwargs):
        super().__init__(data_format=data_format, keepdims=keepdims, **force_float64(kwargs))
        self._init_output(output_bits)
        self.nonnegative_inputs = bool(nonnegative_inputs)

    def build(self, input_shape):
        if input_shape[1] is None or input_shape[2] is None:
            raise QuantizationConfigError(
                f"Layer '{self.name}': input shape {tuple(input_shape)} has unknown height or "
                "width; the global sum needs a static H·W. Hint: give the model a fixed "
                "input_shape.")
        self.sum_size = int(input_shape[1]) * int(input_shape[2])
        self._build_output(int(input_shape[-1]))
        self.built = True

    def call(self, inputs):
        x = as_float64(inputs)
        if self.nonnegative_inputs:
            total = sat(tf.reduce_sum(x, axis=[1, 2]), POST_BITS)
        else:
            flat = tf.reshape(x, [tf.shape(x)[0], self.sum_size, x.shape[-1]])
            total = tf.zeros_like(flat[:, 0])
            for index in range(self.sum_size):
                total = sat(total + flat[:, index], POST_BITS)
        out = self.quantize_output(total)
        return out[:, None, None, :] if self.keepdims else out

    def get_config(self):
        return {**super().get_config(), **self.output_config(),
                "nonnegative_inputs": self.nonnegative_inputs}

"""Pooling on integer potentials: QuantizedMaxPool2D and QuantizedGlobalAveragePooling2D."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..accumulators import POTENTIAL_MAX, saturating_global_sum
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
    """Global average pooling the Akida way: the SUM of the potentials over H·W, in Akida's 20-bit
    signed saturating register, exactly (float64).

    Akida adds the bias-free potentials ``p`` of the H·W positions row by row into a register that
    saturates at ``[−2**19, 2**19 − 1]`` after every addition, then applies the threshold (which
    holds H·W · bias). The quantized neural layer before this one outputs ``q = p + bias_int``, so
    the layer takes its producer's integer bias off, sums in the register and adds
    ``H·W · bias_int`` back: ``sat_sum(q − bias_int) + H·W · bias_int``. When the producer's static
    bound proves no running sum can leave the register, or no running sum does, this is the plain
    sum of ``q``. Gradient: the plain sum's (straight-through). Used on its own (not after a
    quantized neural layer of a model) its input is taken as bias-free potentials.

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

    def neural_producer(self):
        """The quantized neural layer whose output this layer pools in its model, or None."""
        producers = {id(parent.operation): parent.operation for node in self._inbound_nodes
                     for parent in node.parent_nodes}
        if len(producers) != 1:
            return None
        (producer,) = producers.values()
        return producer if hasattr(producer, "integer_bias") else None

    def call(self, inputs):
        # A sum of H·W potentials may exceed 2**24: float64 keeps it exact.
        q = tf.cast(inputs, tf.float64)
        producer = self.neural_producer()
        if producer is None:
            total = saturating_global_sum(q, None)
        elif self.sum_size * producer.product_bound() <= POTENTIAL_MAX:
            total = tf.reduce_sum(q, axis=[1, 2])  # no running sum can leave the register
        else:
            bias = tf.stop_gradient(tf.cast(producer.integer_bias(), tf.float64))
            plain = tf.reduce_sum(q, axis=[1, 2])
            pooled = saturating_global_sum(q - bias, None)
            # Straight through: the gradient of the plain sum of q (bias included via q).
            total = plain + tf.stop_gradient(pooled + float(self.sum_size) * bias - plain)
        return total[:, None, None, :] if self.keepdims else total

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype="float64")

    def akida_parameters(self) -> dict:
        """Export ``pool_type`` 'global_average' and ``sum_size`` (H·W of its input)."""
        return {"layer_type": type(self).__name__, "pool_type": "global_average",
                "sum_size": self.sum_size}

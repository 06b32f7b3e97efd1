"""Shape layers on integer tensors: QuantizedFlatten, QuantizedReshape, QuantizedRescaling."""
from __future__ import annotations

import keras
import tensorflow as tf

from .base import check_channels_last, force_float32, register


@register
class QuantizedFlatten(keras.layers.Flatten):
    """Row-major flatten (h, w, c) of integers, dtype kept (the converter permutes for Akida)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **force_float32(kwargs))
        check_channels_last(self.name, data_format)

    def call(self, inputs):
        return tf.reshape(inputs, [tf.shape(inputs)[0], -1])

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype=inputs.dtype)


@register
class QuantizedReshape(keras.layers.Reshape):
    """Reshape of integers, dtype kept."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(target_shape, **force_float32(kwargs))

    def call(self, inputs):
        return tf.reshape(inputs, [tf.shape(inputs)[0]] + list(self.target_shape))

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype=inputs.dtype)


@register
class QuantizedRescaling(keras.layers.Rescaling):
    """Record of a float model's input Rescaling, folded away: passes integers unchanged.

    ``quantize()`` folds ``scale`` into the next neural layer's ``input_scale`` and ``offset`` into
    its ``padding_value``; this layer keeps the original values for reference (cnn2snn skips it).
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(scale, offset=offset, **force_float32(kwargs))

    def call(self, inputs):
        return tf.identity(inputs)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype=inputs.dtype)

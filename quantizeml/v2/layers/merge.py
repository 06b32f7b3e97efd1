"""Akida 2.0 merges and reshapes on integers: QuantizedAdd, QuantizedConcatenate, QuantizedFlatten,
QuantizedReshape."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ...errors import QuantizationConfigError
from ..fixed_point import round_shift, sat
from .base import Float64Spec, OutputQuantization, as_float64, force_float64, register

#: Akida 2.0 Add buffer bits.
ADD_BUFFER_BITS = 32


@register
class QuantizedAdd(OutputQuantization, Float64Spec, keras.layers.Add):
    """Add of two quantized tensors, the Akida 2.0 Add: ``a' = sat_32(a·2**a_shift)``, same for
    ``b``, ``out = sat_ob(R(sat_32(a' + b'), output_shift))`` — always signed, no scale (both
    inputs are plain fixed point). ``output_bits`` is required: an Add always quantizes."""

    def __init__(self, *, output_bits=8, **kwargs):
        super().__init__(**force_float64(kwargs))
        self._init_output(output_bits)
        if self.output_bits is None:
            raise QuantizationConfigError(f"Layer '{self.name}': output_bits must be set.")

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise QuantizationConfigError(
                f"Layer '{self.name}': {len(input_shape)} inputs; Akida 2.0 Add takes exactly "
                "2. Hint: chain Add layers two by two.")
        channels = int(input_shape[0][-1])
        self.a_shift = self.add_weight(name="a_shift", shape=(channels,), initializer="zeros",
                                       trainable=False)
        self.b_shift = self.add_weight(name="b_shift", shape=(channels,), initializer="zeros",
                                       trainable=False)
        self.output_shift = self.add_weight(name="output_shift", shape=(channels,),
                                            initializer="zeros", trainable=False)
        self.built = True

    @property
    def output_signed(self) -> bool:
        """An Akida 2.0 Add is always signed."""
        return True

    def set_shifts(self, a_shift, b_shift, output_shift) -> None:
        """Freeze the alignment shifts (>= 0) and the output shift, per channel."""
        for variable, value in ((self.a_shift, a_shift), (self.b_shift, b_shift),
                                (self.output_shift, output_shift)):
            variable.assign(np.broadcast_to(np.asarray(value, np.float64), variable.shape))

    def call(self, inputs):
        two = tf.constant(2.0, tf.float64)
        a = sat(as_float64(inputs[0]) * tf.pow(two, self.a_shift), ADD_BUFFER_BITS)
        b = sat(as_float64(inputs[1]) * tf.pow(two, self.b_shift), ADD_BUFFER_BITS)
        total = sat(a + b, ADD_BUFFER_BITS)
        return sat(round_shift(total, self.output_shift), self.output_bits)

    def get_config(self):
        return {**super().get_config(), **self.output_config()}


@register
class QuantizedConcatenate(Float64Spec, keras.layers.Concatenate):
    """Channel concatenation of two quantized tensors (Akida 2.0 Concatenate: values unchanged;
    the per-channel fractional bits are concatenated, the next layer aligns them)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(axis=axis, **force_float64(kwargs))
        if axis not in (-1, 3):
            raise QuantizationConfigError(
                f"Layer '{self.name}': axis={axis}; allowed: -1 (channels), as Akida 2.0.")

    def call(self, inputs):
        return tf.concat([as_float64(x) for x in inputs], axis=-1)


@register
class QuantizedFlatten(Float64Spec, keras.layers.Flatten):
    """Row-major flatten (h, w, c) of integers, as Akida 2.0 Dense1D reads its input."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **force_float64(kwargs))

    def call(self, inputs):
        return tf.reshape(as_float64(inputs), [tf.shape(inputs)[0], -1])


def akida_dims(shape) -> tuple | None:
    """A Keras shape (no batch) as Akida sees it: 3-D (H, W, C), fewer axes padded with leading
    ones ((C,) -> (1, 1, C)); None above three axes."""
    shape = tuple(int(d) for d in shape)
    return (1,) * (3 - len(shape)) + shape if len(shape) <= 3 else None


def mixes_channels(input_shape, output_shape) -> bool:
    """Whether a row-major reshape puts values of different input channels in one output
    channel (then per-channel fractional bits cannot follow: its input is quantized per
    tensor). A flatten never does (every value is its own output channel)."""
    before = tuple(int(d) for d in input_shape)
    after = tuple(int(d) for d in output_shape)
    labels = np.broadcast_to(np.arange(before[-1]), before).reshape(-1, after[-1])
    return bool(np.any(labels != labels[0]))


@register
class QuantizedReshape(Float64Spec, keras.layers.Reshape):
    """Row-major reshape of integers (values and order unchanged; the per-channel fractional bits
    follow the values, see ``quantizeml.v2.freeze``).

    Akida 2.0 has no reshape layer: cnn2snn drops a reshape that ``relabels`` (the Akida view of
    both shapes is the same, e.g. (C,) <-> (1, 1, C)) and merges a flattening one into the Dense
    that reads it (Dense1D flattens row-major itself); it refuses the others.
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(target_shape, **force_float64(kwargs))

    def call(self, inputs):
        return super().call(as_float64(inputs))

    @property
    def relabels(self) -> bool:
        """Whether input and output are the same Akida (H, W, C) tensor: only size-1 axes are
        added or removed and the channels stay last."""
        before = akida_dims(self.input.shape[1:])
        return before is not None and before == akida_dims(self.output.shape[1:])

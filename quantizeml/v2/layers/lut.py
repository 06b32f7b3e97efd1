"""LUT activations of an Akida 2.0 block: QuantizedActivation (gelu, swish, hard_silu,
leaky_relu) and QuantizedLeakyReLU (also what a PReLU with one shared alpha becomes).

They work on the raw integers ``A`` of the block (after the neural layer, or its max pool) as
Akida 2.0's POST step 4 does with ``activation=LUT`` (akida2-layers.md §3):

    v   = R(sat_32(A · activation_scale), activation_shift)      11-bit per-tensor index
    out = lut_values[clip(v, −1024, 1023) + 1024]

and apply the block's output quantizer when they end it. The activation is evaluated *through the
table*, so the twin gives the runtime's integers; for training, the gradient is the float
activation's slope at the unrounded index value ``A·S·2**shift·2**-f`` (zero where the index
clips) — the table itself stays frozen.
``quantize`` freezes the variables (``quantizeml.v2.lut`` explains the table and its scale).
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ...errors import QuantizationConfigError
from ..fixed_point import round_shift, sat
from ..lut import INDICES, float_activation
from .base import POST_BITS, Float64Spec, OutputQuantization, as_float64, force_float64, register


class LutActivation(OutputQuantization, Float64Spec):
    """Mixin: the frozen LUT variables and the table lookup of a block's integers."""

    def _build_lut(self, channels: int):
        self.activation_scale = self.add_weight(name="activation_scale", shape=(channels,),
                                                initializer="ones", trainable=False)
        self.activation_shift = self.add_weight(name="activation_shift", shape=(channels,),
                                                initializer="zeros", trainable=False)
        self.lut_values = self.add_weight(name="lut_values", shape=(len(INDICES),),
                                          initializer=keras.initializers.Constant(INDICES),
                                          trainable=False)
        # the fixed point of the index and the value of one entry: the gradient's units
        self.input_frac = self.add_weight(name="input_frac", shape=(), initializer="zeros",
                                          trainable=False)
        self.lut_scale = self.add_weight(name="lut_scale", shape=(), initializer="ones",
                                         trainable=False)
        self._build_output(channels)

    def build(self, input_shape):
        self._build_lut(int(input_shape[-1]))
        self.built = True

    def float_function(self, x):
        """The float activation the table samples."""
        raise NotImplementedError

    def set_lut(self, scale, shift, input_frac, table, lut_scale) -> None:
        """Freeze the per-channel 8-bit ``scale`` and ``shift`` of the 11-bit index, its
        fractional bits, the 2048 integer entries and the float value of one entry."""
        self.activation_scale.assign(np.broadcast_to(np.asarray(scale, np.float64),
                                                     self.activation_scale.shape))
        self.activation_shift.assign(np.broadcast_to(np.asarray(shift, np.float64),
                                                     self.activation_shift.shape))
        self.input_frac.assign(float(input_frac))
        self.lut_values.assign(np.asarray(table, np.float64))
        self.lut_scale.assign(float(lut_scale))

    def call(self, inputs):
        x = as_float64(inputs)
        scale, shift, table = (tf.convert_to_tensor(v) for v in (
            self.activation_scale, self.activation_shift, self.lut_values))
        unit = scale * tf.pow(tf.constant(2.0, tf.float64), shift - self.input_frac)
        low, high = float(INDICES[0]), float(INDICES[-1])
        lut_scale = tf.convert_to_tensor(self.lut_scale)

        @tf.custom_gradient
        def lookup(values):
            index = round_shift(sat(values * scale, POST_BITS), shift)
            inside = tf.logical_and(index >= low, index <= high)
            entries = tf.gather(table, tf.cast(tf.clip_by_value(index, low, high) - low,
                                               tf.int32))

            def grad(upstream):
                with tf.GradientTape() as tape:
                    argument = values * unit
                    tape.watch(argument)
                    activated = self.float_function(argument)
                slope = tape.gradient(activated, argument)
                return upstream * tf.where(inside, slope * unit / lut_scale, 0.0)
            return entries, grad

        return self.quantize_output(lookup(x))

    def compute_output_shape(self, input_shape):
        return input_shape


def _lut_function(layer_name, activation):
    try:
        return float_activation(activation)
    except ValueError as err:
        raise QuantizationConfigError(f"Layer '{layer_name}': {err}") from err


@register
class QuantizedActivation(LutActivation, keras.layers.Activation):
    """A LUT ``Activation`` of an Akida 2.0 block (gelu, swish/silu, hard_silu/hard_swish,
    leaky_relu with Keras' slope 0.2). Quantization args: ``output_bits`` (None: the block goes
    on, e.g. into a GlobalAveragePooling2D)."""

    def __init__(self, activation, *, output_bits=None, **kwargs):
        if not isinstance(activation, str):
            activation = keras.activations.serialize(keras.activations.get(activation))
        self._function = _lut_function(kwargs.get("name"), activation)
        super().__init__(activation, **force_float64(kwargs))
        self.activation_name = activation
        self._init_output(output_bits)

    def float_function(self, x):
        return self._function(x)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation_name,
                **self.output_config()}


@register
class QuantizedLeakyReLU(LutActivation, keras.layers.LeakyReLU):
    """A LeakyReLU of an Akida 2.0 block, applied through a LUT (one slope for all channels).
    Quantization args: ``output_bits`` (None: the block goes on)."""

    def __init__(self, negative_slope=0.3, *, output_bits=None, **kwargs):
        super().__init__(negative_slope=negative_slope, **force_float64(kwargs))
        self._function = float_activation("leaky_relu", negative_slope)
        self._init_output(output_bits)

    def float_function(self, x):
        return self._function(x)

    def get_config(self):
        return {**super().get_config(), **self.output_config()}


LUT_LAYERS = (QuantizedActivation, QuantizedLeakyReLU)

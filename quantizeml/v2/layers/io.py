"""Model boundaries of the Akida 2.0 scheme: InputQuantizer (float -> integers) and Dequantizer."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ...errors import QuantizationConfigError
from ..fixed_point import round_half_away, sat, usat
from .base import Float64Spec, force_float64, register


@register
class InputQuantizer(Float64Spec, keras.layers.Layer):
    """Float inputs to ``bits``-bit integers as the Akida 2.0 Quantizer computes them:
    ``q = round_half_away(float32(x · 2**f)) + zero_point``, saturated (signed, or unsigned
    ``[0, 2**bits − 1]``). ``f`` and the zero point (unsigned only) are frozen per channel (or
    shared) by calibration; inputs below the calibrated range clip as on the chip. ``bits`` 16
    (``input_dtype`` int16/uint16) quantizes in Keras; ``cnn2snn.convert`` refuses it (the Akida
    2.0 Quantizer outputs 4 or 8 bits)."""

    def __init__(self, bits=8, signed=True, **kwargs):
        super().__init__(**force_float64(kwargs))
        if isinstance(bits, bool) or bits not in (4, 8, 16):
            raise QuantizationConfigError(
                f"Layer '{self.name}': bits={bits!r}; allowed: 4, 8 (the Akida 2.0 Quantizer) "
                "or 16 (Keras only).")
        self.bits, self.signed = int(bits), bool(signed)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.frac_bits = self.add_weight(name="frac_bits", shape=(channels,),
                                         initializer="zeros", trainable=False)
        self.zero_point = self.add_weight(name="zero_point", shape=(channels,),
                                          initializer="zeros", trainable=False)
        self.built = True

    def set_quantizer(self, frac_bits, zero_point=0) -> None:
        """Freeze the fractional bits and the zero point (unsigned only), per channel.

        Raises:
            QuantizationConfigError: a zero point on a signed quantizer, or one outside
                ``[0, 2**bits − 1]``.
        """
        zero = np.asarray(zero_point, np.float64)
        if np.any(zero != 0) and self.signed or np.any(zero < 0) or \
                np.any(zero > 2**self.bits - 1) or np.any(zero != np.round(zero)):
            raise QuantizationConfigError(
                f"Layer '{self.name}': zero_point={zero.tolist()}; allowed: integers 0..."
                f"{2**self.bits - 1} on an unsigned quantizer, 0 on a signed one.")
        self.frac_bits.assign(np.broadcast_to(np.asarray(frac_bits, np.float64),
                                              self.frac_bits.shape))
        self.zero_point.assign(np.broadcast_to(np.asarray(zero_point, np.float64),
                                               self.zero_point.shape))

    def call(self, inputs):
        scales = tf.cast(tf.pow(tf.constant(2.0, tf.float64), self.frac_bits), tf.float32)
        product = tf.cast(tf.cast(inputs, tf.float32) * scales, tf.float64)
        q = round_half_away(product) + self.zero_point
        return sat(q, self.bits) if self.signed else usat(q, self.bits)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "bits": self.bits, "signed": self.signed}


@register
class Dequantizer(keras.layers.Layer):
    """Last layer: integers to float32, ``float32(x) · scales`` per channel (Akida 2.0
    Dequantizer ``scales = s / 2**f``)."""

    def __init__(self, **kwargs):
        kwargs["dtype"] = "float32"
        kwargs["autocast"] = False
        super().__init__(**kwargs)

    def build(self, input_shape):
        self.scales = self.add_weight(name="scales", shape=(int(input_shape[-1]),),
                                      initializer="ones", trainable=False)
        self.built = True

    def set_scales(self, scales) -> None:
        """Freeze the float32 scale per channel."""
        self.scales.assign(np.broadcast_to(np.asarray(scales, np.float32), self.scales.shape))

    def call(self, inputs):
        return tf.cast(inputs, tf.float32) * self.scales

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype="float32")

"""Model boundary layers: InputQuantizer (float → unsigned integers) and Dequantizer."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..errors import QuantizationConfigError
from ..quantizers import InputDataQuantizer
from .base import force_float32, register


@register
class InputQuantizer(keras.layers.Layer):
    """First layer of a quantized model: ``clip(round(x / scale) + zero_point, 0, 2**bits - 1)``.

    The result are the unsigned integers the Akida model receives (``bits`` 8: uint8 image for an
    input convolution; 1, 2 or 4: InputData). With ``scale=1, zero_point=0`` it is the identity on
    integer inputs. ``numpy(x)`` is its numpy twin (returns uint8).
    """

    def __init__(self, bits=8, scale=1.0, zero_point=0, **kwargs):
        super().__init__(**force_float32(kwargs))
        try:
            self.quantizer = InputDataQuantizer(int(bits), float(scale), int(zero_point))
        except (TypeError, ValueError) as err:
            raise QuantizationConfigError(f"Layer '{self.name}': {err}") from err
        if not 0 <= self.quantizer.zero_point < 2**self.quantizer.bits:
            raise QuantizationConfigError(
                f"Layer '{self.name}': zero_point={zero_point} must be in "
                f"[0, {2**self.quantizer.bits - 1}].")

    @property
    def bits(self) -> int:
        """Bits of the integers produced."""
        return self.quantizer.bits

    def call(self, inputs):
        return self.quantizer(inputs)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype="float32")

    def numpy(self, x) -> np.ndarray:
        """Numpy twin of the layer: the uint8 integers for the Akida model."""
        return self.quantizer.numpy(x)

    def akida_parameters(self) -> dict:
        """Export ``input_bits``, ``scale``, ``zero_point`` and ``dtype`` ('uint8')."""
        return {"layer_type": type(self).__name__, "input_bits": self.bits,
                "scale": self.quantizer.scale, "zero_point": self.quantizer.zero_point,
                "dtype": "uint8"}

    def get_config(self):
        return {**super().get_config(), "bits": self.bits, "scale": self.quantizer.scale,
                "zero_point": self.quantizer.zero_point}


@register
class Dequantizer(keras.layers.Layer):
    """Last layer of a quantized model: ``float32(x) / divisor`` per channel.

    After a block without activation ``divisor`` is that block's Akida ``act_step`` (so a
    multiple of 1/16, as ``quantize`` sets it; the export refuses other values) and the output
    equals Akida ``predict`` bit for bit; after an activation it is ``1 / output_scale`` (levels to
    real values). The input (integers) is the Akida ``forward`` output.
    """

    def __init__(self, **kwargs):
        super().__init__(**force_float32(kwargs))

    def build(self, input_shape):
        self.divisor = self.add_weight(name="divisor", shape=(int(input_shape[-1]),),
                                       initializer="ones", trainable=False)
        self.built = True

    def set_divisor(self, divisor) -> None:
        """Freeze the per-channel divisor (float32, > 0)."""
        divisor = np.broadcast_to(np.asarray(divisor, np.float32), self.divisor.shape)
        if not np.all(np.isfinite(divisor)) or np.any(divisor <= 0):
            raise QuantizationConfigError(
                f"Layer '{self.name}': divisor must be finite and > 0; got {divisor}.")
        self.divisor.assign(divisor)

    def call(self, inputs):
        return tf.cast(inputs, tf.float32) / self.divisor

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype="float32")

    def akida_parameters(self) -> dict:
        """Export ``divisor`` (float32 per channel)."""
        return {"layer_type": type(self).__name__,
                "divisor": np.asarray(self.divisor.numpy(), np.float32)}

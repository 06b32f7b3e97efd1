"""What the Akida 2.0 quantized layers share: registration, float64 policy, the block-end quantizer.

A block is the run of Keras layers that becomes one Akida 2.0 layer (neural [> MaxPool2D]
[> ReLU] [> GlobalAveragePooling2D], or an Add). Its last layer carries the *output quantizer*
(``output_bits`` set): ``out = OUT_ob(R(sat_pb(A·S), shift))`` with the 8-bit scale ``S`` and the
shift frozen per channel, the Akida ``output_scales`` / ``output_shift``. Inner layers pass their
raw integers ``A`` on, as the Akida POST pipeline does.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ...errors import QuantizationConfigError
from ..fixed_point import out_clip, round_shift, sat

PACKAGE = "quantizeml_v2"
#: Akida 2.0 post-op buffer: products and sums after the bias saturate to 32 bits.
POST_BITS = 32


def register(cls):
    """Register for Keras serialization as ``quantizeml_v2>ClassName`` (apart from Akida 1.0's)."""
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


def force_float64(kwargs: dict) -> dict:
    """Pin a layer to float64 (exact integers below 2**53) without autocasting."""
    kwargs["dtype"] = "float64"
    kwargs["autocast"] = False
    return kwargs


def check_optional_bits(layer_name, name, value, low=1, high=32):
    """None or an int in [low, high]."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or \
            not low <= int(value) <= high:
        raise QuantizationConfigError(
            f"Layer '{layer_name}': {name}={value!r}; allowed: None or an integer in "
            f"[{low}, {high}].")
    return int(value)


class OutputQuantization:
    """Mixin: the optional block-end output quantizer (``output_bits``, ``output_scale`` S,
    ``output_shift``), frozen per channel by ``set_output_quantizer``."""

    def _init_output(self, output_bits):
        self.output_bits = check_optional_bits(self.name, "output_bits", output_bits)

    def _build_output(self, channels: int):
        if self.output_bits is None:
            return
        self.output_scale = self.add_weight(name="output_scale", shape=(channels,),
                                            initializer="ones", trainable=False)
        self.output_shift = self.add_weight(name="output_shift", shape=(channels,),
                                            initializer="zeros", trainable=False)

    def set_output_quantizer(self, scale, shift) -> None:
        """Freeze the per-channel integer scale S (0..255) and shift (|shift| <= 31)."""
        self.output_scale.assign(np.broadcast_to(np.asarray(scale, np.float64),
                                                 self.output_scale.shape))
        self.output_shift.assign(np.broadcast_to(np.asarray(shift, np.float64),
                                                 self.output_shift.shape))

    @property
    def output_signed(self) -> bool:
        """Akida 2.0 outputs of at most 4 bits are unsigned, wider ones signed."""
        return self.output_bits is not None and self.output_bits > 4

    def quantize_output(self, values):
        """``OUT_ob(R(sat32(A·S), shift))`` when this layer ends a block, else ``values``."""
        if self.output_bits is None:
            return values
        scaled = sat(values * self.output_scale, POST_BITS)
        return out_clip(round_shift(scaled, self.output_shift), self.output_bits)

    def output_config(self) -> dict:
        return {"output_bits": self.output_bits}


class Float64Spec:
    """Mixin: the Keras symbolic output keeps the float64 dtype of the integer dataflow."""

    def compute_output_spec(self, *args, **kwargs):
        shape = self.compute_output_shape(*[tree_shape(a) for a in args])
        return keras.KerasTensor(shape, dtype="float64")


def tree_shape(value):
    """Shapes of a KerasTensor or of a list of them."""
    if isinstance(value, (list, tuple)):
        return [v.shape for v in value]
    return value.shape


def as_float64(x):
    """Cast to float64 (exact for the integers exchanged between layers)."""
    return tf.cast(x, tf.float64)

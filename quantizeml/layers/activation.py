"""QuantizedReLU: the Akida 1.0 threshold activation on integer potentials."""
from __future__ import annotations

import keras
import numpy as np

from ..errors import QuantizationConfigError
from ..params import ALLOWED_ACTIVATION_BITS
from ..quantizers import (ACT_STEP_UNIT, ActivationQuantizer, floor_act_step_np,
                          round_act_step)
from .base import check_bits, force_float32, register

#: Smallest act_step Akida 1.0 accepts (one unit of its 4 fractional bits).
MIN_ACT_STEP = ACT_STEP_UNIT


@register
class QuantizedReLU(keras.layers.ReLU):
    """ReLU bounded and quantized to ``activation_bits`` levels, computed the Akida 1.0 way.

    Input: integer potentials ``q`` of the preceding neural layer (after its integer bias, max pool
    or global sum). Output: levels ``sum_{n<L} [q > threshold + floor(n · act_step · 2**(4-b))]``,
    ``L = 2**b - 1``, as float32 integers. Its real value is ``level · output_scale``.

    Non-trainable variables (per channel, set by ``set_activation_range``): ``act_step`` (float32,
    a multiple of 1/16: Akida's act_step register has 4 fractional bits and computes with
    ``floor(act_step · 16) / 16``, which this layer uses too), ``step_threshold`` (integers:
    round(step / 2) so the levels round to nearest), and ``output_scale`` (float32, real value of
    one level). The effective bound is ``output_scale · (2**b − 1)``; ``max_value`` keeps the float
    model's bound (a calibration cap).

    Quantization args: ``activation_bits`` (1, 2, 4), ``per_tensor_activations`` (calibration of
    one range per layer or per channel).
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, *, activation_bits=4,
                 per_tensor_activations=True, **kwargs):
        super().__init__(max_value=max_value, negative_slope=negative_slope, threshold=threshold,
                         **force_float32(kwargs))
        if negative_slope != 0.0 or threshold != 0.0:
            raise QuantizationConfigError(
                f"Layer '{self.name}': negative_slope={negative_slope}, threshold={threshold}; "
                "Akida 1.0 activations need negative_slope=0 and threshold=0.")
        self.activation_bits = check_bits(self.name, "activation_bits", activation_bits,
                                          ALLOWED_ACTIVATION_BITS)
        self.per_tensor_activations = bool(per_tensor_activations)
        self.quantizer = ActivationQuantizer(self.activation_bits, self.per_tensor_activations)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.act_step = self.add_weight(name="act_step", shape=(channels,),
                                        initializer="ones", trainable=False)
        self.step_threshold = self.add_weight(name="step_threshold", shape=(channels,),
                                              initializer="zeros", trainable=False)
        self.output_scale = self.add_weight(name="output_scale", shape=(channels,),
                                            initializer="ones", trainable=False)
        self.built = True

    def set_activation_range(self, max_value, potential_scale, sum_size: int = 1):
        """Freeze the activation from its real range.

        Args:
            max_value: real value of the highest level (scalar or per channel), > 0.
            potential_scale: real value of one unit of the input potential, per channel.
            sum_size: H·W when the input is a global sum (global average pooling), else 1.
        Returns:
            The per-channel output scale actually used: act_step is rounded to the nearest
            multiple of 1/16 (at least 1/16), and the output scale follows it. The calibrated
            act_step is kept in ``calibrated_act_step`` (float64, not saved) for the warnings of
            ``quantizeml.registers``.
        """
        levels = 2**self.activation_bits - 1
        shift = 2.0 ** (4 - self.activation_bits)
        max_value = np.broadcast_to(np.asarray(max_value, np.float64), self.act_step.shape)
        output_scale = max_value / levels
        step = output_scale * sum_size / np.asarray(potential_scale, np.float64)
        self.calibrated_act_step = step / shift
        act_step = round_act_step(self.calibrated_act_step)
        step = act_step.astype(np.float64) * shift
        self.act_step.assign(act_step)
        self.step_threshold.assign(np.round(step / 2.0).astype(np.float32))
        output_scale = (step * np.asarray(potential_scale, np.float64) / sum_size)
        self.output_scale.assign(output_scale.astype(np.float32))
        return self.output_scale.numpy()

    def call(self, inputs):
        return self.quantizer(inputs, self.step_threshold, self.act_step)

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype="float32")

    def akida_parameters(self) -> dict:
        """Export ``act_bits``, ``act_step`` (float32, the multiple of 1/16 ``call`` computes with)
        and the activation part of the threshold."""
        return {
            "layer_type": type(self).__name__,
            "act_bits": self.activation_bits,
            "act_step": floor_act_step_np(self.act_step.numpy()).astype(np.float32),
            "threshold": np.asarray(self.step_threshold.numpy()).astype(np.int32),
            "output_scale": np.asarray(self.output_scale.numpy(), np.float32),
        }

    def get_config(self):
        return {**super().get_config(), "activation_bits": self.activation_bits,
                "per_tensor_activations": self.per_tensor_activations}

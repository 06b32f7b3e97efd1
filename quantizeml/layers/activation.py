"""QuantizedReLU: the Akida 1.0 threshold activation on integer potentials."""
from __future__ import annotations

import keras
import numpy as np

from ..errors import QuantizationConfigError
from ..params import ALLOWED_ACTIVATION_BITS
from ..quantizers import ActivationQuantizer
from .base import check_bits, force_float32, register

#: Smallest act_step Akida 1.0 accepts.
MIN_ACT_STEP = 1.0 / 16.0
#: Significant bits kept in act_step: with at most 20 (of float32's 24) the runtime evaluates the
#: activation exactly in float32 (akida_core.kernels.FLOAT32_STEP_BITS; a test keeps them equal).
ACT_STEP_BITS = 20


def round_significant(values, bits: int) -> np.ndarray:
    """Round positive values to ``bits`` significant bits (float32, exact)."""
    mantissa, exponent = np.frexp(np.asarray(values, np.float64))
    return np.ldexp(np.round(mantissa * 2.0**bits) / 2.0**bits, exponent).astype(np.float32)


@register
class QuantizedReLU(keras.layers.ReLU):
    """ReLU bounded and quantized to ``activation_bits`` levels, computed the Akida 1.0 way.

    Input: integer potentials ``q`` of the preceding neural layer (after its integer bias, max pool
    or global sum). Output: levels ``sum_{n<L} [q > threshold + floor(n · act_step · 2**(4-b))]``,
    ``L = 2**b - 1``, as float32 integers. Its real value is ``level · output_scale``.

    Non-trainable variables (per channel, set by ``set_activation_range``): ``act_step`` (float32),
    ``step_threshold`` (integers: round(step / 2) so the levels round to nearest), and
    ``output_scale`` (float32, real value of one level). The effective bound is
    ``output_scale · (2**b − 1)``; ``max_value`` keeps the float model's bound (a calibration cap).

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
            The per-channel output scale actually used (act_step is raised to 1/16 if needed).
        """
        levels = 2**self.activation_bits - 1
        shift = 2.0 ** (4 - self.activation_bits)
        max_value = np.broadcast_to(np.asarray(max_value, np.float64), self.act_step.shape)
        output_scale = max_value / levels
        step = output_scale * sum_size / np.asarray(potential_scale, np.float64)
        act_step = round_significant(np.maximum(step / shift, MIN_ACT_STEP), ACT_STEP_BITS)
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
        """Export ``act_bits``, ``act_step`` (float32) and the activation part of the threshold."""
        return {
            "layer_type": type(self).__name__,
            "act_bits": self.activation_bits,
            "act_step": np.asarray(self.act_step.numpy(), np.float32),
            "threshold": np.asarray(self.step_threshold.numpy()).astype(np.int32),
            "output_scale": np.asarray(self.output_scale.numpy(), np.float32),
        }

    def get_config(self):
        return {**super().get_config(), "activation_bits": self.activation_bits,
                "per_tensor_activations": self.per_tensor_activations}

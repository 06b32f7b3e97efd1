"""NeuralQuantization: the mixin shared by the quantized neural layers (settings, frozen scales,
integer weights and bias, static bound, export)."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..errors import QuantizationConfigError
from ..params import ALLOWED_ACTIVATION_BITS, ALLOWED_WEIGHT_BITS
from ..quantizers import FLOAT32_EXACT_BOUND, WeightQuantizer, ste_round_clip, weight_range
from .base import check_bits, check_channels_last

INPUT_LAYER_BITS = 8
ALLOWED_INPUT_BITS = ALLOWED_ACTIVATION_BITS


def same_pads(size, kernel: int, stride: int):
    """TF SAME padding [before, after] of one spatial axis (dynamic size)."""
    out = (size + stride - 1) // stride
    total = tf.maximum((out - 1) * stride + kernel - size, 0)
    return [total // 2, total - total // 2]


class NeuralQuantization:
    """Mixin of the quantized neural layers: settings, frozen scales, integer weights and bias."""

    def _init_quantization(self, weight_bits, input_bits, padding_value, per_tensor_weights,
                           input_bits_allowed=ALLOWED_INPUT_BITS):
        name = self.name
        self.weight_bits = check_bits(name, "weight_bits", weight_bits, ALLOWED_WEIGHT_BITS)
        self.input_bits = check_bits(name, "input_bits", input_bits, input_bits_allowed)
        if isinstance(padding_value, bool) or not isinstance(padding_value, (int, np.integer)) \
                or not 0 <= int(padding_value) < 2**self.input_bits:
            raise QuantizationConfigError(
                f"Layer '{name}': padding_value={padding_value!r} must be an integer in "
                f"[0, {2**self.input_bits - 1}] (the input integer standing for a real 0)."
            )
        self.padding_value = int(padding_value)
        self.per_tensor_weights = bool(per_tensor_weights)
        self.weight_quantizer = WeightQuantizer(self.weight_bits, self.per_tensor_weights)
        if getattr(self, "activation", None) not in (None, keras.activations.linear):
            raise QuantizationConfigError(
                f"Layer '{name}': a fused activation is not allowed in a quantized layer; "
                "put a QuantizedReLU after it."
            )

    def _quantization_config(self) -> dict:
        return {"weight_bits": self.weight_bits, "input_bits": self.input_bits,
                "padding_value": self.padding_value,
                "per_tensor_weights": self.per_tensor_weights}

    def _check_spatial(self):
        check_channels_last(self.name, self.data_format)
        if tuple(self.dilation_rate) != (1, 1):
            raise QuantizationConfigError(
                f"Layer '{self.name}': dilation_rate={tuple(self.dilation_rate)} is not supported "
                "on Akida 1.0; allowed: (1, 1)."
            )

    def _add_scales(self, in_channels: int, out_channels: int, names=("input_scale",
                                                                      "weight_scale")):
        self.input_scale = self.add_weight(name=names[0], shape=(in_channels,),
                                           initializer="ones", trainable=False)
        self.weight_scale = self.add_weight(name=names[1], shape=(out_channels,),
                                            initializer="ones", trainable=False)

    @property
    def fan_in(self) -> int:
        """Number of products summed into one potential."""
        return int(np.prod(self.kernel_shape_for_bound()))

    def max_weight(self) -> int:
        """Largest |integer weight| of the product chain (separable: product of both)."""
        return max(abs(v) for v in weight_range(self.weight_bits))

    def product_bound(self) -> int:
        """Static bound of the bias-free potential |p| = |Σ w·x|: max|w| · max|x| · fan_in."""
        return self.max_weight() * (2**self.input_bits - 1) * self.fan_in

    def potential_bound(self) -> int:
        """Static bound of |p + bias_int|: 3 · max|w| · max|x| · fan_in (bias clipped to 2/3)."""
        return 3 * self.product_bound()

    def compute_dtype_for_bound(self):
        """float32 when every integer of the layer is exact in float32, else float64."""
        return tf.float32 if self.potential_bound() <= FLOAT32_EXACT_BOUND else tf.float64

    def _integer_bias(self, weight_sum):
        """Integer bias ``clip(round(b / weight_scale)) - padding_value · Σw`` (STE gradient)."""
        single = self.max_weight() * (2**self.input_bits - 1) * self.fan_in
        bias = ste_round_clip(self.bias / self.weight_scale, -single, single) if self.use_bias \
            else tf.zeros_like(self.weight_scale)
        return bias - float(self.padding_value) * weight_sum

    def set_scales(self, input_scale, weight_scale=None) -> None:
        """Freeze ``input_scale`` and (by default computed from the kernel) ``weight_scale``."""
        self.input_scale.assign(np.broadcast_to(np.asarray(input_scale, np.float32),
                                                self.input_scale.shape))
        if weight_scale is None:
            weight_scale = self.weight_quantizer.scale(self.effective_kernel().numpy())
        self.weight_scale.assign(np.asarray(weight_scale, np.float32))

    def akida_parameters(self) -> dict:
        """Export the integers of this layer (the same tensors ``call`` uses). See the contract."""
        integer = self.integer_weights()
        weights = [np.asarray(w.numpy()).astype(np.int8) for w in integer]
        bias = self.integer_bias(integer)  # from the integer weights above, not computed again
        params = {
            "layer_type": type(self).__name__,
            "weights": weights[0],
            "weight_bits": self.weight_bits,
            "bias": np.asarray(bias.numpy()).astype(np.int32),
            "input_bits": self.input_bits,
            "padding_value": self.padding_value,
            "is_input_layer": self.input_bits == INPUT_LAYER_BITS,
            "weight_scale": np.asarray(self.weight_scale.numpy(), np.float32),
            "potential_bound": self.potential_bound(),
        }
        if len(weights) == 2:
            params["weights_pw"] = weights[1]
        if hasattr(self, "strides"):
            params.update(kernel_size=tuple(int(v) for v in self.kernel_size),
                          strides=tuple(int(v) for v in self.strides), padding=self.padding)
        return params

    def integer_bias(self, integer_weights=None):
        """Integer bias per output channel (float tensor holding integers); `integer_weights`: this
        layer's `integer_weights()` when the caller already has them."""
        weights = self.integer_weights() if integer_weights is None else integer_weights
        return self._integer_bias(self._all_pv_potential(weights))

    def effective_kernel(self):
        """Float kernel with the input scale folded in (what the weight scale is computed on)."""
        return self.kernel * self.input_scale[:, None]

    # Keras' Conv/Dense store only kernel and bias; the frozen scales must be saved too.
    def save_own_variables(self, store):
        """Save every variable (trainable then non-trainable), scales included."""
        keras.layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store):
        """Load every variable saved by ``save_own_variables``."""
        keras.layers.Layer.load_own_variables(self, store)

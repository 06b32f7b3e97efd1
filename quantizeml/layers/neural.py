"""Quantized neural layers: QuantizedConv2D, QuantizedSeparableConv2D, QuantizedDepthwiseConv2D,
QuantizedDense.

Each keeps its Keras parent's float ``kernel``/``bias`` (trainable, straight-through gradients) and
adds two frozen, non-trainable vectors set by ``quantize()``: ``input_scale`` (real value of one
input integer, per input channel) and ``weight_scale`` (per output channel). The layer outputs the
integer potential ``p + bias_int`` (exact integers in a float tensor) whose real value is
``(p + bias_int) * weight_scale``; see docs/quantization.md.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..accumulators import saturate_potentials
from ..errors import QuantizationConfigError
from .base import force_float32, refuse_float_features, register
from .neural_base import ALLOWED_INPUT_BITS, INPUT_LAYER_BITS, NeuralQuantization, same_pads


@register
class QuantizedConv2D(NeuralQuantization, keras.layers.Conv2D):
    """Conv2D on integers: ``p = conv(x, w_int) + bias_int``.

    Quantization args: ``weight_bits`` (1, 2, 4, 8), ``input_bits`` (bits of the input integers:
    8 = uint8 image, i.e. the Akida InputConvolutional; else 1, 2, 4), ``padding_value`` (input
    integer for a real 0: an input convolution pads with it, other layers fold it into the bias),
    ``per_tensor_weights``.
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, *, weight_bits=4, input_bits=4,
                 padding_value=0, per_tensor_weights=False, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding,
                         data_format=data_format, dilation_rate=dilation_rate, groups=groups,
                         activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer,
                         kernel_constraint=kernel_constraint, bias_constraint=bias_constraint,
                         **force_float32(kwargs))
        self._init_quantization(weight_bits, input_bits, padding_value, per_tensor_weights,
                                ALLOWED_INPUT_BITS + (INPUT_LAYER_BITS,))
        self._check_spatial()
        if groups != 1:
            raise QuantizationConfigError(
                f"Layer '{self.name}': groups={groups} is not supported; allowed: 1.")

    def build(self, input_shape):
        super().build(input_shape)
        self._add_scales(int(input_shape[-1]), self.filters)

    def kernel_shape_for_bound(self):
        return self.kernel.shape[:-1]

    def integer_weights(self):
        """Integer kernel (kh, kw, in, filters), Keras layout (cross-correlation, no flip)."""
        return [self.weight_quantizer(self.effective_kernel(), self.weight_scale)]

    def _all_pv_potential(self, weights):
        return tf.reduce_sum(weights[0], axis=[0, 1, 2])

    def call(self, inputs):
        dtype = self.compute_dtype_for_bound()
        (w_int,) = self.integer_weights()
        x = tf.cast(inputs, dtype)
        padding = self.padding.upper()
        if self.padding == "same" and self.input_bits == INPUT_LAYER_BITS \
                and self.padding_value != 0:
            # Akida's InputConvolutional pads with padding_value, not 0.
            shape = tf.shape(x)
            pads = [[0, 0]]
            for axis in (0, 1):
                pads.append(same_pads(shape[axis + 1], self.kernel_size[axis],
                                       self.strides[axis]))
            x = tf.pad(x, pads + [[0, 0]], constant_values=float(self.padding_value))
            padding = "VALID"
        p = tf.nn.conv2d(x, tf.cast(w_int, dtype), list(self.strides), padding)
        return p + tf.cast(self._integer_bias(self._all_pv_potential([w_int])), dtype)

    def get_config(self):
        return {**super().get_config(), **self._quantization_config()}


@register
class QuantizedSeparableConv2D(NeuralQuantization, keras.layers.SeparableConv2D):
    """SeparableConv2D on integers: depthwise then pointwise, one potential, no rounding between.

    The depthwise kernel is quantized per channel; its scale is folded into the pointwise kernel,
    which is quantized per output channel (``weight_scale``). Same quantization args as
    QuantizedConv2D (``input_bits`` 1, 2 or 4).
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, pointwise_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, depthwise_constraint=None,
                 pointwise_constraint=None, bias_constraint=None, *, weight_bits=4, input_bits=4,
                 padding_value=0, per_tensor_weights=False, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding,
                         data_format=data_format, dilation_rate=dilation_rate,
                         depth_multiplier=depth_multiplier, activation=activation,
                         use_bias=use_bias, depthwise_initializer=depthwise_initializer,
                         pointwise_initializer=pointwise_initializer,
                         bias_initializer=bias_initializer,
                         depthwise_regularizer=depthwise_regularizer,
                         pointwise_regularizer=pointwise_regularizer,
                         bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer,
                         depthwise_constraint=depthwise_constraint,
                         pointwise_constraint=pointwise_constraint,
                         bias_constraint=bias_constraint, **force_float32(kwargs))
        self._init_quantization(weight_bits, input_bits, padding_value, per_tensor_weights)
        self._check_spatial()
        if depth_multiplier != 1:
            raise QuantizationConfigError(
                f"Layer '{self.name}': depth_multiplier={depth_multiplier} is not supported; "
                "allowed: 1.")
        if self.weight_bits in (1, 8):
            raise QuantizationConfigError(
                f"Layer '{self.name}': weight_bits={self.weight_bits} is not supported by "
                "SeparableConvolutional; allowed: 2, 4.")

    def build(self, input_shape):
        super().build(input_shape)
        channels = int(input_shape[-1])
        self._add_scales(channels, self.filters)
        self.depthwise_scale = self.add_weight(name="depthwise_scale", shape=(channels,),
                                               initializer="ones", trainable=False)

    def kernel_shape_for_bound(self):
        return self.depthwise_kernel.shape[:-1]

    def max_weight(self) -> int:
        return super().max_weight() ** 2

    def effective_kernel(self):
        """Pointwise kernel with the depthwise scales folded in."""
        return self.pointwise_kernel * self.depthwise_scale[None, None, :, None]

    def set_scales(self, input_scale, weight_scale=None, depthwise_factor=1.0) -> None:
        """Freeze ``input_scale``, the per-channel depthwise scale (made ``depthwise_factor``
        times coarser, >= 1) and the pointwise scale."""
        self.input_scale.assign(np.broadcast_to(np.asarray(input_scale, np.float32),
                                                self.input_scale.shape))
        depthwise = (self.depthwise_kernel * self.input_scale[None, None, :, None]).numpy()
        self.depthwise_scale.assign(self.weight_quantizer.scale(depthwise[..., 0]) *
                                    np.float32(depthwise_factor))
        super().set_scales(self.input_scale.numpy(), weight_scale)

    def integer_weights(self):
        """Integer depthwise (kh, kw, in, 1) and pointwise (1, 1, in, filters) kernels."""
        depthwise = self.depthwise_kernel * self.input_scale[None, None, :, None]
        dw_int = self.weight_quantizer(depthwise, self.depthwise_scale[:, None])
        return [dw_int, self.weight_quantizer(self.effective_kernel(), self.weight_scale)]

    def _all_pv_potential(self, weights):
        dw_sum = tf.reduce_sum(weights[0], axis=[0, 1, 3])
        return tf.reduce_sum(dw_sum[:, None] * weights[1][0, 0], axis=0)

    def call(self, inputs):
        dtype = self.compute_dtype_for_bound()
        dw_int, pw_int = self.integer_weights()
        x = tf.cast(inputs, dtype)
        stride = [1, self.strides[0], self.strides[1], 1]
        depthwise = tf.nn.depthwise_conv2d(x, tf.cast(dw_int, dtype), stride,
                                           self.padding.upper())
        p = tf.nn.conv2d(depthwise, tf.cast(pw_int, dtype), 1, "VALID")
        return p + tf.cast(self._integer_bias(self._all_pv_potential([dw_int, pw_int])), dtype)

    def get_config(self):
        return {**super().get_config(), **self._quantization_config()}


@register
class QuantizedDepthwiseConv2D(NeuralQuantization, keras.layers.DepthwiseConv2D):
    """DepthwiseConv2D on integers (an Akida 2.0 layer kind; Akida 1.0 uses it only inside
    QuantizedSeparableConv2D). ``weight_scale`` is per channel."""

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1,
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, *, weight_bits=4, input_bits=4,
                 padding_value=0, per_tensor_weights=False, **kwargs):
        super().__init__(kernel_size, strides=strides, padding=padding,
                         depth_multiplier=depth_multiplier, data_format=data_format,
                         dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                         depthwise_initializer=depthwise_initializer,
                         bias_initializer=bias_initializer,
                         depthwise_regularizer=depthwise_regularizer,
                         bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer,
                         depthwise_constraint=depthwise_constraint,
                         bias_constraint=bias_constraint, **force_float32(kwargs))
        self._init_quantization(weight_bits, input_bits, padding_value, per_tensor_weights)
        self._check_spatial()
        if depth_multiplier != 1:
            raise QuantizationConfigError(
                f"Layer '{self.name}': depth_multiplier={depth_multiplier} is not supported; "
                "allowed: 1.")

    def build(self, input_shape):
        super().build(input_shape)
        channels = int(input_shape[-1])
        self._add_scales(channels, channels)

    def kernel_shape_for_bound(self):
        return self.kernel.shape[:2]

    def effective_kernel(self):
        """Depthwise kernel (kh, kw, channels) with the input scale folded in."""
        return self.kernel[..., 0] * self.input_scale[None, None, :]

    def integer_weights(self):
        """Integer depthwise kernel (kh, kw, channels, 1)."""
        return [self.weight_quantizer(self.effective_kernel(), self.weight_scale)[..., None]]

    def _all_pv_potential(self, weights):
        return tf.reduce_sum(weights[0], axis=[0, 1, 3])

    def call(self, inputs):
        dtype = self.compute_dtype_for_bound()
        (w_int,) = self.integer_weights()
        stride = [1, self.strides[0], self.strides[1], 1]
        p = tf.nn.depthwise_conv2d(tf.cast(inputs, dtype), tf.cast(w_int, dtype), stride,
                                   self.padding.upper())
        return p + tf.cast(self._integer_bias(self._all_pv_potential([w_int])), dtype)

    def get_config(self):
        return {**super().get_config(), **self._quantization_config()}


@register
class QuantizedDense(NeuralQuantization, keras.layers.Dense):
    """Dense on integers over a flat input (put a QuantizedFlatten before it for images):
    ``q = clip(x @ w_int, −2**19, 2**19 − 1) + bias_int``.

    Akida 1.0's FullyConnected saturates its potential to 20 bits signed before the threshold, so
    the twin clips ``Σ w·x`` the same way (computed exactly first; straight-through gradient). The
    clip is skipped when the static bound ``max|w| · max|x| · features`` proves it cannot happen.
    ``input_scale`` has one value per input feature (a per-channel scale tiled by the flatten).
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 lora_rank=None, lora_alpha=None, quantization_config=None, *, weight_bits=4,
                 input_bits=4, padding_value=0, per_tensor_weights=False, **kwargs):
        refuse_float_features(kwargs.get("name"), lora_rank, quantization_config)
        super().__init__(units, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer,
                         kernel_constraint=kernel_constraint, bias_constraint=bias_constraint,
                         **force_float32(kwargs))
        self._init_quantization(weight_bits, input_bits, padding_value, per_tensor_weights)

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise QuantizationConfigError(
                f"Layer '{self.name}': input shape {tuple(input_shape)} is not flat; "
                "QuantizedDense needs (batch, features). Hint: add a QuantizedFlatten before it.")
        super().build(input_shape)
        self._add_scales(int(input_shape[-1]), self.units)

    def kernel_shape_for_bound(self):
        return self.kernel.shape[:-1]

    def integer_weights(self):
        """Integer kernel (features, units), Keras layout (row-major flatten of (h, w, c))."""
        return [self.weight_quantizer(self.effective_kernel(), self.weight_scale)]

    def _all_pv_potential(self, weights):
        return tf.reduce_sum(weights[0], axis=0)

    def call(self, inputs):
        dtype = self.compute_dtype_for_bound()
        (w_int,) = self.integer_weights()
        # Exact: the unclipped sum stays below the bound that chose ``dtype``.
        p = tf.matmul(tf.cast(inputs, dtype), tf.cast(w_int, dtype))
        p = saturate_potentials(p, self.product_bound())
        return p + tf.cast(self._integer_bias(self._all_pv_potential([w_int])), dtype)

    def get_config(self):
        config = {**super().get_config(), **self._quantization_config()}
        for key in ("lora_rank", "lora_alpha", "quantization_config"):
            config.pop(key, None)
        return config


NEURAL_LAYERS = (QuantizedConv2D, QuantizedSeparableConv2D, QuantizedDepthwiseConv2D,
                 QuantizedDense)

"""Akida 2.0 quantized neural layers: Conv2D, DepthwiseConv2D, Conv2DTranspose, Dense.

Each computes the integers of the Akida 2.0 layer it becomes (akida2-layers.md §3-4):

    xs = sat_bb(x · 2**input_shift)          per input channel (aligns per-axis inputs)
    acc = sat_bb(wrap32(Σ xs · w))           (Dense: no wrap, as Dense1D)
    B  = sat_32(bias · 2**bias_shift)
    A  = sat_32(acc + B)                     (input convolution: sat_bb(acc + B))

then, when the layer ends its block, the output quantizer (``base.OutputQuantization``). ``w`` are
the integer weights ``clip(rne(kernel / weight_scale))`` and ``bias`` the 8-bit integer
``sat_8(rne(bias / bias_unit))`` (Keras layout: cross-correlation, cnn2snn flips the kernels for
Akida's true convolutions). Scales and shifts are frozen by ``quantize``; quantization-aware
training moves the float kernel and bias through straight-through estimators.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ...errors import QuantizationConfigError
from ..fixed_point import sat, ste_round, weight_scale, wrap32
from ...layers.base import refuse_float_features
from .base import POST_BITS, Float64Spec, OutputQuantization, as_float64, force_float64, register

#: Akida 2.0 bias and max_value integers are 8 bits.
BIAS_BITS = 8


class NeuralV2(OutputQuantization, Float64Spec):
    """Mixin of the Akida 2.0 neural layers: integer weights and bias, input alignment, POST."""

    #: axis of the kernel holding the output channels (per-axis weight scales)
    channel_axis = -1
    #: whether the raw sum wraps at 32 bits before the buffer saturation
    wraps = True

    def _init_neural(self, weight_bits, buffer_bits, output_bits, input_conv, input_bits=0):
        if isinstance(weight_bits, bool) or not isinstance(weight_bits, (int, np.integer)) or \
                not 2 <= weight_bits <= 16:
            raise QuantizationConfigError(
                f"Layer '{self.name}': weight_bits={weight_bits!r}; allowed: 2 to 16.")
        if isinstance(buffer_bits, bool) or not isinstance(buffer_bits, (int, np.integer)) or \
                not 8 <= buffer_bits <= 32:
            raise QuantizationConfigError(
                f"Layer '{self.name}': buffer_bits={buffer_bits!r}; allowed: 8 to 32.")
        if getattr(self, "activation", None) not in (None, keras.activations.linear):
            raise QuantizationConfigError(
                f"Layer '{self.name}': a fused activation is not allowed in a quantized layer; "
                "put a QuantizedReLU after it.")
        self.weight_bits, self.buffer_bits = int(weight_bits), int(buffer_bits)
        if isinstance(input_bits, bool) or not isinstance(input_bits, (int, np.integer)) or \
                input_bits not in (0, 8, 16) or (input_bits and input_conv):
            raise QuantizationConfigError(
                f"Layer '{self.name}': input_bits={input_bits!r}; allowed: 0 (it reads quantized "
                "tensors or is an input convolution), 8 or 16 (it reads the model's signed "
                "integer inputs: an Akida 2.0 InputData).")
        self.input_conv, self.input_bits = bool(input_conv), int(input_bits)
        self._init_output(output_bits)

    def _build_neural(self, in_channels: int, out_channels: int):
        self.input_shift = self.add_weight(name="input_shift", shape=(in_channels,),
                                           initializer="zeros", trainable=False)
        self.weight_scale = self.add_weight(name="weight_scale", shape=(out_channels,),
                                            initializer="ones", trainable=False)
        self.bias_unit = self.add_weight(name="bias_unit", shape=(out_channels,),
                                         initializer="ones", trainable=False)
        self.bias_shift = self.add_weight(name="bias_shift", shape=(out_channels,),
                                          initializer="zeros", trainable=False)
        self._build_output(out_channels)

    @property
    def float_kernel(self):
        """The float kernel, output channels on ``channel_axis``."""
        return self.kernel

    def freeze_weight_scale(self) -> np.ndarray:
        """Set ``weight_scale`` from the current float kernel; returns it (float32)."""
        scale = weight_scale(self.float_kernel.numpy(), self.weight_bits, self.channel_axis)
        self.weight_scale.assign(scale.astype(np.float64))
        return scale

    def _broadcast(self, values):
        shape = [1] * len(self.float_kernel.shape)
        shape[self.channel_axis] = -1
        return tf.reshape(values, shape)

    def integer_weights(self):
        """Integer kernel (float64), Keras layout: ``clip(rne(kernel / weight_scale))``."""
        high = float(2 ** (self.weight_bits - 1) - 1)
        q = ste_round(as_float64(self.float_kernel) / self._broadcast(self.weight_scale))
        return tf.clip_by_value(q, -high, high)

    def integer_bias(self):
        """Integer bias (float64, 8 bits) before its ``bias_shift``: ``sat_8(rne(b / unit))``."""
        if not self.use_bias:
            return tf.zeros_like(self.bias_unit)
        return sat(ste_round(as_float64(self.bias) / self.bias_unit), BIAS_BITS)

    def set_bias_alignment(self, unit, shift) -> None:
        """Freeze the float value of one bias integer and its shift (per output channel)."""
        self.bias_unit.assign(np.asarray(unit, np.float64))
        self.bias_shift.assign(np.asarray(shift, np.float64))

    def set_input_shift(self, shift) -> None:
        """Freeze the per-input-channel alignment shift (>= 0)."""
        self.input_shift.assign(np.broadcast_to(np.asarray(shift, np.float64),
                                                self.input_shift.shape))

    def _raw_sum(self, xs, weights):
        raise NotImplementedError

    def call(self, inputs):
        x = as_float64(inputs)
        xs = x if self.input_conv else sat(x * tf.pow(2.0 * tf.ones_like(self.input_shift),
                                                     self.input_shift), self.buffer_bits)
        acc = self._raw_sum(xs, self.integer_weights())
        bias = sat(self.integer_bias() * tf.pow(2.0 * tf.ones_like(self.bias_shift),
                                                self.bias_shift), POST_BITS)
        if self.input_conv:
            potentials = sat(acc + bias, self.buffer_bits)
        else:
            acc = sat(wrap32(acc) if self.wraps else acc, self.buffer_bits)
            potentials = sat(acc + bias, POST_BITS)
        return self.quantize_output(potentials)

    # Keras' Dense/Conv save only their own float (or Keras-quantized) variables: save them all.
    def save_own_variables(self, store):
        keras.layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store):
        keras.layers.Layer.load_own_variables(self, store)

    def neural_config(self) -> dict:
        return {"weight_bits": self.weight_bits, "buffer_bits": self.buffer_bits,
                "input_conv": self.input_conv, "input_bits": self.input_bits,
                **self.output_config()}


def _same_pads(size, kernel: int, stride: int):
    """TF 'same' padding [before, after] of one spatial axis (dynamic size)."""
    out = (size + stride - 1) // stride
    total = tf.maximum((out - 1) * stride + kernel - size, 0)
    return [total // 2, total - total // 2]


def _check_padding_value(name, value, input_conv):
    """An int, or one int per input channel (kept as a list), each in 0..255, only on an input
    convolution."""
    values = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
    ok = len(values) > 0 and all(not isinstance(v, (bool, np.bool_)) and isinstance(
        v, (int, np.integer)) and 0 <= v <= 255 for v in values)
    if not ok or (any(values) and not input_conv):
        raise QuantizationConfigError(
            f"Layer '{name}': padding_value={value!r}; allowed: an integer 0..255 or one per input "
            "channel, on an input convolution (the uint8 code of a real 0).")
    if isinstance(value, (list, tuple, np.ndarray)):
        return [int(v) for v in values]
    return int(value)


def _check_square(layer, kernel_size, strides, dilation_rate=(1, 1)):
    if tuple(dilation_rate) != (1, 1):
        raise QuantizationConfigError(
            f"Layer '{layer.name}': dilation_rate={tuple(dilation_rate)} is not supported; "
            "allowed: (1, 1).")


@register
class QuantizedConv2D(NeuralV2, keras.layers.Conv2D):
    """Conv2D on integers, the Akida 2.0 way (InputConv2D or Conv2D). Quantization args:
    ``weight_bits``, ``buffer_bits`` (28), ``output_bits`` (None: not a block end),
    ``input_conv`` (the first layer on uint8 images: no input shift, Akida's InputConv2D sums),
    ``input_bits`` (8 or 16 when it reads the model's signed integer inputs: an InputData)."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, *, weight_bits=8, buffer_bits=28,
                 output_bits=None, input_conv=False, input_bits=0, padding_value=0,
                 **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding,
                         data_format=data_format, dilation_rate=dilation_rate, groups=groups,
                         activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer,
                         kernel_constraint=kernel_constraint, bias_constraint=bias_constraint,
                         **force_float64(kwargs))
        self._init_neural(weight_bits, buffer_bits, output_bits, input_conv, input_bits)
        # a dilation quantizes (as MetaTF); Akida 2.0 has none: cnn2snn.convert refuses it
        if groups != 1:
            raise QuantizationConfigError(f"Layer '{self.name}': groups={groups}; allowed: 1.")
        self.padding_value = _check_padding_value(self.name, padding_value, input_conv)
        if np.any(self.padding_value) and tuple(self.dilation_rate) != (1, 1):
            raise QuantizationConfigError(
                f"Layer '{self.name}': padding_value={padding_value!r} with dilation_rate="
                f"{tuple(self.dilation_rate)}; allowed: a padding value on an undilated input "
                "convolution only.")

    def build(self, input_shape):
        channels = int(input_shape[-1])
        if isinstance(self.padding_value, list) and len(self.padding_value) != channels:
            raise QuantizationConfigError(
                f"Layer '{self.name}': padding_value has {len(self.padding_value)} values for "
                f"{channels} input channels; give one integer or one per channel.")
        super().build(input_shape)
        self._build_neural(channels, self.filters)

    def _raw_sum(self, xs, weights):
        if self.padding == "same" and np.any(self.padding_value):
            # Akida's InputConv2D pads channel c with padding_value[c] (the code of a real 0 of an
            # offset input), not 0: pad x − value with zeros, then add the value back everywhere.
            value = tf.constant(np.broadcast_to(self.padding_value, (xs.shape[-1],)), xs.dtype)
            pads = [[0, 0]] + [_same_pads(tf.shape(xs)[axis + 1], self.kernel_size[axis],
                                          self.strides[axis]) for axis in (0, 1)] + [[0, 0]]
            xs = tf.pad(xs - value, pads) + value
            return tf.nn.conv2d(xs, weights, list(self.strides), "VALID")
        return tf.nn.conv2d(xs, weights, list(self.strides), self.padding.upper(),
                            dilations=list(self.dilation_rate))

    def get_config(self):
        return {**super().get_config(), **self.neural_config(),
                "padding_value": self.padding_value}


@register
class QuantizedDepthwiseConv2D(NeuralV2, keras.layers.DepthwiseConv2D):
    """DepthwiseConv2D on integers (Akida 2.0 DepthwiseConv2D); weight scale per channel. The
    channels are independent, so per-axis inputs need no alignment (``input_shift`` stays 0)."""

    channel_axis = -2

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1,
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, *, weight_bits=8,
                 buffer_bits=28, output_bits=None, input_conv=False, input_bits=0, **kwargs):
        super().__init__(kernel_size, strides=strides, padding=padding,
                         depth_multiplier=depth_multiplier, data_format=data_format,
                         dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                         depthwise_initializer=depthwise_initializer,
                         bias_initializer=bias_initializer,
                         depthwise_regularizer=depthwise_regularizer,
                         bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer,
                         depthwise_constraint=depthwise_constraint,
                         bias_constraint=bias_constraint, **force_float64(kwargs))
        self._init_neural(weight_bits, buffer_bits, output_bits, input_conv, input_bits)
        if depth_multiplier != 1:
            raise QuantizationConfigError(
                f"Layer '{self.name}': depth_multiplier={depth_multiplier}; allowed: 1 (Akida "
                "2.0 DepthwiseConv2D keeps the channel count).")

    def build(self, input_shape):
        super().build(input_shape)
        channels = int(input_shape[-1])
        self._build_neural(channels, channels)

    def _raw_sum(self, xs, weights):
        stride = [1, self.strides[0], self.strides[1], 1]
        return tf.nn.depthwise_conv2d(xs, weights, stride, self.padding.upper(),
                                      dilations=list(self.dilation_rate))

    def get_config(self):
        return {**super().get_config(), **self.neural_config()}


@register
class QuantizedConv2DTranspose(NeuralV2, keras.layers.Conv2DTranspose):
    """Conv2DTranspose on integers (Akida 2.0 Conv2DTranspose: stride 2, 'same'); the Keras
    kernel is (kh, kw, filters, in), so the weight scale is per filter on axis 2."""

    channel_axis = -2

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid",
                 output_padding=None, data_format=None, dilation_rate=(1, 1), activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, *, weight_bits=8, buffer_bits=28,
                 output_bits=None, input_conv=False, input_bits=0, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding,
                         output_padding=output_padding, data_format=data_format,
                         dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer,
                         kernel_constraint=kernel_constraint, bias_constraint=bias_constraint,
                         **force_float64(kwargs))
        self._init_neural(weight_bits, buffer_bits, output_bits, input_conv, input_bits)
        _check_square(self, kernel_size, strides, dilation_rate)

    def build(self, input_shape):
        super().build(input_shape)
        self._build_neural(int(input_shape[-1]), self.filters)

    def _raw_sum(self, xs, weights):
        shape = tf.shape(xs)
        out_shape = self.compute_output_shape(xs.shape)
        output_shape = tf.stack([shape[0], out_shape[1], out_shape[2], self.filters])
        return tf.nn.conv2d_transpose(xs, weights, output_shape, list(self.strides),
                                      self.padding.upper())

    def get_config(self):
        return {**super().get_config(), **self.neural_config()}


@register
class QuantizedDense(NeuralV2, keras.layers.Dense):
    """Dense on integers (Akida 2.0 Dense1D) over a flat input (cnn2snn refuses others): after
    QuantizedFlatten (row-major,
    one ``input_shift`` per flattened input: per-axis inputs are aligned per feature) or a
    GlobalAveragePooling2D. The sum is exact (Dense1D does not wrap)."""

    wraps = False

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 lora_rank=None, lora_alpha=None, quantization_config=None, *, weight_bits=8,
                 buffer_bits=28, output_bits=None, input_conv=False, input_bits=0, **kwargs):
        refuse_float_features(kwargs.get("name"), lora_rank, quantization_config)
        super().__init__(units, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer,
                         kernel_constraint=kernel_constraint, bias_constraint=bias_constraint,
                         **force_float64(kwargs))
        self._init_neural(weight_bits, buffer_bits, output_bits, input_conv, input_bits)

    def build(self, input_shape):
        # a Dense over the last axis of a (batch, h, w, c) input quantizes (as MetaTF); Akida 2.0
        # Dense1D takes flat inputs only: cnn2snn.convert refuses it
        super().build(input_shape)
        self._build_neural(int(input_shape[-1]), self.units)

    def _raw_sum(self, xs, weights):
        return tf.tensordot(xs, weights, axes=1)

    def get_config(self):
        config = {**super().get_config(), **self.neural_config()}
        for key in ("lora_rank", "lora_alpha", "quantization_config"):
            config.pop(key, None)
        return config


NEURAL_LAYERS = (QuantizedConv2D, QuantizedDepthwiseConv2D, QuantizedConv2DTranspose,
                 QuantizedDense)

"""Build small quantized Keras models directly from quantizeml layers (no calibration epochs).

Each layer gets seeded random float weights, frozen scales and an activation range taken from the
data actually flowing through it, so every activation level is used. This is the cheap way to
cover many conversion options; models produced by `quantizeml.models.quantize` are tested too.
"""
import keras
import numpy as np

from quantizeml.layers import (Dequantizer, InputQuantizer, QuantizedConv2D, QuantizedDense,
                               QuantizedFlatten, QuantizedGlobalAveragePooling2D,
                               QuantizedMaxPool2D, QuantizedReLU, QuantizedSeparableConv2D)
from quantizeml.quantizers import round_act_step


def conv(filters, kernel=3, strides=1, padding="same", weight_bits=4, **kw):
    return ("conv", dict(filters=filters, kernel_size=kernel, strides=strides, padding=padding,
                         weight_bits=weight_bits, **kw))


def sep(filters, kernel=3, strides=1, padding="same", weight_bits=4):
    return ("sep", dict(filters=filters, kernel_size=kernel, strides=strides, padding=padding,
                        weight_bits=weight_bits))


def dense(units, weight_bits=4, **kw):
    return ("dense", dict(units=units, weight_bits=weight_bits, **kw))


def maxpool(size=2, strides=None, padding="same"):
    return ("maxpool", dict(pool_size=size, strides=strides, padding=padding))


def gap():
    return ("gap", {})


def relu(bits=4):
    return ("relu", dict(activation_bits=bits))


def flatten():
    return ("flatten", {})


_CLASSES = {"conv": QuantizedConv2D, "sep": QuantizedSeparableConv2D, "dense": QuantizedDense,
            "maxpool": QuantizedMaxPool2D, "gap": QuantizedGlobalAveragePooling2D,
            "relu": QuantizedReLU, "flatten": QuantizedFlatten}


def build(input_shape, specs, seed=0, input_bits=8, padding_value=0, calib=None):
    """Returns a quantized Keras Sequential built from `specs` (see the helpers above).

    Args:
        input_shape: (H, W, C) of the model input (uint8 levels of `input_bits` bits).
        specs: list of (kind, kwargs).
        seed: seeds weights and calibration data.
        input_bits: 8 for an input convolution, 1/2/4 for an InputData start.
        padding_value: padding value of the first neural layer.
        calib: optional calibration integers (N, H, W, C); random otherwise.
    """
    rng = np.random.default_rng(seed)
    if calib is None:
        calib = rng.integers(0, 2 ** input_bits, (16, *input_shape)).astype(np.float32)
    quantizer = InputQuantizer(bits=input_bits)
    x = quantizer(calib)
    layers, in_bits, in_scale, first = [quantizer], input_bits, None, True
    neural = None
    for kind, kwargs in specs:
        kwargs = dict(kwargs)
        if kind in ("conv", "sep", "dense"):
            # weight_mean (broadcast to the kernel, e.g. per filter) biases the random kernel so
            # that potentials grow large, e.g. to saturate Akida's 20-bit registers.
            mean = np.asarray(kwargs.pop("weight_mean", 0.0), np.float32)
            kwargs.update(input_bits=in_bits, padding_value=padding_value if first else 0)
            layer = _CLASSES[kind](**kwargs)
            layer.build(x.shape)
            for var in layer.trainable_weights:
                shift = mean if "kernel" in var.path else 0.0
                var.assign(rng.normal(shift, 1.0, var.shape).astype(np.float32))
            scale = in_scale if in_scale is not None else rng.uniform(0.5, 1.5, x.shape[-1])
            layer.set_scales(np.broadcast_to(scale, layer.input_scale.shape))
            neural, first = layer, False
        elif kind == "relu":
            layer = _CLASSES[kind](**kwargs)
            layer.build(x.shape)
            sum_size = getattr(layers[-1], "sum_size", 1)
            wscale = neural.weight_scale.numpy()
            real = np.asarray(x, np.float64) * wscale / sum_size
            top = np.maximum(np.quantile(real.reshape(-1, real.shape[-1]), 0.9), 1e-3)
            out_scale = layer.set_activation_range(top.max(), wscale, sum_size)
            in_bits, in_scale = kwargs["activation_bits"], out_scale
        elif kind == "flatten":
            layer = _CLASSES[kind]()
            in_scale = None if in_scale is None else np.tile(in_scale, int(np.prod(x.shape[1:-1])))
        else:
            layer = _CLASSES[kind](**kwargs)
        x = layer(x)
        layers.append(layer)
    if specs[-1][0] != "relu":
        deq = Dequantizer()
        deq.build(x.shape)
        # The divisor is the last layer's Akida act_step: a multiple of 1/16.
        deq.set_divisor(round_act_step(np.clip(1.0 / neural.weight_scale.numpy(), 0.0625,
                                               1000.0)))
        layers.append(deq)
    return keras.Sequential([keras.Input(input_shape), *layers])


def integer_model(qmodel):
    """The Keras model whose output is the integer tensor before the Dequantizer (if any)."""
    if isinstance(qmodel.layers[-1], Dequantizer):
        return keras.Model(qmodel.inputs[0], qmodel.layers[-2].output)
    return qmodel

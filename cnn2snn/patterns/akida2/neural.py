"""Akida 2.0 neural layers: InputConv2D, Conv2D, DepthwiseConv2D, Conv2DTranspose, Dense1D.

``build(block, context)`` transfers the frozen integers of the quantizeml.v2 layers: integer
weights (flipped for Akida's true convolutions, transposed for Conv2DTranspose), the 8-bit bias
and its shift, the input alignment shifts, the ReLU ceiling or the LUT (``activation=LUT``: the
index scale and shift and the 2048 entries) and the output scale and shift of the block's last
layer.
"""
from __future__ import annotations

import numpy as np

from akida_core import (ActivationType, Conv2D, Conv2DTranspose, Dense1D, DepthwiseConv2D,
                        InputConv2D, LayerType, Padding, PoolType)

from ..base import Pattern, maybe, one, register

#: Akida 2.0 weight widths (Conv2D/DepthwiseConv2D/Dense1D check [-128, 127] at 8 bits, else
#: [-8, 7]; MetaTF refuses every other width).
WEIGHT_BITS = (4, 8)


class BlockIssue(Exception):
    """A block the Akida 2.0 layers cannot express: (rule, message, found, allowed, hint)."""


def _square(block, layer, name, value):
    value = tuple(int(v) for v in value)
    if len(set(value)) != 1:
        raise BlockIssue(name, f"Layer '{layer.name}': {name}={value}; Akida 2.0 takes square "
                         "kernels, strides and pools.", value, "equal values",
                         f"use {name}=({value[0]}, {value[0]}).")
    return value[0]


def _check_dilation(neural):
    dilation = tuple(int(d) for d in getattr(neural, "dilation_rate", (1, 1)))
    if dilation != (1, 1):
        raise BlockIssue("dilation", f"Layer '{neural.name}': dilation_rate={dilation}; Akida 2.0 "
                         "convolutions are not dilated.", dilation, (1, 1),
                         "use dilation_rate=1 (a larger kernel or a stride covers the same "
                         "field of view).")


def _post_arguments(block, neural):
    """Keras block -> activation, pooling, bits arguments of the Akida layer; and the activation
    layer (ReLU or LUT) or None."""
    _check_dilation(neural)
    relu, pool, gap = block.role("relu"), block.role("maxpool"), block.role("gap")
    lut = block.role("lut")
    activation = ActivationType.ReLU if relu is not None else ActivationType.LUT \
        if lut is not None else ActivationType.NoActivation
    args = {"activation": activation,
            "output_bits": int(block.last.output_bits),
            "buffer_bits": int(neural.buffer_bits), "post_op_buffer_bits": 32}
    if block.last.output_bits is None:
        raise BlockIssue("output_quantizer", f"Block {block.chain} has no output quantizer.",
                         None, "a quantized block end", "quantize with quantizeml.models.")
    weight_bits = int(neural.weight_bits)
    if weight_bits not in WEIGHT_BITS:
        raise BlockIssue("weight_bits", f"Layer '{neural.name}': weight_bits={weight_bits}; "
                         "Akida 2.0 layers handle 4- or 8-bit weights.", weight_bits,
                         list(WEIGHT_BITS), "quantize with weight_bits=4 or 8 (and "
                         "input_weight_bits=4 or 8).")
    args["weights_bits"] = weight_bits
    if pool is not None and gap is not None:
        raise BlockIssue("pooling", f"Block {block.chain}: max pooling and global average "
                         "pooling in one Akida layer.", "both", "one of them",
                         "end the block before the global average pooling.")
    if pool is not None:
        if pool.padding != neural.padding:
            raise BlockIssue("pool_padding", f"Pooling layer '{pool.name}' (padding: "
                             f"{pool.padding}) must have the same padding as '{neural.name}' "
                             f"(padding: {neural.padding}).", pool.padding, neural.padding,
                             f"use padding='{neural.padding}' in '{pool.name}'.")
        args.update(pool_type=PoolType.Max, pool_size=_square(block, pool, "pool_size",
                                                              pool.pool_size),
                    pool_stride=_square(block, pool, "strides", pool.strides))
    elif gap is not None:
        args["pool_type"] = PoolType.Average
    return args, relu if relu is not None else lut


def _variables(block, neural, act, weights, input_shift=True):
    variables = {"weights": weights.astype(np.int8),
                 "bias": neural.integer_bias().numpy().astype(np.int8),
                 "bias_shift": neural.bias_shift.numpy().astype(np.uint8),
                 "output_scales": block.last.output_scale.numpy().astype(np.uint8),
                 "output_shift": block.last.output_shift.numpy().astype(np.int8)}
    if input_shift:
        variables["input_shift"] = neural.input_shift.numpy().astype(np.uint8)
    if block.role("relu") is not None and act.max_value is not None:
        variables["max_value"] = act.max_value_int.numpy().astype(np.uint8)
        variables["max_value_shift"] = act.max_value_shift.numpy().astype(np.uint8)
    if block.role("lut") is not None:
        variables["activation_scales"] = act.activation_scale.numpy().astype(np.uint8)
        variables["activation_shift"] = act.activation_shift.numpy().astype(np.int8)
        variables["lut_values"] = act.lut_values.numpy().astype(np.int32)
    return variables


def _padding(layer):
    """Keras padding; 1×1 kernels are written Same, as MetaTF does (equal result, and Akida 2.0
    devices map only Same convolutions)."""
    if layer.padding == "same" or tuple(layer.kernel_size) == (1, 1):
        return Padding.Same
    return Padding.Valid


def build_conv(block, context):
    """Conv2D / InputConv2D of a QuantizedConv2D block."""
    neural = block.layers[0]
    args, act = _post_arguments(block, neural)
    kernel = _square(block, neural, "kernel_size", neural.kernel_size)
    stride = _square(block, neural, "strides", neural.strides)
    weights = neural.integer_weights().numpy()
    common = dict(filters=int(neural.filters), kernel_size=kernel, kernel_stride=stride,
                  padding=_padding(neural), name=block.name, **args)
    if neural.input_conv:
        if args.get("pool_type") == PoolType.Average:
            raise BlockIssue("input_gap", f"Block {block.chain}: the input convolution cannot "
                             "do global average pooling on Akida 2.0.", "GAP", "none or max pool",
                             "end the first block before the GlobalAveragePooling2D.")
        layer = InputConv2D(input_shape=tuple(int(d) for d in context["input_shape"]), **common)
        # InputConv2D is a cross-correlation, like Keras: the kernel is used as is.
        variables = _variables(block, neural, act, weights, input_shift=False)
        variables["padding_value"] = np.broadcast_to(np.asarray(neural.padding_value),
                                                     (weights.shape[2],)).astype(np.uint8)
        return layer, variables
    layer = Conv2D(**common)
    # Akida's Conv2D is a true convolution: flip the Keras (correlation) kernel on both axes.
    return layer, _variables(block, neural, act, weights[::-1, ::-1])


def build_depthwise(block, context):
    """DepthwiseConv2D of a QuantizedDepthwiseConv2D block (kernel flipped)."""
    neural = block.layers[0]
    args, act = _post_arguments(block, neural)
    layer = DepthwiseConv2D(kernel_size=_square(block, neural, "kernel_size", neural.kernel_size),
                            kernel_stride=_square(block, neural, "strides", neural.strides),
                            padding=_padding(neural), name=block.name, **args)
    weights = neural.integer_weights().numpy()[::-1, ::-1]
    return layer, _variables(block, neural, act, weights)


def build_transpose(block, context):
    """Conv2DTranspose (stride 2, 'same'; Keras kernel (k, k, F, C) -> Akida (k, k, C, F))."""
    neural = block.layers[0]
    args, act = _post_arguments(block, neural)
    stride = _square(block, neural, "strides", neural.strides)
    if stride != 2 or neural.padding != "same":
        raise BlockIssue("transpose", f"Layer '{neural.name}': strides={stride}, padding="
                         f"'{neural.padding}'; Akida 2.0 Conv2DTranspose handles only stride 2 "
                         "and 'same' padding.", [stride, neural.padding], [2, "same"],
                         "use strides=2, padding='same'.")
    kernel = _square(block, neural, "kernel_size", neural.kernel_size)
    if kernel not in (2, 3, 4):
        raise BlockIssue("transpose_kernel", f"Layer '{neural.name}': kernel_size={kernel}; "
                         "Akida 2.0 Conv2DTranspose takes kernels 3 or 4 (2 is padded to 3).",
                         kernel, [2, 3, 4], "use kernel_size=3 or 4.")
    args.pop("pool_type", None)
    weights = np.transpose(neural.integer_weights().numpy(), (0, 1, 3, 2))
    if kernel == 2:  # same offset (0) as kernel 3: a trailing zero row and column
        weights, kernel = np.pad(weights, ((0, 1), (0, 1), (0, 0), (0, 0))), 3
    layer = Conv2DTranspose(filters=int(neural.filters), kernel_size=kernel, name=block.name,
                            **args)
    return layer, _variables(block, neural, act, weights)


def build_dense(block, context):
    """Dense1D (row-major flatten; per-feature input shifts)."""
    neural = block.role("dense")
    shape = tuple(neural.input.shape[1:])
    if len(shape) != 1:
        raise BlockIssue("dense_input", f"Layer '{neural.name}': input shape {shape}; the Akida "
                         "2.0 Dense1D takes flat inputs (features,) only.", shape, "(features,)",
                         f"add a Flatten (or a GlobalAveragePooling2D) before '{neural.name}', "
                         "or use a 1×1 Conv2D.")
    args, act = _post_arguments(block, neural)
    args.pop("pool_type", None)
    layer = Dense1D(units=int(neural.units), name=block.name, **args)
    return layer, _variables(block, neural, act, neural.integer_weights().numpy())


def _register(name, sequence, produces, build, description, first_only=False):
    return register(Pattern(name=name, sequence=sequence, produces=produces, build=build,
                            first_only=first_only, description=description, generation="v2"))


_register("v2-input-conv", (one("neural", "conv"), maybe("pool", "maxpool"),
                            maybe("act", "relu", "lut")), LayerType.InputConv2D, build_conv,
          "first Conv2D [MaxPool] [ReLU|LUT] on uint8 images or uint8 InputQuantizer codes (1 or "
          "3 channels)", first_only=True)
_register("v2-conv", (one("neural", "conv"), maybe("pool", "maxpool"),
                      maybe("act", "relu", "lut"), maybe("gap", "gap")), LayerType.Conv2D,
          build_conv, "Conv2D [MaxPool] [ReLU|LUT] [GAP]")
_register("v2-depthwise", (one("neural", "depthwise"), maybe("pool", "maxpool"),
                           maybe("act", "relu", "lut"), maybe("gap", "gap")),
          LayerType.DepthwiseConv2D, build_depthwise,
          "DepthwiseConv2D [MaxPool] [ReLU|LUT] [GAP]")
_register("v2-conv-transpose", (one("neural", "conv_transpose"), maybe("act", "relu", "lut")),
          LayerType.Conv2DTranspose, build_transpose,
          "Conv2DTranspose [ReLU|LUT] (stride 2, same)")
_register("v2-dense", (maybe("flatten", "flatten"), one("neural", "dense"),
                       maybe("act", "relu")), LayerType.Dense1D, build_dense,
          "[Flatten] Dense [ReLU] (anywhere in the graph; no LUT, as MetaTF)")

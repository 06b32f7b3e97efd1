"""Freezing an Akida 2.0 quantized model: every scale and shift, in topological order.

Each tensor between layers is described by its fractional bits ``f`` and its float scale ``s``
per channel: a quantized tensor (a block output) is plain fixed point (``s = 1``, value
``q·2**-f``); inside a block the raw sums are a QFloat (value ``A·2**-f·s``, ``s`` = input scale ×
weight scale, divided by H·W after a global sum). The rules are quantizeml's (conversion-v2.md
§2): weight scales per output channel, 8-bit aligned bias and max_value, 8-bit output scales,
alignment shifts to the largest ``f``; every shift is kept within Akida 2.0's |s| <= 31.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import QuantizationError
from . import layers as qlayers
from .fixed_point import MAX_SHIFT, aligned_frac_bits, frac_bits, output_scale
from .graph import INPUT
from .lut import INDEX_BITS, lut_table

#: A per-channel fractional-bit vector spans at most this many bits, so that alignment shifts
#: stay Akida shifts; channels with tiny ranges lose precision first, none saturates.
MAX_FRAC_SPREAD = 24


@dataclasses.dataclass
class TensorInfo:
    """Fractional bits and float scale per channel of one tensor."""

    frac: np.ndarray
    scale: np.ndarray

    @property
    def quantized(self) -> bool:
        return bool(np.all(self.scale == 1.0))


def _limit_spread(frac: np.ndarray) -> np.ndarray:
    return np.minimum(frac, frac.min() + MAX_FRAC_SPREAD)


def _choose_frac(range_max, bits, signed, per_tensor):
    r = np.asarray(range_max, np.float64)
    if per_tensor:
        r = np.full_like(r, r.max(initial=0.0))
    return _limit_spread(frac_bits(r, bits, signed))


def _quantize_output(layer, info: TensorInfo, range_max, per_tensor, raw) -> TensorInfo:
    """Freeze a block-end quantizer from a QFloat; returns the fixed-point output. ``raw``: the
    model's last layer without ``last_output_bits`` keeps its sums (S = 1, shift 0)."""
    channels = len(info.frac)
    if raw:
        layer.set_output_quantizer(np.ones(channels), np.zeros(channels))
        return info
    scale, scale_frac = output_scale(info.scale)
    target = _choose_frac(range_max, layer.output_bits, layer.output_signed, per_tensor)
    shift = np.clip(target - info.frac - scale_frac, -MAX_SHIFT, MAX_SHIFT)
    layer.set_output_quantizer(scale, shift)
    return TensorInfo(shift + info.frac + scale_frac, np.ones(channels))


def _freeze_neural(layer, node, info: TensorInfo) -> TensorInfo:
    if not np.all(info.scale == info.scale[0]):
        raise QuantizationError([f"Layer '{node.name}': its input channels have different "
                                 "scales; quantize every branch before merging."])
    depthwise = isinstance(layer, qlayers.QuantizedDepthwiseConv2D)
    if depthwise:
        layer.set_input_shift(0.0)
        acc_frac = info.frac
    elif layer.input_conv:  # uint8 images: one fractional bit count (0), no input shift
        layer.set_input_shift(0.0)
        acc_frac = np.full(layer.weight_scale.shape[0], info.frac.max())
    else:
        aligned = info.frac.max()
        shift = aligned - info.frac
        if shift.max(initial=0) > MAX_SHIFT:
            raise QuantizationError([f"Layer '{node.name}': input alignment shift "
                                     f"{shift.max():.0f} > {MAX_SHIFT}."])
        layer.set_input_shift(shift)
        out_channels = layer.weight_scale.shape[0]
        acc_frac = np.full(out_channels, aligned)
    weight_scale = layer.freeze_weight_scale().astype(np.float64)
    scale = info.scale[0] * weight_scale
    acc_frac = np.broadcast_to(acc_frac, scale.shape).astype(np.float64)
    if layer.use_bias:
        bias = layer.bias.numpy().astype(np.float64)
        bias_frac = aligned_frac_bits(bias, scale, 8, True, acc_frac)
        layer.set_bias_alignment(scale * 2.0**-bias_frac, acc_frac - bias_frac)
    return TensorInfo(acc_frac, scale)


def _freeze_relu(layer, info: TensorInfo) -> None:
    if layer.max_value is None:
        return
    max_value = float(layer.max_value)
    fb = aligned_frac_bits(np.full_like(info.scale, max_value), info.scale, 8, False, info.frac)
    value = np.minimum(np.round(max_value / info.scale * 2.0**fb), 255)
    layer.set_ceiling(value, info.frac - fb)


def _freeze_lut(layer, node, info: TensorInfo, range_max) -> TensorInfo:
    """The LUT's 11-bit per-tensor index quantizer (``activation_scale`` S and shift from the
    block's QFloat, ``f`` from the calibrated range of the sums) and its table; returns the
    table's output, integers of value ``entry·s_lut``."""
    scale, scale_frac = output_scale(info.scale)
    frac = float(frac_bits(np.max(range_max, initial=0.0), INDEX_BITS, True))
    # one f for every channel: shorten it (coarser index) rather than clip a channel's shift
    low, high = (info.frac + scale_frac).max() - MAX_SHIFT, (info.frac + scale_frac).min() + \
        MAX_SHIFT
    if low > high:
        raise QuantizationError([f"Layer '{node.name}' ({node.class_name}): its input channels' "
                                 f"fractional bits span more than {2 * MAX_SHIFT}; one LUT "
                                 "index cannot serve them all. Hint: check the weights of the "
                                 "layer before it."])
    frac = float(np.clip(frac, low, high))
    table, lut_scale = lut_table(layer.float_function, frac)
    layer.set_lut(scale, frac - info.frac - scale_frac, frac, table, lut_scale)
    channels = len(info.frac)
    return TensorInfo(np.zeros(channels), np.full(channels, lut_scale))


def freeze(qmodel, graph, stats, qparams, q_config, integer_input) -> None:
    """Freeze every quantized layer of ``qmodel`` (built from ``graph``) from ``stats``."""
    channels = graph.input_shape[-1]
    if integer_input:
        infos = {INPUT: TensorInfo(np.zeros(channels), np.full(channels, graph.input_scale))}
    else:
        # set by quantize (inputs.py): the zero point is already folded into the biases
        frac = qmodel.get_layer("input_quantizer").frac_bits.numpy().astype(np.float64)
        infos = {INPUT: TensorInfo(frac, np.ones(channels))}
    for node in graph.nodes:
        layer = qmodel.get_layer(node.name)
        params = q_config.get(node.name, qparams)
        inputs = [infos[name] for name in node.inbounds]
        info = inputs[0]
        vector = isinstance(layer, (qlayers.QuantizedDense,
                                    qlayers.QuantizedGlobalAveragePooling2D))
        per_tensor = params.per_tensor_activations or vector
        if isinstance(layer, qlayers.NEURAL_LAYERS):
            info = _freeze_neural(layer, node, info)
        elif isinstance(layer, qlayers.QuantizedReLU):
            _freeze_relu(layer, info)
        elif isinstance(layer, qlayers.LUT_LAYERS):
            info = _freeze_lut(layer, node, info, stats["ranges"][node.inbounds[0]])
        elif isinstance(layer, qlayers.QuantizedGlobalAveragePooling2D):
            info = TensorInfo(info.frac, info.scale / layer.sum_size)
        elif isinstance(layer, qlayers.QuantizedAdd):
            info = _freeze_add(layer, node, inputs, stats["ranges"][node.name], per_tensor)
        elif isinstance(layer, qlayers.QuantizedConcatenate):
            _require_quantized(node, inputs)
            info = TensorInfo(np.concatenate([i.frac for i in inputs]),
                              np.concatenate([i.scale for i in inputs]))
        elif isinstance(layer, qlayers.QuantizedFlatten):
            pixels = int(np.prod(layer.input.shape[1:-1]))
            info = TensorInfo(np.tile(info.frac, pixels), np.tile(info.scale, pixels))
        if getattr(layer, "output_bits", None) is not None and \
                not isinstance(layer, qlayers.QuantizedAdd):
            raw = node.name == graph.output and params.last_output_bits is None
            info = _quantize_output(layer, info, stats["ranges"].get(node.name), per_tensor, raw)
        infos[node.name] = info
        layer.frozen_info = info
    last = infos[graph.output]
    qmodel.get_layer("dequantizer").set_scales(last.scale * 2.0**-last.frac)


def _require_quantized(node, inputs):
    if not all(i.quantized for i in inputs):
        raise QuantizationError([f"Layer '{node.name}' ({node.class_name}): an input is not "
                                 "quantized (the end of a block)."])


def _freeze_add(layer, node, inputs, range_max, per_tensor) -> TensorInfo:
    _require_quantized(node, inputs)
    channels = layer.a_shift.shape[0]
    frac_a, frac_b = (np.broadcast_to(i.frac, (channels,)) for i in inputs)
    aligned = np.maximum(frac_a, frac_b)
    if (aligned - np.minimum(frac_a, frac_b)).max(initial=0) > MAX_SHIFT:
        raise QuantizationError([f"Layer '{node.name}' (Add): alignment shift > {MAX_SHIFT}."])
    target = _choose_frac(range_max, layer.output_bits, True, per_tensor)
    shift = np.clip(target - aligned, -MAX_SHIFT, MAX_SHIFT)
    layer.set_shifts(aligned - frac_a, aligned - frac_b, shift)
    return TensorInfo(aligned + shift, np.ones(channels))

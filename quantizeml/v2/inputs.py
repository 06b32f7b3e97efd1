"""Float model inputs in the Akida 2.0 scheme: the InputQuantizer's fractional bits and zero
points, the input convolution's padding value, and the zero point folded into the biases.

MetaTF's rules (conversion-v2.md §1-2): ``input_dtype`` gives ``bits = itemsize·8``, signed
iff the dtype is. Signed: ``f = min(vb − cl2(max|x|), vb)``, no zero point. Unsigned:
``f = min(vb − cl2(max − min), vb)`` with ``min <= 0``, ``zp = rne(−min·2**f)``; the codes then
stand for ``x − min``, so every layer reading them gets ``Σ w·min`` added to its bias, and an
input convolution pads with ``−min`` quantized by a signed ``weight_bits`` aligned quantizer.
Here (not in MetaTF) a zero point that an Akida 2.0 Conv2D would pad with code 0 gives way to
signed codes, and codes saturate and round ties half away from zero as the runtime Quantizer.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..errors import QuantizationError
from ..transforms.sanitize import QuantizationWarning
from .fixed_point import MAX_SHIFT, aligned_frac_bits, frac_bits
from .freeze import _choose_frac, _limit_spread
from .graph import INPUT

#: Layers whose bias can absorb a zero point (the input read directly, or through a Flatten).
ZERO_POINT_READERS = ("Conv2D", "DepthwiseConv2D", "Dense")


def input_format(dtype) -> tuple[int, bool]:
    """``(bits, signed)`` of the InputQuantizer for ``input_dtype`` (itemsize·8, dtype sign)."""
    dtype = np.dtype(dtype)
    return dtype.itemsize * 8, bool(np.issubdtype(dtype, np.signedinteger))


def choose_input_quantizer(stats: dict, bits: int, signed: bool, per_tensor: bool,
                           shared_frac: bool) -> tuple[np.ndarray, np.ndarray]:
    """Fractional bits and zero points per channel from the input statistics.

    Args:
        stats: ``observe_ranges(...)["input"]`` (per-channel ``abs``, ``channel_min``/``max``).
        bits, signed: the InputQuantizer's format (``input_format``).
        per_tensor: one range for all channels (``per_tensor_activations``).
        shared_frac: one ``f`` for all channels while zero points stay per channel (an input
            convolution has no per-channel input shift).

    Returns:
        ``(frac, zero_point)``, float64 arrays of one value per channel.
    """
    if signed:
        frac = _choose_frac(stats["abs"], bits, True, per_tensor)
        if shared_frac:
            frac = np.full_like(frac, frac.min())
        frac = np.clip(frac, -MAX_SHIFT, MAX_SHIFT)
        return frac, np.zeros_like(frac)
    low = np.minimum(np.asarray(stats["channel_min"], np.float64), 0.0)
    high = np.maximum(np.asarray(stats["channel_max"], np.float64), 0.0)
    if per_tensor:
        low, high = np.full_like(low, low.min()), np.full_like(high, high.max())
    frac = frac_bits(high - low, bits, False)
    if shared_frac:
        frac = np.full_like(frac, frac.min())
    frac = np.clip(_limit_spread(frac), -MAX_SHIFT, MAX_SHIFT)
    # A power-of-two range with max = 0 gives zp = 2**bits: one bit less keeps it a code.
    while True:
        zero_point = np.round(-low * 2.0**frac)
        over = zero_point > 2**bits - 1
        if not over.any():
            return frac, zero_point
        frac = frac - 1 if shared_frac else np.where(over, frac - 1, frac)


def padding_values(frac, zero_point, weight_bits: int) -> list:
    """The input convolution's padding value per channel: the real offset ``zp·2**-f`` (= −min)
    quantized as MetaTF does, by a signed ``weight_bits`` quantizer aligned to ``f`` (inputs in
    [−1, 1]: f = 7, zp = 128, padding 127 since 128 saturates), within 0..255."""
    frac = np.asarray(frac, np.float64)
    offset = np.asarray(zero_point, np.float64) * 2.0**-frac
    fb = aligned_frac_bits(offset, np.ones_like(offset), weight_bits, True, frac)
    high = 2 ** (weight_bits - 1) - 1
    code = np.clip(np.round(offset * 2.0**fb), -high - 1, high) * 2.0**(frac - fb)
    return [int(v) for v in np.clip(code, 0, 255)]


def _reader(graph, node):
    """The layer absorbing the zero point for a consumer of the input (Flatten: its Dense)."""
    if node.class_name == "Flatten" and [c.class_name for c in
                                         graph.consumers(node.name)] == ["Dense"]:
        return graph.consumers(node.name)[0]
    return node


def zero_point_readers(graph) -> list:
    """Names of the layers whose bias absorbs the input zero point."""
    return [_reader(graph, node).name for node in graph.consumers(INPUT)]


def check_zero_point_readers(graph) -> list:
    """Issues for the layers reading a zero-point input that cannot fold it into a bias."""
    issues = []
    for reader in graph.consumers(INPUT):
        if _reader(graph, reader).class_name not in ZERO_POINT_READERS:
            issues.append(
                f"Layer '{reader.name}' ({reader.class_name}) reads the float input, quantized "
                "with a zero point (unsigned input_dtype); only Conv2D, DepthwiseConv2D and "
                "[Flatten >] Dense can fold a zero point into their bias. Hint: quantize with "
                "QuantizationParams(input_dtype='int8') (no zero point).")
    return issues


def padded_readers(graph) -> list:
    """Names of the Conv2D/DepthwiseConv2D reading the input with 'same' padding and a kernel
    above 1: Akida 2.0 pads them with code 0 (only an InputConv2D has a padding value)."""
    return [node.name for node in graph.consumers(INPUT)
            if node.class_name in ("Conv2D", "DepthwiseConv2D") and
            node.config.get("padding") == "same" and
            max(tuple(node.config.get("kernel_size", (1, 1)))) > 1]


def plan_input_quantizer(graph, stats: dict, bits: int, signed: bool, per_tensor: bool,
                         input_conv: bool):
    """``(signed, frac, zero_point)`` of the InputQuantizer of a float input.

    An unsigned ``input_dtype`` gives a zero point (when the inputs go below 0); where a Conv2D or
    DepthwiseConv2D that is no input convolution would pad it, code 0 would stand for the input
    minimum instead of 0, so the input is quantized signed (no zero point) with a warning.

    Raises:
        QuantizationError: a layer that cannot fold the zero point reads the input.
    """
    frac, zero_point = choose_input_quantizer(stats, bits, signed, per_tensor, input_conv)
    if not zero_point.any():
        return signed, frac, zero_point
    padded = [] if input_conv else padded_readers(graph)
    if padded:
        warnings.warn(
            f"Layer(s) {', '.join(map(repr, padded))} pad the float input ('same' padding) on an "
            "Akida 2.0 Conv2D/DepthwiseConv2D, which pads with code 0; with an unsigned "
            f"input_dtype (zero point {zero_point.astype(int).tolist()}) that code stands for the "
            f"input minimum, not 0. The input is quantized as int{bits} (signed, no zero point) "
            "instead. Hint: a first Conv2D on 1 or 3 channels becomes an InputConv2D, which pads "
            "with the zero point; input_dtype='int8' avoids this warning.", QuantizationWarning,
            stacklevel=4)
        return (True, *choose_input_quantizer(stats, bits, True, per_tensor, input_conv))
    issues = check_zero_point_readers(graph)
    if issues:
        raise QuantizationError(issues)
    return signed, frac, zero_point


def fold_zero_point(qmodel, graph, frac, zero_point) -> None:
    """Every layer reading the codes ``q = x·2**f + zp`` subtracts ``Σ w·zp·2**-f`` (= ``Σ w·min``
    added, MetaTF's ``b += Σ w·min``) from its bias."""
    offset = np.asarray(zero_point, np.float64) * 2.0**-np.asarray(frac, np.float64)
    if not offset.any():
        return
    for reader in graph.consumers(INPUT):
        node, shift = _reader(graph, reader), offset
        if reader.class_name == "Flatten":  # row-major (h, w, c): the offset repeats per pixel
            shift = np.tile(offset, int(np.prod(graph.input_shape[:-1])))
        layer = qmodel.get_layer(node.name)
        kernel = np.asarray(layer.kernel.numpy(), np.float64)
        if node.class_name == "DepthwiseConv2D":
            share = kernel.sum(axis=(0, 1))[:, 0] * shift
        elif node.class_name == "Dense":
            share = shift @ kernel
        else:
            share = np.einsum("abco,c->o", kernel, shift)
        assert layer.use_bias, f"quantize gives '{node.name}' a bias for the zero point"
        layer.bias.assign(np.asarray(layer.bias.numpy(), np.float64) - share)

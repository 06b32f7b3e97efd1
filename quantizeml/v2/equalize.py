"""Calibration equalization of the Akida 2.0 scheme (conversion-v2.md §2 "Calibration").

After the ranges are observed, a neural block end whose next layer is a Conv2D, Dense,
DepthwiseConv2D or Conv2DTranspose (looking through MaxPool2D and GlobalAveragePooling2D, and
through Flatten only for a per-tensor range) gets its range rounded down to the top of its
power-of-two interval::

    new = (2**ob − 1) · 2**(fl2(r) − ob)          rescaling_rate = new / r

per channel (per-axis) or per tensor. The block's output stands for ``x · rescaling_rate`` (its
output quantizer uses ``s' = s · rescaling_rate``) and the next layer's float weights are divided
by ``rescaling_rate`` per input channel, so the float function is unchanged while the integer
codes use the whole output range. As MetaTF, this is float-only: conversion reads the integers.
"""
from __future__ import annotations

import numpy as np

from .graph import NEURAL

#: Layers that end a neural block (the output quantizer sees a QFloat).
BLOCK_KINDS = NEURAL + ("MaxPooling2D", "ReLU", "GlobalAveragePooling2D")
#: Layers the rescaling passes through to reach the next neural layer (per channel, positive
#: scaling commutes with max and average pooling).
THROUGH = ("MaxPooling2D", "GlobalAveragePooling2D")
#: Axis of the input channels in each neural kernel (Keras layout).
INPUT_AXIS = {"Conv2D": -2, "DepthwiseConv2D": -2, "Dense": -2, "Conv2DTranspose": -1}


def equalized_range(range_max, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The equalized range ``new`` of an observed range ``r`` and the rate ``new / r``.

    ``new = (2**bits − 1) · 2**(floor(log2(r)) − bits)`` per value; a zero range (a channel
    that never fires) is kept with rate 1. Float32, as the calibrated ranges and weights are.

    Example: ``r = 5.3``, 8 bits: ``fl2 = 2``, ``new = 255 · 2**-6 = 3.984375``, rate
    ``3.984375 / 5.3 = 0.75177``.

    Returns:
        ``(new, rate)``, float32 arrays of the shape of ``range_max``.
    """
    r = np.asarray(range_max, np.float32)
    positive = r > 0
    safe = np.where(positive, r, np.float32(1.0))
    # floor(log2 r) from the exponent, exact whatever log2 rounds to: r = m·2**e, m in [0.5, 1)
    floor_log2 = np.frexp(safe)[1] - 1
    new = (np.float32(2**bits - 1) * np.exp2(floor_log2 - bits)).astype(np.float32)
    return (np.where(positive, new, r).astype(np.float32),
            np.where(positive, new / safe, np.float32(1.0)).astype(np.float32))


def next_neural(graph, name: str, per_tensor: bool):
    """The neural node whose input is rescaled with the output of ``name``, or None (a fan-out,
    a merge, a Flatten of a per-axis range, the model output)."""
    while True:
        consumers = graph.consumers(name)
        if len(consumers) != 1:
            return None
        node = consumers[0]
        if node.class_name in INPUT_AXIS:
            return node
        if node.class_name in THROUGH or (per_tensor and node.class_name in ("Flatten",
                                                                             "Reshape")):
            name = node.name
            continue
        return None


def equalize(graph, plan: dict, ranges: dict, per_tensor: dict) -> dict:
    """Equalize every eligible neural block end, in place.

    Args:
        graph: the sanitized float graph; the next layers' kernels are replaced by their
            divided copies.
        plan: ``plan_blocks`` output (``output_bits`` of each block end).
        ranges: {block end: observed range (per channel, or per tensor broadcast)}; eligible
            entries are replaced by the equalized range.
        per_tensor: {block end: whether its quantizer is per tensor}.

    Returns:
        {block end: rescaling rate per channel (float32)} for the ends that were equalized.
    """
    rates = {}
    for node in graph.nodes:
        bits = plan[node.name].get("output_bits")
        if bits is None or node.class_name not in BLOCK_KINDS or node is graph.nodes[-1]:
            continue
        target = next_neural(graph, node.name, per_tensor[node.name])
        if target is None or not target.weights:
            continue
        r = np.asarray(ranges[node.name], np.float32)
        if per_tensor[node.name]:  # one rate: it also crosses a Flatten
            r = np.full_like(r, r.max(initial=0.0))
        new, rate = equalized_range(r, bits)
        kernel = np.asarray(target.weights[0], np.float32)
        axis = INPUT_AXIS[target.class_name] % kernel.ndim
        shape = [1] * kernel.ndim
        shape[axis] = -1
        divisor = rate[:1] if per_tensor[node.name] else rate.reshape(shape)
        target.weights = [kernel / divisor] + list(target.weights[1:])
        ranges[node.name] = new
        rates[node.name] = rate
    return rates

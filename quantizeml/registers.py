"""Fitting a block's threshold and act_step into the Akida 1.0 neuron registers, exactly.

A block's act_step and threshold are integer-potential quantities: act_step = output step /
potential scale (times H·W after a global average pooling, which Akida computes as a sum) and
threshold = rounding offset - H·W · integer bias. A fine weight scale (a small potential scale)
or a large pooled area can push them past the registers (act_step < 2**16 and a 20-bit signed
threshold on CNPs/FNPs). Clamping them, as other toolchains do, changes what the layer computes;
instead the weight scale of the offending output channels is made coarser by the excess factor,
which divides both quantities and keeps the quantized Keras model and the Akida model identical.
The cost, a coarser weight grid in those channels, is reported in a QuantizationWarning.

act_step itself is a fixed-point register with 4 fractional bits (Akida computes with
floor(act_step · 16) / 16), so every act_step set here, the final Dequantizer's divisor included,
is the nearest multiple of 1/16; where that moves a channel's step by more than GRID_TOLERANCE, a
QuantizationWarning names the layer, the channels and both steps.
"""
from __future__ import annotations

import warnings

import numpy as np

from .export import block_parameters
from .params import INPUT_LAYER_REGISTERS, LAYER_REGISTERS
from .quantizers import round_act_step
from .transforms import QuantizationWarning

#: Coarsening rounds before giving up (then cnn2snn reports the register issue); each round
#: multiplies by the measured excess plus a margin, so one round almost always suffices.
MAX_ROUNDS = 6
MARGIN = 1.02
#: Relative change of an act_step by the 1/16 grid above which quantize warns. Rounding to the
#: nearest 1/16 moves a step by at most 1/32, so only steps below about 1.6 (or raised to the
#: minimum 1/16) can exceed it; their output step and range then change by as much.
GRID_TOLERANCE = 0.02


def register_excess(params: dict, is_input_layer: bool) -> np.ndarray:
    """Per output channel: act_step and |threshold| relative to their register bounds; a channel
    fits when the result is < 1 (act_step < bound, |threshold| < 2**(bits-1))."""
    max_step, bits = INPUT_LAYER_REGISTERS if is_input_layer else LAYER_REGISTERS
    threshold = np.abs(np.asarray(params["threshold"], np.float64))
    step = np.asarray(params["act_step"], np.float64)
    return np.maximum(step / max_step, threshold / 2 ** (bits - 1))


def set_block_ranges(neural, pool, relu, dequantizer, input_scale, act_range, sum_size):
    """Freeze the activation (or the final divisor) of the block ``neural [> pool] > relu``,
    coarsening ``neural``'s weight scale where the block would not fit the registers.

    Args:
        neural: the block's quantized neural layer (scales already set from ``input_scale``).
        pool: its QuantizedMaxPool2D / QuantizedGlobalAveragePooling2D, or None.
        relu: its QuantizedReLU, or None for the last block (then ``dequantizer``).
        dequantizer: the model's Dequantizer when ``relu`` is None.
        input_scale: real value of one unit of the block's input integers, per input channel.
        act_range: calibrated activation range of ``relu`` (unused without one).
        sum_size: H·W of a global average pooling, else 1.

    Returns:
        The block's output scale per channel (``relu``) or None (last block).
    """
    total = np.ones(neural.weight_scale.shape, np.float64)
    for attempt in range(MAX_ROUNDS + 1):  # the last round only sets the ranges it ends with
        potential = neural.weight_scale.numpy().astype(np.float64)
        if relu is not None:
            output_scale = relu.set_activation_range(act_range, potential, sum_size)
            calibrated = relu.calibrated_act_step
        else:
            output_scale, calibrated = None, sum_size / potential
            dequantizer.set_divisor(round_act_step(calibrated))
        params = block_parameters(neural, pool, relu, dequantizer if relu is None else None)
        excess = register_excess(params, params["is_input_layer"])
        if np.all(excess < 1.0) or not np.all(np.isfinite(excess)) or attempt == MAX_ROUNDS:
            break
        factor = np.where(excess >= 1.0, excess * MARGIN, 1.0)
        if neural.per_tensor_weights:
            factor = np.full_like(factor, factor.max())
        total *= factor
        _coarsen(neural, input_scale, total)
    if np.any(total > 1.0):
        _warn_coarsened(neural, total, sum_size)
    used = np.asarray(params["act_step"], np.float64)
    _warn_off_grid(neural, relu, np.broadcast_to(calibrated, used.shape), used)
    return output_scale


def _coarsen(neural, input_scale, total):
    """Set the weight scales of ``neural`` ``total`` times coarser than its natural ones."""
    natural = neural.weight_quantizer.scale(neural.effective_kernel().numpy()) \
        if not hasattr(neural, "depthwise_scale") else None
    if natural is not None:
        neural.set_scales(input_scale, natural * total)
        return
    # Separable: the factor shared by every output channel goes half to the depthwise kernel
    # (per input channel) and half to the pointwise one, so neither loses all its levels.
    depthwise = float(np.sqrt(total.min()))
    neural.set_scales(input_scale, None, depthwise)  # natural pointwise scale over a coarser
    natural = neural.weight_scale.numpy().astype(np.float64)  # depthwise grid: x depthwise
    neural.set_scales(input_scale, natural * total / depthwise, depthwise)


def _warn_coarsened(neural, factor, sum_size):
    channels = int(np.sum(factor > 1.0))
    pooled = f" (its global average pooling sums {sum_size} positions)" if sum_size > 1 else ""
    warnings.warn(
        f"Layer '{neural.name}': weight scale of {channels} of {factor.size} output channels made "
        f"up to {float(factor.max()):.3g}x coarser so that threshold and act_step fit the Akida "
        f"1.0 registers{pooled}; the model stays exact but those channels lose weight precision. "
        "Check the quantized accuracy; fewer pooled positions or smaller biases avoid it.",
        QuantizationWarning, stacklevel=5)  # > set_block_ranges > _apply_ranges > quantize


def _warn_off_grid(neural, relu, calibrated, used):
    change = np.abs(used - calibrated) / np.maximum(calibrated, np.finfo(np.float64).tiny)
    bad = np.flatnonzero(change > GRID_TOLERANCE)
    if not bad.size:
        return
    worst = int(bad[np.argmax(change[bad])])
    listed = ", ".join(map(str, bad[:8])) + (", ..." if bad.size > 8 else "")
    part = f"its activation '{relu.name}'" if relu is not None else "the final Dequantizer"
    warnings.warn(
        f"Layer '{neural.name}' ({part}): act_step of {bad.size} of {used.size} channels "
        f"({listed}) moved by more than {GRID_TOLERANCE:.0%} to fit Akida's 1/16 act_step grid; "
        f"worst channel {worst}: calibrated {calibrated[worst]:.4g}, used {used[worst]:g} "
        f"({used[worst] / calibrated[worst] - 1:+.0%} output step). The model stays exact. An "
        "act_step this small means the potential is coarse for the output step: give this layer "
        "more weight bits or the layer before it more activation bits, or fine-tune (QAT) to "
        "adapt the weights to the used step.",
        QuantizationWarning, stacklevel=5)  # > set_block_ranges > _apply_ranges > quantize

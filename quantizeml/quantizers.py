"""Quantizers: pure functions (TensorFlow, with numpy twins) plus thin objects holding settings.

Every function used on the per-sample path of a quantized layer lives here, so a layer's ``call``
and its ``akida_parameters()`` export run the very same code. Rounding is ``round half to even``
(``tf.round`` == ``np.round``) everywhere; gradients use the straight-through estimator.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from .errors import QuantizationConfigError
from .params import ALLOWED_ACTIVATION_BITS, ALLOWED_INPUT_DATA_BITS, ALLOWED_WEIGHT_BITS

#: Exact integer range of float32 (|n| <= 2**24 are all representable).
FLOAT32_EXACT_BOUND = 2**24


def weight_range(bits: int) -> tuple[int, int]:
    """Return the (lowest, highest) integer weight of a ``bits``-bit Akida 1.0 weight.

    1 bit is binary {0, 1}; 2, 4 and 8 bits are symmetric ``±(2**(bits-1) - 1)`` (8-bit weights
    could use -128 but symmetric keeps sign flips exact).
    """
    if bits not in ALLOWED_WEIGHT_BITS:
        raise QuantizationConfigError(
            f"weight_bits={bits!r} is not supported; allowed: {ALLOWED_WEIGHT_BITS}."
        )
    if bits == 1:
        return 0, 1
    high = 2 ** (bits - 1) - 1
    return -high, high


#: Fractions of ``max|w| / high`` tried by the weight scale search (1.0 = plain max scaling).
SCALE_SEARCH = np.linspace(0.25, 1.0, 31)


#: Values per block of columns in the weight scale search: the temporaries of a block stay in the
#: cache (a 512x512 kernel: 66 -> 17 ms). The columns are independent and each one's error is summed
#: in the same order, so the blocks do not change any scale.
SEARCH_BLOCK_VALUES = 1 << 17


def _search_scale(flat: np.ndarray, magnitude: np.ndarray, bits: int) -> np.ndarray:
    """Per column, the candidate scale with the least squared rounding+clipping error."""
    width = max(1, SEARCH_BLOCK_VALUES // max(flat.shape[0], 1))
    if flat.shape[1] > width:
        return np.concatenate([_search_columns(flat[:, start:start + width],
                                               magnitude[start:start + width], bits)
                               for start in range(0, flat.shape[1], width)])
    return _search_columns(flat, magnitude, bits)


def _search_columns(flat: np.ndarray, magnitude: np.ndarray, bits: int) -> np.ndarray:
    low, high = weight_range(bits)
    best_scale, best_error = magnitude / high, np.full(flat.shape[1], np.inf)
    for fraction in SCALE_SEARCH:
        scale = np.where(magnitude > 0, fraction * magnitude / high, 1.0)
        error = ((flat - np.clip(np.round(flat / scale), low, high) * scale) ** 2).sum(axis=0)
        better = error < best_error
        best_scale, best_error = np.where(better, scale, best_scale), np.minimum(error,
                                                                               best_error)
    return best_scale


def compute_weight_scale(kernel: np.ndarray, bits: int, per_tensor: bool = False) -> np.ndarray:
    """Return the float32 scale per output channel (last axis) mapping ``kernel`` onto its ints.

    The scale minimises the squared quantization error ``||w − scale·q(w/scale)||²`` among
    ``fraction · max|w| / high`` (1 bit: ``max(w)``), fractions in ``SCALE_SEARCH``: at low bit
    widths clipping a few large weights beats rounding most weights to 0. Per axis (over all axes
    but the last) or per tensor (repeated per channel). An all-zero channel would give scale 0 (a
    division by zero): it gets the mean scale of the other channels (1.0 if all are zero), so its
    ints are 0 and its bias stays representable.

    Raises:
        QuantizationConfigError: the kernel holds NaN or Inf.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if not np.all(np.isfinite(kernel)):
        raise QuantizationConfigError(
            "compute_weight_scale: kernel holds NaN or Inf values; fix the float weights."
        )
    _, high = weight_range(bits)
    flat = kernel.reshape(-1, kernel.shape[-1])
    magnitude = np.max(flat, axis=0) if bits == 1 else np.max(np.abs(flat), axis=0)
    magnitude = np.maximum(magnitude, 0.0)
    if per_tensor:
        whole = flat.reshape(-1, 1)
        top = np.array([magnitude.max() if magnitude.size else 0.0])
        scale = np.full_like(magnitude, _search_scale(whole, top, bits)[0] if top[0] > 0 else 0)
    else:
        scale = _search_scale(flat, magnitude, bits)
    scale = np.where(magnitude > 0 if not per_tensor else scale > 0, scale, 0.0)
    positive = scale > 0
    fill = scale[positive].mean() if positive.any() else 1.0
    scale = np.where(positive, scale, fill)
    return scale.astype(np.float32)


@tf.custom_gradient
def _ste_round(x):
    def grad(upstream):
        return upstream

    return tf.round(x), grad


def ste_clip(x: tf.Tensor, low: float, high: float) -> tf.Tensor:
    """Clip to [low, high] with a straight-through (identity) gradient, also where it clips."""
    @tf.custom_gradient
    def _clip(value):
        return tf.clip_by_value(value, low, high), lambda upstream: upstream

    return _clip(x)


def ste_round_clip(x: tf.Tensor, low: float, high: float) -> tf.Tensor:
    """Round half to even, clip to [low, high]; gradient: identity inside the range, else 0."""
    return tf.clip_by_value(_ste_round(x), low, high)


def quantize_weights(kernel_eff: tf.Tensor, scale: tf.Tensor, bits: int) -> tf.Tensor:
    """Return integer-valued float32 weights ``clip(round(kernel_eff / scale), low, high)``.

    Args:
        kernel_eff: float kernel with the input scale already folded in, output channels last.
        scale: float32 per-output-channel scale (broadcast on the last axis).
        bits: weight bits (see ``weight_range``).
    """
    low, high = weight_range(bits)
    return ste_round_clip(tf.cast(kernel_eff, tf.float32) / scale, float(low), float(high))


#: Akida's act_step register is fixed point with 4 fractional bits: the chip computes with
#: ``floor(act_step · 16) / 16`` (probed on the vendor runtime). quantize() emits multiples of 1/16.
ACT_STEP_FRACTION_BITS = 4
ACT_STEP_UNIT = 2.0**-ACT_STEP_FRACTION_BITS


def round_act_step(step) -> np.ndarray:
    """Return the act_step Akida can hold nearest to ``step``: a multiple of 1/16, at least 1/16.

    Float32, exact (k / 16 with k < 2**24 below the registers' 2**20; larger values are integers).
    Example: 0.7 -> 0.6875, 3.283 -> 3.3125, 0.01 -> 0.0625.
    """
    units = np.maximum(np.round(np.asarray(step, np.float64) / ACT_STEP_UNIT), 1.0)
    return (units * ACT_STEP_UNIT).astype(np.float32)


def floor_act_step_np(act_step) -> np.ndarray:
    """The act_step Akida computes with: ``floor(float32(act_step) · 16) / 16`` (float64)."""
    step = np.asarray(act_step, np.float32).astype(np.float64)
    return np.floor(step / ACT_STEP_UNIT) * ACT_STEP_UNIT


def is_act_step_on_grid(act_step) -> bool:
    """Whether every value is a positive multiple of 1/16 (Akida then uses it unchanged)."""
    step = np.asarray(act_step, np.float32).astype(np.float64)
    return bool(np.all(step > 0) and np.all(floor_act_step_np(step) == step))


def floor_act_step(act_step) -> tf.Tensor:
    """TensorFlow twin of ``floor_act_step_np`` (float64, exact)."""
    step = tf.cast(tf.cast(act_step, tf.float32), tf.float64)
    return tf.floor(step / ACT_STEP_UNIT) * ACT_STEP_UNIT


def activation_boundaries(threshold, act_step, bits: int) -> tf.Tensor:
    """Return float64 boundaries ``T + floor(n * s)``, shape (2**bits - 1, channels).

    ``s = floor_act_step(act_step) * 2**(4 - bits)`` (the value Akida computes with, equal to
    ``act_step`` for the multiples of 1/16 quantize emits): exact in float64, so the integer
    boundaries equal akida_core's whatever the platform.
    """
    if bits not in ALLOWED_ACTIVATION_BITS:
        raise QuantizationConfigError(
            f"activation bits={bits!r} is not supported; allowed: {ALLOWED_ACTIVATION_BITS}."
        )
    threshold = tf.cast(tf.convert_to_tensor(threshold), tf.float64)
    step = floor_act_step(act_step) * (2.0 ** (4 - bits))
    levels = tf.range(2**bits - 1, dtype=tf.float64)[:, None]
    return threshold[None, :] + tf.floor(levels * step[None, :])


def threshold_activation(potentials: tf.Tensor, boundaries: tf.Tensor, act_step, bits: int):
    """Return float32 levels ``sum_n [p > boundary_n]`` (0 .. 2**bits - 1) of integer potentials.

    Comparisons run in float64 (exact for any int32 potential). Gradient (straight-through): the
    slope ``1 / (act_step * 2**(4-bits))`` where the level is not saturated, 0 elsewhere.
    """
    step = floor_act_step(act_step) * (2.0 ** (4 - bits))
    low = boundaries[0]
    high = boundaries[-1] + step

    @tf.custom_gradient
    def _activate(p):
        p64 = tf.cast(p, tf.float64)
        out = tf.zeros_like(p64)
        for n in range(2**bits - 1):
            out += tf.cast(p64 > boundaries[n], tf.float64)

        def grad(upstream):
            inside = tf.logical_and(p64 > low - step, p64 <= high)
            # An act_step below 1/16 floors to 0 (no level width): keep the slope finite.
            slope = tf.where(inside, 1.0 / tf.maximum(step, ACT_STEP_UNIT), tf.zeros_like(p64))
            return upstream * tf.cast(slope, upstream.dtype)

        return tf.cast(out, tf.float32), grad

    return _activate(potentials)


def quantize_input(x, scale: float, zero_point: int, bits: int) -> tf.Tensor:
    """Return float32 integers ``clip(round(float32(x) / scale) + zero_point, 0, 2**bits - 1)``."""
    x = tf.cast(x, tf.float32)
    if scale != 1.0:
        x = x / tf.constant(scale, tf.float32)
    return tf.clip_by_value(tf.round(x) + float(zero_point), 0.0, float(2**bits - 1))


# ---- numpy twins (what cnn2snn / tests call on the integer side) ----

def activation_boundaries_np(threshold, act_step, bits: int) -> np.ndarray:
    """Numpy twin of ``activation_boundaries``: int64 array (2**bits - 1, channels)."""
    step = floor_act_step_np(act_step) * (2.0 ** (4 - bits))
    levels = np.arange(2**bits - 1, dtype=np.float64)[:, None]
    return np.asarray(threshold, np.int64)[None, :] + np.floor(levels * step[None, :]).astype(
        np.int64
    )


def threshold_activation_np(potentials, threshold, act_step, bits: int) -> np.ndarray:
    """Numpy twin of ``threshold_activation`` on int potentials: uint8 levels."""
    bounds = activation_boundaries_np(threshold, act_step, bits)
    p = np.asarray(potentials, np.int64)
    out = np.zeros(p.shape, np.uint8)
    for row in bounds:
        out += (p > row).astype(np.uint8)
    return out


def quantize_input_np(x, scale: float, zero_point: int, bits: int) -> np.ndarray:
    """Numpy twin of ``quantize_input``; returns the unsigned integers the Akida model receives."""
    x = np.asarray(x, np.float32)
    if scale != 1.0:
        x = x / np.float32(scale)
    out = np.clip(np.round(x) + np.float32(zero_point), 0, 2**bits - 1)
    return out.astype(np.uint8)


# ---- thin objects that hold settings ----

@dataclasses.dataclass(frozen=True)
class WeightQuantizer:
    """Weight quantizer settings: ``bits`` and per-axis (default) or per-tensor scale."""

    bits: int = 4
    per_tensor: bool = False

    def __post_init__(self):
        weight_range(self.bits)

    def scale(self, kernel) -> np.ndarray:
        """Return the frozen per-output-channel scale of a float kernel."""
        return compute_weight_scale(kernel, self.bits, self.per_tensor)

    def __call__(self, kernel_eff, scale) -> tf.Tensor:
        """Return the integer-valued weights (STE gradient)."""
        return quantize_weights(kernel_eff, scale, self.bits)


@dataclasses.dataclass(frozen=True)
class ActivationQuantizer:
    """Akida 1.0 activation settings: ``bits`` (1, 2 or 4), per-tensor or per-channel range."""

    bits: int = 4
    per_tensor: bool = True

    def __post_init__(self):
        if self.bits not in ALLOWED_ACTIVATION_BITS:
            raise QuantizationConfigError(
                f"ActivationQuantizer: bits={self.bits!r}; allowed: {ALLOWED_ACTIVATION_BITS}."
            )

    @property
    def levels(self) -> int:
        """Highest output level, ``2**bits - 1``."""
        return 2**self.bits - 1

    def __call__(self, potentials, threshold, act_step) -> tf.Tensor:
        """Return the activation levels of integer potentials."""
        bounds = activation_boundaries(threshold, act_step, self.bits)
        return threshold_activation(potentials, bounds, act_step, self.bits)


@dataclasses.dataclass(frozen=True)
class InputDataQuantizer:
    """Model-input settings: unsigned ``bits`` integers ``round(x / scale) + zero_point``."""

    bits: int = 8
    scale: float = 1.0
    zero_point: int = 0

    def __post_init__(self):
        if self.bits not in ALLOWED_INPUT_DATA_BITS + (8,):
            raise QuantizationConfigError(
                f"InputDataQuantizer: bits={self.bits!r}; allowed: 1, 2, 4 (InputData) or 8 "
                "(uint8 images)."
            )
        if not np.isfinite(self.scale) or self.scale <= 0:
            raise QuantizationConfigError(
                f"InputDataQuantizer: scale={self.scale!r} must be a finite positive number."
            )

    def __call__(self, x) -> tf.Tensor:
        """Return the float32 integers of ``x``."""
        return quantize_input(x, self.scale, self.zero_point, self.bits)

    def numpy(self, x) -> np.ndarray:
        """Return the uint8 integers of ``x`` (numpy twin)."""
        return quantize_input_np(x, self.scale, self.zero_point, self.bits)

"""Integer kernels of the Akida 1.0 activation: thresholds, act_step registers, predict.

Plain numpy functions; the loop references live in tests/akida_core/reference.py.
"""
import numpy as np

from .shared import FLOAT32_EXACT

def activation_boundaries(threshold, act_step, act_bits):
    """Integer potentials at which the activation level steps up, per neuron.

    Level n+1 is reached when p > T + n·s with s = act_step·2**(4 − act_bits). For integer p this is
    p > T + floor(n·s). float64 holds n·s exactly (n <= 15, act_step has a 24-bit mantissa and the
    power-of-two factor is exact), so floor is exact too. (Documentation and cross-checks; the runtime
    uses `threshold_activation`, which is proven equal below.)

    Returns:
        (2**act_bits − 1, units) int64 boundaries.
    """
    levels = 2 ** act_bits - 1
    step = act_step.astype(np.float64) * 2.0 ** (4 - act_bits)
    n = np.arange(levels, dtype=np.float64)[:, None]
    return threshold.astype(np.int64)[None, :] + np.floor(n * step).astype(np.int64)


#: Significant bits of a step that make the float32 activation exact (see `float32_exact_steps`).
FLOAT32_STEP_BITS = 20


def float32_exact_steps(act_step, act_bits) -> bool:
    """Whether every step s = act_step·2**(4−b) lets the float32 activation be exact.

    Why: write s = m·2**e with m odd. For an integer q, a non-integer x = q / s lies at least
    min(1/m, 1/s) away from every integer (q − n·s is a non-zero multiple of min(2**e, 1)). The
    float32 quotient is within 2**-24·|x| <= 2**-20 of x for |x| <= 16, the only range that matters
    (beyond it the level clips, and the sign is exact). So ceil is exact when m < 2**20 and
    s < 2**19 (then also 16·s + 1 < 2**24, so a potential inexact in float32 still clips right):
    a float32 mantissa whose last 4 of 24 bits are zero. Every register act_step (a multiple of
    1/16) below 2**16 qualifies, so the chip's own steps always take this path.
    """
    step = np.asarray(act_step, np.float32).astype(np.float64) * 2.0 ** (4 - act_bits)
    if not step.size or not np.all(np.isfinite(step)) or np.any(step <= 0) or step.max() >= 2.0 ** 19:
        return False
    mantissa, _ = np.frexp(step)
    integer = mantissa * 2.0 ** 24  # exact: a float32 mantissa has 24 bits
    return bool(np.all(np.mod(integer, 2.0 ** (24 - FLOAT32_STEP_BITS)) == 0))


ACT_STEP_FRACTION_BITS = 4
"""act_step is a fixed-point register with 4 fractional bits (probed on the vendor runtime)."""


def register_act_step(act_step):
    """The act_step Akida computes with: floor(act_step · 16) / 16, rounded toward zero.

    A float act_step that is not a multiple of 1/16 does not act as its float value on the chip:
    3.283 acts as 3.25, 0.1075 as 0.0625. The product and the floor are exact in float64 and the
    result (a float32 value times 16, floored, over 16) fits float32 exactly.

    Args:
        act_step: float array of steps (>= 1/16).

    Returns:
        float32 array of the same shape, every value a multiple of 1/16.
    """
    scale = 2.0 ** ACT_STEP_FRACTION_BITS
    steps = np.asarray(act_step, np.float32).astype(np.float64)
    return (np.floor(steps * scale) / scale).astype(np.float32)


def off_register_grid(act_step):
    """Boolean mask of the act_steps that are not a multiple of 1/16 (the chip floors them)."""
    steps = np.asarray(act_step, np.float32)
    return register_act_step(steps) != steps


def threshold_activation(potentials, threshold, act_step, act_bits):
    """Akida activation: clip(ceil((p − T) / (act_step·2**(4−b))), 0, 2**b − 1), exactly.

    Two exact evaluations. float32 when the potentials are float32 (exact integers < 2**24),
    |T| < 2**24 and `float32_exact_steps` holds (proof there). Otherwise float64: q = p − T is an
    exact integer and s = act_step·2**(4−b) = m·2**e with an odd m < 2**24; a non-integer q / s is
    at least 1/m >= 2**-24 (e < 0) or 1/s (e >= 0) away from every integer. Only x in (0, 16]
    matters (x <= 0 gives 0, larger x clip to 2**b − 1), where the correctly rounded float64
    quotient is within 16·2**-53 = 2**-49 of x: so for s < 2**49 ceil cannot cross an integer, and
    for larger s, x < 1 and ceil gives 1 either way.

    Args:
        potentials: (..., units) exact integer potentials (int or integer-valued float).
        threshold: (units,) int32 thresholds T.
        act_step: (units,) float32 steps, as the register holds them (see `register_act_step`).
        act_bits: 1, 2 or 4.

    Returns:
        (..., units) uint8 activation levels.
    """
    step = activation_step(potentials.dtype, threshold, act_step, act_bits)
    return activate(potentials, np.asarray(threshold).astype(step.dtype), step, act_bits)


def activation_step(potentials_dtype, threshold, act_step, act_bits):
    """The step s = act_step·2**(4−b) in the dtype `threshold_activation` proves exact for potentials of
    `potentials_dtype` (float32 or float64, see there). Depends on the variables only: a layer computes it
    once and passes it to `activate` with the threshold cast to the same dtype."""
    threshold = np.asarray(threshold)
    if potentials_dtype == np.float32 and float32_exact_steps(act_step, act_bits) and \
            (not threshold.size or int(np.abs(threshold.astype(np.int64)).max()) < FLOAT32_EXACT):
        dtype = np.float32
    else:
        dtype = np.float64
    return (act_step.astype(np.float64) * 2.0 ** (4 - act_bits)).astype(dtype)


def activate(potentials, threshold, step, act_bits):
    """clip(ceil((p − T) / s), 0, 2**b − 1) as uint8, computed in `step`'s dtype, which
    `activation_step` chose exact for these potentials; `threshold` is in that dtype too."""
    out = np.empty(potentials.shape, np.uint8)
    (rows, rows_out), threshold, step = row_view((potentials, out), threshold, step)
    # a new array (the caller's potentials are not changed); the cast to `step`'s dtype is exact there
    q = np.subtract(rows, threshold, dtype=step.dtype)
    q /= step
    np.ceil(q, out=q)
    # clip and cast in one pass: the clipped values are integers in [0, 15], exact in uint8
    q.clip(step.dtype.type(0), step.dtype.type(2 ** act_bits - 1), out=rows_out, casting="unsafe")
    return out


ROW_CHANNELS = 64
"""`row_view` repeats per-neuron constants along whole output rows below this many channels: numpy's inner loops
then run over a row instead of a few channels. The activation of 16 samples (7 December 2026, alternated):
64×64×16 1757 -> 988 µs, 14×14×32 101-129 -> 78-121 µs; from 64 channels on it was a wash (7×7×64 57 -> 71 and
43 -> 46 µs, 25×5×64 134 -> 140 and 106 -> 99 µs), as for the Akida 2.0 POST (v2_affine.TILE_CHANNELS)."""


def row_view(arrays, *constants):
    """(views of the (n, h, w, c) `arrays` as rows of whole output rows (w·c values), the per-channel `constants`
    repeated w times to match), or the arrays and constants unchanged when that gains nothing or cannot be a
    view (one position per row, ROW_CHANNELS channels or more, constants not one per channel, an array not
    C-contiguous). Elementwise operations give the same values either way."""
    shape = arrays[0].shape
    if len(shape) != 4 or shape[-2] < 2 or shape[-1] >= ROW_CHANNELS or \
            any(np.shape(v) != shape[-1:] for v in constants) or not all(a.flags.c_contiguous for a in arrays):
        return (arrays, *constants)
    width = shape[-2] * shape[-1]
    return (tuple(a.reshape(-1, width) for a in arrays), *(np.tile(v, shape[-2]) for v in constants))


def to_int32(potentials):
    """Exact integer potentials (any dtype) as int32 (the model bounds them within int32)."""
    return potentials.astype(np.int32)


def dequantize(potentials, threshold, act_step):
    """Akida predict: float32(p − T) / float32(act_step) per neuron (IEEE float32 division).

    `act_step` is the register value (`register_act_step`), as for the activation.
    """
    shifted = (potentials.astype(np.int64) - threshold.astype(np.int64)).astype(np.float32)
    return shifted / act_step.astype(np.float32)

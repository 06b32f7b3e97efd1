"""LUT activations of the Akida 2.0 scheme: which Keras activations become one, and their table.

Akida 2.0 applies any activation through one 2048-entry table shared by all channels
(akida2-layers.md §3 step 4): the neural layer's sums ``A`` are brought to an 11-bit index
``v = R(sat_32(A·activation_scales), activation_shift)`` and replaced by
``lut_values[clip(v, −1024, 1023) + 1024]``. Read as fixed point, ``v`` stands for ``v·2**-f``
(``f`` the fractional bits of that 11-bit per-tensor quantizer, conversion-v2.md §3 "LUT"), and the
entry for index ``i`` is ``rne(act(i·2**-f) / s_lut)``.

``s_lut = max|act| / (2**13 − 1)``: we take ``max|act|`` over the table's own arguments
``i·2**-f``, ``i = −1024..1023`` (every input the table can be asked about, the clipped ones
included). So the largest entry is exactly ±8191 and every entry fits 14 signed bits; the table
depends on the calibration only through ``f``. The entries are integers of value ``entry·s_lut``:
the activation's output quantizer rescales them like any other block sum.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

#: Keras activation names (``Activation(name)``, ``Conv2D(activation=name)``) applied through a
#: LUT, with the Keras function each one names (MetaTF converts these; conversion-v2.md §3).
LUT_ACTIVATIONS = {"gelu": "gelu", "swish": "silu", "silu": "silu", "hard_silu": "hard_silu",
                   "hard_swish": "hard_silu", "leaky_relu": "leaky_relu"}
#: Graph node classes applying a LUT activation (a PReLU becomes a LeakyReLU in sanitize).
LUT_CLASSES = ("Activation", "LeakyReLU")
#: Bits of the table index: the neural layer's per-tensor quantizer before the table.
INDEX_BITS = 11
#: Bits of the table entries (signed): the largest magnitude is 2**13 − 1.
ENTRY_BITS = 14
#: The table indices, lowest first (``lut_values[k]`` is the entry of index ``k − 1024``).
INDICES = np.arange(-(2 ** (INDEX_BITS - 1)), 2 ** (INDEX_BITS - 1))


def float_activation(name: str, negative_slope: float | None = None):
    """The Keras function of a LUT activation, as a callable on float tensors.

    Args:
        name: a key of ``LUT_ACTIVATIONS`` or one of its values.
        negative_slope: the slope of ``leaky_relu`` (None: Keras' default, 0.2).

    Raises:
        ValueError: ``name`` is not a LUT activation.
    """
    canonical = LUT_ACTIVATIONS.get(name, name)
    if canonical not in LUT_ACTIVATIONS.values():
        raise ValueError(f"activation={name!r} is not a LUT activation; allowed: "
                         f"{', '.join(sorted(LUT_ACTIVATIONS))}.")
    if canonical == "leaky_relu":
        slope = 0.2 if negative_slope is None else float(negative_slope)
        return lambda x: keras.activations.leaky_relu(x, negative_slope=slope)
    return keras.activations.get(canonical)


def lut_table(activation, input_frac: float) -> tuple[np.ndarray, float]:
    """The 2048 table entries of ``activation`` for an index with ``input_frac`` fractional bits.

    Args:
        activation: a callable on float64 tensors (``float_activation``).
        input_frac: fractional bits ``f`` of the 11-bit index.

    Returns:
        ``(entries, s_lut)``: float64 integers ``rne(act(i·2**-f) / s_lut)`` for ``i`` in
        ``INDICES`` (all within ±(2**13 − 1)), and the float value of one entry unit.
    """
    arguments = tf.constant(INDICES * 2.0 ** -float(input_frac), tf.float64)
    values = np.asarray(activation(arguments), np.float64)
    largest = float(np.abs(values).max())
    lut_scale = largest / (2 ** (ENTRY_BITS - 1) - 1) if largest > 0 else 1.0
    return np.round(values / lut_scale), lut_scale

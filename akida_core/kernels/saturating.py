"""Akida 1.0 saturating register sums: global 'average' pooling as the chip's sequential clipped sum.

The chip adds the potentials of every position into a signed register, clipping after each addition.
`global_sum_pool` keeps the exact plain sum wherever no running sum can reach a bound, and computes the
others from their prefix sums in closed form (`saturating_sum`), with the same integers as the loop.
"""
import numpy as np

from .shared import FLOAT32_EXACT


def global_sum_pool(potentials, bits):
    """Akida 1.0 global 'average' pooling: a saturating SUM of the potentials over H·W.

    The chip accumulates in a `bits`-bit signed register, pixel by pixel in row-major order
    (y, then x), clipping after every addition: acc = clip(acc + p[y, x]). No division.
    The result depends on the order only where a running sum touches a bound, so the exact
    plain sum is kept for every (sample, channel) whose sum of |p| stays inside the range (then no
    prefix sum can leave it); the others take the closed form of the sequential clip (`saturating_sum`).

    Args:
        potentials: (n, h, w, c) exact integer potentials (any dtype; |p| < 2**31).
        bits: width of the accumulator register (20 on Akida 1.0).

    Returns:
        (n, 1, 1, c) int64 pooled potentials in [−2**(bits−1), 2**(bits−1) − 1].
    """
    n, h, w, c = potentials.shape
    low, high = -2 ** (bits - 1), 2 ** (bits - 1) - 1
    # Every prefix sum lies within ±Σ|p|: where that stays in range, no addition clips and the result is the
    # plain sum. Both sums are BLAS products with ones, exact in any summation order where Σ|p| <= high
    # (every partial sum is an integer within ±high, below 2**24 for float32); above it, rounding is
    # monotone and the partial sums of |p| only grow, so the computed Σ|p| still exceeds high.
    flat = potentials.reshape(n, h * w, c)
    ones = np.ones(h * w, np.float32 if high < FLOAT32_EXACT else np.float64)
    out = (ones @ flat).astype(np.int64)
    touched = ones @ np.abs(flat) > high
    if touched.any():
        rows, cols = np.nonzero(touched)
        # int64: h·w < 2**21 (the model caps sizes) terms of |p| < 2**31 cannot overflow.
        prefix = np.cumsum(flat[rows, :, cols].astype(np.int64), axis=1)  # (pairs, pixels), the chip's order
        out[rows, cols] = _clip_prefix_sums(prefix, low, high)
    return out.reshape(n, 1, 1, c)


def saturating_sum(terms, low, high, initial=0):
    """acc = clip(acc + t, low, high) over the rows of `terms` in order, from acc = `initial`, per column.

    Short sums (or very many columns) step through the rows, vectorised over the columns. Longer ones use
    the closed form of the discrete two-sided Skorokhod map on [low, high] (Kruk, Lehoczky, Ramanan, Shreve
    2007): with the prefix sums P_k = initial + t_1 + ... + t_k (k = 1..n) and S_k = min(P_k, ..., P_n),
        result = P_n − max(min(0, S_1 − low), max_k min(P_k − high, S_k − low)),
    a cumulative sum, a suffix minimum and two reductions, with the same integers as the loop.

    Args:
        terms: (rows, columns) int64, |sum of any rows| < 2**62.
        low, high: the register's bounds (low <= 0 <= high, both within ±2**60).
        initial: the starting value(s) of the register, in [low, high] (scalar or per column).

    Returns:
        (columns,) int64 saturated sums.
    """
    rows, columns = terms.shape
    if rows <= SEQUENTIAL_ROWS or columns >= SEQUENTIAL_COLUMNS:
        acc = np.array(np.broadcast_to(np.asarray(initial, np.int64), (columns,)))
        for row in terms:
            acc += row
            np.maximum(acc, low, out=acc)  # two ufuncs: np.clip's wrapper costs more than either
            np.minimum(acc, high, out=acc)
        return acc
    # (columns, rows): numpy accumulates fast only along the contiguous axis
    prefix = np.cumsum(np.ascontiguousarray(terms.T, dtype=np.int64), axis=1)
    prefix += np.asarray(initial, np.int64)[..., None]
    return _clip_prefix_sums(prefix, low, high)


SEQUENTIAL_ROWS, SEQUENTIAL_COLUMNS = 4, 256
"""`saturating_sum` steps through the rows when there are at most SEQUENTIAL_ROWS of them or at least
SEQUENTIAL_COLUMNS columns (measured: there a row step costs less than the closed form's passes)."""


def _clip_prefix_sums(prefix, low, high):
    """`saturating_sum` from its prefix sums P_1..P_n (initial included) along the last axis, closed form."""
    # int64: |P| < 2**62 + 2**60 and bounds within ±2**60 keep S + (high − low) and P − high below 2**63.
    suffix_min = np.minimum.accumulate(prefix[..., ::-1], axis=-1)  # reversed: [..., j] = min of the last j+1
    floor = np.minimum(suffix_min[..., -1] - low, 0)
    # min(P_k − high, S_k − low) = min(P_k, S_k + high − low) − high, in place on the reversed suffix minima
    suffix_min += high - low
    np.minimum(suffix_min, prefix[..., ::-1], out=suffix_min)
    return prefix[..., -1] - np.maximum(floor, suffix_min.max(axis=-1) - high)

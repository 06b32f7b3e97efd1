"""The affine POST (kernels/v2_affine.py: float32, int32, float64) against the per-element POST of the
loop reference.

Random constants (bit widths 4..32, shifts ±31, scales 0..255, both bias rules, ReLU ceilings),
sums drawn over the whole static bound and at its ends, and at the ends of float32's exact range;
plus cases where float32 would round or int32 overflow and the constants must refuse them (the next
dtype, or the general path, then runs).
"""
import numpy as np
import pytest

from akida_core.kernels import v2_affine as affine

from . import reference_v2 as ref


def _reference(acc, bias, scales, shift, bb, pb, ob, rule, ceiling):
    """POST steps 2, 4, 6, 7 (akida2-layers.md §3) per element, Python ints."""
    out = np.empty(acc.shape, np.int64)
    for index in np.ndindex(acc.shape):
        a, f = int(acc[index]), index[-1]
        b = int(bias[f])
        value = ref.sat(a + b, bb) if rule == "input" else ref.sat(ref.sat(a, bb) + b, pb)
        if ceiling is not None:
            value = min(max(value, 0), int(ceiling[f]))
        out[index] = ref.out_clip(ref.R(ref.sat(value * int(scales[f]), pb), int(shift[f])), ob)
    return out.astype(ref.out_dtype(ob))


def _draw(rng):
    channels = int(rng.integers(1, 5))
    bb, pb = int(rng.integers(8, 33)), int(rng.integers(8, 33))
    ob = int(rng.choice([4, 8, 8, 16, 32]))
    rule = "input" if rng.random() < 0.25 else "standard"
    bias = ref_sat_array(rng.integers(-128, 128, channels) << rng.integers(0, 12, channels), pb)
    scales = rng.integers(0, 256, channels)
    scales[rng.random(channels) < 0.2] = 255
    low = -31 if rng.random() < 0.3 else -20
    shift = rng.integers(low, 3, channels) if rng.random() < 0.5 else np.full(channels, rng.integers(low, 3))
    ceiling = None
    if rng.random() < 0.5:
        ceiling = ref_sat_array(rng.integers(0, 256, channels) << rng.integers(0, 31, channels), pb)
    acc_bound = int(rng.choice([2 ** int(rng.integers(1, 31)), int(rng.integers(1, 2 ** 20))]))
    return bias, scales, shift, bb, pb, ob, rule, ceiling, acc_bound


def ref_sat_array(values, bits):
    return np.array([ref.sat(int(v), bits) for v in values], np.int64)


def _sums(rng, acc_bound, channels, dtype, scales):
    """Sums within ±acc_bound: random, the ends, and around float32's exact limit 2**24/S."""
    values = list(rng.integers(-acc_bound, acc_bound + 1, 40)) + [acc_bound, -acc_bound, 0, 1, -1]
    for s in scales:
        if s:
            edge = (1 << 24) // int(s)
            values += [v for v in (edge - 1, edge, edge + 1, -edge, -edge - 1) if abs(v) <= acc_bound]
    acc = np.array(values, np.int64)[:, None].repeat(channels, axis=1)
    return acc.astype(dtype)


@pytest.mark.parametrize("seed", range(500))
def test_affine_post_equals_the_reference_whenever_the_constants_allow_it(seed):
    rng = np.random.default_rng(seed)
    bias, scales, shift, bb, pb, ob, rule, ceiling, acc_bound = _draw(rng)
    taken = []
    for dtype in (np.float32, np.int32, np.float64):
        constants = affine.affine_constants(bias, scales, shift, bb, pb, ob, acc_bound, dtype, ceiling, rule)
        if constants is None:
            continue
        taken.append(dtype)
        acc = _sums(rng, acc_bound, len(bias), np.float32 if acc_bound < 2 ** 24 else np.float64, scales)
        expected = _reference(acc, bias, scales, shift, bb, pb, ob, rule, ceiling)
        got = affine.affine_post(acc.copy(), constants, inplace=True)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected, err_msg=f"{dtype.__name__} {constants}")
    if np.float32 in taken or np.int32 in taken:
        assert np.float64 in taken  # float64's interval contains float32's; int32's bound is tighter


def test_every_path_is_exercised():
    """Each dtype is taken for many draws, int32 often where float32 is refused (its place in the layers'
    order of preference: float32, int32, float64), and some draws take none (the general path). float64
    alone is rare here: test_int32_takes_the_sums_float32_would_round_and_refuses_an_overflow builds it."""
    taken = {np.float32: 0, np.int32: 0, np.float64: 0}
    first_int32 = none = 0
    for seed in range(500):
        bias, scales, shift, bb, pb, ob, rule, ceiling, acc_bound = _draw(np.random.default_rng(seed))
        made = [dtype for dtype in (np.float32, np.int32, np.float64)
                if affine.affine_constants(bias, scales, shift, bb, pb, ob, acc_bound, dtype, ceiling, rule)]
        for dtype in made:
            taken[dtype] += 1
        first_int32 += bool(made) and made[0] == np.int32
        none += not made
    assert min(taken.values()) >= 25 and first_int32 >= 25 and none >= 25, (taken, first_int32, none)


def test_float32_is_refused_where_it_would_round_inside_the_output_range():
    # S = 251, s = -20: outputs 0..127 need |acc·S| up to 127.5·2**20 > 2**24, where float32 rounds;
    # acc = 256922 gives 61 exactly, 62 through float32 (found by search)
    bias, scales, shift = np.array([0]), np.array([251]), np.array([-20])
    bound = 2 ** 20
    assert affine.affine_constants(bias, scales, shift, 32, 32, 8, bound, np.float32) is None
    constants = affine.affine_constants(bias, scales, shift, 32, 32, 8, bound, np.float64)
    acc = np.array([[256922], [390605], [0], [-bound], [bound]], np.int64)
    naive = np.floor(acc.astype(np.float32) * np.float32(251 * 2.0 ** -20) + np.float32(0.5))
    exact = _reference(acc, bias, scales, shift, 32, 32, 8, "standard", None)
    assert exact[:2, 0].tolist() == [61, 93] and naive[:2, 0].tolist() == [62, 94]
    np.testing.assert_array_equal(affine.affine_post(acc.astype(np.float32), constants), exact)


def test_int32_takes_the_sums_float32_would_round_and_refuses_an_overflow():
    # the case above: |acc·M + K| <= 2**20·251 + 2**19 < 2**31, so int32 holds every value; its right
    # shift by 20 is the floor (61, not float32's 62)
    bias, scales, shift = np.array([0]), np.array([251]), np.array([-20])
    constants = affine.affine_constants(bias, scales, shift, 32, 32, 8, 2 ** 20, np.int32)
    assert constants.dtype == np.int32 and int(constants.shift) == 20 and np.ndim(constants.shift) == 0
    acc = np.array([[256922], [390605], [0], [-2 ** 20], [2 ** 20], [-1]], np.int64)
    exact = _reference(acc, bias, scales, shift, 32, 32, 8, "standard", None)
    for dtype in (np.float32, np.float64, np.int64):
        np.testing.assert_array_equal(affine.affine_post(acc.astype(dtype), constants), exact)
    # (2**23 + 2**16) · 255 > 2**31: some sums would overflow int32, which is not monotone; float64 holds
    wide = 2 ** 23 + 2 ** 16
    assert affine.affine_constants(bias, np.array([255]), shift, 32, 32, 8, wide - 2 ** 16, np.int32) is not None
    assert affine.affine_constants(bias, np.array([255]), shift, 32, 32, 8, wide, np.int32) is None
    assert affine.affine_constants(bias, np.array([255]), shift, 32, 32, 8, wide, np.float64) is not None
    # a left shift multiplies M and K: 2**21 · 251 · 2**2 < 2**31 < 2**22 · 251 · 2**2 (32-bit outputs)
    assert affine.affine_constants(bias, scales, np.array([2]), 32, 32, 32, 2 ** 21, np.int32) is not None
    assert affine.affine_constants(bias, scales, np.array([2]), 32, 32, 32, 2 ** 22, np.int32) is None


def test_int32_shifts_per_channel_and_left_shifts():
    """Different right shifts per channel stay an array; shifts >= 0 fold 2**s into M and K (no shift)."""
    bias, scales = np.array([5, -9, 100]), np.array([200, 3, 77])
    for shift in (np.array([-3, -7, -12]), np.array([0, 1, 2])):
        constants = affine.affine_constants(bias, scales, shift, 24, 32, 16, 2 ** 12, np.int32)
        assert constants is not None and constants.dtype == np.int32
        assert np.ndim(constants.shift) == (1 if shift[0] < 0 else 0)
        acc = np.random.default_rng(0).integers(-2 ** 12, 2 ** 12 + 1, (50, 3))
        expected = _reference(acc, bias, scales, shift, 24, 32, 16, "standard", None)
        np.testing.assert_array_equal(affine.affine_post(acc.astype(np.float32), constants), expected)


def test_float32_is_taken_when_the_ends_of_its_exact_range_saturate():
    # s = -14: 2**24 / S maps to >= 2**10 > 127, so every sum beyond float32's exact range saturates
    bias, scales, shift = np.array([7, -3]), np.array([255, 200]), np.array([-14, -14])
    constants = affine.affine_constants(bias, scales, shift, 28, 32, 8, 2 ** 22, np.float32,
                                        ceiling=np.array([2 ** 31 - 1] * 2))
    assert constants is not None and constants.low == 0 and not constants.floor
    acc = np.array([[-2 ** 22] * 2, [-1, -1], [0, 0], [1000, 1000], [2 ** 16 + 3] * 2, [2 ** 22] * 2], np.float32)
    expected = _reference(acc, bias, scales, shift, 28, 32, 8, "standard", np.array([2 ** 31 - 1] * 2))
    np.testing.assert_array_equal(affine.affine_post(acc, constants), expected)


def test_a_saturating_buffer_or_ceiling_inside_the_output_range_is_refused():
    bias, scales, shift = np.array([0]), np.array([1]), np.array([0])
    # bb = 6: sat_bb clips acc to 31 while outputs reach 127
    assert affine.affine_constants(bias, scales, shift, 6, 32, 8, 100, np.float64) is None
    # ReLU ceiling 50 below the top output 127
    assert affine.affine_constants(bias, scales, shift, 32, 32, 8, 100, np.float64, ceiling=np.array([50])) is None
    # within bounds that never reach them it is taken
    assert affine.affine_constants(bias, scales, shift, 6, 32, 8, 31, np.float64) is not None
    assert affine.affine_constants(bias, scales, shift, 32, 32, 8, 50, np.float64, ceiling=np.array([50]))


@pytest.mark.parametrize("acc_dtype, dtype, shift", [(np.float32, np.float32, -14), (np.float32, np.float64, -20),
                                                     (np.int64, np.float64, -3), (np.float64, np.float64, 2),
                                                     (np.float32, np.int32, -20), (np.int64, np.int32, 1)])
def test_chunked_affine_post_equals_one_pass(monkeypatch, acc_dtype, dtype, shift):
    rng = np.random.default_rng(abs(shift))
    channels = 7
    bias, scales = rng.integers(-300, 300, channels), rng.integers(0, 256, channels)
    shifts = np.full(channels, shift)
    constants = affine.affine_constants(bias, scales, shifts, 32, 32, 8, 2 ** 20, dtype)
    assert constants is not None and (constants.floor or dtype == np.int32)
    acc = rng.integers(-2 ** 20, 2 ** 20 + 1, (3, 101, 99, channels)).astype(acc_dtype)  # > CHUNK_VALUES
    assert acc.size > affine.CHUNK_VALUES
    chunked = affine.affine_post(acc.copy(), constants, inplace=True)
    monkeypatch.setattr(affine, "CHUNK_VALUES", acc.size)
    np.testing.assert_array_equal(chunked, affine.affine_post(acc.copy(), constants))
    rows = rng.integers(0, acc.shape[1], 3)
    np.testing.assert_array_equal(chunked[:, rows], _reference(acc[:, rows], bias, scales, shifts, 32, 32, 8,
                                                               "standard", None))


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.float64])
def test_rows_with_repeated_constants_equal_the_per_channel_map(monkeypatch, dtype):
    """Below TILE_CHANNELS channels the sums are viewed as whole output rows against the constants repeated
    along them (made once per width); the outputs equal the per-channel broadcast's."""
    rng = np.random.default_rng(7)
    channels = 5
    bias, scales = rng.integers(-300, 300, channels), rng.integers(0, 256, channels)
    shifts = rng.integers(-20, -8, channels)
    constants = affine.affine_constants(bias, scales, shifts, 32, 32, 8, 2 ** 18, dtype, np.full(channels, 2 ** 30))
    assert constants is not None and constants.dtype == dtype
    acc = rng.integers(-2 ** 18, 2 ** 18 + 1, (2, 9, 13, channels)).astype(np.float32)
    tiled = affine.affine_post(acc.copy(), constants, inplace=True)
    assert 13 in constants._tiles
    monkeypatch.setattr(affine, "TILE_CHANNELS", 0)
    np.testing.assert_array_equal(tiled, affine.affine_post(acc.copy(), constants, inplace=True))
    expected = _reference(acc.reshape(-1, channels), bias, scales, shifts, 32, 32, 8, "standard",
                          np.full(channels, 2 ** 30)).reshape(acc.shape)
    np.testing.assert_array_equal(tiled, expected)

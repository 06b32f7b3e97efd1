"""Fast kernels equal the loop references (tests/akida_core/reference.py) on random cases."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from akida_core import kernels
from akida_core.enums import Padding

from . import reference as ref


@st.composite
def conv_case(draw):
    kernel = draw(st.sampled_from([1, 3, 5]))
    stride = draw(st.integers(1, min(kernel, 3)))
    same = draw(st.booleans())
    low = 1 if same else kernel
    h, w = draw(st.integers(low, 8)), draw(st.integers(low, 8))
    c, f, n = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    in_bits = draw(st.sampled_from([1, 2, 4, 8]))
    w_bits = draw(st.sampled_from([1, 2, 4, 8]))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    low_w, high_w = {1: (0, 1), 2: (-1, 1), 4: (-7, 7), 8: (-128, 127)}[w_bits]
    x = rng.integers(0, 2 ** in_bits, (n, h, w, c))
    weights = rng.integers(low_w, high_w + 1, (kernel, kernel, c, f))
    return x, weights, (stride, stride), same, int(rng.integers(0, 2 ** in_bits))


@given(conv_case())
def test_conv2d_matches_loop_reference(case):
    x, weights, strides, same, pad_value = case
    padding = Padding.Same if same else Padding.Valid
    got = kernels.conv2d(x, weights, strides, padding, pad_value)
    np.testing.assert_array_equal(got, ref.correlate(x, weights, strides, same, pad_value))


@given(conv_case())
def test_separable_matches_loop_reference(case):
    x, weights, strides, same, _ = case
    rng = np.random.default_rng(int(weights.sum()) % 1000)
    depthwise = rng.integers(-7, 8, (*weights.shape[:2], x.shape[3], 1))
    pointwise = rng.integers(-7, 8, (1, 1, x.shape[3], weights.shape[3]))
    padding = Padding.Same if same else Padding.Valid
    got = kernels.separable_conv2d(x, depthwise[::-1, ::-1, :, 0], pointwise[0, 0], strides, padding)
    np.testing.assert_array_equal(got, ref.separable(x, depthwise, pointwise, strides, same))


@given(st.integers(1, 3), st.integers(1, 3), st.booleans(), st.integers(0, 2 ** 32 - 1))
def test_max_pool_matches_loop_reference(size, stride, same, seed):
    stride = min(stride, size)
    rng = np.random.default_rng(seed)
    p = rng.integers(-1000, 1000, (2, 7, 6, 3)).astype(np.int32)
    padding = Padding.Same if same else Padding.Valid
    got = kernels.max_pool2d(p, (size, size), (stride, stride), padding)
    np.testing.assert_array_equal(got, ref.max_pool(p, (size, size), (stride, stride), same))


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.booleans(),
       st.integers(0, 2 ** 32 - 1))
def test_max_pool_of_tiling_windows_matches_the_per_tap_maximum(ph, pw, rows, cols, floats, seed):
    # windows that tile the input (stride = size): the reshaped fast path of max_pool2d
    rng = np.random.default_rng(seed)
    p = rng.integers(-1000, 1000, (2, rows * ph, cols * pw, 3)).astype(np.float32 if floats else np.int32)
    for padding in (Padding.Same, Padding.Valid):
        got = kernels.max_pool2d(p, (ph, pw), (ph, pw), padding)
        expected = np.stack([p[:, i::ph, j::pw] for i in range(ph) for j in range(pw)]).max(axis=0)
        np.testing.assert_array_equal(got, expected)
        assert got.dtype == p.dtype and not np.shares_memory(got, p)


@given(st.sampled_from([1, 2, 4]), st.integers(0, 2 ** 32 - 1))
def test_activation_matches_exact_rational_formula(act_bits, seed):
    rng = np.random.default_rng(seed)
    units = 4
    threshold = rng.integers(-300, 300, units).astype(np.int32)
    # mix awkward float32 steps with exact halves so potentials land on and next to boundaries
    act_step = np.array([0.0625, 1.5, 3.3, rng.uniform(0.0625, 40)], np.float32)
    p = rng.integers(-400, 1200, (50, units)).astype(np.int32)
    expected = ref.activation(p, threshold, act_step, act_bits)
    np.testing.assert_array_equal(kernels.threshold_activation(p, threshold, act_step, act_bits), expected)
    boundaries = kernels.activation_boundaries(threshold, act_step, act_bits)
    np.testing.assert_array_equal((p[..., None, :] > boundaries).sum(axis=-2), expected)


def test_activation_boundaries_land_exactly_on_ties():
    # act_step 2, 4 bits, T=10: p=11 -> 1, 12 -> 1 (tie: ceil(1) = 1), 13 -> 2, 39 -> 15 (reference sheet)
    p = np.array([[10], [11], [12], [13], [39], [40], [1000]], np.int32)
    got = kernels.threshold_activation(p, np.array([10], np.int32), np.array([2.0], np.float32), 4)
    assert got.ravel().tolist() == [0, 1, 1, 2, 15, 15, 15]


@given(st.integers(-2 ** 31, 2 ** 31 - 1), st.integers(-2 ** 31, 2 ** 31 - 1),
       st.floats(0.0625, 2.0 ** 40, width=32), st.sampled_from([1, 2, 4]))
def test_activation_exact_on_extreme_values(p, threshold, act_step, act_bits):
    t = np.array([threshold], np.int32)
    s = np.array([act_step], np.float32)
    got = kernels.threshold_activation(np.array([[p]], np.int64), t, s, act_bits)
    np.testing.assert_array_equal(got, ref.activation(np.array([[p]]), t, s, act_bits))


def test_fully_connected_column_major_matches_reference():
    from akida_core.layers.fully_connected import row_major_weights
    rng = np.random.default_rng(3)
    x = rng.integers(0, 16, (3, 4, 5, 2))
    w = rng.integers(-7, 8, (1, 1, 40, 6))
    got = kernels.dense(x.reshape(3, -1), row_major_weights(w[0, 0], (4, 5, 2)))
    np.testing.assert_array_equal(got, ref.fully_connected(x, w).reshape(3, 6))


def test_global_sum_pool_is_a_sum():
    p = np.arange(24, dtype=np.int32).reshape(1, 2, 3, 4)
    assert kernels.global_sum_pool(p, 20).ravel().tolist() == [60, 66, 72, 78]


def test_activation_hits_exact_ties_for_every_step():
    # potentials exactly on T + n*s must stay at level n (ceil of an exact integer)
    rng = np.random.default_rng(0)
    steps = (rng.integers(1, 2 ** 12, 200) / 16.0).astype(np.float32)
    for step in steps:
        n = np.arange(16)
        p = (n * np.float64(step)).astype(np.float64)
        p = p[p == np.floor(p)]
        got = kernels.threshold_activation(p[:, None], np.zeros(1, np.int32), np.array([step], np.float32), 4)
        np.testing.assert_array_equal(got.ravel(), np.minimum(np.round(p / np.float64(step)), 15))


@pytest.mark.parametrize("bound, dtype", [(2 ** 24 - 1, np.float32), (2 ** 24, np.float64),
                                          (2 ** 53 - 1, np.float64)])
def test_accumulator_dtype_follows_the_exact_bound(bound, dtype):
    assert kernels.accumulator_dtype(bound, 1, 1) is dtype


def test_accumulator_dtype_refuses_inexact_sums():
    with pytest.raises(OverflowError):
        kernels.accumulator_dtype(2 ** 30, 2 ** 30, 8)


def test_float64_path_is_exact_beyond_float32_range():
    # 8-bit weights x 255 inputs x 1000 fan-in = 32.6 M > 2**24: float32 would round, float64 must not
    x = np.full((1, 1, 1, 1000), 255, np.int64)
    x[0, 0, 0, ::7] = 254
    w = np.full((1, 1, 1000, 1), -128, np.int64)
    w[::3] = 127
    got = kernels.conv2d(x, w, (1, 1), Padding.Valid)
    assert int(got[0, 0, 0, 0]) == int((x.reshape(-1) * w.reshape(-1)).sum())


def test_dequantize_is_float32_division():
    p = np.array([[7, -3]], np.int32)
    got = kernels.dequantize(p, np.array([2, -1], np.int32), np.array([0.3, 1.5], np.float32))
    expected = np.array([[5, -2]], np.float32) / np.array([0.3, 1.5], np.float32)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


def _round_to_bits(value, bits):
    mantissa, exponent = np.frexp(np.float64(value))
    return np.float32(np.ldexp(np.round(mantissa * 2.0 ** bits) / 2.0 ** bits, exponent))


@given(st.sampled_from([1, 2, 4]), st.integers(0, 2 ** 32 - 1),
       st.floats(0.0625, 2.0 ** 15, width=32), st.integers(0, 2 ** 23))
def test_float32_activation_path_is_exact(act_bits, seed, raw_step, spread):
    """Steps of <= 20 significant bits take the float32 path: equal to exact rationals, on and
    next to every boundary, for potentials up to 2**24 and thresholds up to 2**23."""
    rng = np.random.default_rng(seed)
    act_step = np.array([_round_to_bits(raw_step, kernels.FLOAT32_STEP_BITS), 0.0625, 1.5],
                        np.float32)
    assert kernels.float32_exact_steps(act_step, act_bits)
    threshold = rng.integers(-spread, spread + 1, 3).astype(np.int32)
    step = act_step.astype(np.float64) * 2.0 ** (4 - act_bits)
    n = rng.integers(-1, 18, (40, 3))
    near = np.floor(threshold + n * step) + rng.integers(-1, 2, (40, 3))  # at/next to boundaries
    far = rng.integers(-2 ** 24 + 1, 2 ** 24, (40, 3))
    p = np.clip(np.concatenate([near, far]), -2 ** 24 + 1, 2 ** 24 - 1).astype(np.float32)
    expected = ref.activation(p.astype(np.int64), threshold, act_step, act_bits)
    np.testing.assert_array_equal(kernels.threshold_activation(p, threshold, act_step, act_bits),
                                  expected)


@pytest.mark.parametrize("act_step, exact", [
    ([1.0, 0.0625, 4095 / 16], True),
    ([3.3], False),                       # 24 significant bits: float64 path
    ([2.0 ** 16 - 1.0 / 16], True),       # 20 significant bits, 1-bit step just below 2**19
    ([2.0 ** 16], False),                 # its 1-bit step 2**19 is too large
    ([0.0], False), ([np.inf], False), ([], False)])
def test_float32_exact_steps(act_step, exact):
    assert kernels.float32_exact_steps(np.array(act_step, np.float32), 1) is exact


def _saturating_loop(terms, low, high, initial=0):
    out = []
    for column, acc in zip(np.asarray(terms).T, np.broadcast_to(initial, np.shape(terms)[1:]).tolist()):
        for t in column:
            acc = min(max(acc + int(t), low), high)
        out.append(acc)
    return out


def _closed_form(terms, low, high, initial=0):
    """saturating_sum's closed-form path, whatever the shape."""
    prefix = np.cumsum(np.asarray(terms, np.int64).T, axis=1) + np.asarray(initial, np.int64)[..., None]
    return kernels.saturating._clip_prefix_sums(prefix, low, high)


@given(st.integers(1, 70), st.integers(1, 4), st.sampled_from([8, 2 ** 19, 2 ** 21]), st.integers(0, 2 ** 32 - 1))
def test_saturating_sum_equals_the_sequential_clip(rows, columns, scale, seed):
    # every length, values from far inside to far beyond the 20-bit register
    terms = np.random.default_rng(seed).integers(-scale, scale, (rows, columns)).astype(np.int64)
    low, high = -2 ** 19, 2 ** 19 - 1
    expected = _saturating_loop(terms, low, high)
    assert kernels.saturating.saturating_sum(terms, low, high).tolist() == expected
    assert _closed_form(terms, low, high).tolist() == expected


@st.composite
def saturation_case(draw):
    """Terms, bounds (low <= 0 <= high, possibly both 0) and initial register values (bounds included)."""
    low, high = -draw(st.integers(0, 40)), draw(st.integers(0, 40))
    rows, columns = draw(st.integers(0, 12)), draw(st.integers(1, 3))
    term = st.one_of(st.integers(-60, 60), st.sampled_from([0, low, high, -2 ** 58, 2 ** 58 - 1]))
    terms = np.array(draw(st.lists(st.lists(term, min_size=columns, max_size=columns),
                                   min_size=rows, max_size=rows)), np.int64).reshape(rows, columns)
    initial = draw(st.lists(st.one_of(st.integers(low, high), st.sampled_from([low, high])),
                            min_size=columns, max_size=columns))
    return terms, low, high, np.array(initial, np.int64)


@given(saturation_case())
def test_saturating_sum_property_against_the_loop(case):
    # small bounds, so clips happen often; huge terms (12 of them sum below 2**62) jump from bound to bound
    terms, low, high, initial = case
    expected = _saturating_loop(terms, low, high, initial)
    assert kernels.saturating.saturating_sum(terms, low, high, initial).tolist() == expected
    if len(terms):
        assert _closed_form(terms, low, high, initial).tolist() == expected  # also on the sequential path's shapes


def test_saturating_sum_edge_cases():
    total = kernels.saturating.saturating_sum
    assert total(np.zeros((9, 2), np.int64), 0, 0).tolist() == [0, 0]  # a register of one value
    assert total(np.array([[5, -5]] * 9), 0, 0).tolist() == [0, 0]
    assert total(np.zeros((9, 2), np.int64), -8, 7, np.array([-8, 7])).tolist() == [-8, 7]  # all terms zero
    assert total(np.zeros((0, 2), np.int64), -8, 7, 3).tolist() == [3, 3]  # no terms: the initial value
    assert total(np.array([[2 ** 60, -2 ** 60]] * 2 + [[-1, 1]] * 7), -8, 7).tolist() == [0, -1]


def test_saturating_sum_of_many_terms_and_columns_takes_both_paths_and_equals_the_loop():
    rng = np.random.default_rng(5)
    for shape in [(125, 9), (3, 300), (40, kernels.saturating.SEQUENTIAL_COLUMNS)]:
        terms = rng.integers(-2 ** 18, 2 ** 18, shape).astype(np.int64)
        terms[:40, 0] = 2 ** 17  # saturates early, then comes back
        initial = rng.integers(-2 ** 19, 2 ** 19, shape[1])
        expected = _saturating_loop(terms, -2 ** 19, 2 ** 19 - 1, initial)
        assert kernels.saturating.saturating_sum(terms, -2 ** 19, 2 ** 19 - 1, initial).tolist() == expected
        assert _closed_form(terms, -2 ** 19, 2 ** 19 - 1, initial).tolist() == expected


def test_saturating_sum_hand_examples():
    low, high = -8, 7
    assert kernels.saturating.saturating_sum(np.array([[5], [5], [-3]]), low, high).tolist() == [4]   # 7, then 4
    assert kernels.saturating.saturating_sum(np.array([[-20], [3], [30], [-1]]), low, high).tolist() == [6]
    assert kernels.saturating.saturating_sum(np.array([[2]]), low, high).tolist() == [2]


@pytest.mark.parametrize("seed", range(4))
def test_global_sum_pool_on_many_pixels_mixes_exact_and_saturated_channels(seed):
    # 25x5 pixels (DS-CNN's last layer): channel 0 small (plain sum), the others saturate somewhere
    rng = np.random.default_rng(seed)
    p = rng.integers(-2 ** 16, 2 ** 16, (2, 25, 5, 4)).astype(np.float32)
    p[..., 0] = rng.integers(-100, 100, (2, 25, 5))
    p[1, :12, :, 3] = 2 ** 18  # a long run at the upper bound, then mixed values
    np.testing.assert_array_equal(kernels.global_sum_pool(p, 20), ref.global_sum(p, 20))


def test_global_sum_pool_screens_exactly_at_the_bound_and_beyond_float32():
    def pooled(values, bits=20, dtype=np.float32):
        return kernels.global_sum_pool(np.array(values, dtype).reshape(1, 1, -1, 1), bits).ravel().tolist()
    high = 2 ** 19 - 1
    assert pooled([high - 3, -1, 1, 1, 1]) == [high - 1]  # sum of |p| == high: the plain sum
    assert pooled([high - 3, 1, 1, 1, 1, -1]) == [high - 1]  # the fourth +1 clips; the plain sum is high
    assert pooled([2 ** 30] + [-1] * 3) == [high - 3]  # |p| far beyond float32's exact sums
    # a 30-bit register: the plain sums exceed 2**24, where float32 would drop the ones
    assert pooled([2 ** 24] + [1] * 3, bits=30) == [2 ** 24 + 3]
    assert pooled([2 ** 24] + [1] * 3, bits=30, dtype=np.int32) == [2 ** 24 + 3]


@pytest.mark.parametrize("strides", [(1, 1), (2, 2), (2, 1)])
def test_conv_and_depthwise_on_non_contiguous_inputs(strides):
    # a channel slice is not contiguous: im2col takes its general window view; the result is the same
    rng = np.random.default_rng(strides[1])
    x = rng.integers(0, 16, (2, 9, 7, 6)).astype(np.uint8)[..., ::2]
    w = rng.integers(-7, 8, (3, 3, 3, 4))
    dw = rng.integers(-7, 8, (3, 3, 3, 1))
    for same in (True, False):
        padding = Padding.Same if same else Padding.Valid
        np.testing.assert_array_equal(kernels.conv2d(x, w, strides, padding), ref.correlate(x, w, strides, same))
        np.testing.assert_array_equal(kernels.separable_conv2d(x, dw[:, :, :, 0], np.eye(3, dtype=np.int64),
                                                               strides, padding),
                                      ref.separable(x, dw[::-1, ::-1], np.eye(3)[None, None], strides, same))


def test_saturating_sum_starts_from_the_initial_register_value():
    terms = np.array([[3, -4], [5, -6]])
    for total in (kernels.saturating.saturating_sum, _closed_form):
        got = total(terms, -8, 7, np.array([2, -1]))
        assert got.tolist() == [7, -8]  # 2+3=5, 5+5 -> 7; -1-4=-5, -5-6 -> -8

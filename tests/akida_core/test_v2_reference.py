"""The vectorised Akida 2.0 runtime against the per-element loop reference (reference_v2.py).

Random graphs (branches, Add, Concatenate, temporal layers over several calls, LUTs, poolings, 4- to
32-bit widths) with ordinary and extreme variables (shifts up to ±31, full-range LUTs and recurrent
coefficients), plus the kernels whose fast form is not a plain loop (the saturating GAP reduction,
the shifts, the split exact products).
"""
import numpy as np
import pytest

import akida_core as ak
from akida_core import kernels_v2 as k2

from . import reference_v2 as ref
from .v2_models import random_inputs, random_model


def _check_model(model, rng, calls=2):
    states = {}
    for call in range(calls):  # the second call continues the temporal state of the first
        x = random_inputs(model, rng, int(rng.integers(1, 4)))
        expected = ref.run_model(model, x, states)
        got = model.forward(x)
        assert got.dtype == expected.dtype, (call, model.layers)
        np.testing.assert_array_equal(got, expected, err_msg=f"call {call}: {model.layers}")


@pytest.mark.parametrize("seed", range(60))
def test_random_graphs_equal_the_loop_reference(seed):
    rng = np.random.default_rng(seed)
    model, _ = random_model(rng)
    _check_model(model, rng)


@pytest.mark.parametrize("seed", range(30))
def test_random_graphs_with_extreme_variables_equal_the_loop_reference(seed):
    rng = np.random.default_rng(1000 + seed)
    model, _ = random_model(rng, extreme=True)
    _check_model(model, rng)


def test_random_graphs_cover_every_layer_kind():
    kinds = set()
    for seed in range(60):
        model, _ = random_model(np.random.default_rng(seed))
        kinds |= {layer.layer_type.name for layer in model.layers}
    assert kinds >= {"InputData", "InputConv2D", "Quantizer", "Conv2D", "DepthwiseConv2D", "Conv2DTranspose",
                     "DepthwiseConv2DTranspose", "Dense1D", "BufferTempConv", "DepthwiseBufferTempConv", "Add",
                     "Concatenate", "Dequantizer"}


@pytest.mark.parametrize("seed", range(8))
def test_stateful_recurrent_chains_equal_the_loop_reference(seed):
    rng = np.random.default_rng(seed)
    model = ak.Model()
    model.add(ak.InputData((1, 6, int(rng.integers(1, 4))), input_bits=8))
    for _ in range(int(rng.integers(1, 3))):
        steps = model.output_shape[1]
        sub = int(rng.choice([s for s in (1, 2, 3) if steps % s == 0]))
        model.add(ak.StatefulRecurrent(int(rng.integers(1, 4)), int(rng.integers(1, 4)), subsample=sub,
                                       activation=ak.ActivationType(int(rng.integers(0, 2))),
                                       output_bits=8, buffer_bits=int(rng.choice([12, 20, 28, 32])),
                                       post_op_buffer_bits=int(rng.choice([16, 24, 32])),
                                       internal_state_bits=int(rng.choice([9, 16, 32])), ))
        from .v2_models import randomize
        randomize(model.layers[-1], rng, extreme=seed % 2 == 1)
    _check_model(model, rng, calls=3)


@pytest.mark.parametrize("seed", range(20))
def test_saturating_sum_equals_the_ordered_loop(seed):
    rng = np.random.default_rng(seed)
    bits = int(rng.integers(4, 33))
    values = rng.integers(-2 ** (bits - 1), 2 ** (bits - 1), (3, int(rng.integers(1, 40)), 2))
    got = k2.saturating_sum(values.astype(np.int64), bits)
    for n in range(3):
        for c in range(2):
            total = 0
            for v in values[n, :, c]:
                total = ref.sat(total + int(v), bits)
            assert got[n, c] == total


def test_round_shift_is_round_half_up_and_exact_at_the_extremes():
    values = np.array([-5, -3, -1, 1, 3, 5, 2 ** 31 - 1, -2 ** 31], np.int64)
    assert k2.round_shift(values[:6], -1).tolist() == [-2, -1, 0, 1, 2, 3]  # −2.5→−2, −1.5→−1, 2.5→3
    for shift in (-31, -7, 0, 9, 31):
        assert k2.round_shift(values, shift).tolist() == [ref.R(int(v), shift) for v in values]


def test_exact_matmul_splits_operands_beyond_the_float64_bound():
    rng = np.random.default_rng(0)
    x = rng.integers(-2 ** 31, 2 ** 31, (5, 3000)).astype(np.int64)
    w = rng.integers(-128, 128, (3000, 2)).astype(np.int8)
    got = k2.exact_matmul(x, w)
    expected = [[sum(int(a) * int(b) for a, b in zip(row, w[:, f])) for f in range(2)] for row in x]
    assert got.tolist() == expected


def test_wrap32_is_twos_complement():
    assert k2.wrap32(np.array([2 ** 31, 2 ** 32 + 5, -2 ** 31 - 1], np.int64)).tolist() == [-2 ** 31, 5, 2 ** 31 - 1]


@pytest.mark.parametrize("seeds", [range(0, 40), range(40, 80), range(80, 120)])
def test_affine_post_of_a_layer_equals_the_general_path(seeds):
    """The float AffinePost of a layer's plan (taken when its bounds prove it exact), max pooling on its
    outputs, equals the general path on sums anywhere within the plan's static bound. About a third of the
    random layers qualify (the others keep the general path, nothing to compare)."""
    compared = sum(_compare_affine_post(seed) for seed in seeds)
    assert compared >= 5, compared


def _compare_affine_post(seed):
    """Compare the affine and general POST of one random layer; False when its bounds refuse the affine one."""
    from akida_core.layers.v2.base import input_plan
    from akida_core.layers.v2.convolution import pool_and_finish
    rng = np.random.default_rng(seed)
    pool = {"pool_type": ak.PoolType.Max, "pool_size": 2, "pool_stride": int(rng.integers(1, 3))} \
        if seed % 3 == 0 else {}
    layer = ak.Conv2D(3, 1, activation=ak.ActivationType(int(rng.integers(0, 2))),
                      output_bits=int(rng.choice([4, 8, 16])), buffer_bits=int(rng.choice([16, 20, 28, 32])),
                      post_op_buffer_bits=int(rng.choice([16, 24, 32])), **pool)
    model = ak.Model()
    model.add(ak.InputData((5, 5, 2), input_bits=8))
    model.add(layer)
    from .v2_models import randomize
    randomize(layer, rng)
    shifts = rng.integers(-24, 3, 3) if seed % 2 else np.full(3, rng.integers(-24, 3))
    layer.variables["output_shift"] = shifts.astype(np.int8)
    c = layer._prepared()
    plan = input_plan(layer, np.dtype(np.int8), c["input_shift"], c["kernel"])
    if plan.affine is None:
        return False
    bounds = plan.x_bound * c["kernel"].l1
    acc = rng.integers(-bounds, bounds + 1, (4, 5, 5, 3))
    acc[0, 0, 0], acc[0, 0, 1] = bounds, -bounds
    acc = acc.astype(plan.affine.dtype if bounds.max() >= 2 ** 24 else np.float32)
    expected = pool_and_finish(layer, acc.copy(), c["post"], bound=int(bounds.max()))
    np.testing.assert_array_equal(pool_and_finish(layer, acc, c["post"], plan=plan), expected)
    return True

"""Property: any valid composition of the Akida 1.0 patterns converts bit-exactly (Hypothesis,
derandomized, bounded sizes)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import cnn2snn

from .qbuild import build, conv, dense, flatten, gap, maxpool, relu, sep
from .test_parity import assert_parity

pytestmark = pytest.mark.akida_version("v1")  # Akida 1.0 flows; the default is Akida 2.0


@st.composite
def models(draw):
    size = draw(st.integers(8, 12))
    channels = draw(st.sampled_from([1, 3]))
    padding = draw(st.sampled_from(["same", "valid"]))
    specs = [conv(draw(st.integers(2, 6)), draw(st.sampled_from([3, 5, 7])),
                  strides=draw(st.sampled_from([1, 2, 3])), padding=padding,
                  weight_bits=draw(st.sampled_from([4, 8])))]
    if draw(st.booleans()):
        specs.append(maxpool(2, padding=padding))
    specs.append(relu(draw(st.sampled_from([1, 2, 4]))))
    pooled = False
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["conv", "sep"]))
        kernel = draw(st.sampled_from([1, 3, 5, 7] if kind == "conv" else [3, 5, 7]))
        stride = draw(st.sampled_from([1, 2])) if kernel == 3 else 1
        bits = draw(st.sampled_from([1, 2, 4] if kind == "conv" else [2, 4]))
        make = conv if kind == "conv" else sep
        specs.append(make(draw(st.integers(2, 6)), kernel, strides=stride, weight_bits=bits))
        pool = draw(st.sampled_from(["none", "max", "gap"]))
        if pool == "max":
            specs.append(maxpool(2))
        elif pool == "gap":
            specs.append(gap())
            pooled = True
        specs.append(relu(draw(st.sampled_from([1, 2, 4]))))
        if pooled:
            break
    if not pooled:
        specs.append(flatten())
    if draw(st.booleans()):
        specs += [dense(draw(st.integers(2, 6)), draw(st.sampled_from([1, 2, 4]))), relu()]
    specs.append(dense(draw(st.integers(2, 5))))
    if draw(st.booleans()):
        specs.append(relu(draw(st.sampled_from([1, 2, 4]))))
    return (size, size, channels), specs, draw(st.integers(0, 2 ** 16))


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(models())
def test_random_compositions_convert_exactly(case):
    shape, specs, seed = case
    try:
        qmodel = build(shape, specs, seed=seed)
    except ValueError:  # e.g. a pooling or kernel larger than the remaining spatial size
        assume(False)
    assume(cnn2snn.check_model_compatibility(qmodel) == [])
    akida_model = cnn2snn.convert(qmodel)
    x = np.random.default_rng(seed).integers(0, 256, (12, *shape)).astype(np.uint8)
    assert assert_parity(qmodel, akida_model, x, shape) > 0

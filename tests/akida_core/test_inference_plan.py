"""What inference prepares once and when it prepares again: the model's inference plan, the lazily made
statistics entries, and the Akida 2.0 convolution kernels (flipped and cast once per weights)."""
import numpy as np
import pytest

import akida_core as ak
from akida_core.kernels import v2 as k2
from akida_core.model import graph, inference

from bench.models import mnist_cnn, random_inputs

from . import reference_v2 as ref
from .helpers import small_cnn
from .v2_models import randomize


@pytest.fixture
def plans(monkeypatch):
    """Every InferencePlan made by the model, in order."""
    made = []

    class Counted(inference.InferencePlan):
        def __init__(self, layers):
            super().__init__(layers)
            made.append(self)
    monkeypatch.setattr(graph, "InferencePlan", Counted)
    return made


def _inputs(seed=0, batch=3):
    return np.random.default_rng(seed).integers(0, 256, (batch, 9, 8, 1)).astype(np.uint8)


def test_the_plan_is_made_once_for_repeated_inferences(plans):
    model, x = small_cnn(), _inputs()
    first = model.forward(x)
    for _ in range(3):
        np.testing.assert_array_equal(model.forward(x), first)
    assert len(plans) == 1


@pytest.mark.parametrize("layer_name", ["conv_0", "conv_1", "classifier"])
def test_set_variable_after_a_forward_changes_the_next_output_and_the_plan(plans, layer_name):
    model = mnist_cnn()  # busy activations: every layer's weights show in the outputs
    x = random_inputs(model, 2)
    before = model.forward(x)
    layer = model.get_layer(layer_name)
    layer.variables["weights"] = -layer.variables["weights"]
    after = model.forward(x)
    assert len(plans) == 2
    fresh = ak.Model.from_dict(model.to_dict())  # a model that never ran: nothing cached
    np.testing.assert_array_equal(after, fresh.forward(x))
    assert not np.array_equal(after, before)


def test_a_structural_change_makes_a_new_plan(plans):
    model, x = small_cnn(), _inputs()
    model.forward(x)
    model.pop_layer()
    out = model.forward(x)
    assert len(plans) == 2 and out.shape == (3, 1, 1, 6)
    assert list(model.statistics.layers) == ["ic", "conv", "sep"]


def test_a_prefix_run_does_not_invalidate_the_whole_model_plan(plans):
    model, x = small_cnn(), _inputs()
    model.forward(x)
    model._run(x, 0, layers=model.layers[:2])
    model.forward(x)
    assert len(plans) == 2  # the model's own, and the prefix's (not kept)


def test_statistics_read_late_describe_the_last_inference():
    model = small_cnn()
    x, y = _inputs(0, batch=3), _inputs(1, batch=2)
    model.forward(x)
    out = model.forward(y)
    expected = out.copy()
    out[...] = 0  # the caller's changes to the outputs do not reach the statistics
    stats = model.statistics
    assert stats.samples == 2
    assert stats.layers["fc"].events == np.count_nonzero(expected)
    for index, layer in enumerate(model.layers):
        prefix = model._run(y, 0, layers=model.layers[:index + 1])
        assert stats.layers[layer.name].events == np.count_nonzero(prefix)
        assert stats.layers[layer.name].macs_per_sample == layer.macs
        assert isinstance(stats.layers[layer.name].events, int)


def _v2_model(seed=0):
    rng = np.random.default_rng(seed)
    model = ak.Model()
    model.add(ak.InputData((6, 7, 3), input_bits=8, name="in"))
    model.add(ak.Conv2D(4, 3, name="conv"))
    model.add(ak.DepthwiseConv2D(3, name="dw"))
    for layer in model.layers[1:]:
        randomize(layer, rng)
    return model


def test_v2_convolution_kernels_are_flipped_and_cast_once_per_weights():
    model = _v2_model()
    x = np.random.default_rng(3).integers(-128, 128, (2, 6, 7, 3)).astype(np.int8)
    outputs = [model.forward(x) for _ in range(3)]
    for out in outputs:
        np.testing.assert_array_equal(out, ref.run_model(model, x))
    kernels = {name: model.get_layer(name)._prepared()["kernel"] for name in ("conv", "dw")}
    assert all(isinstance(kernel, k2.ConvolutionKernel) and kernel.casts_made == 1 for kernel in kernels.values())
    conv = model.get_layer("conv")
    conv.variables["weights"] = -conv.variables["weights"]
    changed = model.forward(x)
    np.testing.assert_array_equal(changed, ref.run_model(model, x))
    assert not np.array_equal(changed, outputs[0])
    assert conv._prepared()["kernel"] is not kernels["conv"]
    assert model.get_layer("dw")._prepared()["kernel"] is kernels["dw"]


def test_convolve2d_with_a_prepared_kernel_equals_the_plain_weights():
    rng = np.random.default_rng(5)
    x = rng.integers(-2 ** 20, 2 ** 20, (2, 5, 6, 3)).astype(np.int64)
    w = rng.integers(-128, 128, (3, 3, 3, 4)).astype(np.int64)
    kernel = k2.ConvolutionKernel(w)
    for padding in (ak.Padding.Same, ak.Padding.Valid):
        for stride in (1, 2):
            plain = k2.convolve2d(x, w, stride, padding)
            prepared = k2.convolve2d(x, kernel, stride, padding)
            np.testing.assert_array_equal(prepared[0], plain[0])
            assert prepared[1] == plain[1]
    depthwise = k2.ConvolutionKernel(w[..., 0], depthwise=True)
    plain = k2.depthwise_convolve2d(x, w[..., 0], 1, ak.Padding.Same)
    np.testing.assert_array_equal(k2.depthwise_convolve2d(x, depthwise, 1, ak.Padding.Same)[0], plain[0])


class _CountingArray(np.ndarray):
    """An array that counts the passes of min/max over it."""

    passes = 0

    def min(self, *args, **kwargs):
        type(self).passes += 1
        return super().min(*args, **kwargs)

    def max(self, *args, **kwargs):
        type(self).passes += 1
        return super().max(*args, **kwargs)


@pytest.mark.parametrize("input_bits, passes", [(8, 0), (4, 2)])
def test_input_values_are_read_only_when_the_dtype_does_not_prove_the_range(monkeypatch, input_bits, passes):
    monkeypatch.setattr(_CountingArray, "passes", 0)
    model = ak.Model()
    if input_bits == 8:
        model.add(ak.InputConvolutional((4, 4, 2), (3, 3), 3, weights_bits=8, act_bits=4, name="conv"))
    else:
        model.add(ak.InputData((4, 4, 2), input_bits=input_bits, name="in"))
        model.add(ak.Convolutional((3, 3), 3, weights_bits=4, act_bits=4, name="conv"))
    x = np.random.default_rng(0).integers(0, 2 ** input_bits, (2, 4, 4, 2)).astype(np.uint8)
    model.forward(x.view(_CountingArray))
    assert _CountingArray.passes == passes
    if input_bits < 8:
        with pytest.raises(ak.InputDataError, match="values are in"):
            model.forward(np.full((1, 4, 4, 2), 2 ** input_bits, np.uint8))


def test_v2_input_values_are_read_only_when_the_dtype_does_not_prove_the_range(monkeypatch):
    monkeypatch.setattr(_CountingArray, "passes", 0)
    model = _v2_model()  # 8-bit InputData: int8 inputs hold only valid values
    x = np.random.default_rng(3).integers(-128, 128, (1, 6, 7, 3)).astype(np.int8)
    model.forward(x.view(_CountingArray))
    assert _CountingArray.passes == 0

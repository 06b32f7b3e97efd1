"""The work calibration does (not its time): how often the float model runs and is traced, and
that the shortcuts give the very same quantized models."""
import importlib

import keras
import numpy as np
import pytest

from quantizeml import Akida1QuantizationParams, calibrate as calibration
from quantizeml.models import quantize
from quantizeml.v2.observe import observe_ranges

from .conftest import small_cnn

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
# the module (quantizeml.models.quantize is also the name of the function)
quantize_module = importlib.import_module("quantizeml.models.quantize")


def _weights(qmodel):
    return [np.asarray(w) for layer in qmodel.layers for w in layer.get_weights()]


def test_kept_outputs_spare_the_second_pass_and_change_nothing(monkeypatch):
    model = small_cnn()
    x = np.random.default_rng(1).integers(0, 256, (40, 12, 12, 1)).astype(np.float32)
    calls = []
    histograms = calibration.observe_histograms

    def spy(float_model, upper, batches, outputs=None):
        calls.append(outputs is not None)
        return histograms(float_model, upper, batches, outputs)

    monkeypatch.setattr(quantize_module, "observe_histograms", spy)
    kept = quantize(model, qparams=Akida1QuantizationParams(), samples=x, batch_size=16, verbose=0)
    monkeypatch.setattr(calibration, "KEEP_OUTPUTS_BYTES", 0)
    rerun = quantize(model, qparams=Akida1QuantizationParams(), samples=x, batch_size=16, verbose=0)
    assert calls == [True, False]  # pass 2 read the kept outputs, then ran the model
    for a, b in zip(_weights(kept), _weights(rerun), strict=True):
        np.testing.assert_array_equal(a, b)


def test_akida2_observer_is_traced_once_for_uneven_batches():
    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, keras.layers.ReLU(name="r")(inputs))
    batches = [np.ones((32, 4, 4, 2), np.float32), np.ones((32, 4, 4, 2), np.float32),
               np.ones((8, 4, 4, 2), np.float32)]
    assert observe_ranges(model, ["r"], batches)["traces"] == 1


@pytest.mark.parametrize("seed", range(6))
def test_numpy_histogram_counts_as_the_traced_one(seed):
    import tensorflow as tf
    rng = np.random.default_rng(seed)
    channels = int(rng.integers(1, 20))
    value = rng.normal(0, 2, (int(rng.integers(1, 200)), channels)).astype(np.float32)
    if seed % 2:
        value = np.maximum(value, 0)  # a ReLU output: half zeros
    value[0, 0], value[-1, -1], value[0, -1] = -0.0, 1e-38, 3.0e4  # subnormal; above the bound
    bound = rng.uniform(0.5, 3, channels).astype(np.float32)
    traced = calibration._histograms([tf.constant(value)], [tf.constant(bound)])[0]
    np.testing.assert_array_equal(calibration._numpy_histogram(value, bound),
                                  np.asarray(traced)[0])

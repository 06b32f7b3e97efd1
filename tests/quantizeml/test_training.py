"""Quantization-aware training: fit works (STE) and the trained model stays exact."""

import keras
import numpy as np
import pytest

from quantizeml.export import export_blocks
from quantizeml.models import quantize

from .conftest import small_cnn
from .integer_reference import model_forward

# Akida 1.0 flows (the default is Akida 2.0)
pytestmark = [pytest.mark.akida_version("v1"),
              pytest.mark.filterwarnings("ignore::UserWarning")]


def test_qat_smoke_fit_changes_weights_and_stays_exact(images):
    labels = np.arange(len(images)) % 5
    qmodel = quantize(small_cnn(), samples=images, verbose=0)
    before = qmodel.get_layer("conv2d_1").kernel.numpy().copy()
    qmodel.compile(keras.optimizers.Adam(1e-2),
                   keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = qmodel.fit(images, labels, epochs=2, batch_size=16, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert not np.array_equal(before, qmodel.get_layer("conv2d_1").kernel.numpy())
    ints, floats = model_forward(export_blocks(qmodel), qmodel.layers[1].numpy(images))
    np.testing.assert_array_equal(np.asarray(qmodel(images)), floats)

"""MetaTF's global-workflow tutorial, run as published for both Akida generations.

Float training, 8-bit post-training quantization, 8/4/4-bit quantization with samples and one
epoch of quantization-aware training, conversion, summary, then evaluate and predict on the raw
uint8 images: the Akida model's classes equal the quantized Keras model's. Akida 2.0 is MetaTF's
default; Akida 1.0 runs inside `with set_akida_version(AkidaVersion.v1):` (MetaTF's v1 tutorial).
Scikit-learn's bundled digits stand in for MNIST (no download).
"""
import contextlib

import keras
import numpy as np
import pytest

from cnn2snn import AkidaVersion, convert, get_akida_version, set_akida_version
from cnn2snn.demo import load_digits_images
from cnn2snn.v2 import is_akida2_model
from quantizeml.models import QuantizationParams, quantize

LEARNING_RATE = 3e-3


def _tutorial_model(version):
    """The tutorial's Sequential CNN; Akida 1.0 uses a SeparableConv2D where Akida 2.0 has a
    DepthwiseConv2D followed by a pointwise Conv2D."""
    layers = keras.layers
    keras.utils.set_random_seed(0)
    if version is AkidaVersion.v1:
        middle = [layers.SeparableConv2D(64, 3, padding="same", strides=2),
                  layers.BatchNormalization(), layers.ReLU()]
    else:
        middle = [layers.DepthwiseConv2D(3, padding="same", strides=2),
                  layers.BatchNormalization(), layers.ReLU(), layers.Conv2D(64, 1),
                  layers.BatchNormalization(), layers.ReLU()]
    return keras.Sequential([keras.Input((16, 16, 1)), layers.Rescaling(1 / 255),
                             layers.Conv2D(32, 3, strides=2), layers.BatchNormalization(),
                             layers.ReLU(), *middle, layers.Flatten(), layers.Dense(10)])


def _compile(model):
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  optimizer=keras.optimizers.Adam(LEARNING_RATE), metrics=["accuracy"])


@pytest.mark.parametrize("version", [AkidaVersion.v2, AkidaVersion.v1])
def test_global_workflow_tutorial(version):
    x_train, x_test, y_train, y_test = load_digits_images()
    x_test, y_test = x_test.astype(np.uint8)[:200], y_test[:200]
    selection = set_akida_version(version) if version is AkidaVersion.v1 else \
        contextlib.nullcontext()
    with selection:
        assert get_akida_version() is version
        model = _tutorial_model(version)
        _compile(model)
        # enough steps for BatchNormalization's moving statistics (momentum 0.99), which
        # quantize folds, to reach the data
        model.fit(x_train, y_train, epochs=4, batch_size=16, verbose=0)
        # 8-bit post-training quantization: MetaTF accepts it whatever the generation
        with pytest.warns(Warning) if version is AkidaVersion.v1 else contextlib.nullcontext():
            eight = quantize(model, qparams=QuantizationParams(input_weight_bits=8, weight_bits=8,
                                                               activation_bits=8))
        _compile(eight)
        assert 0.0 <= eight.evaluate(x_test, y_test, verbose=0)[1] <= 1.0
        # the tutorial's 4-bit settings, calibrated on samples, then one epoch of QAT
        qparams = QuantizationParams(input_weight_bits=8, weight_bits=4, activation_bits=4)
        qmodel = quantize(model, qparams=qparams, samples=x_train, num_samples=256,
                          batch_size=64, epochs=1)
        _compile(qmodel)
        qmodel.fit(x_train, y_train, epochs=1, batch_size=32, verbose=0)
        assert is_akida2_model(qmodel) is (version is AkidaVersion.v2)
        akida_model = convert(qmodel)
        lines = []
        akida_model.summary(print_fn=lines.append)
        assert ("InputConvolutional" in "\n".join(lines)) is (version is AkidaVersion.v1)
        accuracy = akida_model.evaluate(x_test, y_test)
        outputs = np.asarray(akida_model.predict(x_test)).reshape(len(x_test), -1)
    expected = np.asarray(qmodel.predict(x_test, verbose=0)).reshape(len(x_test), -1)
    np.testing.assert_array_equal(outputs.argmax(axis=1), expected.argmax(axis=1))
    assert accuracy == pytest.approx(float(np.mean(expected.argmax(axis=1) == y_test)))
    assert accuracy > 0.5, f"{version.name}: Akida accuracy {accuracy:.2f} after training"


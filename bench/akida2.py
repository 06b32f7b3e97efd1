"""Akida 2.0 benchmark: accuracy of a residual and a depthwise-separable digits model at 8 and 4 bits
(quantized Keras vs float, akida_core vs quantized Keras), and quantize/convert times of an
AkidaNet-like model (alpha 0.25, 64x64x3) against MetaTF's (conversion-v2.md §7).

    python bench/akida2.py [--epochs 10] [--qat-epochs 2]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import keras  # noqa: E402

import cnn2snn  # noqa: E402
from bench.convert import randomize  # noqa: E402
from cnn2snn.demo import load_digits_images  # noqa: E402
from quantizeml.models import QuantizationParams, quantize  # noqa: E402
from quantizeml.v2 import strip_float_tail  # noqa: E402

L = keras.layers
#: MetaTF's times on the AkidaNet-like model, same machine (conversion-v2.md §7)
METATF_SECONDS = {"quantize": 11.3, "convert": 7.0}


def _cbr(x, filters, kernel=3, strides=1):
    x = L.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = L.BatchNormalization(momentum=0.9)(x)
    return L.ReLU(6.0)(x)


def _dw(x, filters, strides=1):
    x = L.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False)(x)
    x = L.BatchNormalization(momentum=0.9)(x)
    x = L.ReLU(6.0)(x)
    return _cbr(x, filters, 1)


def residual(shape=(16, 16, 1)):
    """Stem, two residual blocks (separable branch), strided DW block, GAP, Dense."""
    inputs = keras.Input(shape)
    x = _cbr(L.Rescaling(1 / 255)(inputs), 16)
    for _ in range(2):
        y = L.SeparableConv2D(16, 3, padding="same", use_bias=False)(x)
        y = L.ReLU(6.0)(L.BatchNormalization(momentum=0.9)(y))
        x = L.ReLU(6.0)(L.Add()([x, y]))
    x = _dw(x, 32, strides=2)
    return keras.Model(inputs, L.Dense(10)(L.GlobalAveragePooling2D()(x)), name="residual")


def depthwise_separable(shape=(16, 16, 1)):
    """MobileNet-like: stem, four DW + 1x1 blocks (two strided), GAP, Dense."""
    inputs = keras.Input(shape)
    x = _cbr(L.Rescaling(1 / 255)(inputs), 16)
    for filters, strides in ((32, 1), (32, 2), (64, 1), (64, 2)):
        x = _dw(x, filters, strides)
    return keras.Model(inputs, L.Dense(10)(L.GlobalAveragePooling2D()(x)),
                       name="depthwise_separable")


def akidanet_like(alpha=0.25, size=64, classes=10):
    """AkidaNet-like alpha 0.25 on 64x64x3: 6 Conv 3x3 + 8 x (DW + 1x1), GAP, Dense."""
    inputs = keras.Input((size, size, 3))
    x = L.Rescaling(1 / 255)(inputs)
    for filters, strides in ((32, 2), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1)):
        x = _cbr(x, int(filters * alpha), strides=strides)
    for i in range(8):
        x = _dw(x, int((512 if i < 6 else 1024) * alpha), strides=2 if i in (0, 6) else 1)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(classes)(x), name="akidanet_like")


def _accuracy(outputs, labels):
    return float(np.mean(np.argmax(np.asarray(outputs).reshape(len(labels), -1), -1) == labels))


def accuracy_rows(epochs, qat_epochs, seed=0):
    keras.utils.set_random_seed(seed)
    x_train, x_test, y_train, y_test = load_digits_images(seed)
    rows = []
    for build in (residual, depthwise_separable):
        model = build()
        # BN momentum 0.9: quantize folds the moving statistics (see cnn2snn.demo)
        model.compile(keras.optimizers.Adam(3e-3),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
        float_acc = _accuracy(model.predict(x_test, verbose=0), y_test)
        for bits in (8, 4):
            qmodel = quantize(model, qparams=QuantizationParams(
                weight_bits=bits, activation_bits=bits, input_weight_bits=8), samples=x_train)
            ptq = _accuracy(qmodel.predict(x_test, verbose=0), y_test)
            if bits == 4 and qat_epochs:
                qmodel.compile(keras.optimizers.Adam(5e-4),
                               keras.losses.SparseCategoricalCrossentropy(from_logits=True))
                qmodel.fit(x_train, y_train, epochs=qat_epochs, batch_size=32, verbose=0)
            keras_out = strip_float_tail(qmodel).predict(x_test, verbose=0)
            akida_out = cnn2snn.convert(qmodel).predict(x_test.astype(np.uint8))
            rows.append((model.name, bits, float_acc, ptq, _accuracy(keras_out, y_test),
                         _accuracy(akida_out, y_test),
                         float(np.mean(np.all(keras_out == akida_out.reshape(keras_out.shape),
                                              axis=1)))))
    return rows


def timing_row(samples=1024, seed=0):
    """Quantize/convert times of the AkidaNet-like model with live random weights, its number of
    Akida layers, whether 64 outputs are bit-identical and how many distinct values they hold.

    Raises:
        AssertionError: the outputs are trivial (fewer distinct values than classes), so the
            exactness check would prove nothing.
    """
    keras.utils.set_random_seed(seed)
    model = randomize(akidanet_like(), seed, he=True)
    x = np.random.default_rng(seed).integers(0, 256, (samples, 64, 64, 3)).astype(np.float32)
    start = time.perf_counter()
    qmodel = quantize(model, qparams=QuantizationParams(), samples=x, batch_size=32)
    quantize_seconds = time.perf_counter() - start
    start = time.perf_counter()
    akida_model = cnn2snn.convert(qmodel)
    convert_seconds = time.perf_counter() - start
    keras_out = strip_float_tail(qmodel).predict(x[:64], verbose=0)
    akida_out = akida_model.predict(x[:64].astype(np.uint8)).reshape(keras_out.shape)
    distinct = len(np.unique(keras_out))
    assert distinct > keras_out.shape[-1], (
        f"AkidaNet-like outputs hold {distinct} distinct values over {keras_out.shape} outputs: "
        "the activations vanished and the exactness check would be trivial.")
    return (quantize_seconds, convert_seconds, len(akida_model.layers),
            np.array_equal(keras_out, akida_out), distinct)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--qat-epochs", type=int, default=2)
    parser.add_argument("--skip-timing", action="store_true")
    args = parser.parse_args(argv)
    print(f"{'model':20s} {'bits':>4s} {'float':>7s} {'PTQ':>7s} {'Keras':>7s} {'akida':>7s} "
          f"{'identical':>9s}")
    for name, bits, float_acc, ptq, keras_acc, akida_acc, same in accuracy_rows(
            args.epochs, args.qat_epochs):
        print(f"{name:20s} {bits:4d} {float_acc:7.2%} {ptq:7.2%} {keras_acc:7.2%} "
              f"{akida_acc:7.2%} {same:9.2%}")
    print(f"(4-bit rows: Keras/akida after {args.qat_epochs} QAT epochs)")
    if not args.skip_timing:
        quantize_s, convert_s, layers, exact, distinct = timing_row()
        print(f"AkidaNet-like 0.25 64x64x3 ({layers} Akida layers, exact: {exact} on 64 samples,"
              f" {distinct} distinct output values): quantize + "
              f"calibrate (1024 samples) {quantize_s:.1f} s (MetaTF "
              f"{METATF_SECONDS['quantize']} s, {METATF_SECONDS['quantize'] / quantize_s:.1f}x), "
              f"convert {convert_s:.2f} s (MetaTF {METATF_SECONDS['convert']} s, "
              f"{METATF_SECONDS['convert'] / convert_s:.0f}x)")


if __name__ == "__main__":
    main()

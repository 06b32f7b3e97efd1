"""Digits benchmark (Akida 1.0): float vs post-training-quantized (PTQ) vs
quantization-aware-trained (QAT), quantized with `Akida1QuantizationParams`.

Run: python bench/quantization.py [--epochs 20] [--qat-epochs 3] [--weight-bits 4]
     [--activation-bits 4]
Prints float, PTQ and QAT test accuracy (4-bit weights, 4-bit activations, 8-bit input-layer
weights by default) and the quantize/calibrate time. Data: scikit-learn's bundled 8×8 digits,
scaled to uint8 and upsampled to 16×16 (no download).
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from quantizeml import Akida1QuantizationParams  # noqa: E402
from quantizeml.models import quantize  # noqa: E402


def load_data(seed: int = 0):
    """Return (x_train, x_test, y_train, y_test): uint8-valued float32 16×16×1 images."""
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.float32)
    images = images.repeat(2, axis=1).repeat(2, axis=2)[..., None]
    return train_test_split(images, digits.target, test_size=0.25, random_state=seed,
                            stratify=digits.target)


def build_model() -> keras.Model:
    """A small CNN of Conv > BN > ReLU > MaxPool blocks, then Flatten > Dense."""
    layers = keras.layers
    return keras.Sequential([
        keras.Input((16, 16, 1)), layers.Rescaling(1.0 / 255.0),
        layers.Conv2D(16, 3, padding="same", use_bias=False), layers.BatchNormalization(),
        layers.ReLU(), layers.MaxPooling2D(padding="same"),
        layers.Conv2D(32, 3, padding="same", use_bias=False), layers.BatchNormalization(),
        layers.ReLU(), layers.MaxPooling2D(padding="same"),
        layers.Dropout(0.2), layers.Flatten(), layers.Dense(10),
    ], name="digits_cnn")


def accuracy(model, x, y) -> float:
    """Top-1 accuracy in percent."""
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y) * 100.0)


def compile_model(model, learning_rate):
    """Adam + sparse categorical cross-entropy on logits."""
    model.compile(keras.optimizers.Adam(learning_rate),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])


def run(epochs=20, qat_epochs=3, weight_bits=4, activation_bits=4, seed=0, verbose=0) -> dict:
    """Train, quantize, fine-tune; return the figures."""
    keras.utils.set_random_seed(seed)
    x_train, x_test, y_train, y_test = load_data(seed)
    model = build_model()
    compile_model(model, 3e-3)
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=verbose)
    train_time = time.perf_counter() - start
    float_acc = accuracy(model, x_test, y_test)
    qparams = Akida1QuantizationParams(weight_bits=weight_bits, activation_bits=activation_bits)
    start = time.perf_counter()
    qmodel = quantize(model, qparams=qparams, samples=x_train, num_samples=1024, verbose=0)
    quantize_time = time.perf_counter() - start
    ptq_acc = accuracy(qmodel, x_test, y_test)
    compile_model(qmodel, 5e-4)
    start = time.perf_counter()
    qmodel.fit(x_train, y_train, epochs=qat_epochs, batch_size=32, verbose=verbose)
    qat_time = time.perf_counter() - start
    qat_acc = accuracy(qmodel, x_test, y_test)
    return {"float_acc": float_acc, "ptq_acc": ptq_acc, "qat_acc": qat_acc,
            "train_s": train_time, "quantize_calibrate_s": quantize_time, "qat_s": qat_time,
            "n_train": len(x_train), "n_test": len(x_test)}


def main(argv=None) -> int:
    """Command-line entry point: print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--qat-epochs", type=int, default=3)
    parser.add_argument("--weight-bits", type=int, default=4)
    parser.add_argument("--activation-bits", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    r = run(args.epochs, args.qat_epochs, args.weight_bits, args.activation_bits, args.seed)
    print(f"digits {r['n_train']} train / {r['n_test']} test, {args.weight_bits}-bit weights, "
          f"{args.activation_bits}-bit activations, 8-bit input-layer weights")
    print(f"float accuracy      {r['float_acc']:6.2f} %  (train {r['train_s']:.1f} s)")
    print(f"PTQ accuracy        {r['ptq_acc']:6.2f} %  (quantize+calibrate "
          f"{r['quantize_calibrate_s']:.2f} s)")
    print(f"QAT accuracy        {r['qat_acc']:6.2f} %  ({args.qat_epochs} epochs, "
          f"{r['qat_s']:.1f} s)")
    print(f"QAT - float         {r['qat_acc'] - r['float_acc']:+6.2f} points")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

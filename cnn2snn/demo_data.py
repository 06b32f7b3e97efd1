"""What both demo flows share: the digits data, the float CNN, compiling, accuracy, step headers."""
from __future__ import annotations

import time

import numpy as np

IMAGE_SIZE = 16  # digits are 8×8; upsampled ×2 so that two 2×2 max poolings leave a 4×4 map


def load_digits_images(seed=0, train_samples=None):
    """Scikit-learn's bundled digits as 16×16×1 float32 images holding integers 0..255.

    Args:
        seed: seed of the stratified 75/25 train/test split.
        train_samples: keep only the first N training images (None: all 1,347).

    Returns:
        (x_train, x_test, y_train, y_test).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.float32)
    images = images.repeat(2, axis=1).repeat(2, axis=2)[..., None]
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.25, random_state=seed, stratify=digits.target)
    if train_samples is not None:
        x_train, y_train = x_train[:train_samples], y_train[:train_samples]
    return x_train, x_test, y_train, y_test


def build_float_model():
    """The demo CNN: three Conv > BN > ReLU blocks (two with max pooling), then Flatten > Dense.

    Layers are named so that two runs in one process build identical Akida models (Keras would
    otherwise number them conv2d_3, ...). The last convolution has no pooling on purpose: on
    AKD1000 a max-pooling layer cannot end a hardware sequence before a FullyConnected layer, so
    this model maps as one sequence. BatchNormalization momentum is 0.9 because quantize folds the
    moving statistics, which the default 0.99 leaves far from the data after a few hundred steps.
    """
    import keras
    layers = keras.layers
    return keras.Sequential([
        keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="image"),
        layers.Rescaling(1.0 / 255.0, name="rescaling"),
        layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv_0"),
        layers.BatchNormalization(momentum=0.9, name="conv_0_bn"), layers.ReLU(name="conv_0_relu"),
        layers.MaxPooling2D(padding="same", name="conv_0_pool"),
        layers.Conv2D(32, 3, padding="same", use_bias=False, name="conv_1"),
        layers.BatchNormalization(momentum=0.9, name="conv_1_bn"), layers.ReLU(name="conv_1_relu"),
        layers.MaxPooling2D(padding="same", name="conv_1_pool"),
        layers.Conv2D(32, 3, padding="same", use_bias=False, name="conv_2"),
        layers.BatchNormalization(momentum=0.9, name="conv_2_bn"), layers.ReLU(name="conv_2_relu"),
        layers.Dropout(0.2, name="dropout"), layers.Flatten(name="flatten"),
        layers.Dense(10, name="classifier"),
    ], name="digits_cnn")


def compile_model(model, learning_rate):
    """Adam at ``learning_rate``, sparse cross-entropy on logits, accuracy."""
    import keras
    model.compile(keras.optimizers.Adam(learning_rate),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])


def keras_accuracy(model, x, y):
    """Top-1 accuracy of a Keras model on ``x`` (labels ``y``).

    A direct call: no tf.function tracing for a few hundred 16×16 images.
    """
    return float(np.mean(np.argmax(np.asarray(model(x, training=False)), axis=-1) == y))


class Steps:
    """Prints numbered step headers and how long each step took."""

    def __init__(self, total, print_fn):
        self.total, self.index, self.print_fn, self.started = total, 0, print_fn, None

    def __call__(self, title):
        self.done()
        self.index += 1
        self.started = time.perf_counter()
        self.print_fn(f"[{self.index}/{self.total}] {title}")

    def done(self):
        if self.started is not None:
            self.print_fn(f"      done in {time.perf_counter() - self.started:.1f} s")
            self.started = None

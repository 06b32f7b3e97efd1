"""Tiny float models shared by the quantizeml tests."""
import keras
import numpy as np
import pytest


def small_cnn(seed=0, channels=1, size=12):
    """Rescaling > Conv/BN/ReLU/MaxPool > SepConv(relu) > Dropout > Conv/GAP/ReLU > Dense."""
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    model = keras.Sequential([
        keras.Input((size, size, channels)), layers.Rescaling(1 / 255.0, name="rescaling"),
        layers.Conv2D(8, 3, padding="same", name="conv2d"),
        layers.BatchNormalization(name="bn"), layers.ReLU(name="re_lu"),
        layers.MaxPooling2D(padding="same", name="max_pooling2d"),
        layers.SeparableConv2D(8, 3, padding="same", activation="relu", name="separable_conv2d"),
        layers.Dropout(0.2, name="dropout"), layers.Conv2D(12, 3, padding="same", name="conv2d_1"),
        layers.GlobalAveragePooling2D(name="gap"), layers.ReLU(name="re_lu_1"),
        layers.Dense(5, name="dense"),
    ], name="small_cnn")
    # Non-trivial BN statistics so folding is exercised.
    bn = model.layers[2]
    rng = np.random.default_rng(seed)
    bn.set_weights([rng.uniform(0.5, 1.5, 8), rng.normal(0, 0.1, 8), rng.normal(0, 0.1, 8),
                    rng.uniform(0.5, 2.0, 8)])
    return model


def flatten_cnn(seed=0):
    """Conv > ReLU > MaxPool > Flatten > Dense > ReLU > Dense on 8×8×3 uint8 images."""
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    return keras.Sequential([
        keras.Input((8, 8, 3)), layers.Rescaling(1 / 127.5, offset=-1.0, name="rescaling"),
        layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2d"),
        layers.MaxPooling2D(name="pool"), layers.Flatten(name="flatten"),
        layers.Dense(16, activation="relu", name="dense"), layers.Dense(4, name="dense_1"),
    ], name="flatten_cnn")


@pytest.fixture(scope="module")
def images():
    """uint8-valued float32 images (32, 12, 12, 1)."""
    return np.random.default_rng(1).integers(0, 256, (32, 12, 12, 1)).astype(np.float32)

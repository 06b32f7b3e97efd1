"""Small float Keras models for the Akida 2.0 scheme (residual, depthwise-separable, ...)."""
import keras
import numpy as np


def _randomize_bn(model, seed):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c),
                               rng.normal(0, 0.1, c), rng.uniform(0.5, 2, c)])
    return model


def residual_separable(seed=0, size=16, channels=3, classes=10):
    """Rescaling > Conv-BN-ReLU6 > [SeparableConv-ReLU] + skip > Add > ReLU > Conv s2 > DW >
    Conv-ReLU > GAP > Dense."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, channels))
    x = keras.layers.Rescaling(1 / 255, name="rescaling")(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv2d")(x)
    x = keras.layers.BatchNormalization(name="batch_normalization")(x)
    x = keras.layers.ReLU(6.0, name="re_lu")(x)
    y = keras.layers.SeparableConv2D(8, 3, padding="same", name="separable_conv2d")(x)
    y = keras.layers.ReLU(name="re_lu_1")(y)
    x = keras.layers.Add(name="add")([x, y])
    x = keras.layers.ReLU(name="re_lu_2")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv2d_1")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise_conv2d")(x)
    x = keras.layers.BatchNormalization(name="batch_normalization_1")(x)
    x = keras.layers.ReLU(6.0, name="re_lu_3")(x)
    x = keras.layers.Conv2D(16, 1, name="conv2d_2")(x)
    x = keras.layers.ReLU(name="re_lu_4")(x)
    x = keras.layers.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
    x = keras.layers.Dense(classes, name="dense")(x)
    return _randomize_bn(keras.Model(inp, x), seed)


def branches_concat(seed=0, size=12):
    """Two branches (MaxPool, strided DW) concatenated, Flatten > Dense > ReLU > Dense."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, 1))
    x = keras.layers.Rescaling(1 / 255, name="rescaling")(inp)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2d")(x)
    a = keras.layers.Conv2D(4, 3, padding="same", name="conv2d_1")(x)
    a = keras.layers.MaxPooling2D(padding="same", name="max_pooling2d")(a)
    a = keras.layers.ReLU(name="re_lu")(a)
    b = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", name="depthwise_conv2d")(x)
    b = keras.layers.ReLU(6.0, name="re_lu_1")(b)
    x = keras.layers.Concatenate(name="concatenate")([a, b])
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(16, activation="relu", name="dense")(x)
    x = keras.layers.Dense(5, name="dense_1")(x)
    return keras.Model(inp, x)


def decoder(seed=0, size=6):
    """Conv > Conv2DTranspose k4 > ReLU > Conv2DTranspose k3 (float input, InputQuantizer)."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, 4))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2d")(inp)
    x = keras.layers.Conv2DTranspose(8, 4, strides=2, padding="same", activation="relu", name="conv2d_transpose")(x)
    x = keras.layers.Conv2DTranspose(2, 3, strides=2, padding="same", name="conv2d_transpose_1")(x)
    return keras.Model(inp, x)


def images(n, size=16, channels=3, seed=0):
    """Smooth random uint8 images as float32 (so that calibration sees structure)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 255, (n, size // 4 + 1, size // 4 + 1, channels))
    up = np.repeat(np.repeat(base, 4, axis=1), 4, axis=2)[:, :size, :size]
    noise = rng.normal(0, 20, up.shape)
    return np.clip(np.round(up + noise), 0, 255).astype(np.float32)

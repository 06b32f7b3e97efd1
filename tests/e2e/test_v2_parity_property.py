"""Property: random residual and depthwise-separable Keras graphs, quantized with random Akida 2.0
schemes (4/8-bit weights and activations, per-axis or per-tensor), convert to akida_core models
whose integer outputs equal the quantized Keras model's bit for bit."""
import keras
import numpy as np
import pytest

from quantizeml.models import QuantizationParams, quantize

from .test_v2_conversion import assert_exact

L = keras.layers


def random_graph(rng):
    """A random functional model: input conv or float input, residual / separable / strided
    cells, a GAP or Flatten head."""
    size = int(rng.choice([8, 10, 12]))
    float_input = bool(rng.integers(2))
    channels = int(rng.integers(2, 5)) if float_input else int(rng.choice([1, 3]))
    inp = keras.Input((size, size, channels))
    x = inp if float_input else L.Rescaling(1 / 255)(inp)
    width = int(rng.choice([4, 6, 8]))
    x = L.Conv2D(width, 3, padding="same")(x)
    if rng.integers(2):
        x = L.MaxPooling2D(padding="same")(x)
    x = L.ReLU(6.0 if rng.integers(2) else None)(x)
    for _ in range(int(rng.integers(1, 4))):
        cell = rng.integers(4)
        if cell == 0:  # residual, depthwise-separable branch
            y = L.SeparableConv2D(width, 3, padding="same")(x)
            y = L.BatchNormalization()(y)
            y = L.ReLU()(y)
            x = L.Add()([x, y])
            if rng.integers(2):
                x = L.ReLU()(x)
        elif cell == 1:  # residual, DW + pointwise
            y = L.DepthwiseConv2D(3, padding="same")(x)
            y = L.ReLU(6.0)(y)
            y = L.Conv2D(width, 1)(y)
            x = L.Add()([y, x])
        elif cell == 2:  # strided depthwise-separable
            x = L.DepthwiseConv2D(3, strides=2, padding="same")(x)
            x = L.ReLU()(x)
            width = int(rng.choice([6, 8, 12]))
            x = L.Conv2D(width, 1, activation="relu")(x)
        else:  # two branches concatenated
            a = L.Conv2D(4, 3, padding="same", activation="relu")(x)
            b = L.Conv2D(4, 1, activation="relu")(x)  # Akida: equal bits on both inputs
            x = L.Concatenate()([a, b])
            x = L.Conv2D(width, 1, activation="relu")(x)
    if rng.integers(2):
        x = L.GlobalAveragePooling2D()(x)
    else:
        x = L.Flatten()(x)
        x = L.Dense(8, activation="relu")(x)
    x = L.Dense(5)(x)
    model = keras.Model(inp, x)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c),
                               rng.normal(0, 0.1, c), rng.uniform(0.5, 2, c)])
    shape = (size, size, channels)
    if float_input:
        samples = rng.normal(0, 1, (40,) + shape).astype(np.float32)
    else:
        samples = rng.integers(0, 256, (40,) + shape).astype(np.float32)
    return model, samples


@pytest.mark.parametrize("seed", range(10))
def test_random_graphs_convert_bit_exact(seed):
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    model, samples = random_graph(rng)
    bits = int(rng.choice([4, 8]))
    qparams = QuantizationParams(weight_bits=bits, input_weight_bits=int(rng.choice([4, 8])),
                                 activation_bits=int(rng.choice([4, 8])),
                                 per_tensor_activations=bool(rng.integers(2)),
                                 last_output_bits=[None, 8, 16][int(rng.integers(3))])
    qmodel = quantize(model, qparams=qparams, samples=samples[:24])
    assert_exact(qmodel, samples[24:])

"""The three benchmark architectures, built directly in akida_core with random valid weights.

- `mnist_cnn()`: a small MNIST-style CNN on 28×28×1;
- `ds_cnn_kws()`: a DS-CNN keyword-spotting net on 49×10×1 MFCC-like inputs (separable layers);
- `akidanet_05()`: an AkidaNet-like MobileNet at 0.5 width on 128×128×3.
Used by bench/runtime.py, bench/mapping.py and the tests that need realistic models.
"""
import numpy as np

import akida_core as ak
from akida_core.layers.base import weight_range

MAX = ak.PoolType.Max
GAP = ak.PoolType.Average


def randomize(model, seed=0):
    """Random weights within each layer's bit width; thresholds and act_steps that keep activations busy."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.layer_type == ak.LayerType.InputData:
            continue
        low, high = weight_range(layer.params.weights_bits)
        for name in layer.variables.names:
            shape = layer.variables[name].shape
            if name.startswith("weights"):
                layer.variables[name] = rng.integers(low, high + 1, shape).astype(np.int8)
        # potentials grow like sqrt(fan-in): scale the steps so outputs spread over the levels
        fan_in = layer.potential_bound() / max(abs(low), high) / (2 ** layer.input_bits - 1)
        scale = max(1.0, float(np.sqrt(fan_in)) * max(abs(low), high) * (2 ** layer.input_bits - 1) / 8)
        units = layer.variables["threshold"].shape
        layer.variables["threshold"] = rng.integers(0, int(scale) + 1, units).astype(np.int32)
        # act_step a multiple of 1/16, as quantizeml's conversions make it: Akida's act_step
        # register has 4 fractional bits (and below 2**16 the runtime's float32 path stays exact)
        step = max(round(scale / 4 * 16), 1) / 16
        layer.variables["act_step"] = np.full(units, step, np.float32)
    return model


def mnist_cnn(seed=0):
    """28×28×1 → InputConv 3×3 32 (max 2) → Conv 3×3 64 (max 2) → Conv 3×3 64 → FullyConnected 10."""
    model = ak.Model()
    model.add(ak.InputConvolutional((28, 28, 1), (3, 3), 32, weights_bits=8, act_bits=4,
                                    pool_type=MAX, pool_size=(2, 2), name="conv_0"))
    model.add(ak.Convolutional((3, 3), 64, weights_bits=4, act_bits=4, pool_type=MAX, pool_size=(2, 2),
                               name="conv_1"))
    model.add(ak.Convolutional((3, 3), 64, weights_bits=4, act_bits=4, name="conv_2"))
    model.add(ak.FullyConnected(10, weights_bits=4, activation=False, name="classifier"))
    return randomize(model, seed)


def ds_cnn_kws(seed=0):
    """49×10×1 → InputConv 5×5/2 64 → 4 × SeparableConv 3×3 64 (last with GAP) → FullyConnected 33."""
    model = ak.Model()
    model.add(ak.InputConvolutional((49, 10, 1), (5, 5), 64, kernel_stride=(2, 2), weights_bits=8,
                                    act_bits=4, name="conv_0"))
    for i in range(1, 5):
        model.add(ak.SeparableConvolutional((3, 3), 64, weights_bits=4, act_bits=4,
                                            pool_type=GAP if i == 4 else ak.PoolType.NoPooling,
                                            name=f"separable_{i}"))
    model.add(ak.FullyConnected(33, weights_bits=4, activation=False, name="classifier"))
    return randomize(model, seed)


def akidanet_05(seed=0, input_size=128, classes=10):
    """AkidaNet-like MobileNet, alpha 0.5: 4 standard convs then 10 separable convs, GAP, classifier."""
    model = ak.Model()
    model.add(ak.InputConvolutional((input_size, input_size, 3), (3, 3), 16, kernel_stride=(2, 2),
                                    weights_bits=8, act_bits=4, name="conv_0"))
    convs = [(32, 1), (64, 2), (64, 1)]
    for i, (filters, stride) in enumerate(convs, start=1):
        model.add(ak.Convolutional((3, 3), filters, kernel_stride=(stride, stride), weights_bits=4,
                                   act_bits=4, name=f"conv_{i}"))
    separables = [(128, 2), (128, 1), (256, 2), (256, 1), (256, 1), (256, 1), (256, 1), (256, 1),
                  (512, 2), (512, 1)]
    for i, (filters, stride) in enumerate(separables, start=4):
        last = i == 3 + len(separables)
        model.add(ak.SeparableConvolutional((3, 3), filters, kernel_stride=(stride, stride), weights_bits=4,
                                            act_bits=4, pool_type=GAP if last else ak.PoolType.NoPooling,
                                            name=f"separable_{i}"))
    model.add(ak.FullyConnected(classes, weights_bits=4, activation=False, name="classifier"))
    return randomize(model, seed)


BENCHMARK_MODELS = {"mnist_cnn": mnist_cnn, "ds_cnn_kws": ds_cnn_kws, "akidanet_05": akidanet_05}
"""Name -> builder of the three benchmark architectures."""


def random_inputs(model, batch, seed=0):
    """A batch of random integer inputs valid for the model."""
    rng = np.random.default_rng(seed)
    first = model.layers[0]
    return rng.integers(0, 2 ** first.input_bits, (batch, *model.input_shape)).astype(np.uint8)

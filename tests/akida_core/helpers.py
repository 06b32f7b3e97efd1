"""Small model builders shared by the akida_core tests."""
import numpy as np

import akida_core as ak
from akida_core.layers.base import weight_range


def randomize(model, seed=0, threshold_range=(-20, 20), act_step_range=(0.5, 8.0)):
    """Fill every layer's variables with random values valid for its bit widths."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for name in layer.variables.names:
            current = layer.variables[name]
            if name.startswith("weights"):
                low, high = weight_range(layer.params.weights_bits)
                layer.variables[name] = rng.integers(low, high + 1, current.shape).astype(np.int8)
            elif name == "threshold":
                layer.variables[name] = rng.integers(*threshold_range, current.shape).astype(np.int32)
            elif name == "act_step":
                layer.variables[name] = rng.uniform(*act_step_range, current.shape).astype(np.float32)
    return model


def small_cnn(activation_last=False, seed=0):
    """InputConvolutional > Convolutional(max pool) > SeparableConvolutional(gap) > FullyConnected."""
    model = ak.Model()
    model.add(ak.InputConvolutional(input_shape=(9, 8, 1), kernel_size=(3, 3), filters=4, weights_bits=8,
                                    act_bits=4, padding_value=3, name="ic"))
    model.add(ak.Convolutional(kernel_size=(3, 3), filters=5, weights_bits=4, act_bits=2,
                               pool_type=ak.PoolType.Max, pool_size=(2, 2), name="conv"))
    model.add(ak.SeparableConvolutional(kernel_size=(3, 3), filters=6, weights_bits=4, act_bits=4,
                                        pool_type=ak.PoolType.Average, name="sep"))
    model.add(ak.FullyConnected(units=3, weights_bits=2, activation=activation_last, act_bits=1, name="fc"))
    return randomize(model, seed, threshold_range=(-200, 200), act_step_range=(2.0, 60.0))

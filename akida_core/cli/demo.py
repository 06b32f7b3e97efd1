"""The akida_core demo: build a model by hand, run it, summarise it, save and reload it."""
import os
import tempfile
import time

import numpy as np

from ..enums import Padding, PoolType
from ..layers import Convolutional, FullyConnected, InputConvolutional
from ..layers.base import weight_range
from ..model.graph import Model


def build_demo_model(seed=0):
    """A small image model (28×28×1) with random valid weights, in the Sequential API of the user guide."""
    model = Model()
    model.add(InputConvolutional(input_shape=(28, 28, 1), kernel_size=(3, 3), filters=16, name="conv_0",
                                 weights_bits=8, act_bits=4, pool_type=PoolType.Max, pool_size=(2, 2)))
    model.add(Convolutional(kernel_size=(3, 3), filters=32, name="conv_1", weights_bits=4, act_bits=4,
                            pool_type=PoolType.Max, pool_size=(2, 2), padding=Padding.Same))
    model.add(FullyConnected(units=10, name="classifier", weights_bits=4, activation=False))
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        low, high = weight_range(layer.params.weights_bits)
        layer.variables["weights"] = rng.integers(low, high + 1, layer.variables["weights"].shape).astype(np.int8)
        units = layer.variables["threshold"].shape
        layer.variables["act_step"] = np.full(units, 4.0 * layer.potential_bound() ** 0.5 / 8, np.float32)
    return model


def run_demo(output=None, samples=256, seed=0, print_fn=print):
    """Build, run, summarise, save and reload the demo model; return the saved path."""
    model = build_demo_model(seed)
    model.summary(print_fn=print_fn)
    inputs = np.random.default_rng(seed).integers(0, 256, (samples, 28, 28, 1)).astype(np.uint8)
    start = time.perf_counter()
    outputs = model.predict(inputs)
    seconds = time.perf_counter() - start
    print_fn(f"\npredict on {samples} samples: {seconds * 1000:.1f} ms ({samples / seconds:,.0f} samples/s), "
             f"outputs {outputs.shape} {outputs.dtype}")
    print_fn(str(model.statistics))
    path = output or os.path.join(tempfile.mkdtemp(prefix="akida_core_demo_"), "demo.fbz")
    model.save(path)
    reloaded = Model(path)
    same = np.array_equal(reloaded.predict(inputs), outputs)
    print_fn(f"\nsaved to {path} ({os.path.getsize(path):,} bytes); reloaded outputs identical: {same}")
    if not same:
        raise RuntimeError("reloaded model outputs differ: please report this bug")
    return path

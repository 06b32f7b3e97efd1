"""Akida 2.0 models for the mapping tests: tiny builders, the sheet's 22-layer model, residual nets."""
import numpy as np

import akida_core as ak
from bench.models_v2 import mobilenet_22  # noqa: F401 (the sheet's 22-layer model)

A, P, POOL = ak.ActivationType, ak.Padding, ak.PoolType


def net(*layers, shape=(8, 8, 8), bits=8, inbounds=None):
    """InputData(shape, bits) then `layers` in a chain (inbounds: {index: [indices]} of graph edges)."""
    model = ak.Model()
    model.add(ak.InputData(shape, input_bits=bits, name="input"))
    for i, layer in enumerate(layers, start=1):
        edges = (inbounds or {}).get(i)
        model.add(layer, None if edges is None else [model.layers[k] for k in edges])
    return model


def conv(filters=8, kernel=3, name="L", **kwargs):
    """Conv2D named `name` (defaults: 8 filters, kernel 3, ReLU, 8-bit weights and outputs)."""
    return ak.Conv2D(filters, kernel, name=name, **kwargs)


def follower(name="next"):
    """A 1x1 Conv2D that follows a max-pooling layer (so it does not end the sequence)."""
    return ak.Conv2D(8, 1, name=name)


def randomize(model, seed=0):
    """Random weights and small shifts/scales for every neural layer (outputs stay busy, not saturated)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        names = layer.variables.names if layer.layer_type != ak.LayerType.InputData else []
        for name in names:
            current = layer.variables[name]
            if name == "weights":
                spec = layer.variable_specs()[name]
                value = rng.integers(max(spec.low, -8), min(spec.high, 7), current.shape, endpoint=True)
            elif name == "output_shift":
                value = np.full(current.shape, -6)
            elif name in ("bias",):
                value = rng.integers(-20, 20, current.shape, endpoint=True)
            elif name == "scales":
                value = np.full(current.shape, 0.5)
            else:
                continue
            layer.variables[name] = value.astype(current.dtype)
    return model


def residual_akidanet(blocks=3, size=32, width=32, seed=0):
    """8-bit AkidaNet-like residual model: InputConv2D stem, DW + pointwise residual blocks (each Add followed
    by a convolution, as Akida 2.0 needs), strided downsampling, GAP head, Dense1D classifier, Dequantizer."""
    model = ak.Model()
    model.add(ak.InputConv2D((size, size, 3), width, 3, kernel_stride=2, name="stem"))
    model.add(ak.Conv2D(width, 3, name="conv_0"))
    source = model.get_layer("conv_0")
    channels = width
    for b in range(blocks):
        model.add(ak.DepthwiseConv2D(3, name=f"dw_{b}"))
        model.add(ak.Conv2D(channels, 1, activation=A.NoActivation, name=f"pw_{b}"))
        model.add(ak.Add(name=f"add_{b}"), [source, model.get_layer(f"pw_{b}")])
        stride = 2 if b % 2 == 1 else 1
        channels = channels * 2 if stride == 2 else channels
        model.add(ak.Conv2D(channels, 3, kernel_stride=stride, name=f"conv_{b + 1}"))
        source = model.get_layer(f"conv_{b + 1}")
    model.add(ak.Conv2D(channels, 3, pool_type=POOL.Average, name="head"))
    model.add(ak.Dense1D(10, name="classifier"))
    model.add(ak.Dequantizer(name="dequantizer"))
    return randomize(model, seed)

"""Random Akida 2.0 models for the differential tests: small graphs with branches, Add, Concatenate,
temporal layers, LUTs, poolings, 4- and 8-bit outputs, random shifts and scales (seeded)."""
import numpy as np

import akida_core as ak

A = ak.ActivationType
P = ak.Padding


def randomize(layer, rng, extreme=False):
    """Random values for every variable of `layer` (extreme: shifts up to ±31, full ranges)."""
    def ints(low, high, shape, dtype):
        return rng.integers(low, high, shape, endpoint=True).astype(dtype)
    for name in layer.variables.names:
        current = layer.variables[name]
        shape, dtype = current.shape, current.dtype
        if name == "weights":
            spec = layer.variable_specs()[name]
            value = ints(spec.low, spec.high, shape, dtype)
        elif name in ("bias",):
            value = ints(-128, 127, shape, dtype)
        elif name in ("bias_shift", "max_value_shift"):
            value = ints(0, 31 if extreme else 10, shape, dtype)
        elif name in ("input_shift", "a_shift", "b_shift"):
            value = ints(0, 31 if extreme else 3, shape, dtype)
        elif name in ("output_shift", "activation_shift", "new_state_shift"):
            value = ints(-31, 31, shape, dtype) if extreme else ints(-12, 1, shape, dtype)
        elif name == "internal_state_outputs_shift":
            value = ints(-31, 4, shape, dtype) if extreme else ints(-9, -1, shape, dtype)
        elif name in ("output_scales", "activation_scales", "new_state_scale", "max_value", "padding_value",
                      "zero_points"):
            value = ints(0, 255, shape, dtype)
        elif name == "lut_values":
            value = ints(-2 ** 31, 2 ** 31 - 1, shape, dtype) if extreme else ints(-3000, 3000, shape, dtype)
        elif name in ("A_real", "A_imag"):
            value = ints(-2 ** 15, 2 ** 15 - 1, shape, dtype) if extreme else ints(-400, 400, shape, dtype)
        elif name in ("in_proj", "out_proj"):
            value = ints(-128, 127, shape, dtype)
        elif name == "scales":
            value = rng.uniform(0, 20, shape).astype(np.float32)
        else:
            raise AssertionError(f"no random rule for variable {name}")
        layer.variables[name] = value


def _bits(rng):
    return int(rng.choice([8, 12, 16, 20, 24, 28, 32]))


def _neural(rng, kind, shape, last):
    """A random neural layer of `kind` fitting an input of `shape`."""
    h, w, c = shape
    common = {"output_bits": int(rng.choice([4, 8, 8, 16, 32] if last else [4, 8, 8])),
              "buffer_bits": _bits(rng), "post_op_buffer_bits": _bits(rng),
              "activation": A(int(rng.integers(0, 3)))}
    if kind in ("Conv2D", "DepthwiseConv2D"):
        k = int(rng.choice([1, 3, 5]))
        stride = int(rng.choice([1, 2])) if k in (1, 3) and (kind == "Conv2D" or k == 3) else 1
        padding = P(int(rng.choice([0, 1, 1, 2]))) if min(h, w) >= k else P.Same
        pool = int(rng.choice([0, 0, 1, 2]))
        if pool == 1:
            size = int(rng.choice([1, 2, 3] if padding != P.SameUpper else [1, 3]))
            pool_args = {"pool_type": ak.PoolType.Max, "pool_size": size,
                         "pool_stride": int(rng.integers(1, size + 1))}
        elif pool == 2:
            pool_args = {"pool_type": ak.PoolType.Average}
        else:
            pool_args = {}
        if kind == "Conv2D":
            return ak.Conv2D(int(rng.integers(1, 4)), k, kernel_stride=stride, padding=padding,
                             weights_bits=int(rng.choice([4, 8])), **pool_args, **common)
        return ak.DepthwiseConv2D(k, kernel_stride=stride, padding=padding, weights_bits=int(rng.choice([4, 8])),
                                  **pool_args, **common)
    if kind == "Conv2DTranspose":
        return ak.Conv2DTranspose(int(rng.integers(1, 4)), int(rng.integers(1, 6)), **common)
    if kind == "DepthwiseConv2DTranspose":
        return ak.DepthwiseConv2DTranspose(int(rng.integers(1, 6)), **common)
    if kind == "Dense1D":
        return ak.Dense1D(int(rng.integers(1, 5)), weights_bits=int(rng.choice([4, 8])), **common)
    if kind == "BufferTempConv":
        return ak.BufferTempConv(int(rng.integers(1, 4)), int(rng.integers(2, 5)), **common)
    if kind == "DepthwiseBufferTempConv":
        return ak.DepthwiseBufferTempConv(int(rng.integers(2, 5)), **common)
    raise AssertionError(kind)


KINDS = ("Conv2D", "DepthwiseConv2D", "Conv2DTranspose", "DepthwiseConv2DTranspose", "BufferTempConv",
         "DepthwiseBufferTempConv", "Add", "Concatenate")


def random_model(rng, extreme=False):
    """A random Akida 2.0 graph of 2-7 layers and a matching random input batch (2-4 samples)."""
    model = ak.Model()
    h, w = int(rng.integers(2, 6)), int(rng.integers(2, 6))
    start = rng.choice(["data8", "data4", "inconv", "quant"])
    if start == "inconv":
        c = int(rng.choice([1, 3]))
        k = int(rng.integers(1, 5))
        padding = P.Valid if rng.random() < 0.3 and min(h, w) >= k else P.Same
        pool = {"pool_type": ak.PoolType.Max, "pool_size": 2} if rng.random() < 0.3 else {}
        if not _try_add(model, ak.InputConv2D(
                (h, w, c), int(rng.integers(1, 4)), k, padding=padding, kernel_stride=int(rng.integers(1, 3)),
                output_bits=int(rng.choice([4, 8])), activation=A(int(rng.integers(0, 3))), buffer_bits=_bits(rng),
                post_op_buffer_bits=_bits(rng), weights_bits=int(rng.choice([4, 8])), **pool)):
            model.add(ak.InputConv2D((h, w, c), 2, 3))
        randomize(model.layers[0], rng, extreme)
    elif start == "quant":
        c = int(rng.integers(1, 4))
        model.add(ak.Quantizer((h, w, c), int(rng.choice([4, 8])), bool(rng.random() < 0.5)))
        randomize(model.layers[0], rng, extreme)
    else:
        c = int(rng.integers(1, 4))
        model.add(ak.InputData((h, w, c), input_bits=8 if start == "data8" else 4))
    for _ in range(int(rng.integers(1, 5))):
        current = model.layers[-1]
        kind = rng.choice(KINDS)
        if kind in ("Add", "Concatenate"):
            source = model.layers[int(rng.integers(0, len(model.layers)))]
            if source.output_bits > 8 or current.output_bits > 8:
                continue
            branch = ak.Conv2D(int(rng.integers(1, 3)) if kind == "Concatenate" else source.output_dims[2], 1,
                               output_bits=source.output_bits, activation=A.NoActivation if source.output_signed
                               else A.ReLU)
            if not _try_add(model, branch, [source]):
                continue
            randomize(branch, rng, extreme)
            other = current if tuple(current.output_dims) == tuple(branch.output_dims) or kind == "Concatenate" \
                else source
            if kind == "Concatenate" and (tuple(other.output_dims[:2]) != tuple(branch.output_dims[:2])
                                          or other.output_bits != branch.output_bits
                                          or other.output_signed != branch.output_signed):
                continue
            if kind == "Add" and tuple(other.output_dims) != tuple(branch.output_dims):
                continue
            layer = ak.Add(output_bits=int(rng.choice([4, 8])), buffer_bits=_bits(rng)) if kind == "Add" \
                else ak.Concatenate()
            if not _try_add(model, layer, [other, branch]):
                continue
        else:
            if current.output_bits > 8 and kind.endswith("BufferTempConv"):
                continue
            layer = _neural(rng, kind, current.output_dims, last=False)
            if not _try_add(model, layer):
                continue
        randomize(layer, rng, extreme)
    if rng.random() < 0.3:
        model.add(_neural(rng, "Dense1D", model.output_shape, last=True))
        randomize(model.layers[-1], rng, extreme)
    if rng.random() < 0.3:
        model.add(ak.Dequantizer())
        randomize(model.layers[-1], rng, extreme)
    return model, random_inputs(model, rng, int(rng.integers(2, 5)))


def _try_add(model, layer, inbounds=None):
    """Add unless the shapes do not fit (a pooling or a Valid kernel larger than its input)."""
    try:
        model.add(layer, inbounds)
    except ak.ModelStructureError as err:
        assert "strictly positive" in str(err), err
        return False
    return True


def random_inputs(model, rng, batch):
    """Inputs of the model's input dtype and range."""
    first = model.layers[0]
    shape = (batch, *model.input_shape)
    if first.layer_type.name == "Quantizer":
        return rng.uniform(-20, 20, shape).astype(np.float32)
    if first.layer_type.name == "InputConv2D":
        return rng.integers(0, 255, shape, endpoint=True).astype(np.uint8)
    bits = first.params.input_bits
    if bits <= 4:
        return rng.integers(0, 2 ** bits - 1, shape, endpoint=True).astype(np.uint8)
    return rng.integers(-128, 127, shape, endpoint=True).astype(np.int8)

"""Integer-only numpy evaluation of exported Akida 1.0 blocks (test reference).

No TensorFlow and no akida_core: only numpy int64 arithmetic on the exported integers.
"""
import numpy as np


def _pads(size, kernel, stride, padding):
    if padding == "valid":
        return 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def correlate(x, w, stride, padding, pad_value=0):
    """Cross-correlation of int x (n, h, w, c) with int w (kh, kw, c, f): loops over the kernel."""
    kh, kw = w.shape[:2]
    (t, b), (l, r) = _pads(x.shape[1], kh, stride[0], padding), _pads(x.shape[2], kw, stride[1],
                                                                      padding)
    x = np.pad(x.astype(np.int64), ((0, 0), (t, b), (l, r), (0, 0)), constant_values=pad_value)
    oh = (x.shape[1] - kh) // stride[0] + 1
    ow = (x.shape[2] - kw) // stride[1] + 1
    out = np.zeros((x.shape[0], oh, ow, w.shape[-1]), np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i:i + stride[0] * (oh - 1) + 1:stride[0],
                      j:j + stride[1] * (ow - 1) + 1:stride[1], :]
            out += np.einsum("nhwc,cf->nhwf", patch, w[i, j].astype(np.int64))
    return out


def depthwise(x, w, stride, padding):
    """Depthwise cross-correlation, w (kh, kw, c, 1), zero padding."""
    outs = [correlate(x[..., c:c + 1], w[:, :, c:c + 1, :], stride, padding)
            for c in range(x.shape[-1])]
    return np.concatenate(outs, axis=-1)


def max_pool(p, size, stride, padding):
    """Max pooling of int potentials; padded cells never win."""
    (t, b), (l, r) = _pads(p.shape[1], size[0], stride[0], padding), _pads(
        p.shape[2], size[1], stride[1], padding)
    low = np.iinfo(np.int64).min
    p = np.pad(p, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=low)
    oh = (p.shape[1] - size[0]) // stride[0] + 1
    ow = (p.shape[2] - size[1]) // stride[1] + 1
    out = np.full((p.shape[0], oh, ow, p.shape[3]), low, np.int64)
    for i in range(size[0]):
        for j in range(size[1]):
            out = np.maximum(out, p[:, i:i + stride[0] * (oh - 1) + 1:stride[0],
                                    j:j + stride[1] * (ow - 1) + 1:stride[1]])
    return out


#: Akida 1.0's 20-bit signed potential register (FullyConnected, global average pooling).
LOW, HIGH = -2**19, 2**19 - 1


def global_sum(p):
    """The global pooling register: row-major, saturating after every addition."""
    acc = np.zeros((p.shape[0], p.shape[3]), np.int64)
    for y in range(p.shape[1]):
        for x in range(p.shape[2]):
            acc = np.clip(acc + p[:, y, x], LOW, HIGH)
    return acc


def block_potential(block, x):
    """Akida potential of a block (weights as exported, Keras layouts, no bias)."""
    kind = block["layer_type"]
    if kind == "QuantizedDense":  # a FullyConnected: saturated to 20 bits
        p = x.reshape(x.shape[0], -1).astype(np.int64) @ block["weights"].astype(np.int64)
        return np.clip(p, LOW, HIGH)
    if x.ndim == 2:  # after a global pooling, Akida's layers see (1, 1, channels)
        x = x[:, None, None, :]
    stride, padding = block["strides"], block["padding"]
    if kind == "QuantizedConv2D":
        pad_value = block["padding_value"] if block["is_input_layer"] else 0
        return correlate(x, block["weights"], stride, padding, pad_value)
    dw = depthwise(x, block["weights"], stride, padding)
    if kind == "QuantizedDepthwiseConv2D":
        return dw
    return correlate(dw, block["weights_pw"], (1, 1), "valid")


def block_forward(block, x):
    """Integer output of a block: levels (uint8) with activation, else the potential p."""
    p = block_potential(block, x)
    if block["pool_type"] == "max":
        p = max_pool(p, block["pool_size"], block["pool_stride"], block["pool_padding"])
    elif block["pool_type"] == "global_average":
        p = global_sum(p)
    if not block["activation"]:
        return p
    bits = block["act_bits"]
    # Akida's act_step register keeps 4 fractional bits.
    step = np.floor(block["act_step"].astype(np.float32).astype(np.float64) * 16) / 16
    step = step * 2.0 ** (4 - bits)
    out = np.zeros(p.shape, np.uint8)
    for n in range(2**bits - 1):
        bound = block["threshold"].astype(np.int64) + np.floor(n * step).astype(np.int64)
        out += (p > bound).astype(np.uint8)
    return out


def block_predict(block, p):
    """Akida predict of a last block without activation: float32(p - T) / float32(act_step)."""
    step = np.floor(block["act_step"].astype(np.float32).astype(np.float64) * 16) / 16
    return (p - block["threshold"].astype(np.int64)).astype(np.float32) / step.astype(np.float32)


def model_forward(spec, x_int):
    """Run every exported block on uint inputs; return (integer output, float output).

    The float output is Akida ``predict`` for a last block without activation, else the levels
    divided by the exported output divisor (the quantized model's Dequantizer).
    """
    x = x_int
    for block in spec["blocks"]:
        x = block_forward(block, x)
    last = spec["blocks"][-1]
    if last["activation"]:
        return x, x.astype(np.float32) / spec["output_divisor"].astype(np.float32)
    return x, block_predict(last, x)

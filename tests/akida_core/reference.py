"""Readable loop references of the Akida 1.0 integer maths (slow, obviously right).

Written straight from docs/semantics.md with Python ints; the fast kernels and the layers are tested
equal to these.
"""
import math

import numpy as np


def same_pad(size, kernel, stride):
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, out


def conv_positions(size, kernel, stride, same):
    """(pad_before, out_size) of one axis."""
    if same:
        return same_pad(size, kernel, stride)
    return 0, (size - kernel) // stride + 1


def correlate(x, w, strides, same, pad_value=0):
    """Cross-correlation, loops over every output element. x (n,h,w,c), w (kh,kw,c,f)."""
    n, h, wd, c = x.shape
    kh, kw, _, f = w.shape
    top, oh = conv_positions(h, kh, strides[0], same)
    left, ow = conv_positions(wd, kw, strides[1], same)
    out = np.zeros((n, oh, ow, f), np.int64)
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for o in range(f):
                    acc = 0
                    for di in range(kh):
                        for dj in range(kw):
                            y, xx = i * strides[0] + di - top, j * strides[1] + dj - left
                            for ch in range(c):
                                v = int(x[b, y, xx, ch]) if 0 <= y < h and 0 <= xx < wd else pad_value
                                acc += v * int(w[di, dj, ch, o])
                    out[b, i, j, o] = acc
    return out


def convolve(x, w, strides, same):
    """True convolution (Akida Convolutional): correlation with the kernel flipped on both axes."""
    return correlate(x, w[::-1, ::-1], strides, same)


def separable(x, dw, pw, strides, same):
    """Depthwise (kh,kw,c,1) true convolution then pointwise (1,1,c,f)."""
    c = x.shape[3]
    parts = [convolve(x[..., ch:ch + 1], dw[:, :, ch:ch + 1, :], strides, same) for ch in range(c)]
    depth = np.concatenate(parts, axis=3)
    n, oh, ow, _ = depth.shape
    out = np.zeros((n, oh, ow, pw.shape[3]), np.int64)
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for o in range(pw.shape[3]):
                    out[b, i, j, o] = sum(int(depth[b, i, j, ch]) * int(pw[0, 0, ch, o]) for ch in range(c))
    return out


def max_pool(p, size, stride, same):
    n, h, w, c = p.shape
    top, oh = conv_positions(h, size[0], stride[0], same)
    left, ow = conv_positions(w, size[1], stride[1], same)
    out = np.zeros((n, oh, ow, c), np.int64)
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    vals = [int(p[b, y, xx, ch])
                            for y in range(i * stride[0] - top, i * stride[0] - top + size[0])
                            for xx in range(j * stride[1] - left, j * stride[1] - left + size[1])
                            if 0 <= y < h and 0 <= xx < w]
                    out[b, i, j, ch] = max(vals)
    return out


def fully_connected(x, w):
    """x (n,h,w,c), w (1,1,N,units) with column-major rows: row = c*H*W + w*H + h."""
    n, h, wd, c = x.shape
    units = w.shape[3]
    out = np.zeros((n, 1, 1, units), np.int64)
    for b in range(n):
        for u in range(units):
            acc = 0
            for i in range(h):
                for j in range(wd):
                    for ch in range(c):
                        acc += int(x[b, i, j, ch]) * int(w[0, 0, ch * h * wd + j * h + i, u])
            out[b, 0, 0, u] = acc
    return out


def activation(p, threshold, act_step, act_bits):
    """clip(ceil((p - T) / (act_step * 2**(4 - b))), 0, 2**b - 1) with exact rational arithmetic."""
    from fractions import Fraction
    out = np.zeros(p.shape, np.int64)
    levels = 2 ** act_bits - 1
    for idx in np.ndindex(p.shape):
        u = idx[-1]
        step = Fraction(float(act_step[u])) * Fraction(2) ** (4 - act_bits)
        value = math.ceil(Fraction(int(p[idx]) - int(threshold[u])) / step)
        out[idx] = min(max(value, 0), levels)
    return out


def register_step(act_step):
    """floor(act_step * 16) / 16 per neuron, with exact rationals (Akida's 4-fraction-bit register)."""
    from fractions import Fraction
    return np.array([float(Fraction(math.floor(Fraction(float(s)) * 16), 16)) for s in act_step], np.float32)


def saturate(p, bits):
    """Clip every value to the signed `bits`-bit range, one element at a time."""
    low, high = -2 ** (bits - 1), 2 ** (bits - 1) - 1
    out = np.zeros(p.shape, np.int64)
    for idx in np.ndindex(p.shape):
        out[idx] = min(max(int(p[idx]), low), high)
    return out


def global_sum(p, bits):
    """Global pooling in a `bits`-bit saturating register: rows, then columns, clip after each add."""
    n, h, w, c = p.shape
    low, high = -2 ** (bits - 1), 2 ** (bits - 1) - 1
    out = np.zeros((n, 1, 1, c), np.int64)
    for b in range(n):
        for ch in range(c):
            acc = 0
            for y in range(h):
                for x in range(w):
                    acc = min(max(acc + int(p[b, y, x, ch]), low), high)
            out[b, 0, 0, ch] = acc
    return out

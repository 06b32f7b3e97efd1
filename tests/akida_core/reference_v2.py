"""Readable loop references of the Akida 2.0 integer maths (slow, obviously right).

Written straight from akida2-layers.md with Python ints, one output element at a time, sharing no
code with akida_core.kernels_v2; the vectorised layers and graphs are tested equal to these.
`run_model(model, x, states)` runs a whole model; `states` (a dict) carries the temporal state
across calls as the runtime does.
"""
import math

import numpy as np


# --- notation of the sheet (§0) -----------------------------------------------------------------

def sat(v, b):
    return max(-2 ** (b - 1), min(2 ** (b - 1) - 1, v))


def usat(v, b):
    return max(0, min(2 ** b - 1, v))


def wrap32(v):
    v %= 2 ** 32
    return v - 2 ** 32 if v >= 2 ** 31 else v


def R(v, s):
    if s >= 0:
        return v * 2 ** s
    return (v + 2 ** (-s - 1)) // 2 ** (-s)  # Python's // floors: round half up


def out_clip(v, ob):
    return usat(v, ob) if ob <= 4 else sat(v, ob)


def out_dtype(ob):
    if ob <= 4:
        return np.uint8
    if ob <= 8:
        return np.int8
    return np.int16 if ob == 16 else np.int32


# --- geometry (§4) ------------------------------------------------------------------------------------

def geometry(n, k, s, padding):
    """(out, pad_before) of one axis."""
    if padding == "Valid":
        return (n - k) // s + 1, 0
    out = -(-n // s)
    if padding == "Same":
        return out, max((out - 1) * s + k - n, 0) // 2
    return out, (k - 1) // 2


# --- POST (§3) ---------------------------------------------------------------------------------------------

def variables(layer):
    return {name: [int(v) for v in layer.variables[name].ravel()] if layer.variables[name].dtype.kind in "iu"
            else layer.variables[name] for name in layer.variables.names}


def post(acc, layer, v, rule="standard"):
    """acc: dict (i, j) -> list per channel (the conv grid). Returns (grid dict, oh, ow) after POST steps 1-6."""
    p = layer.params
    bb, pb = p.buffer_bits, p.post_op_buffer_bits
    activation = p.activation.name
    grid = {}
    for (i, j), values in acc.items():
        out = []
        for f, a in enumerate(values):
            bias = R(v["bias"][f], v["bias_shift"][f])
            if rule == "recurrent":
                out.append(sat(sat(a, bb) + sat(bias, bb), bb))
            elif rule == "input":
                out.append(sat(a + sat(bias, pb), bb))
            else:
                out.append(sat(sat(a, bb) + sat(bias, pb), pb))
        grid[(i, j)] = out
    oh = max(i for i, _ in grid) + 1
    ow = max(j for _, j in grid) + 1
    pool = getattr(p, "pool_type", None)
    if pool is not None and pool.name == "Max":
        ph, pad_h = geometry(oh, p.pool_size, p.pool_stride, p.padding.name)
        pw, pad_w = geometry(ow, p.pool_size, p.pool_stride, p.padding.name)
        pooled = {}
        for i in range(ph):
            for j in range(pw):
                cells = [grid[(i * p.pool_stride + a - pad_h, j * p.pool_stride + b - pad_w)]
                         for a in range(p.pool_size) for b in range(p.pool_size)
                         if 0 <= i * p.pool_stride + a - pad_h < oh and 0 <= j * p.pool_stride + b - pad_w < ow]
                pooled[(i, j)] = [max(cell[f] for cell in cells) for f in range(len(cells[0]))]
        grid, oh, ow = pooled, ph, pw
    for key, values in grid.items():
        out = []
        for f, a in enumerate(values):
            if activation == "ReLU":
                a = min(max(a, 0), sat(R(v["max_value"][f], v["max_value_shift"][f]), pb))
            elif activation == "LUT":
                index = R(sat(a * v["activation_scales"][f], pb), v["activation_shift"][f])
                a = v["lut_values"][max(-1024, min(1023, index)) + 1024]
            out.append(a)
        grid[key] = out
    if pool is not None and pool.name == "Average":
        total = [0] * len(grid[(0, 0)])
        for i in range(oh):
            for j in range(ow):
                for f in range(len(total)):
                    total[f] = sat(total[f] + grid[(i, j)][f], pb)
        grid, oh, ow = {(0, 0): total}, 1, 1
    return grid, oh, ow


def finish(grid, oh, ow, layer, v):
    p = layer.params
    channels = len(grid[(0, 0)])
    out = np.zeros((oh, ow, channels), np.int64)
    for (i, j), values in grid.items():
        for f, a in enumerate(values):
            scaled = R(sat(a * v["output_scales"][f], p.post_op_buffer_bits), v["output_shift"][f])
            out[i, j, f] = out_clip(scaled, p.output_bits)
    return out.astype(out_dtype(p.output_bits))


def shifted(x, v, bb):
    """xs[..., c] = sat_bb(R(x, input_shift[c])) as nested Python ints, (h, w, c)."""
    h, w, c = x.shape
    return [[[sat(R(int(x[i, j, ch]), v["input_shift"][ch]), bb) for ch in range(c)] for j in range(w)]
            for i in range(h)]


# --- raw sums (§4), one sample ---------------------------------------------------------------------------------

def input_conv2d(layer, x):
    p, v = layer.params, variables(layer)
    w = layer.variables["weights"]
    k, s = p.kernel_size, p.kernel_stride
    h, wd, c = x.shape
    oh, top = geometry(h, k, s, p.padding.name)
    ow, left = geometry(wd, k, s, p.padding.name)
    acc = {}
    for i in range(oh):
        for j in range(ow):
            sums = []
            for f in range(w.shape[3]):
                total = 0
                for a in range(k):
                    for b in range(k):
                        for ch in range(c):
                            y, z = i * s + a - top, j * s + b - left
                            pixel = int(x[y, z, ch]) if 0 <= y < h and 0 <= z < wd else v["padding_value"][ch]
                            total += int(w[a, b, ch, f]) * pixel
                sums.append(total)
            acc[(i, j)] = sums
    return finish(*post(acc, layer, v, rule="input"), layer, v)


def conv2d(layer, x, depthwise=False):
    p, v = layer.params, variables(layer)
    w = layer.variables["weights"]
    k, s = p.kernel_size, p.kernel_stride
    xs = shifted(x, v, p.buffer_bits)
    h, wd, c = x.shape
    oh, top = geometry(h, k, s, p.padding.name)
    ow, left = geometry(wd, k, s, p.padding.name)
    filters = c if depthwise else w.shape[3]
    acc = {}
    for i in range(oh):
        for j in range(ow):
            sums = []
            for f in range(filters):
                total = 0
                for a in range(k):
                    for b in range(k):
                        y, z = i * s + k - 1 - a - top, j * s + k - 1 - b - left  # flipped kernel
                        if not (0 <= y < h and 0 <= z < wd):
                            continue
                        if depthwise:
                            total += int(w[a, b, f, 0]) * xs[y][z][f]
                        else:
                            total += sum(int(w[a, b, ch, f]) * xs[y][z][ch] for ch in range(c))
                sums.append(wrap32(total))
            acc[(i, j)] = sums
    return finish(*post(acc, layer, v), layer, v)


def conv2d_transpose(layer, x, depthwise=False):
    p, v = layer.params, variables(layer)
    w = layer.variables["weights"]
    k = p.kernel_size
    pad = max(k - 2, 0) // 2
    xs = shifted(x, v, p.buffer_bits)
    h, wd, c = x.shape
    filters = c if depthwise else w.shape[3]
    sums = {(i, j): [0] * filters for i in range(2 * h) for j in range(2 * wd)}
    for i in range(h):
        for j in range(wd):
            for a in range(k):
                for b in range(k):
                    y, z = 2 * i + a - pad, 2 * j + b - pad
                    if not (0 <= y < 2 * h and 0 <= z < 2 * wd):
                        continue
                    for f in range(filters):
                        if depthwise:
                            sums[(y, z)][f] += xs[i][j][f] * int(w[a, b, f, 0])
                        else:
                            sums[(y, z)][f] += sum(xs[i][j][ch] * int(w[a, b, ch, f]) for ch in range(c))
    acc = {key: [wrap32(t) for t in values] for key, values in sums.items()}
    return finish(*post(acc, layer, v), layer, v)


def dense1d(layer, x):
    p, v = layer.params, variables(layer)
    w = layer.variables["weights"]
    h, wd, c = x.shape
    flat = [int(x[i, j, ch]) for i in range(h) for j in range(wd) for ch in range(c)]  # row-major
    xs = [sat(R(value, v["input_shift"][n]), p.buffer_bits) for n, value in enumerate(flat)]
    acc = {(0, 0): [sum(xs[n] * int(w[n, f]) for n in range(len(xs))) for f in range(w.shape[1])]}
    return finish(*post(acc, layer, v), layer, v)


def buffer_temp_conv(layer, x, fifo, depthwise=False):
    """One time step; `fifo` is the list of shifted inputs (oldest first), updated in place."""
    p, v = layer.params, variables(layer)
    w = layer.variables["weights"]
    fifo.pop(0)
    fifo.append(shifted(x, v, p.buffer_bits))
    h, wd, c = x.shape
    acc = {}
    for i in range(h):
        for j in range(wd):
            if depthwise:
                sums = []
                for ch in range(c):
                    total = 0
                    for t in range(p.fifo_size):
                        total = sat(total + fifo[t][i][j][ch] * int(w[0, 0, t, ch]), p.buffer_bits)
                    sums.append(total)
            else:
                sums = [wrap32(sum(fifo[t][i][j][ch] * int(w[0, 0, t * c + ch, f])
                                   for t in range(p.fifo_size) for ch in range(c))) for f in range(w.shape[3])]
            acc[(i, j)] = sums
    return finish(*post(acc, layer, v), layer, v)


def stateful_recurrent(layer, x, state):
    """One sample (1, T, C); `state` is [re list, im list], updated in place."""
    p, v = layer.params, variables(layer)
    bb, pb, isb = p.buffer_bits, p.post_op_buffer_bits, p.internal_state_bits
    w_in, w_out = layer.variables["in_proj"], layer.variables["out_proj"]
    c, s_ch = w_in.shape
    outputs = []
    for t in range(x.shape[1]):
        xs = [sat(R(int(x[0, t, ch]), v["input_shift"][ch]), bb) for ch in range(c)]
        new = []
        for s in range(s_ch):
            ip = sat(sum(xs[ch] * int(w_in[ch, s]) for ch in range(c)), bb)
            new.append(sat(R(sat(ip * v["new_state_scale"][s], pb), v["new_state_shift"][s]), pb))
        re, im = state
        for s in range(s_ch):
            ar, ai, sh = v["A_real"][s], v["A_imag"][s], v["internal_state_outputs_shift"][s]
            ur = sat(sat(sat(re[s] * ar, pb) - sat(im[s] * ai, pb), pb) + new[s], pb)
            ui = sat(sat(re[s] * ai, pb) + sat(im[s] * ar, pb), pb)
            re[s], im[s] = sat(R(ur, sh), isb), sat(R(ui, sh), isb)
        if (t + 1) % p.subsample == 0:
            outputs.append(list(re))
    acc = {(0, j): [sat(sum(out[s] * int(w_out[s, o]) for s in range(s_ch)), bb) for o in range(w_out.shape[1])]
           for j, out in enumerate(outputs)}
    return finish(*post(acc, layer, v, rule="recurrent"), layer, v)


def add(layer, a, b):
    p, v = layer.params, variables(layer)
    out = np.zeros(a.shape, np.int64)
    for (i, j, ch), _ in np.ndenumerate(a):
        x = sat(R(int(a[i, j, ch]), v["a_shift"][ch]), p.buffer_bits)
        y = sat(R(int(b[i, j, ch]), v["b_shift"][ch]), p.buffer_bits)
        out[i, j, ch] = sat(R(sat(x + y, p.buffer_bits), v["output_shift"][ch]), p.output_bits)
    return out.astype(np.int8 if p.output_bits <= 8 else np.int32)


def quantizer(layer, x):
    p = layer.params
    if p.channels_first:
        x = np.transpose(x, (1, 2, 0))
    if x.dtype != np.float32:
        return x.copy()
    scales, zeros = layer.variables["scales"], layer.variables["zero_points"]
    out = np.zeros(x.shape, np.int64)
    for (i, j, ch), value in np.ndenumerate(x):
        product = float(np.float32(value) * np.float32(scales[ch]))  # float32 multiply
        rounded = math.floor(abs(product) + 0.5) * (1 if product >= 0 else -1)
        q = rounded + int(zeros[ch])
        out[i, j, ch] = sat(q, p.output_bits) if p.output_signed else usat(q, p.output_bits)
    return out.astype(np.int8 if p.output_signed else np.uint8)


def dequantizer(layer, x):
    scales = layer.variables["scales"]
    out = np.zeros(x.shape, np.float32)
    for (i, j, ch), value in np.ndenumerate(x):
        out[i, j, ch] = np.float32(value) * scales[ch]
    return out


# --- a whole model ---------------------------------------------------------------------------------------------------

def run_layer(layer, inputs, states):
    """One batch through one layer, sample by sample (samples are time steps for temporal layers)."""
    kind = layer.layer_type.name
    outputs = []
    for n in range(inputs[0].shape[0]):
        x = inputs[0][n]
        if kind == "InputData":
            out = x.copy()
        elif kind == "InputConv2D":
            out = input_conv2d(layer, x)
        elif kind in ("Conv2D", "DepthwiseConv2D"):
            out = conv2d(layer, x, depthwise=kind == "DepthwiseConv2D")
        elif kind in ("Conv2DTranspose", "DepthwiseConv2DTranspose"):
            out = conv2d_transpose(layer, x, depthwise=kind.startswith("Depthwise"))
        elif kind == "Dense1D":
            out = dense1d(layer, x)
        elif kind in ("BufferTempConv", "DepthwiseBufferTempConv"):
            zero = [[[0] * x.shape[2] for _ in range(x.shape[1])] for _ in range(x.shape[0])]
            fifo = states.setdefault(layer.name, [zero] * layer.params.fifo_size)
            out = buffer_temp_conv(layer, x, fifo, depthwise=kind.startswith("Depthwise"))
        elif kind == "StatefulRecurrent":
            s = layer.params.stateful_channels
            out = stateful_recurrent(layer, x, states.setdefault(layer.name, [[0] * s, [0] * s]))
        elif kind == "Add":
            out = add(layer, x, inputs[1][n])
        elif kind == "Concatenate":
            out = np.concatenate([x, inputs[1][n].astype(x.dtype)], axis=2)
        elif kind == "Quantizer":
            out = quantizer(layer, x)
        elif kind == "Dequantizer":
            out = dequantizer(layer, x)
        else:
            raise NotImplementedError(kind)
        outputs.append(out)
    return np.stack(outputs)


def run_model(model, x, states=None):
    """Forward a batch through every layer in order; returns the last layer's outputs."""
    states = {} if states is None else states
    results = {}
    for layer in model.layers:
        inputs = [results[inbound.name] for inbound in layer.inbounds] or [x]
        results[layer.name] = run_layer(layer, inputs, states)
    return results[model.layers[-1].name]

"""Integer kernels of the Akida 2.0 temporal layers: the FIFO sums of BufferTempConv and
DepthwiseBufferTempConv, and StatefulRecurrent's complex state update.

Plain numpy functions on the shifts, saturations and exact sums of `v2`; tested against the loop
references of tests/akida_core/reference_v2.py and tests/akida_core/test_v2_fast_paths.py.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import shared as kernels
from .v2 import (ConvolutionKernel, _input_bound, _max_abs, exact_matmul, float_dtype, round_shift, sat, wrap32,
                 wrap32_bounded)


def _fifo_windows(seq, steps, depth):
    """(steps, h, w, T, c) view of `seq` (T + steps, h, w, c): window s holds seq[s+1 .. s+T], oldest first."""
    s_t, s_h, s_w, s_c = seq.strides
    return as_strided(seq[1:], (steps, *seq.shape[1:3], depth, seq.shape[3]), (s_t, s_h, s_w, s_t, s_c),
                      writeable=False)


def _fifo_sequence(fifo, xs, kernel, x_bound):
    """(the state then the new inputs in one array, bound of every FIFO sum): float32/float64 when the bound
    (the kernel's l1 times max|inputs|: `x_bound` for the new inputs when static; the state is read, it may
    hold inputs of an earlier call of another dtype) proves the sums exact, else int64."""
    largest = max(_input_bound(xs, 0, x_bound), _max_abs(fifo))
    bound = kernel.bound(largest)
    exact = max(bound, largest)  # the dtype holds the inputs (the next state) exactly too, even for zero weights
    dtype = float_dtype(exact) if exact < kernels.FLOAT64_EXACT else np.int64
    seq = np.empty((fifo.shape[0] + xs.shape[0], *xs.shape[1:]), dtype)
    seq[:fifo.shape[0]] = fifo  # exact: integers within the dtype's exact range
    seq[fifo.shape[0]:] = xs
    return seq, bound


def buffer_temp_conv(xs, fifo, w, x_bound=None):
    """Pointwise convolution over a FIFO of the last T inputs, one batch sample per time step.

    Args:
        xs: (n, h, w, c) integer shifted inputs, n time steps.
        fifo: (T, h, w, c) state, oldest first: exact integers (int64, or the float dtype of the last call).
        w: (T·c, f) weights, row t·c + ch, or their ConvolutionKernel (shape (1, 1, T·c, f), cast once).
        x_bound: >= max|xs| when static (the state is read).

    Returns:
        ((acc (n, h, w, f) exact integers summed modulo 2**32, bound of their magnitude), new fifo
        (T, h, w, c)). Where the bound proves the sums exact in float32 or float64, one product of the FIFO
        windows (n·h·w, T·c) with the weights; else int64 products per FIFO slot.
    """
    kernel = w if isinstance(w, ConvolutionKernel) else ConvolutionKernel(w[None, None], flip=False)
    steps, c = xs.shape[0], xs.shape[3]
    depth = fifo.shape[0]
    seq, bound = _fifo_sequence(fifo, xs, kernel, x_bound)
    if seq.dtype != np.int64:
        windows = _fifo_windows(seq, steps, depth)
        acc = (windows.reshape(-1, depth * c) @ kernel.cast(seq.dtype)).reshape(*xs.shape[:3], -1)
        return (wrap32_bounded(acc, bound), min(bound, 1 << 31)), seq[steps:].copy()
    weights = kernel.flipped[0, 0]
    acc = 0
    for t in range(depth):  # a loop over the FIFO slots only; each slot is one matmul over all steps
        part = seq[1 + t:1 + t + steps]
        acc = acc + exact_matmul(part.reshape(-1, c), weights[t * c:(t + 1) * c]).reshape(*part.shape[:3], -1)
    return (wrap32(acc), min(bound, 1 << 31)), seq[steps:].copy()


def depthwise_buffer_temp_conv(xs, fifo, w, bb, x_bound=None):
    """Per-channel FIFO sum with a running bb-bit saturation: acc = sat_bb(acc + fifo[t]·w[t]), t oldest first.

    Args:
        xs: (n, h, w, c) integer shifted inputs; fifo (T, h, w, c) as in `buffer_temp_conv`; w (T, c) or its
        depthwise ConvolutionKernel (shape (1, T, c), cast once); x_bound as in `buffer_temp_conv`.

    Returns:
        ((acc (n, h, w, c) exact integers, bound of their magnitude), new fifo). Where the bound keeps every
        partial sum below 2**(bb-1) the saturation cannot act: one float sum over the FIFO windows.
    """
    kernel = w if isinstance(w, ConvolutionKernel) else ConvolutionKernel(w[None], depthwise=True, flip=False)
    steps, depth = xs.shape[0], fifo.shape[0]
    seq, bound = _fifo_sequence(fifo, xs, kernel, x_bound)
    if seq.dtype != np.int64 and bound < 1 << (bb - 1):
        windows = _fifo_windows(seq, steps, depth)
        return (np.einsum("nyxtc,tc->nyxc", windows, kernel.cast(seq.dtype)[0]), bound), seq[steps:].copy()
    seq = seq.astype(np.int64, copy=False)
    weights = kernel.flipped[0].astype(np.int64)
    acc = np.zeros(xs.shape, np.int64)
    for t in range(depth):
        acc = sat(acc + seq[1 + t:1 + t + steps] * weights[t], bb)
    return (acc, min(bound, 1 << (bb - 1))), seq[steps:].copy()


def recurrent_states(new, state, a_real, a_imag, shift, pb, isb):
    """The StatefulRecurrent complex update over time steps (rows of `new`), state carried in order.

    For each step: ur = sat_pb(sat_pb(sat_pb(re·Ar) - sat_pb(im·Ai)) + new[t]),
    ui = sat_pb(sat_pb(re·Ai) + sat_pb(im·Ar)), re = sat_isb(R(ur, sh)), im = sat_isb(R(ui, sh)).
    The recurrence is sequential in time; each step is vectorised over the state channels.

    Returns:
        (outputs int64 (steps, S) = re after each step, (re, im) final state).
    """
    re, im = state
    ar, ai = a_real.astype(np.int64), a_imag.astype(np.int64)
    out = np.empty(new.shape, np.int64)
    for t in range(new.shape[0]):
        ur = sat(sat(sat(re * ar, pb) - sat(im * ai, pb), pb) + new[t], pb)
        ui = sat(sat(re * ai, pb) + sat(im * ar, pb), pb)
        re, im = sat(round_shift(ur, shift), isb), sat(round_shift(ui, shift), isb)
        out[t] = re
    return out, (re, im)

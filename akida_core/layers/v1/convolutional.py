"""Convolutional: a true convolution (kernel flipped) + optional pooling + Akida activation."""
import dataclasses

import numpy as np

from ... import kernels
from ...enums import LayerType, Padding, PoolType
from ...errors import LayerParameterError
from ..base import (as_enum, as_pair, check_act_bits, check_bool, check_int, check_kernel, check_name, conv_positions,
                   check_pooling, pooled_positions, weight_range)
from ..layer import Layer

PROCESSING_WEIGHT_BITS = (1, 2, 4, 8)


def check_conv_fields(params, owner, weight_bits_allowed):
    """Validate and normalise the fields shared by the three convolutional kinds (in place)."""
    set_ = object.__setattr__
    check_name(params.name)
    set_(params, "kernel_size", as_pair(owner, "kernel_size", params.kernel_size))
    set_(params, "filters", check_int(owner, "filters", params.filters, 1, 2 ** 20))
    set_(params, "padding", as_enum(owner, "padding", Padding, params.padding))
    if params.padding == Padding.SameUpper:
        raise LayerParameterError(f"{owner}: padding=Padding.SameUpper is an Akida 2.0 mode; Akida 1.0 layers "
                                  "take Padding.Same or Padding.Valid")
    set_(params, "kernel_stride", as_pair(owner, "kernel_stride", params.kernel_stride))
    check_kernel(owner, params.kernel_size, params.kernel_stride)
    set_(params, "weights_bits", check_int(owner, "weights_bits", params.weights_bits,
                                           allowed=weight_bits_allowed))
    set_(params, "pool_type", as_enum(owner, "pool_type", PoolType, params.pool_type))
    size, stride = check_pooling(owner, params.pool_type, as_pair(owner, "pool_size", params.pool_size),
                                 as_pair(owner, "pool_stride", params.pool_stride))
    set_(params, "pool_size", size)
    set_(params, "pool_stride", stride)
    set_(params, "activation", check_bool(owner, "activation", params.activation))
    set_(params, "act_bits", check_act_bits(owner, params.act_bits))
    set_(params, "threshold", check_int(owner, "threshold", params.threshold, -2 ** 31, 2 ** 31 - 1))


@dataclasses.dataclass(frozen=True)
class ConvolutionalParams:
    """Parameters of Convolutional (Akida 1.0)."""

    kernel_size: tuple
    filters: int
    name: str = ""
    padding: Padding = Padding.Same
    kernel_stride: tuple = (1, 1)
    weights_bits: int = 1
    pool_size: tuple = (-1, -1)
    pool_type: PoolType = PoolType.NoPooling
    pool_stride: tuple = (-1, -1)
    activation: bool = True
    act_bits: int = 1
    threshold: int = 0

    def __post_init__(self):
        kind = type(self).__name__[:-len("Params")]
        check_conv_fields(self, f"{kind} '{self.name}'", PROCESSING_WEIGHT_BITS)


def conv_output_shape(params, input_shape):
    """Output (height, width, filters) of a convolution followed by the layer's pooling."""
    h, w, _ = input_shape
    kh, kw = params.kernel_size
    sh, sw = params.kernel_stride
    out_h = kernels.output_size(h, kh, sh, params.padding)
    out_w = kernels.output_size(w, kw, sw, params.padding)
    if params.pool_type == PoolType.Max:
        (ph, pw), (psh, psw) = params.pool_size, params.pool_stride
        out_h = kernels.output_size(out_h, ph, psh, params.padding)
        out_w = kernels.output_size(out_w, pw, psw, params.padding)
    elif params.pool_type == PoolType.Average:
        out_h = out_w = 1
    return out_h, out_w, params.filters


def max_input(layer):
    """Largest input value of a layer reading `layer.input_bits`-bit unsigned inputs."""
    return 2 ** layer.input_bits - 1


class Convolutional(Layer):
    """Akida Convolutional layer (a true convolution: weights are flipped on both spatial axes)."""

    layer_type = LayerType.Convolutional
    short_name = "Conv"
    bands = True
    params_type = ConvolutionalParams

    def __init__(self, kernel_size, filters, name="", padding=Padding.Same, kernel_stride=(1, 1),
                 weights_bits=1, pool_size=(-1, -1), pool_type=PoolType.NoPooling, pool_stride=(-1, -1),
                 activation=True, act_bits=1, threshold=0):
        super().__init__(ConvolutionalParams(kernel_size, filters, name, padding, kernel_stride,
                                             weights_bits, pool_size, pool_type, pool_stride, activation,
                                             act_bits, threshold))

    def _output_dims(self, input_dims):
        return conv_output_shape(self._params, input_dims)

    def _base_specs(self):
        p = self._params
        cin = self.input_dims[2]
        return {"weights": self._weight_spec((*p.kernel_size, cin, p.filters), p.weights_bits),
                **self._neuron_specs(p.filters)}

    def potential_bound(self):
        p = self._params
        fan_in = p.kernel_size[0] * p.kernel_size[1] * self.input_dims[2]
        w = max(map(abs, weight_range(p.weights_bits)))
        return w * max_input(self) * fan_in * pooled_positions(p, self.input_dims)

    @property
    def macs(self):
        p = self._params
        return conv_positions(p, self.input_dims) * p.kernel_size[0] * p.kernel_size[1] \
            * self.input_dims[2] * p.filters

    def _forward(self, inputs, bands=1, run=None, live=None):
        """Potentials to activations; `live`: the input's live channels when the caller already found them
        (`skipping_silent_channels`), else they are looked for here."""
        p = self._params
        # Akida convolves: flipping once here lets the kernel cross-correlate.
        matrix = self._cached("kernel_matrix", self._kernel_matrix)
        if matrix is None:
            flipped = self._cached("flipped", lambda: np.ascontiguousarray(self._values["weights"][::-1, ::-1]))
            potentials = kernels.conv2d(inputs, flipped, p.kernel_stride, p.padding)
        else:
            live = kernels.shared.live_channels(inputs) if live is None else live
            if live is not None:  # silent channels add nothing (zero padding): only the others' rows
                kh, kw = p.kernel_size
                # np.take keeps C order (an index array on the last axis would not), which the kernel needs
                inputs = np.take(inputs, live, axis=3)
                filters = matrix.shape[1]
                matrix = np.take(matrix.reshape(kh * kw, -1, filters), live, axis=1).reshape(-1, filters)
            potentials = kernels.shared.conv2d_prepared(inputs, matrix, p.kernel_size, p.kernel_stride, p.padding,
                                                        bands=bands, run=run)
        return self._activate(self._pool(potentials))

    def _buffered_forward(self, input_shape):
        return skipping_silent_channels(self, buffered_convolution(self, input_shape, 0, max_input(self)),
                                        input_shape[0], SKIP_OVERHEAD_MACS)

    def _kernel_matrix(self):
        """The flipped weights as a float32 (kh·kw·c, filters) matrix, when float32 is exact for every
        valid input (else None: conv2d then picks the dtype from the data)."""
        kh, kw, c, filters = self._values["weights"].shape
        # Akida convolves: flipping once here lets the kernel cross-correlate.
        flipped = self._values["weights"][::-1, ::-1]
        if not self._exact_float32(flipped, kh * kw * c, max_input(self)):
            return None
        return np.ascontiguousarray(flipped.reshape(kh * kw * c, filters), np.float32)


SKIP_OVERHEAD_MACS = 2 * 2 ** 20
"""The plain forward's extra fixed cost when it skips silent channels of a Convolutional, in MACs of its buffered
forward: the gathers, a fresh im2col and an unbuffered activation take 30-45 µs on MNIST-sized layers at batch 1,
the time of about 2 M MACs. So a buffered forward of n samples leaves its inputs to the plain forward only when at
most SPARSE_CHANNELS - overhead / (n · MACs per sample) of their channels are live (`skipping_silent_channels`).
Break-evens measured at batch 1 (the live fraction where both cost the same; the rule's limit): MNIST conv_1
3.6 M MACs 0.19 (0.17), conv_2 1.8 M 0.25 (none: at most 7 µs to gain), AkidaNet-like conv_2 18.9 M 0.72 (0.64),
conv_3 37.7 M 0.79 (0.69). With the old fixed 3/4, a 3/4-live MNIST conv_1 took 117 µs against 63 µs buffered."""


def skipping_silent_channels(layer, forward, samples, overhead_macs):
    """A buffered `forward` of `samples` samples of `layer` that leaves inputs with enough silent channels to
    `layer._forward` (which skips them): at most SPARSE_CHANNELS - overhead_macs / (samples · layer.macs) of them
    live (SKIP_OVERHEAD_MACS); `forward` itself when that limit is not positive (or when None)."""
    limit = kernels.shared.SPARSE_CHANNELS - overhead_macs / max(1, samples * layer.macs)
    if forward is None or limit <= 0:
        return forward

    def skipping(inputs):
        live = kernels.shared.live_channels(inputs, limit)
        return forward(inputs) if live is None else layer._forward(inputs, live=live)
    return skipping


def buffered_convolution(layer, input_shape, padding_value, input_bound):
    """The buffered forward of a Convolutional or InputConvolutional `layer` (its float32 kernel matrix through
    kernels.buffered.conv2d, then its pooling and activation), or None when float32 is not exact for it."""
    matrix = layer._cached("kernel_matrix", layer._kernel_matrix)
    if matrix is None:
        return None
    p = layer.params
    shape = potentials_shape(p, input_shape)
    pool = layer._pools_in_conv(shape)
    conv = kernels.buffered.conv2d(input_shape, matrix, p.kernel_size, p.kernel_stride, p.padding, padding_value,
                                   pool, input_bound)
    tail = layer._buffered_tail(shape, matrix.dtype, pooled=pool is not None)
    return lambda inputs: tail(conv(inputs))


def potentials_shape(params, input_shape):
    """Shape of the potentials (before pooling) of a convolution of `params` on inputs of `input_shape`."""
    n, h, w, _ = input_shape
    return (n, kernels.output_size(h, params.kernel_size[0], params.kernel_stride[0], params.padding),
            kernels.output_size(w, params.kernel_size[1], params.kernel_stride[1], params.padding), params.filters)

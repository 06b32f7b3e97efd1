"""InputConv2D, Conv2D and DepthwiseConv2D (Akida 2.0): convolution, POST with pooling.

InputConv2D cross-correlates uint8 images padded with `padding_value`; Conv2D and DepthwiseConv2D
shift their inputs (`input_shift`, saturated to `buffer_bits`) and perform a true convolution
(kernel flipped on both axes) summed modulo 2**32 (akida2-layers.md §4).
"""
import dataclasses

import numpy as np

from ...kernels import v2 as k2
from ...kernels import v2_affine as affine
from ...enums import ActivationType, LayerType, Padding, PoolType
from ...errors import LayerParameterError
from ..base import as_shape
from .base import (FilterLayerV2, LayerV2, activate, add_bias, check_pool, finish, input_plan, make_post,
                   neural_specs, normalise, pooled_shape, shifted_inputs, spatial_size, spec)

_BITS = ("output_bits", "buffer_bits", "post_op_buffer_bits")
_ENUMS = {"padding": Padding, "pool_type": PoolType, "activation": ActivationType}


def _weights_limit(weights_bits):
    """Conv2D / DepthwiseConv2D / Dense1D weights: [-128, 127] with weights_bits 8, else [-8, 7]."""
    return (-128, 127) if weights_bits == 8 else (-8, 7)


@dataclasses.dataclass(frozen=True)
class InputConv2DParams:
    """Parameters of InputConv2D (first layer, uint8 images of 1 or 3 channels)."""

    input_shape: tuple
    filters: int
    kernel_size: int
    padding: Padding = Padding.Same
    kernel_stride: int = 1
    pool_type: PoolType = PoolType.NoPooling
    pool_size: int = -1
    pool_stride: int = -1
    activation: ActivationType = ActivationType.ReLU
    output_bits: int = 8
    buffer_bits: int = 32
    post_op_buffer_bits: int = 32
    weights_bits: int = 8
    name: str = ""

    def __post_init__(self):
        owner = normalise(self, ints={"filters": (1, 2 ** 20), "kernel_size": (1, 1024),
                                      "kernel_stride": (1, 1024), "weights_bits": (None, None)},
                          bits=_BITS, enums=_ENUMS)
        object.__setattr__(self, "input_shape", as_shape(owner, self.input_shape))
        if self.input_shape[2] not in (1, 3):
            raise LayerParameterError(f"{owner}: input must have 1 or 3 channels; got input_shape "
                                      f"{self.input_shape}")
        if self.padding == Padding.SameUpper:
            raise LayerParameterError(f"{owner}: padding=Padding.SameUpper gives garbage outputs on Akida 2.0 "
                                      "input convolutions (vendor bug); use Padding.Same or Padding.Valid")
        if self.pool_type == PoolType.Average:
            raise LayerParameterError(f"{owner}: pool_type=PoolType.Average: InputConv2D can't perform a Global "
                                      "Average Pooling; use PoolType.Max or NoPooling")
        check_pool(self, owner)


def conv_output_shape(params, input_shape, owner, kernel, stride, channels):
    """(h, w, channels) after the convolution and the pooling."""
    h = spatial_size(owner, input_shape[0], kernel, stride, params.padding)
    w = spatial_size(owner, input_shape[1], kernel, stride, params.padding)
    return (*pooled_shape(params, owner, h, w), channels)


def pool_and_finish(layer, acc, post, rule="standard", bound=None, plan=None):
    """Steps 2-7 of POST with the layer's max pooling or global average pooling.

    With the plan's AffinePost, POST is one float map and the max pooling runs on its outputs (the map is
    nondecreasing, so the max commutes with it)."""
    p = layer.params
    if plan is not None and plan.affine is not None:
        lut = isinstance(plan.affine, affine.LutPost)  # pooled on the indices, which the tables then map
        out = affine.affine_post(acc, plan.affine.index if lut else plan.affine, inplace=True)
        if p.pool_type == PoolType.Max:
            out = k2.max_pool(out, p.pool_size, p.pool_stride, p.padding)
        return plan.affine.lookup(out) if lut else out
    if p.pool_type == PoolType.Average and rule == "standard":
        pooled = float32_pooled_sums(acc, post, bound)
        if pooled is not None:
            return finish(pooled[0], post, pooled[1])
    values, bound = add_bias(acc, post, rule, bound)
    if p.pool_type == PoolType.Max:
        values = k2.max_pool(values, p.pool_size, p.pool_stride, p.padding)
    values, bound = activate(values, post, bound)
    if p.pool_type == PoolType.Average:
        pixels = values.shape[1] * values.shape[2]
        if bound * pixels < 1 << (post.pb - 1):  # no partial sum can saturate: a plain exact sum
            values = values.sum(axis=(1, 2), keepdims=True)
            bound *= pixels
        else:
            values = k2.global_sum(values, post.pb)
            bound = 1 << (post.pb - 1)
    return finish(values, post, bound)


def float32_pooled_sums(acc, post, bound):
    """POST steps 2-5 with global average pooling on float32 sums, in float32, where no saturation can act:
    (per-sample sums over the positions of relu(acc + B) as float64 (n, 1, 1, c), their bound), or None.

    With |acc| <= bound below the buffer's saturation, |acc + B| below 2**24 (exact in float32) and the post
    buffer's saturation, and so the ReLU ceilings that can act (float32 integers then), and the positions'
    sum below the post buffer's saturation, every step is the plain one and exact (the sum in float64). 3 float32 passes
    instead of float64 ones: an 8x8x512 map's POST 83 -> 45 µs at batch 1, 6.8 -> 2.2 ms at batch 64.
    """
    if acc.dtype != np.float32 or bound is None or post.activation == ActivationType.LUT:
        return None
    reach = int(bound) + int(np.abs(post.bias).max(initial=0))  # bound of |acc + B|
    if int(bound) >= 1 << (post.bb - 1) or reach >= min(1 << 24, 1 << (post.pb - 1)):
        return None
    pixels = acc.shape[1] * acc.shape[2]
    relu = post.activation == ActivationType.ReLU
    top = min(reach, int(post.ceiling.max(initial=0))) if relu else reach
    if top * pixels >= 1 << (post.pb - 1):
        return None
    values = np.add(acc, post.bias.astype(np.float32), out=acc)
    if relu:
        np.maximum(values, np.float32(0), out=values)
        if post.ceiling.min(initial=0) < reach:  # ceilings below reach < 2**24 are float32 integers
            np.minimum(values, post.ceiling.astype(np.float32), out=values)
    return values.sum(axis=(1, 2), keepdims=True, dtype=np.float64), top * pixels


BLOCK_BYTES = 1 << 21
"""A convolution layer runs a batch in blocks of samples whose float32 sums take about this many bytes (at
least one sample), so that the sums, their POST and the next block's inputs stay in the cache: 10-40% less
time per sample at batch 16 than one pass over the batch (measured on bench/runtime_v2.py's layers). 2 MiB
rather than 1: with the two worker threads, bench/runtime_v2.py's graph ran 7% (batch 64) and 12% (batch 16)
faster, medians of 6 alternations on 7 December 2026 (fewer calls per sample); 4 MiB was slower again."""


def run_in_blocks(layer, x, run):
    """run(x[block]) for consecutive blocks of samples (see BLOCK_BYTES), the outputs in one array.

    The samples are independent in these layers, so the blocks give the same integers as one call."""
    h, w, channels = layer.output_dims_before_pool()
    step = max(1, BLOCK_BYTES // (4 * h * w * channels))
    if x.shape[0] <= step:
        return run(x)
    first = run(x[:step])
    out = np.empty((x.shape[0],) + first.shape[1:], first.dtype)
    out[:step] = first
    for top in range(step, x.shape[0], step):
        out[top:top + step] = run(x[top:top + step])
    return out


class InputConv2D(LayerV2):
    """Akida 2.0 input convolution: cross-correlation of uint8 images (no kernel flip, no input shift)."""

    layer_type = LayerType.InputConv2D
    short_name = "InputConv2D"
    params_type = InputConv2DParams
    is_input = True
    inbound_count = 0

    def __init__(self, input_shape, filters, kernel_size, padding=Padding.Same, kernel_stride=1,
                 pool_type=PoolType.NoPooling, pool_size=-1, pool_stride=-1, activation=ActivationType.ReLU,
                 output_bits=8, buffer_bits=32, post_op_buffer_bits=32, weights_bits=8, name=""):
        super().__init__(InputConv2DParams(input_shape, filters, kernel_size, padding, kernel_stride, pool_type,
                                           pool_size, pool_stride, activation, output_bits, buffer_bits,
                                           post_op_buffer_bits, weights_bits, name))

    def _output_dims(self, input_dims):
        p = self._params
        return conv_output_shape(p, input_dims, f"InputConv2D '{self.name}'", p.kernel_size, p.kernel_stride,
                                 p.filters)

    def _base_specs(self):
        p = self._params
        c = self.input_dims[2]
        specs = {"weights": spec((p.kernel_size, p.kernel_size, c, p.filters), np.int8),
                 "padding_value": spec((c,), np.uint8)}
        specs.update(neural_specs(p, p.filters))
        return specs

    def _prepare(self):
        super()._prepare()
        return {"post": make_post(self._values, self._params, self._params.post_op_buffer_bits),
                "kernel": k2.ConvolutionKernel(self._values["weights"], flip=False),
                "padding_value": self._values["padding_value"].astype(np.int64),
                "padding_bound": int(self._values["padding_value"].max(initial=0))}

    @property
    def macs(self):
        p = self._params
        h, w, _ = self.output_dims_before_pool()
        return h * w * p.kernel_size ** 2 * self.input_dims[2] * p.filters

    def output_dims_before_pool(self):
        """(h, w, filters) of the convolution before pooling."""
        p = self._params
        from ... import kernels
        return (kernels.output_size(self.input_dims[0], p.kernel_size, p.kernel_stride, p.padding),
                kernels.output_size(self.input_dims[1], p.kernel_size, p.kernel_stride, p.padding), p.filters)

    def _run(self, inputs):
        return run_in_blocks(self, inputs[0], self._run_block)

    def _run_block(self, x):
        p, c = self._params, self._prepared()
        # Exact, no int32 wrap: the vendor's uint8 sums cannot reach 2**31 below kernel 148, and whether
        # it wraps beyond is unknown (akida2-layers.md §8).
        plan = input_plan(self, x.dtype, None, c["kernel"], rule="input", wrap=False, x_bound=c["padding_bound"])
        acc, bound = k2.convolve2d(x, c["kernel"], p.kernel_stride, p.padding, plan.x_bound, c["padding_value"],
                                   wrap=False)
        return pool_and_finish(self, acc, c["post"], rule="input", plan=plan)


@dataclasses.dataclass(frozen=True)
class Conv2DParams:
    """Parameters of Conv2D: odd kernel, stride 1 or 2 (2 only with kernel 1 or 3)."""

    filters: int
    kernel_size: int
    kernel_stride: int = 1
    padding: Padding = Padding.Same
    pool_type: PoolType = PoolType.NoPooling
    pool_size: int = -1
    pool_stride: int = -1
    output_bits: int = 8
    buffer_bits: int = 28
    activation: ActivationType = ActivationType.ReLU
    post_op_buffer_bits: int = 32
    weights_bits: int = 8
    name: str = ""

    def __post_init__(self):
        owner = normalise(self, ints={"filters": (1, 2 ** 20), "kernel_size": (1, 1023),
                                      "weights_bits": (None, None)}, bits=_BITS, enums=_ENUMS)
        check_kernel_v2(self, owner, strides_for_2=(1, 3))
        check_pool(self, owner)


def check_kernel_v2(params, owner, strides_for_2):
    """Kernel odd; stride 1 or 2; stride 2 only with the kernels in `strides_for_2`."""
    if params.kernel_size % 2 == 0:
        raise LayerParameterError(f"{owner}: Kernel size must be odd; got kernel_size={params.kernel_size}")
    stride = normalise_stride(params, owner)
    if stride == 2 and params.kernel_size not in strides_for_2:
        raise LayerParameterError(f"{owner}: kernel_stride=2 needs kernel_size in {strides_for_2}; got "
                                  f"kernel_size={params.kernel_size}")


def normalise_stride(params, owner):
    from .base import plain_int
    stride = plain_int(owner, "kernel_stride", params.kernel_stride)
    if stride not in (1, 2):
        raise LayerParameterError(f"{owner}: Kernel stride must be equal to 1 or 2; got kernel_stride={stride}")
    object.__setattr__(params, "kernel_stride", stride)
    return stride


class Conv2D(FilterLayerV2):
    """Akida 2.0 convolution: shifted inputs, true convolution (wrap32), POST with optional pooling."""

    layer_type = LayerType.Conv2D
    short_name = "Conv2D"
    params_type = Conv2DParams

    def __init__(self, filters, kernel_size, kernel_stride=1, padding=Padding.Same, pool_type=PoolType.NoPooling,
                 pool_size=-1, pool_stride=-1, output_bits=8, buffer_bits=28, activation=ActivationType.ReLU,
                 post_op_buffer_bits=32, weights_bits=8, name=""):
        super().__init__(Conv2DParams(filters, kernel_size, kernel_stride, padding, pool_type, pool_size,
                                      pool_stride, output_bits, buffer_bits, activation, post_op_buffer_bits,
                                      weights_bits, name))


    def _output_dims(self, input_dims):
        p = self._params
        channels = input_dims[2] if self.depthwise else p.filters
        return conv_output_shape(p, input_dims, f"{self.layer_type.name} '{self.name}'", p.kernel_size,
                                 p.kernel_stride, channels)

    def _base_specs(self):
        p = self._params
        c = self.input_dims[2]
        low, high = _weights_limit(p.weights_bits)
        shape = (p.kernel_size, p.kernel_size, c, 1 if self.depthwise else p.filters)
        return {"weights": spec(shape, np.int8, low, high), **neural_specs(p, self.filters, in_shift=c)}

    def _prepare(self):
        super()._prepare()
        return {"post": make_post(self._values, self._params, self._params.post_op_buffer_bits),
                # flipped and cast once per weights (they clear this cache), not on every call
                "kernel": k2.ConvolutionKernel(self._values["weights"][..., 0] if self.depthwise
                                               else self._values["weights"], self.depthwise),
                "input_shift": self._values["input_shift"].astype(np.int64)}

    @property
    def macs(self):
        h, w, _ = self.output_dims_before_pool()
        fan = self._params.kernel_size ** 2 * (1 if self.depthwise else self.input_dims[2])
        return h * w * fan * self.filters

    def output_dims_before_pool(self):
        """(h, w, filters) of the convolution before pooling."""
        p = self._params
        from ... import kernels
        return (kernels.output_size(self.input_dims[0], p.kernel_size, p.kernel_stride, p.padding),
                kernels.output_size(self.input_dims[1], p.kernel_size, p.kernel_stride, p.padding), self.filters)

    def _run(self, inputs):
        return run_in_blocks(self, inputs[0], self._run_block)

    def _run_block(self, x):
        p, c = self._params, self._prepared()
        plan = input_plan(self, x.dtype, c["input_shift"], c["kernel"])
        xs = shifted_inputs(x, c["input_shift"], p.buffer_bits, plan.shift)
        if self.depthwise:
            acc, bound = k2.depthwise_convolve2d(xs, c["kernel"], p.kernel_stride, p.padding, plan.x_bound)
        else:
            acc, bound = k2.convolve2d(xs, c["kernel"], p.kernel_stride, p.padding, plan.x_bound)
        return pool_and_finish(self, acc, c["post"], bound=bound, plan=plan)


@dataclasses.dataclass(frozen=True)
class DepthwiseConv2DParams:
    """Parameters of DepthwiseConv2D: odd kernel, stride 2 only with kernel 3; filters = input channels."""

    kernel_size: int
    kernel_stride: int = 1
    padding: Padding = Padding.Same
    pool_type: PoolType = PoolType.NoPooling
    pool_size: int = -1
    pool_stride: int = -1
    output_bits: int = 8
    buffer_bits: int = 28
    post_op_buffer_bits: int = 32
    activation: ActivationType = ActivationType.ReLU
    weights_bits: int = 8
    name: str = ""

    def __post_init__(self):
        owner = normalise(self, ints={"kernel_size": (1, 1023), "weights_bits": (None, None)}, bits=_BITS,
                          enums=_ENUMS)
        check_kernel_v2(self, owner, strides_for_2=(3,))
        check_pool(self, owner)


class DepthwiseConv2D(Conv2D):
    """Akida 2.0 depthwise convolution: one (k, k) kernel per channel, as Conv2D otherwise."""

    layer_type = LayerType.DepthwiseConv2D
    short_name = "DepthwiseConv2D"
    params_type = DepthwiseConv2DParams
    depthwise = True

    def __init__(self, kernel_size, kernel_stride=1, padding=Padding.Same, pool_type=PoolType.NoPooling,
                 pool_size=-1, pool_stride=-1, output_bits=8, buffer_bits=28, post_op_buffer_bits=32,
                 activation=ActivationType.ReLU, weights_bits=8, name=""):
        LayerV2.__init__(self, DepthwiseConv2DParams(kernel_size, kernel_stride, padding, pool_type, pool_size,
                                                     pool_stride, output_bits, buffer_bits, post_op_buffer_bits,
                                                     activation, weights_bits, name))

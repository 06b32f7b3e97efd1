"""Dense1D, Conv2DTranspose and DepthwiseConv2DTranspose (Akida 2.0).

Dense1D flattens its input row-major ((d0·W + d1)·C + c; v1 FullyConnected was column-major) and
sums exactly (no int32 wrap). The transposed convolutions have stride 2 and "same" geometry: output
(2H, 2W), offset p = floor(max(k - 2, 0) / 2), no kernel flip, summed modulo 2**32.
"""
import dataclasses
import math

import numpy as np

from ...kernels import v2 as k2
from ...enums import ActivationType, LayerType
from ...kernels import v2_affine as affine
from .base import (FilterLayerV2, LayerV2, input_plan, make_post, neural_specs, normalise, post_process,
                   shifted_inputs, spec)
from .convolution import _weights_limit, run_in_blocks

_BITS = ("output_bits", "buffer_bits", "post_op_buffer_bits")


@dataclasses.dataclass(frozen=True)
class Dense1DParams:
    """Parameters of Dense1D (any 3-D input, flattened; activation off by default)."""

    units: int
    output_bits: int = 8
    buffer_bits: int = 28
    post_op_buffer_bits: int = 32
    activation: ActivationType = ActivationType.NoActivation
    weights_bits: int = 8
    name: str = ""

    def __post_init__(self):
        normalise(self, ints={"units": (1, 2 ** 20), "weights_bits": (None, None)}, bits=_BITS,
                  enums={"activation": ActivationType})


class Dense1D(LayerV2):
    """Akida 2.0 dense layer: (1, 1, units) outputs from the row-major flattened input."""

    layer_type = LayerType.Dense1D
    short_name = "Dense1D"
    params_type = Dense1DParams

    def __init__(self, units, output_bits=8, buffer_bits=28, post_op_buffer_bits=32,
                 activation=ActivationType.NoActivation, weights_bits=8, name=""):
        super().__init__(Dense1DParams(units, output_bits, buffer_bits, post_op_buffer_bits, activation,
                                       weights_bits, name))

    @property
    def input_size(self):
        """Number of flattened inputs H·W·C."""
        return math.prod(self.input_dims)

    def _attach_inbounds(self, model, name, inbounds, used_bytes=0):
        """As every v2 layer, then report `input_dims` as (1, 1, H·W·C), as the vendor does."""
        super()._attach_inbounds(model, name, inbounds, used_bytes)
        self.input_dims = (1, 1, math.prod(self.input_dims))

    def _output_dims(self, input_dims):
        return 1, 1, self._params.units

    def _base_specs(self):
        p = self._params
        low, high = _weights_limit(p.weights_bits)
        return {"weights": spec((self.input_size, p.units), np.int8, low, high),
                **neural_specs(p, p.units, in_shift=self.input_size)}

    def _prepare(self):
        super()._prepare()
        # the weights as a (1, 1, N, units) kernel: their l1 per unit and float matrices, made once
        return {"post": make_post(self._values, self._params, self._params.post_op_buffer_bits),
                "kernel": k2.ConvolutionKernel(self._values["weights"][None, None], flip=False),
                "input_shift": self._values["input_shift"].astype(np.int64)}

    @property
    def macs(self):
        return self.input_size * self._params.units

    def _run(self, inputs):
        p, c = self._params, self._prepared()
        flat = inputs[0].reshape(inputs[0].shape[0], -1)  # row-major over (d0, d1, C)
        plan = input_plan(self, flat.dtype, c["input_shift"], c["kernel"], wrap=False)
        xs = shifted_inputs(flat, c["input_shift"], p.buffer_bits, plan.shift)
        bound = None if plan.x_bound is None else c["kernel"].bound(plan.x_bound)
        if bound is not None and bound < 1 << 53:  # exact BLAS sums (Dense1D does not wrap)
            dtype = k2.float_dtype(bound)
            acc = (xs.astype(dtype) @ c["kernel"].cast(dtype)).reshape(-1, 1, 1, p.units)
        else:
            acc = k2.exact_matmul(xs, self._values["weights"]).reshape(-1, 1, 1, p.units)
        if plan.affine is not None:
            return affine.affine_post(acc, plan.affine, inplace=True)
        return post_process(acc, c["post"], bound=bound)


@dataclasses.dataclass(frozen=True)
class Conv2DTransposeParams:
    """Parameters of Conv2DTranspose (stride 2, 'same' geometry, any kernel >= 1)."""

    filters: int
    kernel_size: int
    activation: ActivationType = ActivationType.ReLU
    output_bits: int = 8
    buffer_bits: int = 28
    post_op_buffer_bits: int = 32
    weights_bits: int = 8
    name: str = ""

    def __post_init__(self):
        normalise(self, ints={"filters": (1, 2 ** 20), "kernel_size": (1, 1023), "weights_bits": (None, None)},
                  bits=_BITS, enums={"activation": ActivationType})


@dataclasses.dataclass(frozen=True)
class DepthwiseConv2DTransposeParams:
    """Parameters of DepthwiseConv2DTranspose (as Conv2DTranspose, one kernel per channel)."""

    kernel_size: int
    activation: ActivationType = ActivationType.ReLU
    output_bits: int = 8
    buffer_bits: int = 28
    post_op_buffer_bits: int = 32
    weights_bits: int = 8
    name: str = ""

    def __post_init__(self):
        normalise(self, ints={"kernel_size": (1, 1023), "weights_bits": (None, None)}, bits=_BITS,
                  enums={"activation": ActivationType})


class Conv2DTranspose(FilterLayerV2):
    """Akida 2.0 transposed convolution: (H, W, C) -> (2H, 2W, filters)."""

    layer_type = LayerType.Conv2DTranspose
    short_name = "Conv2DTranspose"
    params_type = Conv2DTransposeParams

    def __init__(self, filters, kernel_size, activation=ActivationType.ReLU, output_bits=8, buffer_bits=28,
                 post_op_buffer_bits=32, weights_bits=8, name=""):
        super().__init__(Conv2DTransposeParams(filters, kernel_size, activation, output_bits, buffer_bits,
                                               post_op_buffer_bits, weights_bits, name))


    def _output_dims(self, input_dims):
        return 2 * input_dims[0], 2 * input_dims[1], input_dims[2] if self.depthwise else self._params.filters

    def _base_specs(self):
        p = self._params
        c = self.input_dims[2]
        shape = (p.kernel_size, p.kernel_size, c, 1 if self.depthwise else p.filters)
        return {"weights": spec(shape, np.int8), **neural_specs(p, self.filters, in_shift=c)}

    def _prepare(self):
        super()._prepare()
        weights = self._values["weights"]
        return {"post": make_post(self._values, self._params, self._params.post_op_buffer_bits),
                # cast once per weights (they clear this cache), not on every call
                "kernel": k2.TransposeKernel(weights[..., 0] if self.depthwise else weights, self.depthwise),
                "input_shift": self._values["input_shift"].astype(np.int64)}

    @property
    def macs(self):
        fan = 1 if self.depthwise else self.input_dims[2]
        return self.input_dims[0] * self.input_dims[1] * self._params.kernel_size ** 2 * fan * self.filters

    def output_dims_before_pool(self):
        """(2h, 2w, filters): the output (no pooling), for run_in_blocks."""
        return self.output_dims

    def _run(self, inputs):
        return run_in_blocks(self, inputs[0], self._run_block)

    def _run_block(self, x):
        # as Conv2D: the static input bound picks the float dtype, and POST is one float map where the
        # layer's AffinePost proves it exact
        p, c = self._params, self._prepared()
        plan = input_plan(self, x.dtype, c["input_shift"], c["kernel"])
        xs = shifted_inputs(x, c["input_shift"], p.buffer_bits, plan.shift)
        acc, bound = k2.conv2d_transpose(xs, c["kernel"], self.depthwise, plan.x_bound)
        if plan.affine is not None:
            return affine.affine_post(acc, plan.affine, inplace=True)
        return post_process(acc, c["post"], bound=bound)


class DepthwiseConv2DTranspose(Conv2DTranspose):
    """Akida 2.0 depthwise transposed convolution: (H, W, C) -> (2H, 2W, C)."""

    layer_type = LayerType.DepthwiseConv2DTranspose
    short_name = "DepthwiseConv2DTranspose"
    params_type = DepthwiseConv2DTransposeParams
    depthwise = True

    def __init__(self, kernel_size, activation=ActivationType.ReLU, output_bits=8, buffer_bits=28,
                 post_op_buffer_bits=32, weights_bits=8, name=""):
        LayerV2.__init__(self, DepthwiseConv2DTransposeParams(kernel_size, activation, output_bits, buffer_bits,
                                                              post_op_buffer_bits, weights_bits, name))

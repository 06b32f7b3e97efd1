"""SeparableConvolutional: depthwise then pointwise true convolution, one exact potential."""
import dataclasses

import numpy as np

from ... import kernels
from ...enums import LayerType, Padding, PoolType
from ..base import weight_range
from .convolutional import (ConvolutionalParams, conv_output_shape, conv_positions, max_input, pooled_positions,
                            potentials_shape, skipping_silent_channels)
from ..layer import Layer

SEPARABLE_SKIP_OVERHEAD_MACS = 2 ** 20
"""convolutional.SKIP_OVERHEAD_MACS for a SeparableConvolutional: skipping needs no im2col, so about 1 M MACs.
Break-evens measured at batch 1 (rule's limit): DS-CNN separable_2 0.58 M MACs none (none), AkidaNet-like
separable_4 2.2 M 0.25 (0.28), separable_5 4.5 M 0.48 (0.52), separable_8 4.3 M 0.5 (0.51), separable_12 2.1 M
0.45 (0.26), separable_13 4.3 M 0.57 (0.50)."""


@dataclasses.dataclass(frozen=True)
class SeparableConvolutionalParams(ConvolutionalParams):
    """Parameters of SeparableConvolutional (Akida 1.0); `filters` counts pointwise filters."""

    weights_bits: int = 2


class SeparableConvolutional(Layer):
    """Depthwise (kh, kw, cin, 1) then pointwise (1, 1, cin, filters) weights, both `weights_bits`."""

    layer_type = LayerType.SeparableConvolutional
    short_name = "SepConv"
    bands = True
    params_type = SeparableConvolutionalParams

    def __init__(self, kernel_size, filters, name="", padding=Padding.Same, kernel_stride=(1, 1),
                 weights_bits=2, pool_size=(-1, -1), pool_type=PoolType.NoPooling, pool_stride=(-1, -1),
                 activation=True, act_bits=1, threshold=0):
        super().__init__(SeparableConvolutionalParams(
            kernel_size, filters, name, padding, kernel_stride, weights_bits, pool_size, pool_type,
            pool_stride, activation, act_bits, threshold))

    def _output_dims(self, input_dims):
        return conv_output_shape(self._params, input_dims)

    def _base_specs(self):
        p = self._params
        cin = self.input_dims[2]
        return {"weights": self._weight_spec((*p.kernel_size, cin, 1), p.weights_bits),
                "weights_pw": self._weight_spec((1, 1, cin, p.filters), p.weights_bits),
                **self._neuron_specs(p.filters)}

    def potential_bound(self):
        p = self._params
        w = max(map(abs, weight_range(p.weights_bits)))
        depthwise = w * max_input(self) * p.kernel_size[0] * p.kernel_size[1]
        return depthwise * w * self.input_dims[2] * pooled_positions(p, self.input_dims)

    @property
    def macs(self):
        p = self._params
        cin = self.input_dims[2]
        return conv_positions(p, self.input_dims) * cin * (p.kernel_size[0] * p.kernel_size[1] + p.filters)

    def _forward(self, inputs, bands=1, run=None, live=None):
        """Potentials to activations; `live` as in Convolutional._forward."""
        p = self._params
        plan = self._cached("kernels", self._kernels)
        if plan is None:
            depthwise = self._cached("flipped", lambda: np.ascontiguousarray(
                self._values["weights"][::-1, ::-1, :, 0]))
            pointwise = self._values["weights_pw"][0, 0]
            potentials = kernels.separable_conv2d(inputs, depthwise, pointwise, p.kernel_stride, p.padding)
        else:
            depthwise, pointwise = plan
            live = kernels.shared.live_channels(inputs) if live is None else live
            if live is not None:  # silent channels add nothing (zero padding): only the others' weights
                # np.take keeps C order (an index array on the last axis would not), which the kernels need
                inputs, depthwise = np.take(inputs, live, axis=3), np.take(depthwise, live, axis=2)
                pointwise = np.take(pointwise, live, axis=0)
            potentials = kernels.shared.separable_conv2d_prepared(inputs, depthwise, pointwise, p.kernel_stride,
                                                                  p.padding, bands=bands, run=run)
        return self._activate(self._pool(potentials))

    def _buffered_forward(self, input_shape):
        plan = self._cached("kernels", self._kernels)
        if plan is None:
            return None
        p = self._params
        separable = kernels.buffered.separable_conv2d(input_shape, *plan, p.kernel_stride, p.padding)
        tail = self._buffered_tail(potentials_shape(p, input_shape), plan[1].dtype)
        return skipping_silent_channels(self, lambda inputs: tail(separable(inputs)), input_shape[0],
                                        SEPARABLE_SKIP_OVERHEAD_MACS)

    def _kernels(self):
        """The flipped depthwise (kh, kw, c) and pointwise (c, filters) weights in float32, when float32 is
        exact for both sums and every valid input (else None: the kernel picks dtypes from the data)."""
        p = self._params
        depthwise = self._values["weights"][::-1, ::-1, :, 0]
        pointwise = self._values["weights_pw"][0, 0]
        kh, kw, c = depthwise.shape
        largest_dw = int(np.abs(depthwise.astype(np.int32)).max()) if depthwise.size else 0
        partial_bound = largest_dw * max_input(self) * kh * kw
        if not (self._exact_float32(depthwise, kh * kw, max_input(self))
                and self._exact_float32(pointwise, c, partial_bound)):
            return None
        return (np.ascontiguousarray(depthwise, np.float32), np.ascontiguousarray(pointwise, np.float32))

"""BufferTempConv, DepthwiseBufferTempConv and StatefulRecurrent: the Akida 2.0 temporal layers.

Each batch sample is one time step. The state (the FIFO of the last `fifo_size` shifted inputs, or
the complex recurrent state) starts at zero, persists across `forward` calls, and is reset by
`layer.reset_state()`, `model.reset_states()` or by setting any variable of the layer.
"""
import dataclasses

import numpy as np

from ...kernels import v2 as k2
from ...kernels import v2_affine as affine
from ...kernels import v2_temporal as kt
from ...enums import ActivationType, LayerType
from ...errors import LayerParameterError, ModelStructureError
from .base import (FilterLayerV2, LayerV2, input_plan, make_post, neural_specs, normalise, post_process,
                   shifted_inputs, spec)

_BITS = ("output_bits", "buffer_bits", "post_op_buffer_bits")
MAX_FIFO_INPUT_BITS = 8
"""BufferTempConv inputs wider than this crash the vendor runtime (akida2-layers.md §7)."""


@dataclasses.dataclass(frozen=True)
class BufferTempConvParams:
    """Parameters of BufferTempConv (fifo_size 2..10)."""

    filters: int
    fifo_size: int
    activation: ActivationType = ActivationType.ReLU
    output_bits: int = 8
    buffer_bits: int = 32
    post_op_buffer_bits: int = 32
    weights_bits: int = 8
    name: str = ""

    def __post_init__(self):
        check_fifo(self, normalise(self, ints={"filters": (1, 2 ** 20), "weights_bits": (None, None)},
                                   bits=_BITS, enums={"activation": ActivationType}))


@dataclasses.dataclass(frozen=True)
class DepthwiseBufferTempConvParams:
    """Parameters of DepthwiseBufferTempConv (fifo_size 2..10, one weight per slot and channel)."""

    fifo_size: int
    activation: ActivationType = ActivationType.ReLU
    output_bits: int = 8
    buffer_bits: int = 32
    post_op_buffer_bits: int = 32
    weights_bits: int = 8
    name: str = ""

    def __post_init__(self):
        check_fifo(self, normalise(self, ints={"weights_bits": (None, None)}, bits=_BITS,
                                   enums={"activation": ActivationType}))


def check_fifo(params, owner):
    """fifo_size is an int in 2..10."""
    from .base import plain_int
    size = plain_int(owner, "fifo_size", params.fifo_size)
    if not 2 <= size <= 10:
        raise LayerParameterError(f"{owner}: fifo_size must be between 2 and 10; got {size}")
    object.__setattr__(params, "fifo_size", size)


class BufferTempConv(FilterLayerV2):
    """Pointwise convolution over the last `fifo_size` time steps: (H, W, C) -> (H, W, filters)."""

    temporal = True
    layer_type = LayerType.BufferTempConv
    short_name = "BufferTempConv"
    params_type = BufferTempConvParams

    def __init__(self, filters, fifo_size, activation=ActivationType.ReLU, output_bits=8, buffer_bits=32,
                 post_op_buffer_bits=32, weights_bits=8, name=""):
        super().__init__(BufferTempConvParams(filters, fifo_size, activation, output_bits, buffer_bits,
                                              post_op_buffer_bits, weights_bits, name))


    def _check_inbounds(self, name, inbounds):
        if inbounds[0].output_bits > MAX_FIFO_INPUT_BITS:
            raise ModelStructureError(
                f"{self.layer_type.name} '{name}': its inbound '{inbounds[0].name}' outputs "
                f"{inbounds[0].output_bits} bits; FIFO layers take at most {MAX_FIFO_INPUT_BITS}-bit inputs "
                "(wider ones crash the vendor runtime). Hint: set output_bits <= 8 on the inbound")

    def _output_dims(self, input_dims):
        return input_dims[0], input_dims[1], self.filters if not self.depthwise else input_dims[2]

    def _base_specs(self):
        p = self._params
        c = self.input_dims[2]
        shape = (1, 1, p.fifo_size, c) if self.depthwise else (1, 1, p.fifo_size * c, p.filters)
        return {"weights": spec(shape, np.int8), **neural_specs(p, self.filters, in_shift=c)}

    def _prepare(self):
        super()._prepare()
        weights = self._values["weights"]
        # l1 per filter (the static bound of the sums) and the float casts, made once per weights
        kernel = k2.ConvolutionKernel(weights[0], depthwise=True, flip=False) if self.depthwise else \
            k2.ConvolutionKernel(weights, flip=False)
        return {"post": make_post(self._values, self._params, self._params.post_op_buffer_bits),
                "kernel": kernel, "input_shift": self._values["input_shift"].astype(np.int64)}

    @property
    def macs(self):
        h, w, c = self.input_dims
        return h * w * self._params.fifo_size * (1 if self.depthwise else c) * self.filters

    def _run(self, inputs):
        p, c = self._params, self._prepared()
        x = inputs[0]
        plan = input_plan(self, x.dtype, c["input_shift"], c["kernel"])
        xs = shifted_inputs(x, c["input_shift"], p.buffer_bits, plan.shift)
        fifo = self._state if self._state is not None else np.zeros((p.fifo_size, *xs.shape[1:]), np.int64)
        if self.depthwise:
            (acc, bound), self._state = kt.depthwise_buffer_temp_conv(xs, fifo, c["kernel"], p.buffer_bits,
                                                                      plan.x_bound)
        else:
            (acc, bound), self._state = kt.buffer_temp_conv(xs, fifo, c["kernel"], plan.x_bound)
        # the AffinePost holds for sums within the plan's static bound: not when the FIFO still holds
        # wider inputs of an earlier call
        if plan.affine is not None and acc.dtype != np.int64 and bound <= c["kernel"].bound(plan.x_bound):
            return affine.affine_post(acc, plan.affine, inplace=True)
        return post_process(acc, c["post"], bound=bound)


class DepthwiseBufferTempConv(BufferTempConv):
    """Per-channel FIFO sum with a running `buffer_bits` saturation: (H, W, C) -> (H, W, C)."""

    layer_type = LayerType.DepthwiseBufferTempConv
    short_name = "DepthwiseBufferTempConv"
    params_type = DepthwiseBufferTempConvParams
    depthwise = True

    def __init__(self, fifo_size, activation=ActivationType.ReLU, output_bits=8, buffer_bits=32,
                 post_op_buffer_bits=32, weights_bits=8, name=""):
        LayerV2.__init__(self, DepthwiseBufferTempConvParams(fifo_size, activation, output_bits, buffer_bits,
                                                             post_op_buffer_bits, weights_bits, name))


@dataclasses.dataclass(frozen=True)
class StatefulRecurrentParams:
    """Parameters of StatefulRecurrent: C -> S (stateful_channels) -> O (output_channels)."""

    stateful_channels: int
    output_channels: int
    subsample: int = 1
    activation: ActivationType = ActivationType.ReLU
    output_bits: int = 8
    buffer_bits: int = 28
    post_op_buffer_bits: int = 32
    internal_state_bits: int = 16
    name: str = ""

    def __post_init__(self):
        owner = normalise(self, ints={"stateful_channels": (1, 2 ** 16), "output_channels": (1, 2 ** 16),
                                      "subsample": (1, 2 ** 20)},
                          bits=_BITS + ("internal_state_bits",), enums={"activation": ActivationType})
        if self.internal_state_bits < 9:
            raise LayerParameterError(f"{owner}: internal_state_bits={self.internal_state_bits} is not supported; "
                                      "allowed: 9 to 32 (8 crashes the vendor runtime)")
        if self.activation == ActivationType.LUT:
            raise LayerParameterError(f"{owner}: activation=ActivationType.LUT is not supported on "
                                      "StatefulRecurrent (unverified semantics); use ReLU or NoActivation")


class StatefulRecurrent(LayerV2):
    """Complex diagonal recurrence over time: input (1, T, C) -> (1, T / subsample, output_channels).

    The time axis is d1 within a sample, continued across the samples of a batch and across calls.
    """

    temporal = True
    layer_type = LayerType.StatefulRecurrent
    short_name = "StatefulRecurrent"
    params_type = StatefulRecurrentParams

    def __init__(self, stateful_channels, output_channels, subsample=1, activation=ActivationType.ReLU,
                 output_bits=8, buffer_bits=28, post_op_buffer_bits=32, internal_state_bits=16, name=""):
        super().__init__(StatefulRecurrentParams(stateful_channels, output_channels, subsample, activation,
                                                 output_bits, buffer_bits, post_op_buffer_bits,
                                                 internal_state_bits, name))

    def _check_inbounds(self, name, inbounds):
        kind = inbounds[0].layer_type.name
        if kind not in ("InputData", "StatefulRecurrent"):
            raise ModelStructureError(f"StatefulRecurrent '{name}': its inbound must be InputData or another "
                                      f"StatefulRecurrent; got {kind} '{inbounds[0].name}'")

    def _output_dims(self, input_dims):
        owner = f"StatefulRecurrent '{self.name}'"
        d0, steps, _ = input_dims
        if d0 != 1:
            raise ModelStructureError(f"{owner}: input must be (1, T, C); got {tuple(input_dims)} (a first dim "
                                      "above 1 is not supported)")
        if steps % self._params.subsample:
            raise ModelStructureError(f"{owner}: subsample={self._params.subsample} must divide the {steps} time "
                                      "steps of the input")
        return 1, steps // self._params.subsample, self._params.output_channels

    def _base_specs(self):
        p = self._params
        c, s, o = self.input_dims[2], p.stateful_channels, p.output_channels
        specs = {"in_proj": spec((c, s), np.int8), "out_proj": spec((s, o), np.int8),
                 "A_real": spec((s,), np.int16), "A_imag": spec((s,), np.int16),
                 "new_state_scale": spec((s,), np.uint8), "new_state_shift": spec((s,), np.int8),
                 "internal_state_outputs_shift": spec((s,), np.int8)}
        specs.update(neural_specs(p, o, in_shift=c))
        return specs

    def _prepare(self):
        super()._prepare()
        v = {name: array.astype(np.int64) for name, array in self._values.items()}
        return {"post": make_post(self._values, self._params, self._params.buffer_bits), "v": v}

    @property
    def macs(self):
        p = self._params
        steps, c = self.input_dims[1], self.input_dims[2]
        return steps * (c * p.stateful_channels + 4 * p.stateful_channels) \
            + self.output_dims[1] * p.stateful_channels * p.output_channels

    def _run(self, inputs):
        p, c = self._params, self._prepared()
        v, post = c["v"], c["post"]
        x = inputs[0]
        n, _, steps, channels = x.shape
        xs = shifted_inputs(x.reshape(-1, channels), v["input_shift"], p.buffer_bits)
        ip = k2.sat(k2.exact_matmul(xs, self._values["in_proj"]), p.buffer_bits)
        pb = p.post_op_buffer_bits
        new = k2.sat(k2.round_shift(k2.sat(ip * v["new_state_scale"], pb), v["new_state_shift"]), pb)
        state = self._state
        if state is None:
            zeros = np.zeros(p.stateful_channels, np.int64)
            state = (zeros, zeros)
        out, self._state = kt.recurrent_states(new, state, v["A_real"], v["A_imag"],
                                               v["internal_state_outputs_shift"], pb, p.internal_state_bits)
        kept = out.reshape(n, steps, -1)[:, p.subsample - 1::p.subsample]
        acc = k2.sat(k2.exact_matmul(kept.reshape(-1, kept.shape[2]), self._values["out_proj"]), p.buffer_bits)
        return post_process(acc, post, rule="recurrent").reshape(n, 1, kept.shape[1], p.output_channels)

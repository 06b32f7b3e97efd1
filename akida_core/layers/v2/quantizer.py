"""Quantizer and Dequantizer: the float edges of an Akida 2.0 model.

Quantizer (first layer) turns float32 inputs into 4- or 8-bit integers per channel; Dequantizer
(last layer) turns integers into float32. Both multiply in float32, as the vendor does.
"""
import dataclasses

import numpy as np

from ...kernels import v2 as k2
from ...enums import LayerType
from ...errors import InputDataError, LayerParameterError
from ..base import as_shape, check_bool
from .base import LayerV2, layer_output_dtype, normalise, spec


@dataclasses.dataclass(frozen=True)
class QuantizerParams:
    """Parameters of Quantizer. With channels_first, input_shape is (C, d0, d1) and outputs (d0, d1, C)."""

    input_shape: tuple
    output_bits: int
    output_signed: bool
    channels_first: bool = False
    name: str = ""

    def __post_init__(self):
        owner = normalise(self, ints={"output_bits": (None, None)})
        if self.output_bits not in (4, 8):
            raise LayerParameterError(f"{owner}: output_bits={self.output_bits}: bitwidth should be 4 or 8")
        object.__setattr__(self, "input_shape", as_shape(owner, self.input_shape))
        object.__setattr__(self, "output_signed", check_bool(owner, "output_signed", self.output_signed))
        object.__setattr__(self, "channels_first", check_bool(owner, "channels_first", self.channels_first))


class Quantizer(LayerV2):
    """q = round_half_away_from_zero(float32(x·scales)) + zero_points, saturated (signed or unsigned).

    Unset scales are 0, so every output is then the zero point.
    """

    layer_type = LayerType.Quantizer
    short_name = "Quantizer"
    params_type = QuantizerParams
    is_input = True
    inbound_count = 0

    def __init__(self, input_shape, output_bits, output_signed, channels_first=False, name=""):
        super().__init__(QuantizerParams(input_shape, output_bits, output_signed, channels_first, name))

    @property
    def output_signed(self):
        """As configured by `output_signed`."""
        return self._params.output_signed

    @property
    def output_dtype(self):
        """int8 when signed, uint8 otherwise."""
        return np.dtype(np.int8 if self._params.output_signed else np.uint8)

    def _output_dims(self, input_dims):
        if self._params.channels_first:
            c, d0, d1 = input_dims
            return d0, d1, c
        return tuple(input_dims)

    def _base_specs(self):
        c = self.output_dims[2] if self.output_dims else self._output_dims(self.input_dims)[2]
        return {"scales": spec((c,), np.float32), "zero_points": spec((c,), np.uint8)}

    def validate_inputs(self, inputs):
        """float32 inputs of shape (N,) + input_shape, finite; or integers of the output dtype, in range.

        Raises:
            InputDataError: naming the expected shape and dtype.
        """
        check_input_shape(inputs, self.input_dims)
        if inputs.dtype == np.float32:
            if not np.all(np.isfinite(inputs)):
                raise InputDataError("Quantizer inputs hold NaN or inf; give finite float32 values")
            return inputs
        if inputs.dtype != self.output_dtype:
            raise InputDataError(f"Unsupported input type {inputs.dtype}. Input type should be float32 (or "
                                 f"{self.output_dtype.name}, passed through)")
        low, high = (-(1 << (self.output_bits - 1)), (1 << (self.output_bits - 1)) - 1) \
            if self.output_signed else (0, (1 << self.output_bits) - 1)
        check_input_range(inputs, low, high)
        return inputs

    def _run(self, inputs):
        x = inputs[0]
        if self._params.channels_first:
            x = np.transpose(x, (0, 2, 3, 1))
        if x.dtype != np.float32:
            return np.ascontiguousarray(x)
        return k2.quantize(x, self._values["scales"], self._values["zero_points"], self.output_bits,
                           self.output_signed)


@dataclasses.dataclass(frozen=True)
class DequantizerParams:
    """Parameters of Dequantizer (only a name)."""

    name: str = ""

    def __post_init__(self):
        normalise(self)


class Dequantizer(LayerV2):
    """y = float32(x)·scales[c] (float32); must be the last layer."""

    layer_type = LayerType.Dequantizer
    short_name = "Dequantizer"
    params_type = DequantizerParams

    def __init__(self, name=""):
        super().__init__(DequantizerParams(name))

    def _output_dims(self, input_dims):
        return tuple(input_dims)

    def _base_specs(self):
        return {"scales": spec((self.input_dims[2],), np.float32)}

    @property
    def output_bits(self):
        """float32 outputs."""
        return 32

    @property
    def output_signed(self):
        """float outputs are signed."""
        return True

    @property
    def output_dtype(self):
        """float32."""
        return np.dtype(np.float32)

    def _run(self, inputs):
        return k2.dequantize(inputs[0], self._values["scales"])


def check_input_shape(inputs, input_shape):
    """x is a 4-D numpy array (N,) + input_shape with N >= 1."""
    if not isinstance(inputs, np.ndarray):
        raise InputDataError(f"inputs must be a numpy array of shape (N, {', '.join(map(str, input_shape))}); "
                             f"got a {type(inputs).__name__}")
    if inputs.ndim != 4 or tuple(inputs.shape[1:]) != tuple(input_shape) or inputs.shape[0] < 1:
        raise InputDataError(f"Input shape must be (N,{','.join(map(str, input_shape))}) with N >= 1 but got "
                             f"{inputs.shape}")


def check_input_range(inputs, low, high):
    """Integer inputs within [low, high] (no pass over the data when their dtype cannot leave it)."""
    info = np.iinfo(inputs.dtype)
    if low <= info.min and info.max <= high:
        return
    lo, hi = int(inputs.min()), int(inputs.max())
    if lo < low or hi > high:
        raise InputDataError(f"Input values must be in the range ({low}, {high}); got [{lo}, {hi}]")


def validate_v2_inputs(first, inputs):
    """Validate model inputs for the first layer of an Akida 2.0 model (InputData, InputConv2D, Quantizer).

    InputConv2D takes uint8; InputData uint8 in [0, 2**b - 1] up to 4 bits, else int8 in the signed
    b-bit range (any int8 above 8 bits).

    Raises:
        InputDataError: wrong type, shape, dtype or range.
    """
    if isinstance(first, Quantizer):
        return first.validate_inputs(inputs)
    check_input_shape(inputs, first.input_dims)
    if first.layer_type == LayerType.InputConv2D:
        expected, low, high = np.dtype(np.uint8), 0, 255
    else:
        bits = first.params.input_bits
        expected = layer_output_dtype(first)
        low, high = (0, (1 << bits) - 1) if bits <= 4 else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    if inputs.dtype != expected:
        raise InputDataError(f"Unsupported input type {inputs.dtype}. Input type should be {expected.name}.")
    check_input_range(inputs, low, high)
    return np.ascontiguousarray(inputs)

"""QuantizationParams of the Akida 2.0 scheme: MetaTF's fields and defaults."""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import QuantizationConfigError


def _check_int(name, value, low, high):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise QuantizationConfigError(
            f"QuantizationParams: {name}={value!r} ({type(value).__name__}) is not an integer; "
            f"allowed: {low} to {high}.")
    if not low <= int(value) <= high:
        raise QuantizationConfigError(
            f"QuantizationParams: {name}={value!r} is out of range; allowed: {low} to {high}.")
    return int(value)


@dataclasses.dataclass(frozen=True)
class QuantizationParams:
    """Quantization settings of the Akida 2.0 scheme (quantizeml 1.x / MetaTF 2.x fields, defaults).

    Any bit width quantizeml accepts is accepted here; the limits of a generation (Akida 2.0 layers
    take 4- or 8-bit weights) are conversion issues reported by ``cnn2snn.convert`` and
    ``cnn2snn-check`` with a fix.

    Args:
        activation_bits: bits of the ReLU outputs (and of a GAP after a ReLU).
        per_tensor_activations: one output range per tensor (True) or one per channel (False).
        weight_bits: weight bits of the neural layers after the first one.
        output_bits: bits of the other block outputs (no activation, Add, InputQuantizer).
        input_weight_bits: weight bits of every layer up to the first neural layer included.
        input_dtype: integer numpy dtype of the model inputs ('uint8' images, 'int8').
        buffer_bits: accumulator bits (neural layers use at most 28, as Akida 2.0 does).
        last_output_bits: output bits of the model's last layer (None: it keeps its raw 28-bit
            sums, as in MetaTF).

    Raises:
        QuantizationConfigError: a value is not an integer in its range, or a dtype that is not
            an integer dtype.
    """

    activation_bits: int = 8
    per_tensor_activations: bool = False
    weight_bits: int = 8
    output_bits: int = 8
    input_weight_bits: int = 8
    input_dtype: str = "uint8"
    buffer_bits: int = 32
    last_output_bits: int | None = None

    def __post_init__(self):
        for name, low in (("activation_bits", 1), ("weight_bits", 2), ("output_bits", 1),
                          ("input_weight_bits", 2)):
            object.__setattr__(self, name, _check_int(name, getattr(self, name), low, 16))
        object.__setattr__(self, "buffer_bits", _check_int("buffer_bits", self.buffer_bits, 8, 32))
        if self.last_output_bits is not None:
            object.__setattr__(self, "last_output_bits",
                               _check_int("last_output_bits", self.last_output_bits, 1, 32))
        if not isinstance(self.per_tensor_activations, (bool, np.bool_)):
            raise QuantizationConfigError(
                f"QuantizationParams: per_tensor_activations={self.per_tensor_activations!r} "
                "must be True or False.")
        object.__setattr__(self, "per_tensor_activations", bool(self.per_tensor_activations))
        try:
            dtype = np.dtype(self.input_dtype)
        except TypeError as err:
            raise QuantizationConfigError(
                f"QuantizationParams: input_dtype={self.input_dtype!r} is not a numpy dtype; "
                "allowed: an integer dtype such as 'uint8' or 'int8'.") from err
        if not np.issubdtype(dtype, np.integer) or dtype.itemsize > 2:
            raise QuantizationConfigError(
                f"QuantizationParams: input_dtype={self.input_dtype!r} must be an integer dtype "
                "of 8 or 16 bits ('uint8', 'int8', ...).")
        object.__setattr__(self, "input_dtype", str(dtype))

    @property
    def neural_buffer_bits(self) -> int:
        """Accumulator bits of the neural layers: ``min(28, buffer_bits)``."""
        return min(28, self.buffer_bits)

    def replace(self, **changes) -> "QuantizationParams":
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Return the settings as a JSON-compatible dict."""
        return dataclasses.asdict(self)

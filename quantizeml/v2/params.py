"""QuantizationParams: MetaTF's settings object (fields, positional order and defaults).

Exported as ``quantizeml.QuantizationParams``, ``quantizeml.layers.QuantizationParams`` and
``quantizeml.models.QuantizationParams``. It accepts every bit width MetaTF accepts whatever the
selected Akida generation; a generation's limits are conversion issues (``cnn2snn.convert``,
``cnn2snn.check_model_compatibility``), each with a fix.
"""
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
    """Quantization settings of a model or, in ``q_config``, of one layer (MetaTF's signature).

    Any bit width quantizeml accepts is accepted here, whatever the selected Akida version; the
    limits of a generation (Akida 1.0 runs 1/2/4-bit activations, Akida 2.0 layers take 4- or
    8-bit weights) are conversion issues reported by ``cnn2snn.convert`` and ``cnn2snn-check``
    with a fix. Under Akida 1.0 (``set_akida_version(AkidaVersion.v1)``) ``quantize`` translates
    these fields to the Akida 1.0 recipe (``quantizeml.Akida1QuantizationParams``).

    Args:
        activation_bits: bits of the ReLU outputs (and of a GAP after a ReLU); 1 to 16 (unsigned).
        per_tensor_activations: one output range per tensor (True) or one per channel (False);
            an int is read as a bool, as MetaTF does (``QuantizationParams(8, 8, 8)``).
        weight_bits: weight bits of the neural layers after the first one; 2 to 16 (signed).
        output_bits: bits of the other block outputs (no activation, Add, InputQuantizer); 1 to 16.
        input_weight_bits: weight bits of every layer up to the first neural layer included; 2 to
            16 (signed).
        input_dtype: integer numpy dtype of the model inputs ('uint8' images, 'int8', 16 bits at
            most).
        buffer_bits: accumulator bits, 8 to 32 (neural layers use at most 28, as Akida 2.0 does).
        last_output_bits: output bits of the model's last layer, 1 to 32 (None: it keeps its raw
            28-bit sums, as in MetaTF).

    Raises:
        QuantizationConfigError (a ValueError): a value is not an integer in its range, or
            ``input_dtype`` is not an integer dtype.

    Example:
        >>> QuantizationParams(input_weight_bits=8, weight_bits=4, activation_bits=4)
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
        # Signed quantizers (weights) need a sign bit and one magnitude bit; unsigned ones 1 bit.
        for name, low in (("activation_bits", 1), ("weight_bits", 2), ("output_bits", 1),
                          ("input_weight_bits", 2)):
            object.__setattr__(self, name, _check_int(name, getattr(self, name), low, 16))
        object.__setattr__(self, "buffer_bits", _check_int("buffer_bits", self.buffer_bits, 8, 32))
        if self.last_output_bits is not None:
            object.__setattr__(self, "last_output_bits",
                               _check_int("last_output_bits", self.last_output_bits, 1, 32))
        if not isinstance(self.per_tensor_activations, (bool, np.bool_, int, np.integer)):
            raise QuantizationConfigError(
                f"QuantizationParams: per_tensor_activations={self.per_tensor_activations!r} "
                f"({type(self.per_tensor_activations).__name__}) must be True or False (an int "
                "is read as a bool).")
        object.__setattr__(self, "per_tensor_activations", bool(self.per_tensor_activations))
        try:
            dtype = np.dtype(self.input_dtype)
        except (TypeError, ValueError) as err:
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

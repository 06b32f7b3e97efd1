"""Akida1QuantizationParams: the Akida 1.0 (AKD1000) quantization recipe, plus its presets.

MetaTF's settings object is ``quantizeml.QuantizationParams`` (``quantizeml.v2.params``); this
class is the explicit Akida 1.0 choice: passing it to ``quantize`` with no Akida version selected
quantizes with the Akida 1.0 scheme.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .errors import QuantizationConfigError

#: Bit widths an Akida 1.0 (AKD1000) model can use, per quantity.
ALLOWED_WEIGHT_BITS = (1, 2, 4, 8)
ALLOWED_ACTIVATION_BITS = (1, 2, 4)
ALLOWED_INPUT_DATA_BITS = (1, 2, 4)
#: The input convolution's weights: cnn2snn emits 4 or 8 bits there (as MetaTF does).
ALLOWED_INPUT_WEIGHT_BITS = (4, 8)


def _check_bits(name: str, value, allowed: tuple[int, ...]) -> None:
    # bool is an int subclass: True would silently mean 1 bit.
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise QuantizationConfigError(
            f"Akida1QuantizationParams: {name}={value!r} ({type(value).__name__}) is not an "
            f"integer; allowed: {', '.join(map(str, allowed))}."
        )
    if int(value) not in allowed:
        raise QuantizationConfigError(
            f"Akida1QuantizationParams: {name}={value!r} is not supported on Akida 1.0; "
            f"allowed: {', '.join(map(str, allowed))}."
        )


@dataclasses.dataclass(frozen=True)
class Akida1QuantizationParams:
    """Akida 1.0 quantization settings of a model (or of one layer, as a per-layer override).

    Passing them to ``quantizeml.models.quantize`` is an explicit Akida 1.0 choice: with no Akida
    version selected the Akida 1.0 scheme runs; under ``set_akida_version(AkidaVersion.v2)``
    quantize refuses them. Unlike MetaTF's ``QuantizationParams``, only bit widths AKD1000 runs are accepted.
    Defaults are the Akida 1.0 recipe: 8-bit input-layer weights, 4-bit weights, 4-bit per-tensor
    activations, uint8 model input.

    Args:
        activation_bits: bits of every QuantizedReLU output (1, 2 or 4).
        per_tensor_activations: one activation range per layer (True) or one per channel (False).
        weight_bits: bits of the weights of every neural layer but the first (1, 2, 4 or 8; 1 means
            binary {0, 1} weights; Akida 1.0 accepts 8 only on the input convolution).
        output_bits: bits of the non-activation integer outputs. On Akida 1.0 the only one is the
            model's InputQuantizer when the first layer is *not* an input convolution (InputData
            input bits: 1, 2 or 4).
        input_weight_bits: bits of the weights of the input convolution (4 or 8).
        input_dtype: numpy unsigned integer dtype of the model input of an input-convolution model.
        buffer_bits: accumulator width; every potential must fit in a signed ``buffer_bits`` integer
            (8 to 32).
        last_output_bits: activation bits of the last layer's ReLU, if it has one (None: same as
            ``activation_bits``).

    Raises:
        QuantizationConfigError: a value is not an allowed one (bools, 0, negatives, 4.5, 3 ...).
    """

    activation_bits: int = 4
    per_tensor_activations: bool = True
    weight_bits: int = 4
    output_bits: int = 4
    input_weight_bits: int = 8
    input_dtype: str = "uint8"
    buffer_bits: int = 32
    last_output_bits: int | None = None

    def __post_init__(self):
        _check_bits("activation_bits", self.activation_bits, ALLOWED_ACTIVATION_BITS)
        _check_bits("weight_bits", self.weight_bits, ALLOWED_WEIGHT_BITS)
        _check_bits("input_weight_bits", self.input_weight_bits, ALLOWED_INPUT_WEIGHT_BITS)
        _check_bits("output_bits", self.output_bits, ALLOWED_INPUT_DATA_BITS)
        _check_bits("buffer_bits", self.buffer_bits, tuple(range(8, 33)))
        if self.last_output_bits is not None:
            _check_bits("last_output_bits", self.last_output_bits, ALLOWED_ACTIVATION_BITS)
        if not isinstance(self.per_tensor_activations, (bool, np.bool_)):
            raise QuantizationConfigError(
                f"Akida1QuantizationParams: per_tensor_activations={self.per_tensor_activations!r} "
                "must be True or False."
            )
        try:
            dtype = np.dtype(self.input_dtype)
        except TypeError as err:
            raise QuantizationConfigError(
                f"Akida1QuantizationParams: input_dtype={self.input_dtype!r} is not a numpy dtype; "
                "allowed: 'uint8'."
            ) from err
        if dtype != np.uint8:
            raise QuantizationConfigError(
                f"Akida1QuantizationParams: input_dtype={self.input_dtype!r} is not supported on "
                "Akida 1.0; allowed: 'uint8' (images) — InputData models use output_bits instead."
            )
        # Normalise so equal settings compare and hash equal.
        for name in ("activation_bits", "weight_bits", "output_bits", "input_weight_bits",
                     "buffer_bits"):
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "per_tensor_activations", bool(self.per_tensor_activations))
        object.__setattr__(self, "input_dtype", str(dtype))

    def replace(self, **changes) -> "Akida1QuantizationParams":
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Return the settings as a JSON-compatible dict."""
        return dataclasses.asdict(self)


#: Internal name kept for the Akida 1.0 modules (the public name is Akida1QuantizationParams).
QuantizationParams = Akida1QuantizationParams

# Presets for Akida 1.0 (AKD1000); names read as the recipe they describe.
Int8InputInt4WeightUint4ActPerTensor = QuantizationParams()
Int8InputInt2WeightUint2ActPerTensor = QuantizationParams(weight_bits=2, activation_bits=2)
Int8InputBinaryWeightUint1ActPerTensor = QuantizationParams(weight_bits=1, activation_bits=1)
Int4InputInt4WeightUint4ActPerChannel = QuantizationParams(
    input_weight_bits=4, per_tensor_activations=False
)

PRESETS = {
    "Int8InputInt4WeightUint4ActPerTensor": Int8InputInt4WeightUint4ActPerTensor,
    "Int8InputInt2WeightUint2ActPerTensor": Int8InputInt2WeightUint2ActPerTensor,
    "Int8InputBinaryWeightUint1ActPerTensor": Int8InputBinaryWeightUint1ActPerTensor,
    "Int4InputInt4WeightUint4ActPerChannel": Int4InputInt4WeightUint4ActPerChannel,
}

#: Akida 1.0 neuron registers as (act_step bound, exclusive; signed threshold bits): the input
#: convolution's (HRC) and every other layer's (CNP/FNP). These are akida_core's AKD1000 numbers
#: (quantizeml never imports akida_core; tests/cnn2snn/test_hardware_table.py keeps them equal):
#: quantize() fits every block into them, so a quantized model always converts exactly.
INPUT_LAYER_REGISTERS = (2.0**20, 24)
LAYER_REGISTERS = (2.0**16, 20)

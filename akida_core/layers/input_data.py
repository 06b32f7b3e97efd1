"""InputData: the universal input layer; passes integer inputs of `input_bits` bits through."""
import dataclasses

from ..enums import LayerType
from .base import as_shape, check_int, check_name
from .layer import Layer


@dataclasses.dataclass(frozen=True)
class InputDataParams:
    """Parameters of InputData. Inputs are unsigned for input_bits <= 4, signed above.

    Akida 1.0 layers take at most 8 bits; Akida 2.0 accepts up to 32 (inputs are int8 above 4 bits)."""

    input_shape: tuple
    input_bits: int = 4
    name: str = ""

    def __post_init__(self):
        owner = f"InputData '{self.name}'"
        object.__setattr__(self, "input_shape", as_shape(owner, self.input_shape))
        object.__setattr__(self, "input_bits", check_int(owner, "input_bits", self.input_bits, 1, 32))
        check_name(self.name)


def output_shape(params, input_shape=None):
    """InputData outputs its inputs unchanged."""
    return params.input_shape


class InputData(Layer):
    """Universal input layer: `InputData(input_shape, input_bits=4, name="")`."""

    layer_type = LayerType.InputData
    short_name = "Input"
    params_type = InputDataParams
    is_input = True
    ip_version = None  # shared by Akida 1.0 and 2.0 models

    def __init__(self, input_shape, input_bits=4, name=""):
        super().__init__(InputDataParams(input_shape, input_bits, name))

    @property
    def output_bits(self):
        """Bits of the model inputs."""
        return self._params.input_bits

    @property
    def output_signed(self):
        """Inputs of more than 4 bits are signed."""
        return self._params.input_bits > 4

    def _output_dims(self, input_dims):
        return output_shape(self._params)

    def _base_specs(self):
        return {}

    def _forward(self, inputs):
        return inputs

    def _buffered_forward(self, input_shape):
        return self._forward  # nothing to compute: the inputs themselves

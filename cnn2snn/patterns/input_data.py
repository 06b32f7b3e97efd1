"""InputData: the input layer created when the first block cannot be an InputConvolutional."""
from akida_core import InputData, LayerType

from .base import Pattern, register


def build_input_data(block, context):
    """Returns the InputData layer of a model whose first block is not an input convolution."""
    shape = tuple(int(d) for d in context.input_shape)
    if len(shape) == 1:
        shape = (1, 1, shape[0])
    return InputData(input_shape=shape, input_bits=int(context.input_bits), name="input"), [], None


INPUT_DATA = register(Pattern(
    name="input-data",
    sequence=(),
    produces=LayerType.InputData,
    build=build_input_data,
    first_only=True,
    description="prepended when the first layer is not a Conv2D on a 1- or 3-channel input",
))

"""InputConvolutional: a first Conv2D on a 1- or 3-channel (uint8 image) input."""
import numpy as np

from akida_core import InputConvolutional, LayerType

from ..integers import block_integers, conv_arguments, value_issues
from .base import Pattern, maybe, one, register


def build_input_convolutional(block, context):
    """Builds the InputConvolutional of the first block: no kernel flip, pads with padding_value.

    Returns:
        (layer, issues, variables): variables are assigned once the layer is in a model.
    """
    params = block_integers(block, context)
    row = context.target.limits(block.produces)
    issues = value_issues(block, params, row, context.target)
    layer = InputConvolutional(input_shape=tuple(int(d) for d in context.input_shape),
                               padding_value=int(params["padding_value"]),
                               **conv_arguments(block, params))
    # InputConvolutional is a cross-correlation, like Keras: the kernel is used as is.
    variables = {"weights": np.asarray(params["weights"], np.int8)}
    return layer, issues, (variables, params)


INPUT_CONV_POOL_RELU = register(Pattern(
    name="input-conv-pool-relu",
    sequence=(one("neural", "conv"), maybe("bn", "bn"), maybe("pool", "maxpool"),
              maybe("bn_after_pool", "bn"), maybe("act", "relu")),
    produces=LayerType.InputConvolutional,
    build=build_input_convolutional,
    first_only=True,
    description="first Conv2D [MaxPool] [ReLU] on a 1/3-channel input",
))

# Max pooling after a ReLU equals max pooling before it: the quantized ReLU never decreases.
INPUT_CONV_RELU_POOL = register(Pattern(
    name="input-conv-relu-pool",
    sequence=(one("neural", "conv"), maybe("bn", "bn"), one("act", "relu"),
              one("pool", "maxpool")),
    produces=LayerType.InputConvolutional,
    build=build_input_convolutional,
    first_only=True,
    description="first Conv2D > ReLU > MaxPool (same result as pooling first)",
))


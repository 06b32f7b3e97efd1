"""FullyConnected: [Flatten | Reshape] Dense [ReLU]."""
from akida_core import FullyConnected, LayerType

from ..integers import (activation_arguments, block_integers, dense_weights, fc_input_dims,
                        value_issues)
from .base import Pattern, maybe, one, register


def build_fully_connected(block, context):
    """Builds a FullyConnected: Dense rows permuted to Akida's column-major flatten order."""
    params = block_integers(block, context)
    issues = value_issues(block, params, context.target.limits(block.produces), context.target)
    neural = block.get("neural")
    layer = FullyConnected(units=int(neural.get("units")), name=neural.name,
                           weights_bits=int(params["weight_bits"]), **activation_arguments(params))
    weights = dense_weights(params["weights"], fc_input_dims(block))
    return layer, issues, ({"weights": weights}, params)


DENSE_RELU = register(Pattern(
    name="dense-relu",
    sequence=(maybe("flatten", "flatten", "reshape"), one("neural", "dense"), maybe("bn", "bn"),
              maybe("act", "relu")),
    produces=LayerType.FullyConnected,
    build=build_fully_connected,
    description="[Flatten|Reshape] Dense [ReLU]",
))

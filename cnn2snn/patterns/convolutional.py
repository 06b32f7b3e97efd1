"""Convolutional: Conv2D [MaxPool | GlobalAveragePooling] [ReLU]."""
from akida_core import Convolutional, LayerType

from ..integers import block_integers, conv_arguments, flip_kernel, value_issues
from .base import Pattern, maybe, one, register


def build_convolutional(block, context):
    """Builds a Convolutional: Keras kernel flipped on both spatial axes (Akida convolves)."""
    params = block_integers(block, context)
    issues = value_issues(block, params, context.target.limits(block.produces), context.target)
    layer = Convolutional(**conv_arguments(block, params))
    return layer, issues, ({"weights": flip_kernel(params["weights"])}, params)


CONV_POOL_RELU = register(Pattern(
    name="conv-pool-relu",
    sequence=(one("neural", "conv"), maybe("bn", "bn"), maybe("pool", "maxpool", "gap"),
              maybe("bn_after_pool", "bn"), maybe("act", "relu")),
    produces=LayerType.Convolutional,
    build=build_convolutional,
    description="Conv2D [MaxPool|GlobalAveragePooling] [ReLU]",
))

# Max pooling after a ReLU equals max pooling before it (monotone activation); GAP does not commute.
CONV_RELU_POOL = register(Pattern(
    name="conv-relu-pool",
    sequence=(one("neural", "conv"), maybe("bn", "bn"), one("act", "relu"),
              one("pool", "maxpool")),
    produces=LayerType.Convolutional,
    build=build_convolutional,
    description="Conv2D > ReLU > MaxPool (same result as pooling first)",
))

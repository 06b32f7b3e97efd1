"""SeparableConvolutional: SeparableConv2D [MaxPool | GlobalAveragePooling] [ReLU]."""
import numpy as np

from akida_core import LayerType, SeparableConvolutional

from ..integers import block_integers, conv_arguments, flip_kernel, value_issues
from .base import Pattern, maybe, one, register


def build_separable(block, context):
    """Builds a SeparableConvolutional: depthwise kernel flipped, pointwise (1x1) as is."""
    params = block_integers(block, context)
    issues = value_issues(block, params, context.target.limits(block.produces), context.target)
    layer = SeparableConvolutional(**conv_arguments(block, params))
    variables = {"weights": flip_kernel(params["weights"]),
                 "weights_pw": np.asarray(params["weights_pw"], np.int8)}
    return layer, issues, (variables, params)


SEPCONV_POOL_RELU = register(Pattern(
    name="sepconv-pool-relu",
    sequence=(one("neural", "sepconv"), maybe("bn", "bn"), maybe("pool", "maxpool", "gap"),
              maybe("bn_after_pool", "bn"), maybe("act", "relu")),
    produces=LayerType.SeparableConvolutional,
    build=build_separable,
    description="SeparableConv2D [MaxPool|GlobalAveragePooling] [ReLU]",
))

SEPCONV_RELU_POOL = register(Pattern(
    name="sepconv-relu-pool",
    sequence=(one("neural", "sepconv"), maybe("bn", "bn"), one("act", "relu"),
              one("pool", "maxpool")),
    produces=LayerType.SeparableConvolutional,
    build=build_separable,
    description="SeparableConv2D > ReLU > MaxPool (same result as pooling first)",
))

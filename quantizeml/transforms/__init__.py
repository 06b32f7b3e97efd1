"""The ordered float-model preparation PIPELINE (ModelSpec -> ModelSpec functions)."""
from __future__ import annotations

from ..errors import QuantizationError
from ..ir import ModelSpec
from .sanitize import (QuantizationWarning, check_block_order, check_layers, drop_dropout,
                       drop_final_activation, flatten_before_dense, fold_batchnorm, fold_rescaling,
                       fold_zero_padding,
                       move_batchnorm_before_pooling, split_fused_activations,
                       swap_activation_and_maxpool)

PIPELINE = [
    check_layers,                   # first: reports bad settings/weights of the original layers
    split_fused_activations,        # before anything looks for ReLU layers
    drop_dropout,                   # before BN folding and reordering, which look at neighbours
    drop_final_activation,          # after dropout removal so a final softmax is really last
    fold_rescaling,                 # the first layer must be seen without dropout before it
    move_batchnorm_before_pooling,  # so every BN sits right after its neural layer
    fold_batchnorm,                 # needs BN adjacent to the neural layer
    swap_activation_and_maxpool,    # after BN folding: BN must not sit between ReLU and pool
    fold_zero_padding,              # needs the final order (padding right before its conv)
    flatten_before_dense,           # needs the final layer order to infer shapes
    check_block_order,              # last: checks the chain that will be quantized
]


def sanitize(spec: ModelSpec) -> ModelSpec:
    """Run the PIPELINE; raise one QuantizationError listing every problem found.

    Raises:
        QuantizationError: with ``.issues`` naming every offending layer.
    """
    issues: list[str] = []
    for transform in PIPELINE:
        spec = transform(spec, issues)
    if issues:
        raise QuantizationError(list(dict.fromkeys(issues)))
    return spec


__all__ = ["PIPELINE", "sanitize", "QuantizationWarning"]

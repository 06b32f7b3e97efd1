"""Export contract for cnn2snn: the Akida 1.0 integers of each block of a quantized model.

Every array comes from the layers' own ``akida_parameters()``, i.e. from the very tensors their
``call`` computes with, so the export and the Keras outputs are identical by construction.
See docs/quantization.md, section "Export contract for cnn2snn".
"""
from __future__ import annotations

import keras
import numpy as np

from .errors import QuantizationError
from .layers import (Dequantizer, InputQuantizer, QuantizedFlatten, QuantizedGlobalAveragePooling2D,
                     QuantizedMaxPool2D, QuantizedReLU, QuantizedRescaling, QuantizedReshape)
from .layers.neural import NEURAL_LAYERS
from .quantizers import floor_act_step_np, is_act_step_on_grid

#: Layers that carry no Akida computation inside or between blocks.
PASS_THROUGH = (QuantizedFlatten, QuantizedReshape, QuantizedRescaling)


def block_parameters(neural, pool=None, activation=None, dequantizer=None) -> dict:
    """Return the Akida 1.0 parameters of one block ``neural [> pool] [> activation]``.

    Args:
        neural: a quantized neural layer (QuantizedConv2D, ...).
        pool: optional QuantizedMaxPool2D or QuantizedGlobalAveragePooling2D after it.
        activation: optional QuantizedReLU ending the block.
        dequantizer: the model's Dequantizer when the block has no activation (last block).

    Returns:
        dict, see docs/quantization.md: weights (int8, Keras layout), weights_pw (separable),
        weight_bits, input_bits, padding_value, is_input_layer, pool_* entries, activation (bool),
        act_bits, threshold (int32 per channel, includes H·W for global pooling), act_step
        (float32 per channel, multiples of 1/16).

    Raises:
        QuantizationError: a block without activation and without Dequantizer (no act_step), or
            a last block whose Dequantizer divisor (its act_step) is not a multiple of 1/16.
    """
    params = neural.akida_parameters()
    bias = params.pop("bias").astype(np.int64)
    pool_params = pool.akida_parameters() if pool is not None else {"pool_type": "none"}
    sum_size = pool_params.get("sum_size", 1)
    block = {"name": neural.name, **params,
             "pool_type": pool_params["pool_type"],
             "pool_size": pool_params.get("pool_size"),
             "pool_stride": pool_params.get("pool_stride"),
             "pool_padding": pool_params.get("padding"),
             "sum_size": sum_size}
    if activation is not None:
        act = activation.akida_parameters()
        threshold = act["threshold"].astype(np.int64) - sum_size * bias
        block.update(activation=True, act_bits=act["act_bits"], act_step=act["act_step"],
                     output_scale=act["output_scale"])
    elif dequantizer is not None:
        threshold = -sum_size * bias
        divisor = dequantizer.akida_parameters()["divisor"]
        if not is_act_step_on_grid(divisor):
            # Akida would compute with floor(divisor · 16) / 16: a silent difference in predict.
            off = np.flatnonzero(floor_act_step_np(divisor) != divisor.astype(np.float64))
            raise QuantizationError(
                f"Block '{neural.name}': the Dequantizer divisor is the Akida act_step of this "
                f"last layer but {off.size} of {divisor.size} values (channel {int(off[0])}: "
                f"{float(divisor[off[0]]):g}) are not positive multiples of 1/16; Akida would "
                "compute with floor(act_step · 16) / 16. Hint: quantize or calibrate the model "
                "again, or set the divisor to quantizeml.quantizers.round_act_step(divisor).")
        block.update(activation=False, act_bits=None, act_step=divisor)
    else:
        raise QuantizationError(
            f"Block starting at layer '{neural.name}' has neither a QuantizedReLU nor a final "
            "Dequantizer: Akida 1.0 needs an activation on every layer but the last.")
    if np.any(np.abs(threshold) > np.iinfo(np.int32).max):
        raise QuantizationError(f"Block '{neural.name}': threshold does not fit in int32.")
    block["threshold"] = threshold.astype(np.int32)
    return block


def _layer_sequence(model):
    if not isinstance(model, keras.Model):
        raise QuantizationError(f"export_blocks: expected a Keras model, got {type(model)}.")
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    for layer in layers:
        if len(layer._inbound_nodes) > 1:
            raise QuantizationError(f"Layer '{layer.name}' is used more than once.")
    return layers


def export_blocks(model) -> dict:
    """Split a quantized model into Akida 1.0 blocks and return their integers.

    Returns:
        ``{"input": InputQuantizer.akida_parameters(), "blocks": [block_parameters(...), ...],
        "output_divisor": Dequantizer divisor or None}``.

    Raises:
        QuantizationError: the model is not a chain InputQuantizer > blocks > Dequantizer.
    """
    layers = _layer_sequence(model)
    if not layers or not isinstance(layers[0], InputQuantizer):
        raise QuantizationError("export_blocks: the model must start with an InputQuantizer "
                                "(build it with quantizeml.models.quantize).")
    result = {"input": layers[0].akida_parameters(), "blocks": [], "output_divisor": None}
    dequantizer = layers[-1] if isinstance(layers[-1], Dequantizer) else None
    body = layers[1:-1] if dequantizer is not None else layers[1:]
    if dequantizer is not None:
        result["output_divisor"] = dequantizer.akida_parameters()["divisor"]
    index, problems = 0, []
    while index < len(body):
        layer = body[index]
        if isinstance(layer, PASS_THROUGH):
            index += 1
            continue
        if not isinstance(layer, NEURAL_LAYERS):
            problems.append(f"Layer '{layer.name}' ({type(layer).__name__}) does not follow a "
                            "neural layer; Akida 1.0 blocks are neural [> pool] [> ReLU].")
            index += 1
            continue
        pool = activation = None
        index += 1
        if index < len(body) and isinstance(body[index], (QuantizedMaxPool2D,
                                                          QuantizedGlobalAveragePooling2D)):
            pool, index = body[index], index + 1
        if index < len(body) and isinstance(body[index], QuantizedReLU):
            activation, index = body[index], index + 1
        last = index >= len(body)
        try:
            result["blocks"].append(block_parameters(
                layer, pool, activation, dequantizer if (activation is None and last) else None))
        except QuantizationError as err:
            problems.extend(err.issues)
    if problems:
        raise QuantizationError(problems)
    return result

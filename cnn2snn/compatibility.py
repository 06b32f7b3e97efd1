"""check_model_compatibility: every issue of a (float or quantized) Keras model, never raising."""
from __future__ import annotations

from akida_core import LayerType
from akida_core.hardware import AKD1000, get_target

from .checks import check_blocks
from .match import split_model

#: quantizeml's QuantizationParams().input_weight_bits (tests keep the two equal).
DEFAULT_INPUT_WEIGHT_BITS = 8


def _bit_options(weight_bits, activation_bits, input_weight_bits):
    def bits_of(block):
        bits = {}
        if block.produces == LayerType.InputConvolutional:
            # as QuantizationParams: the input convolution keeps 8-bit weights unless told
            w = input_weight_bits if input_weight_bits is not None else (
                None if weight_bits is None else DEFAULT_INPUT_WEIGHT_BITS)
        else:
            w = weight_bits
        if w is not None:
            bits["weights_bits"] = w
        if activation_bits is not None:
            bits["act_bits"] = activation_bits
        return bits
    return bits_of


def check_model_compatibility(model, target=AKD1000, *, weight_bits=None, activation_bits=None,
                              input_weight_bits=None) -> list:
    """Lists every reason a Keras model cannot run on `target` (structure, table limits, bits).

    Works on float models (everything decidable before quantization; bit widths are checked when
    given as arguments) and on quantized models (plus their bit widths and integer value ranges).

    Args:
        model: a Keras 3 model.
        target: a HardwareTarget or its name (default AKD1000).
        weight_bits: assumed weight bits of a float model (None: not checked).
        activation_bits: assumed activation bits of a float model (None: not checked).
        input_weight_bits: assumed weight bits of the input convolution (default: 8 when
            weight_bits is given, as in QuantizationParams).

    Returns:
        A list of `Issue`s, empty when the model is compatible.

    Example:
        >>> for issue in check_model_compatibility(model):
        ...     print(issue)
    """
    target = get_target(target)
    split = split_model(model)
    from . import quantized  # local: keeps float-only checks free of quantizeml import cost
    if quantized.is_quantized(model):
        issues = list(split.issues)
        issues += check_blocks(split, target, quantized.bits_of)
        if not issues:
            issues += quantized.value_issues(model, split, target)
        return order_issues(model, issues)
    bits_of = _bit_options(weight_bits, activation_bits, input_weight_bits)
    return order_issues(model, list(split.issues) + check_blocks(split, target, bits_of))


def order_issues(model, issues) -> list:
    """Sorts issues by the position of their layer in the model (model-level issues first)."""
    position = {layer.name: i for i, layer in enumerate(getattr(model, "layers", []))}
    return sorted(issues, key=lambda issue: position.get(issue.layer, -1))

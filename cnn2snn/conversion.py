"""convert(): a quantized Keras model to an akida_core Model, raising one error with every issue."""
from __future__ import annotations

import os

from akida_core import AkidaError
from akida_core.hardware import AKD1000, get_target

from . import quantized
from .checks import check_blocks
from .compatibility import order_issues
from .errors import ConversionError, Issue
from .match import split_model

QUANTIZE_CALL = ("quantizeml.models.quantize(model, qparams=QuantizationParams(weight_bits=4, "
                 "activation_bits=4), samples=x_calibration)")


def convert(model, file_path=None, input_scaling=None, target=AKD1000):
    """Converts a quantized Keras model into an akida_core Model with identical integer outputs.

    Every Keras layer becomes part of an Akida layer, is deliberately skipped (InputLayer,
    InputQuantizer, Dropout, a final Softmax/Activation, the final Dequantizer), or is an issue:
    a model is never converted in part.

    Args:
        model: a Keras model quantized with `quantizeml.models.quantize`.
        file_path: optional path; the model is saved there (".fbz" appended when no extension).
        input_scaling: legacy MetaTF argument; quantizeml models carry their input scaling in
            their InputQuantizer, so it must be None.
        target: the HardwareTarget (or its name); default AKD1000.

    Returns:
        The akida_core Model. Feed it `cnn2snn.akida_inputs(model, x)` (uint8).

    Raises:
        ConversionError: with `.issues` listing every problem (a float model gets one issue
            telling how to quantize it first).
    """
    target = get_target(target)
    if not quantized.is_quantized(model):
        name = getattr(model, "name", type(model).__name__)
        raise ConversionError([Issue("model", "not_quantized",
                                     f"Model '{name}' is not quantized: convert() needs a model "
                                     "quantized with quantizeml.", "float model",
                                     "quantized model", f"quantize it first: {QUANTIZE_CALL}; "
                                     "cnn2snn.check_model_compatibility(model) lists the "
                                     "problems of a float model.")], target.name)
    if input_scaling is not None:
        raise ConversionError([Issue("model", "input_scaling",
                                     f"input_scaling={input_scaling!r} only applies to legacy "
                                     "MetaTF models; quantizeml models fold their input Rescaling "
                                     "into the InputQuantizer and the first layer.", input_scaling,
                                     None, "call convert(model) without input_scaling.")],
                              target.name)
    split = split_model(model)
    issues = list(split.issues) + check_blocks(split, target, quantized.bits_of)
    if issues:
        raise ConversionError(order_issues(model, issues), target.name)
    built, issues = quantized.build_layers(model, split, target)
    if issues:
        raise ConversionError(order_issues(model, issues), target.name)
    try:
        akida_model = quantized.assemble(built)
    except AkidaError as err:  # a check is missing upstream: still one typed error, with cause
        raise ConversionError([Issue("model", "akida_core", f"akida_core refused the converted "
                                     f"model: {err}", type(err).__name__, None,
                                     "report this as a cnn2snn bug with the model.")],
                              target.name) from err
    if file_path is not None:
        path = os.fspath(file_path)
        if not os.path.splitext(path)[1]:
            path += ".fbz"
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        akida_model.save(path)
    return akida_model

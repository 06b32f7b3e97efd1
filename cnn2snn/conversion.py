"""convert(): a quantized Keras model to an akida_core Model, raising one error with every issue."""
from __future__ import annotations

import os
import warnings

from akida_core import AkidaError
from akida_core.hardware import AKD1000, get_target

from . import quantized
from .compatibility import mapping_issues, order_issues, quantized_issues
from .errors import CONVERT, HARDWARE, ConversionError, ConversionWarning, Issue, by_level
from .match import split_model
from .v2 import convert_v2, float_tail, float_tail_issue, is_akida2_model
from .versions import _ENV as VERSION_VARIABLE, refuse_akida1_under_v2

QUANTIZE_CALL = ("quantizeml.models.quantize(model, qparams=QuantizationParams(weight_bits=4, "
                 "activation_bits=4), samples=x_calibration)")


def convert(model, file_path=None, input_scaling=None, target=None, *,
            allow_input_narrowing=False):
    """Converts a quantized Keras model into an akida_core Model with identical integer outputs.

    Every Keras layer becomes part of an Akida layer, is deliberately skipped (InputLayer,
    InputQuantizer, Dropout, a final Softmax/Activation, the final Dequantizer), or is an issue:
    a model is never converted in part, except the float layers an Akida 2.0 ``quantize`` left
    after the Dequantizer (as MetaTF: they run outside Akida; one ConversionWarning names them). Convert-level issues (no Akida 1.0 model expresses them)
    raise; hardware-level issues (the model converts, but `map(device, hw_only=True)` would refuse
    it on `target`: the default mapping runs it as several sequences, part in software) give one
    ConversionWarning naming them.

    Args:
        model: a Keras model quantized with `quantizeml.models.quantize`.
        file_path: optional path; the model is saved there (".fbz" appended when no extension).
        input_scaling: legacy MetaTF argument; quantizeml models carry their input scaling in
            their InputQuantizer, so it must be None.
        target: the Akida 1.0 HardwareTarget (or its name); default AKD1000. The model's scheme
            decides the generation: models quantized with the Akida 2.0 scheme convert to an
            Akida 2.0 graph Model and take no Akida 1.0 target; models quantized with the Akida
            1.0 scheme convert for Akida 1.0, unless Akida 2.0 was selected explicitly
            (``set_akida_version(AkidaVersion.v2)``) and no Akida 1.0 target is given.
        allow_input_narrowing: accept re-quantizing the model's input data to fewer bits (e.g.
            8-bit data into a 4-bit InputData, which MetaTF refuses); the Akida model then takes
            `cnn2snn.akida_inputs(model, x)`, not the raw data (a ConversionWarning says so).

    Returns:
        The akida_core Model. Feed it `cnn2snn.akida_inputs(model, x)` (uint8).

    Raises:
        ConversionError: with `.issues` listing every convert-level problem (a float model gets
            one issue telling how to quantize it first; a model quantized for the other
            generation than the one explicitly selected gets one issue with the fix).

    Warns:
        ConversionWarning: once, naming every hardware-level issue; once when the input is
            narrowed on request; once naming the float layers after an Akida 2.0 Dequantizer.
    """
    if is_akida2_model(model):
        akida_model = _convert_akida2(model, target)
        _save(akida_model, file_path)
        return akida_model
    if target is None and quantized.is_quantized(model):
        refuse_akida1_under_v2(model)
    target = get_target(AKD1000 if target is None else target)
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
    issues = quantized_issues(model, split, target, allow_input_narrowing)
    if by_level(issues, CONVERT):
        raise ConversionError(order_issues(model, by_level(issues, CONVERT)), target.name)
    built, build_issues = quantized.build_layers(model, split, target)
    issues += build_issues
    if by_level(issues, CONVERT):
        raise ConversionError(order_issues(model, by_level(issues, CONVERT)), target.name)
    try:
        akida_model = quantized.assemble(built)
    except AkidaError as err:  # a check is missing upstream: still one typed error, with cause
        raise ConversionError([Issue("model", "akida_core", f"akida_core refused the converted "
                                     f"model: {err}", type(err).__name__, None,
                                     "report this as a cnn2snn bug with the model.")],
                              target.name) from err
    issues += mapping_issues(akida_model, split, target, issues)
    _warn(model, target, order_issues(model, by_level(issues, HARDWARE)),
          allow_input_narrowing and quantized.input_narrowing(model, split, target))
    _save(akida_model, file_path)
    return akida_model


def _save(akida_model, file_path):
    if file_path is not None:
        path = os.fspath(file_path)
        if not os.path.splitext(path)[1]:
            path += ".fbz"
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        akida_model.save(path)


def _convert_akida2(model, target):
    """An Akida 2.0 quantized model: refused under an explicit Akida 1.0 selection or target."""
    name = getattr(model, "name", "model")
    if os.environ.get(VERSION_VARIABLE) == "v1" or target is not None:
        found = target if target is not None else "set_akida_version(AkidaVersion.v1)"
        raise ConversionError([Issue("model", "generation", f"Model '{name}' is quantized with "
                                     "the Akida 2.0 scheme but Akida 1.0 is targeted.",
                                     str(getattr(found, "name", found)), "Akida 2.0",
                                     "quantize under set_akida_version(AkidaVersion.v1) with "
                                     "4-bit settings for AKD1000, or convert without an Akida "
                                     "1.0 target.")], "Akida 1.0")
    akida_model = convert_v2(model)
    left_out = float_tail_issue(model)
    if left_out is not None:
        warnings.warn(f"Model '{name}' converted without its float layers: {left_out}",
                      ConversionWarning, stacklevel=4)
    elif float_tail(model):  # a final softmax only: a short note, as MetaTF warns
        warnings.warn(f"Model '{name}': the final softmax "
                      f"('{float_tail(model)[0].name}') is not converted; the Akida model "
                      "outputs the dequantized scores (same argmax). Apply a softmax on the "
                      "host for probabilities.", ConversionWarning, stacklevel=4)
    return akida_model


def _warn(model, target, hardware, narrowed):
    """One ConversionWarning for the hardware-level issues, one for a narrowed input."""
    name = getattr(model, "name", "model")
    if hardware:
        lines = "\n".join(f"  - {issue}" for issue in hardware)
        warnings.warn(f"Model '{name}' converted, but {len(hardware)} hardware-level "
                      f"issue{'s' if len(hardware) != 1 else ''}: map(device, hw_only=True) "
                      f"refuses it on {target.name}; map(device) runs it as several sequences, "
                      f"part in software.\n{lines}", ConversionWarning, stacklevel=3)
    if narrowed:
        warnings.warn(f"Model '{name}' converted with allow_input_narrowing=True: "
                      f"{narrowed[0].message} So {quantized.FEED_HINT}.", ConversionWarning,
                      stacklevel=3)

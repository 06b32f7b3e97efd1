"""The quantized-model side of checking and conversion: bits, integer values and Akida layers."""
from __future__ import annotations

import numpy as np

from akida_core import LayerType, Model

from .errors import Issue
from .integers import BuildContext, set_neurons


def is_quantized(model) -> bool:
    """Whether a Keras model holds quantizeml layers (InputQuantizer or quantized neural layers)."""
    from quantizeml.layers import NEURAL_LAYERS, InputQuantizer
    return any(isinstance(layer, NEURAL_LAYERS + (InputQuantizer,))
               for layer in getattr(model, "layers", []))


def bits_of(block) -> dict:
    """Bit widths of a block of a quantized model, read from its quantized layers."""
    neural = block.get("neural")
    if neural is None:
        return {}
    bits = {}
    if hasattr(neural.layer, "weight_bits"):
        bits["weights_bits"] = int(neural.layer.weight_bits)
    act = block.get("act")
    if act is not None and hasattr(act.layer, "activation_bits"):
        bits["act_bits"] = int(act.layer.activation_bits)
    return bits


def _layer_issues(model, split, target):
    """Issues of quantized-model structure: float layers left among quantized ones, missing I/O."""
    from quantizeml.layers import (NEURAL_LAYERS, Dequantizer, InputQuantizer,
                                   QuantizedGlobalAveragePooling2D, QuantizedMaxPool2D,
                                   QuantizedReLU)
    issues = []
    expected = {"neural": NEURAL_LAYERS, "pool": (QuantizedMaxPool2D,
                                                  QuantizedGlobalAveragePooling2D),
                "act": (QuantizedReLU,)}
    for block in split.blocks:
        for role, classes in expected.items():
            info = block.get(role)
            if info is not None and not isinstance(info.layer, classes):
                issues.append(Issue(info.name, "float_layer",
                                    f"Layer {info.label} is a float layer inside a quantized "
                                    "model; every layer of a block must be quantized.",
                                    info.class_name, [c.__name__ for c in classes],
                                    "quantize the float model as a whole with "
                                    "quantizeml.models.quantize(model, ...)."))
    layers = [la for la in model.layers if type(la).__name__ != "InputLayer"]
    if not layers or not isinstance(layers[0], InputQuantizer):
        issues.append(Issue("model", "input_quantizer", f"Model '{model.name}' does not start "
                            "with an InputQuantizer, so its integer input is undefined.",
                            type(layers[0]).__name__ if layers else None, "InputQuantizer",
                            "quantize the float model with quantizeml.models.quantize."))
    first = split.blocks[0] if split.blocks else None
    if first is not None and first.produces == LayerType.InputData and layers \
            and isinstance(layers[0], InputQuantizer):
        allowed = target.limits(LayerType.InputData).input_bits
        if layers[0].bits not in allowed:
            issues.append(Issue(layers[0].name, "input_bits", f"Layer '{layers[0].name}' "
                                f"(InputData): input_bits={layers[0].bits} is not supported on "
                                f"{target.name} when the first layer is not an input "
                                f"convolution; supported: {', '.join(map(str, allowed))}.",
                                layers[0].bits, list(allowed), "quantize with "
                                "QuantizationParams(output_bits=4) (or start the model with a "
                                "Conv2D on a 1- or 3-channel uint8 input)."))
    last = [b for b in split.blocks if b.produces != LayerType.InputData]
    if last and last[-1].get("act") is None and not (layers and isinstance(layers[-1],
                                                                            Dequantizer)):
        issues.append(Issue(last[-1].name, "dequantizer", f"Layer '{last[-1].name}' ends the "
                            "model without activation but the model has no final Dequantizer "
                            "(its act_step is undefined).", "no Dequantizer", "Dequantizer",
                            "quantize the float model with quantizeml.models.quantize."))
    return issues


#: What `convert(..., allow_input_narrowing=True)` says (a ConversionWarning) and the issue's hint.
FEED_HINT = "feed the Akida model cnn2snn.akida_inputs(model, x), not the raw data"


def input_narrowing(model, split, target) -> list:
    """The issue of an InputData model whose InputQuantizer re-quantizes the user's data to fewer
    than 8 bits (e.g. 8-bit images with 4 channels, a flat 8-bit MLP input into 4-bit InputData).

    An InputQuantizer that is the identity (scale 1, zero point 0: the data already are the
    `bits`-bit integers) narrows nothing; an 8-bit one feeds an InputConvolutional unchanged.

    Returns:
        [] or one CONVERT-level Issue (MetaTF refuses these models).
    """
    first = split.blocks[0] if split.blocks else None
    quantizer = input_quantizer(model)
    if first is None or first.produces != LayerType.InputData or quantizer is None:
        return []
    q = quantizer.quantizer
    if q.bits >= 8 or (float(q.scale) == 1.0 and int(q.zero_point) == 0):
        return []
    levels = 2 ** q.bits - 1
    low, high = -q.zero_point * q.scale, (levels - q.zero_point) * q.scale
    big = max(target.limits(LayerType.InputData).input_bits)
    return [Issue(quantizer.name, "input_narrowing",
                  f"Layer '{quantizer.name}' (InputData): the model input (values {low:g} to "
                  f"{high:g}) would be re-quantized to {q.bits}-bit integers (scale {q.scale:g}): "
                  f"the Akida model would not take the data the Keras model takes (predict on "
                  f"the raw data fails with InputDataError). On {target.name} only an "
                  f"InputConvolutional takes 8-bit data; InputData takes at most {big} bits.",
                  f"{q.bits}-bit input for values {low:g} to {high:g}",
                  f"the data as given (scale 1, zero point 0), or 8-bit data into a Conv2D on a "
                  "1- or 3-channel input",
                  "start the model with a Conv2D on a 1- or 3-channel uint8 input (it becomes "
                  f"an InputConvolutional), or feed integer data in 0..{levels} and quantize "
                  "again; to accept the narrower input, convert with allow_input_narrowing=True "
                  f"(CLI: --allow-input-narrowing) and {FEED_HINT}.")]


def _context(model, split, target, is_last):
    from quantizeml.layers import Dequantizer, InputQuantizer
    layers = model.layers
    dequantizer = next((la for la in layers if isinstance(la, Dequantizer)), None)
    quantizer = next((la for la in layers if isinstance(la, InputQuantizer)), None)
    return BuildContext(target=target, is_last=is_last, dequantizer=dequantizer,
                        input_bits=quantizer.bits if quantizer is not None else 8,
                        input_shape=split.input_shape)


def build_layers(model, split, target):
    """Runs every block's build; returns ([(layer, variables, params)], issues)."""
    issues = _layer_issues(model, split, target)
    if issues:
        return [], issues
    from quantizeml.errors import QuantizeMLError

    from akida_core import AkidaError
    built, count = [], len(split.blocks)
    for i, block in enumerate(split.blocks):
        context = _context(model, split, target, i == count - 1)
        try:
            layer, block_issues, extra = block.pattern.build(block, context)
        except (QuantizeMLError, AkidaError) as err:
            # Values the export or the Akida layer refuse: report them like any other issue.
            issues.append(Issue(block.name, "build", f"Layer '{block.name}' "
                                f"({block.produces.name}) cannot be built: {err}",
                                type(err).__name__, None, "fix the value named above in the "
                                "quantized model (or quantize it again)."))
            continue
        issues += block_issues
        built.append((layer, extra))
    return built, issues


def value_issues(model, split, target) -> list:
    """Issues of the integer values of every block (register ranges), without building a model."""
    return build_layers(model, split, target)[1]


def assemble(built) -> Model:
    """Adds the built layers to a new akida_core Model and assigns their variables.

    Raises:
        akida_core.AkidaError: if akida_core refuses a layer or a variable (a cnn2snn bug: the
            checks run before should have reported it).
    """
    akida_model = Model()
    for layer, extra in built:
        akida_model.add(layer)
        if extra is None:
            continue
        variables, params = extra
        for name, value in variables.items():
            layer.variables[name] = value
        set_neurons(layer, params)
    return akida_model


def input_quantizer(model):
    """Returns the model's InputQuantizer, or None."""
    from quantizeml.layers import InputQuantizer
    return next((la for la in model.layers if isinstance(la, InputQuantizer)), None)


def akida_inputs(model, x) -> np.ndarray:
    """The uint8 integers the converted Akida model takes for float-model inputs `x`.

    Args:
        model: the quantized Keras model.
        x: a batch of inputs in the float model's domain, (n, h, w, c) or (n, features).

    Returns:
        uint8 array of shape (n, h, w, c); a flat (n, features) batch comes out as
        (n, 1, 1, features), the shape Akida's InputData takes.
    """
    quantizer = input_quantizer(model)
    integers = quantizer.numpy(x) if quantizer is not None else np.asarray(x, np.uint8)
    if integers.ndim == 2:
        integers = integers.reshape(integers.shape[0], 1, 1, integers.shape[1])
    return integers

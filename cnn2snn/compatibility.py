"""check_model_compatibility: every issue of a (float or quantized) Keras model, never raising."""
from __future__ import annotations

from akida_core import LayerType
from akida_core.hardware import AKD1000, get_target

from .checks import check_blocks
from .errors import ConversionError, CONVERT, HARDWARE, Issue, by_level
from .match import split_model
from .v2.check import akida2_device, akida2_quantized_issues

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


def check_model_compatibility(model, target=None, *, device=None, input_dtype="uint8",
                              weight_bits=None, activation_bits=None, input_weight_bits=None,
                              allow_input_narrowing=False) -> list:
    """Lists every reason a Keras model cannot convert, or cannot map in hardware, on a target.

    Never raises on a bad model: every problem is an `Issue` in the returned list (only bad
    arguments raise). Each Issue has a `level`: "convert" (`convert` refuses the model) or
    "hardware" (it converts; `map(device, hw_only=True)` refuses it, and `map(device)` runs it as
    several sequences, part in software).

    The generation checked: an Akida 1.0 `target`/`device` (AKD1000, ...) gives the Akida 1.0
    checks; an Akida 2.0 device (a Device or a name such as "SixNodesIPv2") the Akida 2.0 ones;
    with neither, the selected Akida version (`get_akida_version()`, default Akida 2.0 as in
    MetaTF). A model quantized for one generation is checked for that generation.

    - Akida 1.0, float model: everything decidable before quantization (bit widths are checked
      when given as arguments); quantized model: plus its bit widths, integer register ranges,
      act_step grid and the mapping of the converted model on the target (default AKD1000).
    - Akida 2.0, float model: as MetaTF, quantized with `QuantizationParams(input_dtype=...)` on a
      few random samples (quietly), converted, and mapped with `hw_only=True` when a device is
      given; quantized model: converted, then mapped on the device if any. Float layers after
      the Dequantizer (quantization stopped before them, as in MetaTF) are one hardware-level
      issue: the model converts, and they run outside Akida.

    Args:
        model: a Keras 3 model.
        target: a HardwareTarget, an akida_core Device (``AKD1000()``, ``SixNodesIPv2()``) or a
            device name (None: the selected version).
        device: MetaTF's name for `target` (give one of the two).
        input_dtype: Akida 2.0 float models: the integer dtype of the model input.
        weight_bits: assumed weight bits of a float model (None: Akida 1.0 does not check them;
            Akida 2.0 quantizes with MetaTF's default).
        activation_bits: assumed activation bits of a float model (as `weight_bits`).
        input_weight_bits: assumed weight bits of the input convolution (default: 8 when
            weight_bits is given, as in QuantizationParams).
        allow_input_narrowing: accept a model whose input data would be re-quantized to fewer
            bits (8-bit data into a 4-bit InputData), as `convert(..., allow_input_narrowing=True)`.

    Returns:
        A list of `Issue`s in model order, empty when the model converts and maps in hardware.

    Example:
        >>> for issue in check_model_compatibility(model, device="AKD1000"):
        ...     print(issue.level, issue)

    Raises:
        ValueError: both `target` and `device` given, an unknown target, an Akida 2.0 device as
            target of an Akida 1.0-quantized model, a bad `input_dtype`/bit width, or a
            CNN2SNN_TARGET_AKIDA_VERSION other than v1/v2.
    """
    from .v2 import is_akida2_model
    from .versions import AkidaVersion
    if target is not None and device is not None:
        raise ValueError(f"check_model_compatibility: target={target!r} and device={device!r} "
                         "name the same thing; give only one of them.")
    target = device if target is None else target
    akida2 = akida2_device(target)
    if is_akida2_model(model):  # quantized for Akida 2.0: its convert issues, then the device's
        return akida2_quantized_issues(model, akida2)
    from . import quantized  # local: keeps float-only checks free of quantizeml import cost
    is_quantized = quantized.is_quantized(model)
    if akida2 is not None and is_quantized:
        raise ValueError(
            f"Target {akida2.name} is an Akida 2.0 device; this model is quantized for Akida 1.0 "
            "(checked against Akida 1.0 targets such as AKD1000). Hint: quantize the float model "
            "with quantizeml.models.quantize(model, qparams=QuantizationParams()) and check the "
            "quantized model, or check this one with target='AKD1000'.")
    if is_quantized and target is None:  # as convert: refused under an explicit Akida 2.0 selection
        from .versions import refuse_akida1_under_v2
        try:
            refuse_akida1_under_v2(model)
        except ConversionError as err:
            return list(err.issues)
    if checked_generation(model, target) is AkidaVersion.v2:
        from .v2.check import akida2_float_issues
        bits = {name: value for name, value in (("weight_bits", weight_bits),
                                                ("activation_bits", activation_bits),
                                                ("input_weight_bits", input_weight_bits))
                if value is not None}
        return order_issues(model, akida2_float_issues(model, input_dtype, akida2, bits))
    target = get_target(AKD1000 if target is None else getattr(target, "table", target))
    return _akida1_issues(model, target, is_quantized, (weight_bits, activation_bits,
                                                         input_weight_bits), allow_input_narrowing)


def _akida1_issues(model, target, is_quantized, bits, allow_input_narrowing) -> list:
    """The Akida 1.0 checks of `check_model_compatibility` on `target` (a HardwareTarget)."""
    from . import quantized
    split = split_model(model)
    if is_quantized:
        issues = quantized_issues(model, split, target, allow_input_narrowing)
        if not by_level(issues, CONVERT):
            built, build_issues = quantized.build_layers(model, split, target)
            issues += build_issues
            if not by_level(build_issues, CONVERT):
                issues += mapping_issues(quantized.assemble(built), split, target, issues)
        return order_issues(model, issues)
    issues = list(split.issues) + check_blocks(split, target, _bit_options(*bits))
    if not allow_input_narrowing:
        issues += _float_input_narrowing(model, split, target)
    return order_issues(model, issues)


def checked_generation(model, target=None):
    """The AkidaVersion `check_model_compatibility(model, target)` checks: the model's own scheme
    for a quantized model, else the generation of `target`, else `get_akida_version()`.

    Raises:
        ValueError: CNN2SNN_TARGET_AKIDA_VERSION holds another value than v1 or v2.
    """
    from . import quantized
    from .v2 import is_akida2_model
    from .versions import AkidaVersion, get_akida_version
    if is_akida2_model(model):
        return AkidaVersion.v2
    if quantized.is_quantized(model):
        return AkidaVersion.v1
    if target is None:
        return get_akida_version()
    return AkidaVersion.v1 if akida2_device(target) is None else AkidaVersion.v2


def quantized_issues(model, split, target, allow_input_narrowing) -> list:
    """Structure, table and input issues of a quantized model (before building its layers)."""
    from . import quantized
    issues = list(split.issues) + check_blocks(split, target, quantized.bits_of)
    if not allow_input_narrowing:
        issues += quantized.input_narrowing(model, split, target)
    return issues


def _float_input_narrowing(model, split, target) -> list:
    """A float model that takes 8-bit data (uint8 input or a leading Rescaling(1/255)) but starts
    with InputData would have its input narrowed by quantize (the quantized model says exactly)."""
    first = split.blocks[0] if split.blocks else None
    if first is None or first.produces != LayerType.InputData:
        return []
    inputs = getattr(model, "inputs", None) or [None]
    dtype = str(getattr(inputs[0], "dtype", ""))
    scale = split.rescaling.get("scale") if split.rescaling is not None else None
    eight_bit = dtype in ("uint8", "int8") or (
        isinstance(scale, (int, float)) and 0 < scale <= 1 / 127.5)
    if not eight_bit:
        return []
    big = max(target.limits(LayerType.InputData).input_bits)
    why = "an 8-bit integer input" if "int8" in dtype else "a Rescaling of about 1/255"
    return [Issue("model", "input_narrowing",
                  f"Model '{model.name}' takes 8-bit data ({why}) "
                  f"but does not start with a Conv2D on a 1- or 3-channel input: on "
                  f"{target.name} its first layer would be an InputData of at most {big} bits, "
                  "so quantize would narrow the input and the Akida model would not take the "
                  "data the Keras model takes.", "8-bit data into InputData",
                  f"at most {big}-bit data, or a Conv2D on a 1- or 3-channel input",
                  "start the model with a Conv2D on a 1- or 3-channel input (an "
                  "InputConvolutional takes uint8 data), or feed <= 4-bit data; to accept a "
                  "narrower input, pass allow_input_narrowing=True (CLI: "
                  "--allow-input-narrowing) and feed cnn2snn.akida_inputs(model, x).")]


def _device_of(target):
    """The virtual akida_core Device whose constraints table is `target` (None if none)."""
    import akida_core
    for make in (akida_core.AKD1000, akida_core.AKD1500, akida_core.TwoNodesIPv1):
        device = make()
        if device.table is target:
            return device
    return None


def mapping_issues(akida_model, split, target, known) -> list:
    """HARDWARE issues from mapping the converted model when the table checks (`known`) found
    none: rules of the device as a whole (NP memory and count) that no single layer shows.

    The table checks word each rule for the Keras layers; this pass maps the converted model
    (`map(device)`: one hardware sequence is what `hw_only=True` needs), so the checker never
    says "maps in hardware" when mapping would refuse. With table issues the verdict is already
    "hardware", and mapping's reasons would mostly repeat them.
    """
    device = _device_of(target)
    if device is None or not akida_model.layers or by_level(known, HARDWARE):
        return []
    from akida_core.mapping import mapping_reasons
    reasons = mapping_reasons(akida_model, device)
    blocks = {block.name: block for block in split.blocks}
    issues = []
    for name, reason in reasons.items():
        block = blocks.get(name)
        kind = block.produces.name if block is not None else "layer"
        issues.append(Issue(name, "mapping", f"Layer '{name}' ({kind}) cannot be mapped in "
                            f"hardware on {target.name} with the layers around it: {reason} "
                            "(it converts; the default mapping runs the model as several "
                            "sequences).", "several sequences", "one hardware sequence",
                            "map with hw_only=False, or change this layer as the reason says.",
                            HARDWARE))
    return issues


def order_issues(model, issues) -> list:
    """Sorts issues by the position of their layer in the model (model-level issues first)."""
    position = {layer.name: i for i, layer in enumerate(getattr(model, "layers", []))}
    return sorted(issues, key=lambda issue: position.get(issue.layer, -1))

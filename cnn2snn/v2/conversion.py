"""convert() for Akida 2.0: a quantizeml.v2 Keras model -> an akida_core Akida 2.0 graph Model.

Every block is matched by one registered "v2" pattern (longest first) and built by it; problems
are collected as Issues and raised together. The integers are transferred, never recomputed, so
the Akida model's integer outputs equal the quantized Keras model's.
"""
from __future__ import annotations

import dataclasses

from akida_core import AkidaError, InputData, Model

from ..errors import CONVERT, HARDWARE, ConversionError, Issue
from ..patterns import registered_patterns
from ..patterns.akida2.neural import BlockIssue
from .blocks import float_tail, is_final_softmax, split_blocks

TARGET_NAME = "Akida 2.0"


@dataclasses.dataclass(frozen=True)
class _Kind:
    kind: str


def match_block(block, first: bool):
    """The longest v2 pattern consuming exactly the block's layers, or None; the first block of
    an input convolution (uint8 images or uint8 InputQuantizer codes) takes the first-layer
    patterns only."""
    best = None
    infos = [_Kind(k) for k in block.kinds]
    input_conv = bool(getattr(block.layers[0], "input_conv", False))
    for pattern in registered_patterns("v2"):
        if pattern.first_only and not first or (pattern.produces.name == "InputConv2D") != \
                input_conv:
            continue
        roles = pattern.match(infos, 0)
        if roles and len(roles) == len(infos) and (best is None or len(pattern.sequence) >
                                                   len(best.sequence)):
            best = pattern
    return best


def _reshape_issue(block) -> Issue:
    """A Reshape Akida 2.0 cannot run: it changes the (H, W, C) tensor and no Dense flattens it."""
    reshape = block.role("reshape")
    before, after = tuple(reshape.input.shape[1:]), tuple(reshape.output.shape[1:])
    source = reshape._inbound_nodes[0].input_tensors[0]._keras_history.operation
    reads_input = type(source).__name__ in ("InputLayer", "InputQuantizer")
    hint = (f"give the model the input shape {after} and reshape the data on the host."
            if reads_input else "use Flatten > Dense, a GlobalAveragePooling2D, or keep the "
            "channels last and change only size-1 axes.")
    return Issue(block.chain, "reshape", f"Layer '{reshape.name}' (Reshape): {before} -> {after} "
                 "changes the (height, width, channels) tensor Akida 2.0 layers exchange, and "
                 "Akida 2.0 has no reshape layer (the next layer would read the "
                 f"{before} tensor). Allowed: a Reshape that only adds or removes size-1 axes "
                 "with the channels last (e.g. (C,) <-> (1, 1, C); dropped at conversion), or "
                 "one read by a Dense [through a Flatten] with a flat result ((N,) or (1, 1, N);"
                 " part of the Dense1D, which flattens row-major).", f"{before} -> {after}",
                 ["(C,) <-> (1, 1, C)", "[Reshape] [Flatten] Dense"], hint)


def _no_pattern(block) -> Issue:
    kinds = " > ".join(block.kinds)
    if block.kinds[0] == "reshape":
        return _reshape_issue(block)
    if block.kinds == ("flatten",):
        flatten = block.layers[0]
        shape = tuple(flatten.input.shape[1:])
        return Issue(block.chain, "flatten", f"Layer '{flatten.name}' (Flatten) of the {shape} "
                     "tensor is read by no Dense: Akida 2.0 has no flatten layer (a Dense1D "
                     "flattens its input itself).", "Flatten without Dense", "Flatten > Dense",
                     "drop the Flatten and flatten the Akida outputs on the host, or read it "
                     "with a Dense.")
    if "dense" in block.kinds and "lut" in block.kinds:
        lut = block.role("lut")
        return Issue(block.chain, "dense_lut", f"No Akida 2.0 pattern matches block "
                     f"{block.chain} ({kinds}): Dense1D takes no LUT activation ('{lut.name}'; "
                     "MetaTF refuses it too: 'Invalid block found').", kinds,
                     "[Flatten] Dense [ReLU]", "apply the activation after a convolution (a "
                     "1×1 Conv2D on a (1, 1, C) tensor), or use a ReLU after the Dense.")
    candidates = "; ".join(f"{p.name} ({p})" for p in registered_patterns("v2")
                           if p.uses(block.kinds[0]))
    return Issue(block.chain, "no_pattern", f"No Akida 2.0 pattern matches block {block.chain} "
                 f"({kinds}). Patterns using {block.kinds[0]}: {candidates or 'none'}.", kinds,
                 [str(p) for p in registered_patterns("v2")],
                 "end the block with an activation or a quantized output, or check the order "
                 "(MaxPool2D before ReLU; GAP only after a convolution).")


def input_bits(block) -> int:
    """Bits of the signed integer model inputs the block reads directly (0: none; an
    Akida 2.0 InputData of that many bits feeds it)."""
    return int(getattr(block.layers[0], "input_bits", 0) or 0)


def _output_format(block):
    """(bits, signed) of a block's output; a Concatenate passes its first input's on."""
    if block.kinds == ("concatenate",) and block.inbounds:
        return _output_format(block.inbounds[0])
    return block.last.output_bits, bool(block.last.output_signed)


def plan(model):
    """Blocks with their patterns, and the issues of the structure."""
    blocks, unknown = split_blocks(model)
    issues = [Issue(layer.name, "unsupported_layer", f"Layer '{layer.name}' "
                    f"({type(layer).__name__}) is not an Akida 2.0 quantized layer.",
                    type(layer).__name__, "quantizeml.v2 layers",
                    "quantize the float model with quantizeml.models.quantize(model, "
                    "qparams=QuantizationParams()).") for layer in unknown]
    for index, block in enumerate(blocks):
        # the first layer, or an InputConv2D reading the uint8 codes of a leading Quantizer
        first = index == 0 or index == 1 and blocks[0].kinds == ("input_quantizer",)
        block.pattern = match_block(block, first)
        if block.pattern is None:
            issues.append(_no_pattern(block))
    for block in blocks:
        if block.inbounds or block.kinds[0] == "input_quantizer" or \
                input_bits(block) or getattr(block.layers[0], "input_conv", False):
            continue
        shape = tuple(model.inputs[0].shape[1:])
        issues.append(Issue(block.chain, "input", f"Layer '{block.layers[0].name}' reads the "
                            f"model's unsigned integer inputs {shape}: only signed inputs are "
                            "supported on Akida 2.0 (an InputData), except by an input "
                            "Conv2D on uint8 images of 1 or 3 channels (an InputConv2D).",
                            f"unsigned input, {shape[-1]} channels, {block.kinds[0]}",
                            ["int8 / int16 input", "uint8 into a Conv2D on 1 or 3 channels"],
                            "quantize with float calibration samples (a signed 8-bit "
                            "InputQuantizer is inserted), with input_dtype='int8' for signed "
                            "data, or start with a Conv2D on 1 or 3 channels."))
    for block in blocks:
        wide = [src.last for src in block.inbounds
                if (getattr(src.last, "output_bits", None) or 0) > 8]
        if wide and block.kinds != ("dequantizer",):
            issues.append(Issue(block.chain, "input_bits", f"Block {block.chain}: its inputs "
                                f"{[layer.name for layer in wide]} have "
                                f"{[layer.output_bits for layer in wide]}-bit outputs; Akida 2.0 "
                                "layers take inputs of at most 8 bits.",
                                [layer.output_bits for layer in wide], "<= 8",
                                "use activation_bits and output_bits of at most 8."))
        if block.kinds == ("concatenate",):
            ends = [(src.last.name, *_output_format(src)) for src in block.inbounds]
            if len({(bits, signed) for _, bits, signed in ends}) > 1:
                issues.append(Issue(block.chain, "concatenate_bits", "Concatenate "
                                    f"'{block.name}': its inputs must have the same output bits "
                                    f"and signedness on Akida 2.0; found {ends}.",
                                    [bits for _, bits, _ in ends], "equal bits",
                                    "end both branches alike (both with a ReLU, or "
                                    "activation_bits == output_bits)."))
    if len(model.outputs) != 1:
        issues.append(Issue("model", "outputs", "Model must have only one output layer.",
                            len(model.outputs), 1, "keep one output."))
    return blocks, issues


def convert_v2(model):
    """Convert a quantizeml.v2 model; returns the akida_core Model.

    Raises:
        ConversionError: every convert-level issue at once.
    """
    blocks, issues = plan(model)
    if issues:
        raise ConversionError(issues, TARGET_NAME)
    context = {"input_shape": tuple(model.inputs[0].shape[1:])}
    bits = max((input_bits(block) for block in blocks), default=0)
    shape = context["input_shape"]  # a flat (features,) input is (1, 1, features) on Akida
    built = [(None, InputData((1, 1) * (len(shape) == 1) + shape, input_bits=bits,
                              name="input"), {})] if bits else []
    for block in blocks:
        try:
            layer, variables = block.pattern.build(block, context)
        except BlockIssue as err:
            rule, message, found, allowed, hint = err.args
            issues.append(Issue(block.chain, rule, message, found, allowed, hint, CONVERT))
            continue
        except AkidaError as err:
            issues.append(Issue(block.chain, "akida_layer", f"Block {block.chain} "
                                f"({block.pattern.name}): {err}", None, None,
                                "change the layer's settings to what the message allows."))
            continue
        built.append((block, layer, variables))
    if issues:
        raise ConversionError(issues, TARGET_NAME)
    return _assemble(built)


def _assemble(built):
    akida_model, made = Model(), {}
    input_data = built[0][1] if built and built[0][0] is None else None
    try:
        for block, layer, variables in built:
            if block is None:  # the InputData of signed integer inputs
                akida_model.add(layer)
                continue
            inbounds = [made[id(src)] for src in block.inbounds] or (
                [input_data] if input_data is not None else None)
            akida_model.add(layer, inbounds)
            for name, value in variables.items():
                layer.set_variable(name, value)
            made[id(block)] = layer
    except (AkidaError, KeyError) as err:
        raise ConversionError([Issue(block.chain, "akida_core", f"akida_core refused block "
                                     f"{block.chain}: {err}", type(err).__name__, None,
                                     "report this as a cnn2snn bug with the model.")],
                              TARGET_NAME) from err
    return akida_model


def float_tail_issue(model):
    """A hardware-level Issue naming the float layers after the Dequantizer (None without any, or
    when they are only a final softmax, which every classifier has and convert leaves out): the
    model converts, and those layers run in float outside Akida, as in MetaTF."""
    tail = float_tail(model)
    if not tail or is_final_softmax(tail):
        return None
    names = [layer.name for layer in tail]
    return Issue(", ".join(names), "float_tail", f"Layers {', '.join(repr(n) for n in names)} "
                 "follow the Dequantizer (quantization stopped before them): they are not "
                 "converted and run in float outside Akida, on the Akida model's outputs.",
                 [type(layer).__name__ for layer in tail], "quantized layers only",
                 "replace them with layers the Akida 2.0 scheme quantizes (the QuantizationWarning"
                 " of quantize() names the first one and why), or apply them on the host.",
                 HARDWARE)

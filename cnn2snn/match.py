"""Splitting a Keras model into blocks, each matched by one registered pattern.

Matching is deterministic: at each position, every applicable pattern is tried and the longest
match wins (ties: registration order). A layer no pattern can start is reported with the patterns
that use its kind and a hint derived from its neighbours (the "near miss").
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from akida_core import LayerType
from akida_core.kernels import same_padding

from .errors import Issue

from .keras_model import KIND_NAMES, NEURAL_KINDS, ConfigChain, LayerInfo, read_chain
from .patterns import registered_patterns

# Layers that produce no Akida layer wherever they are (identity at inference).
_ALWAYS_SKIPPED = {"dropout": "Dropout is the identity at inference",
                   "identity": "a linear activation is the identity"}
# Layers skipped only at the very end of the model (the host applies them to the outputs).
_TAIL_SKIPPED = {"softmax": "final Softmax is monotone: apply it on the host to predict()",
                 "activation": "final activation: apply it on the host to predict()"}


@dataclasses.dataclass
class Block:
    """A run of Keras layers matched by one pattern, producing one Akida layer.

    Attributes:
        pattern: the matching Pattern.
        roles: role -> LayerInfo, in Keras order ("neural", "pool", "act", "bn", ...).
        index: position of the block in the model (0 = first Akida layer).
    """

    pattern: object
    roles: dict
    index: int

    @property
    def infos(self) -> list:
        """The Keras layers of the block, in order."""
        return list(self.roles.values())

    @property
    def produces(self) -> LayerType:
        """The Akida layer kind this block becomes."""
        return self.pattern.produces

    def get(self, role) -> Optional[LayerInfo]:
        """The LayerInfo playing `role`, or None."""
        return self.roles.get(role)

    @property
    def name(self) -> str:
        """The Akida layer name: the name of the block's neural Keras layer."""
        neural = self.get("neural")
        return neural.name if neural else "input"

    @property
    def chain(self) -> str:
        """`a > b > c` (the block's Keras layer names)."""
        return " > ".join(i.name for i in self.infos)


@dataclasses.dataclass
class Split:
    """A model split into blocks.

    Attributes:
        blocks: matched blocks in order; blocks[0] is an InputData or InputConvolutional block.
        rescaling: the leading Rescaling layer (folded into input scaling), or None.
        skipped: (LayerInfo, reason) for every layer deliberately producing no Akida layer.
        issues: structure and matching issues.
        input_shape: the model input shape without batch.
    """

    blocks: list
    rescaling: Optional[LayerInfo]
    skipped: list
    issues: list
    input_shape: Optional[tuple]


def _model_input_shape(model):
    if isinstance(model, ConfigChain):
        return model.input_shape
    inputs = getattr(model, "inputs", None) or []
    return tuple(inputs[0].shape[1:]) if len(inputs) == 1 else None


def _same_padding_conv(pad, conv):
    """`conv` read with padding='same' when ZeroPadding2D `pad` right before its Valid padding
    pads exactly as Keras 'same' would (then the two compute the same thing); else None."""
    if conv is None or conv.kind not in ("conv", "sepconv") or pad.input_shape is None or \
            len(pad.input_shape) != 3 or str(conv.get("padding", "")).lower() != "valid" or \
            pad.get("data_format", "channels_last") != "channels_last":
        return None
    try:
        pads = [tuple(int(v) for v in axis) for axis in pad.get("padding")]
        kernel = [int(k) for k in conv.get("kernel_size")]
        strides = [int(v) for v in conv.get("strides")]
    except (TypeError, ValueError):
        return None
    if pads != [same_padding(n, k, st) for n, k, st in zip(pad.input_shape[:2], kernel, strides)]:
        return None
    return dataclasses.replace(conv, config={**conv.config, "padding": "same"},
                               input_shape=pad.input_shape)


def _strip(infos, issues):
    """Removes InputLayer, skipped layers and the leading Rescaling; returns the rest."""
    rescaling, skipped, body = None, [], []
    infos = list(infos)
    for index, info in enumerate(infos):
        if info.kind == "input":
            continue
        if info.class_name == "ZeroPadding2D" and index + 1 < len(infos):
            folded = _same_padding_conv(info, infos[index + 1])
            if folded is not None:
                infos[index + 1] = folded
                skipped.append((info, f"folded into '{folded.name}' as padding='same'"))
                continue
        if info.kind == "input_quantizer" and not body and rescaling is None:
            skipped.append((info, "becomes the integer input of the Akida model"))
            continue
        if info.kind == "dequantizer" and index == len(infos) - 1:
            skipped.append((info, "final float scaling (Akida predict() gives the same values)"))
            continue
        if info.kind in _ALWAYS_SKIPPED:
            skipped.append((info, _ALWAYS_SKIPPED[info.kind]))
        elif info.kind == "reshape" and _only_unit_dims(info):
            skipped.append((info, "only adds or removes size-1 dimensions"))
        elif info.kind == "rescaling" and not body and rescaling is None:
            rescaling = info
            if any(np.size(info.get(key, 0.0)) != 1 for key in ("scale", "offset")):
                issues.append(Issue(info.name, "rescaling_per_channel",
                                    f"Layer {info.label}: per-channel scale/offset; the model "
                                    "input takes one scale and offset for all channels.",
                                    "per-channel", "scalars", "use scalar scale and offset (or "
                                    "normalise the channels before the model)."))
        elif info.kind == "rescaling":
            issues.append(Issue(info.name, "rescaling_position",
                                f"Layer {info.label}: Rescaling is only supported as the first "
                                "layer (it becomes the input scaling).", "inner Rescaling",
                                "first layer", "move the Rescaling to the model input or fold "
                                "it into the previous layer."))
        else:
            body.append(info)
    tail = []
    while body and (body[-1].kind in _TAIL_SKIPPED or
                    (body[-1].kind == "flatten" and _only_unit_dims(body[-1]))):
        info = body.pop()
        tail.insert(0, (info, _TAIL_SKIPPED.get(info.kind, "only removes size-1 dimensions")))
    return rescaling, skipped + tail, body


def _only_unit_dims(info) -> bool:
    """Whether a Reshape only adds or removes size-1 dimensions (an identity for Akida)."""
    if info.input_shape is None or info.output_shape is None:
        return False
    return [d for d in info.input_shape if d != 1] == [d for d in info.output_shape if d != 1]


def _first_is_input_conv(body, input_shape) -> bool:
    if not body or body[0].kind != "conv":
        return False
    input_bits = getattr(body[0].layer, "input_bits", None)
    if input_bits is not None:  # quantized: quantize() decided (8-bit image input)
        return input_bits == 8
    return input_shape is not None and len(input_shape) == 3 and input_shape[-1] in (1, 3)


def split_model(model) -> Split:
    """Splits a Keras model into pattern-matched blocks; never raises for a Keras model.

    Args:
        model: a Keras 3 model (float or quantized).

    Returns:
        A Split; its `issues` list every structure and matching problem.
    """
    infos, issues = read_chain(model)
    input_shape = _model_input_shape(model)
    rescaling, skipped, body = _strip(infos, issues)
    patterns = registered_patterns("v1")
    blocks, pos = [], 0
    if not _first_is_input_conv(body, input_shape):
        input_data = next(p for p in patterns if p.produces == LayerType.InputData)
        blocks.append(Block(input_data, {}, 0))
    while pos < len(body):
        first = not blocks
        best = None
        for pattern in patterns:
            if pattern.first_only != first or not pattern.sequence:
                continue
            roles = pattern.match(body, pos)
            if roles and (best is None or len(roles) > len(best[1])):
                best = (pattern, roles)
        if best is None:
            issues.append(near_miss(body, pos, blocks[-1] if blocks else None))
            pos += 1
            continue
        blocks.append(Block(best[0], best[1], len(blocks)))
        pos += len(best[1])
    return Split(blocks, rescaling, skipped, issues, input_shape)


_UNSUPPORTED_HINTS = {
    "depthwise": "DepthwiseConv2D is an Akida 2.0 layer; use SeparableConv2D (depthwise + "
                 "pointwise) on Akida 1.0.",
    "activation": "only ReLU activations run on Akida 1.0; use ReLU(max_value=...) or move this "
                  "activation to the end of the model (it is then applied on the host).",
    "softmax": "a Softmax is only allowed as the last layer (it is skipped and applied on the "
               "host); remove it from the middle of the model.",
    "unknown": "remove the layer or replace it with Conv2D, SeparableConv2D, Dense, "
               "MaxPooling2D, GlobalAveragePooling2D or ReLU.",
}


# Specific fixes for common Keras layers that have no Akida 1.0 pattern.
_CLASS_HINTS = {
    "ZeroPadding2D": "remove it and use padding='same' on the next convolution (a ZeroPadding2D "
                     "that pads exactly as 'same' before a Valid Conv2D/SeparableConv2D is "
                     "folded into it).",
    "AveragePooling2D": "use MaxPooling2D, or GlobalAveragePooling2D at the end of a block.",
    "GlobalMaxPooling2D": "use GlobalAveragePooling2D, or MaxPooling2D followed by Flatten.",
    "LeakyReLU": "use ReLU(max_value=6): Akida 1.0 activations are bounded ReLUs.",
    "PReLU": "use ReLU(max_value=6): Akida 1.0 activations are bounded ReLUs.",
    "ELU": "use ReLU(max_value=6): Akida 1.0 activations are bounded ReLUs.",
    "Add": "remove the skip connection (Akida 1.0 models are single chains) or target Akida 2.0.",
    "Concatenate": "remove the merge (Akida 1.0 models are single chains) or target Akida 2.0.",
    "LSTM": "recurrent layers do not run on Akida 1.0; use convolutions over time instead.",
    "GRU": "recurrent layers do not run on Akida 1.0; use convolutions over time instead.",
    "SimpleRNN": "recurrent layers do not run on Akida 1.0; use convolutions over time instead.",
    "Conv2DTranspose": "transposed convolutions are Akida 2.0 layers; use UpSampling outside "
                       "the Akida model.",
}


def _patterns_using(kind):
    return [p for p in registered_patterns("v1") if p.uses(kind)]


def near_miss(body, pos, previous: Optional[Block]) -> Issue:
    """Returns the issue of a layer no pattern can start, naming the closest patterns and a fix."""
    info = body[pos]
    users = _patterns_using(info.kind)
    chain = (previous.chain + " > " if previous is not None and previous.infos else "") + info.name
    if not users:
        base = info.class_name[len("Quantized"):] if info.class_name.startswith("Quantized") \
            else info.class_name
        hint = _CLASS_HINTS.get(base) or _UNSUPPORTED_HINTS.get(info.kind,
                                                                _UNSUPPORTED_HINTS["unknown"])
        return Issue(info.name, "unsupported_layer",
                     f"Layer {info.label} is not supported on Akida 1.0: no conversion pattern "
                     f"uses {info.class_name}.",
                     info.class_name, "Conv2D, SeparableConv2D, Dense, MaxPooling2D, "
                     "GlobalAveragePooling2D, ReLU, BatchNormalization, Flatten, Dropout", hint)
    prev_roles = previous.roles if previous is not None else {}
    nxt = body[pos + 1] if pos + 1 < len(body) else None
    if info.kind in ("maxpool", "gap") and "pool" in prev_roles:
        hint = "use one pooling layer per block, or add a convolution between the two poolings."
    elif info.kind == "gap" and "act" in prev_roles:
        hint = ("put pooling before the activation: Akida sums the potentials over H*W before its "
                "activation, while GlobalAveragePooling2D after a ReLU averages the activations "
                "(different results).")
    elif info.kind in ("maxpool", "gap"):
        hint = "put pooling directly after a Conv2D or SeparableConv2D (before its ReLU)."
    elif info.kind == "relu":
        hint = "remove this activation: a Conv2D, SeparableConv2D or Dense is required between " \
               "two activations."
    elif info.kind == "bn":
        hint = ("put BatchNormalization directly after a Conv2D, SeparableConv2D or Dense (or "
                "its pooling) so it can be folded into that layer.")
    elif info.kind in ("flatten", "reshape") and (nxt is None or nxt.kind != "dense"):
        hint = "Flatten/Reshape is only supported directly before a Dense layer."
    elif info.kind == "conv" and previous is None:
        hint = "give the model a 1- or 3-channel input or start it with a supported layer."
    else:
        hint = "reorder the layers as one of the patterns above."
    listing = "; ".join(f"{p.name} ({p})" for p in users)
    return Issue(info.name, "no_pattern",
                 f"No conversion pattern matches block {chain}. Patterns using "
                 f"{KIND_NAMES.get(info.kind, info.class_name)}: {listing}.",
                 chain, [p.name for p in users], hint)


__all__ = ["Block", "Split", "split_model", "near_miss", "NEURAL_KINDS"]

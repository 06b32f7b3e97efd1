"""Where Akida 2.0 quantization stops: the first layer the scheme cannot quantize, as MetaTF does.

MetaTF's ``quantize`` quantizes a model up to its first unquantizable layer (Conv2D with groups,
AveragePooling2D, UpSampling2D, sigmoid, a BatchNormalization that follows no neural layer, any
other Keras layer), inserts a Dequantizer there with a warning and leaves the remaining layers
in float; ``convert`` then converts the quantized part. ``split_float_tail`` makes the same cut
on a float graph.
"""
from __future__ import annotations

import dataclasses
import warnings

import keras

from ..errors import QuantizationError
from ..transforms import QuantizationWarning
from .graph import IDENTITY, INPUT, NEURAL, RELU_ACTIVATIONS, SUPPORTED, Graph, Node
from .lut import LUT_ACTIVATIONS

#: activations the scheme quantizes: ReLUs, the LUT ones (a final softmax stays in float after
#: the Dequantizer, see ``split_final_softmax``)
QUANTIZED_ACTIVATIONS = tuple(RELU_ACTIVATIONS) + tuple(LUT_ACTIVATIONS) + ("linear", None)
_NAMES = "relu, relu6, linear, " + ", ".join(sorted(LUT_ACTIVATIONS))


def unquantizable(node, graph: Graph) -> str | None:
    """Why the Akida 2.0 scheme cannot quantize ``node`` (None when it can)."""
    config, kind = node.config, node.class_name
    activation = config.get("activation")
    if kind not in SUPPORTED:
        return f"{kind} has no quantized Akida 2.0 twin"
    if kind == "Conv2D" and config.get("groups", 1) != 1:
        return f"groups={config['groups']} (Akida 2.0 convolutions take groups=1)"
    if kind in NEURAL and activation not in QUANTIZED_ACTIVATIONS:
        return f"activation={activation!r} (quantized: {_NAMES})"
    if kind == "Activation" and activation not in QUANTIZED_ACTIVATIONS:
        return f"activation={activation!r} (quantized: {_NAMES})"
    if kind == "Softmax":
        return "a Softmax is not quantized (a final one stays in float after the Dequantizer)"
    if kind == "BatchNormalization":
        producer = _producer(node, graph)
        if producer is None or producer.class_name not in NEURAL or \
                len(graph.consumers(producer.name)) != 1:
            return "a BatchNormalization that follows no neural layer cannot be folded"
    return None


def _producer(node, graph):
    """The layer feeding ``node``, looking through the identities sanitizing drops (Dropout)."""
    name = node.inbounds[0]
    while name != INPUT:
        producer = graph.node(name)
        if producer.class_name not in IDENTITY or len(graph.consumers(name)) != 1:
            return producer
        name = producer.inbounds[0]
    return None


def is_softmax(node) -> bool:
    """A Softmax layer or an ``Activation('softmax')``."""
    return node.class_name == "Softmax" or (node.class_name == "Activation" and
                                           node.config.get("activation") == "softmax")


def split_final_softmax(graph: Graph) -> tuple[Graph, list]:
    """Move a final softmax (a Softmax, an ``Activation('softmax')`` or the softmax activation
    of a last neural layer), with the Reshapes/Flattens/Dropouts after it, to a float tail
    (quietly).

    As MetaTF, the quantized model ends Dequantizer > softmax, so it still gives probabilities;
    ``convert`` leaves the softmax out (the Akida model gives the dequantized scores; the
    argmax is the same).

    Returns:
        (the graph without it, the float softmax nodes); the second is empty without one.
    """
    nodes = list(graph.nodes)
    end = len(nodes)
    while end > 1 and nodes[end - 1].class_name in ("Reshape", "Flatten") + IDENTITY and \
            nodes[end - 1].inbounds == [nodes[end - 2].name]:
        end -= 1
    last = nodes[end - 1]
    chained = all(node.inbounds == [previous.name]
                  for previous, node in zip(nodes[end - 1:], nodes[end:]))
    if not chained:
        return graph, []
    if is_softmax(last) and end > 1 and last.inbounds != [INPUT]:
        head, tail = nodes[:end - 1], nodes[end - 1:]
    elif last.class_name in NEURAL and last.config.get("activation") == "softmax":
        name = f"{last.name}_softmax"
        softmax = Node("Activation", name, {"name": name, "activation": "softmax"}, [],
                       [last.name], keras.layers.Activation)
        head = nodes[:end - 1] + [dataclasses.replace(
            last, config={**last.config, "activation": "linear"})]
        tail = [softmax] + [dataclasses.replace(node, inbounds=[name])
                            if node.inbounds == [last.name] else node for node in nodes[end:]]
    else:
        return graph, []
    return dataclasses.replace(graph, nodes=head), tail


def split_float_tail(graph: Graph) -> tuple[Graph, list]:
    """Cut ``graph`` before its first unquantizable node (topological order), after moving a
    final softmax to the float tail (``split_final_softmax``).

    Returns:
        (the graph to quantize, the float nodes after it); the second is empty when every node
        is quantizable and there is no final softmax. A QuantizationWarning names the first
        unquantizable layer and why (a final softmax alone gives none).

    Raises:
        QuantizationError: the first layer itself is unquantizable (nothing to quantize), or the
            float layers read several tensors of the quantized part (one Dequantizer cannot
            carry them).
    """
    graph, softmax = split_final_softmax(graph)
    cut = next(((i, reason) for i, node in enumerate(graph.nodes)
                if (reason := unquantizable(node, graph)) is not None), None)
    if cut is None:
        return graph, softmax
    index, reason = cut
    first = graph.nodes[index]
    head, tail = graph.nodes[:index], graph.nodes[index:] + softmax
    tail_names = {node.name for node in tail}
    crossing = list(dict.fromkeys(name for node in tail for name in node.inbounds
                                  if name not in tail_names))
    if not head or crossing == [INPUT]:
        raise QuantizationError([f"Layer '{first.name}' ({first.class_name}) cannot be "
                                 f"quantized for Akida 2.0: {reason}; it is the model's first "
                                 "layer, so nothing would be quantized. Hint: start the model "
                                 "with a Conv2D, DepthwiseConv2D or Dense."])
    if len(crossing) > 1:
        raise QuantizationError([f"Layer '{first.name}' ({first.class_name}) cannot be "
                                 f"quantized for Akida 2.0: {reason}; quantization would stop "
                                 f"there, but the float layers after it read {len(crossing)} "
                                 f"tensors of the quantized part ({', '.join(crossing)}) and "
                                 "the quantized part can have one output. Hint: replace "
                                 f"'{first.name}' with a supported layer or move it after the "
                                 "branches merge."])
    warnings.warn(f"Layer '{first.name}' ({first.class_name}) cannot be quantized for Akida 2.0:"
                  f" {reason}. Quantization stops before it: a Dequantizer follows "
                  f"'{crossing[0]}' and {len(tail)} layer(s) stay in float "
                  f"({', '.join(node.name for node in tail)}); convert() converts the "
                  "quantized part only.", QuantizationWarning, stacklevel=3)
    return Graph(graph.name, graph.input_shape, head, graph.input_scale,
                 graph.input_offset), tail

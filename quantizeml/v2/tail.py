"""Where Akida 2.0 quantization stops: the first layer the scheme cannot quantize, as MetaTF does.

MetaTF's ``quantize`` quantizes a model up to its first unquantizable layer (Conv2D with groups,
AveragePooling2D, UpSampling2D, sigmoid, a BatchNormalization that follows no neural layer, any
other Keras layer), inserts a Dequantizer there with a warning and leaves the remaining layers
in float; ``convert`` then converts the quantized part. ``split_float_tail`` makes the same cut
on a float graph.
"""
from __future__ import annotations

import warnings

from ..errors import QuantizationError
from ..transforms import QuantizationWarning
from .graph import IDENTITY, INPUT, NEURAL, RELU_ACTIVATIONS, SUPPORTED, Graph
from .lut import LUT_ACTIVATIONS

#: activations the scheme quantizes: ReLUs, the LUT ones (a final softmax is applied by the host,
#: see graph.py)
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
    if kind == "Activation" and activation not in QUANTIZED_ACTIVATIONS and not (
            activation == "softmax" and node is graph.nodes[-1]):
        return f"activation={activation!r} (quantized: {_NAMES}, a final softmax)"
    if kind == "Softmax" and node is not graph.nodes[-1]:
        return "a Softmax that is not the model's last layer"
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


def split_float_tail(graph: Graph) -> tuple[Graph, list]:
    """Cut ``graph`` before its first unquantizable node (topological order).

    Returns:
        (the graph to quantize, the float nodes after it); the second is empty when every node
        is quantizable. A QuantizationWarning names the first unquantizable layer and why.

    Raises:
        QuantizationError: the first layer itself is unquantizable (nothing to quantize), or the
            float layers read several tensors of the quantized part (one Dequantizer cannot
            carry them).
    """
    cut = next(((i, reason) for i, node in enumerate(graph.nodes)
                if (reason := unquantizable(node, graph)) is not None), None)
    if cut is None:
        return graph, []
    index, reason = cut
    first = graph.nodes[index]
    head, tail = graph.nodes[:index], graph.nodes[index:]
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

"""Float Keras graphs for the Akida 2.0 scheme: read (functional, branches and skips) and rebuild.

A graph is an ordered list of ``Node`` (topological order, one model input, one output); the
sanitizing transforms that rewrite it before quantization are in ``sanitize.py``.
"""
from __future__ import annotations

import dataclasses

import keras
import numpy as np

from ..errors import UnsupportedLayerError

INPUT = "__input__"
NEURAL = ("Conv2D", "DepthwiseConv2D", "Conv2DTranspose", "Dense", "SeparableConv2D")
IDENTITY = ("Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout")
SUPPORTED = NEURAL + IDENTITY + (
    "BatchNormalization", "ReLU", "Activation", "LeakyReLU", "PReLU", "Softmax", "MaxPooling2D",
    "GlobalAveragePooling2D", "Add", "Concatenate", "Flatten", "Reshape", "Rescaling",
    "ZeroPadding2D")
RELU_ACTIVATIONS = {"relu": None, "relu6": 6.0}


@dataclasses.dataclass
class Node:
    """One float layer: Keras class name, layer name, config, numpy weights, inbound names, and
    the Keras class it was read from (rebuilds the float layers quantization leaves out)."""

    class_name: str
    name: str
    config: dict
    weights: list
    inbounds: list
    layer_class: type | None = None


@dataclasses.dataclass
class Graph:
    """A float model as nodes; ``input_scale`` / ``input_offset`` are a folded input Rescaling's
    (1 and 0 without one)."""

    name: str
    input_shape: tuple
    nodes: list
    input_scale: float = 1.0
    input_offset: float = 0.0

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def consumers(self, name: str) -> list:
        return [node for node in self.nodes if name in node.inbounds]

    @property
    def output(self) -> str:
        return self.nodes[-1].name


def output_source(graph: Graph) -> str:
    """The model output's producer looking back through trailing Reshapes (a relabelling): as in
    MetaTF, the layer before a final Reshape is the last one and has no output quantizer."""
    name = graph.output
    while graph.node(name).class_name == "Reshape" and graph.node(name).inbounds[0] != INPUT and \
            len(graph.consumers(graph.node(name).inbounds[0])) == 1:
        name = graph.node(name).inbounds[0]
    return name


def _class_name(layer) -> str:
    return {"MaxPool2D": "MaxPooling2D", "GlobalAvgPool2D": "GlobalAveragePooling2D"}.get(
        type(layer).__name__, type(layer).__name__)


def read_graph(model) -> Graph:
    """Read a Keras 3 Sequential or Functional model (one input, one output); layers of any
    class are read (``tail.split_float_tail`` decides where quantization stops).

    Raises:
        UnsupportedLayerError: several inputs or outputs.
    """
    if not isinstance(model, keras.Model):
        raise UnsupportedLayerError(f"Expected a Keras 3 model, got {type(model).__name__}.")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        outputs = [t._keras_history.operation.name for t in model.outputs]
        raise UnsupportedLayerError(
            f"Model '{model.name}' has {len(model.inputs)} inputs and {len(model.outputs)} "
            f"outputs (layers {', '.join(repr(n) for n in outputs)}); Akida 2.0 models take one "
            "input and give one output. Hint: quantize one model per output.")
    input_layer = model.inputs[0]._keras_history.operation
    nodes = []
    if isinstance(model, keras.Sequential):
        previous = INPUT
        for layer in model.layers:
            nodes.append(_node(layer, [previous]))
            previous = layer.name
    else:
        known = {id(layer) for layer in model.layers}
        for layer in model.layers:
            if layer is input_layer or isinstance(layer, keras.layers.InputLayer):
                continue
            for keras_node in layer._inbound_nodes:
                sources = [t._keras_history.operation for t in keras_node.input_tensors]
                if all(id(src) in known for src in sources):
                    names = [INPUT if src is input_layer else src.name for src in sources]
                    nodes.append(_node(layer, names))
                    break
    return Graph(model.name, tuple(model.inputs[0].shape[1:]), nodes)


def _node(layer, inbounds) -> Node:
    return Node(_class_name(layer), layer.name, dict(layer.get_config()),
                [np.asarray(w) for w in layer.get_weights()], list(inbounds), type(layer))


# ---- transforms: Graph -> Graph, appending issues ----

def output_shapes(graph: Graph) -> dict:
    """Output shape (without batch) of every node."""
    model = build_model(graph, lambda node: getattr(keras.layers, node.class_name))
    return {node.name: tuple(model.get_layer(node.name).output.shape[1:])
            for node in graph.nodes}


def build_model(graph: Graph, layer_class, extra=lambda node: {}, input_layer=None,
                output_layer=None, name=None, tail=()) -> keras.Model:
    """Build a Keras model from the graph: ``layer_class(node)`` gives each node's class,
    ``extra(node)`` extra constructor arguments; optional first/last layers, then the float
    ``tail`` nodes (their own Keras classes and configs) reading the last layer's output."""
    inputs = keras.Input(graph.input_shape, name="input")
    tensors = {INPUT: input_layer(inputs) if input_layer is not None else inputs}
    for node in graph.nodes:
        config = {k: v for k, v in node.config.items() if k not in ("dtype", "trainable")}
        _add_layer(tensors, node, layer_class(node)(**{**config, "name": node.name,
                                                        **extra(node)}))
    out = tensors[graph.output]
    if output_layer is not None:
        out = tensors[graph.output] = output_layer(out)
    names = {node.name for node in tail}
    for node in tail:  # what it read of the graph (renamed by sanitizing) is the last output
        node = dataclasses.replace(node, inbounds=[name if name in names else graph.output
                                                   for name in node.inbounds])
        out = _add_layer(tensors, node, node.layer_class.from_config(node.config))
    return keras.Model(inputs, out, name=name or graph.name)


def _add_layer(tensors, node, layer):
    args = [tensors[name] for name in node.inbounds]
    tensors[node.name] = layer(args if len(args) > 1 else args[0])
    if node.weights:
        layer.set_weights(list(node.weights) + [np.asarray(w) for w in
                                                layer.get_weights()[len(node.weights):]])
    return tensors[node.name]

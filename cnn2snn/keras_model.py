"""Reading Keras models as a flat list of LayerInfo records (the only place that knows Keras names).

Every Keras layer (float or quantized, since quantized twins subclass their Keras parent) is reduced
to a kind ("conv", "relu", "maxpool", ...) and the few attributes conversion rules need, so patterns,
checks and messages never touch Keras objects directly.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import keras

from .errors import Issue

# Ordered: subclasses before their parents (SpatialDropout2D is a Dropout, ...).
_KIND_OF_CLASS = (
    (keras.layers.InputLayer, "input"),
    (keras.layers.Rescaling, "rescaling"),
    (keras.layers.SeparableConv2D, "sepconv"),
    (keras.layers.DepthwiseConv2D, "depthwise"),
    (keras.layers.Conv2D, "conv"),
    (keras.layers.Dense, "dense"),
    (keras.layers.MaxPooling2D, "maxpool"),
    (keras.layers.GlobalAveragePooling2D, "gap"),
    (keras.layers.ReLU, "relu"),
    (keras.layers.Softmax, "softmax"),
    (keras.layers.BatchNormalization, "bn"),
    (keras.layers.Flatten, "flatten"),
    (keras.layers.Reshape, "reshape"),
    (keras.layers.Dropout, "dropout"),
)

#: Readable Keras names of the kinds, for messages and the pattern listing.
KIND_NAMES = {
    "input": "InputLayer", "rescaling": "Rescaling", "sepconv": "SeparableConv2D",
    "depthwise": "DepthwiseConv2D", "conv": "Conv2D", "dense": "Dense", "maxpool": "MaxPooling2D",
    "gap": "GlobalAveragePooling2D", "relu": "ReLU", "softmax": "Softmax",
    "activation": "Activation", "bn": "BatchNormalization", "flatten": "Flatten",
    "reshape": "Reshape", "dropout": "Dropout", "identity": "Activation(linear)",
    "unknown": "unsupported layer", "conv_transpose": "Conv2DTranspose", "add": "Add",
    "concatenate": "Concatenate", "input_quantizer": "InputQuantizer",
    "dequantizer": "Dequantizer", "lut": "Activation(LUT)",
}

#: Kinds of the layers that compute a weighted sum (one Akida layer each).
NEURAL_KINDS = ("conv", "sepconv", "dense")


@dataclasses.dataclass(frozen=True)
class LayerInfo:
    """What conversion needs to know about one Keras layer.

    Attributes:
        name: the Keras layer name.
        kind: the conversion kind (see KIND_NAMES).
        class_name: the Keras class name (e.g. "QuantizedConv2D", "LSTM").
        config: the layer's get_config() dict.
        input_shape: input shape without batch (tuple, None when unknown).
        output_shape: output shape without batch.
        layer: the Keras layer object itself (used by build functions).
    """

    name: str
    kind: str
    class_name: str
    config: dict
    input_shape: Optional[tuple]
    output_shape: Optional[tuple]
    layer: Any = dataclasses.field(repr=False, compare=False, default=None)

    def get(self, key, default=None):
        """Returns a config value."""
        return self.config.get(key, default)

    @property
    def label(self) -> str:
        """`name (ClassName)` for messages."""
        return f"'{self.name}' ({self.class_name})"


def _quantizeml_kinds():
    from quantizeml.layers import Dequantizer, InputQuantizer
    return ((InputQuantizer, "input_quantizer"), (Dequantizer, "dequantizer"))


def kind_of(layer) -> str:
    """Returns the conversion kind of a Keras layer ("unknown" when no rule knows it)."""
    for cls, kind in _quantizeml_kinds():
        if isinstance(layer, cls):
            return kind
    if isinstance(layer, keras.layers.Activation):
        act = layer.get_config().get("activation")
        return {"relu": "relu", "relu6": "relu", "softmax": "softmax",
                "linear": "identity"}.get(act, "activation")
    for cls, kind in _KIND_OF_CLASS:
        if isinstance(layer, cls):
            return kind
    return "unknown"


def _shape(tensor_getter):
    try:
        shape = tensor_getter()
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        return None  # several tensors: not a chain layer
    return tuple(shape)[1:] if shape is not None else None


def describe(layer) -> LayerInfo:
    """Returns the LayerInfo of a Keras layer."""
    try:
        config = layer.get_config()
    except (NotImplementedError, TypeError):
        config = {}
    if isinstance(layer, keras.layers.Activation) and config.get("activation") == "relu6":
        config = {**config, "max_value": 6.0}  # read as quantize reads it: ReLU(max_value=6)
    return LayerInfo(name=layer.name, kind=kind_of(layer), class_name=type(layer).__name__,
                     config=config,
                     input_shape=_shape(lambda: layer.input.shape),
                     output_shape=_shape(lambda: layer.output.shape), layer=layer)


def _parents(layer, previous):
    """Inbound layers of `layer`; a layer reused from another model has one node per model, so
    the node fed by `previous` (when there is one) is the one of this model."""
    nodes = getattr(layer, "_inbound_nodes", [])
    if not nodes:
        return None
    candidates = [[getattr(p, "operation", None) for p in node.parent_nodes] for node in nodes]
    for parents in candidates:
        if len(parents) == 1 and parents[0] is previous:
            return parents
    return candidates[-1]


@dataclasses.dataclass
class ConfigChain:
    """What `read_chain` needs of a model, read from a configuration (`config_chain.py` reads it
    layer by layer when Keras cannot rebuild the whole model).

    Attributes:
        name: the model name.
        infos: one LayerInfo per layer, in order (InputLayer included).
        input_shape: the model input shape without batch, or None.
        issues: structure issues found while reading.
    """

    name: str
    infos: list
    input_shape: Optional[tuple]
    issues: list = dataclasses.field(default_factory=list)

    @property
    def layers(self) -> list:
        """The LayerInfos (they have `.name`, as Keras layers do)."""
        return self.infos


def read_chain(model):
    """Returns the model's layers as a list of LayerInfo plus the structure issues found.

    A convertible Akida 1.0 model is one chain: one 4-D (or 2-D) input, one output, every layer
    fed by the previous one only. Nested models and branches are reported, not followed.

    Args:
        model: a Keras 3 model (Sequential or functional).

    Returns:
        (infos, issues): infos excludes nothing (InputLayer included when the model has one).
    """
    if isinstance(model, ConfigChain):  # a file Keras cannot rebuild whole, read layer by layer
        return list(model.infos), list(model.issues)
    issues = []
    if not isinstance(model, keras.Model):
        kind = f"{type(model).__module__}.{type(model).__name__}"
        hint = ("load it with keras.saving.load_model (Keras 3) or cnn2snn-check's file reader"
                if "tf_keras" in kind or "keras.src.legacy" in kind else "pass a keras.Model")
        return [], [Issue("model", "model_type", f"Object of type {kind} is not a Keras 3 model.",
                          kind, "keras.Model", hint)]
    inputs = getattr(model, "inputs", None) or []
    outputs = getattr(model, "outputs", None) or []
    if len(inputs) != 1 or len(outputs) != 1:
        issues.append(Issue("model", "single_input_output",
                            f"Model '{model.name}' has {len(inputs)} inputs and {len(outputs)} "
                            "outputs; Akida 1.0 models have exactly one of each.",
                            (len(inputs), len(outputs)), (1, 1),
                            "split the model into single-input, single-output models."))
    else:
        rank = len(inputs[0].shape) - 1
        if rank not in (1, 3):
            issues.append(Issue("model", "input_rank",
                                f"Model '{model.name}' input has shape {tuple(inputs[0].shape)}; "
                                "allowed: (batch, height, width, channels) or (batch, features).",
                                rank, (1, 3), "reshape the input to (height, width, channels)."))
    infos, previous = [], None
    for layer in model.layers:
        info = describe(layer)
        if isinstance(layer, keras.Model):
            issues.append(Issue(layer.name, "nested_model",
                                f"Layer {info.label} is a nested model; conversion needs a flat "
                                "chain of layers.", info.class_name, "Keras layers",
                                "flatten the nested model into the outer model's layers."))
        parents = _parents(layer, previous)
        if info.kind != "input" and previous is not None and parents is not None:
            if len(parents) != 1 or parents[0] is not previous:
                names = [getattr(p, "name", "?") for p in parents]
                issues.append(Issue(layer.name, "branch",
                                    f"Layer {info.label} takes its input from {names}; Akida 1.0 "
                                    "models are a single chain (each layer fed by the previous one "
                                    "only, no branches or merges).", names,
                                    [previous.name], "remove skip connections and merges "
                                    "(Add, Concatenate) or target an Akida 2.0 device."))
        infos.append(info)
        previous = layer
    return infos, issues

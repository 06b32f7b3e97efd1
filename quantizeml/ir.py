"""A small framework-neutral description of a float layer chain: the boundary format.

Keras 3 models, tf-keras models and legacy ``.h5`` files are all read into a ``ModelSpec`` (class
name, whitelisted config keys, numpy weights), transformed, and rebuilt as a Keras 3 model with our
own constructors. No config value is ever used to import or call anything.
"""
from __future__ import annotations

import dataclasses
import difflib
import itertools
import math

import keras
import numpy as np

from .errors import ModelFormatError, UnsafeModelError, UnsupportedLayerError
from .schema import (MAX_SIZE, endpoint_names, inbound_names, short, validate_layer_config,
                     validate_model_config)

#: Canonical Keras class -> config keys we keep (everything else is irrelevant to quantization).
LAYER_KEYS = {
    "InputLayer": (),
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
               "groups", "activation", "use_bias"),
    "SeparableConv2D": ("filters", "kernel_size", "strides", "padding", "data_format",
                        "dilation_rate", "depth_multiplier", "activation", "use_bias"),
    "DepthwiseConv2D": ("kernel_size", "strides", "padding", "depth_multiplier", "data_format",
                        "dilation_rate", "activation", "use_bias"),
    "Dense": ("units", "activation", "use_bias"),
    "BatchNormalization": ("axis", "epsilon", "center", "scale"),
    "ReLU": ("max_value", "negative_slope", "threshold"),
    "Activation": ("activation",),
    "Softmax": ("axis",),
    "MaxPooling2D": ("pool_size", "strides", "padding", "data_format"),
    "GlobalAveragePooling2D": ("data_format", "keepdims"),
    "Flatten": ("data_format",),
    "Reshape": ("target_shape",),
    "Rescaling": ("scale", "offset"),
    "Dropout": ("rate",),
    "SpatialDropout2D": ("rate",),
    "GaussianNoise": ("stddev",),
    "GaussianDropout": ("rate",),
    "ZeroPadding2D": ("padding", "data_format"),  # folded into the next convolution's padding
}
ALIASES = {"MaxPool2D": "MaxPooling2D", "GlobalAvgPool2D": "GlobalAveragePooling2D",
           "Convolution2D": "Conv2D", "SeparableConvolution2D": "SeparableConv2D"}
#: Classes that can run arbitrary code: refused outright.
UNSAFE_CLASSES = ("Lambda", "TFOpLambda", "SlicingOpLambda", "__lambda__")
#: Most weights one layer's config may imply (1 GiB of float32), checked before Keras allocates.
MAX_LAYER_WEIGHTS = 2**28


@dataclasses.dataclass
class LayerSpec:
    """One float layer: canonical Keras class name, layer name, kept config, numpy weights."""

    class_name: str
    name: str
    config: dict
    weights: list = dataclasses.field(default_factory=list)

    def replace(self, **changes) -> "LayerSpec":
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass
class ModelSpec:
    """A single-input, single-output chain of float layers."""

    input_shape: tuple
    layers: list
    source: str = "keras3"
    name: str = "model"
    input_scale: float = 1.0
    input_offset: float = 0.0
    folded_rescaling: dict | None = None

    def replace(self, **changes) -> "ModelSpec":
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def _input_shape(layers: list[dict], where: str) -> tuple:
    for entry in layers[:1]:
        config = entry.get("config") or {}
        shape = config.get("batch_shape") or config.get("batch_input_shape")
        if shape is not None:
            if not isinstance(shape, (list, tuple)) or len(shape) < 2:
                raise ModelFormatError(f"{where}: the input layer has batch shape {short(shape)};"
                                       " expected [null, height, width, channels].")
            return tuple(shape[1:])
    raise ModelFormatError(f"{where}: the model config gives no input shape (no InputLayer "
                           "with batch_shape). Hint: build the model with keras.Input(shape).")


def _check_dims(where: str, name: str, shape) -> None:
    for dim in shape:
        if dim is None:
            raise ModelFormatError(
                f"{where}: layer '{name}' has an unknown dimension in {tuple(shape)}; quantization "
                "needs static height, width and channels. Hint: set a fixed input shape.")
        if isinstance(dim, bool) or not isinstance(dim, int) or not 0 < dim <= MAX_SIZE:
            raise ModelFormatError(
                f"{where}: layer '{name}' has dimension {short(dim)} in {short(tuple(shape))}; "
                f"dimensions must be positive integers <= {MAX_SIZE}.")


def spec_from_config(config: dict, weights: dict[str, list], source: str, where: str,
                     refuse_code: bool = True) -> ModelSpec:
    """Build a ModelSpec from a Keras (2 or 3) model config and ``{layer name: [arrays]}``.

    Layer classes with no quantized twin are kept (``check_layers`` reports them all at once).

    Raises:
        ModelFormatError: malformed config (types, structure, values), non-chain graph,
            missing/extra weights.
        UnsafeModelError: Lambda layers, function objects or non built-in activations when
            ``refuse_code`` (files).
        UnsupportedLayerError: branches, several inputs/outputs.
    """
    config = validate_model_config(config, where)
    layers = config["layers"]
    unsafe, entries, seen = [], [], set()
    for index, entry in enumerate(layers):
        class_name = ALIASES.get(entry["class_name"], entry["class_name"])
        layer_config = entry.get("config") or {}
        name = layer_config.get("name") or entry.get("name") or f"layer_{index}"
        if name in seen:
            raise ModelFormatError(f"{where}: layer name '{name}' is used twice; layer names "
                                   "must be unique.")
        seen.add(name)
        if class_name in UNSAFE_CLASSES or "function" in layer_config or \
                "__lambda__" in repr(layer_config):
            unsafe.append(f"'{name}' ({entry['class_name']})")
        entries.append((class_name, name, layer_config, entry))
    if unsafe and refuse_code:
        raise UnsafeModelError(
            f"{where}: layers that can run arbitrary code are refused: {', '.join(unsafe)}. "
            "Hint: replace Lambda layers by standard Keras layers.")
    input_shape = _input_shape(layers, where)
    chain, previous = [], None
    for class_name, name, layer_config, entry in entries:
        inbound = inbound_names(entry, where)
        if "inbound_nodes" in entry and previous is not None and inbound != [previous]:
            raise UnsupportedLayerError(
                f"{where}: layer '{name}' takes inputs {inbound}, not the previous layer "
                f"'{previous}'; Akida 1.0 models are a single chain (no branches).")
        previous = name
        if class_name == "InputLayer":
            continue
        if class_name not in LAYER_KEYS:
            chain.append(LayerSpec(class_name, name, {"module": entry.get("module")},
                                   [np.asarray(w) for w in weights.pop(name, [])]))
            continue
        kept = {key: layer_config[key] for key in LAYER_KEYS[class_name] if key in layer_config}
        kept = validate_layer_config(class_name, kept, f"{where}: layer '{name}' ({class_name})",
                                     refuse_code)
        if class_name == "BatchNormalization" and isinstance(kept.get("axis"), (list, tuple)) \
                and len(kept["axis"]) == 1:
            kept["axis"] = kept["axis"][0]  # Keras 2 stores a list
        chain.append(LayerSpec(class_name, name, kept,
                               [np.asarray(w) for w in weights.pop(name, [])]))
    for key in ("output_layers", "input_layers"):
        if config.get(key) is None:
            continue
        ends = endpoint_names(config[key], where, key)
        if len(ends) != 1:
            raise UnsupportedLayerError(f"{where}: the model has {len(ends)} {key[:-7]}s; "
                                        "Akida 1.0 models have exactly one input and one output.")
    extra = [name for name, arrays in weights.items() if len(arrays)]
    if extra:
        raise ModelFormatError(f"{where}: weights given for layers not in the config: {extra}.")
    _check_dims(where, "input", input_shape)
    return ModelSpec(tuple(input_shape), chain, source=source,
                     name=config.get("name") or "model")


def is_tf_keras_model(model) -> bool:
    """True for a tf-keras (Keras 2) model object."""
    module = type(model).__module__
    return module.startswith(("tf_keras", "keras.src.legacy")) or (
        module.startswith("keras") and not isinstance(model, keras.Model)
        and hasattr(model, "get_config"))


def spec_from_model(model) -> ModelSpec:
    """Read an in-memory Keras 3 or tf-keras model into a ModelSpec (never executes its code)."""
    tf_keras = is_tf_keras_model(model)
    if not tf_keras and not isinstance(model, keras.Model):
        raise ModelFormatError(f"Expected a Keras model, got {type(model).__module__}."
                               f"{type(model).__name__}.")
    where = f"{'tf-keras' if tf_keras else 'Keras 3'} model '{model.name}'"
    for layer in model.layers:
        if isinstance(layer, keras.Model) or type(layer).__name__ in ("Sequential", "Functional"):
            raise UnsupportedLayerError(
                f"{where}: layer '{layer.name}' is a nested model; flatten it into one chain.")
    try:
        config = model.get_config()
    except NotImplementedError as err:
        raise UnsupportedLayerError(f"{where}: subclassed models cannot be read; build it with "
                                    "the Sequential or Functional API.") from err
    weights = {layer.name: [np.asarray(w) for w in layer.get_weights()] for layer in model.layers}
    return spec_from_config(config, weights, "tf_keras" if tf_keras else "keras3", where,
                            refuse_code=False)


def build_float_model(spec: ModelSpec) -> keras.Model:
    """Rebuild a ModelSpec as a Keras 3 float model with its weights (and folded Rescaling).

    Raises:
        ModelFormatError: a weight's shape differs from the one the layer config implies.
        UnsupportedLayerError: layer classes quantizeml cannot rebuild (all listed).
    """
    unknown = [f"Layer '{lay.name}' ({lay.class_name}) is not supported; supported: "
               f"{', '.join(sorted(LAYER_KEYS))}." for lay in spec.layers
               if lay.class_name not in LAYER_KEYS]
    if unknown:
        raise UnsupportedLayerError(unknown)
    names = {layer_spec.name for layer_spec in spec.layers}
    input_name = next(name for name in itertools.chain(["input"], (
        f"input_{i}" for i in itertools.count(1))) if name not in names)
    inputs = keras.Input(spec.input_shape, name=input_name)
    x = inputs
    if spec.folded_rescaling is not None:
        x = keras.layers.Rescaling(spec.input_scale, spec.input_offset,
                                   name=spec.folded_rescaling["name"])(x)
    for layer_spec in spec.layers:
        _check_build(layer_spec, tuple(x.shape))
        layer = _keras_layer(layer_spec, name=layer_spec.name)
        try:
            x = call_with_zero_init(layer, x)
        except (ValueError, TypeError) as err:
            raise ModelFormatError(f"Layer '{layer_spec.name}' ({layer_spec.class_name}) cannot "
                                   f"take input shape {tuple(x.shape)}: {err}") from err
        expected = [tuple(w.shape) for w in layer.get_weights()]
        found = [tuple(w.shape) for w in layer_spec.weights]
        if expected != found:
            raise ModelFormatError(
                f"Layer '{layer_spec.name}' ({layer_spec.class_name}): weight shapes {found} do "
                f"not match the shapes its config implies {expected}.")
        layer.set_weights([np.asarray(w, np.float32) for w in layer_spec.weights])
    try:
        return keras.Model(inputs, x, name=spec.name)
    except ValueError as err:  # e.g. a '/' in the model name
        raise ModelFormatError(f"Model {short(spec.name)} cannot be rebuilt: {err}") from err


#: Initializers of the layers Keras builds with weights drawn at random. A layer rebuilt from a spec
#: has its weights set right after: drawing them costs 1-3 ms per kernel (0.06 s on AkidaNet-like).
RANDOM_INITIALIZERS = ("kernel_initializer", "depthwise_initializer", "pointwise_initializer")


def call_with_zero_init(layer, x):
    """``layer(x)`` with its kernels created as zeros, for a layer whose weights are set right after;
    its own initializers are kept (its config, a clone or a reset still use them)."""
    kept = {name: getattr(layer, name) for name in RANDOM_INITIALIZERS if hasattr(layer, name)}
    for name in kept:
        setattr(layer, name, keras.initializers.Zeros())
    try:
        return layer(x)
    finally:
        for name, initializer in kept.items():
            setattr(layer, name, initializer)


def _keras_layer(layer_spec: LayerSpec, **extra):
    """The Keras layer of a LayerSpec; a config Keras refuses is a ModelFormatError."""
    try:
        return getattr(keras.layers, layer_spec.class_name)(**extra, **layer_spec.config)
    except (ValueError, TypeError) as err:
        raise ModelFormatError(f"Layer '{layer_spec.name}' ({layer_spec.class_name}): Keras "
                               f"refuses its config {short(layer_spec.config, 200)}: "
                               f"{err}") from err


def _weight_count(class_name: str, config: dict, shape: tuple) -> int:
    """Upper bound of the weights a layer creates on ``shape`` (batch first)."""
    dims = shape[1:]
    if not dims or any(dim is None for dim in dims):
        return 0
    channels = int(dims[0] if config.get("data_format") == "channels_first" else dims[-1])
    kernel = config.get("kernel_size", 1)
    area = math.prod(int(k) for k in (kernel if isinstance(kernel, (list, tuple)) else
                                      (kernel, kernel)))
    multiplier, out = int(config.get("depth_multiplier", 1)), int(
        config.get("filters", config.get("units", 0)))
    return {"Dense": channels * out + out, "Conv2D": area * channels * out + out,
            "SeparableConv2D": (area + out) * channels * multiplier + out,
            "DepthwiseConv2D": (area + 1) * channels * multiplier,
            "BatchNormalization": 4 * max(int(dim) for dim in dims)}.get(class_name, 0)


def _check_build(layer_spec: LayerSpec, shape: tuple) -> None:
    """Refuse what Keras would fail on (a BatchNormalization axis out of range) or allocate
    without bound when building ``layer_spec`` on ``shape`` (batch first)."""
    config, rank = layer_spec.config, len(shape)
    label = f"Layer '{layer_spec.name}' ({layer_spec.class_name})"
    if layer_spec.class_name == "BatchNormalization":
        axes = config.get("axis", -1)
        if any(not -rank <= axis < rank or axis % rank == 0 for axis in (
                axes if isinstance(axes, (list, tuple)) else [axes])):
            raise ModelFormatError(f"{label}: axis={axes!r} is not a feature axis of input shape "
                                   f"{shape[1:]}; allowed: 1 to {rank - 1} or -1 to "
                                   f"-{rank - 1}.")
    count = _weight_count(layer_spec.class_name, config, shape)
    if count > MAX_LAYER_WEIGHTS:
        raise ModelFormatError(f"{label}: on input shape {shape[1:]} its config implies {count} "
                               f"weights; the limit is {MAX_LAYER_WEIGHTS} (1 GiB of float32).")


def suggest(name: str, candidates) -> str:
    """Return a ' Did you mean ...?' hint for a misspelt name (or '')."""
    close = difflib.get_close_matches(name, list(candidates), n=3)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def output_shapes(spec: ModelSpec) -> list[tuple]:
    """Return each layer's output shape (no batch), inferred from the configs alone."""
    shapes, shape = [], (None,) + tuple(spec.input_shape)
    for layer_spec in spec.layers:
        shape = tuple(_keras_layer(layer_spec).compute_output_shape(shape))
        shapes.append(shape[1:])
    return shapes


def validate_weight_shapes(spec: ModelSpec) -> None:
    """Check every layer's weights against the shapes its config implies (up to the first layer
    class quantizeml does not know).

    Raises:
        ModelFormatError: a missing, extra or mis-shaped weight (bad file or tampered config).
    """
    shape = (None,) + tuple(spec.input_shape)
    for layer_spec in spec.layers:
        if layer_spec.class_name not in LAYER_KEYS:
            return
        _check_build(layer_spec, shape)
        layer = _keras_layer(layer_spec)
        try:
            layer.build(shape)
            new_shape = tuple(layer.compute_output_shape(shape))
        except (ValueError, TypeError) as err:
            raise ModelFormatError(f"Layer '{layer_spec.name}' ({layer_spec.class_name}) cannot "
                                   f"be built on input shape {shape[1:]} with its config: "
                                   f"{err}") from err
        expected = [tuple(w.shape) for w in layer.weights]
        found = [tuple(np.shape(w)) for w in layer_spec.weights]
        if expected != found:
            raise ModelFormatError(
                f"Layer '{layer_spec.name}' ({layer_spec.class_name}): weight shapes {found} do "
                f"not match the shapes its config implies {expected}.")
        shape = new_shape

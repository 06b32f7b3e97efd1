"""ModelSpec -> ModelSpec transforms that put a float model in the shape Akida 1.0 blocks need.

Each transform takes ``(spec, issues)``, appends a message to ``issues`` for every problem it finds
(so all problems are reported at once) and returns a new spec.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..ir import LAYER_KEYS, LayerSpec, ModelSpec, output_shapes

NEURAL = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D", "Dense")
DROPPED = ("Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout")
RELU_ACTIVATIONS = {"relu": None, "relu6": 6.0}


class QuantizationWarning(UserWarning):
    """Something was changed that does not alter predictions (e.g. a final softmax dropped)."""


def _activation_name(value):
    return value if isinstance(value, str) else None


def _input_ranks(spec: ModelSpec) -> list:
    """Rank (without batch) of each layer's input; all None when shapes cannot be inferred (the
    layer that prevents it is reported by the checks below)."""
    if all(layer.class_name in LAYER_KEYS for layer in spec.layers):
        try:
            shapes = [tuple(spec.input_shape)] + output_shapes(spec)[:-1]
            return [len(shape) for shape in shapes]
        except (ValueError, TypeError, KeyError, AttributeError, IndexError):
            pass
    return [None] * len(spec.layers)


def _output_layout_start(layers) -> int:
    """Index of the run of final Reshapes/Flattens (they only lay the output out)."""
    end = len(layers)
    while end and layers[end - 1].class_name in ("Reshape", "Flatten"):
        end -= 1
    return end


def check_layers(spec: ModelSpec, issues: list) -> ModelSpec:
    """Check each layer's settings and weights (formats, dilation, NaN/Inf, BN statistics)."""
    last = max(_output_layout_start(spec.layers) - 1, 0)  # the last layer that computes
    supported = ", ".join(sorted(k for k in LAYER_KEYS if k != "InputLayer"))
    ranks = _input_ranks(spec)
    for index, layer in enumerate(spec.layers):
        where, config = f"Layer '{layer.name}' ({layer.class_name})", layer.config
        if layer.class_name not in LAYER_KEYS:
            issues.append(f"{where} has no quantized Akida 1.0 twin"
                          f"{'; it runs arbitrary code' if 'Lambda' in layer.class_name else ''}"
                          f". Supported layers: {supported}.")
            continue
        if config.get("data_format") == "channels_first":
            issues.append(f"{where}: data_format='channels_first'; Akida needs 'channels_last'. "
                          "Hint: rebuild the model channels_last and transpose its input.")
        for key in ("dilation_rate",):
            if key in config and any(v != 1 for v in np.atleast_1d(config[key])):
                issues.append(f"{where}: {key}={config[key]}; allowed: 1.")
        for key in ("groups", "depth_multiplier"):
            if config.get(key, 1) != 1:
                issues.append(f"{where}: {key}={config[key]}; allowed: 1.")
        for key in ("filters", "units"):
            if key in config and (not isinstance(config[key], int) or config[key] <= 0):
                issues.append(f"{where}: {key}={config[key]!r}; must be a positive integer.")
        activation = config.get("activation")
        if layer.class_name in NEURAL + ("Activation",) and activation not in (None, "linear") \
                and _activation_name(activation) not in RELU_ACTIVATIONS and index != last:
            issues.append(f"{where}: activation={activation!r} is not supported inside the "
                          "model; Akida 1.0 supports ReLU (bounded by calibration) only. "
                          "Non-ReLU activations are only dropped at the model's end.")
        if layer.class_name == "ReLU" and (config.get("negative_slope", 0) or
                                           config.get("threshold", 0)):
            issues.append(f"{where}: negative_slope={config.get('negative_slope')}, threshold="
                          f"{config.get('threshold')}; Akida 1.0 needs a plain ReLU.")
        if layer.class_name == "Softmax" and index != last:
            issues.append(f"{where}: Softmax is only allowed as the last layer (it is dropped).")
        for weight in layer.weights:
            if weight.dtype == object or not np.issubdtype(weight.dtype, np.number):
                issues.append(f"{where}: weight of dtype {weight.dtype}; expected float.")
            elif not np.all(np.isfinite(weight)):
                issues.append(f"{where}: weights hold NaN or Inf; fix or retrain the float model.")
        if layer.class_name == "BatchNormalization":
            eps = config.get("epsilon", 1e-3)
            if not isinstance(eps, (int, float)) or eps <= 0:
                issues.append(f"{where}: epsilon={eps!r}; must be > 0.")
            elif layer.weights and np.any(np.asarray(layer.weights[-1]) + eps <= 0):
                issues.append(f"{where}: moving_variance + epsilon <= 0; the statistics are "
                              "corrupted.")
            axis, rank = config.get("axis", -1), ranks[index]
            channels = (-1, [-1]) + ((rank, [rank]) if rank is not None else (1, [1], 3, [3]))
            if axis not in channels:
                issues.append(f"{where}: axis={axis}; allowed: -1 (the channels, last axis).")
        if layer.class_name == "Rescaling" and index != 0:
            issues.append(f"{where}: a Rescaling is only supported as the first layer (it is "
                          "folded into the input).")
    if not any(layer.class_name in NEURAL for layer in spec.layers):
        issues.append(f"Model '{spec.name}' has no Conv2D, SeparableConv2D, DepthwiseConv2D or "
                      "Dense layer: nothing to quantize.")
    return spec


def split_fused_activations(spec: ModelSpec, issues: list) -> ModelSpec:
    """Neural/Activation layers with a ReLU activation become layer + ReLU (blocks need a ReLU
    layer); a final non-ReLU activation is kept for drop_final_activation."""
    layers = []
    for layer in spec.layers:
        activation = _activation_name(layer.config.get("activation"))
        if layer.class_name == "Activation" and activation in RELU_ACTIVATIONS:
            layers.append(LayerSpec("ReLU", layer.name,
                                    {"max_value": RELU_ACTIVATIONS[activation]}))
            continue
        if layer.class_name in NEURAL and activation not in (None, "linear"):
            layers.append(layer.replace(config={**layer.config, "activation": "linear"}))
            if activation in RELU_ACTIVATIONS:
                layers.append(LayerSpec("ReLU", f"{layer.name}_relu",
                                        {"max_value": RELU_ACTIVATIONS[activation]}))
            else:
                layers.append(LayerSpec("Activation", f"{layer.name}_activation",
                                        {"activation": layer.config["activation"]}))
            continue
        if layer.class_name == "Activation" and activation == "linear":
            continue
        layers.append(layer)
    return spec.replace(layers=layers)


def drop_dropout(spec: ModelSpec, issues: list) -> ModelSpec:
    """Dropout-like layers are the identity at inference."""
    return spec.replace(layers=[lay for lay in spec.layers if lay.class_name not in DROPPED])


def drop_final_activation(spec: ModelSpec, issues: list) -> ModelSpec:
    """A final softmax/sigmoid keeps the argmax: drop it (with a warning) so logits come out."""
    layers = list(spec.layers)
    # Final Reshapes/Flattens stay (MetaTF heads end Conv 1x1 > Softmax > Reshape((classes,))):
    # a softmax over the last axis commutes with them.
    end = _output_layout_start(layers)
    while end and layers[end - 1].class_name in ("Softmax", "Activation"):
        dropped = layers.pop(end - 1)
        end -= 1
        # stacklevel: warn > this transform > sanitize > quantize/calibrate > the user's call
        warnings.warn(f"Final layer '{dropped.name}' ({dropped.class_name}) dropped: the "
                      "quantized model outputs the values before it.", QuantizationWarning,
                      stacklevel=4)
    return spec.replace(layers=layers)


def fold_rescaling(spec: ModelSpec, issues: list) -> ModelSpec:
    """A first Rescaling becomes the input affine (folded into the first layer's input scale and
    padding value)."""
    if not spec.layers or spec.layers[0].class_name != "Rescaling":
        return spec
    layer = spec.layers[0]
    scale, offset = layer.config.get("scale", 1.0), layer.config.get("offset", 0.0)
    if np.size(scale) != 1 or np.size(offset) != 1:
        issues.append(f"Layer '{layer.name}' (Rescaling): per-channel scale/offset are not "
                      "supported; use scalars.")
        return spec
    scale, offset = float(np.ravel(scale)[0]), float(np.ravel(offset)[0])
    if not np.isfinite(scale) or not np.isfinite(offset) or scale <= 0:
        issues.append(f"Layer '{layer.name}' (Rescaling): scale={scale}, offset={offset}; the "
                      "scale must be finite and > 0.")
        return spec
    return spec.replace(layers=spec.layers[1:], input_scale=scale, input_offset=offset,
                        folded_rescaling={"name": layer.name, "scale": scale, "offset": offset})


def _bn_factors(bn: LayerSpec):
    config, weights = bn.config, list(bn.weights)
    gamma = weights.pop(0) if config.get("scale", True) else None
    beta = weights.pop(0) if config.get("center", True) else None
    mean, variance = weights
    factor = (1.0 if gamma is None else gamma) / np.sqrt(variance + config.get("epsilon", 1e-3))
    return np.asarray(factor * np.ones_like(mean), np.float64), beta, mean


def move_batchnorm_before_pooling(spec: ModelSpec, issues: list) -> ModelSpec:
    """neural > pool > BN becomes neural > BN > pool (GAP: always; MaxPool: gammas > 0), so the BN
    can be folded."""
    layers = list(spec.layers)
    for i in range(1, len(layers)):
        if layers[i].class_name == "BatchNormalization" and layers[i - 1].class_name in (
                "MaxPooling2D", "GlobalAveragePooling2D") and layers[i].weights:
            factor, _, _ = _bn_factors(layers[i])
            if layers[i - 1].class_name == "MaxPooling2D" and np.any(factor <= 0):
                issues.append(f"Layer '{layers[i].name}' (BatchNormalization) after MaxPooling2D "
                              "has non-positive gammas: it cannot move before the pooling. "
                              "Hint: put the BatchNormalization right after the convolution.")
                continue
            layers[i - 1], layers[i] = layers[i], layers[i - 1]
    return spec.replace(layers=layers)


def fold_batchnorm(spec: ModelSpec, issues: list) -> ModelSpec:
    """BN right after a neural layer is folded into its kernel and bias: W·s, β + (b − μ)·s."""
    layers = []
    for layer in spec.layers:
        if layer.class_name != "BatchNormalization":
            layers.append(layer)
            continue
        previous = layers[-1] if layers else None
        if previous is None or previous.class_name not in NEURAL:
            found = previous.class_name if previous else "the model input"
            issues.append(f"Layer '{layer.name}' (BatchNormalization) follows {found}; it can only "
                          "be folded into a preceding Conv2D/SeparableConv2D/DepthwiseConv2D/"
                          "Dense. "
                          "Hint: put BatchNormalization before the ReLU.")
            continue
        factor, beta, mean = _bn_factors(layer)
        weights = [np.asarray(w, np.float64) for w in previous.weights]
        bias = weights.pop() if previous.config.get("use_bias", True) else np.zeros_like(mean)
        if previous.class_name == "SeparableConv2D":
            weights[1] = weights[1] * factor
        elif previous.class_name == "DepthwiseConv2D":
            weights[0] = weights[0] * factor[None, None, :, None]
        else:
            weights[0] = weights[0] * factor
        new_bias = (0.0 if beta is None else beta) + (bias - mean) * factor
        weights = [w.astype(np.float32) for w in weights + [new_bias]]
        layers[-1] = previous.replace(config={**previous.config, "use_bias": True},
                                      weights=weights)
    return spec.replace(layers=layers)


def swap_activation_and_maxpool(spec: ModelSpec, issues: list) -> ModelSpec:
    """ReLU > MaxPool equals MaxPool > ReLU (ReLU is increasing); Akida pools before activating."""
    layers = list(spec.layers)
    for i in range(1, len(layers)):
        if layers[i].class_name == "MaxPooling2D" and layers[i - 1].class_name == "ReLU":
            layers[i - 1], layers[i] = layers[i], layers[i - 1]
    return spec.replace(layers=layers)


def _same_pads(size: int, kernel: int, stride: int) -> tuple:
    """(before, after) zeros Keras 'same' adds on one axis."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pads(padding) -> list:
    """ZeroPadding2D's padding as [(top, bottom), (left, right)]."""
    if isinstance(padding, (int, np.integer)):
        return [(int(padding),) * 2] * 2
    return [(int(v),) * 2 if isinstance(v, (int, np.integer)) else tuple(int(u) for u in v)
            for v in padding]


def _chain_shapes(spec: ModelSpec, issues: list):
    """[input shape] + every layer's output shape, or None (reported) when not inferable."""
    if any(layer.class_name not in LAYER_KEYS for layer in spec.layers):
        return None  # unsupported layers were reported; shapes cannot be inferred
    try:
        return [tuple(spec.input_shape)] + output_shapes(spec)
    except (ValueError, TypeError) as err:
        issues.append(f"Model '{spec.name}': layer shapes cannot be inferred: {err}")
        return None


def fold_zero_padding(spec: ModelSpec, issues: list) -> ModelSpec:
    """ZeroPadding2D > Valid conv equals a 'same' conv when it pads exactly as 'same' would
    (keras.applications pads ((0, 1), (0, 1)) before stride-2 convs): fold it; else report."""
    if not any(layer.class_name == "ZeroPadding2D" for layer in spec.layers):
        return spec
    shapes = _chain_shapes(spec, issues)
    if shapes is None:
        return spec
    layers, fold = [], None
    for index, layer in enumerate(spec.layers):
        if fold is not None:
            layer, fold = layer.replace(config={**layer.config, "padding": "same"}), None
        elif layer.class_name == "ZeroPadding2D":
            conv = spec.layers[index + 1] if index + 1 < len(spec.layers) else None
            pads, size = _pads(layer.config.get("padding", 1)), shapes[index][:2]
            if conv is not None and conv.class_name in ("Conv2D", "SeparableConv2D") and \
                    conv.config.get("padding") == "valid" and len(size) == 2:
                kernel = np.broadcast_to(conv.config.get("kernel_size"), 2)
                strides = np.broadcast_to(conv.config.get("strides", 1), 2)
                same = [_same_pads(int(n), int(k), int(st))
                        for n, k, st in zip(size, kernel, strides)]
                if pads == same:
                    fold = layer
                    continue
                issues.append(f"Layer '{layer.name}' (ZeroPadding2D) pads {pads} but 'same' on "
                              f"'{conv.name}' pads {same}: Akida 1.0 layers only pad as 'same'. "
                              "Hint: remove it and use padding='same' on the convolution.")
            else:
                issues.append(f"Layer '{layer.name}' (ZeroPadding2D) is only supported right "
                              "before a Valid Conv2D/SeparableConv2D, as its 'same' padding.")
        layers.append(layer)
    return spec.replace(layers=layers)


def flatten_before_dense(spec: ModelSpec, issues: list) -> ModelSpec:
    """Dense needs a flat input: a Reshape to (N,) becomes a Flatten; a Dense on a 3-D input of
    1×1 spatial size gets a Flatten; any other non-flat Dense input is reported."""
    shapes = _chain_shapes(spec, issues)
    if shapes is None:
        return spec
    layers = []
    last_neural = max((i for i, lay in enumerate(spec.layers) if lay.class_name in NEURAL),
                      default=-1)
    for index, layer in enumerate(spec.layers):
        in_shape = shapes[index]
        if index > last_neural and layer.class_name in ("Reshape", "Flatten") and \
                _only_size_one_dims(in_shape, shapes[index + 1]):
            # after the last block: the output's layout, nothing Akida computes
            layers.append(LayerSpec("Reshape", layer.name,
                                    {"target_shape": tuple(shapes[index + 1])}))
            continue
        if layer.class_name == "Reshape":
            out_shape = shapes[index + 1]
            if len(out_shape) == 1:
                layer = LayerSpec("Flatten", layer.name, {})
            elif not _only_size_one_dims(in_shape, out_shape):
                issues.append(f"Layer '{layer.name}' (Reshape): {in_shape} -> {out_shape}; only "
                              "reshapes that add or remove size-1 dimensions are supported.")
        if layer.class_name == "Dense" and len(in_shape) != 1:
            if all(d == 1 for d in in_shape[:-1]):
                layers.append(LayerSpec("Flatten", f"{layer.name}_flatten", {}))
            else:
                issues.append(f"Layer '{layer.name}' (Dense): input shape {in_shape} is not flat "
                              "and Keras would apply it per position. Hint: add a Flatten before "
                              "it.")
        layers.append(layer)
    return spec.replace(layers=layers)


def _only_size_one_dims(in_shape, out_shape) -> bool:
    return [d for d in in_shape if d != 1] == [d for d in out_shape if d != 1]


def check_block_order(spec: ModelSpec, issues: list) -> ModelSpec:
    """Check the chain reads as Akida 1.0 blocks: neural [> MaxPool | > GAP] > ReLU, the last
    ReLU optional; Flatten only right before a Dense; Reshapes between blocks."""
    layers = spec.layers
    state, block_start = "start", None
    for index, layer in enumerate(layers):
        kind, name = layer.class_name, layer.name
        following = layers[index + 1] if index + 1 < len(layers) else None
        if kind in ("Flatten", "Reshape"):
            # A Reshape only adds/removes size-1 dims (checked by flatten_before_dense).
            if kind == "Reshape" and not any(lay.class_name in NEURAL
                                             for lay in layers[index + 1:]):
                continue  # the final output layout (flatten_before_dense made it a Reshape)
            if kind == "Flatten" and (following is None or following.class_name not in (
                    "Dense", "Flatten", "Reshape")):
                issues.append(f"Layer '{name}' ({kind}) is only supported right before a Dense.")
            if state in ("neural", "pool"):
                issues.append(f"Layers '{block_start}' and '{name}': an activation (ReLU) is "
                              "required after the neural layer before flattening.")
            continue
        if kind in NEURAL:
            if state in ("neural", "pool"):
                issues.append(f"An activation (ReLU) is required between '{block_start}' and "
                              f"'{name}': every Akida 1.0 layer but the last has one.")
            state, block_start = "neural", name
        elif kind in ("MaxPooling2D", "GlobalAveragePooling2D"):
            if state != "neural":
                hint = (" Hint: Akida 1.0 blocks are Conv > GlobalAveragePooling2D > ReLU; move "
                        "the pooling before the activation and retrain." if state == "relu"
                        else "")
                where = {"start": "at the model input", "relu": f"after the activation of "
                         f"'{block_start}'", "misplaced": "after another pooling",
                         "pool": "after another pooling"}[state]
                issues.append(f"Layer '{name}' ({kind}) must directly follow a convolution "
                              f"(found {where}).{hint}")
            # a misplaced pooling is one issue: whatever follows it is not blamed for it
            state = "pool" if state == "neural" else "misplaced"
        elif kind == "ReLU":
            if state not in ("neural", "pool", "misplaced"):
                issues.append(f"Layer '{name}' (ReLU) must follow a neural or pooling layer; two "
                              "activations in a row or an activation on the input are not "
                              "supported.")
            state = "relu"
        elif kind in ("Activation", "Softmax"):
            issues.append(f"Layer '{name}' ({kind}, {layer.config.get('activation', '')}) is not "
                          "supported inside the model.")
        elif kind in ("BatchNormalization", "Rescaling", "ZeroPadding2D") or \
                kind not in LAYER_KEYS:
            pass  # reported by fold_batchnorm / check_layers / fold_zero_padding
        else:
            issues.append(f"Layer '{name}' ({kind}) is not supported here.")
    return spec

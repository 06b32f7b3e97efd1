"""Sanitizing a float graph before Akida 2.0 quantization, as MetaTF's sanitizer does.

The transforms are ``graph -> graph`` functions run in the order of ``PIPELINE``; each reports
problems into one list so that ``quantize`` raises every issue at once.
"""
from __future__ import annotations

import keras
import numpy as np

from ..errors import QuantizationError
from .graph import Graph, IDENTITY, INPUT, NEURAL, Node, RELU_ACTIVATIONS, output_shapes
from .lut import LUT_ACTIVATIONS, LUT_CLASSES


def _rewire(graph: Graph, old: str, new: str) -> None:
    for node in graph.nodes:
        node.inbounds = [new if name == old else name for name in node.inbounds]


def _remove(graph: Graph, node: Node) -> None:
    graph.nodes.remove(node)
    _rewire(graph, node.name, node.inbounds[0])


def drop_identities(graph: Graph, issues: list) -> Graph:
    """Dropout-like layers and linear activations are the identity at inference."""
    for node in list(graph.nodes):
        linear = node.class_name == "Activation" and node.config.get("activation") == "linear"
        if node.class_name in IDENTITY or linear:
            _remove(graph, node)
    return graph


def split_fused_activations(graph: Graph, issues: list) -> Graph:
    """``Conv2D(activation='relu')`` becomes Conv2D > ReLU, ``Activation('relu')`` a ReLU;
    ``Conv2D(activation='gelu')`` (any LUT activation) becomes Conv2D > Activation('gelu')."""
    allowed = ", ".join(["relu", "relu6", "linear"] + sorted(LUT_ACTIVATIONS))
    for node in list(graph.nodes):
        activation = node.config.get("activation")
        if node.class_name == "Activation" and activation in RELU_ACTIVATIONS:
            node.class_name = "ReLU"
            node.config = {"name": node.name, "max_value": RELU_ACTIVATIONS[activation]}
        elif node.class_name in NEURAL and activation not in (None, "linear"):
            if activation not in RELU_ACTIVATIONS and activation not in LUT_ACTIVATIONS:
                issues.append(f"Layer '{node.name}' ({node.class_name}): activation="
                              f"{activation!r} is not supported; allowed: {allowed}.")
                continue
            node.config = {**node.config, "activation": "linear"}
            if activation in RELU_ACTIVATIONS:
                name = f"{node.name}_relu"
                split = Node("ReLU", name, {"name": name,
                                            "max_value": RELU_ACTIVATIONS[activation]},
                             [], [node.name])
            else:
                name = f"{node.name}_{LUT_ACTIVATIONS[activation]}"
                split = Node("Activation", name, {"name": name, "activation": activation}, [],
                             [node.name])
            _rewire(graph, node.name, split.name)
            graph.nodes.insert(graph.nodes.index(node) + 1, split)
        elif node.class_name == "Activation" and activation not in LUT_ACTIVATIONS:
            issues.append(f"Layer '{node.name}' (Activation): activation={activation!r} is not "
                          f"supported by the Akida 2.0 scheme here; allowed: {allowed} (a final "
                          "softmax stays in float after the Dequantizer).")
    return graph


def prelu_to_leaky_relu(graph: Graph, issues: list) -> Graph:
    """A PReLU whose alphas are all equal is a LeakyReLU: Akida 2.0 applies it through one LUT
    shared by every channel, so alphas that differ (per channel or per pixel) cannot be kept."""
    for node in [n for n in graph.nodes if n.class_name == "PReLU"]:
        alpha = np.asarray(node.weights[0], np.float64)
        low, high = float(alpha.min()), float(alpha.max())
        if low != high or low < 0:
            issues.append(
                f"Layer '{node.name}' (PReLU): alpha ranges over [{low:g}, {high:g}] "
                f"({alpha.size} values); Akida 2.0 applies it through one LUT shared by all "
                "channels, so allowed: a single alpha >= 0 (Keras' LeakyReLU takes no negative "
                "slope). Hint: use LeakyReLU(negative_slope=...) or PReLU(shared_axes=[1, 2, 3]) "
                "trained to one value.")
            continue
        node.class_name = "LeakyReLU"
        node.config = {"name": node.name, "negative_slope": low}
        node.weights = []
    return graph


def split_separable(graph: Graph, issues: list) -> Graph:
    """SeparableConv2D becomes DepthwiseConv2D (``<name>_dw``, no bias) > 1×1 Conv2D (``<name>``).

    MetaTF has no Akida 2.0 pattern for SeparableConv2D; the split is exact (the depthwise output
    is quantized like any block output) and maps onto two Akida 2.0 layers.
    """
    for node in list(graph.nodes):
        if node.class_name != "SeparableConv2D":
            continue
        config = node.config
        if config.get("depth_multiplier", 1) != 1:
            issues.append(f"Layer '{node.name}' (SeparableConv2D): depth_multiplier="
                          f"{config['depth_multiplier']}; allowed: 1.")
            continue
        dw_name = f"{node.name}_dw"
        depthwise = Node("DepthwiseConv2D", dw_name, {
            "name": dw_name, "kernel_size": config["kernel_size"], "strides": config["strides"],
            "padding": config["padding"], "use_bias": False,
            "dilation_rate": config.get("dilation_rate", (1, 1))}, [node.weights[0]],
            list(node.inbounds))
        pointwise = Node("Conv2D", node.name, {
            "name": node.name, "filters": config["filters"], "kernel_size": (1, 1),
            "use_bias": config.get("use_bias", True), "activation": config.get("activation")},
            node.weights[1:], [dw_name])
        index = graph.nodes.index(node)
        graph.nodes[index:index + 1] = [depthwise, pointwise]
    return graph


def fold_rescaling(graph: Graph, issues: list) -> Graph:
    """An input Rescaling with a scalar scale becomes the input scale; a scalar offset is allowed
    when a single Conv2D reads the rescaled input (quantize folds it into that convolution's
    bias and padding value, as MetaTF does)."""
    for node in [n for n in graph.nodes if n.class_name == "Rescaling"]:
        scale, offset = node.config.get("scale", 1.0), node.config.get("offset", 0.0)
        consumers = graph.consumers(node.name)
        offset_ok = np.all(np.asarray(offset) == 0) or (
            np.size(offset) == 1 and len(consumers) == 1 and consumers[0].class_name == "Conv2D")
        if node.inbounds != [INPUT] or np.size(scale) != 1 or not offset_ok or \
                float(np.ravel(scale)[0]) <= 0:
            issues.append(f"Layer '{node.name}' (Rescaling): only a first Rescaling with a "
                          f"positive scalar scale (and a scalar offset when one Conv2D follows) "
                          f"is supported (got scale={scale}, offset={offset}). Hint: feed inputs "
                          "in [0, 255] and rescale by a scalar.")
            continue
        graph.input_scale = float(np.ravel(scale)[0])
        graph.input_offset = float(np.ravel(offset)[0])
        _remove(graph, node)
    return graph


def fold_batchnorm(graph: Graph, issues: list) -> Graph:
    """BatchNormalization right after a neural layer (its only consumer) is folded into it."""
    for node in [n for n in graph.nodes if n.class_name == "BatchNormalization"]:
        producer = None if node.inbounds[0] == INPUT else graph.node(node.inbounds[0])
        if producer is None or producer.class_name not in NEURAL or \
                len(graph.consumers(producer.name)) != 1:
            issues.append(f"Layer '{node.name}' (BatchNormalization) does not follow a neural "
                          "layer with no other consumer; it cannot be folded. Hint: put it "
                          "right after the Conv2D/DepthwiseConv2D/Dense.")
            continue
        config, weights = node.config, list(node.weights)
        gamma = weights.pop(0) if config.get("scale", True) else 1.0
        beta = weights.pop(0) if config.get("center", True) else 0.0
        mean, variance = weights
        factor = np.asarray(gamma / np.sqrt(variance + config.get("epsilon", 1e-3)), np.float64)
        kernels = [np.asarray(w, np.float64) for w in producer.weights]
        bias = kernels.pop() if producer.config.get("use_bias", True) else np.zeros_like(mean)
        if producer.class_name == "DepthwiseConv2D":
            kernels[0] = kernels[0] * factor[None, None, :, None]
        elif producer.class_name == "Conv2DTranspose":
            kernels[0] = kernels[0] * factor[None, None, :, None]
        else:
            kernels[-1] = kernels[-1] * factor
        new_bias = beta + (bias - mean) * factor
        producer.weights = [w.astype(np.float32) for w in kernels + [new_bias]]
        producer.config = {**producer.config, "use_bias": True}
        _remove(graph, node)
    return graph


def swap_relu_maxpool(graph: Graph, issues: list) -> Graph:
    """ReLU > MaxPool2D equals MaxPool2D > ReLU (ReLU is increasing, and so is a LeakyReLU with a
    slope >= 0); Akida pools first."""
    for pool in [n for n in graph.nodes if n.class_name == "MaxPooling2D"]:
        if pool.inbounds[0] == INPUT:
            continue
        relu = graph.node(pool.inbounds[0])
        if relu.class_name not in ("ReLU", "LeakyReLU") or len(graph.consumers(relu.name)) != 1:
            continue
        _move_before(graph, relu, pool)
    return graph


def _flattens(node: Node) -> bool:
    return node.class_name == "Flatten" or (node.class_name == "Reshape" and
                                            len(node.config.get("target_shape", ())) == 1)


def swap_flatten_activation(graph: Graph, issues: list) -> Graph:
    """Flatten (or a flattening Reshape) > ReLU/LUT activation equals the activation then the
    Flatten (both act element by element; a Flatten only relabels): Akida 2.0 applies the
    activation inside the neural layer before it, or in an identity 1×1 Conv2D on the (H, W, C)
    tensor, never on a flat one. As MetaTF's "Dense [> ReLU]" blocks, a Dense reading the
    Flatten then takes the activated tensor."""
    for act in [n for n in graph.nodes if n.class_name in ("ReLU",) + LUT_CLASSES]:
        if act.inbounds[0] == INPUT:
            continue
        flatten = graph.node(act.inbounds[0])
        if not _flattens(flatten) or len(graph.consumers(flatten.name)) != 1:
            continue
        _move_before(graph, flatten, act)
    return graph


def _move_before(graph: Graph, upstream: Node, node: Node) -> None:
    """``node`` (the only reader of ``upstream``) moves in front of it: ``node`` reads what
    ``upstream`` read, ``upstream`` reads ``node``, and ``upstream``'s readers now read it."""
    node.inbounds, upstream.inbounds = list(upstream.inbounds), [node.name]
    _rewire_except(graph, node.name, upstream.name, keep=upstream)
    i, j = graph.nodes.index(upstream), graph.nodes.index(node)
    graph.nodes[i], graph.nodes[j] = node, upstream


def _rewire_except(graph, old, new, keep):
    for node in graph.nodes:
        if node is not keep:
            node.inbounds = [new if name == old else name for name in node.inbounds]


def _needs_identity_conv(graph: Graph, node: Node) -> bool:
    """A ReLU/LUT activation/MaxPool2D/GAP whose input is not the single-consumer output of a
    block layer."""
    if node.class_name not in ("ReLU", "MaxPooling2D", "GlobalAveragePooling2D") + LUT_CLASSES:
        return False
    source = node.inbounds[0]
    producer = None if source == INPUT else graph.node(source)
    continuing = ("Conv2D", "DepthwiseConv2D", "Conv2DTranspose", "Dense", "MaxPooling2D", "ReLU")
    if node.class_name in LUT_CLASSES:  # a LUT takes the block's sums, never a ReLU's
        continuing = continuing[:-1]
    elif node.class_name == "GlobalAveragePooling2D":
        continuing = continuing + LUT_CLASSES
    return not (producer is not None and producer.class_name in continuing and
                len(graph.consumers(source)) == 1)


def insert_identity_convs(graph: Graph, issues: list, channels: dict) -> Graph:
    """A ReLU, LUT activation, MaxPool2D or GlobalAveragePooling2D that does not follow a neural
    layer (e.g. after an Add) gets an identity 1×1 Conv2D before it
    (``<producer>_identity_conv``), as MetaTF does: Akida 2.0 applies them inside a neural
    layer."""
    for node in list(graph.nodes):
        if not _needs_identity_conv(graph, node):
            continue
        source = node.inbounds[0]
        width = channels[source]
        name = f"{source}_identity_conv" if source != INPUT else "input_identity_conv"
        conv = Node("Conv2D", name, {"name": name, "filters": width, "kernel_size": (1, 1),
                                     "use_bias": False},
                    [np.eye(width, dtype=np.float32)[None, None]], [source])
        node.inbounds = [name if n == source else n for n in node.inbounds]
        graph.nodes.insert(graph.nodes.index(node), conv)
    return graph


def pad_even_kernels(graph: Graph, issues: list) -> Graph:
    """An even Conv2D/DepthwiseConv2D kernel with stride 1 and 'same' padding equals the odd kernel
    one larger with a leading zero row and column (TF pads the extra pixel after): Akida 2.0
    kernels are odd. As MetaTF's sanitizer does."""
    for node in graph.nodes:
        if node.class_name not in ("Conv2D", "DepthwiseConv2D") or not node.weights:
            continue
        kernel = tuple(node.config.get("kernel_size", (1, 1)))
        if kernel[0] % 2 or kernel[0] != kernel[1] or tuple(node.config.get(
                "strides", (1, 1))) != (1, 1) or node.config.get("padding") != "same" or \
                tuple(node.config.get("dilation_rate", (1, 1))) != (1, 1):
            continue
        weights = list(node.weights)
        weights[0] = np.pad(weights[0], ((1, 0), (1, 0), (0, 0), (0, 0)))
        node.weights = weights
        node.config = {**node.config, "kernel_size": (kernel[0] + 1, kernel[1] + 1)}
    return graph


def split_strided_depthwise(graph: Graph, issues: list) -> Graph:
    """DepthwiseConv2D k5/k7 stride 2 'same' (Akida 2.0 strides only k3 depthwise kernels)
    becomes the same kernel at stride 1 then an identity 3×3 DepthwiseConv2D at stride 2
    (``<name>_stride``), as MetaTF does: both 'same' paddings centre the kept pixels alike."""
    for node in list(graph.nodes):
        kernel = tuple(node.config.get("kernel_size", (1, 1)))
        if node.class_name != "DepthwiseConv2D" or kernel[0] not in (5, 7) or \
                tuple(node.config.get("strides", (1, 1))) != (2, 2) or \
                node.config.get("padding") != "same":
            continue
        channels = node.weights[0].shape[2]
        name = f"{node.name}_stride"
        identity = np.zeros((3, 3, channels, 1), np.float32)
        identity[1, 1] = 1.0
        stride = Node("DepthwiseConv2D", name, {"name": name, "kernel_size": (3, 3),
                                                "strides": (2, 2), "padding": "same",
                                                "use_bias": False}, [identity], [node.name])
        node.config = {**node.config, "strides": (1, 1)}
        _rewire(graph, node.name, name)
        stride.inbounds = [node.name]
        graph.nodes.insert(graph.nodes.index(node) + 1, stride)
    return graph


def split_concatenations(graph: Graph, issues: list) -> Graph:
    """A Concatenate of n > 2 tensors becomes a chain of two-input Concatenates (Akida 2.0 takes
    two inbounds; channel order kept)."""
    for node in list(graph.nodes):
        if node.class_name != "Concatenate" or len(node.inbounds) <= 2:
            continue
        index = graph.nodes.index(node)
        previous = node.inbounds[0]
        for i, source in enumerate(node.inbounds[1:-1]):
            name = f"{node.name}_part{i + 1}"
            graph.nodes.insert(index + i, Node("Concatenate", name, {"name": name, "axis": -1},
                                               [], [previous, source]))
            previous = name
        node.inbounds = [previous, node.inbounds[-1]]
    return graph


def fold_zero_padding(graph: Graph, issues: list) -> Graph:
    """ZeroPadding2D before a 'valid' Conv2D/DepthwiseConv2D that pads exactly as 'same' would
    (keras.applications pads ((0, 1), (0, 1)) before stride-2 convolutions) becomes 'same'."""
    paddings = [n for n in graph.nodes if n.class_name == "ZeroPadding2D"]
    if not paddings:
        return graph
    shapes = {INPUT: graph.input_shape, **output_shapes(graph)}
    for node in paddings:
        consumers = graph.consumers(node.name)
        conv = consumers[0] if len(consumers) == 1 else None
        pads = np.asarray(node.config.get("padding", ((1, 1), (1, 1))), dtype=int)
        pads = np.broadcast_to(pads.reshape(-1, 1) if pads.size == 2 else pads, (2, 2))
        size = shapes[node.inbounds[0]]
        same = None
        if conv is not None and conv.class_name in ("Conv2D", "DepthwiseConv2D") and \
                conv.config.get("padding") == "valid":
            kernel, strides = conv.config["kernel_size"], conv.config.get("strides", (1, 1))
            same = []
            for axis in (0, 1):
                out = -(-size[axis] // strides[axis])
                total = max((out - 1) * strides[axis] + kernel[axis] - size[axis], 0)
                same.append((total // 2, total - total // 2))
        if same is None or [tuple(p) for p in pads] != same:
            issues.append(f"Layer '{node.name}' (ZeroPadding2D): padding {pads.tolist()} is not "
                          "the 'same' padding of a following 'valid' Conv2D/DepthwiseConv2D; it "
                          "cannot be folded. Hint: use padding='same' in the convolution.")
            continue
        conv.config = {**conv.config, "padding": "same"}
        _remove(graph, node)
    return graph


#: The order matters: identities first (so neighbours are real layers), then activations
#: (ReLU and LeakyReLU nodes must exist before swapping), separable split before BN folding (BN
#: then follows the pointwise Conv2D), BN folding before the ReLU/MaxPool swap (BN must be
#: adjacent); the Flatten/activation swap once ReLU nodes exist (split activations); kernel
#: padding after BN folding (it pads the folded kernel); the Concatenate split last.
PIPELINE = [drop_identities, split_fused_activations, prelu_to_leaky_relu,
            split_separable, fold_rescaling, fold_batchnorm, swap_flatten_activation,
            swap_relu_maxpool, fold_zero_padding,
            pad_even_kernels, split_strided_depthwise, split_concatenations]


def sanitize(graph: Graph) -> Graph:
    """Run PIPELINE then insert identity convolutions; raise every issue at once.

    Raises:
        QuantizationError: with ``.issues`` naming each offending layer.
    """
    issues: list = []
    for transform in PIPELINE:
        graph = transform(graph, issues)
    if issues:
        raise QuantizationError(list(dict.fromkeys(issues)))
    if not any(_needs_identity_conv(graph, node) for node in graph.nodes):
        return graph  # no shapes needed: skip building a model for them
    channels = {INPUT: graph.input_shape[-1]}
    for name, shape in output_shapes(graph).items():
        channels[name] = shape[-1]
    return insert_identity_convs(graph, issues, channels)

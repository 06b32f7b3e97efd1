"""Turning the hardware constraints table into Issues (never raises for a well-formed model).

Every number comes from the target's table (`akida_core.hardware`); this module only compares and
words the messages: layer, rule, value found, values allowed, fix. Each issue gets its level: a
value the Akida 1.0 layers cannot express (akida_core's layer constructors refuse it, or MetaTF's
converter does) is CONVERT; a value they express but the target's NPs do not map (the rules of
`akida_core.mapping_rules`, same table) is HARDWARE.
"""
from __future__ import annotations

import math

from akida_core import LayerType, Padding, PoolType
from akida_core.errors import LayerParameterError
from akida_core.layers.base import check_kernel, check_pooling

from .errors import CONVERT, HARDWARE, Issue
from .keras_model import KIND_NAMES, NEURAL_KINDS


def _pair(value):
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value) if len(value) == 2 else tuple(value)
    return (int(value), int(value))


def _fmt(values):
    return ", ".join(str(getattr(v, "name", v)) for v in values)


class _Checker:
    """Collects the issues of one block against one LayerLimits row."""

    def __init__(self, block, row, target):
        self.block, self.row, self.target, self.issues = block, row, target, []

    def _label(self, info):
        """`'name' (Kind)` for the block's neural layer, `'name' (ReLU of the Kind block)` for
        the pooling or activation that the Akida layer absorbs."""
        kind = self.block.produces.name
        if info is self.block.get("neural") or info.kind in NEURAL_KINDS:
            return f"Layer '{info.name}' ({kind})"
        role = KIND_NAMES.get(info.kind, info.class_name)
        return f"Layer '{info.name}' ({role} of the {kind} block)"

    def add(self, info, rule, what, found, allowed, hint, level=CONVERT):
        where = f"on {self.target.name}" if level == CONVERT else \
            f"in hardware on {self.target.name} (it converts; runs in software there)"
        self.issues.append(Issue(info.name, rule, f"{self._label(info)}: {what}={found} "
                                 f"is not supported {where}; supported: "
                                 f"{allowed if isinstance(allowed, str) else _fmt(allowed)}.",
                                 found, allowed, hint, level))

    def fact(self, info, rule, message, found, allowed, hint, level=CONVERT):
        self.issues.append(Issue(info.name, rule, f"{self._label(info)}: {message}", found,
                                 allowed, hint, level))


def _expressible(check, *args) -> bool:
    """Whether an akida_core layer constructor check accepts these values (the Akida 1.0 layer
    set expresses them, whatever the device)."""
    try:
        check("", *args)
    except LayerParameterError:
        return False
    return True


def akida_padding(neural) -> Padding:
    """The Akida padding of a convolution: a 1x1 kernel is the same in Valid and Same."""
    if _pair(neural.get("kernel_size", 1)) == (1, 1):
        return Padding.Same
    return Padding.Same if neural.get("padding", "valid") == "same" else Padding.Valid


def _pool_out(size, pool, stride, padding):
    if padding == Padding.Same:
        return math.ceil(size / stride)
    return (size - pool) // stride + 1


def _check_conv(c, bits):
    neural, row = c.block.get("neural"), c.row
    kernel = _pair(neural.get("kernel_size", 1))
    strides = _pair(neural.get("strides", 1))
    # Kernels the Akida 1.0 layers take (odd, stride <= kernel) convert whatever the NP accepts.
    level = HARDWARE if _expressible(check_kernel, kernel, strides) else CONVERT
    if neural.get("data_format", "channels_last") != "channels_last":
        c.add(neural, "data_format", "data_format", neural.get("data_format"), ["channels_last"],
              "build the model with data_format='channels_last'.")
    if _pair(neural.get("dilation_rate", 1)) != (1, 1):
        c.add(neural, "dilation", "dilation_rate", _pair(neural.get("dilation_rate")), [(1, 1)],
              "use dilation_rate=1.")
    if row.square_kernel and kernel[0] != kernel[1]:
        c.add(neural, "kernel_square", "kernel_size", kernel, "square kernels",
              "use a square kernel (e.g. 3x3).", HARDWARE)
    for k in sorted(set(kernel) - set(row.kernel_sizes)):
        hint = f"use a kernel size in {_fmt(row.kernel_sizes)}."
        if k == 1 and c.block.produces == LayerType.InputConvolutional:
            hint = (f"use a kernel size in {_fmt(row.kernel_sizes)}, or feed <= 4-bit inputs so "
                    "the model starts with InputData and this 1x1 Conv2D becomes Convolutional.")
        c.add(neural, "kernel_size", "kernel_size", k, row.kernel_sizes, hint,
              HARDWARE if k % 2 == 1 else CONVERT)
    if not row.independent_strides and strides[0] != strides[1]:
        c.add(neural, "stride_square", "strides", strides, "equal strides on both axes",
              "use the same stride on both axes.", HARDWARE)
    for s in sorted(set(strides)):
        if s not in row.strides:
            c.add(neural, "stride", "strides", s, row.strides,
                  "use stride 1 and a MaxPooling2D(2) to downsample."
                  if s > max(row.strides) else f"use a stride in {_fmt(row.strides)}.", level)
        elif s in row.kernel_sizes_for_stride and s <= max(kernel) and \
                any(k not in row.allowed_kernels_for_stride(s) for k in kernel):
            c.add(neural, "stride_kernel", f"strides={s} with kernel_size", kernel[0],
                  row.allowed_kernels_for_stride(s),
                  f"stride {s} needs a {_fmt(row.allowed_kernels_for_stride(s))} kernel; use "
                  "stride 1 and a MaxPooling2D(2) instead.", level)
        if s > max(kernel):
            c.add(neural, "stride_gt_kernel", "strides", s, f"at most the kernel size {max(kernel)}",
                  "use a stride no larger than the kernel.")
    padding = akida_padding(neural)
    if padding not in row.paddings:
        c.add(neural, "padding", "padding", neural.get("padding"),
              [p.name.lower() for p in row.paddings],
              f"use padding='same' to map it in hardware (the {row.np_type} only pads as "
              "'same'; only 1x1 kernels are identical in both modes).", HARDWARE)
    filters = neural.get("filters")
    if row.max_filters is not None and filters is not None and filters > row.max_filters:
        c.add(neural, "max_filters", "filters", filters, f"1 to {row.max_filters}",
              f"use at most {row.max_filters} filters in this layer.", HARDWARE)
    shape = neural.input_shape
    if shape is not None and len(shape) == 3:
        cin = shape[-1]
        if row.input_channels and cin not in row.input_channels:
            c.add(neural, "input_channels", "input channels", cin, row.input_channels,
                  "convert the input to grayscale (1) or RGB (3) channels.")
        if row.max_input_width is not None and shape[1] is not None \
                and shape[1] > row.max_input_width:
            c.add(neural, "input_width", "input width", shape[1], f"at most {row.max_input_width}",
                  f"resize the input to a width of at most {row.max_input_width}.", HARDWARE)
        wbits = bits.get("weights_bits")
        limit = row.max_input_channels(kernel[0], wbits) if wbits else None
        if limit is not None and cin is not None and cin > limit:
            c.add(neural, "filter_memory", f"input channels (kernel {kernel[0]}, {wbits}-bit)",
                  cin, f"at most {limit}", "use fewer input channels, a smaller kernel or "
                  "fewer weight bits (the filter does not fit one CNP's memory).", HARDWARE)
    if c.block.produces == LayerType.SeparableConvolutional and \
            neural.get("depth_multiplier", 1) != 1:
        c.add(neural, "depth_multiplier", "depth_multiplier", neural.get("depth_multiplier"),
              [1], "use depth_multiplier=1.")
    _check_pool(c, padding)


def _check_pool(c, conv_padding):
    pool, row, neural = c.block.get("pool"), c.row, c.block.get("neural")
    if pool is None:
        return
    pool_type = PoolType.Max if pool.kind == "maxpool" else PoolType.Average
    if pool_type not in row.pool_types:
        c.add(pool, "pool_type", "pooling", pool.class_name,
              [p.name for p in row.pool_types if p != PoolType.NoPooling],
              "use MaxPooling2D here (global average pooling needs a Convolutional or "
              "SeparableConvolutional layer)." if pool_type == PoolType.Average
              else "remove the pooling.")
        return
    conv_out = neural.output_shape
    if pool_type == PoolType.Average:
        if conv_out is None or len(conv_out) != 3:
            return
        h, w = conv_out[0], conv_out[1]
        if row.gap_max_area is not None and h * w > row.gap_max_area:
            c.add(pool, "gap_area", "GlobalAveragePooling2D input H*W", h * w,
                  f"at most {row.gap_max_area}", "downsample before the global average pooling "
                  "(e.g. MaxPooling2D in an earlier block) or replace GlobalAveragePooling2D by "
                  "MaxPooling2D.")
        if row.gap_max_height is not None and h > row.gap_max_height:
            c.add(pool, "gap_height", "GlobalAveragePooling2D input height", h,
                  f"at most {row.gap_max_height}", "downsample before the global average pooling.",
                  HARDWARE)
        if row.gap_min_rows is not None and h < row.gap_min_rows:
            c.add(pool, "gap_rows", "GlobalAveragePooling2D input height", h,
                  f"at least {row.gap_min_rows}", "apply the global average pooling one block "
                  "earlier, or use Flatten > Dense.", HARDWARE)
        return
    size, stride = _pair(pool.get("pool_size", 2)), _pair(pool.get("strides") or pool.get("pool_size", 2))
    # Pools the Akida 1.0 layers take (positive, stride <= size) convert whatever the NP accepts.
    level = HARDWARE if _expressible(check_pooling, PoolType.Max, size, stride) else CONVERT
    for p in sorted(set(size)):
        if p not in row.max_pool_sizes:
            c.add(pool, "pool_size", "pool_size", p, row.max_pool_sizes,
                  "use MaxPooling2D(2) (twice for a 4x downsampling, in two blocks).", level)
    if row.square_kernel and c.block.produces != LayerType.InputConvolutional and size[0] != size[1]:
        c.add(pool, "pool_square", "pool_size", size, "square pools", "use a square pool size.",
              level)
    for p, s in sorted(set(zip(size, stride))):
        bad = s != p if row.max_pool_stride_rule == "equal" else s > p
        if bad:
            c.add(pool, "pool_stride", "pool strides", s,
                  f"{'equal to' if row.max_pool_stride_rule == 'equal' else 'at most'} the pool "
                  f"size {p}", f"use strides={p} (or leave strides unset).",
                  HARDWARE if s <= p else CONVERT)
    if pool.get("data_format", "channels_last") != "channels_last":
        c.add(pool, "data_format", "data_format", pool.get("data_format"), ["channels_last"],
              "use data_format='channels_last'.")
    pool_padding = Padding.Same if pool.get("padding", "valid") == "same" else Padding.Valid
    if pool_padding != conv_padding and conv_out is not None and len(conv_out) == 3:
        akida = tuple(_pool_out(n, p, s, conv_padding) for n, p, s in zip(conv_out, size, stride))
        keras_shape = tuple(pool.output_shape[:2]) if pool.output_shape else None
        if keras_shape != akida:
            c.fact(pool, "pool_padding", f"MaxPooling2D padding='{pool.get('padding')}' gives an "
                   f"output {keras_shape}, but Akida pools with the convolution's padding "
                   f"('{conv_padding.name.lower()}'), giving {akida}.", pool.get("padding"),
                   [conv_padding.name.lower()],
                   f"use padding='{conv_padding.name.lower()}' on the MaxPooling2D.")


def _check_dense(c, bits):
    neural, row = c.block.get("neural"), c.row
    flatten = c.block.get("flatten")
    shape = neural.input_shape
    # A Dense on a (1, 1, C) input sees every value: the same as after a Flatten.
    if flatten is None and shape is not None and len(shape) > 1 and \
            any(d != 1 for d in shape[:-1]):
        c.fact(neural, "dense_rank", f"Dense on a {tuple(shape)} input acts on the last axis "
               "only, while Akida's FullyConnected uses every input value.", tuple(shape),
               "a 1-D input", "add a Flatten layer before the Dense.")
    if flatten is not None and flatten.kind == "reshape":
        target = tuple(flatten.get("target_shape", ()))
        if len(target) != 1:
            c.fact(flatten, "reshape", f"Reshape to {target} before a Dense is not a flatten.",
                   target, "a 1-D target shape", "use Flatten() instead.")
    src = flatten.input_shape if flatten is not None else shape
    size = math.prod(d for d in src if d is not None) if src else None
    if row.max_inputs is not None and size is not None and size > row.max_inputs:
        c.add(neural, "max_inputs", "flattened input size", size, f"at most {row.max_inputs}",
              "reduce the spatial size (pooling) or the channels before the Dense layer.",
              HARDWARE)
    units = neural.get("units")
    if row.max_filters is not None and units is not None and units > row.max_filters:
        c.add(neural, "max_filters", "units", units, f"at most {row.max_filters}",
              f"use at most {row.max_filters} units.", HARDWARE)


def _check_fused(c, is_last):
    """Issues of an activation fused in the neural layer (`Conv2D(..., activation="relu6")`);
    returns whether the block has an activation from it (quantize() splits a fused ReLU into
    a ReLU layer)."""
    neural, act, pool = c.block.get("neural"), c.block.get("act"), c.block.get("pool")
    fused = neural.get("activation", "linear")
    fused = fused if isinstance(fused, str) or fused is None else str(fused)
    if fused in (None, "linear"):
        return False
    if fused not in ("relu", "relu6"):
        if is_last and act is None:  # a final softmax/sigmoid is applied on the host
            return False
        c.fact(neural, "fused_activation", f"activation='{fused}' is not supported inside "
               "the model; Akida 1.0 activations are bounded ReLUs.", fused,
               ["linear", "relu6"], "use activation=None and a ReLU(max_value=6) layer, or "
               "move this activation to the end of the model.")
        return True  # reported here: no second "activation required" issue
    if act is not None:
        c.fact(neural, "double_activation", f"activation='{fused}' is followed by the ReLU "
               f"'{act.name}': two activations in one block.", fused, ["linear"],
               "remove one of the two activations.")
    elif pool is not None and pool.kind == "gap":
        c.fact(pool, "gap_after_activation", f"activation='{fused}' of '{neural.name}' is "
               "applied before the GlobalAveragePooling2D; Akida sums the potentials before its "
               "activation (different results).", "activation before pooling",
               "pooling before the activation", "put pooling before the activation: use "
               "activation=None and a ReLU(max_value=6) after the GlobalAveragePooling2D.")
    elif fused == "relu":
        c.fact(neural, "relu_unbounded", "activation='relu' is an unbounded ReLU; Akida 1.0 "
               "activations saturate, so MetaTF refuses it (quantizeml.quantize would bound it "
               "at the calibrated range, with a warning).", "relu", ["relu6"],
               "bound the ReLU with max_value: activation='relu6' or a ReLU(max_value=6) layer.")
    return True


def _check_common(c, bits, is_last):
    neural, row, act = c.block.get("neural"), c.row, c.block.get("act")
    has_act = _check_fused(c, is_last) or act is not None
    if not has_act and not is_last:
        c.fact(neural, "activation_required", "an activation (ReLU) is required between two "
               "neural layers: Akida layers only accept unsigned activations as input.",
               "no activation", ["ReLU"], f"add a ReLU(max_value=6) after '{neural.name}'.")
    if not has_act and row.activation_required and is_last:
        c.fact(neural, "activation_required", f"an activation is required to map this layer on "
               f"the {row.np_type}.", "no activation", ["ReLU"],
               f"add a ReLU(max_value=6) after '{neural.name}'.", HARDWARE)
    if act is not None:
        # Activation("relu") has no max_value either; a QuantizedReLU is bounded by its levels.
        if act.get("max_value") is None and not hasattr(act.layer, "activation_bits"):
            c.fact(act, "relu_unbounded", "an unbounded ReLU; Akida 1.0 activations saturate, "
                   "so MetaTF refuses it (quantizeml.quantize would bound it at the calibrated "
                   "range, with a warning).", "max_value=None", "a finite max_value",
                   "bound the ReLU with max_value (e.g. ReLU(max_value=6)).")
        if act.get("negative_slope", 0) not in (0, 0.0, None):
            c.fact(act, "relu_slope", f"negative_slope={act.get('negative_slope')} is not "
                   "supported.", act.get("negative_slope"), [0], "use negative_slope=0.")
        if act.get("threshold", 0) not in (0, 0.0, None):
            c.fact(act, "relu_threshold", f"threshold={act.get('threshold')} is not supported.",
                   act.get("threshold"), [0], "use threshold=0 (fold it into the bias).")
    pool = c.block.get("pool")
    for role in ("bn", "bn_after_pool"):
        bn = c.block.get(role)
        if bn is not None and role == "bn_after_pool" and pool is not None \
                and pool.kind == "maxpool" and bn.layer is not None and bn.get("scale", True):
            gamma = bn.layer.get_weights()[0] if bn.layer.get_weights() else None
            if gamma is not None and (gamma <= 0).any():
                c.fact(bn, "bn_gamma", "BatchNormalization after MaxPooling2D has gammas <= 0 "
                       "and cannot be moved before the pooling.", "gamma <= 0", "gamma > 0",
                       "put the BatchNormalization before the pooling.")
    for key, allowed in (("weights_bits", row.weights_bits), ("act_bits", row.act_bits),
                         ("input_bits", row.input_bits)):
        value = bits.get(key)
        if key == "act_bits" and not has_act:
            continue
        if value is not None and allowed and value not in allowed:
            c.add(neural, key, key, value, allowed, f"quantize this layer with {key.split('_')[0]}"
                  f" bits in {_fmt(allowed)}.")


def _check_pool_successor(c, next_block):
    """A max-pooling layer cannot end a hardware sequence: the table row names the NPs that may
    follow it (the same rule akida_core.mapping applies)."""
    pool, row = c.block.get("pool"), c.row
    if pool is None or pool.kind != "maxpool":
        return
    next_row = c.target.limits(next_block.produces) if next_block is not None else None
    next_np = next_row.np_type if next_row is not None else None
    if row.max_pool_successor_ok(next_np):
        return
    allowed = f"followed by a layer on a {_fmt(row.max_pool_successor_nps)}"
    if next_block is None:
        c.fact(pool, "pool_last", f"max pooling in the last layer of the model cannot be mapped "
               f"in hardware on {c.target.name}: a max-pooling layer cannot end a sequence (it "
               "converts; the default mapping runs it in software).", "last layer", allowed,
               "move the MaxPooling2D to an earlier block or use GlobalAveragePooling2D.",
               HARDWARE)
        return
    c.fact(pool, "pool_successor", f"max pooling followed by '{next_block.name}' "
           f"({next_block.produces.name}, on an {next_np}) cannot be mapped in hardware on "
           f"{c.target.name}: a max-pooling layer cannot end a sequence and must be {allowed} "
           "(it converts; the default mapping runs this layer in software).",
           f"followed by {next_np}", allowed, "move the MaxPooling2D to an earlier "
           "convolution, or add a Conv2D after it (before the Flatten > Dense).", HARDWARE)


def check_blocks(split, target, bits_of) -> list:
    """Returns the table issues of every block of a split model.

    Args:
        split: a `match.Split`.
        target: the HardwareTarget.
        bits_of: function `block -> dict` with optional keys weights_bits, act_bits, input_bits.

    Returns:
        A list of Issues (empty when every block fits the target).
    """
    issues = []
    layer_blocks = [b for b in split.blocks if b.produces != LayerType.InputData]
    for i, block in enumerate(layer_blocks):
        row = target.limits(block.produces)
        neural = block.get("neural")
        if row is None:
            issues.append(Issue(neural.name, "layer_kind", f"Layer '{neural.name}': "
                                f"{block.produces.name} is not supported on {target.name}.",
                                block.produces.name, _fmt(target.layers), "use another layer."))
            continue
        c = _Checker(block, row, target)
        bits = bits_of(block)
        if block.produces == LayerType.FullyConnected:
            _check_dense(c, bits)
        else:
            _check_conv(c, bits)
        _check_common(c, bits, is_last=(i == len(layer_blocks) - 1))
        _check_pool_successor(c, layer_blocks[i + 1] if i + 1 < len(layer_blocks) else None)
        if i > 0:
            prev_row = target.limits(layer_blocks[i - 1].produces)
            pair = (prev_row.np_type if prev_row else "", row.np_type)
            if pair in target.forbidden_successions:
                c.fact(neural, "np_succession", f"a layer on an {pair[0]} "
                       f"('{layer_blocks[i - 1].name}') cannot be directly followed by a layer on "
                       f"a {pair[1]} on {target.name}.", f"{pair[0]} > {pair[1]}",
                       "CNP layers before FNP layers",
                       "move the Dense layers after the convolutions.", HARDWARE)
        issues += c.issues
    return issues

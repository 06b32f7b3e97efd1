"""Integer values of a matched block, read through quantizeml's export contract, plus their checks.

`quantizeml.export.block_parameters` is the single source of the block's integers (the same tensors
the quantized Keras layers compute with); this module only changes layouts (kernel flip, Dense row
permutation) and checks that the values fit the target's registers.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import numpy as np

from akida_core import Padding, PoolType

from .checks import akida_padding
from .errors import CONVERT, HARDWARE, Issue

#: Akida's act_step register has 4 fractional bits: the chip computes with floor(act_step * 16) / 16
#: (akida-layers.md, "Registers and saturation").
ACT_STEP_FRACTION = 16


@dataclasses.dataclass(frozen=True)
class BuildContext:
    """What a build function needs beyond its block.

    Attributes:
        target: the HardwareTarget.
        is_last: whether the block is the model's last Akida layer.
        dequantizer: the model's Dequantizer layer (used when the last block has no activation).
        input_bits: bits of the model input integers (InputQuantizer).
        input_shape: the model input shape without batch.
    """

    target: Any
    is_last: bool
    dequantizer: Any
    input_bits: int
    input_shape: tuple


def block_integers(block, context: BuildContext) -> dict:
    """Returns quantizeml's `block_parameters` for a matched block (threshold, act_step, weights)."""
    from quantizeml.export import block_parameters

    def layer(role):
        info = block.get(role)
        return info.layer if info is not None else None

    act = layer("act")
    return block_parameters(layer("neural"), layer("pool"), act,
                            context.dequantizer if act is None and context.is_last else None)


def flip_kernel(weights) -> np.ndarray:
    """Flips a Keras cross-correlation kernel on both spatial axes (Akida convolves)."""
    return np.ascontiguousarray(np.asarray(weights)[::-1, ::-1]).astype(np.int8)


def dense_weights(weights, input_dims) -> np.ndarray:
    """Permutes Keras Dense rows (row-major h, w, c) to Akida's column-major flatten order.

    Args:
        weights: int8 (features, units) Keras kernel.
        input_dims: (H, W, C) of the Akida FullyConnected input.

    Returns:
        int8 (1, 1, features, units) with row `c*H*W + w*H + h` for input element (h, w, c).
    """
    h, w, c = input_dims
    units = weights.shape[-1]
    grid = np.asarray(weights).reshape(h, w, c, units).transpose(2, 1, 0, 3)
    return np.ascontiguousarray(grid.reshape(1, 1, h * w * c, units)).astype(np.int8)


def conv_arguments(block, params) -> dict:
    """Akida constructor arguments shared by the three convolutional kinds."""
    neural = block.get("neural")
    kwargs = dict(kernel_size=tuple(int(k) for k in neural.get("kernel_size")),
                  filters=int(neural.get("filters")), name=neural.name,
                  padding=akida_padding(neural),
                  kernel_stride=tuple(int(s) for s in neural.get("strides")),
                  weights_bits=int(params["weight_bits"]))
    kwargs.update(pool_arguments(params))
    kwargs.update(activation_arguments(params))
    return kwargs


def pool_arguments(params) -> dict:
    """Akida pool_type / pool_size / pool_stride of a block."""
    if params["pool_type"] == "max":
        return dict(pool_type=PoolType.Max, pool_size=tuple(params["pool_size"]),
                    pool_stride=tuple(params["pool_stride"]))
    if params["pool_type"] == "global_average":
        return dict(pool_type=PoolType.Average)
    return dict(pool_type=PoolType.NoPooling)


def activation_arguments(params) -> dict:
    """Akida activation / act_bits of a block (act_bits is irrelevant without activation)."""
    if params["activation"]:
        return dict(activation=True, act_bits=int(params["act_bits"]))
    return dict(activation=False, act_bits=1)


def set_neurons(layer, params) -> None:
    """Assigns the per-neuron threshold and act_step of a built layer."""
    layer.variables["threshold"] = np.asarray(params["threshold"], np.int32)
    layer.variables["act_step"] = np.asarray(params["act_step"], np.float32)


def value_issues(block, params, row, target) -> list:
    """Issues of integer values that do not fit the target's registers (never clamps silently).

    Args:
        block: the matched block.
        params: its `block_integers`.
        row: the LayerLimits of the produced kind.
        target: the HardwareTarget.

    Returns:
        A list of Issues: threshold and act_step register ranges (HARDWARE: akida_core runs them
        exactly in software, the NP registers cannot hold them), act_step below 1/16 or off the
        1/16 grid (CONVERT: the Akida model would not compute what the Keras model computes).
    """
    name, kind, issues = block.name, block.produces.name, []
    threshold = np.asarray(params["threshold"], np.int64)
    rng = row.threshold_range
    if rng is not None and threshold.size and (threshold.min() < rng[0]
                                               or threshold.max() > rng[1]):
        bad = int(threshold.max() if threshold.max() > rng[1] else threshold.min())
        issues.append(Issue(name, "threshold_range",
                            f"Layer '{name}' ({kind}): threshold={bad} does not fit the "
                            f"{row.threshold_bits}-bit signed threshold register of the "
                            f"{row.np_type} on {target.name}; supported: {rng[0]} to {rng[1]} "
                            "(it converts; the layer runs in software there).",
                            bad, list(rng), "quantize this layer with fewer weight bits (a "
                            "coarser weight scale divides the threshold), reduce the pooled area "
                            "H*W or the bias magnitudes, then quantize again.", HARDWARE))
    if params["activation"] or params.get("act_step") is not None:
        step = np.asarray(params["act_step"], np.float64)
        if row.max_act_step is not None and step.size and step.max() >= row.max_act_step:
            issues.append(Issue(name, "act_step_range",
                                f"Layer '{name}' ({kind}): act_step={float(step.max()):g} exceeds "
                                f"the {row.np_type} register on {target.name}; supported: below "
                                f"{row.max_act_step:g} (it converts; the layer runs in software "
                                "there).", float(step.max()),
                                f"< {row.max_act_step:g}",
                                "quantize this layer with fewer weight bits (q_config="
                                f"{{'{name}': QuantizationParams(weight_bits=2)}}: a coarser "
                                "weight scale divides act_step) or reduce the pooled area H*W.",
                                HARDWARE))
        if step.size and step.min() < row.min_act_step:
            issues.append(Issue(name, "act_step_min",
                                f"Layer '{name}' ({kind}): act_step={float(step.min()):g} is "
                                f"below the minimum {row.min_act_step:g}.", float(step.min()),
                                f">= {row.min_act_step:g}", "raise the layer's output range or "
                                "use fewer activation bits, then quantize again."))
    act = block.get("act")
    if act is not None and hasattr(act.layer, "act_step"):
        # the stored value: export hands out the floored step the twin computes with
        issues += _act_step_grid_issues(name, kind, np.asarray(act.layer.act_step.numpy(),
                                                               np.float64))
    return issues


def _act_step_grid_issues(name, kind, step) -> list:
    """A stored act_step off the 1/16 grid (a model quantized by an older quantizeml, or edited):
    the chip floors it, so the converted model would not compute what the model computed when it
    was quantized and evaluated."""
    scaled = step * ACT_STEP_FRACTION
    off = np.flatnonzero(scaled != np.floor(scaled))
    if not off.size:
        return []
    value = float(step.flat[off[0]])
    floored = np.floor(value * ACT_STEP_FRACTION) / ACT_STEP_FRACTION
    return [Issue(name, "act_step_grid",
                  f"Layer '{name}' ({kind}): act_step={value:.9g} (neuron {int(off[0])}, "
                  f"{off.size} of {step.size}) is not a multiple of 1/{ACT_STEP_FRACTION}: "
                  f"Akida's act_step register has 4 fractional bits, so the chip computes with "
                  f"floor(act_step*{ACT_STEP_FRACTION})/{ACT_STEP_FRACTION} = {floored:g} and the "
                  "Akida model would not compute what this quantized model computed when it was "
                  "quantized and evaluated.",
                  value, f"multiples of 1/{ACT_STEP_FRACTION}",
                  "quantize the float model again with this version of quantizeml (it emits "
                  "act_steps on the 1/16 grid and computes with them); a model quantized by an "
                  "older version keeps its off-grid steps.", CONVERT)]


def padding_of(block) -> Padding:
    """The Akida padding of a block's convolution."""
    return akida_padding(block.get("neural"))


def fc_input_dims(block) -> tuple:
    """(H, W, C) of a FullyConnected's input: the Flatten input, or (1, 1, N) for a flat input."""
    flatten: Optional[Any] = block.get("flatten")
    shape = flatten.input_shape if flatten is not None else block.get("neural").input_shape
    shape = tuple(int(d) for d in shape)
    if len(shape) == 3:
        return shape
    return (1, 1, int(np.prod(shape)))

"""Frozen row types of the per-device hardware constraints tables (numpy/stdlib only).

A device table (`akd1000.py`, later `akd1500.py`, ...) is one :class:`HardwareTarget` holding one
:class:`LayerLimits` row per supported Akida layer kind plus device-level facts. Readers (cnn2snn
checks, mapping, error messages, docs) only read these objects; they never repeat the numbers.
New NP-level facts are added as new fields with a default, so existing tables keep working.
"""
from __future__ import annotations

import dataclasses
import types
from typing import Mapping, Optional

from ..enums import LayerType, Padding, PoolType


def _frozen_mapping(value) -> Mapping:
    """Returns a read-only copy of a dict so a frozen row cannot be mutated through it."""
    return types.MappingProxyType(dict(value or {}))


@dataclasses.dataclass(frozen=True)
class LayerLimits:
    """What one Akida layer kind accepts on one device (one row of a constraints table).

    Attributes:
        layer_type: the Akida layer kind this row describes.
        np_type: the neural processor the layer maps to ("HRC", "CNP", "FNP").
        kernel_sizes: allowed kernel sizes (per axis); empty for layers without a kernel.
        square_kernel: whether kernel height must equal kernel width.
        strides: allowed convolution strides (per axis).
        independent_strides: whether the x and y strides may differ.
        kernel_sizes_for_stride: stride -> kernel sizes allowed with it (stride absent = any kernel).
        paddings: allowed padding modes.
        pool_types: allowed pooling types.
        max_pool_sizes: allowed max-pooling sizes (per axis).
        max_pool_stride_rule: "equal" (pool stride must equal pool size) or "at_most" (<= size).
        max_pool_needs_successor: a max-pooling layer cannot end a hardware sequence.
        max_pool_successor_nps: NP types that may follow such a layer in its sequence (a layer on
            another NP, or none, moves it to software); see :meth:`max_pool_successor_ok`.
        gap_min_rows: minimum number of rows of the convolution output before global average pooling.
        gap_max_height: maximum height of the convolution output before global average pooling.
        gap_max_area: maximum H*W of the global average pooling input (converter rule).
        weights_bits: allowed weight bit widths.
        input_bits: allowed input bit widths (activation bits of the previous layer / input data).
        act_bits: allowed activation (output) bit widths.
        input_channels: allowed input channel counts (empty = any).
        max_filters: maximum number of filters / units (None = no limit known).
        max_input_width: maximum input width, i.e. second dimension (None = no limit known).
        max_inputs: maximum flattened input size (FullyConnected) (None = no limit known).
        min_act_step: smallest act_step accepted (inclusive).
        max_act_step: act_step register limit (exclusive: act_step < max_act_step).
        threshold_bits: the threshold register is a signed integer of this many bits.
        activation_required: the layer cannot be mapped with activation disabled.
        max_input_channels_per_filter: probed per-filter weight memory, (kernel size, weights_bits)
            -> maximum input channels; see :meth:`max_input_channels` for unprobed combinations.
        map_weights_bits: weight bit widths the NP accepts at mapping time when it takes more than
            the converter emits (empty: same as `weights_bits`). Added for akida_core.mapping.
    """

    layer_type: LayerType
    np_type: str
    kernel_sizes: tuple = ()
    square_kernel: bool = True
    strides: tuple = (1,)
    independent_strides: bool = False
    kernel_sizes_for_stride: Mapping = dataclasses.field(default_factory=dict)
    paddings: tuple = (Padding.Same,)
    pool_types: tuple = (PoolType.NoPooling,)
    max_pool_sizes: tuple = ()
    max_pool_stride_rule: str = "equal"
    max_pool_needs_successor: bool = False
    max_pool_successor_nps: tuple = ()
    gap_min_rows: Optional[int] = None
    gap_max_height: Optional[int] = None
    gap_max_area: Optional[int] = None
    weights_bits: tuple = ()
    input_bits: tuple = ()
    act_bits: tuple = (1, 2, 4)
    input_channels: tuple = ()
    max_filters: Optional[int] = None
    max_input_width: Optional[int] = None
    max_inputs: Optional[int] = None
    min_act_step: float = 1.0 / 16
    max_act_step: Optional[float] = None
    threshold_bits: Optional[int] = None
    activation_required: bool = False
    max_input_channels_per_filter: Mapping = dataclasses.field(default_factory=dict)
    map_weights_bits: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "kernel_sizes_for_stride",
                           _frozen_mapping({s: tuple(k) for s, k in
                                            dict(self.kernel_sizes_for_stride).items()}))
        object.__setattr__(self, "max_input_channels_per_filter",
                           _frozen_mapping(self.max_input_channels_per_filter))
        if self.max_pool_stride_rule not in ("equal", "at_most"):
            raise ValueError(f"LayerLimits({self.layer_type.name}): max_pool_stride_rule="
                             f"{self.max_pool_stride_rule!r}; allowed: 'equal', 'at_most'.")

    @property
    def threshold_range(self) -> Optional[tuple]:
        """Inclusive (min, max) of the signed threshold register, or None when not limited."""
        if self.threshold_bits is None:
            return None
        half = 2 ** (self.threshold_bits - 1)
        return (-half, half - 1)

    def max_pool_successor_ok(self, next_np_type: Optional[str]) -> bool:
        """Whether a max-pooling layer of this kind maps when followed by a layer on `next_np_type`
        (None: it is the last layer). cnn2snn checks and akida_core mapping both ask this.

        Args:
            next_np_type: the np_type of the next layer's row ("CNP", "FNP", ...) or None.

        Returns:
            True when the rule does not apply or the successor is allowed.
        """
        if not self.max_pool_needs_successor:
            return True
        return next_np_type is not None and next_np_type in self.max_pool_successor_nps

    def allowed_kernels_for_stride(self, stride: int) -> tuple:
        """Kernel sizes allowed with this stride (all kernel sizes when the stride has no rule)."""
        return tuple(self.kernel_sizes_for_stride.get(stride, self.kernel_sizes))

    def max_input_channels(self, kernel_size: int, weights_bits: int) -> Optional[int]:
        """Maximum input channels a filter of this kernel size and weight width fits in one NP.

        Probed combinations give their measured value. An unprobed combination gets the largest
        value probed for a kernel at least as large with weights at least as wide (a filter that
        needs no more memory than a probed one also fits); None when no such probe exists.

        Args:
            kernel_size: the (square) kernel size.
            weights_bits: the weight bit width.

        Returns:
            The maximum input channel count, or None when no limit is known.
        """
        table = self.max_input_channels_per_filter
        if (kernel_size, weights_bits) in table:
            return table[(kernel_size, weights_bits)]
        bounds = [v for (k, b), v in table.items() if k >= kernel_size and b >= weights_bits]
        return max(bounds) if bounds else None


@dataclasses.dataclass(frozen=True)
class HardwareTarget:
    """One device generation: its name, IP version, per-layer rows and device-level facts.

    Attributes:
        name: the device name users pass (e.g. "AKD1000").
        ip_version: the Akida IP version ("v1" for Akida 1.0).
        layers: LayerType -> LayerLimits; a kind without a row is not supported on the device.
        model_input_bits: allowed bit widths of model inputs per first layer kind.
        num_nodes, num_nps: device size.
        np_counts: NP type -> count (e.g. {"CNP1": 78, "CNP2": 54, "FNP3": 18, "FNP2": 4, "HRC": 1}).
        forbidden_successions: (NP type, NP type) pairs that cannot follow each other directly.
        np_weight_memory_bits: weight memory of one CNP / FNP3 in bits (akida_core.mapping's per-NP
            memory model, see docs/mapping.md; None = not modelled).
        hw_version: (vendor_id, product_id, major_rev, minor_rev) of the device ("BC.00.000.002").
    """

    name: str
    ip_version: str
    layers: Mapping
    model_input_bits: Mapping = dataclasses.field(default_factory=dict)
    num_nodes: Optional[int] = None
    num_nps: Optional[int] = None
    np_counts: Mapping = dataclasses.field(default_factory=dict)
    forbidden_successions: tuple = ()
    np_weight_memory_bits: Optional[int] = None
    hw_version: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "layers", _frozen_mapping(self.layers))
        object.__setattr__(self, "model_input_bits", _frozen_mapping(self.model_input_bits))
        object.__setattr__(self, "np_counts", _frozen_mapping(self.np_counts))
        for layer_type, row in self.layers.items():
            if row.layer_type != layer_type:
                raise ValueError(f"HardwareTarget({self.name}): row for {layer_type.name} describes "
                                 f"{row.layer_type.name}; key each row by its own layer_type.")

    def limits(self, layer_type: LayerType) -> Optional[LayerLimits]:
        """Returns the row of `layer_type`, or None when the device does not support it."""
        return self.layers.get(LayerType(layer_type))

    def supports(self, layer_type: LayerType) -> bool:
        """Whether the device has a row (i.e. supports) `layer_type`."""
        return self.limits(layer_type) is not None

    def __str__(self):
        return self.name

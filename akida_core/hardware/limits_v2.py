"""Frozen row types of the Akida 2.0 constraints tables (numpy/stdlib only).

Akida 2.0 layers are described by different facts than Akida 1.0 ones (output bits per activation
and weight width instead of act_step and thresholds, skip DMAs, FIFOs, passes), so they get their
own row type. A table (`akida2.py`) is one :class:`HardwareTargetV2` holding one
:class:`LayerLimitsV2` per layer kind plus the device-level facts and the virtual meshes. Readers
(mapping, cnn2snn checks, docs) only read these objects; they never repeat the numbers.
"""
from __future__ import annotations

import dataclasses
import types
from typing import Mapping, Optional

from ..enums import ActivationType, LayerType


def _frozen(value) -> Mapping:
    return types.MappingProxyType(dict(value or {}))


@dataclasses.dataclass(frozen=True)
class LayerLimitsV2:
    """What one Akida 2.0 layer kind accepts (one row; None / empty = not limited).

    Attributes:
        layer_type: the layer kind of the row.
        component: where it runs: "HRC", "CNP1", "FNP" (FNP3 on chip or FNP2 with external memory),
            "TNP_B", "TNP_R" or "none" (mapped with 0 NPs, merged into a neighbour).
        kernel_sizes: allowed (square) kernel sizes.
        strides: kernel size -> allowed strides (a kernel absent from it: stride 1 only).
        paddings: allowed padding modes (names of `Padding`).
        same_upper_strides / same_upper_weights_bits / same_upper_output_bits: what SameUpper needs.
        max_pool_sizes: allowed max-pooling sizes (pool stride <= size is a layer invariant).
        max_pool_pairs: allowed (pool size, pool stride) pairs (the HRC's rule instead of sizes).
        max_pool_with_stride: max pooling allowed together with a convolution stride > 1.
        max_pool_with_lut: max pooling allowed with a LUT activation.
        max_pool_needs_successor: a max-pooling layer must feed a CNP/TNP_B layer of its sequence.
        gap_max_area / gap_max_d0 / gap_max_output_bits: global average pooling limits (input dims).
        weights_bits: allowed weight widths.
        input_bits: allowed input widths (output bits of the inbound layer).
        input_bits_at_least_weights: the input must be at least as wide as the weights.
        activations: allowed activation types (names of `ActivationType`).
        output_bits: (activation name, weights_bits) -> allowed output bits.
        max_filters: most filters / units.
        max_input_channels: most input channels (DepthwiseConv2D: channels).
        input_channels: allowed input channel counts (empty = any).
        max_input_channels_per_filter: (kernel, weights_bits) -> most input channels of one filter
            ("Filter size is too big to fit in a CNP").
        max_fifo_channels: FIFO layers: fifo_size x input channels must not exceed this (RAM).
        max_inputs: most flattened inputs (Dense1D).
        min_d0, min_d1, max_d1: input spatial bounds.
        rows_per_np: rows (d0) one NP handles; more rows split the layer spatially.
        rows_on_output: count the rows on the output (transposed convolutions double them).
        max_input_shift: largest `input_shift` value (3-bit register).
        probed: "probed" when every number came from the vendor, else what was fitted/assumed.
    """

    layer_type: LayerType
    component: str
    kernel_sizes: tuple = ()
    strides: Mapping = dataclasses.field(default_factory=dict)
    paddings: tuple = ()
    same_upper_strides: tuple = ()
    same_upper_weights_bits: tuple = ()
    same_upper_output_bits: tuple = ()
    max_pool_sizes: tuple = ()
    max_pool_pairs: tuple = ()
    max_pool_with_stride: bool = True
    max_pool_with_lut: bool = True
    max_pool_needs_successor: bool = False
    gap_max_area: Optional[int] = None
    gap_max_d0: Optional[int] = None
    gap_max_output_bits: Optional[int] = None
    weights_bits: tuple = ()
    input_bits: tuple = ()
    input_bits_at_least_weights: bool = False
    activations: tuple = ()
    output_bits: Mapping = dataclasses.field(default_factory=dict)
    max_filters: Optional[int] = None
    max_input_channels: Optional[int] = None
    input_channels: tuple = ()
    max_input_channels_per_filter: Mapping = dataclasses.field(default_factory=dict)
    max_fifo_channels: Optional[int] = None
    max_inputs: Optional[int] = None
    min_d0: Optional[int] = None
    min_d1: Optional[int] = None
    max_d1: Optional[int] = None
    rows_per_np: Optional[int] = None
    rows_on_output: bool = False
    max_input_shift: Optional[int] = None
    probed: str = "probed"

    def __post_init__(self):
        object.__setattr__(self, "strides", _frozen({k: tuple(v) for k, v in dict(self.strides).items()}))
        object.__setattr__(self, "output_bits", _frozen({k: tuple(v) for k, v in dict(self.output_bits).items()}))
        object.__setattr__(self, "max_input_channels_per_filter", _frozen(self.max_input_channels_per_filter))
        for activation, _ in self.output_bits:
            if activation not in ActivationType.__members__:
                raise ValueError(f"LayerLimitsV2({self.layer_type.name}): unknown activation {activation!r}")

    def allowed_strides(self, kernel_size: int) -> tuple:
        """Strides allowed with this kernel size."""
        return self.strides.get(kernel_size, (1,))

    def allowed_output_bits(self, activation: str, weights_bits: Optional[int] = None) -> tuple:
        """Output bits allowed with this activation (and weight width; None = any accepted width)."""
        if weights_bits is not None:
            return self.output_bits.get((activation, weights_bits), ())
        return tuple(sorted({b for (act, _), bits in self.output_bits.items() if act == activation for b in bits}))


@dataclasses.dataclass(frozen=True)
class MeshSpec:
    """A virtual mesh: NP slots given as (type names, count) groups in node order, plus skip DMAs."""

    slots: tuple
    skip_dmas: int = 0
    channels_per_dma: int = 0
    hrc: bool = True

    @property
    def num_nps(self) -> int:
        """Number of NP slots."""
        return sum(count for _, count in self.slots)


@dataclasses.dataclass(frozen=True)
class HardwareTargetV2:
    """One Akida 2.0 (or pico) device generation: layer rows, NP memory, mapper constants, meshes.

    Attributes:
        name, ip_version: e.g. "Akida 2.0", "v2".
        layers: LayerType -> LayerLimitsV2 (no row: not supported).
        np_input_bytes, np_weight_bytes: SRAM of one NP (`NP.SramSize`).
        cnp_max_filters, cnp_max_width: `MapConstraints` defaults (filters per NP, rows per NP).
        filters_granularity: filters per NP are taken in groups of this many when that many fit.
        fnp3_weight_scale: (numerator, denominator) of the FNP3 weight memory overhead.
        skip_channels_per_dma: skip-DMA channels of one DMA (one per mesh column).
        no_pass_start: components that cannot start a pass other than a sequence's first.
        forbidden_successions: (component, component) pairs that cannot follow each other directly.
        temporal_with_skips: whether a HW sequence may hold both FIFO layers and skip connections.
        max_outbounds: most outbound layers of one layer.
        meshes: device name -> MeshSpec.
        hw_version: (vendor_id, product_id, major_rev, minor_rev).
    """

    name: str
    ip_version: str
    layers: Mapping
    np_input_bytes: int = 0
    np_weight_bytes: int = 0
    cnp_max_filters: int = 0
    cnp_max_width: int = 0
    filters_granularity: int = 1
    fnp3_weight_scale: tuple = (1, 1)
    skip_channels_per_dma: int = 0
    no_pass_start: tuple = ()
    forbidden_successions: tuple = ()
    temporal_with_skips: bool = True
    max_outbounds: Optional[int] = None
    meshes: Mapping = dataclasses.field(default_factory=dict)
    hw_version: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "layers", _frozen(self.layers))
        object.__setattr__(self, "meshes", _frozen(self.meshes))
        for layer_type, row in self.layers.items():
            if row.layer_type != layer_type:
                raise ValueError(f"HardwareTargetV2({self.name}): row for {layer_type.name} describes "
                                 f"{row.layer_type.name}; key each row by its own layer_type.")

    def limits(self, layer_type: LayerType) -> Optional[LayerLimitsV2]:
        """The row of `layer_type`, or None when the generation does not run it in hardware."""
        return self.layers.get(LayerType(layer_type))

    def __str__(self):
        return self.name

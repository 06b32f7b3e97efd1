"""Akida 2.0 and pico virtual devices: meshes with NP type sets, an HRC with LUT, skip-DMA channels.

The meshes come from the Akida 2.0 table (`akida_core.hardware.akida2`): TwoNodesIPv2 (8 NPs, no
TNP_B, 2 skip channels), FourNodesIPv2 (16), SixNodesIPv2 (24), TwelveNodesIPv2 (48, 3 DMAs), and
PicoIP (one TNP_R). `create_device(...)` with an Akida 2.0 hw_version builds one here. AKD1500 stays
an Akida 1.0 device (akida_core.devices).

Example:
    >>> from akida_core import SixNodesIPv2
    >>> device = SixNodesIPv2()
    >>> len(device.mesh.nps), device.mesh.skip_channels, device.ip_version.name
    (24, 4, 'v2')
    >>> print(repr(device.mesh))   # every NP with its types, the HRC, the skip DMAs, the SRAM
"""
import dataclasses

from .devices import (FPGA_v2, MAX_DEVICE_NPS, NP, NPS_PER_NODE, Device, HwVersion, IpVersion, Mesh, NPType,
                      Pico_FPGA)
from ..errors import ModelFormatError
from ..hardware.akida2 import AKIDA2, PICO



@dataclasses.dataclass(frozen=True)
class SramSize:
    """SRAM of one NP in bytes (`NP.SramSize`): inputs and weights."""

    input_bytes: int = AKIDA2.np_input_bytes
    weight_bytes: int = AKIDA2.np_weight_bytes

    def __post_init__(self):
        for field in ("input_bytes", "weight_bytes"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2 ** 30:
                raise ValueError(f"SramSize: {field}={value!r} must be an int in [1, 2**30]")


@dataclasses.dataclass(frozen=True)
class SkipDma:
    """One skip DMA: ident (column, 1, 3) and its number of channels (each a store/load pair)."""

    ident: tuple
    channels: int


@dataclasses.dataclass(frozen=True)
class MeshV2(Mesh):
    """An Akida 2.0 / pico mesh: NPs (each usable as one of its types), HRC (with LUT), skip DMAs, SRAM."""

    skip_dmas: tuple = ()
    np_sram_size: SramSize = SramSize()
    hrc_has_lut: bool = True

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "skip_dmas", tuple(self.skip_dmas))
        if not all(isinstance(d, SkipDma) and d.channels >= 1 for d in self.skip_dmas):
            raise ValueError("MeshV2: skip_dmas must be SkipDma objects with at least one channel")
        if not isinstance(self.np_sram_size, SramSize):
            raise ValueError(f"MeshV2: np_sram_size={self.np_sram_size!r} must be a SramSize")

    @property
    def skip_channels(self):
        """Skip-DMA channels of the device (one channel = one store + one load)."""
        return sum(d.channels for d in self.skip_dmas)

    def count(self, np_type):
        """NPs able to act as `np_type`; SKIP_DMA_STORE / SKIP_DMA_LOAD count the skip channels."""
        if np_type in (NPType.SKIP_DMA_STORE, NPType.SKIP_DMA_LOAD):
            return self.skip_channels
        return super().count(np_type)

    def __repr__(self):
        lines = [f"Mesh: {len(self.nodes)} nodes, {len(self.nps)} NPs, "
                 f"SRAM per NP {self.np_sram_size.input_bytes:,} input / {self.np_sram_size.weight_bytes:,} "
                 "weight bytes"]
        if self.hrc is not None:
            lines.append(f"  HRC {self.hrc.ident} has_lut={self.hrc_has_lut}")
        for node, nps in self.nodes.items():
            lines.append(f"  node {node}: " + ", ".join(repr(np_) for np_ in nps))
        for dma in self.skip_dmas:
            lines.append(f"  skip DMA {dma.ident}: {dma.channels} channels")
        return "\n".join(lines)


class DeviceV2(Device):
    """A virtual Akida 2.0 (or pico) device; `name` is its factory name, not part of its identity."""

    def __init__(self, hw_version, mesh, name=None):
        if not isinstance(mesh, MeshV2):
            raise TypeError(f"DeviceV2: mesh={mesh!r} must be a MeshV2")
        super().__init__(hw_version, mesh)
        if hw_version.ip_version not in (IpVersion.v2, IpVersion.pico):
            raise ValueError(f"DeviceV2: hw_version {hw_version.name} is IP {hw_version.ip_version.name}; "
                             "Akida 2.0 meshes need FPGA_v2 or Pico_FPGA")
        self.name = name or f"{hw_version.name} device"

    @property
    def table(self):
        """The HardwareTargetV2 of the device's generation (Akida 2.0 or pico)."""
        return PICO if self.ip_version is IpVersion.pico else AKIDA2

    def to_dict(self):
        """Plain description (hardware version, NPs, HRC, skip DMAs, SRAM) that `device_v2_from_dict` rebuilds."""
        out = super().to_dict()
        mesh = self.mesh
        out.update(skip_dmas=[[*d.ident, d.channels] for d in mesh.skip_dmas],
                   sram=[mesh.np_sram_size.input_bytes, mesh.np_sram_size.weight_bytes], name=self.name)
        return out

    def __eq__(self, other):
        if not isinstance(other, DeviceV2):
            return False
        mine, theirs = self.to_dict(), other.to_dict()
        mine.pop("name"), theirs.pop("name")
        return mine == theirs

    __hash__ = Device.__hash__

    def __repr__(self):
        counts = ", ".join(f"{self.mesh.count(t)} {t.name}" for t in NPType
                           if self.mesh.count(t) and t not in (NPType.SKIP_DMA_STORE, NPType.SKIP_DMA_LOAD))
        hrc = "1 HRC (LUT)" if self.mesh.hrc is not None else "no HRC"
        return (f"<Device {self.name} {self.desc} ({self.version.name}, IpVersion.{self.ip_version.name}): "
                f"{len(self.mesh.nodes)} nodes, {len(self.mesh.nps)} NPs ({counts}), {hrc}, "
                f"{len(self.mesh.skip_dmas)} skip DMA(s) with {self.mesh.skip_channels} channels>")


def _build(hw_version, slot_types, skip_channels, channels_per_dma, include_hrc, sram, name):
    """Lay slots out in nodes of 4 (node k: column k // 4 + 1, row k % 4 + 1) and the skip DMAs by column."""
    nps = tuple(NP((k // NPS_PER_NODE // 4 + 1, k // NPS_PER_NODE % 4 + 1, k % NPS_PER_NODE + 1),
                   frozenset(NPType[t] for t in types)) for k, types in enumerate(slot_types))
    dmas, left, column = [], skip_channels, 1
    while left > 0:
        dmas.append(SkipDma((column, 1, 3), min(left, channels_per_dma)))
        left -= channels_per_dma
        column += 1
    hrc = NP((0, 0, 0), frozenset({NPType.HRC})) if include_hrc else None
    return DeviceV2(hw_version, MeshV2(nps, hrc, skip_dmas=tuple(dmas), np_sram_size=sram), name)


def _from_spec(table, name, hw_version):
    spec = table.meshes[name]
    slots = [types for types, count in spec.slots for _ in range(count)]
    return _build(hw_version, slots, spec.skip_dmas * spec.channels_per_dma, spec.channels_per_dma or 1,
                  spec.hrc, SramSize(), name)


def TwoNodesIPv2():  # noqa: N802 (reference API name)
    """Virtual TwoNodesIPv2 (FPGA_v2): 8 NPs, no TNP_B, HRC with LUT, 1 skip DMA with 2 channels."""
    return _from_spec(AKIDA2, "TwoNodesIPv2", FPGA_v2)


def FourNodesIPv2():  # noqa: N802
    """Virtual FourNodesIPv2 (FPGA_v2): 16 NPs, HRC with LUT, 1 skip DMA with 4 channels."""
    return _from_spec(AKIDA2, "FourNodesIPv2", FPGA_v2)


def SixNodesIPv2():  # noqa: N802
    """Virtual SixNodesIPv2 (FPGA_v2): 24 NPs, HRC with LUT, 1 skip DMA with 4 channels."""
    return _from_spec(AKIDA2, "SixNodesIPv2", FPGA_v2)


def TwelveNodesIPv2():  # noqa: N802
    """Virtual TwelveNodesIPv2 (FPGA_v2, the vendor's "AKD2500 design"): 48 NPs, 3 skip DMAs x 4 channels."""
    return _from_spec(AKIDA2, "TwelveNodesIPv2", FPGA_v2)


def PicoIP():  # noqa: N802
    """Virtual PicoIP (Pico_FPGA, IP pico): one TNP_R for StatefulRecurrent models; no HRC, no skip DMA."""
    return _from_spec(PICO, "PicoIP", Pico_FPGA)


def create_device_v2(num_cnp_tnp, num_fnp, num_skip_dma_channel=0, include_hrc=True, sram_size=None,
                     hw_version=FPGA_v2):
    """Akida 2.0 (or pico) branch of `create_device` (arguments already type-checked there).

    NP slots are rounded up to a multiple of 4: first the FNPs (the first one FNP2, FNP2-only when
    num_fnp is 1, else also FNP3; the others FNP3), then CNP slots {TNP_B, CNP1, CNP2} (pico: TNP_R).
    Skip channels are spread over DMAs of at most 4 channels, one per column.

    Raises:
        ValueError: a bad sram_size.
    """
    if sram_size is None:
        sram = SramSize()
    elif isinstance(sram_size, SramSize):
        sram = sram_size
    elif isinstance(sram_size, (tuple, list)) and len(sram_size) == 2:
        sram = SramSize(*sram_size)
    else:
        raise ValueError(f"create_device: sram_size={sram_size!r} must be None, a SramSize or "
                         "(input_bytes, weight_bytes)")
    if hw_version.ip_version is IpVersion.pico:
        slots = [("TNP_R",)] * num_cnp_tnp
    else:
        fnps = [("FNP2",) if num_fnp == 1 else ("FNP2", "FNP3")][:num_fnp] + [("FNP3",)] * max(num_fnp - 1, 0)
        slots = fnps + [("TNP_B", "CNP1", "CNP2")] * num_cnp_tnp
        slots += [("TNP_B", "CNP1", "CNP2")] * (-len(slots) % NPS_PER_NODE)
    if len(slots) > MAX_DEVICE_NPS:
        raise ValueError(f"create_device: {len(slots)} NPs; at most {MAX_DEVICE_NPS} (MAX_DEVICE_NPS)")
    name = f"create_device({num_cnp_tnp}, {num_fnp}, {num_skip_dma_channel})"
    return _build(hw_version, slots, num_skip_dma_channel, AKIDA2.skip_channels_per_dma, include_hrc, sram, name)


def device_v2_from_dict(data):
    """Rebuild a DeviceV2 from `DeviceV2.to_dict()` output, validating every field.

    Raises:
        ModelFormatError: malformed description.
    """
    where = "invalid Akida 2.0 device description in the mapping state"
    if not isinstance(data, dict) or not isinstance(data.get("nps"), list) or \
            not isinstance(data.get("skip_dmas"), list):
        raise ModelFormatError(f"{where}: expected a dict with hw_version, hrc, nps, skip_dmas, sram and name")
    if len(data["nps"]) > MAX_DEVICE_NPS or len(data["skip_dmas"]) > MAX_DEVICE_NPS:
        raise ModelFormatError(f"{where}: at most {MAX_DEVICE_NPS} NPs and skip DMAs are read (MAX_DEVICE_NPS)")
    try:
        version = HwVersion(*data["hw_version"])
        nps = tuple(NP(tuple(entry[:3]), frozenset(NPType[name] for name in entry[3])) for entry in data["nps"])
        hrc = None if data["hrc"] is None else NP(tuple(data["hrc"]), frozenset({NPType.HRC}))
        dmas = tuple(SkipDma(tuple(entry[:3]), int(entry[3])) for entry in data["skip_dmas"])
        name = data["name"]
        if not isinstance(name, str) or len(name) > 200:
            raise ValueError(f"name {str(name)[:50]!r} must be a short string")
        return DeviceV2(version, MeshV2(nps, hrc, skip_dmas=dmas, np_sram_size=SramSize(*data["sram"])), name)
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ModelFormatError(f"{where}: {err}") from err


V2_DEVICES = {"TwoNodesIPv2": TwoNodesIPv2, "FourNodesIPv2": FourNodesIPv2, "SixNodesIPv2": SixNodesIPv2,
              "TwelveNodesIPv2": TwelveNodesIPv2, "PicoIP": PicoIP}
"""Name -> factory of the Akida 2.0 and pico virtual devices."""

__all__ = ["DeviceV2", "FourNodesIPv2", "MeshV2", "PicoIP", "SixNodesIPv2", "SkipDma", "SramSize",
           "TwelveNodesIPv2", "TwoNodesIPv2", "V2_DEVICES", "create_device_v2", "device_v2_from_dict"]

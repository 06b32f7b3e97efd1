"""Akida devices: hardware versions, NPs, meshes of nodes, and the virtual AKD1000 / AKD1500 / TwoNodesIPv1.

A device is a hardware version plus a mesh of nodes of up to 4 neural processors (NPs), each able to
act as one or more NP types. The per-layer limits of a device come from its constraints table in
`akida_core.hardware` (one source of truth); the virtual devices build their mesh from that table's
NP counts. There is no hardware attached here, so `devices()` is empty.

Example:
    >>> from akida_core import AKD1000
    >>> device = AKD1000()
    >>> str(device), len(device.mesh.nps)
    ('VirtualDevice/BC.00.000.002', 78)
"""
import dataclasses
import enum

from ..enums import IpVersion
from ..errors import ModelFormatError
from ..hardware.akd1000 import AKD1000 as _AKD1000_TABLE
from ..hardware.akd1500 import AKD1500 as _AKD1500_TABLE, TWO_NODES_IP_V1 as _TWO_NODES_TABLE
from .soc import SoC

NPS_PER_NODE = 4
MAX_DEVICE_NPS = 4096
"""Most NPs a device read from a file may have (AKD1000 has 78): bounds the cost of mapping on it."""


@dataclasses.dataclass(frozen=True)
class HwVersion:
    """Hardware version `vendor.product.major.minor`, printed like "BC.00.000.002"."""

    vendor_id: int
    product_id: int
    major_rev: int
    minor_rev: int

    def __post_init__(self):
        for field, high in (("vendor_id", 255), ("product_id", 255), ("major_rev", 999), ("minor_rev", 999)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
                raise ValueError(f"HwVersion: {field}={value!r} must be an int in [0, {high}]")

    @property
    def ip_version(self):
        """IpVersion of this hardware (IpVersion.none when unknown)."""
        return _IP_VERSIONS.get(self, IpVersion.none)

    @property
    def name(self):
        """Name of the known constant ("NSoC_v2") or the version string."""
        return _HW_NAMES.get(self, str(self))

    def to_list(self):
        """[vendor_id, product_id, major_rev, minor_rev]."""
        return [self.vendor_id, self.product_id, self.major_rev, self.minor_rev]

    def __str__(self):
        return f"{self.vendor_id:02X}.{self.product_id:02X}.{self.major_rev:03d}.{self.minor_rev:03d}"


NSoC_v1 = HwVersion(0xBC, 0x00, 0, 1)   # not probed: the v1 silicon preceding NSoC_v2
NSoC_v2 = HwVersion(*_AKD1000_TABLE.hw_version)
TwoNodesIP_v1 = HwVersion(*_TWO_NODES_TABLE.hw_version)
AKD1500_v1 = HwVersion(*_AKD1500_TABLE.hw_version)
FPGA_v2 = HwVersion(0xBC, 0xA2, 1, 0)
Pico_FPGA = HwVersion(0xBC, 0xB1, 1, 0)   # Akida pico (PicoIP, devices_v2.py)
_HW_NAMES = {NSoC_v1: "NSoC_v1", NSoC_v2: "NSoC_v2", TwoNodesIP_v1: "TwoNodesIP_v1",
             AKD1500_v1: "AKD1500_v1", FPGA_v2: "FPGA_v2", Pico_FPGA: "Pico_FPGA"}
_IP_VERSIONS = {NSoC_v1: IpVersion.v1, NSoC_v2: IpVersion.v1, TwoNodesIP_v1: IpVersion.v1,
                AKD1500_v1: IpVersion.v1, FPGA_v2: IpVersion.v2, Pico_FPGA: IpVersion.pico}
#: Constraints table (layer rows, NP memory) of each hardware version.
_TABLES = {NSoC_v2: _AKD1000_TABLE, NSoC_v1: _AKD1000_TABLE, AKD1500_v1: _AKD1500_TABLE,
           TwoNodesIP_v1: _TWO_NODES_TABLE}


class NPType(enum.Enum):
    """Types of neural processors (`NP.Type` in the reference API)."""

    HRC = 0
    CNP1 = 1
    CNP2 = 2
    FNP2 = 3
    FNP3 = 4
    TNP_B = 5
    TNP_R = 6
    SKIP_DMA_STORE = 7
    SKIP_DMA_LOAD = 8


@dataclasses.dataclass(frozen=True)
class NP:
    """One neural processor: `ident` = (column, row, id in node) and the NP types it can act as."""

    ident: tuple
    types: frozenset

    Type = NPType

    def __post_init__(self):
        ident = tuple(self.ident)
        if len(ident) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ident):
            raise ValueError(f"NP ident={self.ident!r} must be three non-negative ints (column, row, id)")
        types = frozenset(self.types)
        if not types or not all(isinstance(t, NPType) for t in types):
            raise ValueError(f"NP {ident}: types={self.types!r} must be a non-empty set of NP.Type members")
        object.__setattr__(self, "ident", ident)
        object.__setattr__(self, "types", types)
        # Mapping asks `can` millions of times on big devices; a str set avoids Enum's Python __hash__.
        object.__setattr__(self, "_type_names", frozenset(t.name for t in types))

    def can(self, np_type):
        """Whether this NP can act as `np_type`."""
        return np_type._name_ in self._type_names

    def __repr__(self):
        names = "/".join(t.name for t in sorted(self.types, key=lambda t: t.value))
        return f"NP{self.ident}[{names}]"


@dataclasses.dataclass(frozen=True)
class Mesh:
    """NPs of a device grouped in nodes (the NPs sharing column and row), plus the HRC and DMAs."""

    nps: tuple
    hrc: object = None
    dma_event: tuple = (3, 1, 0)
    dma_conf: tuple = (3, 1, 1)

    def __post_init__(self):
        nps = tuple(self.nps)
        if not all(isinstance(np_, NP) for np_ in nps):
            raise ValueError("Mesh: nps must be NP objects")
        idents = [np_.ident for np_ in nps]
        if len(set(idents)) != len(idents):
            raise ValueError("Mesh: two NPs share an ident; each (column, row, id) must be unique")
        if self.hrc is not None and not (isinstance(self.hrc, NP) and self.hrc.can(NPType.HRC)):
            raise ValueError(f"Mesh: hrc={self.hrc!r} must be an NP of type HRC or None")
        object.__setattr__(self, "nps", nps)
        object.__setattr__(self, "dma_event", tuple(self.dma_event))
        object.__setattr__(self, "dma_conf", tuple(self.dma_conf))

    @property
    def nodes(self):
        """Dict (column, row) -> NPs of that node."""
        out = {}
        for np_ in self.nps:
            out.setdefault(np_.ident[:2], []).append(np_)
        return out

    def count(self, np_type):
        """Number of NPs able to act as `np_type` (the HRC counts separately)."""
        return sum(np_.can(np_type) for np_ in self.nps)


class Device:
    """A virtual Akida device: `Device(hw_version, mesh)`.

    Its layer limits are the constraints table of its hardware version (akida_core.hardware); its
    NP budget is the mesh. `device.soc` holds the clock mode used by the estimates.
    """

    def __init__(self, hw_version, mesh):
        if not isinstance(hw_version, HwVersion):
            raise TypeError(f"Device: hw_version={hw_version!r} must be a HwVersion such as NSoC_v2")
        if not isinstance(mesh, Mesh):
            raise TypeError(f"Device: mesh={mesh!r} must be a Mesh")
        self._version = hw_version
        self._mesh = mesh
        self.soc = SoC()

    @property
    def version(self):
        """The HwVersion."""
        return self._version

    @property
    def ip_version(self):
        """IpVersion of the device (models must match it to be mapped)."""
        return self._version.ip_version

    @property
    def mesh(self):
        """The Mesh of NPs."""
        return self._mesh

    @property
    def desc(self):
        """Description string, e.g. "VirtualDevice/BC.00.000.002"."""
        return f"VirtualDevice/{self._version}"

    @property
    def table(self):
        """The HardwareTarget constraints table of this device's hardware version, or None."""
        table = _TABLES.get(self._version)
        if table is None and self.ip_version is IpVersion.v1:
            table = _AKD1000_TABLE   # same IP, same layer rows
        return table

    def to_dict(self):
        """Plain description (hardware version and every NP) that `device_from_dict` rebuilds."""
        return {"hw_version": self._version.to_list(),
                "hrc": None if self._mesh.hrc is None else list(self._mesh.hrc.ident),
                "nps": [[*np_.ident, sorted(t.name for t in np_.types)] for np_ in self._mesh.nps]}

    def __eq__(self, other):
        return isinstance(other, Device) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash((self._version, self._mesh.nps))

    def __str__(self):
        return self.desc

    def __repr__(self):
        counts = ", ".join(f"{self._mesh.count(t)} {t.name}" for t in NPType if self._mesh.count(t))
        hrc = "1 HRC" if self._mesh.hrc is not None else "no HRC"
        return (f"<Device {self.desc} ({self._version.name}, IpVersion.{self.ip_version.name}): "
                f"{len(self._mesh.nodes)} nodes, {len(self._mesh.nps)} NPs ({counts}), {hrc}>")


def device_from_dict(data):
    """Rebuild a Device from `Device.to_dict()` output, validating every field.

    Raises:
        ModelFormatError: malformed description.
    """
    if not isinstance(data, dict) or not isinstance(data.get("nps"), list):
        raise ModelFormatError("invalid device description in the mapping state: expected a dict with "
                               "hw_version, hrc and an nps list")
    if len(data["nps"]) > MAX_DEVICE_NPS:
        raise ModelFormatError(f"invalid device description in the mapping state: {len(data['nps']):,} NPs; "
                               f"at most {MAX_DEVICE_NPS} (MAX_DEVICE_NPS) are read (AKD1000 has 78)")
    try:
        version = HwVersion(*data["hw_version"])
        nps = tuple(NP(tuple(entry[:3]), frozenset(NPType[name] for name in entry[3])) for entry in data["nps"])
        hrc = None if data["hrc"] is None else NP(tuple(data["hrc"]), frozenset({NPType.HRC}))
        return Device(version, Mesh(nps, hrc))
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ModelFormatError(f"invalid device description in the mapping state: {err}") from err


def _mesh(num_nodes, nps_types, include_hrc=True):
    """Lay NPs out in nodes of 4: node k is (column k // 4 + 1, row k % 4 + 1), ids 1..4."""
    if num_nodes * NPS_PER_NODE < len(nps_types):
        raise ValueError(f"{len(nps_types)} NPs do not fit {num_nodes} nodes of {NPS_PER_NODE}")
    nps = tuple(NP((k // NPS_PER_NODE // 4 + 1, k // NPS_PER_NODE % 4 + 1, k % NPS_PER_NODE + 1),
                   frozenset(types)) for k, types in enumerate(nps_types))
    return Mesh(nps, NP((0, 0, 0), frozenset({NPType.HRC})) if include_hrc else None)


def _device_from_table(table, hw_version):
    """Virtual device whose NPs match the table's counts: CNP2-capable first, FNP2 then FNP3 last."""
    counts = table.np_counts
    n = table.num_nps
    n_fnp2, n_fnp3, n_cnp2 = counts.get("FNP2", 0), counts.get("FNP3", 0), counts.get("CNP2", 0)
    assert counts.get("CNP1", 0) == n and n_cnp2 + n_fnp2 + n_fnp3 <= n, table.name
    types = []
    for k in range(n):
        kinds = {NPType.CNP1}
        if k < n_cnp2:
            kinds.add(NPType.CNP2)
        elif k >= n - n_fnp2 - n_fnp3:
            kinds.add(NPType.FNP2 if k < n - n_fnp3 else NPType.FNP3)
        types.append(kinds)
    return Device(hw_version, _mesh(table.num_nodes, types, include_hrc=counts.get("HRC", 0) > 0))


def AKD1000():  # noqa: N802 (reference API name)
    """Virtual AKD1000 (NSoC_v2, IP v1): 20 nodes, 78 NPs (54 CNP2-, 18 FNP3-, 4 FNP2-capable), 1 HRC."""
    return _device_from_table(_AKD1000_TABLE, NSoC_v2)


def AKD1500():  # noqa: N802
    """Virtual AKD1500 (AKD1500_v1, IP v1): 8 nodes, 32 NPs (21 CNP2-, 7 FNP3-, 1 FNP2-capable), 1 HRC."""
    return _device_from_table(_AKD1500_TABLE, AKD1500_v1)


def TwoNodesIPv1():  # noqa: N802
    """Virtual TwoNodesIP_v1 (IP v1): 2 nodes, 8 NPs, 1 HRC (NP capabilities: hardware/akd1500.py)."""
    return _device_from_table(_TWO_NODES_TABLE, TwoNodesIP_v1)


TwoNodesIP = TwoNodesIPv1
"""The user guide's name for TwoNodesIPv1()."""


def create_device_v1(num_cnp_tnp, num_fnp, include_hrc, hw_version):
    """Akida 1.0 branch of `create_device` (akida_core.mapping.factory checks the arguments): CNP1s, then
    one FNP2 and FNP3s, in nodes of 4 NPs; the device uses the AKD1000 layer rows."""
    types = [{NPType.CNP1}] * num_cnp_tnp + [{NPType.FNP2} if k == 0 else {NPType.FNP3} for k in range(num_fnp)]
    num_nodes = max(1, -(-len(types) // NPS_PER_NODE))
    return Device(hw_version, _mesh(num_nodes, types, include_hrc))


def devices():
    """Attached hardware devices: always an empty list (this runtime has no device driver)."""
    return []


__all__ = ["AKD1000", "AKD1500", "AKD1500_v1", "Device", "FPGA_v2", "HwVersion", "IpVersion", "Mesh", "NP",
           "NPType", "NSoC_v1", "NSoC_v2", "Pico_FPGA", "TwoNodesIP", "TwoNodesIPv1", "TwoNodesIP_v1",
           "create_device_v1", "device_from_dict", "devices"]

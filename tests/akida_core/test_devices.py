"""Virtual devices: NP counts from the hardware tables, versions, meshes, create_device, SoC settings."""
import pytest

import akida_core as ak
from akida_core.devices import Mesh, NPType, device_from_dict
from akida_core.hardware import AKD1000 as AKD1000_TABLE
from akida_core.hardware.akd1500 import AKD1500 as AKD1500_TABLE, TWO_NODES_IP_V1
from akida_core.soc import ClockMode


@pytest.mark.parametrize("build,table,desc,nodes", [
    (ak.AKD1000, AKD1000_TABLE, "VirtualDevice/BC.00.000.002", 20),
    (ak.AKD1500, AKD1500_TABLE, "VirtualDevice/BC.A1.003.009", 8),
    (ak.TwoNodesIPv1, TWO_NODES_IP_V1, "VirtualDevice/BC.A1.003.006", 2),
])
def test_virtual_devices_match_their_table(build, table, desc, nodes):
    device = build()
    assert str(device) == device.desc == desc
    assert device.ip_version is ak.IpVersion.v1 and device.table is table
    assert len(device.mesh.nps) == table.num_nps and len(device.mesh.nodes) == nodes == table.num_nodes
    assert all(len(nps) <= 4 for nps in device.mesh.nodes.values())
    for name, count in table.np_counts.items():
        if name != "HRC":
            assert device.mesh.count(NPType[name]) == count, name
    assert device.mesh.hrc is not None and device.mesh.hrc.can(NPType.HRC)


def test_akd1000_facts():
    device = ak.AKD1000()
    counts = {t.name: device.mesh.count(t) for t in NPType if device.mesh.count(t)}
    assert counts == {"CNP1": 78, "CNP2": 54, "FNP2": 4, "FNP3": 18}
    assert device.version == ak.NSoC_v2 and device.version.name == "NSoC_v2"
    assert "20 nodes, 78 NPs" in repr(device) and "1 HRC" in repr(device)
    assert len({np_.ident for np_ in device.mesh.nps}) == 78


def test_devices_lists_no_hardware():
    assert ak.devices() == []


@pytest.mark.parametrize("version,text,ip", [
    (ak.NSoC_v2, "BC.00.000.002", ak.IpVersion.v1), (ak.AKD1500_v1, "BC.A1.003.009", ak.IpVersion.v1),
    (ak.TwoNodesIP_v1, "BC.A1.003.006", ak.IpVersion.v1), (ak.FPGA_v2, "BC.A2.001.000", ak.IpVersion.v2),
    (ak.HwVersion(1, 2, 3, 4), "01.02.003.004", ak.IpVersion.none),
])
def test_hw_versions(version, text, ip):
    assert str(version) == text and version.ip_version is ip


@pytest.mark.parametrize("args", [(256, 0, 0, 0), (-1, 0, 0, 0), (0, 0, 1000, 0), (True, 0, 0, 0)])
def test_bad_hw_version(args):
    with pytest.raises(ValueError, match="HwVersion"):
        ak.HwVersion(*args)


def test_create_device_nodes_and_fnp_order():
    device = ak.create_device(5, 3, hw_version=ak.NSoC_v2)
    assert len(device.mesh.nps) == 8 and len(device.mesh.nodes) == 2
    fnps = [np_ for np_ in device.mesh.nps if np_.can(NPType.FNP2) or np_.can(NPType.FNP3)]
    assert [sorted(t.name for t in np_.types) for np_ in fnps] == [["FNP2"], ["FNP3"], ["FNP3"]]
    assert device.mesh.count(NPType.CNP1) == 5 and device.table is AKD1000_TABLE
    assert ak.create_device(1, 0, include_hrc=False, hw_version=ak.NSoC_v2).mesh.hrc is None


def test_create_device_v2_and_bad_options():
    v2 = ak.create_device(4, 1, num_skip_dma_channel=1)
    assert v2.ip_version is ak.IpVersion.v2 and v2.mesh.count(NPType.SKIP_DMA_STORE) == 1
    with pytest.raises(ValueError, match="Akida 2.0 options"):
        ak.create_device(1, 1, num_skip_dma_channel=1, hw_version=ak.NSoC_v2)
    with pytest.raises(ValueError, match="num_fnp=-1"):
        ak.create_device(1, -1)
    with pytest.raises(TypeError, match="HwVersion"):
        ak.create_device(1, 1, hw_version="NSoC_v2")


def test_device_from_custom_mesh_and_round_trip():
    nps = (ak.NP((1, 1, 1), {NPType.CNP1}), ak.NP((1, 1, 2), {NPType.CNP1, NPType.FNP3}))
    device = ak.Device(ak.NSoC_v2, Mesh(nps, ak.NP((0, 0, 0), {NPType.HRC})))
    assert device.table is AKD1000_TABLE and len(device.mesh.nps) == 2
    assert device_from_dict(device.to_dict()) == device
    assert device_from_dict(ak.AKD1000().to_dict()) == ak.AKD1000()


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(hw_version=[1, 2]),
    lambda d: d["nps"][0].__setitem__(3, ["CNP9"]),
    lambda d: d["nps"].append(list(d["nps"][0])),          # duplicate ident
    lambda d: d.pop("nps"),
    lambda d: d.update(hrc=[0, 0]),
])
def test_bad_device_description(mutate):
    data = ak.AKD1000().to_dict()
    mutate(data)
    with pytest.raises(ak.ModelFormatError, match="invalid device description"):
        device_from_dict(data)


def test_mesh_and_np_validation():
    with pytest.raises(ValueError, match="share an ident"):
        Mesh((ak.NP((1, 1, 1), {NPType.CNP1}), ak.NP((1, 1, 1), {NPType.FNP3})))
    with pytest.raises(ValueError, match="non-empty set"):
        ak.NP((1, 1, 1), set())
    with pytest.raises(ValueError, match="three non-negative ints"):
        ak.NP((1, 1), {NPType.CNP1})
    with pytest.raises(TypeError, match="must be a HwVersion"):
        ak.Device("NSoC_v2", ak.AKD1000().mesh)


def test_soc_settings():
    device = ak.AKD1000()
    assert device.soc.clock_mode is ClockMode.Performance and not device.soc.power_measurement_enabled
    device.soc.power_measurement_enabled = True
    device.soc.clock_mode = ak.soc.ClockMode.LowPower
    assert device.soc.power_measurement_enabled and device.soc.clock_mode.mhz == 5
    assert [m.mhz for m in ClockMode] == [300, 100, 5]
    assert device.soc.power_meter.events() == []
    with pytest.raises(TypeError, match="ClockMode.Performance"):
        device.soc.clock_mode = 300
    with pytest.raises(TypeError, match="True or False"):
        device.soc.power_measurement_enabled = 1

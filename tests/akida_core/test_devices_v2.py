"""Akida 2.0 and pico virtual devices: the meshes of mapping-v2.md §1, HwVersions, create_device, round trips."""
import pytest

import akida_core as ak
from akida_core.devices import NPType
from akida_core.mapping.devices_v2 import DeviceV2, device_v2_from_dict
from akida_core.hardware.akida2 import AKIDA2

T = NPType
SHEET_MESHES = {   # mapping-v2.md §1: NP type sets (count), skip DMAs x channels
    ak.TwoNodesIPv2: ({(T.CNP1, T.FNP2): 1, (T.CNP1,): 3, (T.CNP1, T.FNP3): 1, (T.CNP1, T.CNP2): 3}, 1, 2),
    ak.FourNodesIPv2: ({(T.TNP_B, T.CNP1, T.FNP2): 1, (T.TNP_B, T.CNP1): 3, (T.TNP_B, T.CNP1, T.FNP3): 3,
                        (T.TNP_B, T.CNP1, T.CNP2): 9}, 1, 4),
    ak.SixNodesIPv2: ({(T.TNP_B, T.CNP1, T.FNP2): 1, (T.TNP_B, T.CNP1): 3, (T.TNP_B, T.CNP1, T.FNP3): 2,
                       (T.TNP_B, T.CNP1, T.CNP2): 18}, 1, 4),
    ak.TwelveNodesIPv2: ({(T.TNP_B, T.CNP1, T.FNP2): 1, (T.TNP_B, T.CNP1): 3, (T.TNP_B, T.CNP1, T.FNP3): 3,
                          (T.TNP_B, T.CNP1, T.CNP2): 41}, 3, 4),
}


@pytest.mark.parametrize("build", list(SHEET_MESHES), ids=lambda b: b.__name__)
def test_v2_meshes_are_the_sheets(build):
    slots, dmas, channels = SHEET_MESHES[build]
    device = build()
    found = {}
    for np_ in device.mesh.nps:
        key = tuple(sorted(np_.types, key=lambda t: t.value))
        found[key] = found.get(key, 0) + 1
    assert found == {tuple(sorted(k, key=lambda t: t.value)): n for k, n in slots.items()}
    assert len(device.mesh.nodes) * 4 == len(device.mesh.nps) == sum(slots.values())
    assert [d.channels for d in device.mesh.skip_dmas] == [channels] * dmas
    assert all(d.ident[1:] == (1, 3) for d in device.mesh.skip_dmas)
    assert device.mesh.hrc.ident == (0, 0, 0) and device.mesh.hrc_has_lut
    assert device.version == ak.FPGA_v2 and str(device.version) == "BC.A2.001.000"
    assert device.ip_version is ak.IpVersion.v2 and device.table is AKIDA2
    assert (device.mesh.np_sram_size.input_bytes, device.mesh.np_sram_size.weight_bytes) == (65536, 51200)
    assert device.name == build.__name__ and build.__name__ in repr(device)
    assert "skip DMA" in repr(device.mesh) and "has_lut=True" in repr(device.mesh)


def test_two_nodes_has_no_tnp_b_and_pico_has_one_tnp_r():
    assert ak.TwoNodesIPv2().mesh.count(T.TNP_B) == 0
    pico = ak.PicoIP()
    assert pico.version == ak.Pico_FPGA and str(pico.version) == "BC.B1.001.000"
    assert pico.ip_version is ak.IpVersion.pico and pico.mesh.hrc is None and pico.mesh.skip_channels == 0
    assert [sorted(t.name for t in np_.types) for np_ in pico.mesh.nps] == [["TNP_R"]]


@pytest.mark.parametrize("version,ip", [(ak.NSoC_v1, "v1"), (ak.NSoC_v2, "v1"), (ak.TwoNodesIP_v1, "v1"),
                                        (ak.AKD1500_v1, "v1"), (ak.FPGA_v2, "v2"), (ak.Pico_FPGA, "pico")])
def test_hw_version_ip_versions(version, ip):
    assert version.ip_version.name == ip


def test_akd1500_stays_akida_1():
    assert ak.AKD1500().ip_version is ak.IpVersion.v1 and not isinstance(ak.AKD1500(), DeviceV2)


def test_create_device_v2_slots_fnps_and_skip_dmas():
    device = ak.create_device(3, 1)      # compute_min_device's example: 3 CNP slots + 1 FNP2 = 4 slots
    kinds = [sorted(t.name for t in np_.types) for np_ in device.mesh.nps]
    assert kinds == [["FNP2"]] + [["CNP1", "CNP2", "TNP_B"]] * 3
    device = ak.create_device(2, 3, num_skip_dma_channel=6)
    kinds = [sorted(t.name for t in np_.types) for np_ in device.mesh.nps]
    assert len(kinds) == 8 and kinds[:3] == [["FNP2", "FNP3"], ["FNP3"], ["FNP3"]]
    assert [d.channels for d in device.mesh.skip_dmas] == [4, 2]
    assert ak.create_device(5, 0).mesh.count(T.CNP1) == 8          # rounded up to a multiple of 4
    assert ak.create_device(1, 0, include_hrc=False).mesh.hrc is None
    small = ak.create_device(1, 0, sram_size=ak.SramSize(1024, 2048))
    assert small.mesh.np_sram_size == ak.SramSize(1024, 2048)
    with pytest.raises(ValueError, match="sram_size"):
        ak.create_device(1, 0, sram_size="big")
    with pytest.raises(ValueError, match="Akida 2.0 options"):
        ak.create_device(1, 0, sram_size=(1, 1), hw_version=ak.NSoC_v2)


def test_device_v2_round_trip_and_equality():
    for build in list(SHEET_MESHES) + [ak.PicoIP]:
        device = build()
        assert device_v2_from_dict(device.to_dict()) == device
    assert ak.SixNodesIPv2() != ak.TwelveNodesIPv2() and ak.SixNodesIPv2() != ak.AKD1000()
    assert ak.create_device(4, 1, 1) != ak.create_device(4, 1, 2)


@pytest.mark.parametrize("mutate", [lambda d: d.update(skip_dmas=[[1, 1, 3, 0]]), lambda d: d.pop("sram"),
                                    lambda d: d.update(hw_version=[0xBC, 0, 0, 2]), lambda d: d.update(name=7),
                                    lambda d: d.update(skip_dmas=[[1, 1, 3, 4]] * 5000)])
def test_bad_v2_device_description(mutate):
    data = ak.SixNodesIPv2().to_dict()
    mutate(data)
    with pytest.raises(ak.ModelFormatError, match="Akida 2.0 device description"):
        device_v2_from_dict(data)

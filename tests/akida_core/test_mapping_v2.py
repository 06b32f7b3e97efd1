"""Akida 2.0 model.map(): the sheet's worked examples (mapping-v2.md §3, §5-§7), skip-connection rules, modes,
IP versions, compute_min_device, unchanged outputs, .fbz, summary and `akida-core map`."""
import json

import numpy as np
import pytest

import akida_core as ak
from akida_core.cli import main
from akida_core.mapping.v2.state import component_count, summary_section

from .v2_mapping_models import A, P, POOL, conv, mobilenet_22, net, randomize, residual_akidanet

HW, SW = ak.BackendType.Hardware, ak.BackendType.Software


def names(model):
    return [s.name for s in model.sequences]


def residual(merge=ak.Add, after=None):
    """Conv > Conv > merge(conv1, conv2) > after (the sheet's §5 example on 16x16x16)."""
    model = net(ak.Conv2D(16, 3), ak.Conv2D(16, 3, activation=A.NoActivation), merge(),
                *([after] if after is not None else []), shape=(16, 16, 16), inbounds={3: [1, 2]})
    return randomize(model)


def inputs_for(model, n=3, seed=1):
    rng = np.random.default_rng(seed)
    first = model.layers[0]
    if first.layer_type == ak.LayerType.InputConv2D:
        return rng.integers(0, 256, (n, *model.input_shape)).astype(np.uint8)
    return rng.integers(-128, 128, (n, *model.input_shape)).astype(np.int8)


# --- §3: sequences, software fallback ---

def test_fallback_example_of_the_sheet():
    model = net(ak.Conv2D(16, 3), ak.Conv2D(16, 3, padding=P.Valid), ak.Conv2D(16, 3), ak.Dense1D(10),
                ak.Dequantizer(), shape=(16, 16, 8))
    model.map(ak.SixNodesIPv2())
    assert names(model) == ["HW/Conv2D_2", "SW/Conv2D_3", "HW/Conv2D_4", "SW/Dense1D_5-Dequantizer_6"]
    assert "got 3136 flattened inputs" in model._mapping.reasons["Dense1D_5"]   # Dense1D inputs > 2048
    with pytest.raises(ak.LayerMappingError, match="Cannot map layer 'Conv2D_3'") as info:
        model.map(ak.SixNodesIPv2(), hw_only=True)
    assert set(info.value.issues) == {"Conv2D_3", "Dense1D_5"} and model.device is None


def test_input_layers_and_dequantizer_in_sequences():
    quantized = ak.Model()
    quantized.add(ak.Quantizer((8, 8, 3), 8, True))
    quantized.add(ak.Conv2D(8, 3))
    quantized.map(ak.SixNodesIPv2(), hw_only=True)
    assert names(quantized) == ["HW/Quantizer_1-Conv2D_2"]
    assert quantized.sequences[0].mappings["Quantizer_1"].nps == ()
    zero_point = ak.Model()   # a uint8 Quantizer read by an InputConv2D (float inputs with a zero point)
    zero_point.add(ak.Quantizer((8, 8, 3), 8, False))
    zero_point.add(ak.InputConv2D((8, 8, 3), 8, 3))
    zero_point.map(ak.SixNodesIPv2(), hw_only=True)
    assert names(zero_point) == ["HW/Quantizer_1-InputConv2D_2"]
    model = mobilenet_22()
    model.map(ak.SixNodesIPv2(), hw_only=True)
    assert names(model) == ["HW/InputConv2D_1-Dequantizer_22"]
    mapping = model.sequences[0].mappings
    assert mapping["InputConv2D_1"].components_text() == "1 HRC" and mapping["Dequantizer_22"].nps == ()


def test_map_none_and_errors():
    model = residual(after=conv())
    model.map(ak.SixNodesIPv2())
    model.map(None)
    assert model.device is None and [s.backend for s in model.sequences] == [SW]
    with pytest.raises(ak.MappingError, match="without device"):
        model.map(None, hw_only=True)
    with pytest.raises(ak.MappingError, match="MapMode"):
        model.map(ak.SixNodesIPv2(), mode="AllNps")
    with pytest.raises(ak.MappingError, match="cnp_max_filters=0"):
        constraints = ak.MapConstraints(ak.SixNodesIPv2())
        constraints.cnp_max_filters = 0
        model.map(ak.SixNodesIPv2(), constraints=constraints)


# --- §7: the 22-layer model, passes and modes ---

def test_mobilenet_22_passes_and_modes():
    model = mobilenet_22()
    uses = {}
    for mode in ak.MapMode:
        model.map(ak.SixNodesIPv2(), hw_only=True, mode=mode)
        (sequence,) = model.sequences
        uses[mode] = sum(len(m.nps) for m in sequence.mappings.values())
        if mode is not ak.MapMode.HwPr:
            assert len(sequence.passes) == 2, mode
        for pass_ in sequence.passes:    # every pass fits the 24 NPs
            assert sum(len(sequence.mappings[lay.name].nps) for lay in pass_.layers
                       if lay.layer_type != ak.LayerType.InputConv2D) <= 24
    assert uses[ak.MapMode.Minimal] <= uses[ak.MapMode.AllNps] <= uses[ak.MapMode.HwPr]
    model.map(ak.TwelveNodesIPv2(), hw_only=True)
    assert len(model.sequences[0].passes) == 1
    model.map(ak.TwelveNodesIPv2(), hw_only=True, mode=ak.MapMode.Minimal)
    assert len(model.sequences[0].passes) == 1


@pytest.mark.parametrize("device,needed", [(ak.TwoNodesIPv2, "16 are needed but 8"), (ak.FourNodesIPv2, "16 are needed")])
def test_mobilenet_22_refused_on_small_devices(device, needed):
    with pytest.raises(ak.LayerMappingError, match=f"Cannot map layer 'Conv2D_20'. Not enough hardware components "
                       f"of type CNP1 available. {needed}"):
        mobilenet_22().map(device(), hw_only=True)


def test_mobilenet_22_fallback_on_small_devices():
    model = mobilenet_22()
    model.map(ak.TwoNodesIPv2())
    assert [(s.name, len(s.passes)) for s in model.sequences] == [
        ("HW/InputConv2D_1-Conv2D_19", 3), ("SW/Conv2D_20", 1), ("HW/Dense1D_21-Dequantizer_22", 1)]
    model.map(ak.FourNodesIPv2())
    assert [(s.name, len(s.passes)) for s in model.sequences] == [
        ("HW/InputConv2D_1-Conv2D_19", 2), ("HW/Conv2D_20", 1), ("HW/Dense1D_21-Dequantizer_22", 1)]


def test_dense_on_fnp2_with_allnps_and_fnp3_with_minimal():
    model = net(ak.Dense1D(10), shape=(1, 1, 64))
    model.map(ak.SixNodesIPv2())
    assert model.sequences[0].mappings["Dense1D_2"].components_text() == "1 FNP2"
    model.map(ak.SixNodesIPv2(), mode=ak.MapMode.Minimal)
    assert model.sequences[0].mappings["Dense1D_2"].components_text() == "1 FNP3"


def test_layer_split_over_filters_and_rows():
    model = net(ak.Conv2D(8, 3), shape=(1536, 1, 8))
    model.map(ak.SixNodesIPv2(), hw_only=True, mode=ak.MapMode.Minimal)
    nps = model.sequences[0].mappings["Conv2D_2"].nps
    assert len(nps) == 24 and sorted(c.row_start for c in nps) == list(range(24))
    model = net(ak.Conv2D(1024, 1), shape=(4, 4, 8))
    model.map(ak.SixNodesIPv2(), hw_only=True, mode=ak.MapMode.Minimal)
    assert [(c.start, c.stop) for c in model.sequences[0].mappings["Conv2D_2"].nps] == [(0, 512), (512, 1024)]


# --- §5: skip connections ---

@pytest.mark.parametrize("merge", [ak.Add, ak.Concatenate])
@pytest.mark.parametrize("device", [ak.SixNodesIPv2, ak.TwoNodesIPv2])
def test_merge_followed_by_a_cnp_layer_maps_with_skip_dma(merge, device):
    model = residual(merge, after=conv())
    model.map(device(), hw_only=True, mode=ak.MapMode.Minimal)
    (sequence,) = model.sequences
    m = sequence.mappings
    assert sequence.name == f"HW/Conv2D_2-L"
    assert m["Conv2D_2"].components_text() == "1 CNP1 + 1 SKIP_DMA_STORE"
    assert m[f"{merge.__name__}_4"].components_text() == "none"
    assert m["L"].components_text() == "1 CNP1 + 1 SKIP_DMA_LOAD"
    assert m["Conv2D_2"].skipdma_stores[0].channel == m["L"].skipdma_loads[0].channel
    assert component_count(model)[ak.NP.Type.SKIP_DMA_STORE] == 1


def test_two_conv_branches_merge():
    model = net(ak.Conv2D(8, 3), ak.Conv2D(8, 3), ak.Conv2D(8, 3), ak.Add(), conv(), inbounds={2: [1], 3: [1], 4: [2, 3]})
    model.map(ak.SixNodesIPv2(), hw_only=True)
    assert model.sequences[0].mappings["Conv2D_3"].skipdma_stores


@pytest.mark.parametrize("after,fragment", [
    (None, "is the last layer of the model"),
    (ak.Dense1D(4), "is followed by Dense1D 'Dense1D_5'"),
    (conv(kernel=9), "No valid merge layer. Add layer requires an outbound that is mappable on a CNP"),
])
def test_refused_merges_leave_the_whole_model_in_software(after, fragment):
    model = residual(after=after)
    with pytest.raises(ak.LayerMappingError, match=fragment):
        model.map(ak.SixNodesIPv2(), hw_only=True)
    model.map(ak.SixNodesIPv2())
    assert [s.backend for s in model.sequences] == [SW] and model.sequences[0].layers[0].name == "Conv2D_2"


def test_input_data_inbound_of_a_merge_is_refused():
    model = net(ak.Conv2D(8, 3, activation=A.NoActivation), ak.Add(), conv(), inbounds={2: [0, 1]})
    with pytest.raises(ak.LayerMappingError, match="Inbounds must be of types Conv, Add or Concat .got InputData"):
        model.map(ak.SixNodesIPv2(), hw_only=True)


def back_to_back(blocks):
    """ResNet-style: x = Conv; repeat: y = Conv(Conv(x)); x = Add(x, y) — each Add feeds the next block twice."""
    model = net(ak.Conv2D(8, 3, activation=A.NoActivation))
    x = model.layers[-1]
    for b in range(blocks):
        model.add(ak.Conv2D(8, 3), [x])
        model.add(ak.Conv2D(8, 3, activation=A.NoActivation))
        model.add(ak.Add(name=f"add_{b}"), [x, model.layers[-1]])
        x = model.layers[-1]
    model.add(conv())
    return model


def test_back_to_back_residual_blocks_are_refused_and_fall_back_to_software():
    model = back_to_back(5)
    with pytest.raises(ak.LayerMappingError, match="Cannot map layer 'add_0'. A layer which outputs directly to one "
                       "skip dma and another skipdma via dual outputs is not supported"):
        model.map(ak.SixNodesIPv2(), hw_only=True)
    model.map(ak.SixNodesIPv2())
    assert [s.backend for s in model.sequences] == [SW]


def test_three_outbounds_and_temporal_with_skips_are_refused():
    model = net(ak.Conv2D(8, 3), ak.Conv2D(8, 3), ak.Conv2D(8, 3), ak.Conv2D(8, 3), inbounds={2: [1], 3: [1], 4: [1]})
    with pytest.raises(ak.LayerMappingError, match="at most 2 layers on hardware .got 3"):
        model.map(ak.SixNodesIPv2(), hw_only=True)
    model = net(ak.Conv2D(8, 1), ak.BufferTempConv(8, 2), ak.Conv2D(8, 1), ak.Add(), conv(kernel=1),
                inbounds={4: [1, 3]})
    with pytest.raises(ak.LayerMappingError, match="cannot have both temporal layers and skip connections"):
        model.map(ak.SixNodesIPv2(), hw_only=True)


def test_fifo_layers_take_tnp_b_and_a_skip_dma_pair():
    model = net(ak.Conv2D(8, 1), ak.BufferTempConv(8, 5), ak.DepthwiseBufferTempConv(10), ak.Conv2D(8, 1))
    model.map(ak.SixNodesIPv2(), hw_only=True, mode=ak.MapMode.Minimal)
    assert model.sequences[0].mappings["BufferTempConv_3"].components_text() == \
        "1 TNP_B + 1 SKIP_DMA_STORE + 1 SKIP_DMA_LOAD"
    with pytest.raises(ak.LayerMappingError, match="BufferTempConv_3 can't be mapped in the current pass: the device "
                       "has no TNP_B"):
        model.map(ak.TwoNodesIPv2(), hw_only=True)


# --- §6: IP versions, minimum device ---

def test_generations_never_mix():
    v1 = ak.Model()
    v1.add(ak.InputData((8, 8, 1), input_bits=4))
    v1.add(ak.Convolutional((3, 3), 8, weights_bits=4, act_bits=4))
    with pytest.raises(ak.MappingError, match="IP version v1 does not match the device IP version v2"):
        v1.map(ak.SixNodesIPv2())
    v2 = residual(after=conv())
    for device in (ak.AKD1000(), ak.AKD1500(), ak.PicoIP()):
        for hw_only in (False, True):
            with pytest.raises(ak.MappingError, match="The IP version of the model and device must be identical"):
                v2.map(device, hw_only=hw_only)
    with pytest.raises(ValueError, match="Only IpVersion.v2 and IpVersion.pico models are supported"):
        ak.compute_min_device(v1)


def test_stateful_recurrent_models_map_on_pico_only():
    model = net(ak.StatefulRecurrent(4, 4), ak.Dequantizer(), shape=(1, 8, 2))
    with pytest.raises(ak.MappingError, match="IpVersion.pico .it holds a StatefulRecurrent layer"):
        model.map(ak.SixNodesIPv2())
    model.map(ak.PicoIP(), hw_only=True)
    assert model.sequences[0].mappings["StatefulRecurrent_2"].components_text() == "1 TNP_R"


def test_compute_min_device_examples():
    model = net(ak.Conv2D(8, 3), ak.Conv2D(8, 3, kernel_stride=2), ak.Conv2D(8, 3, pool_type=POOL.Average),
                ak.Dense1D(4), ak.Dequantizer())
    device = ak.compute_min_device(model)
    assert len(device.mesh.nps) == 4 and device.mesh.count(ak.NP.Type.FNP2) == 1 and device.mesh.skip_channels == 0
    model.map(device, hw_only=True)
    model = net(ak.Conv2D(8, 1), ak.BufferTempConv(8, 3), ak.DepthwiseBufferTempConv(3), ak.Conv2D(8, 1))
    device = ak.compute_min_device(model)
    assert len(device.mesh.nps) == 4 and [d.channels for d in device.mesh.skip_dmas] == [2]
    hwpr = ak.compute_min_device(mobilenet_22(), enable_hwpr=True)
    assert len(hwpr.mesh.nps) < len(ak.compute_min_device(mobilenet_22()).mesh.nps)
    small = ak.compute_min_device(net(ak.Conv2D(8, 3)), minimal_memory=True)
    assert small.mesh.np_sram_size.weight_bytes == 8 * 3 * 3 * 8   # 8 filters of 3x3x8 bytes on one NP
    with pytest.raises(ak.MappingError, match="It was not possible to find a device for this model. Reason: Cannot map "
                       "layer 'L'"):
        ak.compute_min_device(net(conv(kernel=9)))


# --- outputs, .fbz, summary, CLI ---

def test_akidanet_like_residual_model_on_six_nodes_outputs_unchanged(tmp_path):
    model = residual_akidanet()
    x = inputs_for(model)
    before = model.forward(x)
    model.map(ak.SixNodesIPv2(), hw_only=True)
    (sequence,) = model.sequences
    stores = sum(len(m.skipdma_stores) for m in sequence.mappings.values())
    assert stores == 3 and all(sequence.mappings[f"conv_{b + 1}"].skipdma_loads for b in range(3))
    np.testing.assert_array_equal(model.forward(x), before)
    path = tmp_path / "residual.fbz"
    model.save(str(path))
    loaded = ak.Model(str(path))
    assert names(loaded) == names(model) and loaded.device == ak.SixNodesIPv2()
    assert [lay.name for p in loaded.sequences[0].passes for lay in p.layers] == \
        [lay.name for p in sequence.passes for lay in p.layers]
    np.testing.assert_array_equal(loaded.forward(x), before)


def test_software_fallback_outputs_equal_the_unmapped_model():
    model = randomize(net(ak.Conv2D(8, 3), ak.Conv2D(8, 9), ak.Conv2D(8, 3), ak.Dense1D(4), ak.Dequantizer()))
    x = inputs_for(model)
    before = model.predict(x)
    model.map(ak.TwoNodesIPv2())
    assert SW in [s.backend for s in model.sequences] and HW in [s.backend for s in model.sequences]
    np.testing.assert_array_equal(model.predict(x), before)


def test_corrupted_saved_mapping_is_refused():
    model = residual(after=conv())
    model.map(ak.SixNodesIPv2())
    description = model.to_dict()
    description["mapping_v2"]["sequences"][0]["passes"] = [["Conv2D_2"]]
    with pytest.raises(ak.ModelFormatError, match="saved Akida 2.0 mapping differs"):
        ak.Model.from_dict(description)
    description["mapping_v2"]["mode"] = "Fastest"
    with pytest.raises(ak.ModelFormatError, match="bad mode"):
        ak.Model.from_dict(description)


def test_summary_section_shows_sequences_passes_nps_and_skip_dma():
    model = mobilenet_22()
    model.map(ak.TwoNodesIPv2())
    text = "\n".join(summary_section(model))
    assert "Hardware mapping on TwoNodesIPv2" in text and "Sequence HW/InputConv2D_1-Conv2D_19 (Hardware) - passes: 3" in text
    assert "-- pass 3 --" in text and "Sequence SW/Conv2D_20 (Software) - runs on the host" in text
    assert "Conv2D_20: Not enough hardware components of type CNP1 available. 16 are needed but 8" in text
    model = residual(after=conv())
    model.map(ak.SixNodesIPv2())
    text = "\n".join(summary_section(model))
    assert "SKIP_DMA_STORE" in text and "Skip DMAs: 1 of 4 channels" in text


def test_cli_map_v2(tmp_path, capsys):
    path = str(tmp_path / "m.fbz")
    mobilenet_22().save(path)
    assert main(["map", "-m", path, "--device", "SixNodesIPv2"]) == 0
    out = capsys.readouterr().out
    assert "HW/InputConv2D_1-Dequantizer_22 (Hardware): 22 layer(s), 2 pass(es)" in out and "pass 2:" in out
    assert main(["map", "-m", path, "--device", "TwoNodesIPv2", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in report["sequences"]][1] == "SW/Conv2D_20" and report["ip_version"] == "v2"
    assert main(["map", "-m", path, "--device", "TwoNodesIPv2", "--hw-only"]) == 1
    assert "Conv2D_20" in capsys.readouterr().err
    assert main(["map", "-m", path, "--device", "AKD1000"]) == 2
    assert "must be identical" in capsys.readouterr().err

"""model.map(): sequences, map modes, the benchmark models, exact inference, summary and estimates."""
import numpy as np
import pytest

import akida_core as ak
from akida_core.devices import NPType
from bench.models import BENCHMARK_MODELS, akidanet_05, random_inputs

from ..workload import steps
from .helpers import randomize, small_cnn


def reference_three_layer():
    """The reference's example: InputConvolutional(3->16) + Convolutional(16->32) + FullyConnected, 32x32."""
    model = ak.Model()
    model.add(ak.InputConvolutional((32, 32, 3), (3, 3), 16, weights_bits=8, act_bits=4))
    model.add(ak.Convolutional((3, 3), 32, weights_bits=4, act_bits=4))
    model.add(ak.FullyConnected(10, weights_bits=4, activation=False))
    return randomize(model, threshold_range=(0, 40), act_step_range=(4.0, 16.0))


def nine_by_nine_in_the_middle():
    """IC > Conv > Conv(9x9) > Conv(GAP) > FC, the reference's HW / SW / HW example."""
    model = ak.Model()
    model.add(ak.InputConvolutional((16, 16, 3), (3, 3), 8, weights_bits=8, act_bits=4))
    model.add(ak.Convolutional((3, 3), 8, weights_bits=4, act_bits=4))
    model.add(ak.Convolutional((9, 9), 8, weights_bits=4, act_bits=4))
    model.add(ak.Convolutional((3, 3), 8, weights_bits=4, act_bits=4, pool_type=ak.PoolType.Average))
    model.add(ak.FullyConnected(5, weights_bits=4, activation=False))
    return randomize(model, threshold_range=(0, 40), act_step_range=(4.0, 16.0))


def test_unmapped_model_is_one_software_sequence():
    model = reference_three_layer()
    (sequence,) = model.sequences
    assert sequence.name == "SW/InputConv_1-Fully_3" and sequence.backend is ak.BackendType.Software
    assert sequence.program is None and model.device is None
    model.map(ak.AKD1000())
    assert model.device == ak.AKD1000()
    model.map(None)
    assert [s.name for s in model.sequences] == ["SW/InputConv_1-Fully_3"] and model.device is None


def test_hw_sw_hw_sequences():
    model = nine_by_nine_in_the_middle()
    model.map(ak.AKD1000())
    assert [(s.name, s.backend.name) for s in model.sequences] == [
        ("HW/InputConv_1-Conv_2", "Hardware"), ("SW/Conv_3", "Software"), ("HW/Conv_4-Fully_5", "Hardware")]
    assert [len(s.passes) for s in model.sequences] == [1, 1, 1]
    assert model.sequences[1].program is None and model.sequences[1].nps == {"Conv_3": ()}
    with pytest.raises(ak.MappingError, match="Cannot map layer 'Conv_3'. Kernel size 9 is not supported"):
        model.map(ak.AKD1000(), hw_only=True)


def test_all_nps_versus_minimal():
    model = reference_three_layer()
    model.map(ak.AKD1000())   # default mode: AllNps, one filter per NP here
    nps = model.sequences[0].nps
    assert [(len(nps[n]), nps[n][0].type) for n in ("InputConv_1", "Conv_2", "Fully_3")] == \
        [(1, NPType.HRC), (32, NPType.CNP1), (1, NPType.FNP2)]   # 32768 x 10 weights: external memory
    assert model.sequences[0].external_memory == 32768 * 10 * 4 // 8
    assert [(m.start, m.stop) for m in nps["Conv_2"]] == [(i, i + 1) for i in range(32)]
    all_size = model.sequences[0].program_size
    model.map(ak.AKD1000(), mode=ak.MapMode.Minimal)
    nps = model.sequences[0].nps
    assert [len(nps[n]) for n in ("InputConv_1", "Conv_2", "Fully_3")] == [1, 1, 1]
    assert model.sequences[0].program_size < all_size
    model.map(ak.AKD1000(), mode=ak.MapMode.HwPr)
    assert len(model.sequences[0].nps["Conv_2"]) == 32 and len(model.sequences[0].passes) == 1


def test_all_nps_uses_the_most_nps_that_fit():
    model = ak.Model()
    model.add(ak.InputData((4, 4, 8), input_bits=4))
    for i in range(3):
        model.add(ak.Convolutional((3, 3), 40, weights_bits=4, act_bits=4, name=f"c{i}"))
    device = ak.create_device(100, 0, hw_version=ak.NSoC_v2)
    model.map(device, hw_only=True)
    assert [len(model.sequences[0].nps[f"c{i}"]) for i in range(3)] == [40, 40, 20]
    model.map(ak.create_device(12, 0, hw_version=ak.NSoC_v2), hw_only=True)
    counts = [len(model.sequences[0].nps[f"c{i}"]) for i in range(3)]
    assert sum(counts) <= 12 and counts == [4, 4, 4]


@pytest.mark.parametrize("name", sorted(BENCHMARK_MODELS))
def test_benchmark_models_map_on_akd1000_hw_only(name):
    model = BENCHMARK_MODELS[name]()
    model.map(ak.AKD1000(), hw_only=True)
    (sequence,) = model.sequences
    assert sequence.name == f"HW/{model.layers[0].name}-{model.layers[-1].name}"
    used = sum(len(nps) for nps in sequence.nps.values())
    assert used <= 78 + 1 and sequence.program_size > 0


def test_akidanet_runs_out_of_nps_on_two_nodes_and_maps_fast():
    model = akidanet_05()
    with steps() as work:
        model.map(ak.AKD1000(), hw_only=True)
    assert work.steps < 3000 * len(model.layers)  # about 1,100 per layer: each layer fitted once
    model.map(ak.AKD1500(), hw_only=True)
    with pytest.raises(ak.MappingError, match="Cannot map layer 'separable_9'. The device runs out of NPs"):
        model.map(ak.TwoNodesIPv1(), hw_only=True)
    model.map(ak.TwoNodesIPv1())
    assert [s.name for s in model.sequences] == ["HW/conv_0-separable_8", "HW/separable_9-separable_13",
                                                 "HW/classifier-classifier"]


@pytest.mark.parametrize("build,device", [
    (small_cnn, ak.AKD1000), (nine_by_nine_in_the_middle, ak.AKD1000), (BENCHMARK_MODELS["mnist_cnn"], ak.AKD1500),
    (BENCHMARK_MODELS["ds_cnn_kws"], ak.TwoNodesIPv1)])
def test_mapping_does_not_change_results(build, device):
    model = build()
    x = random_inputs(model, 3, seed=1)
    before_forward, before_predict = model.forward(x), model.predict(x)
    for mode in ak.MapMode:
        model.map(device(), mode=mode)
        np.testing.assert_array_equal(model.forward(x), before_forward)
        np.testing.assert_array_equal(model.predict(x), before_predict)


def test_structural_change_drops_the_mapping():
    model = reference_three_layer()
    model.map(ak.AKD1000())
    model.pop_layer()
    assert model.device is None and model.sequences[0].backend is ak.BackendType.Software


def test_summary_after_mapping():
    model = nine_by_nine_in_the_middle()
    model.map(ak.AKD1000())
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    sizes = [s.program_size for s in model.sequences if s.program is not None]
    assert "Hardware mapping on VirtualDevice/BC.00.000.002 (NSoC_v2), mode AllNps" in text
    assert f"Sequences: 3 (2 hardware, 1 software)  Program size: {sum(sizes):,} bytes" in text
    assert f"Sequence HW/InputConv_1-Conv_2 (Hardware) - passes: 1 - size: {sizes[0]:,} bytes" in text
    assert "Conv_3: Kernel size 9 is not supported" in text and "8 CNP1" in text and "1 HRC" in text
    assert "Component (type)" in text and "NPs used: 9 of 78" in text and "External Memory" not in text
    model.map(None)
    lines.clear()
    model.summary(print_fn=lines.append)
    assert "Hardware mapping" not in "\n".join(lines)


def test_summary_shows_external_memory():
    model = ak.Model()
    model.add(ak.InputData((1, 1, 4096), input_bits=4))
    model.add(ak.FullyConnected(200, weights_bits=4, name="big"))
    model.map(ak.AKD1000(), hw_only=True)
    lines = []
    model.summary(print_fn=lines.append)
    assert "External Memory (Bytes): 409,600" in "\n".join(lines) and "1 FNP2" in "\n".join(lines)


def test_estimates_are_labelled_and_follow_the_clock():
    model = reference_three_layer()
    assert model.statistics.estimates is None
    model.map(ak.AKD1000())
    estimates = model.statistics.estimates
    assert "ESTIMATES" in str(model.statistics) and "not measured" in str(model.statistics)
    by_mode = {e.clock_mode: e for e in estimates.entries}
    performance, economy = by_mode[ak.soc.ClockMode.Performance], by_mode[ak.soc.ClockMode.Economy]
    assert economy.latency_ms == pytest.approx(3 * performance.latency_ms)
    assert performance.fps == pytest.approx(1e3 / performance.latency_ms)
    assert estimates.clock_mode is ak.soc.ClockMode.Performance
    model.device.soc.clock_mode = ak.soc.ClockMode.LowPower
    assert model.statistics.estimates.fps == pytest.approx(by_mode[ak.soc.ClockMode.LowPower].fps)


def test_estimates_count_events():
    model = reference_three_layer()
    model.map(ak.AKD1000(), mode=ak.MapMode.Minimal)
    dense = model.statistics.estimates.at()[0].operations
    model.forward(np.zeros((2, 32, 32, 3), np.uint8))   # silent inputs: no events after the HRC
    sparse = model.statistics.estimates.at()[0].operations
    assert sparse < dense
    model.map(ak.AKD1000())   # more NPs share the work: lower latency, same operations
    assert model.statistics.estimates.at()[0].operations == sparse


def test_seed_user_guide_code_runs_end_to_end():
    """The user guide's "Model Hardware Mapping" and "Performances measurement" snippets, on a virtual device."""
    import akida_core as akida
    from akida_core import AKD1000, Device, NSoC_v2, TwoNodesIP, devices

    assert devices() == []                                    # no hardware: use virtual devices
    mesh = AKD1000().mesh
    device = Device(NSoC_v2, mesh)
    assert device == AKD1000() and str(TwoNodesIP()) == "VirtualDevice/BC.A1.003.006"
    model = BENCHMARK_MODELS["mnist_cnn"]()
    model.map(device, hw_only=True)
    sequence = model.sequences[0]
    program = sequence.program
    lines = []
    model.summary(print_fn=lines.append)
    assert f"size: {len(program):,} bytes" in "\n".join(lines)
    device.soc.power_measurement_enabled = True
    device.soc.clock_mode = akida.soc.ClockMode.Performance
    model.forward(random_inputs(model, 2))
    text = str(model.statistics)
    assert "Inference statistics (2 samples)" in text and "ESTIMATES" in text and model.statistics.fps is None

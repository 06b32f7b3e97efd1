"""The AKD1000 constraints table: numbers of akida-layers.md §2, frozen, readable by name."""
import dataclasses

import pytest

from akida_core import LayerType, Padding, PoolType
from akida_core.hardware import AKD1000, TARGETS, HardwareTarget, LayerLimits, get_target

pytestmark = pytest.mark.akida_version("v1")  # Akida 1.0 flows; the default is Akida 2.0


def test_known_numbers():
    hrc = AKD1000.limits(LayerType.InputConvolutional)
    assert hrc.kernel_sizes == (3, 5, 7) and hrc.strides == (1, 2, 3)
    assert hrc.max_filters == 192 and hrc.max_input_width == 256 and hrc.input_channels == (1, 3)
    assert hrc.threshold_range == (-2 ** 23, 2 ** 23 - 1) and hrc.max_act_step == 2 ** 20
    cnp = AKD1000.limits(LayerType.Convolutional)
    assert cnp.kernel_sizes == (1, 3, 5, 7) and cnp.allowed_kernels_for_stride(2) == (3,)
    assert cnp.allowed_kernels_for_stride(1) == (1, 3, 5, 7)
    assert cnp.paddings == (Padding.Same,) and cnp.weights_bits == (1, 2, 4)
    assert PoolType.Average in cnp.pool_types and cnp.gap_max_area == 256
    assert AKD1000.limits(LayerType.SeparableConvolutional).weights_bits == (2, 4)
    fnp = AKD1000.limits(LayerType.FullyConnected)
    assert fnp.max_inputs == 57334 and fnp.threshold_range == (-2 ** 19, 2 ** 19 - 1)


@pytest.mark.parametrize("kernel,bits,expected", [
    (3, 4, 448), (7, 4, 149), (7, 1, 896),   # probed
    (7, 2, 149), (5, 2, 448), (1, 1, 896),   # conservative: a bigger probed filter fits
])
def test_per_filter_memory(kernel, bits, expected):
    assert AKD1000.limits(LayerType.Convolutional).max_input_channels(kernel, bits) == expected


def test_separable_has_no_memory_limit():
    assert AKD1000.limits(LayerType.SeparableConvolutional).max_input_channels(3, 4) is None


def test_rows_are_frozen():
    row = AKD1000.limits(LayerType.Convolutional)
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.max_filters = 3
    with pytest.raises(TypeError):
        row.max_input_channels_per_filter[(9, 4)] = 1
    with pytest.raises(TypeError):
        AKD1000.layers[LayerType.Unknown] = row


def test_get_target():
    assert get_target("akd1000") is AKD1000 and get_target(AKD1000) is AKD1000
    assert TARGETS["AKD1000"] is AKD1000
    with pytest.raises(ValueError, match="known targets: AKD1000"):
        get_target("AKD9999")


def test_mismatched_row_key_rejected():
    row = LayerLimits(layer_type=LayerType.Convolutional, np_type="CNP")
    with pytest.raises(ValueError, match="row for FullyConnected"):
        HardwareTarget(name="X", ip_version="v1", layers={LayerType.FullyConnected: row})
    with pytest.raises(ValueError, match="max_pool_stride_rule"):
        LayerLimits(layer_type=LayerType.Convolutional, np_type="CNP", max_pool_stride_rule="x")


def test_doc_table_is_generated_from_the_table():
    import os

    from akida_core.hardware.markdown import constraints_markdown
    path = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "hardware-constraints.md")
    text = open(path).read()
    begin = text.index("<!-- BEGIN GENERATED TABLE -->\n") + len("<!-- BEGIN GENERATED TABLE -->\n")
    end = text.index("<!-- END GENERATED TABLE -->")
    assert text[begin:end] == constraints_markdown(AKD1000)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_quantizeml_registers_are_the_table_numbers(target):
    """quantize() fits blocks into the registers it knows (it cannot import akida_core)."""
    from quantizeml.params import INPUT_LAYER_REGISTERS, LAYER_REGISTERS
    table = get_target(target)
    hrc = table.limits(LayerType.InputConvolutional)
    assert (hrc.max_act_step, hrc.threshold_bits) == INPUT_LAYER_REGISTERS
    for kind in (LayerType.Convolutional, LayerType.SeparableConvolutional,
                 LayerType.FullyConnected):
        row = table.limits(kind)
        assert (row.max_act_step, row.threshold_bits) == LAYER_REGISTERS


def test_quantizeml_act_steps_take_the_float32_activation_path():
    """quantize() puts act_step on Akida's 1/16 grid; below the CNP/FNP register (2**16) such
    steps have at most 4 + 16 significant bits, so akida_core runs the activation in float32."""
    import numpy as np
    from akida_core import kernels
    from quantizeml.params import LAYER_REGISTERS
    from quantizeml.quantizers import ACT_STEP_FRACTION_BITS, round_act_step
    register_bits = int(np.log2(LAYER_REGISTERS[0]))
    assert ACT_STEP_FRACTION_BITS + register_bits <= kernels.FLOAT32_STEP_BITS
    raw = np.random.default_rng(0).uniform(1 / 16, LAYER_REGISTERS[0] - 1 / 32, 1000)
    steps = round_act_step(np.concatenate([raw, [LAYER_REGISTERS[0] - 1 / 16, 1 / 16]]))
    for bits in (1, 2, 4):
        assert kernels.float32_exact_steps(steps, bits)


def test_quantizeml_registers_equal_the_runtime_registers():
    """quantizeml's Keras twins and akida_core must emulate the same Akida 1.0 register widths."""
    from akida_core import kernels
    from akida_core.layers.base import FC_POTENTIAL_BITS, GAP_ACCUMULATOR_BITS
    from quantizeml.accumulators import POTENTIAL_BITS
    from quantizeml.quantizers import ACT_STEP_FRACTION_BITS
    assert POTENTIAL_BITS == FC_POTENTIAL_BITS == GAP_ACCUMULATOR_BITS == 20
    assert ACT_STEP_FRACTION_BITS == kernels.ACT_STEP_FRACTION_BITS == 4

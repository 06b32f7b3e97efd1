"""cnn2snn-check against an Akida 2.0 device: the converted model is mapped with hw_only=True."""
import json

import keras
import pytest

import akida_core
from cnn2snn import check_model_compatibility
from cnn2snn.cli import check_main
from cnn2snn.errors import HARDWARE
from quantizeml.models import QuantizationParams, quantize

from ..e2e.qbuild import build, conv, dense, flatten, relu
from ..quantizeml.v2_models import images, residual_separable


def _gap_model(size):
    """Conv > ReLU > GAP > Dense: Akida 2.0 devices pool globally over at most 144 pixels."""
    keras.utils.set_random_seed(1)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255)(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", name="pooled_conv")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(4, name="dense")(x))


def _quantized(model, size):
    return quantize(model, qparams=QuantizationParams(), samples=images(16, size=size))


def test_akida2_model_that_maps_has_no_issue_on_the_device():
    qmodel = _quantized(residual_separable(size=16), 16)
    assert check_model_compatibility(qmodel, "SixNodesIPv2") == []
    assert check_model_compatibility(qmodel, akida_core.SixNodesIPv2()) == []


def test_akida2_layer_the_device_refuses_is_one_hardware_issue_with_the_limit():
    qmodel = _quantized(_gap_model(16), 16)
    issues = check_model_compatibility(qmodel, "sixnodesipv2")
    assert [issue.level for issue in issues] == [HARDWARE]
    assert "144" in issues[0].message and "16 x 16 = 256" in issues[0].message
    assert "SixNodesIPv2" in issues[0].message
    assert check_model_compatibility(_quantized(_gap_model(12), 12), "SixNodesIPv2") == []  # 144: just inside
    assert check_model_compatibility(qmodel) == []  # no Akida 2.0 device named: conversion only


def test_float_model_against_an_akida2_device_is_quantized_converted_and_mapped(tmp_path, capsys):
    """As MetaTF: a float model is quantized (MetaTF's defaults), converted and mapped with
    hw_only=True; the device's refusal is a hardware-level issue, not an exception."""
    issues = check_model_compatibility(_gap_model(16), device="SixNodesIPv2")
    assert [issue.level for issue in issues] == [HARDWARE]
    assert "144" in issues[0].message
    assert check_model_compatibility(_gap_model(12), device=akida_core.SixNodesIPv2()) == []
    path = tmp_path / "float.keras"
    _gap_model(16).save(path)
    assert check_main([str(path), "--target", "SixNodesIPv2", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["akida_version"] == "v2" and report["converts"] and not report["compatible"]


def test_target_and_device_together_are_a_usage_error():
    with pytest.raises(ValueError, match="only one"):
        check_model_compatibility(_gap_model(12), "AKD1000", device="SixNodesIPv2")


def test_akida1_quantized_model_against_an_akida2_device_is_a_usage_error():
    qmodel = build((8, 8, 3), [conv(4, 3, weight_bits=8), relu(), flatten(), dense(3)])
    with pytest.raises(ValueError, match="quantized for Akida 1.0"):
        check_model_compatibility(qmodel, "SixNodesIPv2")


def test_cli_checks_a_quantized_akida2_file_against_the_device(tmp_path, capsys):
    path = tmp_path / "q.keras"
    _quantized(_gap_model(16), 16).save(path)
    assert check_main([str(path), "--target", "SixNodesIPv2", "--format", "json"]) == 1
    out = capsys.readouterr().out
    assert '"level": "hardware"' in out and '"target": "SixNodesIPv2"' in out
    assert check_main([str(path), "--target", "AKD1000"]) == 0  # converts; no Akida 2.0 device to map on



def _lut_model(pool):
    """Conv > gelu (fused) > Conv [> MaxPool] > LeakyReLU > Conv: two LUT blocks with 8-bit
    outputs (a last LUT block keeps 28-bit sums, which devices refuse)."""
    keras.utils.set_random_seed(2)
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255)(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="gelu", name="conv")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", name="lut_conv")(x)
    if pool:
        x = keras.layers.MaxPooling2D(padding="same")(x)
    x = keras.layers.LeakyReLU(name="leaky")(x)
    return keras.Model(inp, keras.layers.Conv2D(4, 1, name="head")(x))


def test_lut_blocks_map_unless_they_max_pool():
    """LUT blocks map on the device; a LUT after a max pool is a hardware issue (Akida 2.0
    devices apply no LUT to pooled values) of a model that still converts."""
    assert check_model_compatibility(_quantized(_lut_model(False), 8), "SixNodesIPv2") == []
    issues = check_model_compatibility(_quantized(_lut_model(True), 8), "SixNodesIPv2")
    assert [issue.level for issue in issues] == [HARDWARE]
    assert "'lut_conv'" in issues[0].message and "activation LUT" in issues[0].message

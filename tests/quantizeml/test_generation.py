"""Which scheme quantize runs (default Akida 2.0, as MetaTF) and MetaTF's QuantizationParams."""
import dataclasses
import io
import warnings

import keras
import pytest

import quantizeml
import quantizeml.layers
import quantizeml.models
from quantizeml import Akida1QuantizationParams, QuantizationConfigError, QuantizationParams
from quantizeml import layers as akida1_layers
from quantizeml.calibrate import plain_verbose
from quantizeml.generation import to_akida1
from quantizeml.models import quantize
from quantizeml.v2 import layers as akida2_layers

VARIABLE = "CNN2SNN_TARGET_AKIDA_VERSION"


def _chain():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, name="conv"),
                             keras.layers.ReLU(6.0, name="relu"), keras.layers.Flatten(),
                             keras.layers.Dense(3)])


def _samples():
    import numpy as np
    return np.random.default_rng(0).integers(0, 256, (8, 8, 8, 1)).astype("float32")


def test_one_metatf_class_everywhere_with_metatf_signature():
    assert quantizeml.QuantizationParams is quantizeml.layers.QuantizationParams \
        is quantizeml.models.QuantizationParams
    fields = [(f.name, f.default) for f in dataclasses.fields(QuantizationParams)]
    assert fields == [("activation_bits", 8), ("per_tensor_activations", False),
                      ("weight_bits", 8), ("output_bits", 8), ("input_weight_bits", 8),
                      ("input_dtype", "uint8"), ("buffer_bits", 32), ("last_output_bits", None)]


@pytest.mark.parametrize("version", [None, "v1", "v2"])
def test_metatf_bit_widths_are_accepted_whatever_the_generation(monkeypatch, version):
    if version is not None:
        monkeypatch.setenv(VARIABLE, version)
    params = QuantizationParams(8, 8, 8)  # MetaTF reads the int 8 as per_tensor_activations=True
    assert params.per_tensor_activations is True and params.weight_bits == 8
    assert QuantizationParams(per_tensor_activations=0).per_tensor_activations is False
    assert QuantizationParams(activation_bits=1, weight_bits=2, input_weight_bits=2).weight_bits == 2
    assert QuantizationParams(activation_bits=16, weight_bits=16).activation_bits == 16


@pytest.mark.parametrize("kwargs,match", [
    ({"weight_bits": 1}, "weight_bits=1 is out of range; allowed: 2 to 16"),
    ({"input_weight_bits": 1}, "input_weight_bits=1 is out of range; allowed: 2 to 16"),
    ({"activation_bits": 0}, "activation_bits=0 is out of range; allowed: 1 to 16"),
    ({"activation_bits": 17}, "activation_bits=17 is out of range; allowed: 1 to 16"),
    ({"buffer_bits": 33}, "buffer_bits=33 is out of range; allowed: 8 to 32"),
    ({"weight_bits": 4.0}, r"weight_bits=4.0 \(float\) is not an integer"),
    ({"per_tensor_activations": "yes"}, r"per_tensor_activations='yes' \(str\) must be True"),
    ({"per_tensor_activations": None}, r"per_tensor_activations=None \(NoneType\) must be True"),
    ({"input_dtype": "float32"}, "input_dtype='float32' must be an integer dtype"),
    ({"input_dtype": "not-a-dtype"}, "input_dtype='not-a-dtype' is not a numpy dtype"),
])
def test_bad_values_name_the_field_the_value_and_the_range(kwargs, match):
    with pytest.raises(ValueError, match=match):
        QuantizationParams(**kwargs)


def test_metatf_defaults_quantize_with_the_akida2_scheme_by_default():
    qmodel = quantize(_chain(), samples=_samples())
    assert isinstance(qmodel.get_layer("conv"), akida2_layers.QuantizedConv2D)
    qmodel = quantize(_chain(), qparams=QuantizationParams(weight_bits=4), samples=_samples())
    assert isinstance(qmodel.get_layer("conv"), akida2_layers.QuantizedConv2D)


def test_akida1_params_are_an_explicit_akida1_choice(monkeypatch):
    qmodel = quantize(_chain(), qparams=Akida1QuantizationParams(), samples=_samples(), verbose=0)
    assert isinstance(qmodel.get_layer("conv"), akida1_layers.QuantizedConv2D)
    monkeypatch.setenv(VARIABLE, "v2")
    with pytest.raises(QuantizationConfigError, match="Akida 1.0 recipe but Akida 2.0 is "
                       "selected.*set_akida_version\\(AkidaVersion.v1\\)"):
        quantize(_chain(), qparams=Akida1QuantizationParams(), samples=_samples())
    with pytest.raises(QuantizationConfigError, match="Akida 1.0 recipe"):
        quantize(_chain(), q_config={"conv": Akida1QuantizationParams()}, samples=_samples())


def test_under_akida1_metatf_params_are_translated(monkeypatch):
    monkeypatch.setenv(VARIABLE, "v1")
    tutorial = QuantizationParams(input_weight_bits=8, weight_bits=4, activation_bits=4)
    assert to_akida1(tutorial) == Akida1QuantizationParams(
        activation_bits=4, per_tensor_activations=False, weight_bits=4, output_bits=4,
        input_weight_bits=8)  # output_bits 8 has no Akida 1.0 InputData: the Akida 1.0 default
    qmodel = quantize(_chain(), qparams=tutorial, samples=_samples(), verbose=0)
    assert isinstance(qmodel.get_layer("conv"), akida1_layers.QuantizedConv2D)
    qmodel = quantize(_chain(), samples=_samples(), verbose=0)  # no qparams: the Akida 1.0 recipe
    assert qmodel.get_layer("conv").weight_bits == 8
    assert qmodel.get_layer("relu").activation_bits == 4


def test_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv(VARIABLE, "2.0")
    with pytest.raises(QuantizationConfigError, match=f"{VARIABLE}='2.0'.*allowed: v1, v2"):
        quantize(_chain(), samples=_samples())


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_becomes_plain_lines_off_a_terminal():
    assert plain_verbose(1, io.StringIO()) == 2
    assert plain_verbose(1, _Terminal()) == 1
    assert plain_verbose(0, io.StringIO()) == 0 and plain_verbose(2, _Terminal()) == 2


def test_verbose_quantize_writes_no_escape_codes_into_a_file(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize(_chain(), qparams=Akida1QuantizationParams(), samples=_samples(), verbose=1)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\b" not in out and "\r" not in out

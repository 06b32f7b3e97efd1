"""Issue levels, end to end: hardware-level models convert bit-exactly (one warning), map as several
sequences and fail map(hw_only=True) for the rule the checker names; convert-level ones raise."""
import warnings

import numpy as np
import pytest
from keras import layers as L

import akida_core
import cnn2snn
from cnn2snn import ConversionError, ConversionWarning
from quantizeml import Akida1QuantizationParams
from quantizeml.models import quantize

from .models import conv, relu, seq

pytestmark = pytest.mark.akida_version("v1")  # Akida 1.0 flows; the default is Akida 2.0


def _quantized(model, shape, seed=0, high=256, qparams=None):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for w in layer.weights:
            w.assign(rng.normal(0.0, 0.5, w.shape).astype(np.float32))
    x = rng.integers(0, high, (16, *shape)).astype(np.float32)
    return quantize(model, qparams=qparams or Akida1QuantizationParams(), samples=x, verbose=0), x


# name: (float model, input shape, rule the checker reports at hardware level). Each is expressed by
# the Akida 1.0 layer set (MetaTF converts it) but AKD1000's mapping refuses it in hardware.
HARDWARE_CASES = {
    "valid-conv-after-input": (lambda: seq((10, 10, 3), conv(8, 3), relu(),
                                           conv(8, 3, padding="valid"), relu(), L.Flatten(),
                                           L.Dense(3)), (10, 10, 3), "padding"),
    "conv-5x5-stride-2": (lambda: seq((12, 12, 1), conv(8, 3), relu(), conv(8, 5, strides=2),
                                      relu(), L.Flatten(), L.Dense(3)), (12, 12, 1),
                          "stride_kernel"),
    "max-pool-3x3-stride-2": (lambda: seq((12, 12, 3), conv(8, 3), relu(), conv(8, 3),
                                          L.MaxPooling2D(3, 2, padding="same"), relu(),
                                          conv(8, 3), relu(), L.Flatten(), L.Dense(3)),
                              (12, 12, 3), "pool_size"),
    "max-pool-before-dense": (lambda: seq((8, 8, 3), conv(8, 3), relu(), conv(8, 3),
                                          L.MaxPooling2D(padding="same"), relu(), L.Flatten(),
                                          L.Dense(3)), (8, 8, 3), "pool_successor"),
}


@pytest.fixture(scope="module", params=sorted(HARDWARE_CASES))
def hardware_case(request):
    build, shape, rule = HARDWARE_CASES[request.param]
    qmodel, x = _quantized(build(), shape)
    return qmodel, x, rule


def test_hardware_level_converts_bit_exact_and_maps_in_several_sequences(hardware_case):
    qmodel, x, rule = hardware_case
    issues = cnn2snn.check_model_compatibility(qmodel)
    assert [(i.rule, i.level) for i in issues] == [(rule, "hardware")], [str(i) for i in issues]
    with pytest.warns(ConversionWarning, match=f"1 hardware-level issue") as record:
        akida_model = cnn2snn.convert(qmodel)
    assert sum(issubclass(w.category, ConversionWarning) for w in record) == 1
    assert issues[0].message in str(record[0].message)
    expected = np.asarray(qmodel(x))
    got = akida_model.predict(cnn2snn.akida_inputs(qmodel, x)).reshape(expected.shape)
    np.testing.assert_array_equal(got, expected)
    akida_model.map(akida_core.AKD1000())
    backends = [s.backend for s in akida_model.sequences]
    assert len(backends) > 1 and akida_core.BackendType.Software in backends
    with pytest.raises(akida_core.MappingError):
        akida_model.map(akida_core.AKD1000(), hw_only=True)


def test_clean_model_converts_without_warning_and_maps_in_hardware():
    qmodel, _ = _quantized(seq((8, 8, 3), conv(8, 3), relu(), conv(8, 3),
                               L.MaxPooling2D(padding="same"), relu(), conv(8, 3), relu(),
                               L.Flatten(), L.Dense(3)), (8, 8, 3))
    assert cnn2snn.check_model_compatibility(qmodel) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConversionWarning)
        akida_model = cnn2snn.convert(qmodel)
    akida_model.map(akida_core.AKD1000(), hw_only=True)
    assert len(akida_model.sequences) == 1


def test_convert_level_raises_with_only_convert_issues():
    # 8-bit weights on a Convolutional (convert level) and a 9x9 kernel (hardware level)
    qmodel, _ = _quantized(seq((12, 12, 3), conv(8, 3), relu(), conv(8, 9), relu(), L.Flatten(),
                               L.Dense(3)), (12, 12, 3),
                           qparams=Akida1QuantizationParams(weight_bits=8))
    issues = cnn2snn.check_model_compatibility(qmodel)
    assert {(i.rule, i.level) for i in issues} >= {("weights_bits", "convert"),
                                                    ("kernel_size", "hardware")}
    with pytest.raises(ConversionError) as exc:
        cnn2snn.convert(qmodel)
    assert exc.value.issues and all(i.level == "convert" for i in exc.value.issues)
    assert exc.value.issues == [i for i in issues if i.level == "convert"]


# The input domain is the user's: 8-bit data into a 4-bit InputData is refused unless allowed.
NARROWING_CASES = {
    "image-4-channels": (lambda: seq((8, 8, 4), conv(8, 3), relu(), L.Flatten(), L.Dense(3)),
                         (8, 8, 4)),
    "flat-mlp": (lambda: seq((20,), L.Dense(8), relu(), L.Dense(3)), (20,)),
}


@pytest.mark.parametrize("name", sorted(NARROWING_CASES))
def test_input_narrowing_is_convert_level_unless_allowed(name):
    build, shape = NARROWING_CASES[name]
    qmodel, x = _quantized(build(), shape)
    issues = cnn2snn.check_model_compatibility(qmodel)
    assert [(i.rule, i.level) for i in issues] == [("input_narrowing", "convert")]
    assert "allow_input_narrowing=True" in issues[0].hint and "akida_inputs" in issues[0].hint
    with pytest.raises(ConversionError, match="re-quantized to 4-bit"):
        cnn2snn.convert(qmodel)
    assert cnn2snn.check_model_compatibility(qmodel, allow_input_narrowing=True) == []
    with pytest.warns(ConversionWarning, match=r"akida_inputs\(model, x\)"):
        akida_model = cnn2snn.convert(qmodel, allow_input_narrowing=True)
    expected = np.asarray(qmodel(x))
    got = akida_model.predict(cnn2snn.akida_inputs(qmodel, x)).reshape(expected.shape)
    np.testing.assert_array_equal(got, expected)


def test_4bit_data_into_input_data_is_not_narrowed():
    qmodel, _ = _quantized(seq((8, 8, 4), conv(8, 3), relu(), L.Flatten(), L.Dense(3)),
                           (8, 8, 4), high=16)
    assert cnn2snn.quantized.input_quantizer(qmodel).quantizer.scale == 1.0
    assert cnn2snn.check_model_compatibility(qmodel) == []


def test_float_model_on_8bit_data_into_input_data_is_reported():
    model = seq((8, 8, 4), L.Rescaling(1 / 255), conv(8, 3), relu(), L.Flatten(), L.Dense(3))
    issues = cnn2snn.check_model_compatibility(model)
    assert [(i.rule, i.level) for i in issues] == [("input_narrowing", "convert")]
    assert cnn2snn.check_model_compatibility(model, allow_input_narrowing=True) == []
    # 3 channels: the first Conv2D is an InputConvolutional, which takes the uint8 data
    assert cnn2snn.check_model_compatibility(
        seq((8, 8, 3), L.Rescaling(1 / 255), conv(8, 3), relu(), L.Flatten(), L.Dense(3))) == []


def test_act_step_off_the_16th_grid_is_reported():
    qmodel, _ = _quantized(seq((8, 8, 3), conv(8, 3), relu(), conv(8, 3), relu(), L.Flatten(),
                               L.Dense(3)), (8, 8, 3))
    act = [layer for layer in qmodel.layers if hasattr(layer, "act_step")][1]
    step = np.asarray(act.act_step.numpy())
    assert cnn2snn.check_model_compatibility(qmodel) == []
    act.act_step.assign(step + np.float32(0.01))   # as an older quantizeml would leave it
    issues = cnn2snn.check_model_compatibility(qmodel)
    assert [(i.rule, i.level) for i in issues] == [("act_step_grid", "convert")]
    assert "floor(act_step*16)/16" in issues[0].message and "quantize" in issues[0].hint
    with pytest.raises(ConversionError, match="not a multiple of 1/16"):
        cnn2snn.convert(qmodel)

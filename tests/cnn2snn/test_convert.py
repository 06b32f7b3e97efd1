"""convert(): refuses float models, reports every issue of a quantized model, saves .fbz files."""
import numpy as np
import pytest

import akida_core
import cnn2snn
from cnn2snn import ConversionError

from ..e2e.qbuild import build, conv, dense, flatten, gap, maxpool, relu
from .models import PATTERN_FIXTURES


def test_float_model_asks_to_quantize_first():
    with pytest.raises(ConversionError) as exc:
        cnn2snn.convert(PATTERN_FIXTURES["conv-pool-relu"]())
    (issue,) = exc.value.issues
    assert issue.rule == "not_quantized" and "quantizeml.models.quantize(" in issue.hint


def test_input_scaling_is_rejected_for_quantizeml_models():
    qmodel = build((8, 8, 3), [conv(4, 3, weight_bits=8), relu(), flatten(), dense(3)])
    with pytest.raises(ConversionError, match="input_scaling"):
        cnn2snn.convert(qmodel, input_scaling=(1.0, 0))


def test_all_issues_of_a_quantized_model_at_once():
    qmodel = build((9, 9, 3), [conv(4, 3, weight_bits=8), relu(), conv(4, 3, weight_bits=8),
                               relu(), conv(4, 3, strides=3), relu(), flatten(), dense(3)])
    with pytest.raises(ConversionError) as exc:
        cnn2snn.convert(qmodel)
    names = [la.name for la in qmodel.layers]
    issues = cnn2snn.check_model_compatibility(qmodel)
    assert [(i.layer, i.rule, i.level) for i in issues] == [
        (names[3], "weights_bits", "convert"), (names[5], "stride", "hardware")]
    # convert raises with the convert-level issues only (a 3x3 stride-3 conv is an Akida layer)
    assert exc.value.issues == issues[:1]
    assert "1 issue in 1 layer" in str(exc.value)


def test_threshold_beyond_register_is_an_issue():
    qmodel = build((8, 8, 16), [conv(16, 3), relu(), conv(4, 3), gap(), relu(), dense(3)],
                   input_bits=4)
    inner = qmodel.layers[3]
    inner.bias.assign(np.full(inner.bias.shape, 1e9, np.float32))
    issues = cnn2snn.check_model_compatibility(qmodel)
    assert [(i.layer, i.rule, i.level) for i in issues] == [(inner.name, "threshold_range",
                                                             "hardware")]
    assert issues[0].allowed == [-2 ** 19, 2 ** 19 - 1] and issues[0].found < -2 ** 19
    # exact in software: it converts (one warning); the CNP register cannot hold it
    with pytest.warns(cnn2snn.ConversionWarning, match="threshold"):
        akida_model = cnn2snn.convert(qmodel)
    with pytest.raises(akida_core.MappingError, match="Thresholds"):
        akida_model.map(akida_core.AKD1000(), hw_only=True)


def test_act_step_beyond_register_is_an_issue():
    qmodel = build((8, 8, 3), [conv(4, 3, weight_bits=8), relu(), conv(4, 3), maxpool(),
                               relu(), conv(4, 3), relu(), flatten(), dense(3)])
    act = qmodel.layers[5]
    act.act_step.assign(np.full(act.act_step.shape, 2.0 ** 16, np.float32))
    issues = cnn2snn.check_model_compatibility(qmodel)
    assert [(i.rule, i.level) for i in issues] == [("act_step_range", "hardware")]
    act.act_step.assign(np.full(act.act_step.shape, 2.0 ** 16 - 1, np.float32))
    assert cnn2snn.check_model_compatibility(qmodel) == []


def test_save_to_file_path(tmp_path):
    qmodel = build((8, 8, 3), [conv(4, 3, weight_bits=8), relu(), flatten(), dense(3)])
    akida_model = cnn2snn.convert(qmodel, tmp_path / "sub" / "model")
    path = tmp_path / "sub" / "model.fbz"
    assert path.exists()
    x = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3)).astype(np.uint8)
    np.testing.assert_array_equal(akida_core.Model(str(path)).forward(x), akida_model.forward(x))


def test_versions():
    assert cnn2snn.get_akida_version() == cnn2snn.AkidaVersion.v2  # MetaTF's default
    with cnn2snn.set_akida_version(cnn2snn.AkidaVersion.v1):
        assert cnn2snn.get_akida_version() == cnn2snn.AkidaVersion.v1
    assert cnn2snn.get_akida_version() == cnn2snn.AkidaVersion.v2
    with pytest.raises(TypeError):
        with cnn2snn.set_akida_version("v2"):
            pass


def test_float_layer_inside_a_quantized_model_is_an_issue():
    import keras
    from keras import layers as L
    qmodel = build((8, 8, 3), [conv(4, 3, weight_bits=8), relu(), flatten(), dense(3)])
    layers = list(qmodel.layers)
    layers[2] = L.ReLU(6.0, name="float_relu")
    mixed = keras.Sequential([keras.Input((8, 8, 3)), *layers])
    issues = cnn2snn.check_model_compatibility(mixed)
    assert [(i.layer, i.rule) for i in issues] == [("float_relu", "float_layer")]
    with pytest.raises(ConversionError, match="float layer inside a quantized model"):
        cnn2snn.convert(mixed)


def test_tf_keras_model_in_memory_is_named():
    import tf_keras
    model = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(2)])
    (issue,) = cnn2snn.check_model_compatibility(model, "AKD1000")
    assert issue.rule == "model_type" and "tf_keras" in issue.message


def test_build_errors_become_issues():
    qmodel = build((8, 8, 3), [conv(4, 3, weight_bits=8), relu(), flatten(), dense(3)])
    dense_layer = qmodel.layers[4]
    dense_layer.bias.assign(np.full(dense_layer.bias.shape, 1e30, np.float32))
    conv_layer = qmodel.layers[1]
    conv_layer.bias.assign(np.full(conv_layer.bias.shape, np.nan, np.float32))
    issues = cnn2snn.check_model_compatibility(qmodel)  # never raises
    assert issues and all(i.hint for i in issues)


@pytest.mark.parametrize("channels,rules", [(3, []), (4, ["input_channels"])])
def test_input_convolution_channels(channels, rules):
    qmodel = build((8, 8, channels), [conv(4, 3, weight_bits=8), relu(), flatten(), dense(3)])
    assert [i.rule for i in cnn2snn.check_model_compatibility(qmodel)] == rules


def test_8bit_input_data_is_an_issue():
    qmodel = build((8, 8, 2), [conv(4, 3), relu(), flatten(), dense(3)], input_bits=4)
    quantizer = qmodel.layers[0]
    assert [i.rule for i in cnn2snn.check_model_compatibility(qmodel)] == []
    from quantizeml.quantizers import InputDataQuantizer
    quantizer.quantizer = InputDataQuantizer(8)
    issues = cnn2snn.check_model_compatibility(qmodel)
    assert [(i.layer, i.rule) for i in issues] == [(quantizer.name, "input_bits")]


def test_model_scheme_decides_unless_another_generation_is_selected(monkeypatch):
    """An Akida 1.0-quantized model converts for Akida 1.0 with no version selected; under an
    explicit Akida 2.0 selection convert (and the checker) refuse it with the fix, unless an
    Akida 1.0 target is given."""
    qmodel = build((8, 8, 3), [conv(4, 3, weight_bits=8), relu(), flatten(), dense(3)])
    assert cnn2snn.convert(qmodel).layers
    with cnn2snn.set_akida_version(cnn2snn.AkidaVersion.v2):
        with pytest.raises(ConversionError, match="Akida 1.0 scheme but Akida 2.0 is selected") \
                as exc:
            cnn2snn.convert(qmodel)
        assert "set_akida_version(AkidaVersion.v1)" in exc.value.issues[0].hint
        assert [i.rule for i in cnn2snn.check_model_compatibility(qmodel)] == ["generation"]
        assert cnn2snn.convert(qmodel, target="AKD1000").layers
        assert cnn2snn.check_model_compatibility(qmodel, device="AKD1000") == []


def test_float_model_is_checked_for_the_selected_generation():
    model = PATTERN_FIXTURES["conv-pool-relu"]()
    v1_issues = cnn2snn.check_model_compatibility(model, "AKD1000", weight_bits=3)
    assert v1_issues and all("AKD1000" in i.message for i in v1_issues)
    with cnn2snn.set_akida_version(cnn2snn.AkidaVersion.v1):
        assert [str(i) for i in cnn2snn.check_model_compatibility(model, weight_bits=3)] == \
            [str(i) for i in v1_issues]
    # MetaTF's spelling: an Akida 1.0 device object as device=
    assert [str(i) for i in cnn2snn.check_model_compatibility(
        model, device=akida_core.AKD1000(), weight_bits=3)] == [str(i) for i in v1_issues]
    # default Akida 2.0, as MetaTF: quantized with QuantizationParams(input_dtype=...), converted.
    # uint8 data on 2 channels: only an input Conv2D on 1 or 3 channels reads them there
    (issue,) = cnn2snn.check_model_compatibility(model)
    assert (issue.rule, issue.level) == ("input", "convert") and "Akida 2.0" in issue.message
    # int8 data: an InputData reads them; quantization stops at the BatchNormalization after the
    # pooling (Akida 1.0 folds it), so the layers from there run outside Akida: hardware-level
    (issue,) = cnn2snn.check_model_compatibility(model, input_dtype="int8")
    assert (issue.rule, issue.level) == ("float_tail", "hardware")
    assert issue.layer.startswith(model.layers[3].name)  # Conv2D > BN > GAP > *BN* > ReLU > Dense

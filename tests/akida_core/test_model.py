"""Model API: structure rules, input validation, forward/predict/evaluate, statistics, summary."""
import numpy as np
import pytest

import akida_core as ak
from akida_core.errors import InputDataError, ModelStructureError

from .helpers import randomize, small_cnn


def test_first_layer_must_be_an_input_layer():
    model = ak.Model()
    with pytest.raises(ModelStructureError, match="first layer must be an input layer"):
        model.add(ak.FullyConnected(3))
    model.add(ak.InputData((4, 4, 1)))
    with pytest.raises(ModelStructureError, match="can only be the first layer"):
        model.add(ak.InputData((4, 4, 1)))


def test_names_are_unique_and_defaulted():
    model = ak.Model()
    model.add(ak.InputData((4, 4, 1)))
    model.add(ak.Convolutional((3, 3), 2))
    model.add(ak.FullyConnected(3, name="out"))
    assert [lay.name for lay in model.layers] == ["Input_1", "Conv_2", "out"]
    model.pop_layer()
    with pytest.raises(ModelStructureError, match="already in the model"):
        model.add(ak.FullyConnected(3, name="Conv_2"))


def test_layer_cannot_follow_raw_potentials_or_signed_inputs():
    model = ak.Model()
    model.add(ak.InputData((4, 4, 1)))
    model.add(ak.Convolutional((3, 3), 2, activation=False))
    with pytest.raises(ModelStructureError, match="enable the activation"):
        model.add(ak.FullyConnected(3))
    signed = ak.Model()
    signed.add(ak.InputData((4, 4, 1), input_bits=8))
    with pytest.raises(ModelStructureError, match="signed 8-bit"):
        signed.add(ak.FullyConnected(3))


def test_get_layer_by_name_and_index_and_errors():
    model = small_cnn()
    assert model.get_layer("conv") is model.get_layer(1) is model.layers[1]
    assert model.get_layer(-1).name == "fc"
    with pytest.raises(KeyError, match="no layer named 'nope'"):
        model.get_layer("nope")
    with pytest.raises(IndexError):
        model.get_layer(4)


def test_model_from_layers_copies_and_adds_an_input():
    source = small_cnn(seed=3)
    copy = ak.Model(layers=source.layers)
    x = np.random.default_rng(0).integers(0, 256, (2, 9, 8, 1)).astype(np.uint8)
    np.testing.assert_array_equal(copy.forward(x), source.forward(x))
    assert copy.layers[0] is not source.layers[0]
    fc_only = ak.Model(layers=[source.layers[-1]])
    assert fc_only.layers[0].layer_type == ak.LayerType.InputData
    assert fc_only.input_shape == [1, 1, 6]


@pytest.mark.parametrize("bad, message", [
    ([[1, 2]], "got a list"),
    (np.zeros((2, 9, 8, 1), np.float32), "float32"),
    (np.zeros((9, 8, 1), np.uint8), "add a batch axis"),
    (np.zeros((2, 8, 9, 1), np.uint8), "shape"),
    (np.zeros((0, 9, 8, 1), np.uint8), "empty batch"),
    (np.full((1, 9, 8, 1), 256, np.int32), r"\[256, 256\]"),
    (np.full((1, 9, 8, 1), -1, np.int16), r"\[-1, -1\]"),
    (np.zeros((1, 9, 8, 1), bool), "dtype bool"),
    (np.zeros((1, 9, 8, 1), object), "dtype object"),
])
def test_bad_inputs_get_clear_errors(bad, message):
    with pytest.raises(InputDataError, match=message):
        small_cnn().forward(bad)


def test_input_bits_range_is_enforced_for_input_data():
    model = ak.Model()
    model.add(ak.InputData((2, 2, 1), input_bits=2))
    model.add(ak.FullyConnected(2))
    model.forward(np.full((1, 2, 2, 1), 3, np.uint8))
    with pytest.raises(InputDataError, match=r"takes \[0, 3\]"):
        model.forward(np.full((1, 2, 2, 1), 4, np.uint8))


def test_odd_memory_layouts_and_wider_integer_dtypes_are_accepted():
    model = small_cnn(seed=1)
    x = np.random.default_rng(2).integers(0, 256, (3, 9, 8, 1)).astype(np.uint8)
    expected = model.forward(x)
    fortran = np.asfortranarray(x)
    readonly = x.copy()
    readonly.flags.writeable = False
    strided = np.repeat(x, 2, axis=0)[::2]
    for variant in (fortran, readonly, strided, x.astype(np.int64)):
        np.testing.assert_array_equal(model.forward(variant), expected)


def test_chunked_inference_equals_one_batch():
    model = small_cnn(seed=2)
    x = np.random.default_rng(5).integers(0, 256, (7, 9, 8, 1)).astype(np.uint8)
    np.testing.assert_array_equal(model.forward(x, batch_size=2), model.forward(x))
    with pytest.raises(InputDataError, match="batch_size"):
        model.forward(x, batch_size=-1)


def test_predict_is_rescaled_potentials_and_needs_no_activation():
    model = small_cnn(activation_last=False, seed=4)
    x = np.random.default_rng(6).integers(0, 256, (4, 9, 8, 1)).astype(np.uint8)
    fc = model.get_layer("fc")
    p = model.forward(x)
    step = np.floor(fc.variables["act_step"].astype(np.float64) * 16) / 16  # the 1/16-grid register
    expected = (p - fc.variables["threshold"]).astype(np.float32) / step.astype(np.float32)
    np.testing.assert_array_equal(model.predict(x), expected)
    assert model.predict(x).dtype == np.float32
    with pytest.raises(ModelStructureError, match="Activations must be disabled"):
        small_cnn(activation_last=True).predict(x)


def test_predict_classes_and_evaluate_group_neurons_per_class():
    model = ak.Model()
    model.add(ak.InputData((1, 1, 4), input_bits=1))
    model.add(ak.FullyConnected(4, weights_bits=1, activation=False))
    fc = model.layers[1]
    fc.variables["weights"] = np.eye(4, dtype=np.int8).reshape(1, 1, 4, 4)
    x = np.eye(4, dtype=np.uint8).reshape(4, 1, 1, 4)
    assert model.predict_classes(x).tolist() == [0, 1, 2, 3]
    assert model.predict_classes(x, num_classes=2).tolist() == [0, 0, 1, 1]
    assert model.evaluate(x, [0, 0, 1, 0], num_classes=2) == 0.75
    with pytest.raises(InputDataError, match="num_classes=3"):
        model.predict_classes(x, num_classes=3)


def test_statistics_count_events_and_macs():
    model = small_cnn(seed=0)
    x = np.random.default_rng(0).integers(0, 256, (5, 9, 8, 1)).astype(np.uint8)
    out = model.forward(x)
    stats = model.statistics
    assert stats.samples == 5
    fc = stats.layers["fc"]
    assert fc.events == int(np.count_nonzero(out)) and fc.macs_per_sample == model.get_layer("fc").macs
    assert 0.0 <= fc.sparsity <= 1.0
    assert "Average framerate = N/A" in str(stats)


def test_summary_lists_every_layer_through_print_fn():
    lines = []
    small_cnn().summary(print_fn=lines.append)
    text = "\n".join(lines)
    for fragment in ("ic (InputConvolutional)", "conv (Convolutional)", "3x3/1x1 Same max2x2/2",
                     "sep (SeparableConvolutional)", "gap", "fc (FullyConnected)", "Total MACs/sample"):
        assert fragment in text


def test_pop_layer_and_empty_model_errors():
    model = small_cnn()
    model.pop_layer()
    assert model.output_shape == [1, 1, 6]
    empty = ak.Model()
    with pytest.raises(ModelStructureError, match="no layers"):
        empty.forward(np.zeros((1, 1, 1, 1), np.uint8))
    with pytest.raises(ModelStructureError, match="no layer to pop"):
        empty.pop_layer()


def test_layer_cannot_join_two_models():
    model = small_cnn()
    with pytest.raises(ModelStructureError, match="already belongs"):
        ak.Model().add(model.layers[0])


def test_wide_layer_bound_is_exact():
    # 4-bit inputs x 8-bit weights x 3x3x1024 fan-in: 17.6 M > 2**24, the float64 path must stay exact
    model = ak.Model()
    model.add(ak.InputData((3, 3, 1024), input_bits=4))
    model.add(ak.Convolutional((3, 3), 1, padding=ak.Padding.Valid, weights_bits=8, activation=False))
    conv = model.layers[1]
    w = np.full((3, 3, 1024, 1), 127, np.int8)
    w[..., ::5, :] = -128
    conv.variables["weights"] = w
    x = np.full((1, 3, 3, 1024), 15, np.uint8)
    x[..., ::3] = 14
    expected = int((x[0].astype(np.int64) * w[..., 0].astype(np.int64)).sum())
    assert int(model.forward(x)[0, 0, 0, 0]) == expected
    randomize(model)


def test_layer_slicing_and_batch_chunks_give_identical_results(monkeypatch):
    import akida_core.inference as inference
    model = small_cnn(seed=8)
    x = np.random.default_rng(9).integers(0, 256, (9, 9, 8, 1)).astype(np.uint8)
    expected = model.forward(x)
    monkeypatch.setattr(inference, "LAYER_MEMORY_BYTES", 1)
    monkeypatch.setattr(inference, "BATCH_MEMORY_BYTES", 1000)
    assert model._chunk_size(0) < len(x)
    np.testing.assert_array_equal(model.forward(x), expected)
    assert model.statistics.samples == 9

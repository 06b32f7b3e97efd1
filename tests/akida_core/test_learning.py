"""Edge learning through the Model: constraints and their errors, fit semantics, scores, add_classes."""
import warnings

import numpy as np
import pytest

import akida_core as ak
from akida_core.learning import class_scores


def binary_model(units=6, shape=(3, 3, 4), activation=True, weights_bits=1, input_bits=1):
    model = ak.Model()
    model.add(ak.InputData(shape, input_bits=input_bits, name="in"))
    model.add(ak.FullyConnected(units=units, weights_bits=weights_bits, activation=activation, name="fc"))
    return model


def samples(n, shape=(3, 3, 4), seed=0, density=0.4):
    return (np.random.default_rng(seed).random((n, *shape)) < density).astype(np.uint8)


# --- constraints -----------------------------------------------------------------------------------

def test_last_layer_must_be_fully_connected():
    model = ak.Model()
    model.add(ak.InputData((4, 4, 1), input_bits=1))
    model.add(ak.Convolutional((3, 3), 2, name="conv"))
    with pytest.raises(ak.ModelStructureError, match="The last layer of the model is not trainable.*'conv'"):
        model.compile(ak.AkidaUnsupervised(2))


def test_weights_must_be_binary():
    with pytest.raises(ak.ModelStructureError, match="Only layers with binary weights can be trained.*weights_bits=2"):
        binary_model(weights_bits=2).compile(ak.AkidaUnsupervised(2))


def test_inputs_must_be_binary():
    with pytest.raises(ak.ModelStructureError, match="Only layers receiving binary inputs can be trained.*4-bit"):
        binary_model(input_bits=4).compile(ak.AkidaUnsupervised(2))


def test_empty_model_and_wrong_optimizer():
    with pytest.raises(ak.ModelStructureError, match="no layers"):
        ak.Model().compile(ak.AkidaUnsupervised(2))
    with pytest.raises(ak.LearningParameterError, match="AkidaUnsupervised optimizer, got dict"):
        binary_model().compile({"num_weights": 2})


def test_units_must_be_a_multiple_of_num_classes():
    with pytest.raises(ak.LearningParameterError, match="units=6 is not a multiple of num_classes=4.*units=4"):
        binary_model(units=6).compile(ak.AkidaUnsupervised(2, num_classes=4))


def test_num_weights_cannot_exceed_the_inputs():
    binary_model().compile(ak.AkidaUnsupervised(36))
    with pytest.raises(ak.LearningParameterError, match="num_weights=37 exceeds the 36 inputs"):
        binary_model().compile(ak.AkidaUnsupervised(37))


@pytest.mark.parametrize("action", [lambda m: m.fit(samples(2)), lambda m: m.add_classes(1),
                                    lambda m: m.layers[-1].get_learning_histogram()])
def test_fit_add_classes_histogram_need_compile(action):
    with pytest.raises(ak.LearningError, match="not compiled for edge learning.*compile") as info:
        action(binary_model())
    assert isinstance(info.value, RuntimeError)


def test_bad_labels_and_add_classes_arguments():
    model = binary_model()
    model.compile(ak.AkidaUnsupervised(4, num_classes=3))
    with pytest.raises(ak.InputDataError, match="got 3 labels for 2 samples"):
        model.fit(samples(2), [0, 1, 2])
    with pytest.raises(ak.InputDataError, match="whole numbers"):
        model.fit(samples(2), [0.5, 1])
    for bad in ("a", ["a", "b"], [[0, 1], [2]], np.array([0, None], dtype=object), [0, float("nan")],
                [True, False], {"x": 1}):
        with pytest.raises(ak.InputDataError, match="input_labels"):
            model.fit(samples(2), bad)
    with pytest.raises(ak.InputDataError):
        model.fit(samples(2).astype(np.float32), 0)
    for bad in (0, -1, 1.0, True):
        with pytest.raises(ak.LearningParameterError, match="num_add_classes"):
            model.add_classes(bad)
    assert model.layers[-1].params.units == 6 and model.learning.num_classes == 3


def test_compiled_model_refuses_structural_changes_until_popped():
    model = binary_model()
    model.compile(ak.AkidaUnsupervised(4))
    with pytest.raises(ak.ModelStructureError, match="compiled for edge learning"):
        model.add(ak.FullyConnected(3))
    model.pop_layer()
    assert model.learning is None


# --- compile and fit -------------------------------------------------------------------------------

def test_compile_initialises_the_layer():
    model = binary_model(units=4)
    model.compile(ak.AkidaUnsupervised(5, num_classes=2, initial_plasticity=0.75))
    layer = model.layers[-1]
    assert layer.variables["weights"].reshape(36, 4).sum(axis=0).tolist() == [5] * 4
    assert layer.variables["threshold"].tolist() == [0] * 4
    assert layer.variables["plasticity"].tolist() == [49152] * 4
    assert {"thswap", "threshold_learning"} <= set(layer.get_variable_names())
    assert model.learning == ak.AkidaUnsupervised(5, num_classes=2, initial_plasticity=0.75)


def test_fit_outputs_what_forward_gave_before_each_sample():
    model = binary_model(units=4, activation=False)
    model.compile(ak.AkidaUnsupervised(6, num_classes=2))
    x, labels = samples(5, seed=1), [0, 1, 1, 0, 1]
    expected, step = [], ak.Model.from_dict(model.to_dict())
    for i in range(5):  # one sample per fit call, through a to_dict round trip each time
        expected.append(step.forward(x[i:i + 1]))
        step.fit(x[i:i + 1], labels[i])
        step = ak.Model.from_dict(step.to_dict())
    outputs = model.fit(x, labels)
    assert outputs.shape == (5, 1, 1, 4) and outputs.dtype == np.int32
    assert np.array_equal(outputs, np.concatenate(expected))
    assert np.array_equal(model.layers[-1].variables["weights"], step.layers[-1].variables["weights"])


def test_fit_returns_uint8_activations_with_the_layer_threshold():
    model = binary_model(units=2)
    model.compile(ak.AkidaUnsupervised(6))
    out = model.fit(samples(4, seed=2))
    assert out.dtype == np.uint8 and set(np.unique(out)) <= {0, 1}
    stats = model.statistics.layers["fc"]
    assert stats.samples == 4 and stats.events == np.count_nonzero(out)


def test_labelled_fit_only_changes_the_label_neurons():
    model = binary_model(units=6)
    model.compile(ak.AkidaUnsupervised(6, num_classes=3))
    before = model.layers[-1].variables["weights"].reshape(36, 6)
    model.fit(samples(4, seed=3), 1)
    after = model.layers[-1].variables["weights"].reshape(36, 6)
    changed = np.flatnonzero((before != after).any(axis=0))
    assert changed.size and set(changed) <= {2, 3}
    assert np.flatnonzero(model.layers[-1].variables["thswap"]).tolist() == changed.tolist()


def test_out_of_range_labels_are_skipped_counted_and_warned():
    model = binary_model(units=4)
    model.compile(ak.AkidaUnsupervised(6, num_classes=2))
    with pytest.warns(UserWarning, match="skipped 2 of 4 samples.*outside \\[0, 2\\)"):
        model.fit(samples(4, seed=4), np.array([0, 2, -1, 1.0]))
    assert int(model.layers[-1].variables["thswap"].sum()) == 2
    text = []
    model.summary(print_fn=text.append)
    assert "samples fit: 2  skipped (label out of range): 2" in text[0]


def test_learning_is_deterministic_given_the_seed():
    def run(seed):
        model = binary_model()
        model.compile(ak.AkidaUnsupervised(7, num_classes=3, seed=seed))
        model.fit(samples(12, seed=5), np.arange(12) % 3)
        return model.layers[-1].variables["weights"]
    assert np.array_equal(run(0), run(0))
    assert not np.array_equal(run(0), run(1))


def test_predict_classes_uses_trained_neuron_potentials():
    model = binary_model(units=6, activation=False)
    model.compile(ak.AkidaUnsupervised(8, num_classes=3))
    x = samples(6, seed=6)
    model.fit(x[:4], [0, 0, 2, 2])
    scores = class_scores(model, x)
    trained = model.layers[-1].variables["thswap"] > 0
    assert np.array_equal(scores[:, trained], model.forward(x).reshape(6, 6)[:, trained])
    assert np.all(scores[:, ~trained] == -1)
    assert set(model.predict_classes(x, 3)) <= {0, 2}
    assert model.evaluate(x[:4], [0, 0, 2, 2], 3) == np.mean(model.predict_classes(x[:4], 3) == [0, 0, 2, 2])


def test_two_classes_are_learned_from_one_shot_each():
    proto = np.zeros((2, 3, 3, 4), np.uint8)
    proto[0, :, :, :2] = 1
    proto[1, :, :, 2:] = 1
    model = binary_model(units=2)
    model.compile(ak.AkidaUnsupervised(12, num_classes=2))
    model.fit(proto, [0, 1])
    noisy = proto.copy()
    noisy[:, 0, 0] ^= 1
    assert model.predict_classes(noisy, 2).tolist() == [0, 1]
    assert model.layers[-1].get_learning_histogram()[100] == 2


# --- add_classes, summary ----------------------------------------------------------------------------

def test_add_classes_keeps_learned_neurons_and_appends_fresh_ones():
    model = binary_model(units=4)
    model.compile(ak.AkidaUnsupervised(5, num_classes=2))
    model.fit(samples(6, seed=7), [0, 1, 0, 1, 0, 1])
    layer = model.layers[-1]
    before = {name: layer.variables[name] for name in layer.get_variable_names()}
    model.add_classes(3)
    assert layer.params.units == 10 and model.learning.num_classes == 5 and model.output_shape == [1, 1, 10]
    for name, old in before.items():
        assert np.array_equal(layer.variables[name][..., :4], old), name
    assert layer.variables["weights"].reshape(36, 10)[:, 4:].sum(axis=0).tolist() == [5] * 6
    assert layer.variables["thswap"][4:].tolist() == [0] * 6
    model.fit(samples(2, seed=8), [4, 4])
    assert layer.variables["thswap"][8:].sum() == 2


def test_summary_has_a_learning_section():
    model = binary_model(units=4)
    text = []
    model.summary(print_fn=text.append)
    assert "Learning Summary" not in text[0]
    model.compile(ak.AkidaUnsupervised(5, num_classes=2))
    model.fit(samples(1), 0)
    model.summary(print_fn=text.append)
    lines = text[1].splitlines()
    i = lines.index("Learning Summary")
    assert lines[i + 1].split() == ["Learning", "Layer", "#", "Input", "Conn.", "#", "Weights", "Classes",
                                    "Neurons/class", "Trained"]
    assert lines[i + 3].split() == ["fc", "36", "5", "2", "2", "1/4"]


def test_learning_after_a_binary_feature_extractor():
    model = ak.Model()
    model.add(ak.InputConvolutional((6, 6, 1), (3, 3), 4, weights_bits=4, threshold=40, name="ic"))
    model.layers[0].set_variable("weights", np.random.default_rng(0).integers(-7, 8, (3, 3, 1, 4)).astype(np.int8))
    model.add(ak.FullyConnected(units=3, name="fc"))
    model.compile(ak.AkidaUnsupervised(20, num_classes=3))
    x = np.random.default_rng(1).integers(0, 256, (9, 6, 6, 1)).astype(np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = model.fit(x, np.arange(9) % 3)
    assert out.shape == (9, 1, 1, 3)
    assert model.layers[-1].variables["thswap"].tolist() == [3, 3, 3]


# --- mapping and failure atomicity -------------------------------------------------------------------

def test_compile_and_add_classes_keep_a_mapped_model_mapped_with_the_learning_layer_on_one_np():
    model = binary_model(units=4)
    model.map(ak.AKD1000())
    model.compile(ak.AkidaUnsupervised(5, num_classes=2))
    assert model._mapping is not None and model._mapping.single_np_layers == ("fc",)
    model.add_classes(1)
    assert model._mapping is not None and model._mapping.single_np_layers == ("fc",)
    nps = [mapping for seq in model.sequences for mapping in seq.nps.get("fc", ())]
    assert len(nps) == 1 and nps[0].stop - nps[0].start == 6


def test_a_failed_add_classes_changes_nothing(monkeypatch):
    import akida_core.learning.training as learning
    model = binary_model(units=4)
    model.compile(ak.AkidaUnsupervised(5, num_classes=2))
    model.fit(samples(3, seed=9), [0, 1, 0])
    before = {name: model.layers[-1].variables[name] for name in model.layers[-1].get_variable_names()}
    options = model.learning

    def broken(*args):
        raise ak.LayerParameterError("injected failure")
    monkeypatch.setattr(learning, "_install", broken)
    with pytest.raises(ak.LayerParameterError, match="injected"):
        model.add_classes(2)
    monkeypatch.undo()
    layer = model.layers[-1]
    assert layer.params.units == 4 and model.learning == options and model.output_shape == [1, 1, 4]
    after = {name: layer.variables[name] for name in layer.get_variable_names()}
    assert after.keys() == before.keys() and all(np.array_equal(after[k], before[k]) for k in before)
    model.add_classes(1)  # still usable
    assert layer.params.units == 6


def test_huge_labels_are_skipped_not_wrapped():
    model = binary_model(units=4)
    model.compile(ak.AkidaUnsupervised(6, num_classes=2))
    with pytest.warns(UserWarning, match="skipped 2 of 2"):
        model.fit(samples(2, seed=10), np.array([2.0 ** 64, 2.0 ** 64 + 1.0]))
    assert model.layers[-1].variables["thswap"].sum() == 0

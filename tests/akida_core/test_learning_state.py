"""Edge-learning state: .fbz persistence (learn A, save, load, learn B ≡ learn A then B), corrupted
states, and the rule's invariants after any sequence of fit calls (Hypothesis)."""
import copy
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import akida_core as ak
from akida_core import fbz
from akida_core.learning_rule import Q16_ONE

SHAPE = (2, 3, 4)


def compiled(units=6, **options):
    model = ak.Model()
    model.add(ak.InputData(SHAPE, input_bits=1, name="in"))
    model.add(ak.FullyConnected(units=units, name="fc"))
    model.compile(ak.AkidaUnsupervised(**{"num_weights": 6, "num_classes": 3, **options}))
    return model


def samples(n, seed):
    return (np.random.default_rng(seed).random((n, *SHAPE)) < 0.4).astype(np.uint8)


def learning_variables(model):
    layer = model.layers[-1]
    return {name: layer.variables[name] for name in layer.get_variable_names()}


def assert_same_learning(a, b):
    assert a.learning == b.learning
    va, vb = learning_variables(a), learning_variables(b)
    assert va.keys() == vb.keys()
    for name in va:
        assert np.array_equal(va[name], vb[name]), name


# --- persistence -----------------------------------------------------------------------------------

@pytest.mark.parametrize("via", ["file", "buffer"])
def test_learn_a_save_load_learn_b_equals_learning_a_then_b(tmp_path, via):
    xa, xb = samples(8, 1), samples(8, 2)
    straight = compiled(learning_competition=0.25, plasticity_decay=0.3)
    straight.fit(xa, np.arange(8) % 3)
    straight.add_classes(1)
    out_straight = straight.fit(xb, np.arange(8) % 4)

    first = compiled(learning_competition=0.25, plasticity_decay=0.3)
    first.fit(xa, np.arange(8) % 3)
    first.add_classes(1)
    if via == "file":
        first.save(tmp_path / "learned.fbz")
        reloaded = ak.Model(str(tmp_path / "learned.fbz"))
    else:
        reloaded = ak.Model.from_buffer(first.to_buffer())
    assert_same_learning(first, reloaded)
    out_reloaded = reloaded.fit(xb, np.arange(8) % 4)
    assert np.array_equal(out_straight, out_reloaded)
    assert_same_learning(straight, reloaded)
    assert np.array_equal(straight.predict_classes(xa, 4), reloaded.predict_classes(xa, 4))


def test_uncompiled_model_saves_no_learning_state():
    model = compiled()
    model.pop_layer()
    assert "learning" not in model.to_dict()


def test_reloaded_counters_and_summary():
    model = compiled()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(samples(5, 3), [0, 1, 7, 2, 2])
    reloaded = ak.Model.from_dict(model.to_dict())
    text = []
    reloaded.summary(print_fn=text.append)
    assert "samples fit: 4  skipped (label out of range): 1" in text[0]


def _corrupt(edit):
    model = compiled()
    model.fit(samples(4, 4), [0, 1, 2, 0])
    description = copy.deepcopy(model.to_dict())
    edit(description)
    return description


def _fc_variables(d):
    return d["layers"][-1]["variables"]


CORRUPTIONS = {
    "missing optimizer key": lambda d: d["learning"]["optimizer"].pop("seed"),
    "plasticity option out of range": lambda d: d["learning"]["optimizer"].update(initial_plasticity=1.5),
    "negative counter": lambda d: d["learning"].update(skipped_samples=-1),
    "counter is a float": lambda d: d["learning"].update(learned_samples=1.0),
    "state not a dict": lambda d: d.update(learning=[1, 2]),
    "units not a multiple": lambda d: d["learning"]["optimizer"].update(num_classes=4),
    "num_weights too large": lambda d: d["learning"]["optimizer"].update(num_weights=25),
    "wrong number of ones": lambda d: _fc_variables(d)["weights"].__setitem__((0, 0, slice(None), 0), 1),
    "plasticity above initial": lambda d: _fc_variables(d)["plasticity"].__setitem__(0, Q16_ONE + 1),
    "plasticity under floor": lambda d: _fc_variables(d)["plasticity"].__setitem__(0, 5),
    "fresh neuron decayed": lambda d: _fc_variables(d)["plasticity"].__setitem__(
        np.flatnonzero(_fc_variables(d)["thswap"] == 0)[0], Q16_ONE // 2),
    "threshold_learning above num_weights": lambda d: _fc_variables(d)["threshold_learning"].__setitem__(0, 7),
    "learning variable missing": lambda d: (_fc_variables(d).pop("thswap"),
                                            d["layers"][-1]["extra_variables"].pop("thswap")),
    "widened spec": lambda d: (d["layers"][-1]["extra_variables"]["threshold_learning"].update(high=99),
                               _fc_variables(d)["threshold_learning"].__setitem__(0, 50)),
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_corrupted_learning_state_is_a_model_format_error(name):
    data = fbz.dumps(_corrupt(CORRUPTIONS[name]))
    with pytest.raises(ak.ModelFormatError):
        ak.Model.from_buffer(data)


def test_corrupted_learning_state_in_a_file(tmp_path):
    fbz.write(tmp_path / "bad.fbz", _corrupt(CORRUPTIONS["wrong number of ones"]))
    with pytest.raises(ak.ModelFormatError, match="instead of num_weights=6"):
        ak.Model(str(tmp_path / "bad.fbz"))


# --- invariants after any sequence of fit calls ----------------------------------------------------

options_strategy = st.fixed_dictionaries({
    "num_weights": st.integers(1, 24),
    "num_classes": st.sampled_from([1, 2, 3]),
    "initial_plasticity": st.sampled_from([0.0, 0.05, 0.5, 1.0]),
    "learning_competition": st.sampled_from([0.0, 0.3, 1.0]),
    "min_plasticity": st.sampled_from([0.0, 0.1, 0.6]),
    "plasticity_decay": st.sampled_from([0.0, 0.25, 1.0]),
    "seed": st.integers(0, 3),
})
fit_calls = st.lists(st.tuples(st.integers(1, 6), st.integers(0, 2 ** 16),
                               st.one_of(st.none(), st.integers(-1, 3), st.sampled_from(["per-sample", "add"]))),
                     min_size=1, max_size=4)


@settings(max_examples=60)
@given(options=options_strategy, neurons_per_class=st.integers(1, 3), calls=fit_calls)
def test_invariants_hold_after_any_fit_sequence(options, neurons_per_class, calls):
    model = compiled(units=options["num_classes"] * neurons_per_class, **options)
    layer, rule = model.layers[-1], model.learning.rule
    num_classes = options["num_classes"]
    per_class = neurons_per_class
    floor = min(rule.initial, rule.minimum)
    previous = learning_variables(model)
    for n, seed, label in calls:
        if label == "add":
            model.add_classes(n % 2 + 1)
            grown = learning_variables(model)
            fresh = slice(previous["thswap"].size, None)
            assert np.all(grown["thswap"][fresh] == 0) and np.all(grown["plasticity"][fresh] == rule.initial)
            for name, old in previous.items():
                assert np.array_equal(grown[name][..., :old.shape[-1]], old), name
            num_classes = model.learning.num_classes
            previous = grown
            continue
        x = samples(n, seed)
        labels = np.random.default_rng(seed).integers(-1, 4, n) if label == "per-sample" else label
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(x, labels)
        now = learning_variables(model)
        w = now["weights"].reshape(-1, layer.params.units)
        steps = now["thswap"] - previous["thswap"]
        # exactly num_weights binary connections per neuron
        assert set(np.unique(w)) <= {0, 1} and np.all(w.sum(axis=0) == options["num_weights"])
        # plasticity: closed form of the step count, within [min(initial, floor), initial]
        expected = np.maximum(np.minimum(rule.initial, floor),
                              rule.initial - now["thswap"].astype(np.int64) * rule.decay)
        assert np.array_equal(now["plasticity"], expected)
        assert np.all(now["plasticity"] <= previous["plasticity"])
        assert np.all((0 <= now["threshold_learning"]) & (now["threshold_learning"] <= options["num_weights"]))
        assert np.all(steps >= 0) and steps.sum() <= n
        if rule.initial == 0:
            assert np.array_equal(w, previous["weights"].reshape(w.shape)) and not steps.any()
        else:
            # each sample with no label or a valid label is learned by at most one neuron, and by
            # exactly one while plasticity cannot decay to 0
            lab = np.full(n, -1) if labels is None else np.broadcast_to(np.asarray(labels), (n,))
            valid = (labels is None) | ((lab >= 0) & (lab < num_classes))
            assert steps.sum() <= valid.sum()
            if floor > 0:
                assert steps.sum() == valid.sum()
            if labels is not None:
                assert set(np.flatnonzero(steps) // per_class) <= set(lab[valid])
        changed = np.flatnonzero((w != previous["weights"].reshape(w.shape)).any(axis=0))
        assert set(changed) <= set(np.flatnonzero(steps))  # only neurons that learned moved weights
        previous = now

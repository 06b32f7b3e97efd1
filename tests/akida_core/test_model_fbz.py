"""Model save/load through .fbz: bit-identical round trips, and bad model descriptions rejected cleanly."""
import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import akida_core as ak
from akida_core import fbz
from akida_core.errors import ModelFormatError

from .helpers import small_cnn


def _assert_same_model(a, b):
    assert [lay.name for lay in a.layers] == [lay.name for lay in b.layers]
    for la, lb in zip(a.layers, b.layers):
        assert la.params == lb.params
        assert la.variables.names == lb.variables.names
        for name in la.variables.names:
            va, vb = la.variables[name], lb.variables[name]
            assert va.dtype == vb.dtype and va.tobytes() == vb.tobytes()


@pytest.mark.parametrize("activation_last", [True, False])
def test_save_and_load_round_trip_is_bit_identical(tmp_path, activation_last):
    model = small_cnn(activation_last=activation_last, seed=11)
    path = tmp_path / "model.fbz"
    model.save(str(path))
    loaded = ak.Model(str(path))
    _assert_same_model(model, loaded)
    x = np.random.default_rng(0).integers(0, 256, (4, 9, 8, 1)).astype(np.uint8)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))
    assert loaded.to_buffer() == model.to_buffer()


def test_buffer_round_trip_and_copy_from_dict():
    model = small_cnn(seed=5)
    again = ak.Model.from_buffer(model.to_buffer())
    _assert_same_model(model, again)
    _assert_same_model(model, ak.Model.from_dict(model.to_dict()))


def test_load_errors_name_the_problem(tmp_path):
    with pytest.raises(ModelFormatError):
        ak.Model(str(tmp_path / "missing.fbz"))
    bad = tmp_path / "zero.fbz"
    bad.write_bytes(b"")
    with pytest.raises(ModelFormatError):
        ak.Model(str(bad))
    with pytest.raises(fbz.FileAccessError, match="'a\\\\x00b.fbz': cannot open: the path contains a NUL byte"):
        ak.Model("a\0b.fbz")


def _tampered(model, mutate):
    description = model.to_dict()
    mutate(description)
    return fbz.dumps(description)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(format="other"), "not an akida_core model"),
    (lambda d: d.update(version=99), "version 99"),
    (lambda d: d.update(layers=[]), "no 'layers'"),
    (lambda d: d["layers"][1].update(layer_type="LSTM"), "unknown layer type"),
    (lambda d: d["layers"][1]["params"].update(kernel_size=[4, 4]), "odd"),
    (lambda d: d["layers"][1]["params"].update(bogus=1), "bad parameters"),
    (lambda d: d["layers"][1]["variables"].update(weights=np.zeros((2, 2), np.int8)), "shape"),
    (lambda d: d["layers"][1]["variables"].update(extra=np.zeros(2, np.int8)), "no variable"),
    (lambda d: d["layers"][2]["variables"].update(act_step=np.zeros(6, np.float32)), "minimum"),
    (lambda d: d["layers"][1]["params"].update(name="ic"), "already in the model"),
    (lambda d: d["layers"].insert(1, dict(d["layers"][0], params=dict(d["layers"][0]["params"], name="x"))),
     "only be the first layer"),
])
def test_invalid_descriptions_raise_model_format_error(mutate, message):
    data = _tampered(small_cnn(), mutate)
    with pytest.raises(ModelFormatError, match=message):
        ak.Model.from_buffer(data)


JUNK = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 40, 2 ** 40), st.floats(allow_nan=False,
                 allow_infinity=False), st.text(max_size=5), st.lists(st.integers(-3, 3), max_size=4),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, prefix + (i,))


@settings(max_examples=150)
@given(st.data())
def test_fuzzed_descriptions_only_raise_model_format_error(data):
    description = small_cnn().to_dict()
    paths = [p for p in _paths(description) if p]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        parent = description
        try:
            for key in path[:-1]:
                parent = parent[key]
            if data.draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = data.draw(JUNK)
        except (KeyError, IndexError, TypeError):
            continue
    blob = fbz.dumps(copy.deepcopy(description))
    try:
        model = ak.Model.from_buffer(blob)
    except ModelFormatError:
        return
    # a mutation that still describes a valid model must give a usable model
    x = np.zeros((1, *model.input_shape), np.uint8)
    model.forward(x)


def test_json_round_trip_and_metatf_properties():
    model = small_cnn(seed=2)
    again = ak.Model.from_json(model.to_json())
    _assert_same_model(model, again)
    assert again.layers[2].inbounds == [again.layers[1]] and again.layers[0].inbounds == []
    assert model.ip_version == ak.IpVersion.v1
    with pytest.raises(ModelFormatError):
        ak.Model.from_json("{not json")

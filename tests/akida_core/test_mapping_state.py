"""The mapping survives .fbz save/load; a corrupted mapping state is rejected with ModelFormatError."""
import copy

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import akida_core as ak

from .test_mapping import nine_by_nine_in_the_middle, reference_three_layer


def fingerprint(model):
    return [(s.name, s.backend, s.nps, s.program) for s in model.sequences]


@pytest.mark.parametrize("device,mode", [(ak.AKD1000, ak.MapMode.AllNps), (ak.AKD1500, ak.MapMode.Minimal),
                                         (ak.TwoNodesIPv1, ak.MapMode.AllNps)])
def test_mapping_survives_save_and_load(tmp_path, device, mode):
    model = nine_by_nine_in_the_middle()
    model.map(device(), mode=mode)
    path = tmp_path / "mapped.fbz"
    model.save(str(path))
    loaded = ak.Model(str(path))
    assert loaded.device == device() and loaded._mapping.mode is mode
    assert fingerprint(loaded) == fingerprint(model)
    x = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3)).astype(np.uint8)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))


def test_custom_device_and_hw_only_survive(tmp_path):
    model = reference_three_layer()
    device = ak.create_device(40, 2, hw_version=ak.NSoC_v2)
    model.map(device, hw_only=True)
    loaded = ak.Model.from_buffer(model.to_buffer())
    assert loaded.device == device and loaded._mapping.hw_only is True
    assert fingerprint(loaded) == fingerprint(model)


def test_unmapped_model_saves_no_mapping():
    model = reference_three_layer()
    assert "mapping" not in model.to_dict()
    model.map(ak.AKD1000())
    model.map(None)
    assert "mapping" not in model.to_dict() and ak.Model.from_dict(model.to_dict()).device is None


def test_learning_layer_mapping_survives(tmp_path):
    model = ak.Model()
    model.add(ak.InputData((1, 1, 64), input_bits=1))
    model.add(ak.FullyConnected(10, weights_bits=1, name="learner"))
    model.compile(ak.AkidaUnsupervised(num_weights=8, num_classes=2))
    model.map(ak.AKD1000(), hw_only=True)
    loaded = ak.Model.from_buffer(model.to_buffer())
    assert loaded._mapping.single_np_layers == ("learner",) and fingerprint(loaded) == fingerprint(model)


CORRUPTIONS = [
    ("not a dict", lambda s: "AKD1000", "must be a dict"),
    ("missing key", lambda s: s.pop("mode"), "must be a dict"),
    ("bad mode", lambda s: s.update(mode="Fastest"), "bad mode"),
    ("bad hw_only", lambda s: s.update(hw_only="yes"), "bad mode"),
    ("unknown NP type", lambda s: s["device"]["nps"][0].__setitem__(3, ["XNP"]), "invalid device description"),
    ("unknown learning layer", lambda s: s.update(single_np_layers=["nope"]), "single_np_layers"),
    ("allocation edited", lambda s: s["sequences"][0]["nps"]["Conv_2"].pop(), "differs from the mapping"),
    ("sequence renamed", lambda s: s["sequences"][1].update(name="SW/other"), "differs from the mapping"),
    ("v2 device", lambda s: s["device"].update(hw_version=[0xBC, 0xA2, 1, 0]), "cannot be reproduced"),
    ("too few NPs", lambda s: s["device"].update(nps=s["device"]["nps"][:3]), "differs from the mapping"),
]


@pytest.mark.parametrize("name,corrupt,message", CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_corrupted_mapping_state_is_rejected(name, corrupt, message):
    model = nine_by_nine_in_the_middle()
    model.map(ak.AKD1000())
    description = model.to_dict()
    state = copy.deepcopy(description["mapping"])
    replaced = corrupt(state)
    description["mapping"] = replaced if isinstance(replaced, str) else state
    with pytest.raises(ak.ModelFormatError, match=message):
        ak.Model.from_dict(description)


def _leaves(tree, path=()):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaves(value, path + (key,))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from _leaves(value, path + (index,))
    yield path


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.text(max_size=4),
                        st.lists(st.integers(0, 3), max_size=4), st.dictionaries(st.text(max_size=3), st.none(),
                                                                                  max_size=2))


@settings(max_examples=60)
@given(st.data())
def test_fuzzed_mapping_state_loads_or_raises_model_format_error(data):
    model = nine_by_nine_in_the_middle()
    model.map(ak.AKD1500(), mode=ak.MapMode.Minimal)
    description = model.to_dict()
    paths = list(_leaves(description["mapping"]))
    path = data.draw(st.sampled_from(paths))
    value = data.draw(JSON_VALUES)
    if not path:
        description["mapping"] = value
    else:
        parent = description["mapping"]
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = value
    try:
        loaded = ak.Model.from_dict(description)
    except ak.ModelFormatError:
        return
    assert fingerprint(loaded) == fingerprint(model)   # a harmless change (e.g. the same value)

"""Malformed model descriptions (files, from_dict, from_json) fail with ModelFormatError, fast.

Regression tests of a fuzzing audit: each finding has an explicit case, and a seeded mutation loop
over `to_dict()` of a plain, a mapped and a learning model checks that only our error types come out.
"""
import copy
import hashlib
import json
import random
import sys

import numpy as np
import pytest

import akida_core as ak
from akida_core import fbz
from akida_core.errors import AkidaError, ModelFormatError, ModelStructureError
from akida_core.layers import layer as layer_module
from akida_core.model_state import arrays_to_lists

from ..workload import allocated, growth, steps
from .helpers import small_cnn


def tiny():
    model = ak.Model()
    model.add(ak.InputData((2, 2, 1), 1, name="in"))
    model.add(ak.FullyConnected(2, name="fc"))
    return model


def learning_model():
    model = ak.Model()
    model.add(ak.InputData((3, 3, 4), input_bits=1, name="in"))
    model.add(ak.FullyConnected(units=6, name="fc"))
    model.compile(ak.AkidaUnsupervised(num_weights=5, num_classes=2))
    x = (np.random.default_rng(0).random((8, 3, 3, 4)) < 0.4).astype(np.uint8)
    model.fit(x, np.arange(8) % 2)
    return model


def mapped_model():
    model = small_cnn(activation_last=True)
    model.map(ak.AKD1500())
    return model


def giant(layer):
    return {"format": "akida_core.Model", "version": 1, "layers": [
        {"layer_type": "InputData", "params": {"input_shape": [2 ** 20, 2 ** 20, 1], "input_bits": 1}},
        layer]}


def loaders(description):
    """Every way a description can reach Model: as a dict, as .fbz bytes, as JSON."""
    yield "from_dict", lambda: ak.Model.from_dict(description)
    yield "from_buffer", lambda: ak.Model.from_buffer(fbz.dumps(description))
    yield "from_json", lambda: ak.Model.from_json(json.dumps(arrays_to_lists(description)))


def assert_rejected(description, fragment):
    for how, load in loaders(description):
        with allocated() as work, pytest.raises(ModelFormatError, match=fragment):
            load()
        assert work.peak_bytes < 16 * 2 ** 20, how  # refused from the sizes: nothing big allocated


# ---- A2: sizes are refused before anything is allocated -------------------------------------------

@pytest.mark.parametrize("layer, fragment", [
    ({"layer_type": "FullyConnected", "params": {"units": 1}}, r"'weights' of shape \(1, 1, 1099511627776, 1\)"),
    ({"layer_type": "Convolutional", "params": {"kernel_size": [2 ** 20 - 1] * 2, "filters": 2 ** 20}},
     "1,152,919,305,584,640,000 bytes"),
])
def test_huge_variables_in_a_file_are_refused_before_allocating(layer, fragment):
    assert_rejected(giant(layer), fragment)
    assert_rejected(giant(layer), "MAX_VARIABLE_BYTES")


def test_huge_extra_variable_is_refused():
    description = tiny().to_dict()
    description["layers"][1]["extra_variables"] = {"x": {"shape": [10 ** 12], "dtype": "int8"}}
    assert_rejected(description, r"variable 'x' of shape \(1000000000000,\) \(int8\) would take 1,000,000,000,000")


def test_huge_layers_built_by_hand_raise_model_structure_error():
    model = ak.Model()
    model.add(ak.InputData((2 ** 20, 2 ** 20, 1), 1, name="in"))
    with pytest.raises(ModelStructureError, match="'fc' .* limited to 268,435,456 bytes"):
        model.add(ak.FullyConnected(1, name="fc"))
    assert model.layer_count == 1
    first = ak.InputConvolutional((4, 4, 1), kernel_size=(2 ** 20 - 1,) * 2, filters=8, name="ic")
    with pytest.raises(ModelStructureError, match="'ic' .*MAX_VARIABLE_BYTES"):
        ak.Model().add(first)
    assert first.model is None  # not left half-attached: it can be fixed and added again


def test_model_wide_variable_cap(monkeypatch):
    monkeypatch.setattr(layer_module, "MAX_MODEL_VARIABLE_BYTES", 2500)
    model = ak.Model()
    model.add(ak.InputData((10, 10, 1), 1, name="in"))
    model.add(ak.FullyConnected(20, name="fc1"))  # 2,000 B of weights + 80 of thresholds + 80 of act_steps
    with pytest.raises(ModelStructureError, match="'fc2'.* would take 2,720 bytes .* limited to 2,500"):
        model.add(ak.FullyConnected(20, name="fc2"))
    description = model.to_dict()
    description["layers"].append(dict(description["layers"][1], params={"units": 20, "name": "fc2"}))
    del description["layers"][2]["variables"]
    assert_rejected(description, "MAX_MODEL_VARIABLE_BYTES")


def test_valid_model_with_a_huge_input_loads_but_is_refused_when_run():
    model = ak.Model.from_buffer(fbz.dumps(giant({"layer_type": "Convolutional",
                                                  "params": {"kernel_size": [3, 3], "filters": 8}})))
    assert model.output_shape == [2 ** 20, 2 ** 20, 8]
    wide = ak.Model()
    wide.add(ak.InputData((64, 64, 1), 1, name="in"))
    wide.add(ak.Convolutional((3, 3), 2 ** 20, name="c"))  # 9 MB of weights, 34 GB of outputs per sample
    with pytest.raises(ModelStructureError, match="'c' .* needs about 34,360,033,280 bytes.*MAX_SAMPLE_BYTES"):
        wide.forward(np.zeros((1, 64, 64, 1), np.uint8))


# ---- A6: from_json ---------------------------------------------------------------------------------

def test_from_json_range_checks_values_and_limits_nesting():
    text = json.loads(tiny().to_json())
    text["layers"][1]["variables"]["weights"]["__ndarray__"]["data"][0] = 1000
    cases = [(json.dumps(text), r"values in \[0, 1000\] do not fit int8 \[-128, 127\]"),
             ("[" * 100000, "nested too deeply"),
             ('{"a":' * 900 + "1" + "}" * 900, "nested deeper than 64"),
             ('{"format": NaN}', "NaN"),
             (b"\xff", "invalid model JSON"),
             (12, "invalid model JSON")]
    for bad, fragment in cases:
        with pytest.raises(ModelFormatError, match=fragment):
            ak.Model.from_json(bad)


@pytest.mark.parametrize("spec, fragment", [
    ({"dtype": "int8", "shape": [2], "data": [1]}, "flat list of 2 numbers"),
    ({"dtype": "int8", "shape": [1], "data": [[1]]}, "only integers"),
    ({"dtype": "int8", "shape": [1], "data": [1.5]}, "only integers"),
    ({"dtype": "float32", "shape": [1], "data": [1e300]}, "do not fit float32"),
    ({"dtype": "object", "shape": [1], "data": [1]}, "unsupported array dtype"),
    ({"dtype": "int8", "shape": [-1], "data": []}, "integers >= 0"),
    ({"dtype": "int8", "shape": [2 ** 63, 0], "data": []}, "too large"),
    ({"dtype": "int8", "shape": [1]}, "must be"),
])
def test_from_json_rejects_malformed_arrays(spec, fragment):
    text = json.loads(tiny().to_json())
    text["layers"][1]["variables"]["weights"] = {"__ndarray__": spec}
    with pytest.raises(ModelFormatError, match=fragment):
        ak.Model.from_json(json.dumps(text))


# ---- A7: from_dict validates like loading ---------------------------------------------------------

def _set(path, value):
    def edit(d):
        node = d
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


def _delete(path):
    def edit(d):
        node = d
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return edit


def _nested(depth):
    node = 0
    for _ in range(depth):
        node = {"k": node}
    return node


THSWAP = ("layers", 1, "extra_variables", "thswap")


@pytest.mark.parametrize("edit, fragment", [
    (_delete(("layers", 1, "params", "units")), r"missing parameter\(s\) \['units'\]"),
    (_set(("layers", 1, "extra_variables"), []), "extra_variables must be a dict"),
    (_set(("layers", 1, "extra_variables"), np.zeros(2)), "extra_variables must be a dict"),
    (_set(THSWAP + ("shape",), 3), "shape must be a list"),
    (_set(THSWAP + ("shape",), [[6]]), "shape must be a list"),
    (_set(THSWAP + ("dtype",), ""), "dtype '' is not allowed"),
    (_set(THSWAP + ("dtype",), ["int32"]), "is not allowed"),
    (_delete(THSWAP + ("dtype",)), "must be a dict with 'shape' and 'dtype'"),
    (_set(THSWAP + ("high",), {"a": 1}), "low/high must be None or finite numbers"),
    (_set(THSWAP + ("low",), "0"), "low/high must be None or finite numbers"),
    (_set(("learning", "optimizer"), []), "learning state must be"),
    (_set(("format",), np.array([1, 2])), "not an akida_core model description"),
    (_set(("version",), 0), "version 0 is not supported"),
    (_set(("layers", 1, "variables"), np.zeros(3)), "'variables' must be a dict of arrays"),
    (_set(("layers", 1, "layer_type"), ["FullyConnected"]), "unknown layer type"),
    (_set(("layers", 1, "params", "units"), _nested(200)), "nested deeper than 64"),
])
def test_from_dict_rejects_malformed_learning_descriptions(edit, fragment):
    description = learning_model().to_dict()
    edit(description)
    with pytest.raises(ModelFormatError, match=fragment):
        ak.Model.from_dict(description)


@pytest.mark.parametrize("edit, fragment", [
    (_set(("mapping", "mode"), ["AllNps"]), "bad mode"),
    (_set(("mapping", "hw_only"), np.array(True)), "hw_only"),
    (_set(("mapping", "sequences", 0, "nps"), np.zeros(3)), "sequences must hold lists"),
    (_set(("mapping", "device"), np.zeros(3)), "invalid device description"),
    (_set(("mapping", "device", "nps", 0), np.zeros(4)), "invalid device description"),
])
def test_from_dict_rejects_malformed_mapping_states(edit, fragment):
    description = mapped_model().to_dict()
    edit(description)
    for load in (ak.Model.from_dict, lambda d: ak.Model.from_buffer(fbz.dumps(d))):
        with pytest.raises(ModelFormatError, match=fragment):
            load(description)


def test_a_description_that_loops_is_rejected():
    description = tiny().to_dict()
    description["layers"][1]["params"]["name"] = description["layers"]
    with pytest.raises(ModelFormatError, match="nested deeper than 64"):
        ak.Model.from_dict(description)


# ---- A8: devices of absurd size are rejected before mapping ---------------------------------------

def test_device_with_too_many_nps_is_rejected_quickly(monkeypatch):
    description = mapped_model().to_dict()
    count = 200_000
    description["mapping"]["device"]["nps"] = [[c // 4 + 1, c % 4 + 1, 1, ["CNP1"]] for c in range(count)]
    blob = fbz.dumps(description)
    built = []  # refused from the list's length, before any NP is built (19 s before the cap)
    # `akida_core.devices` is also the name of the devices() function: patch the module itself.
    monkeypatch.setattr(sys.modules["akida_core.devices"], "NP", lambda *args: built.append(args))
    with pytest.raises(ModelFormatError, match="200,000 NPs; at most 4096 .MAX_DEVICE_NPS."):
        ak.Model.from_buffer(blob)
    assert built == []


def test_layer_count_is_capped_and_big_mapped_models_load_quickly(monkeypatch):
    layers = [{"layer_type": "InputData", "params": {"input_shape": [4, 4, 1], "input_bits": 1}}]
    layers += [{"layer_type": "FullyConnected", "params": {"units": 2}}] * 100_000
    blob = fbz.dumps({"format": "akida_core.Model", "version": 1, "layers": layers})
    built = []  # refused from the list's length, before any layer is built
    monkeypatch.setattr(ak.model.description, "layer_from_dict", built.append)
    with pytest.raises(ModelFormatError, match="100,001 layers; a model holds at most 1024 .MAX_LAYERS."):
        ak.Model.from_buffer(blob)
    assert built == []
    monkeypatch.undo()
    monkeypatch.setattr(ak.model.graph, "MAX_LAYERS", 3)
    small = tiny()
    small.add(ak.FullyConnected(2, name="fc2"))
    with pytest.raises(ModelStructureError, match="already holds 3 layers"):
        small.add(ak.FullyConnected(2, name="fc3"))
    monkeypatch.undo()
    # Mapping again on load grew each sequence in O(layers^2 * NPs) (511 layers: minutes); it is
    # linear in the layers now: doubling them about doubles the work (quadratic: about 4x).
    assert growth(_load_mapped_work, 64, 128) < 2.5


def _load_mapped_work(layers):
    model = ak.Model()
    model.add(ak.InputData((4, 4, 1), 1, name="in"))
    for i in range(layers):
        model.add(ak.FullyConnected(2, name=f"fc{i}"))
    model.map(ak.create_device(2048, 2048, hw_version=ak.NSoC_v2))
    blob = model.to_buffer()
    with steps() as work:
        assert len(ak.Model.from_buffer(blob).sequences) == 1
    return work.steps


# ---- seeded mutation fuzz: only ModelFormatError comes out --------------------------------------

POOL = [-1, 0, 1, 3, 2 ** 31, 2 ** 63, 10 ** 30, 1.5, -0.0, "", "x", "Same", "CNP1", True, None, [], {},
        [1, 2], [3, 3], [-1, -1], [2 ** 20] * 3, [2 ** 20 - 1] * 2, {"a": 1}, [[1]], [None], ["a"],
        {"shape": [10 ** 12], "dtype": "int8"}, {"shape": 3, "dtype": "int8"}, {"shape": [2], "dtype": "?"}]
ARRAYS = [np.zeros((2, 2), np.int8), np.full(3, np.nan, np.float32), np.zeros(0, np.int32), np.array(5),
          np.zeros(4, bool), np.array([2 ** 31 - 1]), np.full((3, 3, 1, 4), 200, np.int32)]


def _paths(node, prefix=()):
    yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield from _paths(value, prefix + (key,))


def _mutate(description, rng):
    description = copy.deepcopy(description)
    for _ in range(rng.randint(1, 2)):
        paths = [p for p in _paths(description) if p]
        path = rng.choice(paths)
        parent = description
        for key in path[:-1]:
            parent = parent[key]
        key, roll = path[-1], rng.random()
        if roll < 0.2:
            del parent[key]
        elif roll < 0.3:
            parent[key] = _nested(rng.choice([10, 70, 300]))
        elif roll < 0.45:
            parent[key] = copy.deepcopy(rng.choice(ARRAYS))
        elif roll < 0.55 and isinstance(parent[key], int) and not isinstance(parent[key], bool):
            parent[key] = rng.choice([-parent[key], parent[key] * 1000, parent[key] + 1, float(parent[key])])
        else:
            parent[key] = copy.deepcopy(rng.choice(POOL))
    return description


def _only_model_format_errors(load):
    try:
        model = load()
    except ModelFormatError:
        return "rejected"
    try:  # a mutation that still describes a valid model gives a usable model
        shape = model.input_shape
        if np.prod(shape) <= 10 ** 5:
            model.forward(np.zeros((1, *shape), np.int8 if model.layers[0].input_signed else np.uint8))
        model.summary(print_fn=lambda text: None)
        ak.Model.from_buffer(model.to_buffer())
    except AkidaError:
        pass
    return "loaded"


def test_mutated_descriptions_and_files_raise_only_model_format_errors(tmp_path):
    rng = random.Random(2024)
    bases = [small_cnn().to_dict(), mapped_model().to_dict(), learning_model().to_dict()]
    outcomes = {"rejected": 0, "loaded": 0}
    for trial in range(600):
        description = _mutate(rng.choice(bases), rng)
        outcomes[_only_model_format_errors(lambda: ak.Model.from_dict(description))] += 1
        try:
            blob = fbz.dumps(description)
        except fbz.UnsupportedTree:
            continue
        outcomes[_only_model_format_errors(lambda: ak.Model.from_buffer(blob))] += 1
        if trial % 3 == 0:
            text = json.dumps(arrays_to_lists(description))
            outcomes[_only_model_format_errors(lambda: ak.Model.from_json(text))] += 1
        if trial % 5 == 0:  # the same bytes, flipped or cut, with a valid checksum, from a file
            data = bytearray(blob)
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(32, len(data) - 32)] ^= rng.randrange(1, 256)
            data = data[:rng.randrange(32, len(data) + 1)] if rng.random() < 0.2 else data
            data[-32:] = hashlib.sha256(data[:-32]).digest()
            path = tmp_path / "m.fbz"
            path.write_bytes(bytes(data))
            outcomes[_only_model_format_errors(lambda: ak.Model(str(path)))] += 1
    assert outcomes["rejected"] > 500 and outcomes["loaded"] > 50, outcomes

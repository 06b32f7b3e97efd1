"""Akida 2.0 models in .fbz files: graph edges, every variable and the IP version round-trip; files of
the previous format version still load; damaged Akida 2.0 descriptions and files only ever raise
ModelFormatError (fuzzed), and huge shapes are refused before allocating."""
import copy
import hashlib
import json
import pathlib
import random

import numpy as np
import pytest

import akida_core as ak
from akida_core import fbz
from akida_core.errors import AkidaError, ModelFormatError
from akida_core.model_state import arrays_to_lists

from ..workload import allocated
from .v2_models import random_inputs, random_model

DATA = pathlib.Path(__file__).parent / "data"


def _assert_same(a, b):
    assert [(lay.name, lay.layer_type, [i.name for i in lay.inbounds]) for lay in a.layers] == \
        [(lay.name, lay.layer_type, [i.name for i in lay.inbounds]) for lay in b.layers]
    for x, y in zip(a.layers, b.layers):
        assert {k: v for k, v in vars(x.params).items() if k != "name"} == \
            {k: v for k, v in vars(y.params).items() if k != "name"}
        for name in x.variables.names:
            vx, vy = x.variables[name], y.variables[name]
            assert vx.dtype == vy.dtype and np.array_equal(vx, vy), name


@pytest.mark.parametrize("seed", range(12))
def test_random_graphs_round_trip_through_files_buffers_and_json(tmp_path, seed):
    rng = np.random.default_rng(seed)
    model, x = random_model(rng)
    expected = model.forward(x)
    path = tmp_path / "m.fbz"
    model.save(str(path))
    for loaded in (ak.Model(str(path)), ak.Model.from_buffer(model.to_buffer()), ak.Model.from_json(model.to_json()),
                   ak.Model.from_dict(model.to_dict())):
        assert loaded.ip_version == ak.IpVersion.v2
        _assert_same(model, loaded)
        assert np.array_equal(loaded.forward(x), expected)  # a loaded model starts with a fresh temporal state


def test_description_holds_version_2_inbounds_and_ip_version():
    model = ak.Model()
    model.add(ak.InputData((2, 2, 1), input_bits=8, name="in"))
    model.add(ak.Conv2D(1, 1, name="conv"))
    model.add(ak.Add(name="add"), [model.get_layer("in"), model.get_layer("conv")])
    description = model.to_dict()
    assert description["version"] == 2 and description["ip_version"] == "v2"
    assert [entry["inbounds"] for entry in description["layers"]] == [[], ["in"], ["in", "conv"]]


def test_files_of_format_1_still_load():
    """A file written by the previous release (model description version 1, Akida 1.0)."""
    model = ak.Model(str(DATA / "format1_small_cnn.fbz"))
    io = np.load(DATA / "format1_small_cnn_io.npz")
    assert model.ip_version == ak.IpVersion.v1
    assert np.array_equal(model.forward(io["x"]), io["out"])
    assert [lay.inbounds for lay in model.layers[1:]] == [[lay] for lay in model.layers[:-1]]


def _v2_description():
    model = ak.Model()
    model.add(ak.InputData((2, 2, 2), input_bits=8, name="in"))
    model.add(ak.Conv2D(2, 3, name="conv"))
    model.add(ak.Add(name="add"), [model.get_layer("in"), model.get_layer("conv")])
    return model.to_dict()


@pytest.mark.parametrize("mutate, fragment", [
    (lambda d: d["layers"][2].update(inbounds=["in", "nowhere"]), "not earlier layers"),
    (lambda d: d["layers"][2].update(inbounds=["add", "in"]), "not earlier layers"),
    (lambda d: d["layers"][2].update(inbounds="in"), "list of at most 2 layer names"),
    (lambda d: d["layers"][2].update(inbounds=["in"]), "exactly 2 inbound"),
    (lambda d: d["layers"][0].update(inbounds=["conv"]), "input layer"),
    (lambda d: d.update(ip_version="v1"), "declares ip_version 'v1'"),
    (lambda d: d.update(ip_version=7), "declares ip_version 7"),
    (lambda d: d.update(version=3), "version 3 is not supported"),
    (lambda d: d["layers"][1]["variables"].update(bias=np.zeros(2, np.int32)), "Unsupported variable type for bias"),
    (lambda d: d["layers"][1]["variables"].update(weights=np.zeros((3, 3, 2, 3), np.int8)), "Unexpected tensor shape"),
    (lambda d: d["layers"][1]["params"].update(kernel_size=[3, 3]), "plain int"),
    (lambda d: d["layers"][1]["params"].update(activation="Sigmoid"), "ActivationType"),
    (lambda d: d["layers"][1].update(layer_type="Conv3D"), "unknown layer type"),
    (lambda d: d["layers"].insert(2, {"layer_type": "Convolutional",
                                      "params": {"kernel_size": [3, 3], "filters": 2}}), "Akida 1.0"),
])
def test_invalid_v2_descriptions_name_the_problem(mutate, fragment):
    description = _v2_description()
    mutate(description)
    for load in (lambda: ak.Model.from_dict(description), lambda: ak.Model.from_buffer(fbz.dumps(description))):
        with pytest.raises(ModelFormatError, match=fragment):
            load()


def _paths(node, prefix=()):
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield prefix + (key,)
        yield from _paths(value, prefix + (key,))


POOL = [None, -1, 0, 1, 2, 3, 31, 32, 2 ** 31, -2 ** 40, 1.5, "", "in", "Same", "LUT", [], [1], ["in", "in"], {},
        True, np.zeros(3, np.int8), np.zeros((2, 2), np.int16), np.full(2048, 7, np.int32), np.float32(1)]


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
        elif roll < 0.35 and isinstance(parent[key], int) and not isinstance(parent[key], bool):
            parent[key] = rng.choice([-parent[key], parent[key] * 1000, parent[key] + 1, float(parent[key])])
        else:
            parent[key] = copy.deepcopy(rng.choice(POOL))
    return description


def _outcome(load):
    try:
        model = load()
    except ModelFormatError:
        return "rejected"
    try:  # a mutation that still describes a valid model gives a usable model
        if np.prod(model.input_shape) <= 10 ** 4:
            model.forward(random_inputs(model, np.random.default_rng(0), 2))
        model.summary(print_fn=lambda text: None)
        ak.Model.from_buffer(model.to_buffer())
    except AkidaError:
        pass
    return "loaded"


def test_mutated_v2_descriptions_and_files_raise_only_model_format_errors(tmp_path):
    rng = random.Random(14)
    bases = [random_model(np.random.default_rng(seed))[0].to_dict() for seed in range(6)]
    outcomes = {"rejected": 0, "loaded": 0}
    for trial in range(400):
        description = _mutate(rng.choice(bases), rng)
        outcomes[_outcome(lambda: ak.Model.from_dict(description))] += 1
        try:
            blob = fbz.dumps(description)
        except fbz.UnsupportedTree:
            continue
        outcomes[_outcome(lambda: ak.Model.from_buffer(blob))] += 1
        if trial % 4 == 0:
            text = json.dumps(arrays_to_lists(description))
            outcomes[_outcome(lambda: ak.Model.from_json(text))] += 1
        if trial % 5 == 0:  # the same bytes flipped or cut, with a valid checksum, from a file
            data = bytearray(blob)
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(32, len(data) - 32)] ^= rng.randrange(1, 256)
            data = data[:rng.randrange(32, len(data) + 1)] if rng.random() < 0.2 else data
            data[-32:] = hashlib.sha256(data[:-32]).digest()
            path = tmp_path / "m.fbz"
            path.write_bytes(bytes(data))
            outcomes[_outcome(lambda: ak.Model(str(path)))] += 1
    assert outcomes["rejected"] > 300 and outcomes["loaded"] > 30, outcomes


@pytest.mark.parametrize("cut", [0, 8, 40, 200, -33, -1])
def test_truncated_v2_files_are_rejected(tmp_path, cut):
    model, _ = random_model(np.random.default_rng(3))
    blob = model.to_buffer()
    path = tmp_path / "cut.fbz"
    path.write_bytes(blob[:cut] if cut >= 0 else blob[:len(blob) + cut])
    with pytest.raises(ModelFormatError):
        ak.Model(str(path))


def test_huge_v2_dimensions_are_refused_before_allocating():
    description = _v2_description()
    description["layers"][0]["params"]["input_shape"] = [2 ** 20, 2 ** 20, 2]
    description["layers"].insert(2, {"layer_type": "Dense1D", "params": {"units": 4096}, "inbounds": ["conv"]})
    description["layers"] = description["layers"][:3]
    with allocated() as work, pytest.raises(ModelFormatError, match="bytes"):
        ak.Model.from_dict(description)
    assert work.peak_bytes < 2 ** 20  # refused from the shapes, before allocating the 256 GiB of weights

"""Malformed .h5/.keras model files (the fuzzing audit's findings): the readers raise only our
typed errors, name the file, the key and the value, never run code and never hang.

A seeded mutation sweep over a small .h5 and .keras (config edits of the audited kinds, byte
truncations and flips) plus one explicit case per finding.
"""
import copy
import json
import random
import shutil
import struct
import zipfile

import h5py
import keras
import numpy as np
import pytest

from cnn2snn.errors import Cnn2snnError, ModelFileError
from cnn2snn.files import UnsafeModelError as FileUnsafeError
from cnn2snn.files import load_model_file, read_model_file
from quantizeml.errors import ModelFormatError, QuantizeMLError, UnsafeModelError
from quantizeml.models import load_model, quantize
from quantizeml.models.files import KERAS_MEMBERS, MAX_ARCHIVE_MEMBERS, write_keras_members

# Akida 1.0 flows (the default is Akida 2.0)
pytestmark = [pytest.mark.akida_version("v1"),
              pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """base.h5 (tf-keras Sequential), func.h5 (tf-keras Functional), base.keras (Keras 3
    Functional): Conv2D > ReLU > Flatten > Dense on 8x8x1."""
    import tf_keras
    folder = tmp_path_factory.mktemp("fuzz")
    tl = tf_keras.layers
    tf_keras.utils.set_random_seed(0)
    tf_keras.Sequential([tf_keras.Input((8, 8, 1)), tl.Conv2D(4, 3, name="conv2d"),
                         tl.ReLU(name="re_lu"), tl.Flatten(name="flatten"),
                         tl.Dense(3, name="dense")]).save(folder / "base.h5")
    inputs = tf_keras.Input((8, 8, 1))
    x = tl.BatchNormalization(name="bn")(tl.Conv2D(4, 3, name="conv2d")(inputs))
    tf_keras.Model(inputs, tl.Dense(3, name="dense")(tl.Flatten()(tl.ReLU()(x)))).save(
        folder / "func.h5")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.ReLU(name="re_lu")(keras.layers.Conv2D(4, 3, name="conv2d")(inputs))
    keras.Model(inputs, keras.layers.Dense(3, name="dense")(keras.layers.Flatten()(x))).save(
        folder / "base.keras")
    with zipfile.ZipFile(folder / "base.keras") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    configs = {}
    for name in ("base.h5", "func.h5"):
        with h5py.File(folder / name) as handle:
            configs[name] = json.loads(handle.attrs["model_config"])
    return {"dir": folder, "members": members, "h5": configs}


def _h5(base, name, config=None, attrs=None, edit=None, source="base.h5"):
    path = base["dir"] / name
    shutil.copy(base["dir"] / source, path)
    with h5py.File(path, "r+") as handle:
        if config is not None:
            handle.attrs["model_config"] = config if isinstance(config, str) else json.dumps(config)
        for key, value in (attrs or {}).items():
            handle.attrs[key] = value
        if edit is not None:
            edit(handle)
    return str(path)


def _keras(base, name, **members):
    path = base["dir"] / name
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in {**base["members"], **members}.items():
            archive.writestr(member, data)
    return str(path)


def _keras_config(base, edit):
    config = json.loads(base["members"]["config.json"])
    edit(config)
    return json.dumps(config).encode()


def _layer_edit(index, key, value, where="config"):
    """An edit of model_config setting layers[index][where][key] (or layers[index][key])."""
    def edit(config):
        entry = config["config"]["layers"][index]
        (entry if where is None else entry[where])[key] = value
    return edit


def _edited(base, edit, source="base.h5"):
    config = copy.deepcopy(base["h5"][source])
    edit(config)
    return config


# ---- explicit findings (.h5) ----

DEEP = "[" * 3000 + "]" * 3000
H5_CONFIG_CASES = [  # (id, edit of model_config, message fragment)
    ("H7 config null", _layer_edit(0, "config", None, None), "config=None; expected a dict"),
    ("H7 batch shape dict", _layer_edit(0, "batch_input_shape", {"a": 1}), "batch shape"),
    ("H8 config int", lambda c: c.__setitem__("config", 7), "is 7; expected a dict"),
    ("H9 class_name list", _layer_edit(2, "class_name", ["ReLU"], None), "class_name"),
    ("H10 name dict", _layer_edit(2, "name", {"a": 1}), "name={'a': 1}; expected a string"),
    ("H11 output_layers int", lambda c: c["config"].__setitem__("output_layers", 5),
     "output_layers=5; expected"),
    ("H11 output_layers dict", lambda c: c["config"].__setitem__("output_layers", {"a": 1}),
     "output_layers"),
    ("H12 inbound 7", _layer_edit(2, "inbound_nodes", 7, None), "inbound_nodes=7"),
    ("H12 inbound [None]", _layer_edit(2, "inbound_nodes", [None], None), "inbound node None"),
    ("H12 inbound [[8]]", _layer_edit(2, "inbound_nodes", [[8]], None), "inbound node \\[8\\]"),
    ("H12 inbound [[[]]]", _layer_edit(2, "inbound_nodes", [[[]]], None), "inbound node"),
    ("H13 kernel_size", _layer_edit(1, "kernel_size", [3, -1]),
     "'conv2d' \\(Conv2D\\): kernel_size=\\[3, -1\\]; allowed: a positive integer"),
    ("H13 units -1", _layer_edit(4, "units", -1), "'dense' \\(Dense\\): units=-1"),
    ("H13 padding dict", _layer_edit(1, "padding", {}), "padding={}; allowed: 'same' or 'valid'"),
    ("H13 use_bias deep", _layer_edit(1, "use_bias", json.loads("[" * 20 + "]" * 20)),
     "use_bias=.*allowed: true or false"),
    ("H13 strides 2**40", _layer_edit(1, "strides", [2**40, 1]), "strides="),
    ("H15 model name list", lambda c: c["config"].__setitem__("name", [1]), "name=\\[1\\]"),
    ("H3 deep config", lambda c: c["config"].__setitem__("layers", json.loads(
        "[" * 70 + "]" * 70)), "nests 7[0-9] levels deep; the limit is 64"),
    ("duplicate names", _layer_edit(2, "name", "conv2d"), "'conv2d' is used twice"),
]


@pytest.mark.parametrize("case,edit,match", H5_CONFIG_CASES, ids=[c[0] for c in H5_CONFIG_CASES])
def test_h5_config_findings_are_typed_errors(base, case, edit, match):
    source = "func.h5" if "inbound" in case or "output" in case else "base.h5"
    path = _h5(base, "c.h5", _edited(base, edit, source), source=source)
    with pytest.raises(ModelFormatError, match=match) as info:
        load_model(path)
    assert "c.h5" in str(info.value)
    with pytest.raises(ModelFileError, match=match):
        load_model_file(path)
    with pytest.raises(ModelFormatError, match=match):
        quantize(path, num_samples=2, verbose=0)


def _empty_weight(handle):
    target = "model_weights/conv2d/conv2d/kernel:0"
    del handle[target]
    handle.create_dataset(target, data=h5py.Empty("f4"))


def _external_weight(handle):
    target = "model_weights/conv2d/conv2d/kernel:0"
    del handle[target]
    handle[target] = h5py.ExternalLink("/etc/other.h5", "/x")


H5_FILE_CASES = [  # (id, model_config text or None, attrs, edit, message fragment)
    ("H1 backend", None, {"backend": np.bytes_(b"\xff")}, None, "'backend' is not UTF-8"),
    ("H1 layer_names", None, {}, lambda f: f["model_weights"].attrs.__setitem__(
        "layer_names", np.array([b"\xff\xfe"])), "is not UTF-8"),
    ("H2 keras_version", None, {"keras_version": "\u00b2"}, None, "'²' is not a Keras version"),
    ("H2 keras_version long", None, {"keras_version": "3" * 5000}, None, "not a Keras version"),
    ("H3 deep", '{"class_name": "Sequential", "config": ' + DEEP + "}", {}, None,
     "nests too deeply|nests 3000 levels"),
    ("H3 digits", None, {}, None, "5000-digit integer; the limit is 30"),
    ("H4 null dataspace", None, {}, _empty_weight, "kernel:0' is empty \\(null dataspace\\)"),
    ("external link", None, {}, _external_weight,
     "is a link \\(ExternalLink\\); only objects stored"),
    ("C2 model_config int", None, {"model_config": np.int64(5)}, None,
     "'model_config' is int64"),
]


@pytest.mark.parametrize("case,text,attrs,edit,match", H5_FILE_CASES,
                         ids=[c[0] for c in H5_FILE_CASES])
def test_h5_file_findings_are_typed_errors(base, case, text, attrs, edit, match):
    if case == "H3 digits":
        text = json.dumps(base["h5"]["base.h5"]).replace('"filters": 4', '"filters": ' + "9" * 5000)
    path = _h5(base, "f.h5", text, attrs, edit)
    with pytest.raises(ModelFormatError, match=match):
        load_model(path)
    with pytest.raises(ModelFileError, match=match):
        load_model_file(path)
    with pytest.raises(ModelFileError):
        read_model_file(path)  # the cnn2snn fallback reader, called directly


def test_h5_batchnorm_axis_out_of_range(base):
    def bn_axis(config):
        config["config"]["layers"][2]["config"]["axis"] = [5]
    path = _h5(base, "bn.h5", _edited(base, bn_axis, "func.h5"), source="func.h5")
    with pytest.raises(ModelFormatError, match="'bn' .*axis=5 is not a feature axis"):
        load_model(path)
    with pytest.raises(ModelFormatError, match="axis=5"):
        quantize(path, num_samples=2, verbose=0)


def test_h5_corrupted_objects_are_typed_errors(base):
    data = (base["dir"] / "base.h5").read_bytes()
    with h5py.File(base["dir"] / "base.h5") as handle:
        address = h5py.h5o.get_info(handle["model_weights/conv2d/conv2d"].id).addr  # header
    refused = 0
    for offset in range(0, 64, 4):
        broken = bytearray(data)
        broken[address + offset:address + offset + 8] = b"\xff" * 8
        (base["dir"] / "o.h5").write_bytes(bytes(broken))
        try:
            load_model(base["dir"] / "o.h5")
        except ModelFormatError as err:
            assert "o.h5" in str(err)
            refused += 1
    assert refused >= 4


# ---- H17: activations are names from an allowlist ----

def test_h5_activation_naming_a_function_is_refused(base):
    epsilon = keras.config.epsilon()
    for activation in ({"module": "keras.config", "class_name": "function",
                        "config": "set_epsilon"},
                       {"module": "builtins", "class_name": "function", "config": "eval"},
                       {"class_name": "function", "config": "relu", "module": "os"},
                       "set_epsilon", "os.system", ["relu"]):
        path = _h5(base, "act.h5", _edited(base, _layer_edit(4, "activation", activation)))
        with pytest.raises(UnsafeModelError, match="'dense' \\(Dense\\): activation=.*refused"):
            load_model(path)
        with pytest.raises(UnsafeModelError):
            quantize(path, num_samples=2, verbose=0)
        with pytest.raises(FileUnsafeError):
            load_model_file(path)
    assert keras.config.epsilon() == epsilon


def test_h5_builtin_activation_dict_form_becomes_its_name(base):
    relu = {"module": "keras.activations", "class_name": "function", "config": "relu"}
    path = _h5(base, "relu.h5", _edited(base, _layer_edit(4, "activation", relu)))
    assert load_model(path).get_layer("dense").get_config()["activation"] == "relu"


# ---- .keras ----

def _patch_central(data, flag=None, method=None):
    data = bytearray(data)
    position = data.find(b"PK\x01\x02")
    if flag is not None:
        data[position + 8] |= flag
    if method is not None:
        struct.pack_into("<H", data, position + 10, method)
    return bytes(data)


KERAS_CASES = [  # (id, members to replace, message fragment)
    ("K2 metadata list", {"metadata.json": b"[]"}, "metadata.json is list"),
    ("K2 keras_version", {"metadata.json": '{"keras_version": "\u00b2"}'.encode()},
     "'²' is not a Keras version"),
    ("K3 deep", {"config.json": b"[" * 100000}, "nests too deeply"),
    ("K3 digits", {"config.json": b'{"class_name": "Functional", "config": ' + b"9" * 4400 +
                   b"}"}, "4400-digit integer"),
    ("K5 output_layers 5", {"config.json": lambda c: c["config"].__setitem__(
        "output_layers", 5)}, "output_layers=5"),
    ("K5 name list", {"config.json": _layer_edit(1, "name", ["x"], None)}, "name=\\['x'\\]"),
    ("K5 entry string", {"config.json": lambda c: c["config"]["layers"].__setitem__(1, "Conv2D")},
     "layer #1 has no 'class_name'"),
    ("K6 tensor config x", {"config.json": lambda c: c["config"]["layers"][1]["inbound_nodes"][0][
        "args"][0].__setitem__("config", "x")}, "without a keras_history"),
    ("K6 keras_history ''", {"config.json": lambda c: c["config"]["layers"][1]["inbound_nodes"][0][
        "args"][0]["config"].__setitem__("keras_history", "")}, "without a keras_history"),
    ("K6 kwargs None", {"config.json": lambda c: c["config"]["layers"][1]["inbound_nodes"][0]
                        .__setitem__("kwargs", None)}, "inbound node"),
]


@pytest.mark.parametrize("case,members,match", KERAS_CASES, ids=[c[0] for c in KERAS_CASES])
def test_keras_findings_are_typed_errors(base, case, members, match):
    members = {name: _keras_config(base, data) if callable(data) else data
               for name, data in members.items()}
    path = _keras(base, "k.keras", **members)
    with pytest.raises(ModelFormatError, match=match):
        load_model(path)
    with pytest.raises(ModelFileError, match=match):
        load_model_file(path)
    with pytest.raises(ModelFileError, match=match):
        read_model_file(path)


@pytest.mark.parametrize("module", [7, ["keras"], {"a": 1}])
def test_keras_module_not_a_string_is_refused(base, module):
    path = _keras(base, "m.keras", **{"config.json": _keras_config(
        base, _layer_edit(1, "module", module, None))})
    with pytest.raises(UnsafeModelError, match="module .* is not a string"):
        load_model(path)


@pytest.mark.parametrize("flag,method,match", [(1, None, "is encrypted"),
                                               (None, 99, "compression method 99")])
def test_keras_encrypted_or_unknown_compression(base, flag, method, match):
    path = base["dir"] / "z.keras"
    path.write_bytes(_patch_central(open(_keras(base, "z.keras"), "rb").read(), flag, method))
    for reader in (load_model, load_model_file, read_model_file):
        with pytest.raises((ModelFormatError, ModelFileError), match=match):
            reader(path)


def test_c1_fallback_reader_with_module_not_a_string(base):
    def edit(config):
        config["config"]["layers"][2]["class_name"] = "LayerNormalization"
        config["config"]["layers"][1]["config"]["kernel_initializer"]["module"] = 7
    path = _h5(base, "c1.h5", _edited(base, edit))
    with pytest.raises(FileUnsafeError, match="from module '7'"):
        load_model_file(path)  # quantizeml cannot rebuild it: the cnn2snn fallback refuses it


# ---- K7: member count ----

def _many_members(base, name, count):
    path = base["dir"] / name
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in base["members"].items():
            archive.writestr(member, data)
        for index in range(count):
            archive.writestr(f"assets/{index}", b"")
    return path


def _zip_directories_parsed(monkeypatch):
    """Records every zipfile.ZipFile opened (each parses a whole central directory)."""
    opened = []
    real = zipfile.ZipFile
    monkeypatch.setattr(zipfile, "ZipFile",
                        lambda *args, **kwargs: opened.append(args) or real(*args, **kwargs))
    return opened


def test_keras_member_count_is_capped_and_refused_early(base, monkeypatch):
    path = _many_members(base, "many.keras", 5000)
    with monkeypatch.context() as patch:
        opened = _zip_directories_parsed(patch)
        with pytest.raises(ModelFormatError, match="5003 members.*limit 64 members"):
            load_model(path)
        with pytest.raises(ModelFileError, match="5003 members"):
            load_model_file(path)
    assert opened == []  # refused from the end record's count, before zipfile reads 5003 entries
    with pytest.raises(ModelFormatError, match="limit"):
        load_model(_many_members(base, "65.keras", MAX_ARCHIVE_MEMBERS + 1 - 3))


def test_keras_gets_only_the_checked_members(base):
    path = _many_members(base, "assets.keras", 10)
    assert load_model(path).name
    copy_path = str(base["dir"] / "copy.keras")
    write_keras_members(path.read_bytes(), copy_path)
    with zipfile.ZipFile(copy_path) as archive:
        assert sorted(archive.namelist()) == sorted(KERAS_MEMBERS)


@pytest.mark.slow
def test_keras_300000_members_refused_in_seconds(base, monkeypatch):
    path = _many_members(base, "huge.keras", 300000)  # the audit's 30 MB file (zip64)
    opened = _zip_directories_parsed(monkeypatch)
    with pytest.raises(ModelFormatError, match="300003 members"):
        load_model(path)
    assert opened == []  # the zip64 end record's count is read; the 300,003 entries are not


# ---- seeded mutation sweep ----

WEIRD = [None, -1, 0, 2**40, 10**40, 1.5, "x", "", "same ", [], {}, [None], [[8]], [3, -1],
         {"a": 1}, True, ["relu"], {"class_name": "function", "config": "eval"},
         json.loads("[" * 80 + "]" * 80)]
KEYS = {"filters", "kernel_size", "units", "batch_input_shape", "batch_shape", "activation",
        "padding", "strides", "name", "inbound_nodes", "class_name", "module", "axis", "epsilon",
        "layers", "output_layers", "input_layers", "use_bias", "config", "keras_history", "args",
        "kwargs", "data_format", "dilation_rate", "groups"}


def _paths(node, prefix=()):
    yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(
        node, list) else ()
    for key, value in items:
        yield from _paths(value, prefix + (key,))


def _mutate(config, rng):
    config = copy.deepcopy(config)
    paths = [p for p in _paths(config) if p and (p[-1] in KEYS or rng.random() < 0.1)]
    path = rng.choice(paths)
    parent = config
    for key in path[:-1]:
        parent = parent[key]
    if rng.random() < 0.2:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(rng.choice(WEIRD))
    return json.dumps(config)


def _expect_typed(label, read, allowed=QuantizeMLError):
    try:
        read()
    except allowed:
        pass
    except Exception as err:  # noqa: BLE001 - the point: report anything untyped
        pytest.fail(f"{label}: {type(err).__module__}.{type(err).__name__}: {err}")


def test_mutated_h5_files_raise_only_typed_errors(base):
    rng = random.Random(0)
    for index in range(120):
        source = rng.choice(["base.h5", "func.h5"])
        path = _h5(base, "m.h5", _mutate(base["h5"][source], rng), source=source)
        _expect_typed(f"config #{index}", lambda: load_model(path))
        _expect_typed(f"config #{index}", lambda: load_model_file(path), Cnn2snnError)
    data = (base["dir"] / "base.h5").read_bytes()
    for index in range(40):
        broken = bytearray(data[:rng.randrange(len(data))] if index % 2 else data)
        for _ in range(0 if index % 2 else 8):
            broken[rng.randrange(len(broken))] ^= 1 << rng.randrange(8)
        (base["dir"] / "b.h5").write_bytes(bytes(broken))
        _expect_typed(f"bytes #{index}", lambda: load_model(base["dir"] / "b.h5"))
        _expect_typed(f"bytes #{index}", lambda: load_model_file(base["dir"] / "b.h5"),
                      Cnn2snnError)


def test_mutated_keras_files_raise_only_typed_errors(base):
    rng = random.Random(1)
    config = json.loads(base["members"]["config.json"])
    for index in range(120):
        path = _keras(base, "m.keras", **{"config.json": _mutate(config, rng).encode()})
        _expect_typed(f"config #{index}", lambda: load_model(path))
        _expect_typed(f"config #{index}", lambda: read_model_file(path), Cnn2snnError)
    data = open(_keras(base, "z.keras"), "rb").read()
    for index in range(40):
        broken = bytearray(data[:rng.randrange(len(data))] if index % 2 else data)
        for _ in range(0 if index % 2 else 4):
            broken[rng.randrange(len(broken))] ^= 1 << rng.randrange(8)
        if index % 4 == 0:  # plus an unknown compression method in the central directory
            broken = bytearray(_patch_central(bytes(broken), method=rng.choice([9, 97])))
        (base["dir"] / "b.keras").write_bytes(bytes(broken))
        _expect_typed(f"bytes #{index}", lambda: load_model(base["dir"] / "b.keras"))
        _expect_typed(f"bytes #{index}", lambda: load_model_file(base["dir"] / "b.keras"),
                      Cnn2snnError)


def _quantized_keras(folder):
    from quantizeml.models import quantize, save_model
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, padding="same"),
                              keras.layers.ReLU(6.0), keras.layers.Conv2D(4, 3, padding="same"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.ReLU(6.0),
                              keras.layers.Dense(3)])
    samples = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3)).astype(np.float32)
    path = str(folder / "quantized.keras")
    save_model(quantize(model, samples=samples, verbose=0), path)
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.mark.parametrize("class_name, key, value, match", [
    ("QuantizedConv2D", "filters", 10 ** 8, "would create .* weights"),
    ("QuantizedConv2D", "filters", "x", "not integers"),
    ("QuantizedGlobalAveragePooling2D", "input_shape", [None, -1, 4, 4], "height and width"),
])
def test_quantized_keras_sizes_refused_before_allocating(base, class_name, key, value, match):
    """A quantized .keras whose config implies huge weights (or nonsense build shapes) is refused
    from the config alone, before Keras allocates anything."""
    members = _quantized_keras(base["dir"])
    config = json.loads(members["config.json"])
    entry = next(e for e in config["config"]["layers"] if e["class_name"] == class_name)
    (entry["build_config"] if key == "input_shape" else entry["config"])[key] = value
    path = _keras({"dir": base["dir"], "members": members}, "huge.keras",
                  **{"config.json": json.dumps(config).encode()})
    with pytest.raises(ModelFormatError, match=match):
        load_model(path)


def test_fallback_reader_checks_sizes_before_keras(base):
    """cnn2snn's fallback reader (used for layers quantizeml cannot rebuild) refuses huge layer
    configs before Keras allocates too."""
    def edit(config):
        conv = next(e for e in config["config"]["layers"] if e["class_name"] == "Conv2D")
        conv["config"]["filters"] = 10 ** 8
    path = _keras(base, "huge_fallback.keras", **{"config.json": _keras_config(base, edit)})
    with pytest.raises(Cnn2snnError, match="would create .* weights"):
        read_model_file(path)


def test_fallback_h5_reader_bounds_config_sizes(base, monkeypatch):
    """A legacy .h5 with a layer quantizeml cannot rebuild goes to cnn2snn's fallback reader,
    which Keras builds from the config before reading weights: huge sizes are refused first."""
    import tf_keras
    tl = tf_keras.layers
    path = base["dir"] / "rnn.h5"
    tf_keras.Sequential([tf_keras.Input((8, 8, 1)), tl.Conv2D(4, 3, name="rnn_conv"),
                         tl.ReLU(name="rnn_relu"), tl.Reshape((36, 4), name="rnn_reshape"),
                         tl.LSTM(3, name="rnn")]).save(path)
    with h5py.File(path, "r+") as handle:
        config = json.loads(handle.attrs["model_config"])
        config["config"]["layers"][-1]["config"]["units"] = 2 ** 20
        handle.attrs["model_config"] = json.dumps(config)
    from keras.src.legacy.saving import legacy_h5_format
    built = []  # refused from the config, before Keras builds the layers
    monkeypatch.setattr(legacy_h5_format, "load_model_from_hdf5",
                        lambda *args, **kwargs: built.append(args))
    with pytest.raises(Cnn2snnError, match="'rnn' \\(LSTM\\) would create about"):
        load_model_file(str(path))
    assert built == []

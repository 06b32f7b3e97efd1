"""cnn2snn-check and cnn2snn convert: exit codes, text/json reports, golden snapshots, bad files."""
import json
import os
import zipfile

import h5py
import keras
import numpy as np
import pytest
from keras import layers as L

from cnn2snn.cli import check_main, main
from cnn2snn.patterns import registered_patterns

from .models import conv, relu, seq


GOLDEN = os.path.join(os.path.dirname(__file__), "..", "golden")


def _multi_problem_model():
    return keras.Sequential([keras.Input((32, 32, 3)), L.Conv2D(8, 9, padding="same", name="conv_9x9"),
                             L.ReLU(name="relu_unbounded"),
                             L.Conv2D(8, 3, strides=3, padding="same", name="conv_stride3"),
                             L.ReLU(6.0, name="relu_ok"), L.Reshape((-1, 8), name="to_sequence"),
                             L.LSTM(4, name="lstm"), L.Dense(3, name="logits"),
                             L.Softmax(name="softmax")], name="multi_problem")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    paths = {}
    paths["bad.keras"] = str(root / "bad.keras")
    _multi_problem_model().save(paths["bad.keras"])
    import tf_keras
    legacy = tf_keras.Sequential([tf_keras.Input((8, 8, 3)),
                                  tf_keras.layers.Conv2D(4, 3, padding="same"),
                                  tf_keras.layers.ReLU(6.0), tf_keras.layers.Flatten(),
                                  tf_keras.layers.Dense(3)])
    paths["legacy.h5"] = str(root / "legacy.h5")
    legacy.save(paths["legacy.h5"])
    lam = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Lambda(lambda x: x * 2)])
    paths["lambda.h5"] = str(root / "lambda.h5")
    lam.save(paths["lambda.h5"])
    paths["weights.h5"] = str(root / "weights.weights.h5")
    with h5py.File(paths["weights.h5"], "w") as handle:
        handle.create_dataset("w", data=np.zeros(3))
    os.replace(paths["weights.h5"], str(root / "weights.h5"))
    paths["weights.h5"] = str(root / "weights.h5")
    paths["empty.h5"] = str(root / "empty.h5")
    open(paths["empty.h5"], "wb").close()
    paths["png.h5"] = str(root / "png.h5")
    with open(paths["png.h5"], "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    data = open(paths["legacy.h5"], "rb").read()
    paths["truncated.h5"] = str(root / "truncated.h5")
    with open(paths["truncated.h5"], "wb") as handle:
        handle.write(data[:len(data) // 2])
    paths["os_system.keras"] = str(root / "os_system.keras")
    with zipfile.ZipFile(paths["bad.keras"]) as src, \
            zipfile.ZipFile(paths["os_system.keras"], "w") as dst:
        config = json.loads(src.read("config.json"))
        config["config"]["layers"][1] = {"module": "os", "class_name": "system",
                                         "config": {"name": "evil"}}
        dst.writestr("config.json", json.dumps(config))
        dst.writestr("model.weights.h5", src.read("model.weights.h5"))
    paths["no_config.keras"] = str(root / "no_config.keras")
    with zipfile.ZipFile(paths["no_config.keras"], "w") as dst:
        dst.writestr("model.weights.h5", b"")
    lstm = tf_keras.Sequential([tf_keras.Input((8, 8, 3)), tf_keras.layers.Conv2D(4, 9, padding="same"),
                                tf_keras.layers.ReLU(), tf_keras.layers.Reshape((-1, 4)),
                                tf_keras.layers.LSTM(4), tf_keras.layers.Dense(3)])
    paths["lstm.h5"] = str(root / "lstm.h5")
    lstm.save(paths["lstm.h5"])
    paths["model.txt"] = str(root / "model.txt")
    open(paths["model.txt"], "w").write("hello")
    paths["dir"] = str(root)
    return paths


def _snapshot(name, text):
    path = os.path.join(GOLDEN, name)
    if os.environ.get("UPDATE_GOLDEN"):
        with open(path, "w") as handle:
            handle.write(text)
    with open(path) as handle:
        assert text == handle.read(), f"report differs from {path} (UPDATE_GOLDEN=1 to refresh)"


def test_list_patterns(capsys):
    assert check_main(["--list-patterns"]) == 0
    out = capsys.readouterr().out
    assert all(p.name in out for p in registered_patterns())


def test_legacy_h5_compatible(files, capsys):
    assert check_main([files["legacy.h5"], "--target", "AKD1000", "--weight-bits", "4",
                       "--activation-bits", "4"]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("compatible with AKD1000")


def test_without_target_the_selected_generation_is_checked_and_named(files, capsys, monkeypatch):
    """No --target: a float model is checked for the Akida version of the environment (default
    Akida 2.0, quantized and converted as MetaTF does); the header and the JSON say which."""
    assert check_main([files["legacy.h5"]]) == 0
    assert capsys.readouterr().out.startswith("legacy.h5: checked for Akida 2.0\n")
    assert check_main([files["legacy.h5"], "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["akida_version"], report["target"]) == ("v2", "Akida 2.0")
    assert check_main([files["lstm.h5"]]) == 1  # a file Keras 3 cannot rebuild: same header
    assert capsys.readouterr().out.startswith("lstm.h5: checked for Akida 2.0\n")
    monkeypatch.setenv("CNN2SNN_TARGET_AKIDA_VERSION", "v1")
    assert check_main([files["legacy.h5"], "--weight-bits", "8", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["akida_version"], report["target"]) == ("v1", "AKD1000 (Akida 1.0)")
    monkeypatch.setenv("CNN2SNN_TARGET_AKIDA_VERSION", "v3")
    assert check_main([files["legacy.h5"]]) == 2
    assert "CNN2SNN_TARGET_AKIDA_VERSION='v3'" in capsys.readouterr().err


def test_legacy_h5_bits_issue(files, capsys):
    assert check_main([files["legacy.h5"], "--target", "AKD1000", "--weight-bits", "8"]) == 1
    assert "1 issue in 1 layer" in capsys.readouterr().out


def test_legacy_h5_with_unsupported_layers_is_reported(files, capsys):
    """Keras 3 cannot rebuild this tf-keras LSTM: it is one issue, and every other layer is still
    checked (the 9x9 kernel and the unbounded ReLU before it, the Reshape feeding it)."""
    assert check_main([files["lstm.h5"], "--target", "AKD1000", "--format", "json"]) == 1
    issues = json.loads(capsys.readouterr().out)["issues"]
    assert [(i["rule"], i["level"]) for i in issues] == [
        ("kernel_size", "hardware"), ("relu_unbounded", "convert"), ("no_pattern", "convert"),
        ("unsupported_layer", "convert")]
    assert issues[0]["found"] == 9 and issues[-1]["found"] == "LSTM"


def test_exit_1_for_hardware_level_issues_only(tmp_path, capsys):
    model = seq((8, 8, 3), conv(4, 3), relu(), conv(4, 9), relu(), L.Flatten(), L.Dense(3))
    path = str(tmp_path / "k9.keras")
    model.save(path)
    assert check_main([path, "--target", "AKD1000", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["converts"] and not report["compatible"]
    assert [(i["rule"], i["level"]) for i in report["issues"]] == [("kernel_size", "hardware")]
    assert check_main([path, "--target", "AKD1000"]) == 1
    out = capsys.readouterr().out
    assert "hardware-level issues" in out and "convert-level issues" not in out


def test_text_report_golden(files, capsys):
    assert check_main([files["bad.keras"], "--target", "AKD1000"]) == 1
    out = capsys.readouterr().out
    assert out.strip().endswith("5 issues in 5 layers: 3 convert-level (does not convert), "
                                "2 hardware-level (converts; not mappable on AKD1000 in hardware "
                                "only)")
    _snapshot("cnn2snn_check_multi_problem.txt", out)


def test_json_report_golden(files, capsys):
    assert check_main([files["bad.keras"], "--format", "json", "--target", "akd1000"]) == 1
    out = capsys.readouterr().out
    report = json.loads(out)
    assert not report["compatible"] and len(report["issues"]) == 5
    assert {i["rule"] for i in report["issues"]} == {"kernel_size", "relu_unbounded", "stride",
                                                     "no_pattern", "unsupported_layer"}
    _snapshot("cnn2snn_check_multi_problem.json", out)


@pytest.mark.parametrize("name,text", [
    ("lambda.h5", "Lambda"), ("weights.h5", "weights only"), ("empty.h5", "empty"),
    ("png.h5", "nor an HDF5 file"), ("truncated.h5", "not a readable HDF5"), ("os_system.keras", "module 'os'"),
    ("no_config.keras", "lacks config.json"), ("model.txt", "extension '.txt'"),
    ("dir", "is a directory"), ("missing.h5", "does not exist"),
])
def test_bad_files_exit_3_without_traceback(files, capsys, name, text):
    path = files.get(name, os.path.join(files["dir"], name))
    assert check_main([path]) == 3
    err = capsys.readouterr().err
    assert text in err and "Traceback" not in err and err.startswith("error: ")


@pytest.mark.parametrize("argv", [[], ["m.h5", "--weight-bits", "3"], ["m.h5", "--target", "X"],
                                  ["m.h5", "--format", "xml"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        check_main(argv)
    assert exc.value.code == 2


def test_convert_float_model_exits_1(files, capsys, tmp_path):
    out = str(tmp_path / "out.fbz")
    assert main(["convert", "-m", files["legacy.h5"], "-o", out]) == 1
    err = capsys.readouterr().err
    assert "not quantized" in err and "quantizeml.models.quantize" in err
    assert not os.path.exists(out)


def test_convert_refuses_to_overwrite(files, tmp_path):
    out = tmp_path / "exists.fbz"
    out.write_bytes(b"x")
    with pytest.raises(SystemExit) as exc:
        main(["convert", "-m", files["legacy.h5"], "-o", str(out)])
    assert exc.value.code == 2 and out.read_bytes() == b"x"


def test_convert_bad_file_exit_3(files, capsys):
    assert main(["convert", "-m", files["lambda.h5"], "-o", files["dir"] + "/x.fbz"]) == 3


def test_convert_quantized_keras_file(tmp_path, capsys):
    from quantizeml import Akida1QuantizationParams
    from quantizeml.models import quantize, save_model

    import akida_core
    import cnn2snn
    float_model = seq((8, 8, 1), conv(4, 3), relu(), L.Flatten(), L.Dense(3))
    calib = np.random.default_rng(0).integers(0, 256, (8, 8, 8, 1)).astype(np.float32)
    qmodel = quantize(float_model, qparams=Akida1QuantizationParams(), samples=calib, verbose=0)
    path = save_model(qmodel, str(tmp_path / "q.keras"))
    assert check_main([path]) == 0
    assert main(["convert", "-m", path]) == 0
    assert "successfully converted" in capsys.readouterr().out
    akida_model = akida_core.Model(str(tmp_path / "q.fbz"))
    x = cnn2snn.akida_inputs(qmodel, calib)
    expected = np.asarray(qmodel(calib))
    np.testing.assert_array_equal(akida_model.predict(x).reshape(expected.shape), expected)


def _audit_files(files, folder):
    """Malformed files of the fuzzing audit's kinds (each used to exit 4)."""
    with h5py.File(files["legacy.h5"]) as handle:
        config = json.loads(handle.attrs["model_config"])

    def h5_variant(name, edit=None, text=None, attrs=None):
        path = folder / name
        path.write_bytes(open(files["legacy.h5"], "rb").read())
        changed = json.loads(json.dumps(config))
        if edit is not None:
            edit(changed["config"]["layers"])
        with h5py.File(path, "r+") as handle:
            handle.attrs["model_config"] = text or json.dumps(changed)
            for key, value in (attrs or {}).items():
                handle.attrs[key] = value
        return path

    def fallback(layers):  # quantizeml cannot rebuild it, so cnn2snn's own reader runs
        layers[2]["class_name"] = "LayerNormalization"
        layers[1]["config"]["kernel_initializer"]["module"] = 7

    many = folder / "many.keras"
    with zipfile.ZipFile(files["bad.keras"]) as source, zipfile.ZipFile(many, "w") as archive:
        for member in source.namelist():
            archive.writestr(member, source.read(member))
        for index in range(5000):
            archive.writestr(f"assets/{index}", b"")
    encrypted = folder / "encrypted.keras"
    data = bytearray(open(files["bad.keras"], "rb").read())
    data[data.find(b"PK\x01\x02") + 8] |= 1
    encrypted.write_bytes(bytes(data))
    return {
        "padding": (h5_variant("padding.h5", lambda l: l[1]["config"].update(padding={})),
                    "padding={}; allowed: 'same' or 'valid'"),
        "activation": (h5_variant("act.h5", lambda l: l[4]["config"].update(activation={
            "module": "keras.config", "class_name": "function", "config": "set_epsilon"})),
            "activation="),
        "deep": (h5_variant("deep.h5", text="[" * 5000), "nests too deeply"),
        "backend": (h5_variant("backend.h5", attrs={"backend": np.bytes_(b"\xff")}),
                    "not UTF-8"),
        "fallback module": (h5_variant("fallback.h5", fallback), "from module '7'"),
        "members": (many, "5003 members"),
        "encrypted": (encrypted, "is encrypted"),
    }


def test_malformed_files_exit_3_not_4(files, tmp_path, capsys):
    for label, (path, text) in _audit_files(files, tmp_path).items():
        assert check_main([str(path)]) == 3, label
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, (label, err)
        assert text in err and "Traceback" not in err, (label, err)
        assert main(["convert", "-m", str(path), "-o", str(tmp_path / "x.fbz")]) == 3, label
        capsys.readouterr()
    assert not (tmp_path / "x.fbz").exists()

"""`quantizeml` CLI in-process: quantize, config, version; good files and bad ones (exit codes)."""
import json
import zipfile

import h5py
import keras
import numpy as np
import pytest

from quantizeml import cli
from quantizeml.models import load_model
from quantizeml.models.quantize import QUANTIZED_CLASSES


def _float_model():
    keras.utils.set_random_seed(0)
    layers = keras.layers
    return keras.Sequential([
        keras.Input((8, 8, 1)), layers.Rescaling(1 / 255.0, name="rescaling"),
        layers.Conv2D(4, 3, padding="same", name="conv_0"), layers.ReLU(name="relu_0"),
        layers.Conv2D(6, 3, padding="same", name="conv_1"), layers.ReLU(name="relu_1"),
        layers.Flatten(name="flatten"), layers.Dense(3, name="classifier"),
    ], name="tiny")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A float .keras model, .npz/.npy samples and the quantized model made by the CLI."""
    folder = tmp_path_factory.mktemp("qcli")
    model_path = folder / "float.keras"
    _float_model().save(model_path)
    samples = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 1)).astype(np.float32)
    np.savez(folder / "calib.npz", x=samples, y=np.zeros(16))
    np.save(folder / "calib.npy", samples)
    quantized = folder / "float_i8_w4_a4.keras"
    assert cli.main(["quantize", "-m", str(model_path), "--samples", str(folder / "calib.npz"),
                     "-q"]) == cli.EXIT_OK
    return {"dir": folder, "model": model_path, "npz": folder / "calib.npz",
            "npy": folder / "calib.npy", "quantized": quantized}


def _run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_quantize_writes_a_quantized_model_with_the_default_name(files):
    qmodel = load_model(files["quantized"])
    assert any(isinstance(layer, QUANTIZED_CLASSES) for layer in qmodel.layers)
    bits = {layer.name: getattr(layer, "weight_bits", None) for layer in qmodel.layers}
    assert bits["conv_0"] == 8 and bits["conv_1"] == 4 and bits["classifier"] == 4


def test_quantize_bits_and_json_output(files, capsys):
    out_path = files["dir"] / "w2.keras"
    code, out, _ = _run(["quantize", "-m", files["model"], "-w", "2", "-a", "2", "-i", "4",
                         "--samples", files["npy"], "-o", out_path, "--format", "json"], capsys)
    assert code == cli.EXIT_OK
    report = json.loads(out)
    assert report["output"] == str(out_path) and out_path.exists()
    assert report["qparams"]["weight_bits"] == 2 and report["qparams"]["input_weight_bits"] == 4
    layers = report["layers"]
    assert layers["conv_0"]["weight_bits"] == 4 and layers["conv_1"]["weight_bits"] == 2
    assert layers["relu_0"]["activation_bits"] == 2
    assert report["calibration"].startswith("16 samples")


def test_quantize_refuses_to_overwrite_without_force(files, capsys):
    code, _, err = _run(["quantize", "-m", files["model"], "-o", files["quantized"]], capsys)
    assert code == cli.EXIT_USAGE and "--force" in err and err.count("\n") == 1


def test_quantize_without_samples_says_so(files, capsys):
    out_path = files["dir"] / "random.keras"
    code, out, err = _run(["quantize", "-m", files["model"], "-o", out_path, "-q"], capsys)
    assert code == cli.EXIT_OK and not err
    assert "random samples" in out and "Saved quantized model" in out


def test_config_of_a_quantized_model(files, capsys):
    code, out, _ = _run(["config", "-m", files["quantized"]], capsys)
    assert code == cli.EXIT_OK
    assert "quantized model" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[3:]}
    assert rows["conv_0"][1:3] == ["QuantizedConv2D", "8"]
    assert rows["conv_1"][1:4] == ["QuantizedConv2D", "4", "4"]
    assert rows["relu_1"][1] == "QuantizedReLU" and "4" in rows["relu_1"]


def test_config_of_a_float_model_resolves_the_requested_bits(files, capsys):
    code, out, _ = _run(["config", "-m", files["model"], "-w", "1", "-a", "1", "--format",
                         "json"], capsys)
    assert code == cli.EXIT_OK
    report = json.loads(out)
    assert report["quantized"] is False
    assert report["layers"]["conv_1"]["weight_bits"] == 1
    assert report["layers"]["classifier"]["input_bits"] == 1
    assert report["layers"]["conv_0"]["weight_bits"] == 8
    assert "scale" not in report["layers"]["input_quantizer"]  # random calibration: not shown


def test_config_to_file(files, capsys):
    target = files["dir"] / "config.json"
    code, out, _ = _run(["config", "-m", files["quantized"], "--format", "json", "-o", target],
                        capsys)
    assert code == cli.EXIT_OK and str(target) in out
    assert json.loads(target.read_text())["layers"]["classifier"]["weight_bits"] == 4


def test_version(capsys):
    code, out, _ = _run(["version"], capsys)
    assert code == cli.EXIT_OK and "tensorflow" in out and "keras" in out
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0 and "quantizeml (open-akida-toolchain" in \
        capsys.readouterr().out


@pytest.mark.parametrize("argv", [["quantize", "-m", "x.keras", "-w", "3"],
                                  ["quantize", "-m", "x.keras", "-a", "8"],
                                  ["quantize"], ["config"], ["frobnicate"]])
def test_usage_errors_exit_2(argv):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == cli.EXIT_USAGE


def _bad_model_files(folder):
    empty = folder / "empty.keras"
    empty.write_bytes(b"")
    png = folder / "image.h5"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    truncated = folder / "truncated.keras"
    truncated.write_bytes((folder / "float.keras").read_bytes()[:300])
    lambda_model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2)])
    lam = folder / "lambda.keras"
    lambda_model.save(lam)
    return {"missing": folder / "missing.keras", "directory": folder, "empty": empty,
            "png renamed .h5": png, "truncated zip": truncated, "Lambda layer": lam,
            "samples as model": folder / "calib.npz"}


@pytest.mark.parametrize("command", ["quantize", "config"])
def test_bad_model_files_exit_3_with_one_line(files, command, capsys):
    for label, path in _bad_model_files(files["dir"]).items():
        code, out, err = _run([command, "-m", path, "-o", files["dir"] / "never.keras"], capsys)
        assert code == cli.EXIT_FILE, (label, err)
        assert err.startswith("quantizeml: error: ") and err.count("\n") == 1, (label, err)
        assert not (files["dir"] / "never.keras").exists()


def test_bad_samples(files, capsys):
    folder = files["dir"]
    (folder / "garbage.npz").write_bytes(b"not numpy at all")
    pixels = np.random.default_rng(2).integers(0, 256, (2, 2, 8, 8, 1)).astype(np.float32)
    np.savez(folder / "two.npz", a=pixels[0], b=pixels[1])
    np.save(folder / "shape.npy", np.zeros((4, 5, 5, 1), np.float32))
    np.save(folder / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    cases = {"garbage.npz": cli.EXIT_FILE, "two.npz": cli.EXIT_FILE,
             "objects.npy": cli.EXIT_FILE, "missing.npy": cli.EXIT_FILE,
             "shape.npy": cli.EXIT_USAGE}
    for name, expected in cases.items():
        code, _, err = _run(["quantize", "-m", files["model"], "--samples", folder / name,
                             "-o", folder / "never.keras", "-q"], capsys)
        assert code == expected, (name, err)
        assert err.count("\n") == 1, (name, err)
        assert name in err or "shape (4, 5, 5, 1)" in err, (name, err)
    code, _, err = _run(["quantize", "-m", files["model"], "--samples", folder / "two.npz",
                         "--samples-key", "b", "-o", folder / "b.keras", "-q"], capsys)
    assert code == cli.EXIT_OK, err


def test_already_quantized_and_unsupported_models_exit_1(files, capsys):
    code, _, err = _run(["quantize", "-m", files["quantized"], "-o",
                         files["dir"] / "twice.keras", "-q"], capsys)
    assert code == cli.EXIT_NOT_QUANTIZABLE and "already quantized" in err
    tanh = keras.Sequential([keras.Input((8, 8, 1)),
                             keras.layers.Conv2D(4, 3, activation="tanh", name="conv_tanh"),
                             keras.layers.Flatten(), keras.layers.Dense(2)])
    tanh.save(files["dir"] / "tanh.keras")
    code, _, err = _run(["quantize", "-m", files["dir"] / "tanh.keras", "-o",
                         files["dir"] / "never.keras", "-q"], capsys)
    assert code == cli.EXIT_NOT_QUANTIZABLE and "conv_tanh" in err and err.count("\n") == 1


def test_samples_reader_never_unpickles(files, tmp_path):
    path = tmp_path / "pickled.npy"
    np.save(path, np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(cli.SamplesFileError, match="cannot be read"):
        cli.read_samples(path)
    with pytest.raises(cli.SamplesFileError, match="only applies to .npz"):
        cli.read_samples(files["npy"], key="x")
    assert cli.read_samples(files["npz"]).shape == (16, 8, 8, 1)  # 'x' chosen among x, y


def _malformed_model_files(folder):
    """Files of the fuzzing audit's kinds: each must exit 3 (never the internal-error 4)."""
    import tf_keras
    legacy = folder / "legacy.h5"
    tf_keras.Sequential([tf_keras.Input((8, 8, 1)), tf_keras.layers.Conv2D(4, 3, name="conv"),
                         tf_keras.layers.Flatten(), tf_keras.layers.Dense(3, name="dense")]
                        ).save(legacy)
    with h5py.File(legacy) as handle:
        config = json.loads(handle.attrs["model_config"])

    def h5_variant(name, edit=None, text=None):
        path = folder / name
        path.write_bytes(legacy.read_bytes())
        changed = json.loads(json.dumps(config))
        if edit is not None:
            edit(changed["config"]["layers"])
        with h5py.File(path, "r+") as handle:
            handle.attrs["model_config"] = text or json.dumps(changed)
        return path

    def keras_variant(name, patch=None, **members):
        path = folder / name
        with zipfile.ZipFile(folder / "float.keras") as source, \
                zipfile.ZipFile(path, "w") as archive:
            for member in source.namelist():
                archive.writestr(member, members.pop(member, source.read(member)))
            for member, data in members.items():
                archive.writestr(member, data)
        if patch is not None:
            data = bytearray(path.read_bytes())
            data[data.find(b"PK\x01\x02") + 8] |= patch  # flag bit 0: encrypted
            path.write_bytes(bytes(data))
        return path

    return {
        "padding {}": h5_variant("padding.h5", lambda layers: layers[1]["config"].update(
            padding={})),
        "activation function": h5_variant("act.h5", lambda layers: layers[3]["config"].update(
            activation={"module": "keras.config", "class_name": "function",
                        "config": "set_epsilon"})),
        "deep JSON": h5_variant("deep.h5", text='{"class_name": "Sequential", "config": ' +
                                "[" * 3000 + "]" * 3000 + "}"),
        "encrypted member": keras_variant("encrypted.keras", patch=1),
        "metadata list": keras_variant("metadata.keras", **{"metadata.json": b"[]"}),
        "10000 members": keras_variant("many.keras", **{f"assets/{i}": b"" for i in range(10000)}),
    }


@pytest.mark.parametrize("command", ["quantize", "config"])
def test_malformed_model_files_exit_3(files, command, capsys):
    for label, path in _malformed_model_files(files["dir"]).items():
        code, _, err = _run([command, "-m", path, "-o", files["dir"] / "never.keras"], capsys)
        assert code == cli.EXIT_FILE, (label, err)
        assert err.startswith("quantizeml: error: ") and err.count("\n") == 1, (label, err)
        assert path.name in err, (label, err)


def _bad_samples_files(folder):
    good = np.random.default_rng(3).integers(0, 256, (4, 8, 8, 1)).astype(np.uint8)
    np.save(folder / "good.npy", good)
    header = (folder / "good.npy").read_bytes()
    huge_header = header[:10] + b"{'descr': '|u1', 'fortran_order': False, 'shape': " \
        b"(10000000000000, 8, 8, 1), }".ljust(118) + b"\n"
    np.savez(folder / "good.npz", x=good)
    archive = bytearray((folder / "good.npz").read_bytes())
    crc = bytearray(archive)
    crc[archive.find(good.tobytes()[:32]) + 5] ^= 0xFF
    encrypted = bytearray(archive)
    encrypted[encrypted.find(b"PK\x01\x02") + 8] |= 1
    with zipfile.ZipFile(folder / "huge_member.npz", "w") as out:
        out.writestr("x.npy", huge_header)
    writes = {"empty.npy": b"", "truncated.npy": header[:len(header) // 2],
              "huge_header.npy": huge_header, "truncated.npz": bytes(archive[:len(archive) // 2]),
              "bad_crc.npz": bytes(crc), "encrypted.npz": bytes(encrypted)}
    for name, data in writes.items():
        (folder / name).write_bytes(data)
    np.save(folder / "scalar.npy", np.array(1.0))
    np.save(folder / "complex.npy", good.astype(np.complex64))
    np.save(folder / "uint64.npy", np.full((4, 8, 8, 1), 2**64 - 1, np.uint64))
    return {name: cli.EXIT_FILE for name in [*writes, "huge_member.npz"]} | {
        "scalar.npy": cli.EXIT_USAGE, "complex.npy": cli.EXIT_USAGE, "uint64.npy": cli.EXIT_USAGE}


def test_unreadable_samples_exit_3_and_unusable_samples_exit_2(files, capsys):
    folder = files["dir"]
    for name, expected in _bad_samples_files(folder).items():
        code, _, err = _run(["quantize", "-m", files["model"], "--samples", folder / name,
                             "-o", folder / "never.keras", "-q"], capsys)
        assert code == expected, (name, err)
        assert err.count("\n") == 1 and name in err, (name, err)
    assert not (folder / "never.keras").exists()


def test_samples_dtypes(tmp_path):
    from quantizeml.errors import CalibrationError
    np.save(tmp_path / "u64.npy", np.full((2, 8, 8, 1), 255, np.uint64))
    assert cli.read_samples(tmp_path / "u64.npy").dtype == np.uint64  # values fit: accepted
    np.save(tmp_path / "c.npy", np.ones((2, 8, 8, 1), np.complex64))
    with pytest.raises(CalibrationError, match="complex64 values; allowed: bool, integer or float"):
        cli.read_samples(tmp_path / "c.npy")
    np.save(tmp_path / "big.npy", np.full((2, 8, 8, 1), 2**40, np.int64))
    with pytest.raises(CalibrationError, match="integers up to magnitude 1099511627776"):
        cli.read_samples(tmp_path / "big.npy")

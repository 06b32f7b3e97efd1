"""Model files: .keras round trip (fresh process), legacy .h5 via h5py, tf-keras models, and the
bad inputs of ecosystem.md §5.2 that reach quantizeml."""
import io
import json
import os
import subprocess
import sys
import zipfile

import h5py
import keras
import numpy as np
import pytest

from quantizeml.errors import ModelFormatError, QuantizationError, UnsafeModelError
from quantizeml.models import load_model, quantize, save_model

from .conftest import small_cnn

# Akida 1.0 flows (the default is Akida 2.0)
pytestmark = [pytest.mark.akida_version("v1"),
              pytest.mark.filterwarnings("ignore::UserWarning")]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def saved(tmp_path_factory, images):
    folder = tmp_path_factory.mktemp("models")
    qmodel = quantize(small_cnn(), samples=images, verbose=0)
    path = save_model(qmodel, str(folder / "q.keras"))
    return qmodel, path


def test_keras_round_trip_in_process(saved, images):
    qmodel, path = saved
    loaded = load_model(path)
    np.testing.assert_array_equal(np.asarray(qmodel(images)), np.asarray(loaded(images)))
    assert keras.saving.load_model(path, safe_mode=True) is not None


def test_keras_reload_in_fresh_process(saved, images, tmp_path):
    qmodel, path = saved
    np.save(tmp_path / "x.npy", images)
    script = ("import numpy as np, quantizeml, keras\n"
              f"m = keras.saving.load_model({path!r}, safe_mode=True)\n"
              f"np.save({str(tmp_path / 'y.npy')!r}, np.asarray(m(np.load("
              f"{str(tmp_path / 'x.npy')!r}))))\n")
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300,
                   capture_output=True)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), np.asarray(qmodel(images)))


def test_quantizing_a_quantized_file_is_refused(saved):
    from quantizeml.errors import QuantizationConfigError
    with pytest.raises(QuantizationConfigError, match="already quantized"):
        quantize(saved[1], num_samples=2, verbose=0)


def test_save_model_checks_path(saved, tmp_path):
    qmodel, path = saved
    with pytest.raises(ModelFormatError, match=".keras"):
        save_model(qmodel, tmp_path / "q.h5")
    with pytest.raises(ModelFormatError, match="overwrite"):
        save_model(qmodel, path, overwrite=False)
    with pytest.raises(ModelFormatError, match="not writable"):
        save_model(qmodel, tmp_path / "missing" / "q.keras")


def _tf_keras_model():
    import tf_keras
    layers = tf_keras.layers
    tf_keras.utils.set_random_seed(0)
    return tf_keras.Sequential([
        layers.InputLayer((8, 8, 3)), layers.Rescaling(1 / 255.0, name="rescaling"),
        layers.Conv2D(4, 3, use_bias=False, name="conv2d"), layers.BatchNormalization(name="bn"),
        layers.ReLU(name="relu"), layers.Flatten(name="flatten"), layers.Dense(3, name="dense")])


def test_tf_keras_model_in_memory_and_from_h5(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (8, 8, 8, 3)).astype(np.float32)
    model = _tf_keras_model()
    from_memory = quantize(model, samples=x, verbose=0)
    model.save(tmp_path / "m.h5")
    from_file = quantize(str(tmp_path / "m.h5"), samples=x, verbose=0)
    np.testing.assert_array_equal(np.asarray(from_memory(x)), np.asarray(from_file(x)))
    float_model = load_model(tmp_path / "m.h5")
    np.testing.assert_allclose(float_model.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-4)


def test_float_keras_file_quantizes(tmp_path, images):
    model = small_cnn()
    model.save(tmp_path / "f.keras")
    qmodel = quantize(str(tmp_path / "f.keras"), samples=images, verbose=0)
    reference = quantize(model, samples=images, verbose=0)
    np.testing.assert_array_equal(np.asarray(qmodel(images)), np.asarray(reference(images)))


# ---- bad files ----

def _rewrite_keras(path, target, edit_config=None, extra=None, drop=()):
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as out:
        for item in source.infolist():
            if item.filename in drop:
                continue
            data = source.read(item.filename)
            if item.filename == "config.json" and edit_config is not None:
                config = json.loads(data)
                edit_config(config)
                data = json.dumps(config).encode()
            out.writestr(item.filename, data)
        for name, data in (extra or {}).items():
            out.writestr(name, data)
    return str(target)


def test_missing_directory_empty_and_mismatched_files(tmp_path):
    with pytest.raises(ModelFormatError, match="does not exist"):
        load_model(tmp_path / "nope.keras")
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"x")
    with pytest.raises(ModelFormatError, match="SavedModel"):
        load_model(tmp_path / "sm")
    (tmp_path / "empty.h5").write_bytes(b"")
    with pytest.raises(ModelFormatError, match="empty"):
        load_model(tmp_path / "empty.h5")
    (tmp_path / "image.h5").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    with pytest.raises(ModelFormatError, match="extension says .h5"):
        load_model(tmp_path / "image.h5")
    (tmp_path / "m.pkl").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ModelFormatError, match="pickles"):
        load_model(tmp_path / "m.pkl")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo.keras")
        with pytest.raises(ModelFormatError, match="regular file"):
            load_model(tmp_path / "fifo.keras")


@pytest.mark.parametrize("fraction", [0.1, 0.5, "last"])
def test_truncated_h5(tmp_path, fraction):
    _tf_keras_model().save(tmp_path / "m.h5")
    data = (tmp_path / "m.h5").read_bytes()
    cut = len(data) - 1 if fraction == "last" else int(len(data) * fraction)
    (tmp_path / "t.h5").write_bytes(data[:cut])
    with pytest.raises(ModelFormatError):
        quantize(str(tmp_path / "t.h5"), num_samples=2, verbose=0)


def _edit_h5(tmp_path, edit):
    _tf_keras_model().save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as handle:
        edit(handle)
    return str(tmp_path / "m.h5")


@pytest.mark.parametrize("edit,error,match", [
    (lambda f: f.attrs.__delitem__("model_config"), ModelFormatError, "weights only"),
    (lambda f: f.attrs.__setitem__("model_config", "{not json"), ModelFormatError, "JSON"),
    (lambda f: f.attrs.__setitem__("model_config", json.dumps({"a": 1})), ModelFormatError,
     "class_name"),
    (lambda f: f["model_weights"]["conv2d"].__delitem__("conv2d"), ModelFormatError, "missing"),
    (lambda f: f.attrs.__setitem__("backend", "jax"), ModelFormatError, "jax"),
    (lambda f: f.attrs.__setitem__("keras_version", "9.0.0"), ModelFormatError, "Keras 9"),
])
def test_corrupted_h5(tmp_path, edit, error, match):
    with pytest.raises(error, match=match):
        quantize(_edit_h5(tmp_path, edit), num_samples=2, verbose=0)


def test_h5_weight_shape_mismatch_and_lambda(tmp_path):
    def wrong_shape(handle):
        group = handle["model_weights"]["conv2d"]["conv2d"]
        del group["kernel:0"]
        group["kernel:0"] = np.zeros((3, 3, 3, 32), np.float32)
    with pytest.raises(ModelFormatError, match="weight shapes"):
        quantize(_edit_h5(tmp_path, wrong_shape), num_samples=2, verbose=0)

    def add_lambda(handle):
        config = json.loads(handle.attrs["model_config"])
        config["config"]["layers"].insert(2, {"class_name": "Lambda", "config": {
            "name": "evil", "function": ["4wEAAAAAAAAA", None, None]}})
        handle.attrs["model_config"] = json.dumps(config)
    with pytest.raises(UnsafeModelError, match="evil"):
        quantize(_edit_h5(tmp_path, add_lambda), num_samples=2, verbose=0)


def test_weights_only_h5(tmp_path):
    model = _tf_keras_model()
    model.save_weights(tmp_path / "w.h5")
    with pytest.raises(ModelFormatError, match="weights only"):
        load_model(tmp_path / "w.h5")


def _lambda_layer(config):
    config["config"]["layers"][3]["class_name"] = "Lambda"


def _os_system(config):
    config["config"]["layers"][3]["module"] = "os"
    config["config"]["layers"][3]["class_name"] = "system"
    config["config"]["layers"][3]["registered_name"] = None


def _unsafe_switch(config):
    config["config"]["layers"][3]["config"]["kernel_initializer"] = {
        "module": "keras.config", "class_name": "function",
        "config": "enable_unsafe_deserialization", "registered_name": "function"}


def _dead_node(config):
    dead = json.loads(json.dumps(config["config"]["layers"][4]))
    dead["name"] = dead["config"]["name"] = "dead_relu"
    config["config"]["layers"].append(dead)


def _unknown_class(config):
    config["config"]["layers"][3]["registered_name"] = "quantizeml>NotAClass"
    config["config"]["layers"][5]["registered_name"] = "other>Custom"
    config["config"]["layers"][5]["module"] = "other"


@pytest.mark.parametrize("edit,match", [
    (_lambda_layer, "Lambda"), (_os_system, "module 'os'"),
    (_unsafe_switch, "arbitrary code"), (_dead_node, "not connected"),
    (_unknown_class, "module 'other'.*NotAClass|NotAClass.*module 'other'"),
])
def test_keras_config_allowlist(saved, tmp_path, edit, match):
    _, path = saved
    bad = _rewrite_keras(path, tmp_path / "bad.keras", edit)
    with pytest.raises(UnsafeModelError, match=match):
        load_model(bad)


def test_keras_archive_problems(saved, tmp_path):
    _, path = saved
    with pytest.raises(ModelFormatError, match="config.json"):
        load_model(_rewrite_keras(path, tmp_path / "a.keras", drop=("config.json",)))
    with pytest.raises(UnsafeModelError, match="escapes"):
        load_model(_rewrite_keras(path, tmp_path / "b.keras", extra={"../evil.txt": b"x"}))
    link = tmp_path / "c.keras"
    _rewrite_keras(path, link)
    with zipfile.ZipFile(link, "a") as archive:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeModelError, match="symlink"):
        load_model(link)
    data = bytearray(open(path, "rb").read())
    (tmp_path / "t.keras").write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ModelFormatError, match="truncated|corrupted"):
        load_model(tmp_path / "t.keras")
    # Corrupt one byte inside the stored weights: CRC check fails.
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        offset = archive.getinfo("model.weights.h5").header_offset + 200
    data[offset] ^= 0xFF
    (tmp_path / "crc.keras").write_bytes(bytes(data))
    with pytest.raises(ModelFormatError):
        load_model(tmp_path / "crc.keras")


def test_nan_and_zero_size_models():
    model = small_cnn()
    kernel = model.get_layer("conv2d_1")
    weights = kernel.get_weights()
    weights[0][0, 0, 0, 0] = np.nan
    kernel.set_weights(weights)
    with pytest.raises(QuantizationError, match="conv2d_1.*NaN"):
        quantize(model, num_samples=2, verbose=0)
    from quantizeml.ir import spec_from_config
    config = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 1, name="c"),
                               keras.layers.Flatten(name="f"),
                               keras.layers.Dense(3, name="d")]).get_config()
    config["layers"][0]["config"]["batch_shape"] = [None, 0, 4, 1]
    with pytest.raises(ModelFormatError, match="dimension 0"):
        spec_from_config(json.loads(json.dumps(config)), {}, "test", "test")
    config["layers"][0]["config"]["batch_shape"] = [None, 4, 4, 1]
    config["layers"][3]["config"]["units"] = 0
    with pytest.raises(ModelFormatError, match="'d'.*units=0; allowed: a positive integer"):
        spec_from_config(config, {"c": [np.ones((1, 1, 1, 2)), np.zeros(2)]}, "test", "test")


def test_depthwise_and_reshape_model_round_trip(tmp_path):
    layers = keras.layers
    keras.utils.set_random_seed(5)
    model = keras.Sequential([
        keras.Input((10, 10, 3)), layers.Conv2D(6, 3, padding="same", name="c0"),
        layers.ReLU(name="r0"), layers.DepthwiseConv2D(3, padding="same", name="dw"),
        layers.GlobalAveragePooling2D(name="gap"), layers.ReLU(name="r1"),
        layers.Reshape((1, 1, 6), name="reshape"), layers.Conv2D(4, 1, name="c1"),
        layers.ReLU(name="r2"), layers.Flatten(name="flatten"), layers.Dense(3, name="d")])
    x = np.random.default_rng(2).integers(0, 256, (16, 10, 10, 3)).astype(np.float32)
    qmodel = quantize(model, samples=x, verbose=0)
    kinds = {type(layer).__name__ for layer in qmodel.layers}
    assert {"QuantizedDepthwiseConv2D", "QuantizedReshape", "QuantizedFlatten"} <= kinds
    from quantizeml.export import export_blocks

    from .integer_reference import model_forward
    _, floats = model_forward(export_blocks(qmodel), qmodel.layers[1].numpy(x))
    np.testing.assert_array_equal(np.asarray(qmodel(x)), floats)
    path = save_model(qmodel, tmp_path / "dw.keras")
    np.testing.assert_array_equal(np.asarray(load_model(path)(x)), floats)

"""`akida-core` CLI: demo, summary and run on good and bad files, exit codes, no tracebacks."""
import json

import numpy as np

from akida_core.cli import main

from .helpers import small_cnn


def test_demo_saves_a_model_that_reloads(tmp_path, capsys):
    out = tmp_path / "demo.fbz"
    assert main(["demo", "-o", str(out), "--samples", "16"]) == 0
    assert out.exists()
    assert "reloaded outputs identical: True" in capsys.readouterr().out


def test_summary_text_and_json(tmp_path, capsys):
    path = tmp_path / "m.fbz"
    small_cnn().save(str(path))
    assert main(["summary", str(path)]) == 0
    assert "conv (Convolutional)" in capsys.readouterr().out
    assert main(["summary", str(path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_shape"] == [9, 8, 1] and [lay["name"] for lay in data["layers"]] == ["ic", "conv", "sep", "fc"]


def test_run_with_inputs_and_random_data(tmp_path, capsys):
    path = tmp_path / "m.fbz"
    model = small_cnn()
    model.save(str(path))
    x = np.random.default_rng(0).integers(0, 256, (3, 9, 8, 1)).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", "-m", str(path), "-i", str(tmp_path / "x.npy"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["output_shape"] == [3, 1, 1, 3] and data["statistics"]["fc"]["macs_per_sample"] == 18
    assert main(["run", "-m", str(path)]) == 0
    assert "outputs: shape (8, 1, 1, 3)" in capsys.readouterr().out


def test_bad_files_and_inputs_exit_cleanly(tmp_path, capsys):
    bad = tmp_path / "bad.fbz"
    bad.write_bytes(b"PK\x03\x04 not a model")
    assert main(["summary", str(bad)]) == 3
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err
    assert main(["summary", str(tmp_path / "missing.fbz")]) == 3
    good = tmp_path / "m.fbz"
    small_cnn().save(str(good))
    np.save(tmp_path / "wrong.npy", np.zeros((2, 3, 3, 1), np.uint8))
    assert main(["run", "-m", str(good), "-i", str(tmp_path / "wrong.npy")]) == 2
    assert "shape" in capsys.readouterr().err
    np.save(tmp_path / "obj.npy", np.array([object()]), allow_pickle=True)
    assert main(["run", "-m", str(good), "-i", str(tmp_path / "obj.npy")]) == 2

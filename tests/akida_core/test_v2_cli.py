"""`akida-core summary` and `run` on Akida 2.0 .fbz files (graphs shown with their inbounds)."""
import json

import numpy as np

import akida_core as ak
from akida_core.cli import main


def _residual(path):
    model = ak.Model()
    model.add(ak.InputData((4, 4, 2), input_bits=8, name="in"))
    model.add(ak.Conv2D(2, 3, activation=ak.ActivationType.NoActivation, name="conv"))
    model.add(ak.Add(name="skip"), [model.get_layer("in"), model.get_layer("conv")])
    model.add(ak.Dense1D(3, name="head"))
    model.add(ak.Dequantizer(name="deq"))
    rng = np.random.default_rng(0)
    model.get_layer("conv").variables["weights"] = rng.integers(-5, 6, (3, 3, 2, 2)).astype(np.int8)
    model.get_layer("head").variables["weights"] = rng.integers(-5, 6, (32, 3)).astype(np.int8)
    model.save(str(path))
    return model


def test_summary_shows_the_graph_with_inbounds(tmp_path, capsys):
    _residual(tmp_path / "m.fbz")
    assert main(["summary", str(tmp_path / "m.fbz")]) == 0
    text = capsys.readouterr().out
    assert "Inbounds" in text and "Akida 2.0" in text
    skip = next(line for line in text.splitlines() if line.startswith("skip (Add)"))
    assert "in, conv" in skip
    assert main(["summary", str(tmp_path / "m.fbz"), "--format", "json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["ip_version"] == "v2"
    assert [layer["inbounds"] for layer in described["layers"]] == [[], ["in"], ["in", "conv"], ["skip"], ["head"]]


def test_run_with_inputs_and_random_data(tmp_path, capsys):
    model = _residual(tmp_path / "m.fbz")
    x = np.random.default_rng(1).integers(-128, 128, (5, 4, 4, 2)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", "-m", str(tmp_path / "m.fbz"), "-i", str(tmp_path / "x.npy"), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["output_shape"] == list(model.forward(x).shape) and report["output_dtype"] == "float32"
    assert main(["run", "-m", str(tmp_path / "m.fbz"), "--batch", "3"]) == 0
    assert "outputs: shape (3, 1, 1, 3), dtype float32" in capsys.readouterr().out


def test_run_with_a_wrong_dtype_exits_2(tmp_path, capsys):
    _residual(tmp_path / "m.fbz")
    np.save(tmp_path / "x.npy", np.zeros((1, 4, 4, 2), np.uint8))
    assert main(["run", "-m", str(tmp_path / "m.fbz"), "-i", str(tmp_path / "x.npy")]) == 2
    assert "Input type should be int8" in capsys.readouterr().err

"""`akida-core` CLI: demo, summary and run on good and bad files, exit codes, no tracebacks."""
import json
import os
import struct

import numpy as np
import pytest

import akida_core as ak
from akida_core import fbz
from akida_core.cli import main

from ..workload import allocated
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


def _one_line_error(capsys, code_expected, code):
    err = capsys.readouterr().err
    assert code == code_expected, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("akida-core: error: ") and "Traceback" not in err, err
    return lines[0]


def test_run_refuses_huge_random_inputs_before_allocating(tmp_path, capsys):
    huge = ak.Model()
    huge.add(ak.InputData((2 ** 20, 2 ** 20, 1), input_bits=1, name="in"))  # 1 TiB per sample
    huge.save(str(tmp_path / "huge.fbz"))
    small = ak.Model()
    small.add(ak.InputData((64, 64, 1), input_bits=1, name="in"))
    small.save(str(tmp_path / "small.fbz"))
    with allocated() as work:
        line = _one_line_error(capsys, 2, main(["run", "-m", str(tmp_path / "huge.fbz")]))
        assert "'in' (InputData): one sample needs about 8,796,093,022,208 bytes" in line
        line = _one_line_error(capsys, 2, main(["run", "-m", str(tmp_path / "small.fbz"), "--batch", "100000"]))
        assert "--batch 100000 random inputs of shape (64, 64, 1) would take 409,600,000 bytes" in line
    assert work.peak_bytes < 4 * 2 ** 20  # refused before allocating: no input array was made
    with pytest.raises(SystemExit) as info:
        main(["run", "-m", str(tmp_path / "small.fbz"), "--batch", "0"])
    assert info.value.code == 2 and "'0' is not an integer >= 1" in capsys.readouterr().err


def test_run_random_inputs_follow_a_signed_input_range(tmp_path, capsys):
    model = ak.Model()
    model.add(ak.InputData((3, 3, 2), input_bits=8, name="in"))  # signed 8-bit: [-128, 127]
    model.save(str(tmp_path / "signed.fbz"))
    assert main(["run", "-m", str(tmp_path / "signed.fbz"), "--batch", "4"]) == 0
    assert "outputs: shape (4, 3, 3, 2), dtype int8" in capsys.readouterr().out


def _npy_header(shape):
    header = f"{{'descr': '|u1', 'fortran_order': False, 'shape': {shape}, }}".encode()
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + header.ljust(117) + b"\n"


def test_unreadable_inputs_files_exit_3_with_one_line(tmp_path, capsys, monkeypatch):
    model = tmp_path / "m.fbz"
    small_cnn().save(str(model))
    np.savez(tmp_path / "x.npz", x=np.zeros((2, 9, 8, 1), np.uint8))
    archive = (tmp_path / "x.npz").read_bytes()
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((2, 9, 8, 1), np.uint8))
    os.mkfifo(tmp_path / "fifo.npy")
    files = {"empty.npy": (b"", "is empty (0 bytes)"),
             "fake.npz": (b"PK\x03\x04" + bytes(100), "a damaged zip (.npz) archive"),
             "cut.npz": (archive[:len(archive) // 2], "a damaged zip (.npz) archive"),
             "lying.npy": (_npy_header((10 ** 13, 9, 8, 1)), "header says shape (10000000000000, 9, 8, 1)"),
             "cut.npy": (good.read_bytes()[:-10], "truncated or corrupted"),
             "negative.npy": (_npy_header((-1, 9, 8, 1)) + bytes(8), "shape (-1, 9, 8, 1) must hold integers >= 0"),
             "text.npy": (b"1 2 3\n", "not a .npy file"),
             "short.npy": (b"\x93NUMPY", "cannot be read as .npy")}
    for name, (content, _) in files.items():
        (tmp_path / name).write_bytes(content)
    paths = [(str(tmp_path / name), fragment) for name, (_, fragment) in files.items()]
    paths += [("/dev/null", "not a regular file"), (str(tmp_path / "fifo.npy"), "not a regular file"),
              (str(tmp_path), "is a directory"), (str(tmp_path / "missing.npy"), "No such file"),
              ("a\0b.npy", "NUL byte")]
    arrays_read = []  # refused from the header and the file size alone: no array data is read
    read_array = np.lib.format.read_array
    monkeypatch.setattr(np.lib.format, "read_array",
                        lambda *args, **kwargs: arrays_read.append(1) or read_array(*args, **kwargs))
    for path, fragment in paths:
        line = _one_line_error(capsys, 3, main(["run", "-m", str(model), "-i", path]))
        assert fragment in line and not arrays_read, (path, line)
    line = _one_line_error(capsys, 2, main(["run", "-m", str(model), "-i", str(tmp_path / "x.npz")]))
    assert "is a .npz archive holding 1 file(s) ['x.npy']; give a .npy file" in line
    assert main(["run", "-m", str(model), "-i", str(good)]) == 0 and len(arrays_read) == 1


def test_bad_model_paths_exit_3(tmp_path, capsys):
    line = _one_line_error(capsys, 3, main(["summary", "a\0b.fbz"]))
    assert "NUL byte" in line
    (tmp_path / "giant.fbz").write_bytes(fbz.dumps({"format": "akida_core.Model", "version": 1, "layers": [
        {"layer_type": "InputData", "params": {"input_shape": [2 ** 20, 2 ** 20, 1], "input_bits": 1}},
        {"layer_type": "FullyConnected", "params": {"units": 1}}]}))
    line = _one_line_error(capsys, 3, main(["run", "-m", str(tmp_path / "giant.fbz")]))
    assert "MAX_VARIABLE_BYTES" in line


def test_unexpected_errors_exit_4_with_one_line(tmp_path, capsys, monkeypatch):
    path = tmp_path / "m.fbz"
    small_cnn().save(str(path))

    def broken(*args):
        raise RuntimeError("boom\nsecond line")
    monkeypatch.setattr(ak.Model, "summary", broken)
    line = _one_line_error(capsys, 4, main(["summary", str(path)]))
    assert line == ("akida-core: error: internal error: RuntimeError: boom second line (rerun with --debug "
                    "and report it)")
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", "summary", str(path)])
    monkeypatch.setattr(ak.Model, "map", lambda *args, **kwargs: broken())
    assert main(["map", "-m", str(path)]) == 4
    assert "internal error: RuntimeError" in capsys.readouterr().err

"""`akida-core map` in-process: text and json reports, --hw-only failure, devices, saving, bad files."""
import json

import numpy as np
import pytest

from akida_core import Convolutional, FullyConnected, InputConvolutional, Model, PoolType
from akida_core.cli import main


def _model(pool_before_fc):
    model = Model()
    model.add(InputConvolutional(input_shape=(16, 16, 1), kernel_size=(3, 3), filters=8, name="c0",
                                 weights_bits=8, act_bits=4, pool_type=PoolType.Max,
                                 pool_size=(2, 2)))
    pool = dict(pool_type=PoolType.Max, pool_size=(2, 2)) if pool_before_fc else {}
    model.add(Convolutional(kernel_size=(3, 3), filters=16, name="c1", weights_bits=4, act_bits=4,
                            **pool))
    model.add(FullyConnected(units=4, name="fc", weights_bits=4, activation=False))
    return model


@pytest.fixture()
def paths(tmp_path):
    good, pooled = tmp_path / "good.fbz", tmp_path / "pooled.fbz"
    _model(False).save(str(good))
    _model(True).save(str(pooled))
    return {"good": good, "pooled": pooled, "dir": tmp_path}


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_map_prints_sequences_nps_and_program_size(paths, capsys):
    code, out, _ = _run(["map", "-m", paths["good"]], capsys)
    assert code == 0
    assert "HW/c0-fc (Hardware): 3 layer(s)" in out
    assert "AKD1000 (VirtualDevice/BC.00.000.002), mode AllNps: 1 sequence(s), 1 in hardware" in out


def test_map_json_matches_the_model_mapping(paths, capsys):
    code, out, _ = _run(["map", "-m", paths["good"], "--device", "TwoNodesIPv1", "--mode", "Minimal",
                         "--format", "json"], capsys)
    assert code == 0
    report = json.loads(out)
    assert report["device"] == "VirtualDevice/BC.A1.003.006"
    (sequence,) = report["sequences"]
    assert sequence["layers"] == ["c0", "c1", "fc"]
    assert sequence["nps_per_layer"] == {"c0": 0, "c1": 1, "fc": 1}  # HRC not counted; Minimal
    model = Model(str(paths["good"]))
    from akida_core import MapMode, TwoNodesIPv1
    model.map(TwoNodesIPv1(), mode=MapMode.Minimal)
    assert sequence["program_bytes"] == model.sequences[0].program_size > 0


def test_hw_only_failure_exits_1_with_the_reason(paths, capsys):
    code, _, err = _run(["map", "-m", paths["pooled"], "--hw-only"], capsys)
    assert code == 1 and err.count("\n") == 1
    assert "Cannot map layer 'c1'" in err and "max pooling" in err
    code, out, _ = _run(["map", "-m", paths["pooled"]], capsys)
    assert code == 0 and "SW/c1 (Software)" in out


def test_map_saves_the_mapped_model(paths, capsys):
    target = paths["dir"] / "mapped.fbz"
    code, out, _ = _run(["map", "-m", paths["good"], "--device", "AKD1500", "-o", target], capsys)
    assert code == 0 and str(target) in out
    reloaded = Model(str(target))
    assert reloaded.device is not None and "BC.A1.003.009" in reloaded.device.desc
    images = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 1)).astype(np.uint8)
    assert np.array_equal(reloaded.forward(images), Model(str(paths["good"])).forward(images))


def test_bad_files_and_options(paths, capsys):
    empty = paths["dir"] / "empty.fbz"
    empty.write_bytes(b"")
    for bad in (paths["dir"] / "missing.fbz", empty, paths["dir"]):
        code, _, err = _run(["map", "-m", bad], capsys)
        assert code in (2, 3) and err.startswith("akida-core: error:") and err.count("\n") == 1
    for argv in (["map", "-m", paths["good"], "--device", "AKD2000"],
                 ["map", "-m", paths["good"], "--mode", "Fast"], ["map"]):
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in argv])
        assert exit_info.value.code == 2

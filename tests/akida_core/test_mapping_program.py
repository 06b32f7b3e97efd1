"""Programs: the documented byte layout, exact round trip of every weight/threshold/act_step, determinism."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import akida_core as ak
from akida_core.layers.base import weight_range
from akida_core.program import decode_program, pack_bits, unpack_bits
from bench.models import BENCHMARK_MODELS

from .helpers import randomize, small_cnn


def test_pack_bits_by_hand():
    # 2-bit fields 01, 11, 00, 01 least significant first: 0b01_00_11_01
    assert pack_bits([1, -1, 0, 1], 2) == bytes([0x4D])
    assert pack_bits([-7, 7], 4) == bytes([0x79])          # -7 = 0b1001, 7 = 0b0111
    assert pack_bits([1, 0, 1, 1, 0, 0, 0, 0, 1], 1) == bytes([0b00001101, 0b1])
    assert pack_bits([-128, 127], 8) == bytes([0x80, 0x7F])


@given(st.sampled_from([1, 2, 4, 8]).flatmap(lambda bits: st.tuples(
    st.just(bits), st.lists(st.integers(*weight_range(bits)), min_size=1, max_size=50))))
def test_pack_unpack_round_trip(case):
    bits, values = case
    data = pack_bits(values, bits)
    assert len(data) == -(-len(values) * bits // 8)
    np.testing.assert_array_equal(unpack_bits(data, len(values), bits, signed=bits > 1), values)


def fc_fc():
    model = ak.Model()
    model.add(ak.InputData((1, 1, 20), input_bits=1, name="in"))
    model.add(ak.FullyConnected(12, weights_bits=1, act_bits=1, name="fc1"))
    model.add(ak.FullyConnected(4, weights_bits=2, activation=False, name="fc2"))
    return randomize(model, threshold_range=(0, 9))


def test_program_size_follows_the_documented_layout():
    model = fc_fc()
    model.map(ak.AKD1000(), hw_only=True)
    header, record = 24, 44
    names = sum(len(n) + (-len(n) % 4) for n in ("in", "fc1", "fc2"))
    weights = [-(-20 * 12 * 1 // 8), -(-12 * 4 * 2 // 8)]
    blocks = sum(16 + 8 * units + w + (-w % 4) for units, w in zip((12, 4), weights))
    assert model.sequences[0].program_size == header + 3 * record + names + blocks == 372


@pytest.mark.parametrize("build", [small_cnn, fc_fc, BENCHMARK_MODELS["mnist_cnn"], BENCHMARK_MODELS["ds_cnn_kws"]])
@pytest.mark.parametrize("mode", [ak.MapMode.AllNps, ak.MapMode.Minimal])
def test_program_holds_every_variable_exactly(build, mode):
    model = build()
    model.map(ak.AKD1000(), hw_only=True, mode=mode)
    (sequence,) = model.sequences
    program = sequence.program
    assert program == sequence.program and len(program) == sequence.program_size   # deterministic
    decoded = decode_program(program)
    assert decoded["hw_version"] == (0xBC, 0, 0, 2)
    assert [entry["name"] for entry in decoded["layers"]] == [layer.name for layer in model.layers]
    for layer, entry in zip(model.layers, decoded["layers"]):
        assert entry["layer_type"] is layer.layer_type and entry["input_dims"] == layer.input_dims
        assert [(b["start"], b["start"] + b["count"]) for b in entry["nps"]] == \
            [(m.start, m.stop) for m in sequence.nps[layer.name]]
        if not entry["nps"]:
            continue
        values = layer._values
        np.testing.assert_array_equal(np.concatenate([b["threshold"] for b in entry["nps"]]), values["threshold"])
        np.testing.assert_array_equal(np.concatenate([b["act_step"] for b in entry["nps"]]), values["act_step"])
        for block in entry["nps"]:
            start, stop = block["start"], block["start"] + block["count"]
            if layer.layer_type == ak.LayerType.FullyConnected:
                expected = values["weights"][0, 0, :, start:stop].T.reshape(-1)
            elif layer.layer_type == ak.LayerType.SeparableConvolutional:
                expected = np.concatenate([values["weights"].reshape(-1),
                                           values["weights_pw"][0, 0, :, start:stop].T.reshape(-1)])
            else:
                expected = np.moveaxis(values["weights"][..., start:stop], 3, 0).reshape(-1)
            np.testing.assert_array_equal(block["weights"], expected)


def test_program_changes_with_weights_but_not_its_size():
    model = fc_fc()
    model.map(ak.AKD1000())
    before = model.sequences[0].program
    layer = model.get_layer("fc2")
    layer.variables["weights"] = -layer.variables["weights"]
    after = model.sequences[0].program
    assert before != after and len(before) == len(after)


@pytest.mark.parametrize("corrupt,message", [
    (lambda p: p[:-1], "not an akida_core program"),
    (lambda p: p[:30] + bytes([p[30] ^ 1]) + p[31:], "checksum"),
    (lambda p: b"XXXX" + p[4:], "not an akida_core program"),
    (lambda p: p[:10], "truncated"),
])
def test_corrupted_program_is_rejected(corrupt, message):
    model = fc_fc()
    model.map(ak.AKD1000())
    with pytest.raises(ak.ModelFormatError, match=message):
        decode_program(corrupt(model.sequences[0].program))

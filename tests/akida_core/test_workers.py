"""Batches split among worker threads (akida_core/model/workers.py): the split rule, and that a split batch
gives the outputs and statistics of the unsplit one. No timings: the tests count pieces and workers."""
import numpy as np
import pytest

import akida_core as ak
from akida_core.model import workers


def _model():
    model = ak.Model()
    model.add(ak.InputConvolutional((12, 12, 3), (3, 3), 8, weights_bits=8, act_bits=4, name="conv_0"))
    model.add(ak.SeparableConvolutional((3, 3), 16, weights_bits=4, act_bits=4, pool_type=ak.PoolType.Average,
                                        name="sep_1"))
    model.add(ak.FullyConnected(5, weights_bits=4, activation=False, name="fc"))
    rng = np.random.default_rng(0)
    for layer in model.layers:
        for name in layer.variables.names:
            if name.startswith("weights"):
                shape = layer.variables[name].shape
                layer.variables[name] = rng.integers(-7, 8, shape).astype(np.int8)
        layer.variables["act_step"] = np.full(layer.variables["act_step"].shape, 2.0, np.float32)
    return model


@pytest.fixture
def counted(monkeypatch):
    """Record the (pieces, workers) of every run_pieces call, and make every batch worth splitting."""
    calls = []
    original = workers.run_pieces

    def run_pieces(function, pieces, count):
        calls.append((len(pieces), count))
        return original(function, pieces, count)
    monkeypatch.setattr(workers, "PIECE_MACS", 1)
    monkeypatch.setattr("akida_core.model.graph.run_pieces", run_pieces)
    monkeypatch.setattr("akida_core.model.graph.plan_pieces",
                        lambda batch, macs: workers.plan_pieces(batch, macs, cores=2))
    return calls


def test_plan_pieces_rule():
    big = workers.PIECE_MACS
    assert workers.plan_pieces(64, big, cores=1) == (1, 64)          # one core: never split
    assert workers.plan_pieces(1, 100 * big, cores=2) == (1, 1)      # one sample: nothing to split
    assert workers.plan_pieces(64, 1, cores=2) == (1, 64)            # too little work for a thread
    assert workers.plan_pieces(64, big, cores=2) == (2, 8)           # 4 pieces per worker
    assert workers.plan_pieces(64, big // 4, cores=2) == (2, 8)
    assert workers.plan_pieces(64, big // 16, cores=2) == (2, 16)    # pieces of at least PIECE_MACS
    assert workers.plan_pieces(3, big, cores=8) == (workers.MAX_WORKERS, 1)


def test_split_batch_equals_the_unsplit_one_with_its_statistics(counted):
    model = _model()
    x = np.random.default_rng(1).integers(0, 256, (11, 12, 12, 3)).astype(np.uint8)
    split = model.forward(x)
    split_stats = {name: (s.samples, s.events) for name, s in model.statistics.layers.items()}
    assert counted[-1] == (6, 2)  # 11 samples in pieces of 2 (4 per worker) for two workers
    one = np.concatenate([model.forward(x[i:i + 1]) for i in range(11)])
    np.testing.assert_array_equal(split, one)
    serial = model.forward(x, batch_size=11)
    np.testing.assert_array_equal(serial, one)
    events = {name: 0 for name in split_stats}
    for i in range(11):
        model.forward(x[i:i + 1])
        for name, s in model.statistics.layers.items():
            events[name] += s.events
    assert split_stats == {name: (11, events[name]) for name in split_stats}


def test_errors_in_a_worker_reach_the_caller(counted, monkeypatch):
    model = _model()
    x = np.zeros((8, 12, 12, 3), np.uint8)

    def fail(inputs):
        raise RuntimeError("boom")
    monkeypatch.setattr(model.layers[1], "_forward", fail)
    with pytest.raises(RuntimeError, match="boom"):
        model.forward(x)


def test_models_with_temporal_layers_are_never_split(counted):
    model = ak.Model()
    model.add(ak.InputData((4, 4, 2), input_bits=8, name="in"))
    model.add(ak.BufferTempConv(3, 3, name="temporal"))
    x = np.random.default_rng(2).integers(-128, 128, (16, 4, 4, 2)).astype(np.int8)
    model.forward(x)
    assert counted == [(1, 1)]

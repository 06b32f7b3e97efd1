"""Batches split among worker threads (akida_core/model/workers.py): the split rule, and that a split batch
gives the outputs and statistics of the unsplit one. No timings: the tests count pieces and workers."""
import numpy as np
import pytest

import akida_core as ak
from akida_core.model import inference, running, workers


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
    assert workers.plan_pieces(64, big, cores=2) == (2, 16)          # 2 pieces per worker
    assert workers.plan_pieces(64, big // 8, cores=2) == (2, 16)
    assert workers.plan_pieces(64, big // 32, cores=2) == (2, 32)    # pieces of at least PIECE_MACS
    assert workers.plan_pieces(3, big, cores=8) == (workers.MAX_WORKERS, 1)


def test_split_batch_equals_the_unsplit_one_with_its_statistics(counted):
    model = _model()
    x = np.random.default_rng(1).integers(0, 256, (11, 12, 12, 3)).astype(np.uint8)
    split = model.forward(x)
    split_stats = {name: (s.samples, s.events) for name, s in model.statistics.layers.items()}
    assert counted[-1] == (4, 2)  # 11 samples in pieces of 3 (2 per worker) for two workers
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
    monkeypatch.setattr(model.layers[1], "_buffered", lambda shape: fail)  # small pieces use buffered kernels
    with pytest.raises(RuntimeError, match="boom"):
        model.forward(x)


def test_models_with_temporal_layers_are_never_split(counted):
    model = ak.Model()
    model.add(ak.InputData((4, 4, 2), input_bits=8, name="in"))
    model.add(ak.BufferTempConv(3, 3, name="temporal"))
    x = np.random.default_rng(2).integers(-128, 128, (16, 4, 4, 2)).astype(np.int8)
    model.forward(x)
    assert counted == [(1, 1)]


@pytest.mark.parametrize("strides", [(1, 1), (2, 2), (2, 1)])
@pytest.mark.parametrize("padding", [ak.Padding.Same, ak.Padding.Valid])
def test_banded_kernels_equal_the_loop_references(strides, padding):
    from akida_core.kernels import shared
    from . import reference as ref
    rng = np.random.default_rng(strides[1])
    x = rng.integers(0, 16, (1, 11, 7, 5)).astype(np.uint8)
    w = rng.integers(-7, 8, (3, 3, 5, 6))
    dw = rng.integers(-7, 8, (3, 3, 5))
    pw = rng.integers(-7, 8, (5, 4))
    same = padding == ak.Padding.Same
    expected_conv = ref.correlate(x, w, strides, same, 3)
    expected_sep = ref.separable(x, dw[::-1, ::-1, :, None], pw[None, None], strides, same)
    for bands in (1, 2, 3, 8, 50):  # more bands than rows: one row each
        for run in (None, lambda tasks: workers.run_tasks(tasks, 2)):
            conv = shared.conv2d_prepared(x, w.reshape(-1, 6).astype(np.float32), (3, 3), strides, padding, 3,
                                          bands=bands, run=run)
            np.testing.assert_array_equal(conv, expected_conv)
            sep = shared.separable_conv2d_prepared(x, dw.astype(np.float32), pw.astype(np.float32), strides, padding,
                                                   bands=bands, run=run)
            np.testing.assert_array_equal(sep, expected_sep)


def test_band_count_rule():
    big = workers.BAND_MACS
    assert workers.band_count(big, 1, cores=2) == 2 * workers.BANDS_PER_WORKER
    assert workers.band_count(big - 1, 1, cores=2) == 1   # too small to share
    assert workers.band_count(big, 2, cores=2) == 1       # batches are split by samples instead
    assert workers.band_count(big, 1, cores=1) == 1


def test_run_tasks_does_everything_itself_when_no_helper_starts(monkeypatch):
    class IdlePool:  # a pool whose threads never get to run (a CPU taken by other processes)
        submitted = 0

        def submit(self, function):
            IdlePool.submitted += 1
    monkeypatch.setattr(workers, "_executor", lambda count: IdlePool())
    done = []
    workers.run_tasks([lambda i=i: done.append(i) for i in range(6)], 2)
    assert done == list(range(6)) and IdlePool.submitted == 1


def test_run_tasks_runs_each_task_once_and_raises_the_first_error():
    done = []
    workers.run_tasks([lambda i=i: done.append(i) for i in range(40)], 2)
    assert sorted(done) == list(range(40))

    def fail():
        raise ValueError("band failed")
    with pytest.raises(ValueError, match="band failed"):
        workers.run_tasks([fail, lambda: None, fail], 2)


def test_one_large_sample_is_computed_in_bands(monkeypatch):
    model = _model()
    x = np.random.default_rng(3).integers(0, 256, (1, 12, 12, 3)).astype(np.uint8)
    expected = model.forward(x)
    calls = []
    monkeypatch.setattr(workers, "BAND_MACS", 1)
    monkeypatch.setattr("akida_core.model.inference.band_count",
                        lambda macs, samples: workers.band_count(macs, samples, cores=2))
    original = workers.run_tasks
    monkeypatch.setattr("akida_core.model.inference.run_tasks",
                        lambda tasks: calls.append(len(tasks)) or original(tasks, 2))
    np.testing.assert_array_equal(model.forward(x), expected)
    assert calls == [8, 8]  # conv_0 and sep_1 in 8 bands each; the FullyConnected layer has none


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_worker_threads(counted):
    import multiprocessing
    model = _model()
    x = np.random.default_rng(4).integers(0, 256, (6, 12, 12, 3)).astype(np.uint8)
    expected = model.forward(x)  # the parent's pool now exists
    assert counted[-1][1] == 2
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:  # the child would wait forever on the parent's (absent) threads
        got = pool.apply_async(model.forward, (x,)).get(timeout=60)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("chains", [True, False])
def test_pieces_through_buffered_chains_equal_the_plain_layers_with_their_statistics(chains, counted, monkeypatch):
    model = _model()
    x = np.random.default_rng(3).integers(0, 256, (11, 12, 12, 3)).astype(np.uint8)
    monkeypatch.setattr(inference, "BUFFERED_BYTES", 2 * max(map(inference.working_bytes, model.layers)))
    monkeypatch.setattr(running, "chains_pay", lambda plan, piece, samples: chains)
    parts = []
    run_in_chains = running.run_in_chains
    monkeypatch.setattr(running, "run_in_chains", lambda plan, inputs, samples: parts.append(
        (len(inputs), samples)) or run_in_chains(plan, inputs, samples))
    out = model.forward(x)
    assert counted[-1] == (4, 2)  # pieces of 3, 3, 3 and 2 samples
    # pieces of 3 run in calls of at most 2 samples (BUFFERED_BYTES): 2 + 1, the last piece in one call
    assert sorted(parts) == ([(2, 2)] + [(3, 2)] * 3 if chains else [])
    layers_stats = {name: (s.samples, s.events) for name, s in model.statistics.layers.items()}
    plain = x
    for layer in model.layers:
        plain = layer._forward(plain)
    np.testing.assert_array_equal(out, plain)
    model.forward(x, batch_size=11)  # one piece, layer by layer
    assert layers_stats == {name: (s.samples, s.events) for name, s in model.statistics.layers.items()}


def test_a_part_without_a_chain_runs_layer_by_layer(monkeypatch):
    model = _model()
    x = np.random.default_rng(4).integers(0, 256, (5, 12, 12, 3)).astype(np.uint8)
    expected = model.forward(x, batch_size=5)
    plan = model._inference_plan(model._layers)
    chain_of = inference.buffered_chain
    monkeypatch.setattr(inference, "buffered_chain", lambda plan, shape: None if shape[0] == 1
                        else chain_of(plan, shape))
    pieces = []
    piece_of = running.run_piece
    monkeypatch.setattr(running, "run_piece", lambda plan, inputs, limiter, banding=False: pieces.append(
        len(inputs)) or piece_of(plan, inputs, limiter, banding))
    out, stats = running.run_in_chains(plan, x, 2)
    np.testing.assert_array_equal(out, expected)
    assert pieces == [1]  # 2 + 2 in chains, the last sample layer by layer
    assert {n: (s.samples, s.events) for n, s in stats.layers.items()} == \
        {n: (s.samples, s.events) for n, s in model.statistics.layers.items()}


def test_chains_pay_measures_each_way_once_per_shape(monkeypatch):
    model = _model()
    x = np.random.default_rng(5).integers(0, 256, (6, 12, 12, 3)).astype(np.uint8)
    plan = model._inference_plan(model._layers)
    runs = []
    chained, piece_of = running.run_in_chains, running.run_piece
    monkeypatch.setattr(running, "run_in_chains", lambda *a: runs.append("chains") or chained(*a))
    monkeypatch.setattr(running, "run_piece", lambda *a: runs.append("layers") or piece_of(*a))
    first = running.chains_pay(plan, x, 2)
    assert runs == ["chains", "layers"] * running.CHOICE_RUNS
    assert running.chains_pay(plan, x, 2) is first and len(runs) == 2 * running.CHOICE_RUNS  # kept
    running.chains_pay(plan, x[:4], 2)  # another piece shape: measured again
    assert len(runs) == 4 * running.CHOICE_RUNS
    model.layers[1].variables["act_step"] = np.full(16, 3.0, np.float32)  # a change drops the plan
    assert model._inference_plan(model._layers).piece_choices == {}


def test_no_chains_for_temporal_or_oversized_layers(monkeypatch):
    model = _model()
    plan = model._inference_plan(model._layers)
    largest = max(inference.working_bytes(layer) for layer in model.layers)
    monkeypatch.setattr(inference, "BUFFERED_BYTES", 3 * largest)
    assert inference.chain_samples(plan, (16, 12, 12, 3), 16) == 3
    assert inference.chain_samples(plan, (16, 12, 12, 3), 2) == 2
    monkeypatch.setattr(inference, "BUFFERED_BYTES", largest - 1)
    assert inference.chain_samples(plan, (16, 12, 12, 3), 16) == 0
    temporal = ak.Model()
    temporal.add(ak.InputData((4, 4, 2), input_bits=8, name="in"))
    temporal.add(ak.BufferTempConv(3, 3, name="temporal"))
    assert inference.chain_samples(temporal._inference_plan(temporal._layers), (16, 4, 4, 2), 16) == 0


@pytest.mark.parametrize("name", ["mnist_cnn", "ds_cnn_kws"])
def test_benchmark_models_give_the_same_integers_and_statistics_in_chains_or_layer_by_layer(name, counted, monkeypatch):
    from bench.models import BENCHMARK_MODELS, random_inputs
    model = BENCHMARK_MODELS[name]()
    x = random_inputs(model, 9, seed=3)
    results, chained = {}, []
    run_in_chains = running.run_in_chains
    monkeypatch.setattr(running, "run_in_chains", lambda *args: chained.append(1) or run_in_chains(*args))
    for chains in (True, False):
        monkeypatch.setattr(running, "chains_pay", lambda plan, piece, samples: chains)
        model._plan = None
        out = model.forward(x)
        results[chains] = out, {n: (s.samples, s.events) for n, s in model.statistics.layers.items()}
        assert len(chained) == (3 if chains else 0) and counted[-1] == (3, 2)  # pieces of 3 on two workers
        chained.clear()
    np.testing.assert_array_equal(results[True][0], results[False][0])
    assert results[True][1] == results[False][1]
    one = np.concatenate([model.forward(x[i:i + 1]) for i in range(len(x))])  # the batch-1 buffered chain
    np.testing.assert_array_equal(results[True][0], one)

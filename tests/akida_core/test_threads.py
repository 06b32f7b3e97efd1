"""BLAS thread use per layer (akida_core/model/threads.py): the rule, the limiter, and the model's use of it.

No timings: the tests check which thread count is chosen for which work, that the setting is made only
on a change and restored, and that the runtime runs unchanged without threadpoolctl.
"""
import sys
import threading

import numpy as np
import pytest

import akida_core as ak
from akida_core.model import threads


class FakeBlas:
    """Stands in for a threadpoolctl library controller and records every setting."""

    user_api = "blas"

    def __init__(self, threads_now=2):
        self.threads = threads_now
        self.history = []

    def get_num_threads(self):
        return self.threads

    def set_num_threads(self, n):
        self.threads = n
        self.history.append(n)


@pytest.fixture
def fake_blas(monkeypatch):
    blas = FakeBlas()
    monkeypatch.setattr(threads, "_libraries", (blas,))
    return blas


def _model():
    model = ak.Model()
    model.add(ak.InputConvolutional((16, 16, 3), (3, 3), 8, weights_bits=8, act_bits=4, name="conv_0"))
    model.add(ak.Convolutional((3, 3), 16, weights_bits=4, act_bits=4, name="conv_1"))
    model.add(ak.FullyConnected(4, weights_bits=4, activation=False, name="fc"))
    rng = np.random.default_rng(0)
    for layer in model.layers:
        w = layer.variables["weights"]
        layer.variables["weights"] = rng.integers(-7, 8, w.shape).astype(np.int8)
        layer.variables["act_step"] = np.full(layer.variables["act_step"].shape, 4.0, np.float32)
    return model


def test_rule_one_thread_below_the_work_threshold():
    assert threads.threads_for(0, cores=2) == 1
    assert threads.threads_for(threads.PARALLEL_MACS - 1, cores=2) == 1
    assert threads.threads_for(threads.PARALLEL_MACS, cores=2) == 2
    assert threads.threads_for(10 * threads.PARALLEL_MACS, cores=1) == 1
    assert threads.threads_for(10 * threads.PARALLEL_MACS, cores=64) == threads.MAX_THREADS


def test_limiter_sets_only_on_change_and_restores(fake_blas):
    with threads.limited_threads() as limiter:
        for n in (1, 1, 2, 2, 1):
            limiter.set(n)
        assert limiter.calls == 3
        assert fake_blas.history == [1, 2, 1]
    assert fake_blas.threads == 2  # the original count is back


def test_limiters_in_use_together_restore_once_the_last_ends(fake_blas):
    first, second = threads.ThreadLimiter(), threads.ThreadLimiter()
    first.set(1)
    second.set(1)
    first.restore()  # the other inference still runs: its setting stays
    assert fake_blas.threads == 1 and fake_blas.history == [1, 1]
    second.restore()
    assert fake_blas.threads == 2 and fake_blas.history == [1, 1, 2]  # the count found before the first
    third = threads.ThreadLimiter()
    third.restore()  # set nothing: restores nothing
    assert fake_blas.history == [1, 1, 2]


def test_a_failed_setting_is_not_counted(fake_blas, monkeypatch):
    limiter = threads.ThreadLimiter()

    def fail(n):
        raise OSError("no")
    monkeypatch.setattr(fake_blas, "set_num_threads", fail)
    with pytest.raises(OSError):
        limiter.set(1)
    monkeypatch.undo()
    assert threads._users == 0
    with threads.limited_threads() as other:
        other.set(1)
    assert fake_blas.threads == 2


def test_a_second_thread_sets_the_real_blas_threads():
    """threadpoolctl lets only the first thread that set an OpenBLAS limit set it while that thread lives: the
    limiter takes the control back, so an inference in another thread still runs on one BLAS thread."""
    libraries = threads._blas_libraries()
    if not libraries:
        pytest.skip("no BLAS library under threadpoolctl")
    original = [lib.get_num_threads() for lib in libraries]
    target = 1 if original[0] != 1 else 2
    holding, release = threading.Event(), threading.Event()

    def other():
        limiter = threads.ThreadLimiter()
        limiter.set(target)
        limiter.restore()
        holding.set()
        release.wait(10)  # alive: under threadpoolctl's rule this thread keeps the control
    thread = threading.Thread(target=other)
    thread.start()
    try:
        assert holding.wait(10)
        with threads.limited_threads() as limiter:
            limiter.set(target)
            assert [lib.get_num_threads() for lib in libraries] == [target] * len(libraries)
        assert [lib.get_num_threads() for lib in libraries] == original
    finally:
        release.set()
        thread.join()


class Controller(FakeBlas):
    """A threadpoolctl-like OpenBLAS controller: the control of the limit is cleared before each setting."""

    cleared = []

    @classmethod
    def clear_controlling_thread(cls, force=False):
        cls.cleared.append(force)

    def set_num_threads(self, n):
        assert self.cleared and self.cleared[-1] is True, "the control is taken first"
        self.cleared.clear()
        super().set_num_threads(n)


def test_libraries_left_to_threadpoolctl_have_the_control_taken_first(monkeypatch):
    blas = Controller()
    monkeypatch.setattr(threads, "_libraries", (blas,))
    with threads.limited_threads() as limiter:
        limiter.set(1)
    assert blas.history == [1, 2]


def test_openblas_with_its_own_threads_is_set_directly():
    class DynLib:
        def __init__(self, names):
            for name in names:
                setattr(self, name, lambda *args, name=name: name)

    class Lib:
        def __init__(self, internal_api="openblas", threading_layer="pthreads", names=()):
            self.internal_api, self.threading_layer, self.dynlib = internal_api, threading_layer, DynLib(names)
    names = ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_")
    direct = threads._DirectOpenBLAS.of(Lib(names=names))
    assert direct.get_num_threads() == names[0] and direct.set_num_threads(1) == names[1]
    assert threads._DirectOpenBLAS.of(Lib(names=("openblas_get_num_threads", "openblas_set_num_threads")))
    assert threads._DirectOpenBLAS.of(Lib(threading_layer="openmp", names=names)) is None  # per-thread limits
    assert threads._DirectOpenBLAS.of(Lib(internal_api="mkl", names=names)) is None
    assert threads._DirectOpenBLAS.of(Lib(names=names[:1])) is None  # no setter found


def test_model_sets_threads_per_layer_from_its_work(fake_blas, monkeypatch):
    model = _model()
    x = np.random.default_rng(1).integers(0, 256, (2, 16, 16, 3)).astype(np.uint8)
    expected = model.forward(x)
    # conv_1 alone (2 samples) crosses a threshold placed between the layers' work sizes
    conv_0, conv_1, fc = model.layers
    assert conv_0.macs < conv_1.macs
    monkeypatch.setattr(threads, "PARALLEL_MACS", conv_1.macs * 2)
    fake_blas.history.clear()
    np.testing.assert_array_equal(model.forward(x), expected)
    assert fake_blas.history == [1, 2, 1, 2]  # conv_0, conv_1, fc, then the restore
    assert fake_blas.threads == 2


def test_batch_one_uses_one_thread_throughout(fake_blas, monkeypatch):
    model = _model()
    monkeypatch.setattr(threads, "PARALLEL_MACS", model.layers[1].macs * 2)
    model.forward(np.zeros((1, 16, 16, 3), np.uint8))
    assert fake_blas.history == [1, 2]  # one setting for all layers, then the restore


def test_runs_without_threadpoolctl(monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import threadpoolctl now fails
    monkeypatch.setattr(threads, "_libraries", threads._UNKNOWN)
    assert threads._blas_libraries() == ()
    model = _model()
    x = np.random.default_rng(2).integers(0, 256, (3, 16, 16, 3)).astype(np.uint8)
    with threads.limited_threads() as limiter:
        limiter.set(1)
        assert not limiter.active and limiter.calls == 0
    assert model.forward(x).shape == (3, 1, 1, 4)


def test_a_child_forked_while_the_limiter_lock_is_held_still_runs(fake_blas):
    import multiprocessing
    model = _model()
    x = np.random.default_rng(3).integers(0, 256, (1, 16, 16, 3)).astype(np.uint8)
    expected = model.forward(x)
    with threads._lock:  # as if another thread were setting the BLAS threads at the fork
        with multiprocessing.get_context("fork").Pool(1) as pool:
            got = pool.apply_async(model.forward, (x,)).get(timeout=60)
    np.testing.assert_array_equal(got, expected)

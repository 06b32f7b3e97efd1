"""BLAS thread use per layer: one thread where threading only costs, more only for large products.

numpy's BLAS (OpenBLAS here) starts as many threads as there are cores for every product above a small
size. On a busy CPU that is the slow case: its threads wait for each other at every barrier while
another process holds a core, and a batch-1 AkidaNet ran about 6× slower with two threads than with
one (issue 17). The runtime therefore sets the thread count itself, per layer, from the MACs of the
sub-batch the layer is about to compute (`threads_for`), and restores the caller's setting after the
inference. The limit only changes how fast the products run, never their result: every product is
exact (kernels/shared.py), so any summation order gives the same integers.

threadpoolctl does the setting. It is optional: without it (or without a BLAS it knows) every
function here is a no-op and numpy keeps its own threading.
"""
import os
import threading

PARALLEL_MACS = 2 ** 30
"""A layer call with at least this many MACs (1 G) may use several BLAS threads. Measured on 2 cores
(OpenBLAS, another job sharing the machine, bench/runtime.py --blas): on the benchmark models' layer
calls (at most about 230 M MACs each: LAYER_MEMORY_BYTES caps the slices) two threads gained 0.4–1.6×
quiet and lost up to 100× with one competing process (the threads wait for each other at every barrier
while the other process holds a core); one thread everywhere beat a 128 M threshold at batch 64 under
load (AkidaNet 122–146 against 78–93 samples/s). A single 4.8 G MAC float32 product ran 2× faster on
two threads quiet and no slower with a competitor: only such products get two."""

MAX_THREADS = 2
"""At most this many BLAS threads per product (and never more than the cores this process may use)."""

_UNKNOWN = object()
_libraries = _UNKNOWN


def _blas_libraries():
    """Controls (get_num_threads, set_num_threads) of the loaded BLAS libraries, found by threadpoolctl (an empty
    tuple without it): OpenBLAS with its own thread pool called directly (`_DirectOpenBLAS`), others through
    their threadpoolctl controller."""
    global _libraries
    if _libraries is _UNKNOWN:
        try:
            from threadpoolctl import ThreadpoolController
            found = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
            _libraries = tuple(_DirectOpenBLAS.of(lib) or lib for lib in found)
        except Exception:  # threadpoolctl missing or unable to read this platform's libraries
            _libraries = ()
    return _libraries


class _DirectOpenBLAS:
    """An OpenBLAS whose threads serve the whole process (not OpenMP's), set through its own two C functions.

    Why: through threadpoolctl a setting and its restore cost about 10 µs per inference (its Python wrapper,
    and since 3.6 a check that only one thread sets OpenBLAS's limit), 6% of a batch-1 MNIST-style inference;
    the C calls cost about 0.3 µs. threadpoolctl still finds the library and its symbols' affixes."""

    def __init__(self, get, set_):
        self.get_num_threads, self.set_num_threads = get, set_

    @classmethod
    def of(cls, lib):
        """The direct control of threadpoolctl controller `lib`, or None (not OpenBLAS, OpenMP threads, or the
        functions not found)."""
        if getattr(lib, "internal_api", None) != "openblas" or getattr(lib, "threading_layer", None) == "openmp":
            return None
        dynlib = getattr(lib, "dynlib", None)
        for prefix in ("", "scipy_"):
            for suffix in ("", "64_", "_64"):
                get = getattr(dynlib, f"{prefix}openblas_get_num_threads{suffix}", None)
                set_ = getattr(dynlib, f"{prefix}openblas_set_num_threads{suffix}", None)
                if get is not None and set_ is not None:
                    return cls(get, set_)
        return None


def available_cores():
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_for(macs, cores=None):
    """BLAS threads for a layer call of `macs` multiply-accumulates: 1 below PARALLEL_MACS, else
    min(MAX_THREADS, cores)."""
    if macs < PARALLEL_MACS:
        return 1
    return max(1, min(MAX_THREADS, available_cores() if cores is None else cores))


class ThreadLimiter:
    """Sets the BLAS thread count of the loaded BLAS libraries, touching them only on a change.

    `set(n)` is a few microseconds (one C call per library); `restore()` ends this limiter's use. The
    setting is process-wide (OpenBLAS's own threads serve every thread of the process), so limiters are
    counted across threads: the first one that sets anything saves the counts found then, and the last one
    to end puts them back, so that inferences running at the same time in several threads never leave the
    process with another inference's setting. `calls` counts the settings actually made (tests read it).

    threadpoolctl (3.6 and later) lets only the first thread that set an OpenBLAS limit set it again while
    that thread lives; any other thread's setting is silently dropped, which left an inference called from
    a second thread on numpy's default threads (the slow case under load). OpenBLAS is therefore set directly
    (`_DirectOpenBLAS`), and a library left to threadpoolctl has that control taken for the calling thread
    first (`clear_controlling_thread(force=True)`).
    """

    def __init__(self):
        self._libraries = _blas_libraries()
        self._current = None
        self.calls = 0

    @property
    def active(self):
        """Whether a BLAS library is under control (False without threadpoolctl)."""
        return bool(self._libraries)

    def set(self, threads):
        """Use `threads` BLAS threads from now on (a no-op when already so or when inactive)."""
        if threads == self._current or not self._libraries:
            return
        global _users, _saved
        with _lock:
            first = self._current is None  # this limiter's first setting: count it in once made
            if first and _users == 0:
                _saved = [lib.get_num_threads() for lib in self._libraries]
            _set_all(self._libraries, [threads] * len(self._libraries))
            _users += first
        self._current = threads
        self.calls += 1

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.restore()

    def restore(self):
        """End this limiter's settings: the thread counts found before the first of the limiters in use come
        back when this is the last one."""
        if self._current is None:
            return
        global _users, _saved
        with _lock:
            _users -= 1
            if _users == 0:
                _set_all(self._libraries, _saved)
                _saved = None
        self._current = None


_lock = threading.Lock()
_users = 0  # limiters that have set a count and not restored yet (all threads)
_saved = None  # the counts found when the first of them set one


def _forget_limiters():
    """In a forked child: no inference runs there yet (the parent's other threads are gone), and a lock the
    parent held at the fork would never be released."""
    global _lock, _users, _saved
    _lock, _users, _saved = threading.Lock(), 0, None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_limiters)


def _set_all(libraries, counts):
    """Set each library's thread count, with the control of OpenBLAS's limit taken for this thread first."""
    for lib, count in zip(libraries, counts):
        clear = getattr(type(lib), "clear_controlling_thread", None)
        if clear is not None:
            clear(force=True)
        lib.set_num_threads(count)


def limited_threads():
    """A ThreadLimiter for the duration of a `with` block; the original thread counts come back on exit."""
    return ThreadLimiter()

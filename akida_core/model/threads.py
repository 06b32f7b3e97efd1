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
import contextlib
import os

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
    """The threadpoolctl controllers of the loaded BLAS libraries (an empty tuple without threadpoolctl)."""
    global _libraries
    if _libraries is _UNKNOWN:
        try:
            from threadpoolctl import ThreadpoolController
            _libraries = tuple(lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas")
        except Exception:  # threadpoolctl missing or unable to read this platform's libraries
            _libraries = ()
    return _libraries


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

    `set(n)` is a few microseconds (one C call per library); `restore()` puts back what was there
    when the limiter was made. `calls` counts the settings actually made (tests read it).
    """

    def __init__(self):
        self._libraries = _blas_libraries()
        self._original = [lib.get_num_threads() for lib in self._libraries]
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
        for lib in self._libraries:
            lib.set_num_threads(threads)
        self._current = threads
        self.calls += 1

    def restore(self):
        """Put back the thread counts found when the limiter was made."""
        if self._current is None:
            return
        for lib, threads in zip(self._libraries, self._original):
            lib.set_num_threads(threads)
        self._current = None


@contextlib.contextmanager
def limited_threads():
    """A ThreadLimiter for the duration of the block; the original thread counts come back on exit."""
    limiter = ThreadLimiter()
    try:
        yield limiter
    finally:
        limiter.restore()

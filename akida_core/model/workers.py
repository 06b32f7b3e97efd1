"""Samples of a batch shared among worker threads, each running the whole model on its pieces.

Why threads of our own and not BLAS threads: OpenBLAS's threads wait for each other at a spinning
barrier after every product, so when another process holds a core every product stalls for a time
slice (threads.py). A worker here runs a piece of the batch through every layer with one BLAS thread
and numpy releases the GIL inside its loops and products, so two workers use two cores; pieces are
handed out one at a time, so when another process takes a core the free worker simply takes more
pieces and nobody waits at a barrier. Results are exact whatever the split: samples are independent
(models with temporal layers, where the batch is a time sequence, are never split).
"""
import math
import os
import threading

from .threads import available_cores

BAND_MACS = 16 * 2 ** 20
"""A one-sample layer call of at least this many MACs (16 M) is computed in row bands by several threads."""
BANDS_PER_WORKER = 4
"""Row bands per worker: several, so that a worker slowed down by another process leaves its share."""
PIECE_MACS = 8 * 2 ** 20
"""A piece holds at least this many MACs (8 M): below it, handing it to a thread costs more than it gains."""
PIECES_PER_WORKER = 2
"""Pieces per worker: more than one, so that a worker slowed down by another process leaves part of its share to
the others; not more, as every piece repeats each layer's fixed costs (on a loaded 2-core machine, 4 per
worker ran DS-CNN batch 64 about 20% slower than 2)."""
MAX_WORKERS = 2
"""At most this many worker threads (and never more than the cores this process may use)."""

_pool = None
_pool_lock = threading.Lock()


def _forget_pool():
    """In a forked child the pool's threads do not exist: start a new pool there when one is needed."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def plan_pieces(batch, macs_per_sample, cores=None):
    """How to split a batch: (workers, samples per piece). One worker means: run the batch as it is.

    Args:
        batch: samples in the batch.
        macs_per_sample: MACs of one sample through the model.
        cores: cores available (default: those of this process).
    """
    cores = available_cores() if cores is None else cores
    workers = max(1, min(MAX_WORKERS, cores))
    if workers == 1 or batch < 2 or batch * macs_per_sample < 2 * PIECE_MACS:
        return 1, batch
    piece = max(math.ceil(batch / (workers * PIECES_PER_WORKER)), math.ceil(PIECE_MACS / max(macs_per_sample, 1)))
    piece = min(piece, math.ceil(batch / workers))
    return workers, piece


def _executor(workers):
    global _pool
    import concurrent.futures  # here: `import akida_core` stays light
    with _pool_lock:
        if _pool is None or _pool._max_workers < workers:
            _pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="akida_core")
        return _pool


def run_pieces(function, pieces, workers):
    """`[function(piece) for piece in pieces]`, computed by up to `workers` threads, in order.

    An exception raised by `function` is raised here (the first one in piece order).
    """
    if workers <= 1 or len(pieces) <= 1:
        return [function(piece) for piece in pieces]
    futures = [_executor(workers).submit(function, piece) for piece in pieces]
    return [future.result() for future in futures]


def band_count(macs, samples, cores=None):
    """Row bands for a layer call of `macs` MACs on `samples` samples: 1 (no bands) unless one sample
    holds at least BAND_MACS and several cores are available."""
    if samples != 1 or macs < BAND_MACS:
        return 1
    cores = available_cores() if cores is None else cores
    workers = max(1, min(MAX_WORKERS, cores))
    if workers == 1:
        return 1
    return workers * BANDS_PER_WORKER


def run_tasks(tasks, workers=MAX_WORKERS):
    """Call every function of `tasks` (no arguments); up to `workers` threads take them one at a time.

    The calling thread takes tasks too and returns as soon as all are done: it never waits for a helper
    thread that has not started (on a busy CPU it then simply does the work itself). The first exception
    raised by a task is raised here, after the others have finished.
    """
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            task()
        return
    batch = _TaskBatch(tasks)
    pool = _executor(workers)
    for _ in range(min(workers, len(tasks)) - 1):
        pool.submit(batch.drain)
    batch.drain()
    batch.finished.wait()
    if batch.error is not None:
        raise batch.error


class _TaskBatch:
    """Tasks handed out one at a time under a lock; `finished` is set when the last one is done."""

    def __init__(self, tasks):
        self.tasks = tasks
        self.next = self.done = 0
        self.error = None
        self.lock = threading.Lock()
        self.finished = threading.Event()

    def drain(self):
        while True:
            with self.lock:
                if self.next == len(self.tasks):
                    return
                index = self.next
                self.next += 1
            try:
                self.tasks[index]()
            except BaseException as error:  # re-raised by run_tasks in the caller's thread
                self.error = self.error or error
            with self.lock:
                self.done += 1
                if self.done == len(self.tasks):
                    self.finished.set()

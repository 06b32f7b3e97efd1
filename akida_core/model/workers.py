"""Samples of a batch shared among worker threads, each running the whole model on its pieces.

Why threads of our own and not BLAS threads: OpenBLAS's threads wait for each other at a spinning
barrier after every product, so when another process holds a core every product stalls for a time
slice (threads.py). A worker here runs a piece of the batch through every layer with one BLAS thread
and numpy releases the GIL inside its loops and products, so two workers use two cores; pieces are
handed out one at a time, so when another process takes a core the free worker simply takes more
pieces and nobody waits at a barrier. Results are exact whatever the split: samples are independent
(models with temporal layers, where the batch is a time sequence, are never split).
"""
import concurrent.futures
import math
import threading

from .threads import available_cores

PIECE_MACS = 8 * 2 ** 20
"""A piece holds at least this many MACs (8 M): below it, handing it to a thread costs more than it gains."""
PIECES_PER_WORKER = 4
"""Pieces per worker: several, so that a worker slowed down by another process leaves its share to the others."""
MAX_WORKERS = 2
"""At most this many worker threads (and never more than the cores this process may use)."""

_pool = None
_pool_lock = threading.Lock()


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

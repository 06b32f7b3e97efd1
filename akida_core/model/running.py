"""One piece of a batch through an InferencePlan's layers: layer by layer, or through buffered chains.

`inference.py` decides how a call is sliced and which kernels may run; `graph.Model._run` splits a batch
into pieces (workers.py); the functions here run one piece and return its outputs and Statistics.
"""
import time

import numpy as np

from ..enums import IpVersion
from . import inference
from .inference import forward_in_slices
from .statistics import Statistics


def run_chain(plan, chain, inputs):
    """(Statistics, outputs of the last layer) of `inputs` through the buffered forwards of
    `inference.buffered_chain` (the last result copied: it is a buffer)."""
    stats = Statistics.for_layers(plan.layers, plan.entries)
    return stats, _through(plan, chain, inputs, stats).copy()


def _through(plan, chain, x, stats):
    """The last buffered forward's result (its buffer) of `x` through `chain`, each layer's outputs recorded."""
    for layer, forward in zip(plan.layers, chain):
        x = forward(x)
        stats.record(layer, x)
    return x


def run_in_chains(plan, inputs, samples):
    """(outputs of the last layer, Statistics) of `inputs` through the plan's buffered chains, `samples` at
    a time (`inference.chain_samples`); a part with no chain (a smaller last part may have none) runs layer
    by layer, with the BLAS threads as the caller set them.

    Why: a piece of a large batch is often too large for the buffered forwards, whose calls of a few samples
    can compute faster per sample than the plain kernels on the whole piece (MNIST-style, one thread: 144 µs
    per sample in calls of 7 against 181 for pieces of 16 layer by layer; Winograd, no allocations)."""
    size = inputs.shape[0]
    stats = Statistics.for_layers(plan.layers, plan.entries)
    out = None
    for start in range(0, size, samples):
        part = inputs[start:start + samples]
        chain = inference.buffered_chain(plan, part.shape)
        if chain is None:
            x, part_stats = run_piece(plan, part, None)
            stats.merge(part_stats)
        else:
            x = _through(plan, chain, part, stats)
        if out is None:
            out = np.empty((size, *x.shape[1:]), x.dtype)
        out[start:start + len(part)] = x
    return out, stats


def chains_pay(plan, piece, samples):
    """Whether pieces of `piece`'s shape compute faster through `run_in_chains(plan, piece, samples)` than layer
    by layer (`run_piece`), measured once per plan, piece shape and module limits (both give the same integers).

    Why measured: which wins depends on the layers and the machine. MNIST-style pieces of 16 samples took
    144 µs per sample in chains of 7 against 181 layer by layer; DS-CNN pieces 203 in chains of 6 against 179
    (its plain kernels gain more from 16 samples per call than its buffered ones from their buffers). Each way
    runs CHOICE_RUNS times, alternated, on `piece` (the first piece of the call, its results dropped) and the
    smaller processor time of the calling thread wins (a competing process does not count, where the thread
    clock is fine-grained).
    """
    key = (piece.shape, samples, inference.BUFFERED_BYTES, inference.LAYER_MEMORY_BYTES)
    choice = plan.piece_choices.get(key)
    if choice is None:
        clock = time.thread_time if time.get_clock_info("thread_time").resolution <= 1e-6 else time.perf_counter
        inference.buffered_chain(plan, (samples, *piece.shape[1:]))  # made before timing
        best = {True: float("inf"), False: float("inf")}
        for _ in range(CHOICE_RUNS):
            for chained in (True, False):
                start = clock()
                run_in_chains(plan, piece, samples) if chained else run_piece(plan, piece, None)
                best[chained] = min(best[chained], clock() - start)
        choice = plan.piece_choices[key] = best[True] < best[False]
    return choice


CHOICE_RUNS = 2
"""`chains_pay` times each way this many times."""


def run_piece(plan, inputs, limiter, banding=False):
    """(outputs of the last layer, Statistics) of `inputs` through the plan's layers, in topological
    order (`banding`: large one-sample layer calls may use worker threads, see forward_in_slices)."""
    stats = Statistics.for_layers(plan.layers, plan.entries)
    results = {}
    last = len(plan.steps) - 1
    for index, (layer, reads, frees) in enumerate(plan.steps):
        keep = index == last  # the result leaves the piece: not a buffer of the layer's (inference.py)
        if reads is None:
            x = forward_in_slices(layer, inputs, limiter, banding, keep)
        elif layer.ip_version is IpVersion.v2:
            x = forward_in_slices(layer, [results[key] for key in reads], limiter, keep=keep)
        else:
            x = forward_in_slices(layer, results[reads[0]], limiter, banding, keep)
        stats.record(layer, x)
        results[index] = x
        for key in frees:  # free what no later layer reads
            results.pop(key, None)
    return x, stats

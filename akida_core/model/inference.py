"""Batch chunking for inference: bounded memory for any batch size, cache-sized slices per layer."""
import math

import numpy as np

from ..errors import ModelStructureError
from ..layers.layer import BufferedForwards
from . import threads, workers
from .threads import threads_for
from .workers import band_count, run_tasks

BATCH_MEMORY_BYTES = 512 * 2 ** 20
"""Inference holds at most about this many bytes of layer outputs for one chunk of the batch."""
LAYER_MEMORY_BYTES = 32 * 2 ** 20
"""Each layer runs on sub-chunks whose intermediates (im2col columns, potentials) stay near this size."""
MAX_SAMPLE_BYTES = 2 ** 30
"""A layer's intermediates for one sample may not exceed this: a sample cannot be split further."""


class InferencePlan:
    """What inference needs to know of a list of layers, computed once from their shapes and inbounds.

    `steps` holds (layer, indices of the layers it reads or None for the first layer, indices of those
    it is the last reader of); `entries` the statistics entries (statistics.py); `per_sample` the largest output of
    one sample (for the batch chunk); `macs` the MACs of one sample. The module limits (memory, threads)
    are read at each call, not here, so changing them takes effect at once.

    `valid()` tells whether every layer's cache still holds this plan: a layer clears its cache when its
    shapes or variables change, and the model drops its plan on a structural change.
    """

    def __init__(self, layers):
        self.layers = list(layers)
        self.per_sample = max(math.prod(layer.output_dims) for layer in self.layers)
        self.macs = sum(layer_macs(layer) for layer in self.layers)
        self.temporal = any(layer.temporal for layer in self.layers)
        self.entries = tuple((layer.name, layer_macs(layer), math.prod(layer.output_dims)) for layer in self.layers)
        self._largest = max(self.layers, key=working_bytes)
        # indices, not ids: a pickled or copied model carries its plan along with new layer objects
        index_of = {id(layer): index for index, layer in enumerate(self.layers)}
        last_use = {}
        for index, layer in enumerate(self.layers):
            for inbound in layer._inbound_layers:
                last_use[index_of[id(inbound)]] = index
        steps = []
        for index, layer in enumerate(self.layers):
            reads = tuple(index_of[id(inbound)] for inbound in layer._inbound_layers)
            steps.append((layer, reads or None, tuple(read for read in reads if last_use[read] == index)))
        self.steps = tuple(steps)
        self.sequential = all(reads == ((index - 1,) if index else None)
                              for index, (_, reads, _) in enumerate(self.steps))
        self._chains = BufferedForwards()
        self.piece_choices = {}  # running.chains_pay's verdicts

    def claim(self):
        """Mark the layers' caches, so that `valid()` turns False when one of them is cleared."""
        for layer in self.layers:
            layer._cache["inference_plan"] = self

    def valid(self):
        """Whether no layer changed since `claim()`."""
        return all(layer._cache.get("inference_plan") is self for layer in self.layers)

    def check_sample_memory(self):
        """check_sample_memory of the layers, reading only the largest one unless it is too large."""
        if working_bytes(self._largest) > MAX_SAMPLE_BYTES:
            check_sample_memory(self.layers)


def buffered_chain(plan, input_shape):
    """The buffered forwards of the calling thread that compute a small call of `input_shape` through the plan's
    layers one after the other, or None.

    They exist when the layers form a chain (each reads the one before) and `forward_in_slices` would run every
    one of them through its buffered forward in one slice, with one BLAS thread and no bands: then inference
    calls them in a row and skips those per-layer decisions (about 20 µs of a 190 µs MNIST-style inference).
    Kept in the plan per thread, shape and module limits (changing a limit takes effect at once).
    """
    if not plan.sequential:
        return None
    key = (input_shape, BUFFERED_BYTES, LAYER_MEMORY_BYTES, threads.PARALLEL_MACS, workers.BAND_MACS,
           workers.MAX_WORKERS)
    return plan._chains.get(key, lambda key: _chain(plan, key[0]))


def chain_samples(plan, input_shape, most):
    """The largest number of samples, at most `most`, whose calls of the inputs' shape `input_shape` (any first
    axis) have a `buffered_chain` (0 when none has, or for temporal layers: their batch is one sequence).

    A larger piece of a batch then runs through the chain that many samples at a time (running.run_in_chains).
    The largest such call rather than a cache-sized one: two workers running chains contend for the interpreter
    lock between their many short numpy calls, and fewer calls per sample contend less. MNIST-style batch 64 on
    two workers, 7 December 2026 (alternated, best of 8), samples/s: calls of 7 samples (4 MiB) 6,415-8,725
    quiet and 4,037-6,621 with a competing process; calls of 3 (2 MiB) 5,127-7,956 and 4,408-5,467; layer by
    layer 6,075-7,254 and 3,359-4,788 (on one thread calls of 3 were 6% faster per sample than calls of 7).
    """
    if not plan.sequential or plan.temporal or most < 1:
        return 0
    samples = most
    for layer in plan.layers:
        work = working_bytes(layer)
        samples = min(samples, LAYER_MEMORY_BYTES // work, BUFFERED_BYTES // work)
    if samples < 1 or buffered_chain(plan, (samples, *input_shape[1:])) is None:
        return 0
    return samples


def _chain(plan, input_shape):
    size, shape, forwards = input_shape[0], input_shape, []
    for layer in plan.layers:
        work, macs = working_bytes(layer), layer_macs(layer)
        if size > max(1, LAYER_MEMORY_BYTES // work) or size * work > BUFFERED_BYTES or threads_for(macs * size) != 1 \
                or (layer.bands and band_count(macs, size) > 1):
            return None
        forward = layer._buffered(shape)
        if forward is None:
            return None
        forwards.append(forward)
        shape = (size, *layer.output_dims)
    return tuple(forwards)


def batch_chunk(layers):
    """Samples per outer chunk so that one layer's outputs for the chunk stay near BATCH_MEMORY_BYTES."""
    per_sample = max(math.prod(layer.output_dims) for layer in layers)
    return max(1, BATCH_MEMORY_BYTES // per_sample)


def check_sample_memory(layers):
    """Raise before inference if one sample of some layer needs more than MAX_SAMPLE_BYTES.

    Raises:
        ModelStructureError: naming the layer, its shapes and the bytes one sample needs.
    """
    for layer in layers:
        need = working_bytes(layer)
        if need > MAX_SAMPLE_BYTES:
            raise ModelStructureError(
                f"Layer '{layer.name}' ({layer.layer_type.name}): one sample needs about {need:,} bytes "
                f"of intermediates (input {layer.input_dims}, output {layer.output_dims}); inference is "
                f"limited to {MAX_SAMPLE_BYTES:,} bytes per sample and layer (MAX_SAMPLE_BYTES). "
                "Hint: use a smaller input size or fewer filters")


def working_bytes(layer):
    """Rough per-sample bytes of the largest intermediate of a layer (im2col columns or potentials).

    Computed once per layer shape (the layer's cache is cleared when its shapes or variables change)."""
    return layer._cached("working_bytes", lambda: _working_bytes(layer))


def layer_macs(layer):
    """MACs per sample of a layer, computed once per layer shape (read by every inference call)."""
    return layer._cached("macs", lambda: layer.macs)


def _working_bytes(layer):
    out = math.prod(layer.output_dims) * 8
    params = layer.params
    kernel = getattr(params, "kernel_size", None)
    if kernel is None:
        return max(out, math.prod(layer.input_dims) * 8)
    kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
    stride = getattr(params, "kernel_stride", 1)
    stride = (stride, stride) if isinstance(stride, int) else stride
    h, w, c = layer.input_dims
    positions = (-(-h // stride[0])) * (-(-w // stride[1]))
    return max(out, positions * (kernel[0] * kernel[1] * c + layer.output_dims[2]) * 8,
               _padded_pool_bytes(params, -(-h // stride[0]), -(-w // stride[1]), layer.output_dims[2]))


def _padded_pool_bytes(params, h, w, c):
    """Bytes of the padded max-pooling input (a pool window far larger than its input pads a lot)."""
    from ..enums import PoolType
    from ..kernels import padding_amounts
    if getattr(params, "pool_type", None) != PoolType.Max:
        return 0
    size, stride = params.pool_size, params.pool_stride
    size = (size, size) if isinstance(size, int) else size
    stride = (stride, stride) if isinstance(stride, int) else stride
    pads = [sum(padding_amounts(n, k, s, params.padding)) for n, k, s in ((h, size[0], stride[0]),
                                                                          (w, size[1], stride[1]))]
    return (h + pads[0]) * (w + pads[1]) * c * 8


BUFFERED_BYTES = 4 * 2 ** 20
"""A layer call whose intermediates (`working_bytes` × samples) stay below this size runs through the layer's
buffered forward (kernels/buffered.py: buffers made once per thread and input shape, kept between calls), when
it has one. Small calls are where allocation and view-making cost as much as the arithmetic (MNIST-style and
DS-CNN models at batch 1: 1.4× and 2× faster). Larger calls do not gain: every layer then keeps its own buffers
where fresh allocations reuse the same cache-warm memory (16 MiB ran the AkidaNet-like batch 64 8% slower).
The cap also bounds the memory the buffers keep (about half of it: `working_bytes` counts 8 bytes a value)."""


def forward_in_slices(layer, x, limiter=None, banding=False, keep=False):
    """Run one layer over `x` in sub-batches sized to LAYER_MEMORY_BYTES (cache-friendly, bounded memory).

    `x` is an array, or a list of arrays (one per inbound) sliced alike; slices run in order, so
    temporal layers see the samples as one sequence. With a `limiter` (threads.ThreadLimiter), the
    BLAS thread count is set from the MACs of one slice first (`threads.threads_for`). With `banding`, a
    large one-sample call of a layer that computes in row bands (`layer.bands`) shares them among worker
    threads (workers.py), each with one BLAS thread. A small call runs through the layer's buffered
    forward (BUFFERED_BYTES), whose result is a buffer that the layer's next call overwrites: with `keep`
    (the result outlives this inference piece) it is copied.
    """
    work, macs = working_bytes(layer), layer_macs(layer)
    step = max(1, LAYER_MEMORY_BYTES // work)
    is_list = isinstance(x, list)
    size = x[0].shape[0] if is_list else x.shape[0]
    bands = band_count(macs, size) if banding and layer.bands else 1
    if limiter is not None:
        limiter.set(1 if bands > 1 else threads_for(macs * min(size, step)))
    if bands > 1:
        return layer._forward(x, bands=bands, run=run_tasks)
    if size <= step:
        if not is_list and size * work <= BUFFERED_BYTES:
            forward = layer._buffered(x.shape)
            if forward is not None:
                out = forward(x)
                return out.copy() if keep else out
        return layer._forward(x)

    def part(start):
        if is_list:
            return [array[start:start + step] for array in x]
        return x[start:start + step]
    first = layer._forward(part(0))
    out = np.empty((size,) + first.shape[1:], first.dtype)
    out[:step] = first
    for start in range(step, size, step):
        out[start:start + step] = layer._forward(part(start))
    return out

"""Batch chunking for inference: bounded memory for any batch size, cache-sized slices per layer."""
import numpy as np

BATCH_MEMORY_BYTES = 512 * 2 ** 20
"""Inference holds at most about this many bytes of layer outputs for one chunk of the batch."""
LAYER_MEMORY_BYTES = 32 * 2 ** 20
"""Each layer runs on sub-chunks whose intermediates (im2col columns, potentials) stay near this size."""


def batch_chunk(layers):
    """Samples per outer chunk so that one layer's outputs for the chunk stay near BATCH_MEMORY_BYTES."""
    per_sample = max(int(np.prod(layer.output_dims)) for layer in layers)
    return max(1, BATCH_MEMORY_BYTES // per_sample)


def working_bytes(layer):
    """Rough per-sample bytes of the largest intermediate of a layer (im2col columns or potentials)."""
    out = int(np.prod(layer.output_dims)) * 8
    params = layer.params
    kernel = getattr(params, "kernel_size", None)
    if kernel is None:
        return max(out, int(np.prod(layer.input_dims)) * 8)
    stride = params.kernel_stride
    h, w, c = layer.input_dims
    positions = (-(-h // stride[0])) * (-(-w // stride[1]))
    return max(out, positions * (kernel[0] * kernel[1] * c + params.filters) * 8)


def forward_in_slices(layer, x):
    """Run one layer over `x` in sub-batches sized to LAYER_MEMORY_BYTES (cache-friendly, bounded memory)."""
    step = max(1, LAYER_MEMORY_BYTES // working_bytes(layer))
    if x.shape[0] <= step:
        return layer._forward(x)
    first = layer._forward(x[:step])
    out = np.empty((x.shape[0],) + first.shape[1:], first.dtype)
    out[:step] = first
    for start in range(step, x.shape[0], step):
        out[start:start + step] = layer._forward(x[start:start + step])
    return out

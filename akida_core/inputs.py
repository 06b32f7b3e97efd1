"""Validation of the arrays given to Model.forward / predict / evaluate, before any work is done."""
import numpy as np

from .errors import InputDataError


def input_range(bits, signed):
    """Return (low, high) of the integers an input of `bits` bits can hold."""
    if signed:
        return -2 ** (bits - 1), 2 ** (bits - 1) - 1
    return 0, 2 ** bits - 1


def validate_inputs(inputs, input_shape, bits, signed, what="inputs"):
    """Check type, rank, shape, dtype and value range of a batch of model inputs.

    Args:
        inputs: the user's array, expected (n,) + input_shape of integers.
        input_shape: (height, width, channels) of the model.
        bits: input bit width of the model's input layer.
        signed: whether inputs are signed.
        what: word used in the messages.

    Returns:
        A C-contiguous integer array (the same values; a copy only when needed).

    Raises:
        InputDataError: naming the expected shape, dtype and range.
    """
    low, high = input_range(bits, signed)
    expected = f"an integer numpy array of shape (batch, {', '.join(map(str, input_shape))}) " \
               f"with values in [{low}, {high}]"
    if not isinstance(inputs, np.ndarray):
        hint = " (convert it with np.asarray(x, dtype=np.uint8))" if isinstance(inputs, (list, tuple)) else ""
        raise InputDataError(f"{what} must be {expected}; got a {type(inputs).__name__}{hint}")
    if inputs.dtype == np.bool_ or not np.issubdtype(inputs.dtype, np.integer):
        hint = ""
        if np.issubdtype(inputs.dtype, np.floating):
            hint = "; Akida models take integers: quantize your data first (e.g. uint8 pixels 0..255)"
        raise InputDataError(f"{what} must be {expected}; got dtype {inputs.dtype}{hint}")
    if inputs.ndim != 4:
        hint = " (add a batch axis: x[np.newaxis])" if inputs.ndim == 3 else ""
        raise InputDataError(f"{what} must be {expected}; got {inputs.ndim} dims, shape {inputs.shape}{hint}")
    if tuple(inputs.shape[1:]) != tuple(input_shape):
        raise InputDataError(f"{what} must be {expected}; got shape {inputs.shape}")
    if inputs.shape[0] == 0:
        raise InputDataError(f"{what} is an empty batch (shape {inputs.shape}); give at least one sample")
    lo, hi = int(inputs.min()), int(inputs.max())
    if lo < low or hi > high:
        raise InputDataError(
            f"{what} values are in [{lo}, {hi}] but the model's {bits}-bit "
            f"{'signed' if signed else 'unsigned'} input takes [{low}, {high}]")
    return np.ascontiguousarray(inputs)


def validate_batch_size(batch_size):
    """batch_size is a non-negative int (0 = automatic)."""
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 0:
        raise InputDataError(f"batch_size={batch_size!r} must be an integer >= 0 (0 = automatic)")
    return int(batch_size)

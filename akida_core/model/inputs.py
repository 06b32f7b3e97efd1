"""Validation of the arrays given to Model.forward / predict / evaluate, before any work is done,
and the safe reading of an inputs .npy file (`akida-core run -i`)."""
import functools
import math
import os
import stat
import zipfile

import numpy as np

from ..errors import InputDataError, InputFileError

MAX_INPUTS_FILE_BYTES = 4 * 2 ** 30
"""Largest inputs file read (the .fbz cap); checked with fstat before reading."""
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


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
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind in "iu" and inputs.ndim == 4 \
            and inputs.shape[1:] == tuple(input_shape) and inputs.shape[0]:
        info = _integer_info(inputs.dtype)
        if low <= info.min and info.max <= high:  # the dtype proves the range: no pass over the data
            return np.ascontiguousarray(inputs)
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


@functools.lru_cache(maxsize=16)
def _integer_info(dtype):
    """np.iinfo of an integer dtype (cached: every inference asks)."""
    return np.iinfo(dtype)


def validate_batch_size(batch_size):
    """batch_size is a non-negative int (0 = automatic)."""
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 0:
        raise InputDataError(f"batch_size={batch_size!r} must be an integer >= 0 (0 = automatic)")
    return int(batch_size)


def read_inputs_file(path):
    """Read the one array of a .npy file, checking its header against the file before loading.

    The header's shape times itemsize must fit in the bytes that follow it, so a lying header cannot
    make numpy allocate; pickled (object) arrays are never loaded.

    Args:
        path: str, bytes or os.PathLike of a .npy file (np.save).

    Returns:
        The array, unvalidated (see validate_inputs).

    Raises:
        InputFileError: missing, not a regular file, empty, too large, not .npy, a damaged zip,
            a damaged or lying header, truncated data.
        InputDataError: a readable file that is not one plain array (.npz archive, object array).
    """
    label = _label(path)
    handle, size = _open_regular_file(path, label)
    with handle:
        try:
            head = handle.read(len(_NPY_MAGIC))
            if head.startswith(_ZIP_MAGICS):
                _reject_archive(handle, label)
            if head != _NPY_MAGIC:
                raise InputFileError(f"inputs file {label}: not a .npy file (starts with {head!r}, "
                                     f"expected {_NPY_MAGIC!r}); save the inputs with np.save")
            shape, _, dtype = _read_npy_header(handle, label)
            if dtype.hasobject:
                raise InputDataError(f"inputs file {label}: holds an object array ({dtype}); object "
                                     "arrays need pickle and are never loaded: save an integer array")
            expected, available = math.prod(shape) * dtype.itemsize, size - handle.tell()
            if expected > available:
                raise InputFileError(
                    f"inputs file {label}: truncated or corrupted: its header says shape {shape} of "
                    f"{dtype} ({expected:,} bytes) but only {available:,} bytes follow the header")
            handle.seek(0)
            return np.lib.format.read_array(handle, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            if isinstance(err, InputDataError):
                raise
            raise InputFileError(f"inputs file {label}: cannot be read as .npy: {err}") from err


def _open_regular_file(path, label):
    """(binary file object, size) of a non-empty regular file of at most MAX_INPUTS_FILE_BYTES."""
    try:  # O_NONBLOCK: opening a FIFO must not hang waiting for a writer
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except ValueError as err:  # "embedded null byte": no file system accepts NUL in a name
        raise InputFileError(f"inputs file {label}: cannot open: the path contains a NUL byte") from err
    except (OSError, TypeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else err
        raise InputFileError(f"inputs file {label}: cannot open: {reason}") from err
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (FIFO, socket or device)"
            raise InputFileError(f"inputs file {label}: is {kind}; expected a .npy file")
        if info.st_size == 0:
            raise InputFileError(f"inputs file {label}: is empty (0 bytes); expected a .npy file "
                                 "holding one (batch, h, w, c) array (np.save)")
        if info.st_size > MAX_INPUTS_FILE_BYTES:
            raise InputFileError(f"inputs file {label}: is {info.st_size:,} bytes; at most "
                                 f"{MAX_INPUTS_FILE_BYTES:,} (MAX_INPUTS_FILE_BYTES) are read")
        return os.fdopen(fd, "rb"), info.st_size
    except BaseException:
        os.close(fd)
        raise


def _read_npy_header(handle, label):
    handle.seek(0)
    version = np.lib.format.read_magic(handle)
    reader = _NPY_HEADERS.get(version)
    if reader is None:
        raise InputFileError(f"inputs file {label}: .npy format version {version[0]}.{version[1]} is "
                             "not supported (1.0 and 2.0 are, as np.save writes for numeric arrays)")
    shape, fortran_order, dtype = reader(handle)
    if not all(isinstance(dim, int) and dim >= 0 for dim in shape):
        raise InputFileError(f"inputs file {label}: corrupted header: shape {shape} must hold integers >= 0")
    return shape, fortran_order, dtype


def _reject_archive(handle, label):
    handle.seek(0)
    try:
        with zipfile.ZipFile(handle) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as err:
        raise InputFileError(f"inputs file {label}: a damaged zip (.npz) archive: {err}") from err
    raise InputDataError(f"inputs file {label}: is a .npz archive holding {len(names)} file(s) "
                         f"{names[:5]}; give a .npy file holding one (batch, h, w, c) array "
                         "(np.save('inputs.npy', x))")


def _label(path):
    try:
        return repr(os.fsdecode(path))
    except TypeError:
        return repr(path)

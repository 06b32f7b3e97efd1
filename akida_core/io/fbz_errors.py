"""The error taxonomy of the .fbz container (every one a ModelFormatError, modelled on
safetensors'), and the magics of files people rename to .fbz by mistake."""
from ..errors import ModelFormatError

KNOWN_MAGICS = (  # what people rename to .fbz by mistake, and what to tell them
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (a Keras .h5 model?)"),
    (b"PK\x03\x04", "a zip file (a Keras .keras model?)"),
    (b"PK\x05\x06", "an empty zip file"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x93NUMPY", "a numpy .npy file"),
    (b"\x1f\x8b", "a gzip file"),
    (b"\x80", "a Python pickle (never loaded: pickles can execute code)"),
)


class FileAccessError(ModelFormatError):
    """The path cannot be read as a file: missing, a directory, a FIFO, no permission."""


class NotAnFbzFile(ModelFormatError):
    """The bytes do not start with the .fbz magic."""


class Truncated(ModelFormatError):
    """The file is shorter than its own length fields say (or empty)."""


class TrailingBytes(ModelFormatError):
    """Bytes follow the checksum."""


class HeaderTooLarge(ModelFormatError):
    """The header length field exceeds MAX_HEADER_BYTES."""


class FileTooLarge(ModelFormatError):
    """The file (or a length field) exceeds MAX_FILE_BYTES."""


class ChecksumMismatch(ModelFormatError):
    """The SHA-256 trailer does not match the content: the file is corrupted."""


class InvalidHeader(ModelFormatError):
    """The header is not UTF-8 JSON, or does not follow the header schema."""


class InvalidTensorInfo(ModelFormatError):
    """A tensor table entry has a bad name, dtype, shape or length."""


class InvalidOffset(ModelFormatError):
    """A tensor's byte range is misaligned, out of bounds or overlaps another; or a gap is not zero."""


class InvalidReference(ModelFormatError):
    """A tree reference names no tensor, a tensor is referenced twice, or never."""


class UnsupportedTree(ModelFormatError):
    """``dumps``/``write`` got a tree holding a value the format cannot store exactly."""


class WriteFailed(ModelFormatError):
    """Writing the file failed (missing directory, permission, disk full); nothing was changed."""

"""The .fbz container: a versioned, checksummed, safe file format for a tree of JSON values and arrays.

A tree is a dict with str keys whose values are dicts, lists, str, int, float, bool, None or numpy
arrays (see ``DTYPES``). A file is: MAGIC, uint32 version, uint32 flags, uint64 header length H,
uint64 data length D (little-endian), an ASCII JSON header of H bytes, D bytes of 8-byte aligned
raw little-endian tensors, and a SHA-256 of everything before it. docs/fbz.md has the details.

Loading never executes code and validates everything before building a single array; any problem
raises a subclass of ``ModelFormatError`` naming the file and what is wrong.
"""
import hashlib
import io
import json
import math
import os
import stat
import struct

import numpy as np

from ..errors import ModelFormatError, VersionError
from .fbz_errors import (KNOWN_MAGICS, FileAccessError, NotAnFbzFile, Truncated, TrailingBytes,
                          HeaderTooLarge, FileTooLarge, ChecksumMismatch, InvalidHeader,
                          InvalidTensorInfo, InvalidOffset, InvalidReference, UnsupportedTree,
                          WriteFailed)  # noqa: F401 (public names)
from .atomic import label as _label, write_atomically

FORMAT_VERSION = 1
MAGIC = b"\x89FBZ\r\n\x1a\n"  # PNG-style: a high byte and CR/LF/^Z expose text-mode transfers
MAX_HEADER_BYTES = 16 * 2**20
MAX_FILE_BYTES = 4 * 2**30
MAX_DEPTH = 64
MAX_RANK = 32
ALIGNMENT = 8
TENSOR_KEY = "__fbz_tensor__"
DTYPES = ("bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "int64",
          "float32", "float64")

_PREAMBLE = struct.Struct("<8sIIQQ")
_CHECKSUM_BYTES = 32
_TENSOR_FIELDS = ("name", "dtype", "shape", "offset", "length")
def dumps(tree):
    """Serialize a tree into .fbz bytes.

    Args:
        tree: dict with str keys; values are dict, list, str, int, finite float, bool, None or
            numpy arrays whose dtype is in ``DTYPES`` (any shape, including 0-d and zero-size).
    Returns:
        bytes: the complete file content; ``loads(dumps(tree)) == tree`` exactly.
    Raises:
        UnsupportedTree: a value cannot be stored (its path in the tree is named).
    """
    if not isinstance(tree, dict):
        raise UnsupportedTree(f"the tree root must be a dict, got {type(tree).__name__}.")
    arrays = []
    encoded = _encode(tree, "", arrays, 0)
    tensors, cursor = [], 0
    for name, array in arrays:
        cursor = _align(cursor)
        tensors.append({"name": name, "dtype": array.dtype.name, "shape": list(array.shape),
                        "offset": cursor, "length": array.nbytes})
        cursor += array.nbytes
    data_length = _align(cursor)
    try:
        text = json.dumps({"tensors": tensors, "tree": encoded}, ensure_ascii=True,
                          allow_nan=False, separators=(",", ":"))
    except ValueError as err:  # e.g. an int beyond Python's int/str conversion limit
        raise UnsupportedTree(f"tree cannot be encoded as JSON: {err}") from err
    header = text.encode("ascii")
    header += b" " * (_align(len(header)) - len(header))
    if len(header) > MAX_HEADER_BYTES:
        raise UnsupportedTree(f"tree header is {len(header)} bytes; at most {MAX_HEADER_BYTES} "
                              "allowed. Hint: store large lists as numpy arrays.")
    body_length = _PREAMBLE.size + len(header) + data_length
    if body_length + _CHECKSUM_BYTES > MAX_FILE_BYTES:
        raise UnsupportedTree(f"tree needs {body_length + _CHECKSUM_BYTES} bytes; .fbz files are "
                              f"limited to {MAX_FILE_BYTES} bytes.")
    out = bytearray(body_length + _CHECKSUM_BYTES)
    _PREAMBLE.pack_into(out, 0, MAGIC, FORMAT_VERSION, 0, len(header), data_length)
    start = _PREAMBLE.size + len(header)
    out[_PREAMBLE.size:start] = header
    flat = np.frombuffer(out, dtype=np.uint8)
    for entry, (_, array) in zip(tensors, arrays):
        begin = start + entry["offset"]
        flat[begin:begin + entry["length"]] = array.reshape(-1).view(np.uint8)
    out[body_length:] = hashlib.sha256(memoryview(out)[:body_length]).digest()
    return bytes(out)


def loads(data):
    """Parse .fbz bytes back into the tree ``dumps`` was given.

    Args:
        data: bytes, bytearray or memoryview holding a whole .fbz file.
    Returns:
        dict: the tree; arrays are new C-contiguous, writeable, native-byte-order numpy arrays.
    Raises:
        ModelFormatError: (a subclass of it) anything is wrong; ``VersionError`` if a newer format.
    """
    return _decode(data, "fbz data")


def write(path, tree):
    """Write a tree to ``path`` atomically (temp file in the same directory, fsync, os.replace).

    On any failure the temp file is removed and an existing file at ``path`` is left untouched.
    Missing directories are not created.

    Args:
        path: str, bytes or os.PathLike; replaced if it exists (a symlink is replaced, not followed).
        tree: see ``dumps``.
    Raises:
        UnsupportedTree: the tree cannot be stored (nothing is written).
        WriteFailed: the directory is missing, ``path`` is a directory, or an OS error occurred.
    """
    label = _label(path)
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise WriteFailed(f"{label}: a path must be str, bytes or os.PathLike, got "
                          f"{type(path).__name__}.")
    write_atomically(path, dumps(tree))


def read(path):
    """Read a tree from a .fbz file.

    Args:
        path: str, bytes or os.PathLike of a regular file.
    Returns:
        dict: the tree (see ``loads``).
    Raises:
        FileAccessError: missing, a directory, a FIFO/device, permission denied.
        FileTooLarge: larger than MAX_FILE_BYTES.
        ModelFormatError: (a subclass of it) the content is not a valid .fbz file.
    """
    label = _label(path)
    try:  # O_NONBLOCK: opening a FIFO must not hang waiting for a writer
        fd = os.open(os.fspath(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_BINARY", 0))
    except TypeError as err:
        raise FileAccessError(f"{label}: a path must be str, bytes or os.PathLike.") from err
    except ValueError as err:  # "embedded null byte": no file system accepts NUL in a name
        raise FileAccessError(f"{label}: cannot open: the path contains a NUL byte.") from err
    except OSError as err:
        raise FileAccessError(f"{label}: cannot open: {err.strerror or err}.") from err
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (FIFO, " \
                "socket or device)"
            raise FileAccessError(f"{label}: is {kind}; expected a .fbz file.")
        if info.st_size > MAX_FILE_BYTES:
            raise FileTooLarge(f"{label}: is {info.st_size} bytes; .fbz files are limited to "
                               f"{MAX_FILE_BYTES} bytes.")
        buffer, done = bytearray(info.st_size), 0
        with io.FileIO(fd, "rb", closefd=False) as handle:
            while done < info.st_size:
                count = handle.readinto(memoryview(buffer)[done:])
                if not count:
                    break
                done += count
            if done != info.st_size or handle.read(1):
                raise FileAccessError(f"{label}: changed size while being read; try again.")
    except OSError as err:
        raise FileAccessError(f"{label}: cannot read: {err.strerror or err}.") from err
    finally:
        os.close(fd)
    return _decode(buffer, label)


def _decode(data, label):
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise NotAnFbzFile(f"{label}: expected bytes, got {type(data).__name__}.")
    try:
        view = memoryview(data).cast("B")
    except TypeError as err:
        raise NotAnFbzFile(f"{label}: expected a contiguous byte buffer: {err}.") from err
    if len(view) > MAX_FILE_BYTES:
        raise FileTooLarge(f"{label}: is {len(view)} bytes; limit is {MAX_FILE_BYTES}.")
    header_length, data_length = _check_preamble(view, label)
    body_length = _PREAMBLE.size + header_length + data_length
    digest = hashlib.sha256(view[:body_length]).digest()
    if digest != bytes(view[body_length:]):
        raise ChecksumMismatch(f"{label}: SHA-256 checksum mismatch; the file is corrupted "
                               "(re-save or re-download it).")
    header = _parse_header(view[_PREAMBLE.size:_PREAMBLE.size + header_length], label)
    section = view[_PREAMBLE.size + header_length:body_length]
    tensors = _check_tensors(header["tensors"], data_length, label)
    _check_gaps(section, tensors, label)
    unused = {entry["name"]: entry for entry in tensors}
    tree = _resolve(header["tree"], section, unused, label)
    if unused:
        raise InvalidReference(f"{label}: tensor(s) {sorted(unused)[:5]} are never referenced "
                               "by the tree; every tensor must be used exactly once.")
    return tree


def _check_preamble(view, label):
    size = len(view)
    if size == 0:
        raise Truncated(f"{label}: is empty (0 bytes); expected a .fbz file.")
    head = bytes(view[:len(MAGIC)])
    if head != MAGIC:
        if MAGIC.startswith(head):
            raise Truncated(f"{label}: only {size} bytes; truncated inside the magic.")
        for magic, kind in KNOWN_MAGICS:
            if head.startswith(magic):
                raise NotAnFbzFile(f"{label}: this is {kind}, not .fbz.")
        raise NotAnFbzFile(f"{label}: not a .fbz file: starts with {head!r}, expected {MAGIC!r}.")
    if size < 12:
        raise Truncated(f"{label}: only {size} bytes; truncated inside the format version.")
    version = int.from_bytes(view[8:12], "little")
    if version > FORMAT_VERSION:
        raise VersionError(f"{label}: written by format v{version}; this build reads "
                           f"<= v{FORMAT_VERSION}. Hint: upgrade akida_core.")
    if version < 1:
        raise InvalidHeader(f"{label}: format version 0 is invalid; versions start at 1.")
    if size < _PREAMBLE.size:
        raise Truncated(f"{label}: only {size} bytes; a .fbz preamble has {_PREAMBLE.size}.")
    _, _, flags, header_length, data_length = _PREAMBLE.unpack_from(view)
    if flags:
        raise InvalidHeader(f"{label}: flags field is {flags:#x}; format v{FORMAT_VERSION} "
                            "requires 0 (no flags defined).")
    if header_length > MAX_HEADER_BYTES:
        raise HeaderTooLarge(f"{label}: header length {header_length} exceeds the cap of "
                             f"{MAX_HEADER_BYTES} bytes.")
    if data_length > MAX_FILE_BYTES:
        raise FileTooLarge(f"{label}: data length {data_length} exceeds the cap of "
                           f"{MAX_FILE_BYTES} bytes.")
    for field, value in (("header", header_length), ("data", data_length)):
        if value % ALIGNMENT:
            raise InvalidHeader(f"{label}: {field} length {value} is not a multiple of "
                                f"{ALIGNMENT}.")
    expected = _PREAMBLE.size + header_length + data_length + _CHECKSUM_BYTES
    if size < expected:
        raise Truncated(f"{label}: truncated: {size} bytes, but its length fields need "
                        f"{expected} ({expected - size} missing).")
    if size > expected:
        raise TrailingBytes(f"{label}: {size - expected} unexpected trailing bytes after the "
                            f"checksum (expected {expected} bytes in total).")
    return header_length, data_length


def _parse_header(raw, label):
    def reject_constant(name):
        raise InvalidHeader(f"{label}: header holds the JSON constant {name}; only finite numbers "
                            "are allowed.")

    def unique_keys(pairs):
        result = dict(pairs)
        if len(result) != len(pairs):  # linear: a header may hold millions of keys
            seen = set()
            duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
            raise InvalidHeader(f"{label}: header has duplicate key {_describe(duplicate)} in one "
                                "object.")
        return result

    try:
        header = json.loads(bytes(raw).decode("utf-8"), parse_constant=reject_constant,
                            object_pairs_hook=unique_keys)
    except InvalidHeader:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise InvalidHeader(f"{label}: header is not valid UTF-8 JSON: {err}.") from err
    if not isinstance(header, dict) or set(header) != {"tensors", "tree"}:
        found = sorted(header) if isinstance(header, dict) else type(header).__name__
        raise InvalidHeader(f"{label}: header must be an object with keys ['tensors', 'tree']; "
                            f"found {found}.")
    if not isinstance(header["tensors"], list) or not isinstance(header["tree"], dict):
        raise InvalidHeader(f"{label}: header 'tensors' must be a list and 'tree' an object.")
    return header


def _check_tensors(entries, data_length, label):
    names = set()
    for index, entry in enumerate(entries):
        where = f"{label}: tensor #{index}"
        if not isinstance(entry, dict) or set(entry) != set(_TENSOR_FIELDS):
            raise InvalidTensorInfo(f"{where}: must be an object with keys "
                                    f"{list(_TENSOR_FIELDS)}; found {_describe(entry)}.")
        name = entry["name"]
        if not isinstance(name, str) or not name:
            raise InvalidTensorInfo(f"{where}: name must be a non-empty string, got {name!r}.")
        if name in names:
            raise InvalidTensorInfo(f"{where}: duplicate tensor name {_describe(name)}.")
        names.add(name)
        where = f"{label}: tensor {_describe(name)}"
        if entry["dtype"] not in DTYPES:
            raise InvalidTensorInfo(f"{where}: dtype {entry['dtype']!r} is not allowed; "
                                    f"allowed: {', '.join(DTYPES)}.")
        shape = entry["shape"]
        if (not isinstance(shape, list) or len(shape) > MAX_RANK
                or not all(_is_int(dim) and dim >= 0 for dim in shape)):
            raise InvalidTensorInfo(f"{where}: shape must be a list of at most {MAX_RANK} "
                                    f"non-negative integers, got {_describe(shape)}.")
        for field in ("offset", "length"):
            if not _is_int(entry[field]) or entry[field] < 0:
                raise InvalidOffset(f"{where}: {field} must be a non-negative integer, got "
                                    f"{_describe(entry[field])}.")
        itemsize = np.dtype(entry["dtype"]).itemsize
        if _span(shape, itemsize) > MAX_FILE_BYTES:  # numpy refuses such shapes even when empty
            raise InvalidTensorInfo(f"{where}: shape {_describe(shape)} spans more than "
                                    f"{MAX_FILE_BYTES} bytes (zero dimensions ignored).")
        expected = math.prod(shape) * itemsize
        if entry["length"] != expected:
            raise InvalidTensorInfo(f"{where}: length {entry['length']} != {expected} bytes "
                                    f"implied by shape {shape} and dtype {entry['dtype']}.")
        offset, end = entry["offset"], entry["offset"] + entry["length"]
        if offset % ALIGNMENT:
            raise InvalidOffset(f"{where}: offset {offset} is not a multiple of {ALIGNMENT}.")
        if end > data_length:
            raise InvalidOffset(f"{where}: bytes [{offset}, {end}) lie outside the "
                                f"{data_length}-byte data section.")
    ordered = sorted((e for e in entries if e["length"]), key=lambda e: e["offset"])
    for previous, current in zip(ordered, ordered[1:]):
        if current["offset"] < previous["offset"] + previous["length"]:
            raise InvalidOffset(f"{label}: tensors {previous['name']!r} and {current['name']!r} "
                                "overlap; tensor byte ranges must be disjoint.")
    return ordered + [e for e in entries if not e["length"]]


def _check_gaps(section, tensors, label):
    # Bytes no tensor owns must be zero, so a file cannot smuggle hidden payload past the reader.
    cursor, gaps = 0, []
    for entry in tensors:
        if entry["length"]:
            gaps.append((cursor, entry["offset"]))
            cursor = entry["offset"] + entry["length"]
    gaps.append((cursor, len(section)))
    for begin, end in gaps:
        if begin < end and bytes(section[begin:end]).count(0) != end - begin:
            raise InvalidOffset(f"{label}: padding bytes [{begin}, {end}) of the data section are "
                                "not zero.")


def _resolve(tree, section, unused, label):
    if TENSOR_KEY in tree:
        raise InvalidReference(f"{label}: the tree root is a tensor reference; it must be an object.")
    _resolve_in_place(tree, section, unused, None, 0, label)
    return tree


def _resolve_in_place(node, section, unused, where, depth, label):
    # The header tree was just parsed and is ours, so references are replaced in place. Nothing is
    # rebuilt and plain leaves cost no call: a 16 MiB header can hold millions of values. `where`
    # is a (parent, key) chain, turned into a path string only for a message.
    if depth >= MAX_DEPTH and node:
        first = next(iter(node)) if isinstance(node, dict) else 0
        raise InvalidHeader(f"{label}: tree at {_path((where, first))} is nested deeper than "
                            f"{MAX_DEPTH}.")
    for key, value in (node.items() if isinstance(node, dict) else enumerate(node)):
        kind = type(value)
        if kind is dict:
            if TENSOR_KEY in value:
                node[key] = _take_tensor(value, section, unused, _path((where, key)), label)
            else:
                _resolve_in_place(value, section, unused, (where, key), depth + 1, label)
        elif kind is list:
            _resolve_in_place(value, section, unused, (where, key), depth + 1, label)
        elif kind is float and not math.isfinite(value):
            raise InvalidHeader(f"{label}: tree value at {_path((where, key))} is {value}; only "
                                "finite floats allowed.")


def _path(where):
    keys = []
    while where is not None:
        where, key = where
        keys.append(_escape(key) if isinstance(key, str) else str(key))
    return "/" + "/".join(reversed(keys))


def _take_tensor(node, section, unused, path, label):
    name = node[TENSOR_KEY]
    if len(node) != 1 or not isinstance(name, str):
        raise InvalidReference(f"{label}: reference at {path} must be {{{TENSOR_KEY!r}: <name>}}, "
                               f"got {_describe(node)}.")
    if name not in unused:
        raise InvalidReference(f"{label}: reference at {path} names tensor {name!r}, which is "
                               "not in the tensor table or is already referenced.")
    entry = unused.pop(name)
    stored = np.dtype(entry["dtype"]).newbyteorder("<")
    array = np.frombuffer(section, dtype=stored, count=math.prod(entry["shape"]),
                          offset=entry["offset"])
    if entry["dtype"] == "bool" and array.view(np.uint8).max(initial=0) > 1:
        raise InvalidTensorInfo(f"{label}: bool tensor {_describe(name)} holds bytes other than 0 and 1.")
    array = array.astype(np.dtype(entry["dtype"]), order="C", copy=True)
    return array.reshape(tuple(entry["shape"]))


def _encode(node, path, arrays, depth):
    if depth > MAX_DEPTH:
        raise UnsupportedTree(f"tree at {path or '/'} is nested deeper than {MAX_DEPTH}.")
    if isinstance(node, dict):
        encoded = {}
        for key, value in node.items():
            if not isinstance(key, str):
                raise UnsupportedTree(f"tree key {key!r} at {path or '/'} is "
                                      f"{type(key).__name__}; keys must be str.")
            if key == TENSOR_KEY:
                raise UnsupportedTree(f"tree key {key!r} at {path or '/'} is reserved by .fbz.")
            encoded[key] = _encode(value, f"{path}/{_escape(key)}", arrays, depth + 1)
        return encoded
    if isinstance(node, list):
        return [_encode(value, f"{path}/{i}", arrays, depth + 1) for i, value in enumerate(node)]
    if isinstance(node, np.ndarray):
        if type(node) not in (np.ndarray, np.memmap) or node.dtype.name not in DTYPES:
            raise UnsupportedTree(f"array at {path} is {type(node).__name__} of dtype "
                                  f"{node.dtype}; allowed: plain numpy arrays of "
                                  f"{', '.join(DTYPES)}.")
        if _span(node.shape, node.itemsize) > MAX_FILE_BYTES:
            raise UnsupportedTree(f"array at {path} has shape {node.shape}, which spans more "
                                  f"than {MAX_FILE_BYTES} bytes (zero dimensions ignored).")
        arrays.append((path, np.asarray(node, dtype=node.dtype.newbyteorder("<"), order="C")))
        return {TENSOR_KEY: path}
    if isinstance(node, float) and not math.isfinite(node):
        raise UnsupportedTree(f"tree value at {path} is {node}; JSON holds finite floats only. "
                              "Hint: store it in a numpy float array.")
    if node is None or type(node) in (str, int, float, bool):
        return node
    raise UnsupportedTree(f"tree value at {path} has type {type(node).__name__}; allowed: dict, "
                          "list, str, int, float, bool, None, numpy array. Hint: convert numpy "
                          "scalars with int()/float() and tuples with list().")


def _align(value):
    return -(-value // ALIGNMENT) * ALIGNMENT


def _span(shape, itemsize):
    # Python ints, so [2**40, 2**40] cannot overflow; zeros skipped to bound empty shapes too
    return math.prod(dim for dim in shape if dim) * itemsize


def _is_int(value):
    return type(value) is int  # JSON true/false parse as bool, a subclass of int


def _escape(key):
    return key.replace("~", "~0").replace("/", "~1")  # JSON Pointer (RFC 6901)


def _describe(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."

"""Atomic file writing: a temp file in the same directory, fsync, os.replace, then fsync of the directory.

On any failure the temp file is removed and an existing file is left untouched (used by the .fbz writer)."""
import contextlib
import os
import secrets

from .fbz_errors import WriteFailed


def write_atomically(path, data):
    """Write the bytes `data` to `path` (str, bytes or os.PathLike) atomically; missing directories are not
    created.

    Raises:
        WriteFailed: the directory is missing, ``path`` is a directory, or an OS error occurred.
    """
    shown = label(path)
    path = os.fsdecode(path)  # str from here on; surrogateescape keeps non-UTF-8 names exact
    if "\0" in path:
        raise WriteFailed(f"{shown}: the path contains a NUL byte; no file can have that name.")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise WriteFailed(f"{shown}: directory {label(directory)} does not exist; "
                          "create it first (write() never creates directories).")
    if os.path.isdir(path):
        raise WriteFailed(f"{shown}: is a directory; give a file path such as model.fbz.")
    try:
        fd, temp = _create_temp(path)
    except OSError as err:
        raise WriteFailed(f"{shown}: cannot create a temp file in {label(directory)}: "
                          f"{err.strerror or err}") from err
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(err, OSError):
            raise WriteFailed(f"{shown}: write failed, existing file left untouched: "
                              f"{err.strerror or err}") from err
        raise
    _fsync_directory(directory)


def _create_temp(path):
    directory, base = os.path.split(os.path.abspath(path))
    for _ in range(100):
        temp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:  # mode 0o666 lets the umask decide, as for any normally created file
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                           | getattr(os, "O_BINARY", 0), 0o666), temp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temp file name next to {path}")


def _fsync_directory(directory):
    with contextlib.suppress(OSError):  # makes the rename durable; not possible on every platform
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def label(path):
    """A path as quoted in messages (its repr; non-UTF-8 names stay readable)."""
    try:
        return repr(os.fsdecode(path))
    except TypeError:
        return repr(path)

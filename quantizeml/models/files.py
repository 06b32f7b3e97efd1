"""Safe reading of model files: path checks, magic sniffing, ``.keras`` zip + config allowlist.

Nothing here imports, calls or deserializes anything named by a file: configs are JSON checked
against an allowlist before Keras ever sees them.
"""
from __future__ import annotations

import io
import lzma
import os
import stat
import struct
import zipfile
import zlib

import keras

from ..errors import ModelFormatError, UnsafeModelError
from ..schema import (check_keras_version, endpoint_names, inbound_names, parse_json, short,
                      validate_model_config)

MAX_FILE_BYTES = 2 * 1024**3
MAX_UNCOMPRESSED_BYTES = 4 * 1024**3
MAX_CONFIG_BYTES = 64 * 1024**2
MAX_METADATA_BYTES = 1024**2
#: A .keras archive holds a handful of members (config.json, metadata.json, model.weights.h5).
MAX_ARCHIVE_MEMBERS = 64
MAX_CENTRAL_DIRECTORY_BYTES = 1024**2
#: The members handed to Keras: nothing else in an archive is ever extracted.
KERAS_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")
ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate",
               zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma"}
#: What zipfile raises on a corrupted member (bad CRC, bad compressed stream, truncation).
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, lzma.LZMAError, OSError,
              EOFError, ValueError, RuntimeError, NotImplementedError)
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
SUFFIXES = (".keras", ".h5", ".hdf5")

#: Special Keras serialization markers that carry data, never code.
DATA_MARKERS = {"__keras_tensor__", "__numpy__", "__tuple__", "__tensor__", "__bytes__",
                "__ellipsis__", "__slice__"}
#: Built-in classes refused even though Keras ships them: they run user code or load graphs.
DENIED_CLASSES = {"Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer",
                  "function", "__lambda__"}
MODEL_CLASSES = {"Functional", "Sequential", "Model"}
ALLOWED_MODULES = {
    "keras": keras, "keras.layers": keras.layers, "keras.initializers": keras.initializers,
    "keras.regularizers": keras.regularizers, "keras.constraints": keras.constraints,
    "keras.optimizers": keras.optimizers, "keras.losses": keras.losses,
    "keras.metrics": keras.metrics, "keras.models": keras.models,
    "keras.optimizers.schedules": keras.optimizers.schedules,
    "keras.src.models.functional": keras.models, "keras.src.models.sequential": keras.models,
    "keras.src.models.model": keras.models,
}


def read_model_file(path, where: str | None = None) -> tuple[str, bytes, str]:
    """Check a model path and return (display name, bytes, kind 'keras' | 'h5').

    Raises:
        ModelFormatError: missing path, directory (incl. SavedModel), special file, empty file,
            too large, unknown extension, or magic bytes that do not match the extension.
    """
    try:
        name = os.fsdecode(os.fspath(path))
    except TypeError as err:
        raise ModelFormatError(f"Model path {path!r} is not a path.") from err
    where = where or f"Model file '{name}'"
    try:
        info = os.stat(name)
    except FileNotFoundError as err:
        raise ModelFormatError(f"{where} does not exist.") from err
    except OSError as err:  # permission, loops, name too long
        raise ModelFormatError(f"{where} cannot be accessed: {err.strerror or err}.") from err
    if stat.S_ISDIR(info.st_mode):
        hint = (" It is a TensorFlow SavedModel, which is not a Keras model file; re-save it as "
                ".keras or .h5." if os.path.exists(os.path.join(name, "saved_model.pb")) else "")
        raise ModelFormatError(f"{where} is a directory, not a model file.{hint}")
    if not stat.S_ISREG(info.st_mode):
        raise ModelFormatError(f"{where} is not a regular file (FIFO, device or socket).")
    suffix = os.path.splitext(name)[1].lower()
    if suffix not in SUFFIXES:
        raise ModelFormatError(f"{where}: extension {suffix or '(none)'!r} is not supported; "
                               "allowed: .keras, .h5 (pickles and .npy/.npz are never loaded).")
    if info.st_size == 0:
        raise ModelFormatError(f"{where} is empty (0 bytes).")
    if info.st_size > MAX_FILE_BYTES:
        raise ModelFormatError(f"{where} is {info.st_size} bytes; the limit is {MAX_FILE_BYTES}.")
    try:
        with open(name, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise ModelFormatError(f"{where} cannot be read: {err.strerror or err}.") from err
    kind = "keras" if suffix == ".keras" else "h5"
    expected = ZIP_MAGIC if kind == "keras" else HDF5_MAGIC
    if not data.startswith(expected):
        found = ("a zip archive" if data.startswith(ZIP_MAGIC) else "an HDF5 file"
                 if data.startswith(HDF5_MAGIC) else "neither a zip archive nor an HDF5 file")
        raise ModelFormatError(f"{where}: the extension says {suffix} but the content is {found}.")
    return name, data, kind


def _central_directory(data: bytes) -> tuple[int, int] | None:
    """(members, central directory bytes) announced by the end record (zip64 too), or None."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65535))
    if end < 0 or end + 22 > len(data):
        return None
    count, size = struct.unpack_from("<HI", data, end + 10)
    locator = end - 20
    if (count == 0xFFFF or size == 0xFFFFFFFF) and locator >= 0 and \
            data[locator:locator + 4] == b"PK\x06\x07":
        (offset,) = struct.unpack_from("<Q", data, locator + 8)
        if data[offset:offset + 4] == b"PK\x06\x06" and offset + 56 <= len(data):
            count, size = struct.unpack_from("<QQ", data, offset + 32)
    return count, size


def _check_members(members, where: str) -> None:
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise ModelFormatError(f"{where}: the archive has {len(members)} members; a .keras file "
                               f"holds {', '.join(KERAS_MEMBERS)} (and maybe assets/), the limit "
                               f"is {MAX_ARCHIVE_MEMBERS}.")
    seen = set()
    for member in members:
        member_name = member.filename
        if member_name.startswith(("/", "\\")) or ".." in member_name.replace("\\", "/").split(
                "/") or (len(member_name) > 1 and member_name[1] == ":"):
            raise UnsafeModelError(f"{where}: archive member {member_name!r} escapes the archive.")
        if stat.S_ISLNK(member.external_attr >> 16):
            raise UnsafeModelError(f"{where}: archive member {member_name!r} is a symlink.")
        if member_name in seen:
            raise ModelFormatError(f"{where}: archive member {member_name!r} appears twice.")
        seen.add(member_name)
        if member.flag_bits & 0x1:
            raise ModelFormatError(f"{where}: archive member {member_name!r} is encrypted; "
                                   ".keras files are not.")
        if member.compress_type not in ZIP_METHODS:
            raise ModelFormatError(f"{where}: archive member {member_name!r} uses compression "
                                   f"method {member.compress_type}; allowed: "
                                   f"{', '.join(ZIP_METHODS.values())}.")


def open_keras_zip(data: bytes, where: str) -> dict:
    """Validate a ``.keras`` archive in memory and return its parsed ``config.json``.

    Raises:
        UnsafeModelError: member names with '..', absolute paths or symlinks.
        ModelFormatError: bad zip/CRC, too many or duplicated members, encrypted members or
            unknown compression, missing members, zip bomb, bad JSON or metadata.
    """
    directory = _central_directory(data)
    if directory is not None and (directory[0] > MAX_ARCHIVE_MEMBERS or
                                  directory[1] > MAX_CENTRAL_DIRECTORY_BYTES):
        raise ModelFormatError(f"{where}: the archive announces {directory[0]} members in a "
                               f"{directory[1]}-byte directory; a .keras file holds a handful "
                               f"(limit {MAX_ARCHIVE_MEMBERS} members, "
                               f"{MAX_CENTRAL_DIRECTORY_BYTES} bytes).")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except ZIP_ERRORS as err:
        raise ModelFormatError(f"{where} is not a valid .keras archive (truncated or corrupted "
                               f"zip: {err}).") from err
    _check_members(members, where)
    total = sum(member.file_size for member in members)
    if total > MAX_UNCOMPRESSED_BYTES:
        raise ModelFormatError(f"{where}: archive expands to {total} bytes (limit "
                               f"{MAX_UNCOMPRESSED_BYTES}); refusing a possible zip bomb.")
    names = {member.filename for member in members}
    missing = [n for n in ("config.json", "model.weights.h5") if n not in names]
    if missing:
        raise ModelFormatError(f"{where}: archive lacks {', '.join(missing)}; not a Keras 3 "
                               ".keras file.")
    if archive.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
        raise ModelFormatError(f"{where}: config.json is larger than {MAX_CONFIG_BYTES} bytes.")
    if "metadata.json" in names and \
            archive.getinfo("metadata.json").file_size > MAX_METADATA_BYTES:
        raise ModelFormatError(f"{where}: metadata.json is larger than {MAX_METADATA_BYTES} "
                               "bytes.")
    try:
        bad = archive.testzip()
        metadata = archive.read("metadata.json") if "metadata.json" in names else b"{}"
        config = archive.read("config.json")
    except ZIP_ERRORS as err:
        raise ModelFormatError(f"{where}: corrupted archive: {err}.") from err
    if bad is not None:
        raise ModelFormatError(f"{where}: CRC check failed for member {bad!r}.")
    metadata = parse_json(metadata, where, "metadata.json")
    if not isinstance(metadata, dict):
        raise ModelFormatError(f"{where}: metadata.json is {type(metadata).__name__}; expected "
                               "a dict such as {\"keras_version\": \"3.8.0\"}.")
    check_keras_version(metadata.get("keras_version", "3"), where, "metadata.json keras_version")
    return parse_json(config, where, "config.json")


def write_keras_members(data: bytes, target: str) -> None:
    """Write a new archive at ``target`` holding only the ``KERAS_MEMBERS`` of an archive already
    checked by ``open_keras_zip`` (so Keras never extracts anything else)."""
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(target, "w") as copy:
        for name in KERAS_MEMBERS:
            if name in source.namelist():
                copy.writestr(name, source.read(name))


def _class_allowed(entry: dict) -> str | None:
    """Return why a serialized object is refused, or None if it is allowed."""
    class_name, module = entry.get("class_name"), entry.get("module")
    registered = entry.get("registered_name")
    if not isinstance(class_name, str):
        return f"class_name {short(class_name)} is not a string"
    if module is not None and not isinstance(module, str):
        return f"module {short(module)} of '{class_name}' is not a string"
    if registered is not None and not isinstance(registered, str):
        return f"registered_name {short(registered)} of '{class_name}' is not a string"
    if class_name in DENIED_CLASSES:
        return f"'{class_name}' can run arbitrary code"
    if class_name in DATA_MARKERS:
        return None
    if class_name in MODEL_CLASSES and (module is None or module in ALLOWED_MODULES):
        return None
    if isinstance(registered, str) and registered.startswith(("quantizeml>", "quantizeml_v2>")):
        obj = keras.saving.get_registered_object(registered)
        if obj is None or not obj.__module__.startswith("quantizeml."):
            return f"'{registered}' is not a quantizeml class"
        return None
    if module is None:
        candidates = list(ALLOWED_MODULES.values())
    elif module in ALLOWED_MODULES:
        candidates = [ALLOWED_MODULES[module]]
    else:
        return f"module {module!r} is not allowed"
    for candidate in candidates:
        if isinstance(getattr(candidate, class_name, None), type):
            return None
    return f"'{class_name}' is not a built-in class of {module or 'keras'}"


def check_config_allowlist(config, where: str) -> None:
    """Refuse configs that name anything outside Keras built-ins and quantizeml classes, and
    functional graphs with nodes not connected to the outputs.

    Raises:
        UnsafeModelError: listing every refused object at once.
        ModelFormatError: a config whose structure is malformed (see ``validate_model_config``).
    """
    refused, stack = [], [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "class_name" in item:
                reason = _class_allowed(item)
                if reason is not None:
                    label = item.get("config", {}).get("name") if isinstance(
                        item.get("config"), dict) else None
                    refused.append(f"{reason}{f' (layer {label!r})' if label else ''}")
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    if not refused:  # the structure is read only once nothing unsafe is named
        refused = _dead_nodes(validate_model_config(config, where), where)
    if refused:
        raise UnsafeModelError(f"{where}: refused before loading: " + "; ".join(
            dict.fromkeys(refused)) + ". Only Keras built-in layers and quantizeml classes load.")


def check_layer_sizes(config, where: str) -> None:
    """Refuse a ``.keras`` config whose layers (Keras or quantizeml classes) would create more
    than ``MAX_LAYER_WEIGHTS`` weights on their recorded build shape, before Keras allocates.

    Raises:
        ModelFormatError: naming the layer, the shape and the count.
    """
    from ..ir import MAX_LAYER_WEIGHTS, _weight_count
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        stack.extend(item.values())
        build, layer = item.get("build_config"), item.get("config")
        if not (isinstance(item.get("class_name"), str) and isinstance(build, dict)
                and isinstance(layer, dict) and isinstance(build.get("input_shape"), list)):
            continue
        class_name = item["class_name"].removeprefix("Quantized")
        shape = tuple(build["input_shape"])
        try:
            if shape and isinstance(shape[0], list):  # several inputs (Add): per-channel shifts
                count = 3 * max((int(s[-1]) for s in shape if s and s[-1] is not None),
                                default=0)
            else:
                count = _weight_count(class_name, layer, shape)
        except (TypeError, ValueError, OverflowError) as err:
            raise ModelFormatError(f"{where}: layer {short(layer.get('name'))} "
                                   f"({item['class_name']}): build shape {short(shape)} or "
                                   f"config sizes are not integers: {err}") from err
        if count > MAX_LAYER_WEIGHTS:
            raise ModelFormatError(f"{where}: layer {short(layer.get('name'))} "
                                   f"({item['class_name']}) would create {count} weights on "
                                   f"input shape {short(shape)}; the limit is "
                                   f"{MAX_LAYER_WEIGHTS} (1 GiB of float32).")


def _dead_nodes(config: dict, where: str) -> list[str]:
    """Layers of a (structurally validated) functional config not connected to its outputs."""
    if config.get("output_layers") is None:
        return []
    by_name = {entry.get("name") or entry.get("config", {}).get("name"): entry
               for entry in config["layers"]}
    reached, stack = set(), endpoint_names(config["output_layers"], where)
    while stack:
        name = stack.pop()
        if name in reached or name not in by_name:
            continue
        reached.add(name)
        stack.extend(inbound_names(by_name[name], where))
    return [f"layer {name!r} is not connected to the model outputs" for name in by_name
            if name not in reached]

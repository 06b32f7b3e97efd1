"""Safe reading of model files: path checks, magic sniffing, ``.keras`` zip + config allowlist.

Nothing here imports, calls or deserializes anything named by a file: configs are JSON checked
against an allowlist before Keras ever sees them.
"""
from __future__ import annotations

import io
import json
import os
import stat
import zipfile

import keras

from ..errors import ModelFormatError, UnsafeModelError

MAX_FILE_BYTES = 2 * 1024**3
MAX_UNCOMPRESSED_BYTES = 4 * 1024**3
MAX_CONFIG_BYTES = 64 * 1024**2
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


def open_keras_zip(data: bytes, where: str) -> dict:
    """Validate a ``.keras`` archive in memory and return its parsed ``config.json``.

    Raises:
        UnsafeModelError: member names with '..', absolute paths or symlinks.
        ModelFormatError: bad zip/CRC, missing members, zip bomb, bad JSON.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise ModelFormatError(f"{where} is not a valid .keras archive (truncated or corrupted "
                               f"zip: {err}).") from err
    total = 0
    for member in members:
        member_name = member.filename
        if member_name.startswith(("/", "\\")) or ".." in member_name.replace("\\", "/").split(
                "/") or (len(member_name) > 1 and member_name[1] == ":"):
            raise UnsafeModelError(f"{where}: archive member {member_name!r} escapes the archive.")
        if stat.S_ISLNK(member.external_attr >> 16):
            raise UnsafeModelError(f"{where}: archive member {member_name!r} is a symlink.")
        total += member.file_size
    if total > MAX_UNCOMPRESSED_BYTES:
        raise ModelFormatError(f"{where}: archive expands to {total} bytes (limit "
                               f"{MAX_UNCOMPRESSED_BYTES}); refusing a possible zip bomb.")
    names = {member.filename for member in members}
    missing = [n for n in ("config.json", "model.weights.h5") if n not in names]
    if missing:
        raise ModelFormatError(f"{where}: archive lacks {', '.join(missing)}; not a Keras 3 "
                               ".keras file.")
    try:
        bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise ModelFormatError(f"{where}: corrupted archive: {err}.") from err
    if bad is not None:
        raise ModelFormatError(f"{where}: CRC check failed for member {bad!r}.")
    if archive.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
        raise ModelFormatError(f"{where}: config.json is larger than {MAX_CONFIG_BYTES} bytes.")
    metadata = _json(archive.read("metadata.json"), where, "metadata.json") \
        if "metadata.json" in names else {}
    version = str(metadata.get("keras_version", "3"))
    if not version.split(".")[0].isdigit() or int(version.split(".")[0]) > 3:
        raise ModelFormatError(f"{where}: written by Keras {version}; this build reads Keras <= 3 "
                               "files.")
    return _json(archive.read("config.json"), where, "config.json")


def _json(raw: bytes, where: str, member: str):
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFormatError(f"{where}: {member} is not valid JSON: {err}.") from err


def _class_allowed(entry: dict) -> str | None:
    """Return why a serialized object is refused, or None if it is allowed."""
    class_name, module = entry.get("class_name"), entry.get("module")
    registered = entry.get("registered_name")
    if not isinstance(class_name, str):
        return f"class_name {class_name!r} is not a string"
    if class_name in DENIED_CLASSES:
        return f"'{class_name}' can run arbitrary code"
    if class_name in DATA_MARKERS:
        return None
    if class_name in MODEL_CLASSES and (module is None or module in ALLOWED_MODULES):
        return None
    if isinstance(registered, str) and registered.startswith("quantizeml>"):
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
    inner = config.get("config", {}) if isinstance(config, dict) else {}
    refused.extend(_dead_nodes(inner))
    if refused:
        raise UnsafeModelError(f"{where}: refused before loading: " + "; ".join(
            dict.fromkeys(refused)) + ". Only Keras built-in layers and quantizeml classes load.")


def _dead_nodes(config: dict) -> list[str]:
    from ..ir import _inbound_names
    layers = config.get("layers") if isinstance(config, dict) else None
    outputs = config.get("output_layers") if isinstance(config, dict) else None
    if not isinstance(layers, list) or outputs is None:
        return []
    if outputs and isinstance(outputs[0], str):
        outputs = [outputs]
    by_name = {entry.get("name") or entry.get("config", {}).get("name"): entry
               for entry in layers if isinstance(entry, dict)}
    reached, stack = set(), [out[0] for out in outputs if isinstance(out, (list, tuple))]
    while stack:
        name = stack.pop()
        if name in reached or name not in by_name:
            continue
        reached.add(name)
        stack.extend(_inbound_names(by_name[name]))
    return [f"layer {name!r} is not connected to the model outputs" for name in by_name
            if name not in reached]

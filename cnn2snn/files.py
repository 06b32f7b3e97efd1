"""Reading model files safely: legacy Keras 2 `.h5` and Keras 3 `.keras`, never executing code.

`load_model_file` uses quantizeml's safe loader (`quantizeml.models.load_model`: path and magic
checks, in-memory zip with caps, config allowlist, dead-node check, own h5py reader). When that
reader cannot express a legacy `.h5` model as a quantizable chain (e.g. it holds an LSTM), the
file is read here instead — configuration parsed and allowlisted first, then Keras' legacy HDF5
loader — so `cnn2snn-check` can still report every unsupported layer.
"""
from __future__ import annotations

import os
import re
import tempfile

from .errors import Issue, ModelFileError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"

_UNSAFE_CLASSES = {"Lambda", "TFSMLayer", "JaxLayer", "FlaxLayer", "TorchModuleWrapper",
                   "TFOpLambda", "SlicingOpLambda", "function", "__lambda__", "__function__"}
_MODEL_CLASSES = {"Sequential", "Functional", "Model"}
_SPECIAL = {"__keras_tensor__", "__tensor__", "__numpy__", "__tuple__", "__bytes__", "__slice__",
            "__ellipsis__", "DTypePolicy", "FloatDTypePolicy"}
_OBJECT_MODULES = ("keras.initializers", "keras.regularizers", "keras.constraints")


class UnsafeModelError(ModelFileError):
    """A model file asks to run code or to load classes outside the allowlist."""


class UnsupportedFileLayers(ModelFileError):
    """A model file holds layers Keras 3 cannot rebuild; `.issues` names them (for the report) and
    `.config` is the file's allowlisted configuration (None when it could not be read safely)."""

    def __init__(self, messages, detail, config=None):
        self.issues = [_issue_from_message(m) for m in messages]
        self.config = config
        super().__init__(f"{detail} Unsupported layers: {'; '.join(map(str, messages))}")


def _issue_from_message(message) -> Issue:
    found = re.search(r"Layer '([^']+)' \(([^)]+)\)", str(message))
    layer, cls = (found.group(1), found.group(2)) if found else ("model", None)
    return Issue(layer, "unsupported_layer", str(message), cls, "Keras built-in layers with an "
                 "Akida 1.0 pattern", "remove the layer or replace it with Conv2D, "
                 "SeparableConv2D, Dense, MaxPooling2D, GlobalAveragePooling2D or ReLU (the rest "
                 "of the model is checked once it can be read).")


def _allowed_layers():
    import keras
    import quantizeml.layers as qlayers
    names = {n for n in dir(keras.layers) if n[:1].isupper()} - _UNSAFE_CLASSES
    return names | {n for n in dir(qlayers) if n.startswith(("Quantized", "InputQuantizer",
                                                               "Dequantizer"))}


def check_config(config, source: str) -> None:
    """Raises UnsafeModelError listing every class or module outside the allowlist.

    Args:
        config: the parsed model configuration (dict).
        source: the file name, for messages.
    """
    allowed, bad = _allowed_layers(), []

    def walk(node):
        if isinstance(node, dict):
            cls, module = node.get("class_name"), node.get("module")
            if isinstance(cls, str):
                inner = node.get("config")
                name = inner.get("name") if isinstance(inner, dict) else None
                where = f"{cls} '{name}'" if isinstance(name, str) else cls
                if cls in _UNSAFE_CLASSES:
                    bad.append(f"{where} (code execution)")
                elif module is not None and not _module_ok(module, cls):
                    bad.append(f"{where} from module '{module}'")
                elif module is None and cls not in allowed | _MODEL_CLASSES | _SPECIAL \
                        and not _is_object(cls):
                    bad.append(f"{where} (unknown class)")
                elif module is not None and module.startswith("keras.layers") and \
                        cls not in allowed:
                    bad.append(f"{where} (unknown class)")
            for key, value in node.items():
                if isinstance(value, str) and "unsafe_deserialization" in value:
                    bad.append(f"{key}: '{value}'")
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    if bad:
        raise UnsafeModelError(f"{source}: refused to load {len(bad)} object(s) outside the "
                               f"allowlist of Keras built-in and quantizeml classes: "
                               f"{'; '.join(bad[:10])}{' ...' if len(bad) > 10 else ''}. "
                               "Hint: rebuild the model with built-in layers only (no Lambda "
                               "or custom code), or register the class with quantizeml.")


def _is_object(cls):
    import keras
    return any(hasattr(mod, cls) for mod in (keras.initializers, keras.regularizers,
                                             keras.constraints))


def _module_ok(module, cls: str) -> bool:
    if not isinstance(module, str):
        return False
    if module.startswith("quantizeml.layers"):
        return True
    if module == "keras":
        return cls in _MODEL_CLASSES | _SPECIAL
    if module in ("keras.layers", "keras.models", "keras.src.models.functional",
                  "keras.src.models.sequential", "keras.src.models.model"):
        return True
    return module in _OBJECT_MODULES and _is_object(cls)


def _check_path(path: str) -> bytes:
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: no such file. Hint: check the path.")
    if os.path.isdir(path):
        hint = ("a TensorFlow SavedModel is not a Keras model file; re-save it as .keras or .h5"
                if os.path.exists(os.path.join(path, "saved_model.pb")) else "pass a file")
        raise ModelFileError(f"{path}: is a directory, not a model file. Hint: {hint}.")
    if not os.path.isfile(path):
        raise ModelFileError(f"{path}: is not a regular file (FIFO, device...). Hint: pass a "
                             ".h5 or .keras file.")
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as err:
        raise ModelFileError(f"{path}: cannot be read ({err.strerror}).") from err
    if not head:
        raise ModelFileError(f"{path}: the file is empty (0 bytes).")
    return head


def load_model_file(path):
    """Loads a Keras model from a legacy `.h5` or a `.keras` file, refusing unsafe content.

    Args:
        path: the file path.

    Returns:
        The Keras 3 model.

    Raises:
        ModelFileError: missing, empty, truncated, mislabelled or corrupt file, weights-only HDF5.
        UnsafeModelError: Lambda layers, functions, modules or classes outside the allowlist.
    """
    from quantizeml.errors import ModelFormatError, QuantizationError, QuantizeMLError
    from quantizeml.errors import UnsafeModelError as QuantizeUnsafe
    from quantizeml.models import load_model
    try:
        return load_model(path)
    except QuantizeUnsafe as err:
        raise UnsafeModelError(str(err)) from err
    except ModelFormatError as err:
        raise ModelFileError(str(err)) from err
    except QuantizationError as err:
        # A readable .h5 whose layers are not a quantizable chain: read it for the report.
        try:
            return read_model_file(path)
        except UnsafeModelError:
            raise
        except ModelFileError as inner:
            raise UnsupportedFileLayers(err.issues, str(inner),
                                        getattr(inner, "config", None)) from err
    except QuantizeMLError as err:
        raise ModelFileError(str(err)) from err


def load_model_for_check(path):
    """`load_model_file`, or, for a safe file Keras cannot rebuild whole (e.g. a tf-keras LSTM),
    its layers rebuilt one by one (`config_chain.ConfigChain`) so that every other layer is still
    checked.

    Raises:
        ModelFileError, UnsafeModelError: as `load_model_file`; UnsupportedFileLayers when not
            even the configuration can be read.
    """
    try:
        return load_model_file(path)
    except UnsupportedFileLayers as err:
        if err.config is None:
            raise
        from .config_chain import chain_from_config
        return chain_from_config(err.config, os.path.basename(os.fspath(path)))


def read_model_file(path):
    """Loads a Keras model from a legacy `.h5` or a `.keras` file, refusing unsafe content.

    Args:
        path: the file path.

    Returns:
        The Keras 3 model.

    Raises:
        ModelFileError: missing, empty, truncated, mislabelled or corrupt file, weights-only HDF5.
        UnsafeModelError: Lambda layers, functions, modules or classes outside the allowlist.
    """
    path = os.fspath(path)
    head = _check_path(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".h5", ".hdf5", ".keras"):
        raise ModelFileError(f"{path}: extension '{ext}' is not a Keras model file; allowed: "
                             ".h5 (legacy Keras 2), .keras.")
    expected = ZIP_MAGIC if ext == ".keras" else HDF5_MAGIC
    if head[:len(expected)] != expected:
        raise ModelFileError(f"{path}: the content is not {'a zip' if ext == '.keras' else 'HDF5'}"
                             f" file despite its '{ext}' extension (corrupt or renamed).")
    import quantizeml.layers  # noqa: F401  (registers the quantized classes)
    return _load_keras(path) if ext == ".keras" else _load_h5(path)


def _quantizeml_checked(read):
    """Run a quantizeml file reader, turning its file errors into ours."""
    from quantizeml.errors import ModelFormatError
    from quantizeml.errors import UnsafeModelError as QuantizeUnsafe
    try:
        return read()
    except QuantizeUnsafe as err:
        raise UnsafeModelError(str(err)) from err
    except ModelFormatError as err:
        raise ModelFileError(str(err)) from err


def _load_keras(path):
    import keras
    from quantizeml.models.files import (check_layer_sizes, open_keras_zip, read_model_file,
                                         write_keras_members)
    _, data, _ = _quantizeml_checked(lambda: read_model_file(path, where=path))
    # Same in-memory archive checks (member count, sizes, CRC, JSON limits) as quantizeml.
    config = _quantizeml_checked(lambda: open_keras_zip(data, path))
    _check_model_config(config, path)
    _quantizeml_checked(lambda: check_layer_sizes(config, path))  # before Keras allocates
    with tempfile.TemporaryDirectory() as folder:
        copy = os.path.join(folder, "model.keras")
        write_keras_members(data, copy)  # Keras sees the checked members only
        try:
            return keras.saving.load_model(copy, compile=False, safe_mode=True)
        except Exception as err:  # Keras raises many types on bad content; report, never crash.
            raise ModelFileError(f"{path}: Keras could not rebuild the model "
                                 f"({type(err).__name__}: {str(err)[:300]}).") from err


def _check_model_config(config, path):
    from quantizeml.schema import validate_model_config
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise ModelFileError(f"{path}: the model configuration has no 'class_name'/'config'.")
    check_config(config, path)
    _quantizeml_checked(lambda: validate_model_config(config, path))


def _check_h5_sizes(config, path):
    """Refuse a legacy config whose layers would allocate more than quantizeml's per-layer cap
    when Keras builds them (before it reads the weights): channels are followed along the chain;
    layers quantizeml does not rebuild (LSTM ...) are bounded 8x more generously."""
    from quantizeml.ir import MAX_LAYER_WEIGHTS
    known = ("Conv2D", "Dense", "SeparableConv2D", "DepthwiseConv2D")
    layers = config.get("config", {}).get("layers", []) if isinstance(config, dict) else []
    channels = 1
    for entry in layers if isinstance(layers, list) else []:
        layer = entry.get("config") if isinstance(entry, dict) else None
        if not isinstance(layer, dict):
            continue
        shape = layer.get("batch_input_shape") or layer.get("batch_shape")
        if isinstance(shape, list) and shape and isinstance(shape[-1], int):
            channels = max(1, shape[-1])
        out = layer.get("filters", layer.get("units"))
        if not isinstance(out, int) or isinstance(out, bool):
            continue
        kernel = layer.get("kernel_size", 1)
        kernel = kernel if isinstance(kernel, list) else [kernel, kernel]
        area = 1
        for k in kernel:
            area *= k if isinstance(k, int) and k > 0 else 1
        out = max(out, 1)
        if entry.get("class_name") in known:
            count = (area + 1) * channels * out
        else:  # recurrent layers also hold out x out weights, per gate
            count = 8 * (area * channels + out) * out
        if count > MAX_LAYER_WEIGHTS:
            raise ModelFileError(f"{path}: layer {layer.get('name')!r} ({entry.get('class_name')})"
                                 f" would create about {count} weights from its config; the "
                                 f"limit is {MAX_LAYER_WEIGHTS} (1 GiB of float32).")
        channels = out


def _load_h5(path):
    import h5py
    from quantizeml.models.h5 import H5_ERRORS, read_h5_config, read_h5_weights
    try:
        with h5py.File(path, "r") as handle:
            config = _quantizeml_checked(lambda: read_h5_config(handle, path))
            # Same weight checks as quantizeml (no links to other files, size caps).
            _quantizeml_checked(lambda: read_h5_weights(handle, path))
    except ModelFileError:
        raise
    except H5_ERRORS as err:
        raise ModelFileError(f"{path}: unreadable HDF5 file ({err}).") from err
    _check_model_config(config, path)
    _check_h5_sizes(config, path)
    from keras.src.legacy.saving import legacy_h5_format
    try:
        return legacy_h5_format.load_model_from_hdf5(path, compile=False)
    except Exception as err:  # Keras raises many types on bad content; report, never crash.
        error = ModelFileError(f"{path}: Keras could not rebuild the legacy model "
                               f"({type(err).__name__}: {str(err)[:300]}).")
        error.config = config  # allowlisted: the checker can still read it layer by layer
        raise error from err

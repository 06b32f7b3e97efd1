"""cnn2snn: convert quantized Keras models (quantizeml) to akida_core models, checking the target.

Example:
    >>> import cnn2snn
    >>> issues = cnn2snn.check_model_compatibility(keras_model)       # never raises
    >>> akida_model = cnn2snn.convert(quantized_keras_model, "model.fbz")
    >>> outputs = akida_model.forward(cnn2snn.akida_inputs(quantized_keras_model, x))

Attributes are imported lazily so that `cnn2snn-check --help` does not load TensorFlow.
"""
import importlib

_EXPORTS = {
    "convert": ".conversion", "check_model_compatibility": ".compatibility",
    "akida_inputs": ".quantized", "Cnn2snnError": ".errors", "ConversionError": ".errors",
    "Issue": ".errors", "ModelFileError": ".errors", "ConversionWarning": ".errors", "list_patterns": ".patterns",
    "registered_patterns": ".patterns", "AkidaVersion": ".versions",
    "get_akida_version": ".versions", "set_akida_version": ".versions",
    "load_model_file": ".files", "UnsafeModelError": ".files",
    "AKD1000": "akida_core.hardware", "TARGETS": "akida_core.hardware",
    "HardwareTarget": "akida_core.hardware", "get_target": "akida_core.hardware",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cnn2snn' has no attribute {name!r}")
    module = _EXPORTS[name]
    value = getattr(importlib.import_module(module, __name__ if module.startswith(".") else None),
                    name)
    globals()[name] = value
    return value


def __dir__():
    return __all__

"""cnn2snn: convert quantized Keras models (quantizeml) to akida_core models, checking the target.

Example:
    >>> import cnn2snn
    >>> issues = cnn2snn.check_model_compatibility(keras_model)       # never raises
    >>> akida_model = cnn2snn.convert(quantized_keras_model, "model.fbz")
"""
from akida_core.hardware import AKD1000, TARGETS, HardwareTarget, get_target

from .compatibility import check_model_compatibility
from .convert import convert
from .quantized import akida_inputs
from .errors import Cnn2snnError, ConversionError, Issue, ModelFileError
from .patterns import list_patterns, registered_patterns
from .versions import AkidaVersion, get_akida_version, set_akida_version

__all__ = ["convert", "akida_inputs", "AKD1000", "TARGETS", "HardwareTarget", "get_target", "check_model_compatibility",
           "Cnn2snnError", "ConversionError", "Issue", "ModelFileError", "list_patterns",
           "registered_patterns", "AkidaVersion", "get_akida_version", "set_akida_version"]

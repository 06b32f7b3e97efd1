"""Exception types of akida_core.

Every error raised because of a user's input is one of these, so callers (and the CLI) can tell a
bad model, a bad file or a bad input array apart from a bug.
"""


class AkidaError(Exception):
    """Base class of every akida_core error."""


class LayerParameterError(AkidaError, ValueError):
    """A layer parameter or variable has a value the layer cannot take."""


class ModelStructureError(AkidaError, ValueError):
    """Layers cannot be assembled into a model in this order or with these shapes."""


class InputDataError(AkidaError, ValueError):
    """An input array given to forward/predict/evaluate has the wrong type, shape or values."""


class InputFileError(InputDataError):
    """An inputs file (.npy) cannot be read: missing, not a regular file, empty, truncated, not .npy."""


class ModelFormatError(AkidaError, ValueError):
    """A .fbz file (or a model description) is malformed, truncated or corrupted."""


class VersionError(ModelFormatError):
    """A .fbz file was written by a newer format version than this build can read."""


class MappingError(AkidaError, ValueError):
    """A model cannot be mapped on a device as asked (e.g. `hw_only=True` with an unmappable layer)."""


class LayerParameterTypeError(LayerParameterError, TypeError):
    """A layer parameter has the wrong type (e.g. a tuple where Akida 2.0 takes a plain int)."""


class LearningError(AkidaError, RuntimeError):
    """Edge learning used in the wrong state (e.g. fit or add_classes before compile)."""

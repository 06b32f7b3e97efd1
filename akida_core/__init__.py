"""akida_core: an exact, integer-only runtime for Akida 1.0 models (numpy only)."""
from .enums import LayerType, Padding, PoolType
from .errors import (AkidaError, InputDataError, LayerParameterError, ModelFormatError,
                     ModelStructureError, VersionError)

__version__ = "0.1.0"

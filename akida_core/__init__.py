"""akida_core: an exact, integer-only runtime for Akida 1.0 models (numpy only).

The API mirrors MetaTF's `akida` package: replace `import akida` with `import akida_core as akida`.
"""
from .enums import LayerType, Padding, PoolType
from .errors import (AkidaError, InputDataError, LayerParameterError, ModelFormatError,
                     ModelStructureError, VersionError)
from .layers import (Convolutional, FullyConnected, InputConvolutional, InputData, Layer,
                     SeparableConvolutional)
from .model import Model
from .learning import AkidaUnsupervised, LearningError, LearningParameterError  # registers .fbz state

__version__ = "0.1.0"

__all__ = ["Model", "Layer", "InputData", "InputConvolutional", "Convolutional", "SeparableConvolutional",
           "FullyConnected", "Padding", "PoolType", "LayerType", "AkidaError", "InputDataError",
           "LayerParameterError", "ModelFormatError", "ModelStructureError", "VersionError", "__version__",
           "AkidaUnsupervised", "LearningError", "LearningParameterError"]

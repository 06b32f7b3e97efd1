"""akida_core: an exact, integer-only runtime for Akida 1.0 and Akida 2.0 models (numpy only).

The API mirrors MetaTF's `akida` package: replace `import akida` with `import akida_core as akida`.
The packages, one per concern (docs/architecture.md draws the tree): `kernels` (integer maths of both
generations), `layers` (`v1/`, `v2/` side by side), `model` (the graph Model, inference, summary),
`io` (.fbz), `hardware` (one constraints table per device), `mapping` (devices and Model -> sequences),
`learning` (Akida 1.0 edge learning) and `cli`. The old flat module paths still import (`_legacy`).
"""
from . import _legacy
from .enums import ActivationType, LayerType, Padding, PoolType
from .errors import (AkidaError, InputDataError, LayerParameterError, ModelFormatError,
                     ModelStructureError, VersionError)
from .layers import (Convolutional, FullyConnected, InputConvolutional, InputData, Layer,
                     SeparableConvolutional)
from .layers.v2 import (Add, BufferTempConv, Concatenate, Conv2D, Conv2DTranspose, Dense1D, Dequantizer,
                        DepthwiseBufferTempConv, DepthwiseConv2D, DepthwiseConv2DTranspose, InputConv2D, Quantizer,
                        StatefulRecurrent)
from .model import Model
# --- devices and mapping (issue 6); importing mapping.state registers its summary/state/estimates hooks ---
from .mapping import state as _mapping_state  # noqa: F401
from .mapping.devices import (AKD1000, AKD1500, AKD1500_v1, NP, FPGA_v2, Device, HwVersion, IpVersion, Mesh,
                              NSoC_v1, NSoC_v2, TwoNodesIP, TwoNodesIP_v1, TwoNodesIPv1, devices)
from .mapping.factory import create_device
from .errors import MappingError
from .mapping import BackendType, MapMode, Sequence
from .mapping import soc
# --- end devices and mapping ---
# --- Akida 2.0 devices and mapping (issue 15); importing mapping.v2.state registers its summary/state hooks ---
from .mapping.v2 import state as _mapping_state_v2  # noqa: F401
from .mapping.devices import Pico_FPGA
from .mapping.devices_v2 import FourNodesIPv2, PicoIP, SixNodesIPv2, SramSize, TwelveNodesIPv2, TwoNodesIPv2
from .mapping.v2.mapper import LayerMappingError, MapConstraints, compute_min_device
# --- end Akida 2.0 devices and mapping ---
from .learning import AkidaUnsupervised, LearningError, LearningParameterError  # registers .fbz state

__version__ = "0.1.0"
_legacy.install(__name__)

__all__ = ["Model", "Layer", "InputData", "InputConvolutional", "Convolutional", "SeparableConvolutional",
           "FullyConnected", "Padding", "PoolType", "LayerType", "AkidaError", "InputDataError",
           "LayerParameterError", "ModelFormatError", "ModelStructureError", "VersionError", "__version__",
           "AkidaUnsupervised", "LearningError", "LearningParameterError"]
__all__ += ["ActivationType", "Add", "BufferTempConv", "Concatenate", "Conv2D", "Conv2DTranspose", "Dense1D",  # v2
            "Dequantizer", "DepthwiseBufferTempConv", "DepthwiseConv2D", "DepthwiseConv2DTranspose", "InputConv2D",
            "Quantizer", "StatefulRecurrent"]
__all__ += ["AKD1000", "AKD1500", "AKD1500_v1", "NP", "FPGA_v2", "Device", "HwVersion", "IpVersion", "Mesh",  # mapping
            "NSoC_v1", "NSoC_v2", "TwoNodesIP", "TwoNodesIP_v1", "TwoNodesIPv1", "create_device", "devices",
            "MappingError", "BackendType", "MapMode", "Sequence", "soc"]
__all__ += ["FourNodesIPv2", "LayerMappingError", "MapConstraints", "PicoIP", "Pico_FPGA", "SixNodesIPv2",  # v2 mapping
            "SramSize", "TwelveNodesIPv2", "TwoNodesIPv2", "compute_min_device"]

"""Model-level API: quantize, calibrate, dump_config, load_model, save_model."""
from .io import load_model, load_spec, save_model
from .quantize import calibrate, dump_config, quantize
from ..v2 import QuantizationParams

# QuantizationParams is MetaTF's (8-bit per-axis defaults), the same class as
# quantizeml.QuantizationParams; the Akida 1.0 recipe is quantizeml.Akida1QuantizationParams.
__all__ = ["quantize", "calibrate", "dump_config", "load_model", "save_model", "load_spec",
           "QuantizationParams"]

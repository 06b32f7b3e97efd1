"""Model-level API: quantize, calibrate, dump_config, load_model, save_model."""
from .io import load_model, load_spec, save_model
from .quantize import calibrate, dump_config, quantize
from ..v2 import QuantizationParams

# QuantizationParams here is MetaTF's (Akida 2.0 defaults: 8-bit per-axis); the Akida 1.0 recipe is
# quantizeml.QuantizationParams. quantize() runs the scheme of the settings it is given.
__all__ = ["quantize", "calibrate", "dump_config", "load_model", "save_model", "load_spec",
           "QuantizationParams"]

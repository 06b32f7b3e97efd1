"""Model-level API: quantize, calibrate, dump_config, load_model, save_model."""
from .io import load_model, load_spec, save_model
from .quantize import calibrate, dump_config, quantize

__all__ = ["quantize", "calibrate", "dump_config", "load_model", "save_model", "load_spec"]

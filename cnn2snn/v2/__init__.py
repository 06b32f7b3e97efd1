"""Conversion of Akida 2.0 quantized Keras models (quantizeml.v2) to akida_core Akida 2.0 models."""
from .blocks import is_akida2_model, split_blocks
from .conversion import convert_v2, plan

__all__ = ["convert_v2", "is_akida2_model", "plan", "split_blocks"]

"""Conversion of Akida 2.0 quantized Keras models (quantizeml.v2) to akida_core Akida 2.0 models."""
from .blocks import float_tail, is_akida2_model, split_blocks
from .conversion import convert_v2, float_tail_issue, plan

__all__ = ["convert_v2", "float_tail", "float_tail_issue", "is_akida2_model", "plan",
           "split_blocks"]

"""Akida 2.0 merges and model boundaries: Add, Concatenate, Quantizer, Dequantizer."""
from __future__ import annotations

import numpy as np

from akida_core import Add, Concatenate, Dequantizer, LayerType, Quantizer

from ..base import Pattern, one, register
from .neural import BlockIssue


def build_add(block, context):
    """Add: alignment shifts and output shift of the QuantizedAdd, 32-bit buffer."""
    add = block.layers[0]
    layer = Add(output_bits=int(add.output_bits), buffer_bits=32, post_op_buffer_bits=32,
                name=block.name)
    return layer, {"a_shift": add.a_shift.numpy().astype(np.uint8),
                   "b_shift": add.b_shift.numpy().astype(np.uint8),
                   "output_shift": add.output_shift.numpy().astype(np.int8)}


def build_concatenate(block, context):
    """Concatenate: values unchanged, no variables."""
    return Concatenate(name=block.name), {}


#: Bits the Akida 2.0 Quantizer outputs (akida2-layers.md §1).
QUANTIZER_BITS = (4, 8)


def build_quantizer(block, context):
    """Quantizer: ``scales = 2**f`` per channel (float32), the InputQuantizer's bits and sign, its
    zero points (uint8; 0 when signed)."""
    quantizer = block.layers[0]
    if int(quantizer.bits) not in QUANTIZER_BITS:
        dtype = f"{'' if quantizer.signed else 'u'}int{int(quantizer.bits)}"
        raise BlockIssue("input_bits", f"Layer '{quantizer.name}' (InputQuantizer): "
                         f"{int(quantizer.bits)}-bit {'signed' if quantizer.signed else 'unsigned'}"
                         f" codes (input_dtype='{dtype}'); the Akida 2.0 Quantizer outputs 4 or 8 "
                         "bits.", int(quantizer.bits), list(QUANTIZER_BITS),
                         "quantize with QuantizationParams(input_dtype='uint8') or 'int8'.")
    layer = Quantizer(input_shape=tuple(int(d) for d in context["input_shape"]),
                      output_bits=int(quantizer.bits), output_signed=bool(quantizer.signed),
                      name=block.name)
    scales = (2.0 ** quantizer.frac_bits.numpy()).astype(np.float32)
    return layer, {"scales": scales,
                   "zero_points": quantizer.zero_point.numpy().astype(np.uint8)}


def build_dequantizer(block, context):
    """Dequantizer: the Keras scales (float32 per channel)."""
    return Dequantizer(name=block.name), {
        "scales": block.layers[0].scales.numpy().astype(np.float32)}


for _name, _kind, _produces, _build, _text, _first in (
        ("v2-add", "add", LayerType.Add, build_add, "Add of two quantized tensors", False),
        ("v2-concatenate", "concatenate", LayerType.Concatenate, build_concatenate,
         "Concatenate of two quantized tensors (channels)", False),
        ("v2-input-quantizer", "input_quantizer", LayerType.Quantizer, build_quantizer,
         "InputQuantizer of float inputs", True),
        ("v2-dequantizer", "dequantizer", LayerType.Dequantizer, build_dequantizer,
         "final Dequantizer", False)):
    register(Pattern(name=_name, sequence=(one("layer", _kind),), produces=_produces,
                     build=_build, first_only=_first, description=_text, generation="v2"))

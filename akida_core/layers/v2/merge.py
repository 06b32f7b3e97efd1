"""Add and Concatenate: the Akida 2.0 layers with two inbounds (skip connections and branches)."""
import dataclasses

import numpy as np

from ...kernels import v2 as k2
from ...enums import LayerType
from ...errors import ModelStructureError
from .base import LayerV2, layer_output_dtype, normalise, spec

MAX_ADD_INPUT_BITS = 8
"""Add refuses inbounds of more than 8 bits (akida2-layers.md §1)."""


@dataclasses.dataclass(frozen=True)
class AddParams:
    """Parameters of Add (post_op_buffer_bits is accepted and has no effect)."""

    output_bits: int = 8
    buffer_bits: int = 32
    post_op_buffer_bits: int = 32
    name: str = ""

    def __post_init__(self):
        normalise(self, bits=("output_bits", "buffer_bits", "post_op_buffer_bits"))


class Add(LayerV2):
    """Sum of two inbounds of the same shape, each shifted and saturated to buffer_bits.

    `a' = sat_bb(R(a, a_shift))`, `b' = sat_bb(R(b, b_shift))`, `out = sat_ob(R(sat_bb(a' + b'),
    output_shift))`: always signed (also for output_bits <= 4); int8 up to 8 bits, int32 above.
    """

    layer_type = LayerType.Add
    short_name = "Add"
    params_type = AddParams
    inbound_count = 2

    def __init__(self, output_bits=8, buffer_bits=32, post_op_buffer_bits=32, name=""):
        super().__init__(AddParams(output_bits, buffer_bits, post_op_buffer_bits, name))

    def _check_inbounds(self, name, inbounds):
        a, b = inbounds
        if tuple(a.output_dims) != tuple(b.output_dims):
            raise ModelStructureError(f"Add '{name}': All Add inputs should have the same output_size; "
                                      f"'{a.name}' gives {a.output_dims}, '{b.name}' gives {b.output_dims}")
        for lay in inbounds:
            if lay.output_bits > MAX_ADD_INPUT_BITS:
                raise ModelStructureError(f"Add '{name}': inbound '{lay.name}' outputs {lay.output_bits} bits; Add "
                                          f"takes at most {MAX_ADD_INPUT_BITS}-bit inputs")
        if not a.output_signed and not b.output_signed and self._params.output_bits > 31:
            raise ModelStructureError(f"Add '{name}': output_bits={self._params.output_bits} with two unsigned "
                                      "inbounds; at most 31 allowed")

    def _output_dims(self, input_dims):
        return tuple(input_dims)

    def _base_specs(self):
        c = self.input_dims[2]
        return {"a_shift": spec((c,), np.uint8), "b_shift": spec((c,), np.uint8),
                "output_shift": spec((c,), np.int8)}

    @property
    def output_signed(self):
        """As the vendor reports: signed for 5 bits or more (values are signed at any width)."""
        return self._params.output_bits > 4

    @property
    def output_dtype(self):
        """int8 up to 8 bits, int32 above."""
        return np.dtype(np.int8 if self._params.output_bits <= 8 else np.int32)

    def _prepare(self):
        super()._prepare()
        c = {name: k2.shift_multipliers(self._values[name]) for name in ("a_shift", "b_shift", "output_shift")}
        c["inputs_unshifted"] = not (np.any(c["a_shift"] != 1) or np.any(c["b_shift"] != 1))
        c["output_unshifted"] = bool(np.all(c["output_shift"] == 1))
        return c

    def _run(self, inputs):
        # float64 holds every value exactly: inputs of <= 8 bits shifted by <= 31 stay below 2**40.
        p, c = self._params, self._prepared()
        if p.buffer_bits >= 10 and c["inputs_unshifted"] \
                and all(x.dtype.itemsize == 1 for x in inputs):  # 8-bit sums fit: no buffer saturation
            total = inputs[0].astype(np.int16)  # then an int16 add: 30% faster than np.add(dtype=int16)
            total += inputs[1]
            if c["output_unshifted"]:
                return self._clip_to_output(total)
            a = total.astype(np.float64)
            k2.float_round_shift(a, c["output_shift"])
            return self._clip_to_output(a)
        a = self._shifted(inputs[0], c["a_shift"])
        a += self._shifted(inputs[1], c["b_shift"])
        k2.float_round_shift(k2.clip_inplace(a, p.buffer_bits), c["output_shift"])
        return self._clip_to_output(a)

    def _clip_to_output(self, values):
        """sat_ob (always signed) into the output dtype (integers or integer-valued floats; `values` is
        overwritten): the clip in place, then the cast, faster than numpy's casting clip."""
        bits = self._params.output_bits
        np.clip(values, -(1 << (bits - 1)), (1 << (bits - 1)) - 1, out=values)
        return values.astype(self.output_dtype)

    def _shifted(self, x, multipliers):
        """sat_bb(R(x, shift)) as float64."""
        values = x.astype(np.float64)
        if np.any(multipliers != 1):
            k2.float_round_shift(values, multipliers)
        return k2.clip_inplace(values, self._params.buffer_bits)


@dataclasses.dataclass(frozen=True)
class ConcatenateParams:
    """Parameters of Concatenate (only a name)."""

    name: str = ""

    def __post_init__(self):
        normalise(self)


class Concatenate(LayerV2):
    """Channel concatenation of two inbounds (first inbound's channels first); values unchanged."""

    layer_type = LayerType.Concatenate
    short_name = "Concatenate"
    params_type = ConcatenateParams
    inbound_count = 2

    def __init__(self, name=""):
        super().__init__(ConcatenateParams(name))

    def _check_inbounds(self, name, inbounds):
        a, b = inbounds
        if tuple(a.output_dims[:2]) != tuple(b.output_dims[:2]):
            raise ModelStructureError(f"Concatenate '{name}': inbounds must have the same first two dims; "
                                      f"'{a.name}' gives {a.output_dims}, '{b.name}' gives {b.output_dims}")
        if a.output_bits != b.output_bits or a.output_signed != b.output_signed:
            raise ModelStructureError(
                f"Concatenate '{name}': inbounds must have the same output_bits and signedness; '{a.name}' is "
                f"{a.output_bits}-bit {'signed' if a.output_signed else 'unsigned'}, '{b.name}' is "
                f"{b.output_bits}-bit {'signed' if b.output_signed else 'unsigned'}")
        if a.output_bits == 16:
            raise ModelStructureError(f"Concatenate '{name}': two 16-bit inputs crash the vendor runtime; use "
                                      f"8- or 32-bit outputs on '{a.name}' and '{b.name}'")
        self._inbound_bits = (a.output_bits, a.output_signed, layer_output_dtype(a))

    def _output_dims(self, input_dims):
        shapes = self._inbound_shapes
        return shapes[0][0], shapes[0][1], shapes[0][2] + shapes[1][2]

    def _base_specs(self):
        return {}

    @property
    def output_bits(self):
        """The inbounds' output_bits."""
        return self._inbound_bits[0]

    @property
    def output_signed(self):
        """The inbounds' signedness."""
        return self._inbound_bits[1]

    @property
    def output_dtype(self):
        """The first inbound's dtype."""
        return self._inbound_bits[2]

    def _run(self, inputs):
        return np.concatenate([inputs[0], inputs[1].astype(inputs[0].dtype, copy=False)], axis=3)

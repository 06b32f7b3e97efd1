"""What the Akida 2.0 layers share: parameter checks, exact-dtype variables, the POST pipeline.

A v2 layer is a frozen `Params` dataclass, a pure `output_shape(params, input_shapes)` and a
`LayerV2` subclass. Variables have one exact dtype and shape each (akida2-layers.md §2): assigning
another dtype or shape is refused naming the variable. Derived constants (the shifted bias, the ReLU
ceiling) are computed once per change of the variables, never per sample.
"""
import dataclasses

import numpy as np

from ...kernels import v2 as k2
from ...kernels import v2_affine as affine
from ...enums import ActivationType, IpVersion, Padding, PoolType
from ...errors import LayerParameterError, LayerParameterTypeError, ModelStructureError
from ..base import VariableSpec, as_enum, check_int, check_name
from ..layer import Layer

BITS_RANGE = (1, 32)


# --- parameter checks ---------------------------------------------------------------------------------

def owner_of(params):
    """'Conv2D 'name'' for messages."""
    return f"{type(params).__name__[:-len('Params')]} '{params.name}'"


def plain_int(owner, name, value, low=None, high=None):
    """An int (a tuple or a float raises LayerParameterTypeError: Akida 2.0 sizes are plain ints)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise LayerParameterTypeError(f"{owner}: {name}={value!r} must be a plain int (Akida 2.0 layers take "
                                      "square kernels, strides and pools as one int)")
    return check_int(owner, name, value, low, high)


def check_bits(owner, name, value):
    """output_bits, buffer_bits, post_op_buffer_bits are in 1..32."""
    value = plain_int(owner, name, value)
    if not BITS_RANGE[0] <= value <= BITS_RANGE[1]:
        raise LayerParameterError(f"{owner}: The {name} parameter must be between 1 and 32; got {value}")
    return value


def normalise(params, ints=(), bits=(), enums=()):
    """Validate fields of a frozen params in place: `ints` {name: (low, high)}, `bits` names, `enums` {name: type}."""
    owner = owner_of(params)
    check_name(params.name)
    for name, (low, high) in dict(ints).items():
        object.__setattr__(params, name, plain_int(owner, name, getattr(params, name), low, high))
    for name in bits:
        object.__setattr__(params, name, check_bits(owner, name, getattr(params, name)))
    for name, enum_type in dict(enums).items():
        object.__setattr__(params, name, as_enum(owner, name, enum_type, getattr(params, name)))
    return owner


def check_pool(params, owner):
    """pool_size -1 for NoPooling/Average, > 0 for Max; pool_stride -1 means pool_size, <= pool_size."""
    size = plain_int(owner, "pool_size", params.pool_size)
    stride = plain_int(owner, "pool_stride", params.pool_stride)
    if params.pool_type == PoolType.Max:
        if size <= 0:
            raise LayerParameterError(f"{owner}: Incoherent pooling parameters: pool_size={size} must be > 0 "
                                      "with PoolType.Max")
        stride = size if stride == -1 else stride
        if stride <= 0 or stride > size:
            raise LayerParameterError(f"{owner}: pool_stride={stride} must be in 1..pool_size={size} "
                                      "(-1 means pool_size)")
        if params.padding == Padding.SameUpper and size == 2:
            raise LayerParameterError(f"{owner}: pool_size=2 with padding=Padding.SameUpper reads wrong "
                                      "windows on Akida 2.0 (vendor bug); use Padding.Same or pool_size 1, 3, 4")
    elif size != -1 or stride != -1:
        what = "global average pooling (always global on Akida)" if params.pool_type == PoolType.Average \
            else "PoolType.NoPooling"
        raise LayerParameterError(f"{owner}: Incoherent pooling parameters: pool_size={size}, "
                                  f"pool_stride={stride} must be -1 with {what}")
    object.__setattr__(params, "pool_size", size)
    object.__setattr__(params, "pool_stride", stride)


# --- shapes ----------------------------------------------------------------------------------------------

def spatial_size(owner, size, kernel, stride, padding):
    """Output length of one axis; Valid with no output raises (as the vendor does)."""
    from ... import kernels
    out = kernels.output_size(size, kernel, stride, padding)
    if out <= 0:
        raise ModelStructureError(f"{owner}: Computed output size would not be strictly positive (input "
                                  f"{size}, window {kernel}, stride {stride}, {Padding(padding).name})")
    return out


def pooled_shape(params, owner, h, w):
    """(h, w) after the layer's max pooling or global average pooling."""
    if params.pool_type == PoolType.Max:
        return (spatial_size(owner, h, params.pool_size, params.pool_stride, params.padding),
                spatial_size(owner, w, params.pool_size, params.pool_stride, params.padding))
    if params.pool_type == PoolType.Average:
        return 1, 1
    return h, w


# --- variables -----------------------------------------------------------------------------------------------

def spec(shape, dtype, low=None, high=None):
    """VariableSpec with the dtype's range unless narrower bounds are given."""
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    if info is not None:
        low = int(info.min) if low is None else low
        high = int(info.max) if high is None else high
    return VariableSpec(tuple(int(d) for d in shape), dtype, low, high)


def identity_lut():
    """The default LUT: identity over -1024..1023."""
    return np.arange(-1024, 1024, dtype=np.int32)


DEFAULTS = {"output_scales": 1, "max_value": 127, "max_value_shift": 31, "activation_scales": 1,
            "new_state_scale": 1}
"""Non-zero default values of variables (akida2-layers.md §2); every other variable starts at 0."""

SHIFT_VARIABLES = ("bias_shift", "output_shift", "max_value_shift", "activation_shift", "input_shift",
                   "a_shift", "b_shift", "new_state_shift", "internal_state_outputs_shift")


class LayerV2(Layer):
    """Base class of the Akida 2.0 layers.

    Subclasses set `layer_type`, `short_name`, `params_type` and implement `_output_dims`,
    `_base_specs` and `_run(inputs)` (a list of one array per inbound). `inbound_count` is the
    number of inbounds the kind takes.
    """

    ip_version = IpVersion.v2
    inbound_count = 1
    _state = None
    _inbound_shapes = ()

    def __init__(self, params):
        super().__init__(params)
        self._state = None

    # --- building --------------------------------------------------------------------------------

    def _attach_inbounds(self, model, name, inbounds, used_bytes=0):
        """Check the inbounds (per kind), derive the shapes and create the variables."""
        if len(inbounds) != self.inbound_count:
            raise ModelStructureError(
                f"{self.layer_type.name} '{name}' must have exactly {self.inbound_count} inbound layer"
                f"{'s' if self.inbound_count > 1 else ''}; got {len(inbounds)}: {[lay.name for lay in inbounds]}")
        self._check_inbounds(name, inbounds)
        first = inbounds[0]
        self._inbound_shapes = [tuple(lay.output_dims) for lay in inbounds]
        self._attach(model, name, first.output_dims, first.output_bits, first.output_signed, used_bytes)
        self._state = None

    def _check_inbounds(self, name, inbounds):
        """Kind-specific checks of the inbound layers (default: none)."""

    def _check_potential_bound(self):
        """Akida 2.0 sums wrap or saturate by definition (akida2-layers.md §3-4): no int32 bound to check."""

    # --- variables ---------------------------------------------------------------------------------

    def _default_value(self, name, spec_):
        if name == "lut_values":
            return identity_lut()
        if name == "scales" and self.layer_type.name == "Dequantizer":
            return np.ones(spec_.shape, spec_.dtype)
        return np.full(spec_.shape, DEFAULTS.get(name, 0), spec_.dtype)

    def set_variable(self, name, value):
        """Store one variable: it must have the exact dtype and shape (no conversion); resets the state.

        Raises:
            KeyError: "No such variable".
            LayerParameterError: wrong dtype, shape, or a weight outside its range.
        """
        self.require_built()
        specs = self.variable_specs()
        owner = f"Layer '{self.name}' ({self.layer_type.name})"
        if name not in specs:
            raise KeyError(f"{owner}: No such variable {name!r}; it has: {list(specs)}")
        expected = specs[name]
        if not isinstance(value, np.ndarray):
            raise LayerParameterError(f"{owner} variable '{name}': expected a numpy array of dtype "
                                      f"{np.dtype(expected.dtype).name}, got {type(value).__name__}")
        if value.dtype != np.dtype(expected.dtype):
            raise LayerParameterError(
                f"{owner}: Unsupported variable type for {name} expected {np.dtype(expected.dtype).name} "
                f"received {value.dtype}. Hint: value.astype(np.{np.dtype(expected.dtype).name})")
        if value.shape != expected.shape:
            raise LayerParameterError(f"{owner} variable '{name}': Unexpected tensor shape: {value.shape} "
                                      f"instead of {expected.shape}")
        super().set_variable(name, value)
        self.reset_state()

    def _prepared(self):
        """Derived constants of the current variables (cached until a variable changes)."""
        return self._cached("prepared", self._prepare)

    def _prepare(self):
        for name in SHIFT_VARIABLES:
            if name in self._values:
                values = self._values[name].astype(np.int64)
                if values.size and int(np.abs(values).max()) > k2.MAX_SHIFT:
                    raise LayerParameterError(
                        f"Layer '{self.name}' ({self.layer_type.name}) variable '{name}': shifts in "
                        f"[{values.min()}, {values.max()}]; Akida 2.0 shifts are limited to |s| <= "
                        f"{k2.MAX_SHIFT} (larger ones crash the vendor runtime)")
        return {}

    # --- state -----------------------------------------------------------------------------------------

    def reset_state(self):
        """Forget the temporal state (FIFOs, recurrent state); the next call starts from zeros."""
        self._state = None

    # --- outputs -----------------------------------------------------------------------------------------

    @property
    def output_bits(self):
        """Bits of the outputs (`output_bits` of the layer)."""
        return self._params.output_bits

    @property
    def output_signed(self):
        """Outputs of 5 bits or more are signed; 4 bits or fewer are unsigned."""
        return self._params.output_bits > 4

    @property
    def output_dtype(self):
        """numpy dtype of the outputs."""
        return np.dtype(k2.output_dtype(self.output_bits))

    def _forward(self, inputs):
        """Run on a list of one array per inbound (a bare array for single-inbound layers)."""
        if not isinstance(inputs, list):
            inputs = [inputs]
        return self._run(inputs)


def layer_output_dtype(layer):
    """dtype of a layer's outputs in an Akida 2.0 model (InputData: uint8 up to 4 bits, else int8)."""
    if isinstance(layer, LayerV2):
        return layer.output_dtype
    return np.dtype(np.int8 if layer.output_signed else np.uint8)


# --- the POST pipeline of the neural layers --------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Post:
    """Constants of POST (akida2-layers.md §3) for one layer, per output channel, as float64 (exact
    integers and powers of two: see kernels_v2.float_round_shift)."""

    bias: np.ndarray
    bb: int
    pb: int
    ob: int
    activation: ActivationType
    scales: np.ndarray
    multipliers: np.ndarray
    shift: np.ndarray
    ceiling: np.ndarray = None
    act_scales: np.ndarray = None
    act_multipliers: np.ndarray = None
    act_shift: np.ndarray = None
    lut: np.ndarray = None


def activation_specs(params, units):
    """Variables of the activation: max_value(_shift) for ReLU, the LUT variables for LUT."""
    if params.activation == ActivationType.ReLU:
        return {"max_value": spec((units,), np.uint8), "max_value_shift": spec((units,), np.uint8)}
    if params.activation == ActivationType.LUT:
        return {"activation_scales": spec((units,), np.uint8), "activation_shift": spec((units,), np.int8),
                "lut_values": spec((2048,), np.int32)}
    return {}


def neural_specs(params, units, in_shift=None):
    """bias, bias_shift, output_scales, output_shift (+ input_shift of `in_shift` entries) + activation."""
    out = {"bias": spec((units,), np.int8), "bias_shift": spec((units,), np.uint8)}
    if in_shift is not None:
        out["input_shift"] = spec((in_shift,), np.uint8)
    out.update({"output_scales": spec((units,), np.uint8), "output_shift": spec((units,), np.int8)})
    out.update(activation_specs(params, units))
    return out


def make_post(values, params, bias_bits):
    """Post constants from the variables; the bias is `sat_{bias_bits}(R(bias, bias_shift))`."""
    v = {name: array.astype(np.int64) for name, array in values.items()}
    pb = params.post_op_buffer_bits
    extra = {}
    if params.activation == ActivationType.ReLU:
        extra["ceiling"] = k2.sat(k2.round_shift(v["max_value"], v["max_value_shift"]), pb).astype(np.float64)
    elif params.activation == ActivationType.LUT:
        extra = {"act_scales": v["activation_scales"].astype(np.float64),
                 "act_multipliers": k2.shift_multipliers(v["activation_shift"]),
                 "act_shift": v["activation_shift"],
                 "lut": v["lut_values"].astype(np.float64)}
    bias = k2.sat(k2.round_shift(v["bias"], v["bias_shift"]), bias_bits).astype(np.float64)
    return Post(bias=bias, bb=params.buffer_bits, pb=pb, ob=params.output_bits, activation=params.activation,
                scales=v["output_scales"].astype(np.float64), multipliers=k2.shift_multipliers(v["output_shift"]),
                shift=v["output_shift"], **extra)


def add_bias(acc, post, rule="standard", bound=None):
    """POST step 2 -> (float64 exact integers, bound of their magnitude).

    standard sat_pb(sat_bb(acc) + B); 'input' sat_bb(acc + B); 'recurrent' sat_bb(sat_bb(acc) + B).
    `acc` holds exact integers (float or int64); `bound` >= max|acc| (None: unknown) lets a
    saturation that cannot act be skipped.
    """
    bias_bound = int(np.abs(post.bias).max(initial=0))
    if rule == "input":  # InputConv2D sums of uint8 inputs are far below 2**53: exact in float64
        values = acc.astype(np.float64)
        values += post.bias
        return k2.clip_inplace(values, post.bb), 1 << (post.bb - 1)
    if acc.dtype == np.int64:  # Dense1D and split sums may exceed 2**53: saturate before converting
        values = np.add(k2.sat(acc, post.bb), post.bias, dtype=np.float64)
    elif bound is None or bound >= 1 << (post.bb - 1):
        values = k2.clip_inplace(acc.astype(np.float64), post.bb)
        values += post.bias
    else:  # the buffer saturation cannot act: convert and add the bias in one pass
        values = np.add(acc, post.bias, dtype=np.float64)
    bound = 1 << (post.bb - 1) if bound is None else min(bound, 1 << (post.bb - 1))
    bits = post.bb if rule == "recurrent" else post.pb
    if bound + bias_bound >= 1 << (bits - 1):
        k2.clip_inplace(values, bits)
    return values, min(bound + bias_bound, 1 << (bits - 1))


def activate(values, post, bound):
    """POST step 4 (in place): ReLU with its ceiling, the LUT, or nothing -> (values, bound)."""
    if post.activation == ActivationType.ReLU:
        return k2.relu(values, post.ceiling, bound), min(bound, int(post.ceiling.max(initial=0)))
    if post.activation == ActivationType.LUT:
        values = k2.lut_activation(values, post.act_scales, post.act_multipliers, post.lut, post.pb)
        return values, int(np.abs(post.lut).max())
    return values, bound


def finish(values, post, bound=None):
    """POST steps 6-7: v = R(sat_pb(A·scales), shift), OUT_ob, dtype by width."""
    return k2.scale_output(values, post.scales, post.multipliers, post.pb, post.ob, bound,
                           nonnegative=post.activation == ActivationType.ReLU)


def post_process(acc, post, rule="standard", bound=None):
    """POST steps 2, 4, 6, 7 for layers without pooling."""
    values, bound = add_bias(acc, post, rule, bound)
    values, bound = activate(values, post, bound)
    return finish(values, post, bound)


def shifted_inputs(x, input_shift, bb, acts=None):
    """xs = sat_bb(R(x, input_shift)) per input channel; `x` itself when that changes nothing (`acts`: that
    verdict already known, e.g. from the layer's InputPlan; None: `shift_acts` decides)."""
    if not (shift_acts(x.dtype, input_shift, bb) if acts is None else acts):
        return x
    return k2.sat(k2.round_shift(x.astype(np.int64), input_shift.astype(np.int64)), bb)


def shift_acts(dtype, input_shift, bb):
    """Whether sat_bb(R(x, input_shift)) can differ from x for inputs of `dtype`."""
    if not np.issubdtype(dtype, np.integer) or np.any(input_shift):
        return True
    info = np.iinfo(dtype)
    return not -(1 << (bb - 1)) <= int(info.min) <= int(info.max) <= (1 << (bb - 1)) - 1


STATIC_INPUT_BYTES = 2
"""Inputs of at most this many bytes per value are bounded by their dtype; wider ones (32-bit outputs of
a previous layer) are read, as their dtype's bound would force wide accumulators."""


@dataclasses.dataclass(frozen=True)
class InputPlan:
    """What a layer derives once per input dtype: whether the input shift acts, the static bound of
    |xs| (None: read from the data each call) and the float AffinePost of its POST (None: general path)."""

    shift: bool
    x_bound: int = None
    affine: object = None


def input_plan(layer, dtype, input_shift, kernel, rule="standard", wrap=True, x_bound=None):
    """The InputPlan of a layer whose sums are `kernel` (a ConvolutionKernel: its l1 per filter) applied to
    inputs of `dtype` shifted by `input_shift` (None: no shift), cached until the variables change.

    `x_bound` raises the static bound (InputConv2D's padding value). The AffinePost is made for the
    accumulator dtype the kernels will return for that bound (kernels_v2.convolve2d).
    """
    def plan():
        p = layer.params
        shift = input_shift is not None and shift_acts(dtype, input_shift, p.buffer_bits)
        if not np.issubdtype(dtype, np.integer) or np.dtype(dtype).itemsize > STATIC_INPUT_BYTES:
            return InputPlan(shift)
        info = np.iinfo(dtype)
        bound = max(-int(info.min), int(info.max), x_bound or 0)
        if shift:
            bound = min(bound << int(input_shift.max()), 1 << (p.buffer_bits - 1))
        acc_bounds = bound * kernel.l1
        if wrap:
            acc_bounds = np.minimum(acc_bounds, 1 << 31)
        if getattr(p, "pool_type", None) == PoolType.Average:
            return InputPlan(shift, bound)
        return InputPlan(shift, bound, affine_for(layer._prepared()["post"], acc_bounds, kernel.bound(bound), rule))
    return layer._cached(("input_plan", np.dtype(dtype).str), plan)


def affine_for(post, acc_bounds, sum_bound, rule="standard"):
    """The AffinePost of `post` (kernels/v2_affine.py) for sums bounded per channel by `acc_bounds` whose
    partial sums stay within `sum_bound`, or None (the bounds do not prove it exact; global pooling is not a
    map of one sum: its layers never ask). A LUT activation gives a LutPost: the table index is such a map
    (with the activation's scales and shift and the index range as output range), the rest one table per
    channel. float32 sums (below 2**24) try a float32 map, then an int32 one (about 30% less time than the
    float64 map on float32 sums), then float64; wider sums take float64."""
    dtypes = (np.float32, np.int32, np.float64) if sum_bound < 1 << 24 else (np.float64,)
    lut = post.activation == ActivationType.LUT
    for dtype in dtypes:
        if lut:  # index = clip(R(sat_pb(A·S_act), s_act), -1024, 1023): the output range of 11-bit outputs
            constants = affine.affine_constants(post.bias, post.act_scales, post.act_shift, post.bb, post.pb,
                                                LUT_INDEX_BITS, acc_bounds, dtype, None, rule)
        else:
            constants = affine.affine_constants(post.bias, post.scales, post.shift, post.bb, post.pb, post.ob,
                                                acc_bounds, dtype, post.ceiling, rule)
        if constants is not None:
            if not lut:
                return constants
            bound = int(np.abs(post.lut).max())  # as `activate` gives it to `finish`
            return affine.lut_post(constants, lambda values: finish(values, post, bound), post.lut)
    return None


LUT_INDEX_BITS = 11
"""The LUT index range [-1024, 1023] is the output range of 11-bit outputs (kernels/v2_affine.py)."""


class FilterLayerV2(LayerV2):
    """An Akida 2.0 layer with filters; a depthwise kind (`depthwise = True`) has one per input channel."""

    depthwise = False

    @property
    def filters(self):
        """Output channels (the input channels when depthwise)."""
        return self.input_dims[2] if self.depthwise else self._params.filters

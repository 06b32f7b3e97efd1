"""What every Akida layer shares: parameter checks, the parameter bag, validated variables.

A layer kind is a `Params` frozen dataclass (its mathematical invariants), an `output_shape`
function and a `Layer` subclass whose `_forward` calls kernels. Variables (weights, thresholds,
act_step) exist once the layer belongs to a model, because their shapes depend on its input.
"""
import dataclasses

import numpy as np

from .. import kernels
from ..enums import PoolType
from ..errors import LayerParameterError

WEIGHT_RANGES = {1: (0, 1), 2: (-1, 1), 4: (-7, 7), 8: (-128, 127)}
"""Integer range of each weight bit width (1-bit weights are binary {0, 1})."""

MIN_ACT_STEP = 1.0 / 16

# Register widths of the Akida 1.0 runtime and chip (probed on the vendor runtime; docs/semantics.md,
# "Registers and saturation"). Convolutional potentials outside a global pooling are not clipped.
GAP_ACCUMULATOR_BITS = 20
"""Global average pooling sums in a signed saturating register of this width, row-major."""
FC_POTENTIAL_BITS = 20
"""FullyConnected potentials saturate to this signed width before the threshold."""


def weight_range(bits):
    """Return (low, high) of the integers a `bits`-bit weight can hold (3, 5, 6, 7 bits: symmetric)."""
    if bits in WEIGHT_RANGES:
        return WEIGHT_RANGES[bits]
    high = 2 ** (bits - 1) - 1
    return -high, high


# --- parameter checks shared by the Params dataclasses -------------------------------------------

def check_int(owner, name, value, low=None, high=None, allowed=None):
    """Raise LayerParameterError unless `value` is an int (not bool) within bounds / in `allowed`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise LayerParameterError(f"{owner}: {name}={value!r} must be an integer")
    if allowed is not None and value not in allowed:
        raise LayerParameterError(
            f"{owner}: {name}={value} is not supported; allowed: {', '.join(map(str, allowed))}")
    if low is not None and value < low:
        raise LayerParameterError(f"{owner}: {name}={value} must be >= {low}")
    if high is not None and value > high:
        raise LayerParameterError(f"{owner}: {name}={value} must be <= {high}")
    return int(value)


def as_pair(owner, name, value):
    """Normalise an int or a 2-sequence of ints to a tuple of two Python ints."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        value = (value, value)
    try:
        pair = tuple(value)
    except TypeError:
        raise LayerParameterError(f"{owner}: {name}={value!r} must be an int or a pair of ints") from None
    if len(pair) != 2:
        raise LayerParameterError(f"{owner}: {name}={value!r} must be an int or a pair of ints")
    return tuple(check_int(owner, name, v) for v in pair)


def as_shape(owner, value):
    """Normalise an input shape to a 3-tuple of positive ints (height, width, channels)."""
    try:
        shape = tuple(value)
    except TypeError:
        raise LayerParameterError(f"{owner}: input_shape={value!r} must be (height, width, channels)") from None
    if len(shape) != 3:
        raise LayerParameterError(f"{owner}: input_shape={value!r} must have 3 dims (height, width, channels)")
    return tuple(check_int(owner, "input_shape", d, low=1, high=2 ** 20) for d in shape)


def as_enum(owner, name, enum_type, value):
    """Convert `value` to `enum_type`, with an error listing the members."""
    try:
        if isinstance(value, str):
            return enum_type[value]
        if isinstance(value, (bool, np.bool_)):
            raise ValueError
        return enum_type(value)
    except (KeyError, ValueError):
        names = ", ".join(f"{enum_type.__name__}.{m.name}" for m in enum_type)
        raise LayerParameterError(f"{owner}: {name}={value!r} is not one of {names}") from None


def check_bool(owner, name, value):
    """Raise unless `value` is a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise LayerParameterError(f"{owner}: {name}={value!r} must be True or False")
    return bool(value)


def check_name(value):
    """Layer names are strings (empty means 'give me a default name')."""
    if not isinstance(value, str):
        raise LayerParameterError(f"layer name {value!r} must be a string")
    return value


def check_kernel(owner, kernel_size, kernel_stride):
    """Kernel dims odd and positive; strides positive and not larger than the kernel."""
    for k in kernel_size:
        if k <= 0 or k % 2 == 0:
            raise LayerParameterError(
                f"{owner}: kernel_size={kernel_size} must be odd and positive (1, 3, 5, 7, ...)")
    for s, k in zip(kernel_stride, kernel_size):
        if s <= 0:
            raise LayerParameterError(f"{owner}: kernel_stride={kernel_stride} must be positive")
        if s > k:
            raise LayerParameterError(
                f"{owner}: kernel_stride={kernel_stride} is larger than kernel_size={kernel_size}; "
                "strides > kernel size are not supported")


def check_pooling(owner, pool_type, pool_size, pool_stride):
    """Return the normalised (pool_size, pool_stride); a negative stride component takes the size's."""
    if pool_type == PoolType.Max:
        if min(pool_size) <= 0:
            raise LayerParameterError(f"{owner}: pool_size={pool_size} must be positive with PoolType.Max")
        pool_stride = tuple(p if s < 0 else s for s, p in zip(pool_stride, pool_size))
        if min(pool_stride) <= 0 or any(s > p for s, p in zip(pool_stride, pool_size)):
            raise LayerParameterError(
                f"{owner}: pool_stride={pool_stride} must be positive and <= pool_size={pool_size}")
        return pool_size, pool_stride
    if pool_size != (-1, -1) or pool_stride not in ((-1, -1),):
        what = "global (Average)" if pool_type == PoolType.Average else "no pooling"
        raise LayerParameterError(
            f"{owner}: pool_size={pool_size}, pool_stride={pool_stride} must be left at (-1, -1) with "
            f"{what}; Akida average pooling is always global")
    return pool_size, pool_stride


def conv_positions(params, input_shape):
    """Number of convolution outputs (before pooling) per sample and per filter (Akida 1.0 params)."""
    h, w, _ = input_shape
    return (kernels.output_size(h, params.kernel_size[0], params.kernel_stride[0], params.padding)
            * kernels.output_size(w, params.kernel_size[1], params.kernel_stride[1], params.padding))


def pooled_positions(params, input_shape):
    """How many potentials one pooled output sums (H·W for global average pooling, else 1)."""
    return conv_positions(params, input_shape) if params.pool_type == PoolType.Average else 1


def check_act_bits(owner, act_bits):
    """Activations are 1, 2 or 4 bits on Akida 1.0."""
    return check_int(owner, "act_bits", act_bits, allowed=(1, 2, 4))


# --- the parameter bag ---------------------------------------------------------------------------

class Parameters:
    """Attribute view of a layer's parameters; assignments are validated, and re-checked by the model."""

    def __init__(self, layer):
        object.__setattr__(self, "_layer", layer)

    def __getattr__(self, name):
        params = self._layer.params
        if name == "layer_type":
            return self._layer.layer_type
        if name in {f.name for f in dataclasses.fields(params)}:
            return getattr(params, name)
        raise AttributeError(f"{type(self._layer).__name__} has no parameter {name!r}")

    def __setattr__(self, name, value):
        self._layer.set_parameter(name, value)

    def __dir__(self):
        return [f.name for f in dataclasses.fields(self._layer.params)] + ["layer_type"]

    def __repr__(self):
        return repr(self._layer.params)


# --- variables -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class VariableSpec:
    """Shape, dtype and allowed integer range (or minimum for floats) of one variable."""

    shape: tuple
    dtype: type
    low: float = None
    high: float = None


class Variables:
    """Dict-like access to a layer's variables: reads return copies, writes are validated."""

    def __init__(self, layer):
        self._layer = layer

    @property
    def names(self):
        """Names of the variables of the layer."""
        return list(self._layer.variable_specs())

    def keys(self):
        """Same as `names`."""
        return self.names

    def items(self):
        """(name, copy of the array) pairs."""
        return [(name, self[name]) for name in self.names]

    def __contains__(self, name):
        return name in self._layer.variable_specs()

    def __iter__(self):
        return iter(self.names)

    def __len__(self):
        return len(self.names)

    def __getitem__(self, name):
        self._layer.require_built()
        if name not in self._layer.variable_specs():
            raise KeyError(f"layer '{self._layer.name}' has no variable {name!r}; it has: {self.names}")
        return self._layer._values[name].copy()

    def __setitem__(self, name, value):
        self._layer.set_variable(name, value)

    def __repr__(self):
        return f"Variables({self.names})"


def validate_variable(layer, name, spec, value):
    """Check shape, dtype and range of `value` for variable `name`; return it converted to spec.dtype."""
    owner = f"Layer '{layer.name}' ({layer.layer_type.name}) variable '{name}'"
    if not isinstance(value, np.ndarray):
        if isinstance(value, (list, tuple, int, float, np.number)):
            value = np.asarray(value)
        else:
            raise LayerParameterError(f"{owner}: expected a numpy array, got {type(value).__name__}")
    if value.shape != spec.shape:
        raise LayerParameterError(f"{owner}: shape {value.shape} does not match the expected {spec.shape}")
    if np.issubdtype(spec.dtype, np.integer):
        if value.dtype == np.bool_ or not np.issubdtype(value.dtype, np.integer):
            raise LayerParameterError(
                f"{owner}: dtype {value.dtype} is not an integer dtype; pass integers "
                f"(e.g. arr.astype(np.{np.dtype(spec.dtype).name}) after rounding)")
        if value.size:
            low, high = int(value.min()), int(value.max())
            if (spec.low is not None and low < spec.low) or (spec.high is not None and high > spec.high):
                raise LayerParameterError(
                    f"{owner}: values in [{low}, {high}] are outside the allowed range "
                    f"[{spec.low}, {spec.high}]" + _range_hint(layer, name))
        return np.ascontiguousarray(value, dtype=spec.dtype)
    if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)) \
            or value.dtype == np.bool_:
        raise LayerParameterError(f"{owner}: dtype {value.dtype} is not numeric")
    converted = np.ascontiguousarray(value, dtype=spec.dtype)
    if not np.all(np.isfinite(converted)):
        raise LayerParameterError(f"{owner}: values must be finite (found NaN or inf)")
    if spec.low is not None and converted.size and converted.min() < spec.low:
        raise LayerParameterError(
            f"{owner}: minimum {float(converted.min())} is below the allowed minimum {spec.low}")
    if spec.high is not None and converted.size and converted.max() > spec.high:
        raise LayerParameterError(
            f"{owner}: maximum {float(converted.max())} is above the allowed maximum {spec.high}")
    return converted


def _range_hint(layer, name):
    bits = getattr(layer.params, "weights_bits", None)
    if name.startswith("weights") and bits is not None:
        return f" for weights_bits={bits}"
    return ""

"""The Layer base class: parameters, variables and the pieces of forward shared by all kinds."""
import dataclasses
import math
import threading

import numpy as np

from .. import kernels
from ..enums import IpVersion, PoolType
from ..errors import LayerParameterError, ModelStructureError
from .base import (GAP_ACCUMULATOR_BITS, MIN_ACT_STEP, Parameters, Variables, VariableSpec, pooled_positions,
                   validate_variable, weight_range)

INT32_MAX = 2 ** 31 - 1

MAX_VARIABLE_BYTES = 256 * 2 ** 20
"""Largest variable (weights, thresholds...) a layer may hold; AKD1000 models total tens of MB."""
MAX_MODEL_VARIABLE_BYTES = 2 ** 30
"""Largest total of the variables of one model (a .fbz file holds at most 4 GiB)."""


def variable_bytes(spec):
    """Bytes of a variable of this spec, in Python ints (so no shape can overflow)."""
    return math.prod(spec.shape) * np.dtype(spec.dtype).itemsize


class Layer:
    """Base class of the Akida layers.

    Subclasses set `layer_type`, `short_name` (used for default names such as `Conv_2`) and
    `params_type`, and implement `_output_dims`, `_base_specs` and `_forward`.
    """

    layer_type = None
    short_name = "Layer"
    params_type = None
    is_input = False
    temporal = False
    """Whether the layer keeps state from sample to sample (the batch is then a time sequence)."""
    bands = False
    """Whether `_forward(inputs, bands=, run=)` can compute one sample in row bands (on several threads)."""
    ip_version = IpVersion.v1
    """IpVersion of the kind (Akida 1.0 unless a subclass says otherwise; None for the shared InputData)."""
    _inbound_layers = ()

    def __init__(self, params):
        self._params = params
        self._model = None
        self._name = params.name
        self.input_dims = None
        self.output_dims = None
        self.input_bits = None
        self.input_signed = False
        self._values = {}
        self._extra_specs = {}
        self._cache = {}
        self._variable_bytes = 0

    # --- identity and parameters ---------------------------------------------------------------

    @property
    def name(self):
        """The layer name (unique in its model)."""
        return self._name

    @property
    def params(self):
        """The frozen parameter dataclass of the layer."""
        return self._params

    @property
    def parameters(self):
        """Attribute bag of the parameters; `layer.parameters.weights_bits = 2` is validated."""
        return Parameters(self)

    @property
    def variables(self):
        """Dict-like validated access to the variables (weights, threshold, act_step ...)."""
        return Variables(self)

    @property
    def model(self):
        """The Model this layer belongs to, or None."""
        return self._model

    @property
    def inbounds(self):
        """The layers feeding this one (none for an input layer or a layer outside a model)."""
        if self._model is None:
            return []
        return list(self._inbound_layers)

    def set_parameter(self, name, value):
        """Change one parameter; the new value is validated and the model's shapes re-checked."""
        if name in ("name", "layer_type"):
            raise LayerParameterError(f"Layer '{self.name}': parameter '{name}' cannot be changed")
        if name not in {f.name for f in dataclasses.fields(self._params)}:
            raise AttributeError(f"{type(self).__name__} has no parameter {name!r}")
        new = dataclasses.replace(self._params, **{name: value})
        if self._model is None:
            self._params = new
        else:
            self._model._reparameterize(self, new)

    # --- variables -----------------------------------------------------------------------------

    def variable_specs(self):
        """Mapping of variable name to VariableSpec (empty until the layer is in a model)."""
        if self.input_dims is None:
            return {}
        return {**self._base_specs(), **self._extra_specs}

    def require_built(self):
        """Raise unless the layer belongs to a model (variables need the input shape)."""
        if self.input_dims is None:
            raise ModelStructureError(
                f"Layer '{self.name or type(self).__name__}' has no variables until it is added to a model")

    def set_variable(self, name, value):
        """Validate and store one variable; derived constants are recomputed lazily."""
        self.require_built()
        specs = self.variable_specs()
        if name not in specs:
            raise KeyError(f"layer '{self.name}' has no variable {name!r}; it has: {list(specs)}")
        self._values[name] = validate_variable(self, name, specs[name], value)
        self._cache.clear()

    def get_variable(self, name):
        """Return a copy of one variable (MetaTF name)."""
        return self.variables[name]

    def get_variable_names(self):
        """Return the variable names (MetaTF name)."""
        return self.variables.names

    def add_variable(self, name, spec, value):
        """Add an extra variable (used by edge learning); it is validated, saved and loaded like others."""
        self._extra_specs[name] = spec
        self._values[name] = validate_variable(self, name, spec, value)
        self._count_variable_bytes()

    def remove_variable(self, name):
        """Remove an extra variable added with `add_variable`."""
        self._extra_specs.pop(name, None)
        self._values.pop(name, None)
        self._count_variable_bytes()

    def _count_variable_bytes(self):
        self._variable_bytes = sum(variable_bytes(spec) for spec in self.variable_specs().values())

    def _weight_spec(self, shape, bits):
        low, high = weight_range(bits)
        return VariableSpec(shape, np.int8, low, high)

    def _neuron_specs(self, units):
        return {"threshold": VariableSpec((units,), np.int32, -INT32_MAX - 1, INT32_MAX),
                "act_step": VariableSpec((units,), np.float32, MIN_ACT_STEP, None)}

    def _default_value(self, name, spec):
        if name == "threshold":
            return np.full(spec.shape, getattr(self._params, "threshold", 0), np.int32)
        if name == "act_step":
            return np.ones(spec.shape, np.float32)
        return np.zeros(spec.shape, spec.dtype)

    # --- building ------------------------------------------------------------------------------

    def _attach(self, model, name, input_dims, input_bits, input_signed, used_bytes=0):
        """Set the input of the layer, derive its output and (re)create variables whose shape changed.

        `used_bytes` is what the layers before this one hold: the model-wide cap is checked with it.
        """
        self._model = model
        self._name = name
        self.input_dims = tuple(input_dims)
        self.input_bits = input_bits
        self.input_signed = input_signed
        self.output_dims = tuple(self._output_dims(self.input_dims))
        if min(self.output_dims) <= 0:
            raise ModelStructureError(
                f"Layer '{name}' ({self.layer_type.name}): input {self.input_dims} is too small for "
                f"its kernel/pooling; output would be {self.output_dims}")
        self._variable_bytes = self._check_variable_sizes(used_bytes)
        for var, spec in self.variable_specs().items():
            old = self._values.get(var)
            if old is None or old.shape != spec.shape:
                self._values[var] = self._default_value(var, spec)
            else:
                self._values[var] = validate_variable(self, var, spec, old)
        for var in list(self._values):
            if var not in self.variable_specs():
                del self._values[var]
        self._cache.clear()
        self._check_potential_bound()

    @property
    def variable_bytes(self):
        """Bytes held by the variables of the layer (0 until it is in a model)."""
        return self._variable_bytes if self.input_dims is not None else 0

    def _check_variable_sizes(self, used_bytes):
        """Bytes of the layer's variables, refused before any allocation: a description with huge dims
        must fail here with a message, not in np.zeros."""
        owner = f"Layer '{self.name}' ({self.layer_type.name})"
        own = 0
        for var, spec in self.variable_specs().items():
            size = variable_bytes(spec)
            if size > MAX_VARIABLE_BYTES:
                raise ModelStructureError(
                    f"{owner}: variable '{var}' of shape {spec.shape} ({np.dtype(spec.dtype).name}) "
                    f"would take {size:,} bytes; a variable is limited to {MAX_VARIABLE_BYTES:,} bytes "
                    f"(MAX_VARIABLE_BYTES; AKD1000 models hold tens of MB). Hint: reduce the "
                    f"units/filters, kernel_size or the input size {self.input_dims}")
            own += size
        if used_bytes + own > MAX_MODEL_VARIABLE_BYTES:
            raise ModelStructureError(
                f"{owner}: the model's variables would take {used_bytes + own:,} bytes with this layer; "
                f"a model is limited to {MAX_MODEL_VARIABLE_BYTES:,} bytes (MAX_MODEL_VARIABLE_BYTES). "
                "Hint: use fewer or smaller layers")
        return own

    def _detach(self):
        self._model = None
        self._inbound_layers = ()
        self.input_dims = self.output_dims = None
        self._cache.clear()

    def _check_potential_bound(self):
        bound = self.potential_bound()
        if getattr(self._params, "pool_type", None) == PoolType.Average:
            # The pooled sum saturates to GAP_ACCUMULATOR_BITS: only each pixel's potential must fit.
            bound //= pooled_positions(self._params, self.input_dims)
        if bound > INT32_MAX:
            raise ModelStructureError(
                f"Layer '{self.name}' ({self.layer_type.name}): potentials can reach {bound}, beyond int32; "
                "reduce weights_bits, the input bits or the layer's fan-in")

    def potential_bound(self):
        """Static bound of |potential| from the bit widths and the fan-in (0 for input-only layers).

        With global average pooling it bounds the exact sum over H·W (the register then saturates it)."""
        return 0

    @property
    def output_bits(self):
        """Bits of the layer's outputs (act_bits with an activation, 32 for raw potentials)."""
        if getattr(self._params, "activation", False):
            return self._params.act_bits
        return 32

    @property
    def output_signed(self):
        """Whether the outputs can be negative (raw potentials are)."""
        return not getattr(self._params, "activation", False)

    @property
    def macs(self):
        """Multiply-accumulate operations per sample (0 for input-only layers)."""
        return 0

    # --- shared pieces of forward --------------------------------------------------------------

    def _cached(self, key, compute):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def _pool(self, potentials):
        p = self._params
        if p.pool_type == PoolType.Max:
            return kernels.max_pool2d(potentials, p.pool_size, p.pool_stride, p.padding)
        if p.pool_type == PoolType.Average:
            return kernels.global_sum_pool(potentials, GAP_ACCUMULATOR_BITS)
        return potentials

    @property
    def register_act_step(self):
        """The act_step the chip computes with: floor(act_step·16)/16 per neuron (float32 copy)."""
        self.require_built()
        return self._cached("register_act_step",
                            lambda: kernels.register_act_step(self._values["act_step"])).copy()

    def _buffered(self, input_shape):
        """This layer's forward for inputs of `input_shape` made of buffered kernels (kernels/buffered.py),
        for the calling thread, or None when the layer has none (then `_forward` computes). Its result is
        its own buffer, overwritten by its next call. Made once per thread and shape, until the layer's
        cache is cleared (its shapes or variables changed)."""
        return self._cached("buffered", BufferedForwards).get(input_shape, self._buffered_forward)

    def _buffered_forward(self, input_shape):
        """A new buffered forward for inputs of `input_shape`, or None (the default: no buffered kernels)."""
        return None

    def _pools_in_conv(self, shape):
        """The max pooling size when the buffered convolution of potentials of `shape` can pool them as it
        computes (windows that tile them exactly: kernels.buffered.conv2d), else None."""
        p = self._params
        if getattr(p, "pool_type", None) == PoolType.Max and \
                kernels.buffered.tiles_exactly(shape, p.pool_size, p.pool_stride, p.padding):
            return p.pool_size
        return None

    def _buffered_tail(self, shape, dtype, pooled=False):
        """The buffered pooling (unless `pooled`: already done) and activation of potentials of `shape` and
        float `dtype`: one function of the potentials, the same steps as `_activate(_pool(potentials))`."""
        p = self._params
        steps = []
        pool_type = getattr(p, "pool_type", PoolType.NoPooling)
        if pooled:
            shape = (shape[0], *self.output_dims)
        elif pool_type == PoolType.Max:
            steps.append(kernels.buffered.max_pool2d(shape, dtype, p.pool_size, p.pool_stride, p.padding))
            shape = (shape[0], *self.output_dims)
        elif pool_type == PoolType.Average:
            steps.append(lambda potentials: kernels.global_sum_pool(potentials, GAP_ACCUMULATOR_BITS))
            shape, dtype = (shape[0], *self.output_dims), np.int64
        if not p.activation:
            steps.append(kernels.buffered.to_int32(shape))
        else:
            dtype = np.dtype(dtype)
            threshold, step = self._cached(("activation", dtype.str), lambda: self._activation_plan(dtype))
            steps.append(kernels.buffered.activate(shape, threshold, step, p.act_bits))
        if len(steps) == 1:
            return steps[0]
        first, second = steps
        return lambda potentials: second(first(potentials))

    def _activate(self, potentials):
        if not self._params.activation:
            return kernels.to_int32(potentials)
        # The threshold and step in the dtype threshold_activation would choose, computed once per
        # potentials dtype (they depend on the variables only).
        threshold, step = self._cached(("activation", potentials.dtype.str),
                                       lambda: self._activation_plan(potentials.dtype))
        return kernels.v1.activate(potentials, threshold, step, self._params.act_bits)

    def _activation_plan(self, potentials_dtype):
        register = self._cached("register_act_step", lambda: kernels.register_act_step(self._values["act_step"]))
        step = kernels.v1.activation_step(potentials_dtype, self._values["threshold"], register,
                                          self._params.act_bits)
        return self._values["threshold"].astype(step.dtype), step

    def _exact_float32(self, weights, fan_in, max_input):
        """Whether float32 sums of `fan_in` products of these weights and inputs up to `max_input` are
        exact (the static bound of kernels.accumulator_dtype): then a kernel is cast once, not per call."""
        largest = int(np.abs(weights.astype(np.int32)).max()) if weights.size else 0
        return kernels.accumulator_dtype(largest, max_input, fan_in) == np.float32

    def forward(self, inputs):
        """Run this layer alone on already validated integer inputs of shape (n,) + input_dims."""
        self.require_built()
        return self._forward(inputs)

    # --- serialisation -------------------------------------------------------------------------

    def to_dict(self):
        """Return {'layer_type', 'params', 'variables'} (variables only when the layer is built)."""
        params = {}
        for field in dataclasses.fields(self._params):
            value = getattr(self._params, field.name)
            if hasattr(value, "name") and not isinstance(value, str):
                value = value.name
            elif isinstance(value, tuple):
                value = list(value)
            params[field.name] = value
        params["name"] = self.name
        out = {"layer_type": self.layer_type.name, "params": params}
        if self.input_dims is not None:
            out["variables"] = {name: self._values[name].copy() for name in self.variable_specs()}
            out["extra_variables"] = {
                name: {"shape": list(spec.shape), "dtype": np.dtype(spec.dtype).name,
                       "low": spec.low, "high": spec.high}
                for name, spec in self._extra_specs.items()}
        return out

    def __repr__(self):
        return f"<{type(self).__name__} '{self.name}' {self.input_dims}->{self.output_dims}>"


MAX_BUFFERED_FORWARDS = 16
"""A layer keeps at most this many buffered forwards (threads × input shapes); a new one beyond replaces the oldest.
A batch split among two workers that run its pieces through buffered chains uses two shapes (the chain's calls
and the last piece's remainder) in each of three threads (the caller measures them, running.chains_pay), so
batch 1 and two split batch sizes already take about 10."""


class BufferedForwards:
    """The buffered forwards of one layer (or chains of them, model/inference.py), by calling thread and input
    shape.

    A buffered forward owns buffers that its calls overwrite, so each thread gets its own. Copying or
    pickling a layer gives an empty set (the buffers are remade on use, not shared).
    """

    def __init__(self):
        self._forwards = {}

    def get(self, key, prepare):
        """The forward of the calling thread for `key` (an input shape, or anything hashable naming the call),
        made by `prepare(key)` the first time (None is kept too: no buffered forward for that key)."""
        thread_key = (threading.get_ident(), key)
        try:
            return self._forwards[thread_key]
        except KeyError:
            if len(self._forwards) >= MAX_BUFFERED_FORWARDS:
                del self._forwards[next(iter(self._forwards))]  # the oldest made (dicts keep insertion order)
            forward = self._forwards[thread_key] = prepare(key)
            return forward

    def __reduce__(self):
        return BufferedForwards, ()

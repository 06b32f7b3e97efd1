"""FullyConnected: every neuron sees the whole input, flattened in Akida's column-major order."""
import dataclasses

import numpy as np

from ... import kernels
from ...enums import LayerType
from ...errors import LearningError
from ..base import FC_POTENTIAL_BITS, check_act_bits, check_bool, check_int, check_name, weight_range
from .convolutional import PROCESSING_WEIGHT_BITS, max_input
from ..layer import Layer


@dataclasses.dataclass(frozen=True)
class FullyConnectedParams:
    """Parameters of FullyConnected; `threshold` is the initial threshold of every neuron (seed API)."""

    units: int
    name: str = ""
    weights_bits: int = 1
    activation: bool = True
    act_bits: int = 1
    threshold: int = 0

    def __post_init__(self):
        owner = f"FullyConnected '{self.name}'"
        check_name(self.name)
        object.__setattr__(self, "units", check_int(owner, "units", self.units, 1, 2 ** 20))
        object.__setattr__(self, "weights_bits", check_int(owner, "weights_bits", self.weights_bits,
                                                           allowed=PROCESSING_WEIGHT_BITS))
        object.__setattr__(self, "activation", check_bool(owner, "activation", self.activation))
        object.__setattr__(self, "act_bits", check_act_bits(owner, self.act_bits))
        object.__setattr__(self, "threshold",
                           check_int(owner, "threshold", self.threshold, -2 ** 31, 2 ** 31 - 1))


def output_shape(params, input_shape=None):
    """FullyConnected outputs (1, 1, units)."""
    return 1, 1, params.units


def row_major_weights(weights, input_dims):
    """Reorder Akida's column-major weight rows (c·H·W + w·H + h) to numpy's row-major (h·W·C + w·C + c)."""
    h, w, c = input_dims
    units = weights.shape[-1]
    return np.ascontiguousarray(
        weights.reshape(c, w, h, units).transpose(2, 1, 0, 3).reshape(h * w * c, units))


class FullyConnected(Layer):
    """`FullyConnected(units, name="", weights_bits=1, activation=True, act_bits=1, threshold=0)`."""

    layer_type = LayerType.FullyConnected
    short_name = "Fully"
    params_type = FullyConnectedParams

    def __init__(self, units, name="", weights_bits=1, activation=True, act_bits=1, threshold=0):
        super().__init__(FullyConnectedParams(units, name, weights_bits, activation, act_bits, threshold))

    @property
    def input_size(self):
        """Number of inputs of each neuron (product of the input dims)."""
        return int(np.prod(self.input_dims))

    def _output_dims(self, input_dims):
        return output_shape(self._params)

    def _base_specs(self):
        p = self._params
        return {"weights": self._weight_spec((1, 1, self.input_size, p.units), p.weights_bits),
                **self._neuron_specs(p.units)}

    def potential_bound(self):
        w = max(map(abs, weight_range(self._params.weights_bits)))
        return w * max_input(self) * self.input_size

    @property
    def macs(self):
        return self.input_size * self._params.units

    def _forward(self, inputs):
        weights = self._row_major()
        matrix = self._float32_matrix()
        flat = inputs.reshape(inputs.shape[0], -1)
        # float32 products are exact for every valid input when the matrix exists (its static bound)
        products = kernels.dense(flat, weights) if matrix is None else flat.astype(np.float32) @ matrix
        potentials = kernels.saturate(products, FC_POTENTIAL_BITS)
        return self._activate(potentials).reshape(inputs.shape[0], 1, 1, -1)

    def _row_major(self):
        """The weights as an (inputs, units) matrix in the row-major order of the flattened inputs."""
        return self._cached("row_major", lambda: row_major_weights(self._values["weights"][0, 0], self.input_dims))

    def _float32_matrix(self):
        """`_row_major()` in float32 when float32 sums are exact for every valid input, else None."""
        def make():
            weights = self._row_major()
            exact = self._exact_float32(weights, self.input_size, max_input(self))
            return np.asarray(weights, np.float32) if exact else None
        return self._cached("matrix", make)

    def _buffered_forward(self, input_shape):
        matrix = self._float32_matrix()
        if matrix is None:
            return None
        dense = kernels.buffered.dense(input_shape, matrix, FC_POTENTIAL_BITS)
        tail = self._buffered_tail((input_shape[0], self._params.units), matrix.dtype)
        shape = (input_shape[0], 1, 1, self._params.units)
        return lambda inputs: tail(dense(inputs)).reshape(shape)

    def get_learning_histogram(self):
        """Neurons per percent of num_weights matched when they last learned: (101,) int64 counts.

        Raises:
            LearningError: the model is not compiled for edge learning (see akida_core.learning).
        """
        model = self.model
        state = None if model is None else model._learning
        if state is None or model.layers[-1] is not self:
            raise LearningError(f"Layer '{self.name}' is not compiled for edge learning: no learning histogram. "
                                "Hint: model.compile(AkidaUnsupervised(num_weights=...)) and fit first.")
        return state.histogram(self)

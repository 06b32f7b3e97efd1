"""The graph Model: add layers (with inbounds), run integer inference, summarise, save and load.

A model is all Akida 1.0 (sequential) or all Akida 2.0 (a graph: `add(layer, inbound_layers)` takes
any earlier layers, so branches, skips, Add and Concatenate work). Layers are kept in insertion
order, which is a topological order since inbounds are always earlier layers. Mapping
(`akida_core.mapping`), edge learning (`akida_core.learning`), the description read and written by
save/load (`description.py`) and the file format (`akida_core.io`) live elsewhere; the Model
delegates to them and stores their state so that save/load carries it.
"""
import numpy as np

from ..enums import IpVersion
from ..errors import AkidaError, InputDataError, MappingError, ModelStructureError
from ..io import fbz
from ..layers import LAYER_KINDS, InputData, Layer
from ..layers.v2 import validate_v2_inputs
from . import description
from .building import GraphBuilding
from .description import MAX_LAYERS, MODEL_DICT_VERSION  # noqa: F401 (MODEL_DICT_VERSION: public name)
from . import inference, running
from .inference import InferencePlan
from .inputs import validate_batch_size, validate_inputs
from .state import arrays_to_lists, check_depth, lists_to_arrays
from .statistics import Statistics
from .threads import limited_threads
from .workers import plan_pieces, run_pieces
from .summary import summary_text


class Model(GraphBuilding):
    """An Akida model: a sequential Akida 1.0 model or an Akida 2.0 graph.

    `Model()` is empty, `Model(layers=[...])` copies the given layers (an InputData is added in front
    when the first one is not an input layer), and `Model("file.fbz")` loads a saved model.

    Example:
        >>> model = Model()
        >>> model.add(InputData(input_shape=(32, 32, 1), name="input"))
        >>> model.add(FullyConnected(units=32, threshold=40, name="fully"))

        Akida 2.0, with a skip connection:
        >>> net = Model()
        >>> net.add(InputData((8, 8, 3), input_bits=8, name="in"))
        >>> net.add(Conv2D(3, 3, activation=ActivationType.NoActivation, name="conv"))
        >>> net.add(Add(name="add"), [net.get_layer("in"), net.get_layer("conv")])
    """

    def __init__(self, filename=None, layers=None):
        self._layers = []
        self._statistics = Statistics()
        self._mapping = None
        self._plan = None
        self._learning = None
        if filename is not None and layers is not None:
            raise ModelStructureError("give either a filename or a list of layers, not both")
        if filename is not None:
            self._load_from(filename)
        elif layers is not None:
            self._copy_layers(layers)

    # --- building ------------------------------------------------------------------------------

    def add(self, layer, inbound_layers=None):
        """Append `layer`; the first layer must be an input layer.

        Args:
            layer: an akida_core layer not yet in a model.
            inbound_layers: the layers feeding it, any earlier layers of this model (Akida 2.0; Add and
                Concatenate take two). None or []: the previous layer. Akida 1.0 models are
                sequential: their only inbound is the previous layer.

        Raises:
            ModelStructureError: wrong order, unknown inbound, mixed Akida generations, duplicate
                name, shape or bit-width mismatch.
        """
        if not isinstance(layer, Layer):
            raise ModelStructureError(f"Model.add expects an akida_core layer, got {type(layer).__name__}")
        if layer.model is not None:
            raise ModelStructureError(
                f"layer '{layer.name}' already belongs to a model; build a new layer or use Model(layers=...)")
        self._check_learning_allows_change()
        if len(self._layers) >= MAX_LAYERS:
            raise ModelStructureError(f"the model already holds {MAX_LAYERS} layers, the most a model may hold "
                                      "(MAX_LAYERS)")
        name = layer.params.name or f"{layer.short_name}_{len(self._layers) + 1}"
        if any(existing.name == name for existing in self._layers):
            raise ModelStructureError(f"a layer named '{name}' is already in the model; names must be unique")
        self._check_generation(layer, name)
        inbounds = self._resolve_inbounds(layer, name, inbound_layers)
        layer._inbound_layers = tuple(inbounds)
        self._attach(layer, name, len(self._layers))
        self._layers.append(layer)
        self._model_changed()

    def _reparameterize(self, layer, new_params):
        """Apply a parameter change and re-derive every shape after it; undo everything on failure."""
        self._check_learning_allows_change()
        index = self._layers.index(layer)
        old_params = layer._params
        snapshot = [(lay, dict(lay._values)) for lay in self._layers[index:]]
        layer._params = new_params
        try:
            for i in range(index, len(self._layers)):
                self._attach(self._layers[i], self._layers[i].name, i)
        except AkidaError:
            layer._params = old_params
            for i, (lay, values) in enumerate(snapshot, start=index):
                lay._values = values
                self._attach(lay, lay.name, i)
            raise
        self._model_changed()

    def pop_layer(self):
        """Remove the last layer of the model."""
        if not self._layers:
            raise ModelStructureError("the model has no layer to pop")
        self._check_learning_allows_change(popping=True)
        self._layers.pop()._detach()
        self._model_changed()

    def _copy_layers(self, layers):
        layers = list(layers)
        if layers and not layers[0].is_input:
            first = layers[0]
            if first.input_dims is None:
                raise ModelStructureError(
                    f"Model(layers=...): '{first.name}' is not an input layer and has no known input shape; "
                    "start the list with InputData or InputConvolutional")
            self.add(InputData(first.input_dims, first.input_bits, name=f"{first.name}_input"))
        for layer in layers:
            if layer.model is None:
                self.add(layer)
            else:
                entry = layer.to_dict()
                if layer.ip_version is IpVersion.v2 and self._layers:
                    entry["inbounds"] = [inbound.name for inbound in layer.inbounds]
                description.add_from_dict(self, entry)

    def _model_changed(self):
        """Any structural change drops the mapping (it described the old model) and the inference plan."""
        self._mapping = None
        self._plan = None
        self._statistics = Statistics()

    def _check_learning_allows_change(self, popping=False):
        if self._learning is not None and not popping:
            raise ModelStructureError("the model is compiled for edge learning; pop its last layer or rebuild "
                                      "the model before changing it")
        if popping:
            self._learning = None

    # --- properties ----------------------------------------------------------------------------

    @property
    def layers(self):
        """The layers, in insertion order, which is a topological order (a new list)."""
        return list(self._layers)

    @property
    def layer_count(self):
        """Number of layers."""
        return len(self._layers)

    def get_layer(self, key):
        """Return the layer with this name, or at this index."""
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if not -len(self._layers) <= key < len(self._layers):
                raise IndexError(f"layer index {key} out of range for a model of {len(self._layers)} layers")
            return self._layers[key]
        for layer in self._layers:
            if layer.name == key:
                return layer
        raise KeyError(f"no layer named {key!r}; layers: {[lay.name for lay in self._layers]}")

    @property
    def input_shape(self):
        """(height, width, channels) of the model inputs."""
        self._require_layers()
        return list(self._layers[0].input_dims)

    @property
    def output_shape(self):
        """(height, width, channels) of the model outputs."""
        self._require_layers()
        return list(self._layers[-1].output_dims)

    @property
    def macs(self):
        """Multiply-accumulate operations per sample, all layers."""
        return sum(layer.macs for layer in self._layers)

    @property
    def statistics(self):
        """Statistics of the last inference (per-layer events, sparsity, MACs; estimates once mapped)."""
        return self._statistics

    @property
    def ip_version(self):
        """IpVersion.v2 when the model holds Akida 2.0 layers, else IpVersion.v1 (also when empty)."""
        return self._generation() or IpVersion.v1

    def reset_states(self):
        """Reset the temporal state (FIFOs, recurrent states) of every layer: the next forward starts afresh."""
        for layer in self._layers:
            if hasattr(layer, "reset_state"):
                layer.reset_state()

    @property
    def learning(self):
        """The compiled AkidaUnsupervised options, or None."""
        return None if self._learning is None else self._learning.optimizer

    def _require_layers(self):
        if not self._layers:
            raise ModelStructureError("the model has no layers; add an InputData or InputConvolutional first")

    # --- inference -----------------------------------------------------------------------------

    def _validate(self, inputs):
        self._require_layers()
        first = self._layers[0]
        if self.ip_version is IpVersion.v2:
            return validate_v2_inputs(first, inputs)
        return validate_inputs(inputs, first.input_dims, first.input_bits, first.input_signed)

    def _chunk_size(self, batch_size, plan=None):
        plan = self._inference_plan(self._layers) if plan is None else plan
        return batch_size or max(1, inference.BATCH_MEMORY_BYTES // plan.per_sample)

    def _inference_plan(self, layers):
        """The InferencePlan of `layers`; the whole model's is kept until a layer's cache is cleared (its
        shapes or variables changed) or the model changes."""
        plan = self._plan
        if layers is self._layers and plan is not None and plan.valid():
            return plan
        plan = InferencePlan(layers)
        if layers is self._layers:
            plan.claim()
            self._plan = plan
        return plan

    def _run(self, inputs, batch_size, layers=None):
        """Forward validated inputs through `layers` (default: all; a prefix of the model), chunk by chunk,
        in topological order, recording statistics; returns the last layer's outputs.

        Chunks run in order, so temporal layers see the samples as one time sequence. Without temporal
        layers, a large batch is split into pieces that worker threads run side by side (workers.py); a piece
        runs through buffered chains a few samples at a time where that was measured faster (running.py).
        """
        plan = self._inference_plan(self._layers if layers is None else layers)
        plan.check_sample_memory()
        chunk = self._chunk_size(batch_size, plan if layers is None else None)
        size = inputs.shape[0]
        workers, step = 1, chunk
        if size > 1 and not plan.temporal:
            workers, piece = plan_pieces(size, plan.macs)
            step = min(piece, chunk) if workers > 1 else chunk
        chain = inference.buffered_chain(plan, inputs.shape) if workers == 1 and size <= chunk else None
        if chain is not None:
            with limited_threads() as limiter:
                limiter.set(1)
                self._statistics, outputs = running.run_chain(plan, chain, inputs)
            return outputs
        # pieces too large for the buffered forwards may run through them a few samples at a time
        samples = inference.chain_samples(plan, inputs.shape, min(step, size))
        with limited_threads() as limiter:  # BLAS threads per layer (threads.py)
            if samples:
                limiter.set(1)  # every product of a chain is small
                samples = samples if running.chains_pay(plan, inputs[:step], samples) else 0
            if workers > 1:
                limiter.set(1)  # the workers are the parallelism; one BLAS thread each
                limiter = None
            if samples:
                def piece(start):
                    return running.run_in_chains(plan, inputs[start:start + step], samples)
            else:
                def piece(start):
                    return running.run_piece(plan, inputs[start:start + step], limiter, banding=workers == 1)
            results = run_pieces(piece, list(range(0, size, step)), workers)
        stats = results[0][1]
        for _, piece_stats in results[1:]:
            stats.merge(piece_stats)
        self._statistics = stats
        outputs = [x for x, _ in results]
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)

    def forward(self, inputs, batch_size=0):
        """Integer inference.

        Args:
            inputs: (n, h, w, c) integer array (uint8 for image models) within the input bit range.
            batch_size: samples processed at once (0: chosen to bound memory).

        Returns:
            uint8 activations when the last layer has an activation, else int32 potentials.

        Raises:
            InputDataError: inputs of the wrong type, shape or range.
        """
        batch_size = validate_batch_size(batch_size)
        return self._run(self._validate(inputs), batch_size)

    def predict(self, inputs, batch_size=0):
        """Float outputs (float32): Akida 1.0 `(p − threshold) / act_step` per neuron of the last layer;
        Akida 2.0 the outputs of the final Dequantizer (then equal to `forward`).

        act_step is the register value floor(act_step·16)/16, as for the activation.

        Raises:
            ModelStructureError: Akida 1.0: the last layer has an activation (use forward instead);
                Akida 2.0: the last layer is not a Dequantizer.
        """
        self._require_layers()
        last = self._layers[-1]
        if self.ip_version is IpVersion.v2:
            if last.layer_type.name != "Dequantizer":
                raise ModelStructureError(f"Expected a Dequantizer as last layer to call predict; the last layer "
                                          f"is {last.layer_type.name} '{last.name}'. Use forward(), or add a "
                                          "Dequantizer")
            return self.forward(inputs, batch_size)
        if last.is_input or last.params.activation:
            raise ModelStructureError(
                f"Activations must be disabled to call the predict method: the last layer '{last.name}' has "
                "an activation; use forward(), or build it with activation=False")
        potentials = self.forward(inputs, batch_size)
        from ..kernels import dequantize
        return dequantize(potentials, last._values["threshold"], last.register_act_step)

    def _class_scores(self, inputs, batch_size):
        if self._learning is not None:
            from ..learning.training import class_scores
            return class_scores(self, inputs, batch_size)
        last = self._layers[-1]
        if self.ip_version is IpVersion.v2:
            return self.forward(inputs, batch_size)
        if not last.is_input and not last.params.activation:
            return self.predict(inputs, batch_size)
        return self.forward(inputs, batch_size)

    def predict_classes(self, inputs, num_classes=0, batch_size=0):
        """Class of each sample: argmax of the outputs, neurons grouped per class when num_classes is given.

        With `num_classes` < units, neuron n votes for class n // (units // num_classes).
        """
        scores = self._class_scores(inputs, batch_size).reshape(len(inputs), -1)
        units = scores.shape[1]
        if num_classes:
            if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
                    or num_classes < 0 or units % num_classes:
                raise InputDataError(f"num_classes={num_classes!r} must divide the {units} output neurons")
            per_class = units // num_classes
            return (np.argmax(scores, axis=1) // per_class).astype(np.int64)
        return np.argmax(scores, axis=1).astype(np.int64)

    def evaluate(self, inputs, labels, num_classes=0, batch_size=0):
        """Accuracy of `predict_classes` against integer `labels` (float in [0, 1])."""
        labels = np.asarray(labels).reshape(-1)
        if labels.shape[0] != len(inputs):
            raise InputDataError(f"got {labels.shape[0]} labels for {len(inputs)} samples")
        predicted = self.predict_classes(inputs, num_classes, batch_size)
        return float(np.mean(predicted == labels))

    # --- mapping and learning (delegated) ------------------------------------------------------

    def map(self, device=None, hw_only=False, mode=None, constraints=None):
        """Map the model on `device` (Akida 1.0: akida_core.mapping; Akida 2.0: akida_core.mapping.v2);
        `map(None)` returns to software.

        Raises:
            MappingError: the model does not fit as asked, or model and device generations differ.
        """
        if device is not None and self.ip_version is IpVersion.v2:
            from ..mapping.v2.mapper import map_model_v2
            map_model_v2(self, device, hw_only=hw_only, mode=mode, constraints=constraints)
            return
        if constraints is not None:
            raise MappingError("constraints= is an Akida 2.0 mapping option (MapConstraints); Akida 1.0 models map "
                               "without it")
        from ..mapping.mapper import map_model
        map_model(self, device, hw_only=hw_only, mode=mode)

    @property
    def sequences(self):
        """Hardware / software sequences of the current mapping (one software sequence if unmapped)."""
        from ..mapping.mapper import model_sequences
        return model_sequences(self)

    @property
    def device(self):
        """The device the model is mapped on, or None."""
        return None if self._mapping is None else self._mapping.device

    def compile(self, optimizer):
        """Compile the last layer for edge learning with an `AkidaUnsupervised` optimizer (Akida 1.0 only)."""
        if self.ip_version is IpVersion.v2:
            raise ModelStructureError("edge learning (compile) is an Akida 1.0 feature; this model is Akida 2.0")
        from ..learning.training import compile_model
        compile_model(self, optimizer)

    def fit(self, inputs, input_labels=None, batch_size=0):
        """Edge-learn on `inputs` (labels: int, list or array); returns the last layer's outputs."""
        from ..learning.training import fit_model
        return fit_model(self, inputs, input_labels, batch_size)

    def add_classes(self, num_add_classes):
        """Add neurons for `num_add_classes` new classes to the compiled learning layer."""
        from ..learning.training import add_classes
        add_classes(self, num_add_classes)

    # --- summary and serialisation -------------------------------------------------------------

    def summary(self, print_fn=print):
        """Print the model description (layers, shapes, bits, parameters, MACs, mapping, learning)."""
        print_fn(summary_text(self))

    def to_dict(self):
        """Describe the model as a dict of plain values and numpy arrays (what .fbz stores)."""
        return description.describe(self)

    @classmethod
    def from_dict(cls, data):
        """Rebuild a model from `to_dict()` output (every field is validated, as when loading a file).

        Raises:
            ModelFormatError: anything malformed, naming the layer and the field.
        """
        def read():
            check_depth(data)
            return data
        model = cls()
        description.restore_checked(model, read, "<dict>")
        return model

    def to_json(self):
        """The `to_dict()` description as a JSON string (arrays as {dtype, shape, data})."""
        import json
        return json.dumps(arrays_to_lists(self.to_dict()))

    @classmethod
    def from_json(cls, text):
        """Rebuild a model from `to_json()` output.

        Raises:
            ModelFormatError: not JSON, NaN/Infinity, nested deeper than 64, or a malformed model.
        """
        data = description.parse_json(text)
        model = cls()
        description.restore_checked(model, lambda: lists_to_arrays(data), "<json>")
        return model

    def save(self, model_file):
        """Save the model (architecture, variables, mapping, learning state) to a .fbz file, atomically."""
        fbz.write(model_file, self.to_dict())

    def to_buffer(self):
        """Return the .fbz bytes of the model."""
        return fbz.dumps(self.to_dict())

    @classmethod
    def from_buffer(cls, data):
        """Load a model from .fbz bytes."""
        model = cls()
        description.restore_checked(model, lambda: fbz.loads(data), "<buffer>")
        return model

    def _load_from(self, filename):
        description.restore_checked(self, lambda: fbz.read(filename), filename)

    def __repr__(self):
        return f"<akida_core.Model {len(self._layers)} layers {[lay.name for lay in self._layers]}>"


__all__ = ["Model", "LAYER_KINDS"]

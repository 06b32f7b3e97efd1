"""Akida edge learning on the last FullyConnected layer: compile, fit, add_classes, scores, state.

The Model delegates `compile`, `fit`, `add_classes` and (once compiled) its class scores here. The
rule itself is in `learning_rule.py` (pure integer functions); this module checks the constraints,
moves data between the layer's variables and the rule, and registers the .fbz state and the
"Learning Summary". See docs/learning.md.
"""
import contextlib
import dataclasses
import warnings

import numpy as np

from .. import kernels
from ..enums import LayerType
from ..errors import InputDataError, ModelFormatError, ModelStructureError
from ..model.inputs import validate_batch_size
from ..layers.base import FC_POTENTIAL_BITS, VariableSpec
from .rule import (Q16_ONE, AkidaUnsupervised, LearningError, LearningParameterError,
                            initial_weights, learn)
from ..model.state import register_state
from ..model.statistics import Statistics
from ..model.summary import format_table, register_section

LEARNING_VARIABLES = ("plasticity", "thswap", "threshold_learning")
"""Per-neuron int32 variables a compiled layer carries (saved with the layer)."""

HISTOGRAM_BINS = 101
"""get_learning_histogram(): one bin per percent of num_weights, 0 .. 100."""


@dataclasses.dataclass
class LearningState:
    """What `model._learning` holds: the options, and counters of the samples fit has seen
    (`learned_samples`: presented unlabelled or with a valid label; `skipped_samples`: label out of range)."""

    optimizer: AkidaUnsupervised
    learned_samples: int = 0
    skipped_samples: int = 0

    def histogram(self, layer):
        """Histogram of the learning layer's threshold_learning in percent of num_weights (101 bins)."""
        percent = layer._values["threshold_learning"].astype(np.int64) * 100 // self.optimizer.num_weights
        return np.bincount(percent, minlength=HISTOGRAM_BINS).astype(np.int64)


# --- checks --------------------------------------------------------------------------------------

def learning_layer(model):
    """Return the last layer of `model` if it can learn, else raise with the reason and the fix.

    Raises:
        ModelStructureError: no layer, not FullyConnected, non-binary weights or inputs.
    """
    if not model.layers:
        raise ModelStructureError("The model has no layers: add an input layer and a FullyConnected "
                                  "layer before compiling for edge learning.")
    layer = model.layers[-1]
    where = f"Layer '{layer.name}' ({layer.layer_type.name})"
    if layer.layer_type != LayerType.FullyConnected:
        raise ModelStructureError(
            f"The last layer of the model is not trainable: {where} is the last layer; only a "
            "FullyConnected last layer can learn. Hint: add a FullyConnected(units, weights_bits=1) layer.")
    if layer.params.weights_bits != 1:
        raise ModelStructureError(
            f"Only layers with binary weights can be trained: {where} has weights_bits="
            f"{layer.params.weights_bits}; allowed: 1. Hint: build it with weights_bits=1.")
    if layer.input_bits != 1:
        raise ModelStructureError(
            f"Only layers receiving binary inputs can be trained: {where} receives {layer.input_bits}-bit "
            "inputs; allowed: 1. Hint: give the previous layer act_bits=1.")
    return layer


def _check_options(layer, options):
    if not isinstance(options, AkidaUnsupervised):
        raise LearningParameterError(
            f"compile expects an AkidaUnsupervised optimizer, got {type(options).__name__}. "
            "Hint: model.compile(AkidaUnsupervised(num_weights=...)).")
    units, inputs = layer.params.units, layer.input_size
    if units % options.num_classes:
        raise LearningParameterError(
            f"Layer '{layer.name}': units={units} is not a multiple of num_classes={options.num_classes}; "
            "neurons are split in equal groups per class. "
            f"Hint: use units={options.num_classes * max(1, units // options.num_classes)}.")
    if options.num_weights > inputs:
        raise LearningParameterError(
            f"Layer '{layer.name}': num_weights={options.num_weights} exceeds the {inputs} inputs of each "
            f"neuron; allowed: 1 .. {inputs} (the user guide advises at most half, {inputs // 2}).")


def _require_compiled(model, action):
    if model._learning is None:
        raise LearningError(
            f"Cannot {action}: the model is not compiled for edge learning. "
            "Hint: call model.compile(AkidaUnsupervised(num_weights=...)) first.")
    return learning_layer(model)


def _specs(options, units):
    return {"plasticity": VariableSpec((units,), np.int32, 0, Q16_ONE),
            "thswap": VariableSpec((units,), np.int32, 0, 2 ** 31 - 1),
            "threshold_learning": VariableSpec((units,), np.int32, 0, options.num_weights)}


# --- compile and add_classes ---------------------------------------------------------------------

def compile_model(model, optimizer):
    """Compile the last layer for edge learning (re-compiling starts learning afresh).

    Each neuron gets exactly `num_weights` weights set to 1 (deterministic from the seed), threshold
    0, plasticity `initial_plasticity`, and no learning step yet. A mapped model is mapped again on
    its device, so that the learning layer stays on one NP.

    Raises:
        ModelStructureError: the last layer cannot learn.
        LearningParameterError: bad optimizer, units not a multiple of num_classes, num_weights too large.
        MappingError: the mapped model cannot keep the learning layer on one NP (nothing is changed).
    """
    layer = learning_layer(model)
    _check_options(layer, optimizer)
    units = layer.params.units
    weights = initial_weights(optimizer.rule, layer.input_size, np.arange(units))
    with _transaction(model, layer):
        _install(layer, optimizer, weights, np.zeros(units, np.int32),
                 np.full(units, optimizer.rule.initial, np.int32), np.zeros(units, np.int32),
                 np.zeros(units, np.int32))
        model._learning = LearningState(optimizer)


def _install(layer, options, weights, threshold, plasticity, thswap, threshold_learning):
    """Write every learning-related variable of `layer` (weights in Akida order, (inputs, units))."""
    layer.set_variable("weights", weights.astype(np.int8).reshape(1, 1, *weights.shape))
    layer.set_variable("threshold", threshold)
    for name in LEARNING_VARIABLES:
        layer.remove_variable(name)
    values = {"plasticity": plasticity, "thswap": thswap, "threshold_learning": threshold_learning}
    for name, spec in _specs(options, layer.params.units).items():
        layer.add_variable(name, spec, values[name])


@contextlib.contextmanager
def _transaction(model, layer):
    """Undo every change to the layer, the learning state and the mapping if the block raises; on
    success, map again on the previous device (mapping reads `model._learning` for the one-NP rule)."""
    params, values, specs = layer.params, dict(layer._values), dict(layer._extra_specs)
    learning, mapping = model._learning, model._mapping
    try:
        yield
        if mapping is not None:
            model.map(mapping.device, hw_only=mapping.hw_only, mode=mapping.mode)
    except BaseException:
        model._learning = None
        if layer.params != params:
            model._reparameterize(layer, params)
        layer._values, layer._extra_specs = values, specs
        layer._cache.clear()
        model._learning, model._mapping = learning, mapping
        raise


def add_classes(model, num_add_classes):
    """Append `num_add_classes` × neurons-per-class fresh neurons; learned neurons are kept.

    Raises:
        LearningError: the model is not compiled.
        LearningParameterError: num_add_classes is not a positive integer.
        MappingError: the mapped model cannot keep the grown layer on one NP (nothing is changed).
    """
    layer = _require_compiled(model, "add classes")
    if isinstance(num_add_classes, (bool, np.bool_)) or not isinstance(num_add_classes, (int, np.integer)) \
            or num_add_classes < 1:
        raise LearningParameterError(f"add_classes: num_add_classes={num_add_classes!r} must be an integer >= 1")
    state = model._learning
    options = state.optimizer
    per_class = layer.params.units // options.num_classes
    old_units, new_units = layer.params.units, layer.params.units + int(num_add_classes) * per_class
    new_options = dataclasses.replace(options, num_classes=options.num_classes + int(num_add_classes))
    old = {name: layer._values[name].copy() for name in layer.variable_specs()}
    fresh = np.arange(old_units, new_units)
    weights = np.concatenate([old["weights"][0, 0].astype(np.uint8),
                              initial_weights(options.rule, layer.input_size, fresh)], axis=1)
    grow = lambda name, value: np.concatenate(  # noqa: E731
        [old[name], np.full(len(fresh), value, old[name].dtype)])
    with _transaction(model, layer):
        model._learning = None  # Model refuses structural changes while compiled; re-installed below.
        for name in LEARNING_VARIABLES:
            layer.remove_variable(name)
        model._reparameterize(layer, dataclasses.replace(layer.params, units=new_units))
        layer.set_variable("act_step", grow("act_step", 1.0))
        _install(layer, new_options, weights, grow("threshold", 0), grow("plasticity", options.rule.initial),
                 grow("thswap", 0), grow("threshold_learning", 0))
        model._learning = LearningState(new_options, state.learned_samples, state.skipped_samples)


# --- fit and scores ------------------------------------------------------------------------------

def _binary_inputs(model, inputs, batch_size):
    """Inputs of the learning layer for validated model inputs, as (n, inputs) bool in Akida order."""
    batch_size = validate_batch_size(batch_size)
    x = model._validate(inputs)
    x = model._run(x, batch_size, layers=model.layers[:-1])
    # Akida flattens column-major (c, w, h): the weight rows follow that order.
    return np.ascontiguousarray(x.transpose(0, 3, 2, 1).reshape(x.shape[0], -1) > 0)


def _labels(input_labels, n, num_classes):
    """Per-sample labels (int64; -1 = unlabelled) and how many are out of range."""
    if input_labels is None:
        return np.full(n, -1, np.int64), 0
    try:
        raw = np.asarray(input_labels)
    except (ValueError, TypeError) as err:  # ragged lists
        raise InputDataError(f"fit: input_labels must be an int, a list or an array of integers: {err}") from err
    if raw.dtype == np.bool_ or not (np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)):
        raise InputDataError(f"fit: input_labels must be an int, a list or an array of integers; got {input_labels!r}")
    if raw.ndim == 0:
        raw = np.full(n, raw.item())
    raw = raw.reshape(-1)
    if raw.shape[0] != n:
        raise InputDataError(f"fit: got {raw.shape[0]} labels for {n} samples; give one label per sample "
                             "or a single int for all")
    if np.issubdtype(raw.dtype, np.floating) and not np.all(np.isfinite(raw) & (raw == np.round(raw))):
        raise InputDataError(f"fit: input_labels must be whole numbers; got {raw[~(raw == np.round(raw))][:5]}")
    bad = (raw < 0) | (raw >= num_classes)  # before the cast: huge labels must not wrap into range
    return np.where(bad, -2, raw).astype(np.int64), int(bad.sum())


def fit_model(model, inputs, input_labels=None, batch_size=0):
    """Learn from `inputs` one sample at a time; return the layer's outputs (n, 1, 1, units).

    Each output is what the layer produced for its sample before learning from it (uint8 levels,
    or int32 potentials without activation). With labels, only the label's neurons may learn;
    samples whose label is outside [0, num_classes) are skipped, counted and warned about.

    Raises:
        LearningError: not compiled.
        InputDataError: bad inputs or labels.
    """
    layer = _require_compiled(model, "fit")
    state = model._learning
    options = state.optimizer
    x = _binary_inputs(model, inputs, batch_size)
    labels, skipped = _labels(input_labels, x.shape[0], options.num_classes)
    units = layer.params.units
    per_class = units // options.num_classes
    neuron_class = np.arange(units) // per_class
    eligibility = (labels[:, None] == -1) | (labels[:, None] == neuron_class[None, :])
    weights, new_state, potentials = learn(
        options.rule, layer._values["weights"][0, 0], [layer._values[n] for n in LEARNING_VARIABLES],
        x, eligibility)
    _install(layer, options, weights, layer._values["threshold"], *new_state)
    state.learned_samples += x.shape[0] - skipped
    state.skipped_samples += skipped
    if skipped:
        warnings.warn(f"fit: skipped {skipped} of {x.shape[0]} samples whose label is outside "
                      f"[0, {options.num_classes}) (num_classes={options.num_classes})", stacklevel=3)
    # The learning layer is a FullyConnected: its potentials saturate like forward's (binary inputs
    # keep them far below 2**19 on any mappable layer; software layers can be larger).
    outputs = layer._activate(kernels.saturate(potentials, FC_POTENTIAL_BITS)).reshape(x.shape[0], 1, 1, units)
    model._statistics.layers.update(Statistics.for_layers([layer]).layers)
    model._statistics.record(layer, outputs)
    return outputs


def class_scores(model, inputs, batch_size=0):
    """Per-neuron scores of a compiled model: potentials of trained neurons, -1 for never-trained ones.

    A potential counts the active inputs a neuron is connected to (0 .. num_weights); a neuron that
    never learned has random connections, so it must not outvote a trained one.
    """
    layer = _require_compiled(model, "score classes")
    x = _binary_inputs(model, inputs, batch_size)
    potentials = kernels.dense(x.view(np.uint8), layer._values["weights"][0, 0])
    return np.where(layer._values["thswap"] > 0, potentials, -1).astype(np.int32)


def learning_histogram(layer):
    """Histogram of threshold_learning as a percentage of num_weights: (101,) int64 neuron counts.

    Bin k counts the neurons whose last learned match is floor(100 · threshold_learning /
    num_weights) = k percent; untrained neurons are in bin 0.

    Raises:
        LearningError: the layer's model is not compiled for learning.
    """
    model = layer.model
    if model is None or model._learning is None or model.layers[-1] is not layer:
        raise LearningError(f"Layer '{layer.name}' is not compiled for edge learning: no learning histogram. "
                            "Hint: model.compile(AkidaUnsupervised(num_weights=...)) and fit first.")
    return model._learning.histogram(layer)


# --- .fbz state and summary ----------------------------------------------------------------------

def save_state(model):
    """The learning state stored in .fbz (None when not compiled); variables travel with the layer."""
    state = model._learning
    if state is None:
        return None
    return {"optimizer": state.optimizer.to_dict(), "learned_samples": state.learned_samples,
            "skipped_samples": state.skipped_samples}


def load_state(model, saved):
    """Restore the learning state after the layers; validate it against the layer's variables.

    Raises:
        ModelFormatError: anything inconsistent (options, layer, variable shapes or invariants).
    """
    fields = [f.name for f in dataclasses.fields(AkidaUnsupervised)]
    if not isinstance(saved, dict) or set(saved) != {"optimizer", "learned_samples", "skipped_samples"} \
            or not isinstance(saved["optimizer"], dict) or set(saved["optimizer"]) != set(fields):
        raise ModelFormatError(f"learning state must be {{optimizer: {{{', '.join(fields)}}}, learned_samples, "
                               f"skipped_samples}}; got {saved!r:.200}")
    counters = [saved["learned_samples"], saved["skipped_samples"]]
    if any(type(c) is not int or c < 0 for c in counters):
        raise ModelFormatError(f"learning state: sample counters must be integers >= 0; got {counters}")
    try:
        options = AkidaUnsupervised(**saved["optimizer"])
        layer = learning_layer(model)
        _check_options(layer, options)
        values = [layer._values.get(name) for name in LEARNING_VARIABLES]
        if any(v is None for v in values):
            raise ModelFormatError(f"learning state: layer '{layer.name}' lacks the learning variables "
                                   f"{list(LEARNING_VARIABLES)}")
        _install(layer, options, layer._values["weights"][0, 0], layer._values["threshold"], *values)
    except (LearningParameterError, ModelStructureError, ValueError) as err:
        if isinstance(err, ModelFormatError):
            raise
        raise ModelFormatError(f"invalid learning state: {err}") from err
    _check_invariants(layer, options)
    model._learning = LearningState(options, *counters)


def _check_invariants(layer, options):
    """Loaded state must be reachable by compile + fit (exactly num_weights ones, plasticity bounds)."""
    rule = options.rule
    ones = layer._values["weights"][0, 0].astype(np.int64).sum(axis=0)
    plasticity, thswap, threshold_learning = (layer._values[n] for n in LEARNING_VARIABLES)
    fresh = thswap == 0
    problems = []
    if np.any(ones != options.num_weights):
        problems.append(f"neurons with {sorted(set(ones.tolist()) - {options.num_weights})[:3]} weights set "
                        f"instead of num_weights={options.num_weights}")
    if np.any(plasticity > rule.initial) or np.any(plasticity < min(rule.initial, rule.minimum)):
        problems.append(f"plasticity outside [{min(rule.initial, rule.minimum)}, {rule.initial}] (Q16)")
    if np.any(plasticity[fresh] != rule.initial) or np.any(threshold_learning[fresh] != 0):
        problems.append("never-trained neurons (thswap=0) with a decayed plasticity or a threshold_learning")
    if problems:
        raise ModelFormatError(f"invalid learning state of layer '{layer.name}': " + "; ".join(problems))


def learning_summary(model):
    """The "Learning Summary" lines of Model.summary() (None when not compiled)."""
    if model._learning is None:
        return None
    layer, state = model.layers[-1], model._learning
    options = state.optimizer
    trained = int(np.count_nonzero(layer._values["thswap"]))
    rows = [(layer.name, f"{layer.input_size:,}", str(int(layer._values["weights"][0, 0, :, 0].sum())),
             str(options.num_classes), str(layer.params.units // options.num_classes),
             f"{trained}/{layer.params.units}")]
    header = ("Learning Layer", "# Input Conn.", "# Weights", "Classes", "Neurons/class", "Trained")
    return ["Learning Summary"] + format_table(header, rows) + [
        f"plasticity: initial {options.initial_plasticity:g}, min {options.min_plasticity:g}, decay "
        f"{options.plasticity_decay:g}; competition {options.learning_competition:g}; seed {options.seed}",
        f"samples fit: {state.learned_samples:,}  skipped (label out of range): {state.skipped_samples:,}"]


register_state("learning", save_state, load_state)
register_section(learning_summary)

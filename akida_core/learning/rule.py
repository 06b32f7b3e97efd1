"""The edge-learning rule: compile options and pure, integer, deterministic weight-update functions.

A learning layer holds, per neuron j, a binary weight column with exactly `num_weights` ones, and
three int32 variables (docs/learning.md describes the rule and why):

- `plasticity[j]`: how much of its mismatch the neuron repairs at its next learning step, in
  Q16 fixed point (65536 = 1.0). It starts at `initial_plasticity`, loses
  `plasticity_decay · initial_plasticity` per learning step, never goes below `min_plasticity`
  (nor rises). A neuron at 0 never learns.
- `thswap[j]`: how many learning steps (weight swaps) the neuron made; 0 means "never learned".
- `threshold_learning[j]`: the neuron's potential on the last sample it learned, after learning
  (how well it matched what it learned; 0 <= value <= num_weights).

"Random" choices (initial connections, which connections move) rank candidates by a splitmix64
hash of (seed, neuron, step, input index): any implementation reproduces them bit for bit, and a
saved and reloaded model continues with exactly the choices it would have made.
"""
import dataclasses

import numpy as np

from ..errors import AkidaError, LearningError  # noqa: F401 (LearningError is part of this module's API)

Q16_ONE = 1 << 16
"""Fixed-point scale of plasticity and competition (65536 = 1.0)."""

_MASK64 = (1 << 64) - 1
_SALT_INIT, _SALT_ADD, _SALT_DROP = 0x1D8E4E27C47D124F, 0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F


class LearningParameterError(AkidaError, ValueError):
    """An AkidaUnsupervised option is out of range, or a layer cannot be compiled with it."""


def _check_fraction(name, value, what):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or not 0.0 <= float(value) <= 1.0:
        raise LearningParameterError(
            f"AkidaUnsupervised: {name}={value!r} is invalid: {what} must be between 0 and 1 (inclusive).")
    return float(value)


def _check_count(name, value, low, high=2 ** 31 - 1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or not low <= value <= high:
        raise LearningParameterError(
            f"AkidaUnsupervised: {name}={value!r} must be an integer in [{low}, {high}].")
    return int(value)


@dataclasses.dataclass(frozen=True)
class AkidaUnsupervised:
    """Edge-learning options of the last FullyConnected layer, checked on construction.

    Args:
        num_weights: active (binary, non-zero) connections per neuron, > 0.
        num_classes: classes in labelled mode; units must be a multiple of it.
        initial_plasticity: plasticity of a fresh neuron, in [0, 1] (0: never learns).
        learning_competition: how strongly trained neurons keep new neurons from learning what they
            already recognise, in [0, 1] (0: not at all; keep it <= 0.5).
        min_plasticity: floor of the decayed plasticity, in [0, 1].
        plasticity_decay: plasticity lost per learning step, relative to initial_plasticity, in [0, 1].
        seed: seed of the deterministic "random" choices (our extension; default 0).

    Example:
        >>> model.compile(AkidaUnsupervised(num_weights=40, num_classes=5))
    """

    num_weights: int
    num_classes: int = 1
    initial_plasticity: float = 1.0
    learning_competition: float = 0.0
    min_plasticity: float = 0.1
    plasticity_decay: float = 0.25
    seed: int = 0

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "num_weights", _check_count("num_weights", self.num_weights, 1))
        set_(self, "num_classes", _check_count("num_classes", self.num_classes, 1))
        set_(self, "initial_plasticity",
             _check_fraction("initial_plasticity", self.initial_plasticity, "The initial plasticity"))
        set_(self, "learning_competition",
             _check_fraction("learning_competition", self.learning_competition, "The learning competition"))
        set_(self, "min_plasticity", _check_fraction("min_plasticity", self.min_plasticity,
                                                     "The minimum plasticity"))
        set_(self, "plasticity_decay", _check_fraction("plasticity_decay", self.plasticity_decay,
                                                       "The plasticity decay"))
        set_(self, "seed", _check_count("seed", self.seed, 0, 2 ** 63 - 1))

    def to_dict(self):
        """The options as plain values (what .fbz stores)."""
        return dataclasses.asdict(self)

    @property
    def rule(self):
        """The integer constants of the rule (Q16 fixed point)."""
        return LearningRule.from_options(self)


@dataclasses.dataclass(frozen=True)
class LearningRule:
    """Integer form of the options: every learning decision uses only these integers."""

    num_weights: int
    initial: int
    minimum: int
    decay: int
    competition: int
    seed: int

    @classmethod
    def from_options(cls, options):
        """Round the float options to Q16 once (round half up), so learning never touches floats."""
        q = lambda v: int(np.floor(v * Q16_ONE + 0.5))  # noqa: E731
        return cls(options.num_weights, q(options.initial_plasticity), q(options.min_plasticity),
                   q(options.plasticity_decay * options.initial_plasticity),
                   q(options.learning_competition), options.seed)


# --- deterministic choices -----------------------------------------------------------------------

def _splitmix64(z):
    """splitmix64 finalizer on a uint64 array (a bijection; numpy uint64 arrays wrap silently)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _splitmix64_int(z):
    """The same finalizer on one Python int (cheaper than a one-element array)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def priorities(seed, neuron, step, salt, indices):
    """uint64 rank of each input index for one (seed, neuron, step, purpose); distinct per index.

    Distinct because the key is base + index·odd (mod 2**64), injective for indices < 2**64, and
    splitmix64 is a bijection: selections never depend on tie-breaking.
    """
    base = (seed * 0xD6E8FEB86659FD93 + neuron * 0xA0761D6478BD642F + step * 0xE7037ED1A0B428DB
            + salt) & _MASK64
    base = _splitmix64_int(base)
    keys = np.asarray(indices, np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(base)
    return _splitmix64(keys)


def _top(indices, seed, neuron, step, salt, count):
    """The `count` indices of highest priority (all of them if fewer)."""
    if count >= len(indices):
        return indices
    ranks = priorities(seed, neuron, step, salt, indices)
    return indices[np.argpartition(ranks, len(indices) - count)[len(indices) - count:]]


def initial_weights(rule, input_size, neurons):
    """Binary (input_size, len(neurons)) uint8 columns, each with exactly num_weights ones.

    Args:
        rule: LearningRule.
        input_size: inputs per neuron (>= num_weights).
        neurons: global indices of the neurons (so add_classes draws the same as a fresh compile would).
    """
    assert rule.num_weights <= input_size
    weights = np.zeros((input_size, len(neurons)), np.uint8)
    everything = np.arange(input_size)
    for column, neuron in enumerate(neurons):
        weights[_top(everything, rule.seed, int(neuron), 0, _SALT_INIT, rule.num_weights), column] = 1
    return weights


def decayed(rule, plasticity):
    """Plasticity after one learning step: minus decay, never below min_plasticity, never up."""
    return max(min(plasticity, rule.minimum), plasticity - rule.decay)


# --- one learning step ---------------------------------------------------------------------------

def choose_learner(rule, potentials, eligible, state):
    """Index of the neuron that learns the sample, or -1 when none may.

    Among eligible neurons with plasticity > 0: the best trained neuron t (highest potential, lowest
    index on ties) learns when its potential reaches its bar threshold_learning[t]·(1 − competition)
    or when no untrained neuron is left; otherwise the best untrained neuron is recruited.
    """
    plasticity, thswap, threshold_learning = state
    can_learn = eligible & (plasticity > 0)
    trained = can_learn & (thswap > 0)
    fresh = can_learn & (thswap == 0)
    best_trained = _argmax_where(potentials, trained)
    if best_trained >= 0:
        theta = int(threshold_learning[best_trained])
        bar = theta - ((rule.competition * theta) >> 16)
        if potentials[best_trained] >= bar or not fresh.any():
            return best_trained
    return _argmax_where(potentials, fresh)


def _argmax_where(values, mask):
    if not mask.any():
        return -1
    # -1 is below every potential (>= 0); int64 so the fill value never wraps in a narrower dtype.
    return int(np.argmax(np.where(mask, np.asarray(values, np.int64), -1)))


def learn_step(rule, weights, active, neuron, potential, state):
    """Let `neuron` learn a binary sample, in place on working arrays.

    Swaps n = ceil(plasticity · m) connections from inactive to active inputs, where m is the
    number of swaps that can raise its potential; the count of ones never changes.

    Args:
        rule: LearningRule.
        weights: (inputs, units) uint8 binary working weights (modified).
        active: (inputs,) bool sample.
        neuron: index of the learning neuron.
        potential: its potential on the sample before learning.
        state: (plasticity, thswap, threshold_learning) int32 working arrays (modified).
    """
    plasticity, thswap, threshold_learning = state
    column = weights[:, neuron].astype(bool)
    missing = np.flatnonzero(active & ~column)
    wasted = np.flatnonzero(column & ~active)
    mismatch = min(len(missing), len(wasted))
    # plasticity <= 2**16 and mismatch < 2**31: the product fits Python ints exactly.
    swaps = (int(plasticity[neuron]) * mismatch + Q16_ONE - 1) >> 16
    step = int(thswap[neuron])
    if swaps:
        weights[_top(missing, rule.seed, neuron, step, _SALT_ADD, swaps), neuron] = 1
        weights[_top(wasted, rule.seed, neuron, step, _SALT_DROP, swaps), neuron] = 0
    threshold_learning[neuron] = potential + swaps
    thswap[neuron] = min(step + 1, 2 ** 31 - 1)
    plasticity[neuron] = decayed(rule, int(plasticity[neuron]))


def learn(rule, weights, state, samples, eligibility):
    """Present binary samples one by one; each is scored with the weights of that moment.

    A pure function: the inputs are not modified.

    Args:
        rule: LearningRule.
        weights: (inputs, units) binary weights, inputs in Akida's flattening order.
        state: (plasticity, thswap, threshold_learning), each (units,) int32.
        samples: (n, inputs) binary samples (same order as the weights).
        eligibility: (n, units) bool, neurons allowed to learn each sample (all False: skip it).

    Returns:
        (weights, state, potentials): updated copies, and the (n, units) int32 potentials of each
        sample before it was learned (what the layer output at that moment).
    """
    weights = np.array(weights, np.uint8)
    state = tuple(np.array(s, np.int32) for s in state)
    samples = np.asarray(samples)
    potentials = np.zeros((samples.shape[0], weights.shape[1]), np.int32)
    for i, sample in enumerate(samples):
        active = sample.astype(bool)
        # int32: a potential counts at most `inputs` ones, far below 2**31 for any layer we accept.
        potentials[i] = weights[active].sum(axis=0, dtype=np.int32)
        neuron = choose_learner(rule, potentials[i], eligibility[i], state)
        if neuron >= 0:
            learn_step(rule, weights, active, neuron, int(potentials[i, neuron]), state)
    return weights, state, potentials

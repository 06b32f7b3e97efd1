"""The pure edge-learning rule: hand-worked steps, competition, plasticity schedule, determinism."""
import numpy as np
import pytest

from akida_core.learning_rule import (Q16_ONE, AkidaUnsupervised, LearningParameterError, choose_learner,
                                      decayed, initial_weights, learn, priorities)


def rule(**kwargs):
    return AkidaUnsupervised(**{"num_weights": 3, **kwargs}).rule


def fresh_state(units, plasticity=Q16_ONE):
    return (np.full(units, plasticity, np.int32), np.zeros(units, np.int32), np.zeros(units, np.int32))


def test_options_round_to_q16_once():
    r = AkidaUnsupervised(5, initial_plasticity=0.5, plasticity_decay=0.25, min_plasticity=0.1,
                          learning_competition=0.3).rule
    assert (r.initial, r.decay, r.minimum, r.competition) == (32768, 8192, 6554, 19661)


@pytest.mark.parametrize("name", ["initial_plasticity", "learning_competition", "min_plasticity",
                                  "plasticity_decay"])
@pytest.mark.parametrize("value", [-0.01, 1.01, float("nan"), "0.5", True])
def test_float_options_must_be_in_0_1(name, value):
    with pytest.raises(LearningParameterError, match=f"{name}=.*must be between 0 and 1"):
        AkidaUnsupervised(4, **{name: value})


@pytest.mark.parametrize("kwargs", [{"num_weights": 0}, {"num_weights": 2.0}, {"num_weights": 3, "num_classes": 0},
                                    {"num_weights": 3, "seed": -1}])
def test_integer_options_are_checked(kwargs):
    with pytest.raises(LearningParameterError, match="must be an integer"):
        AkidaUnsupervised(**kwargs)


def test_one_step_by_hand():
    weights = np.array([[1], [1], [1], [0], [0], [0]], np.uint8)
    sample = np.array([[0, 1, 0, 1, 1, 1]], np.uint8)
    new_w, (plast, thswap, theta), pots = learn(rule(), weights, fresh_state(1), sample, np.ones((1, 1), bool))
    assert pots.tolist() == [[1]]                      # output before learning
    col = new_w[:, 0]
    assert col.sum() == 3 and col[1] == 1               # kept the matching connection
    assert col[[0, 2]].sum() == 0                       # both inactive connections moved (m = 2, plasticity 1)
    assert col[[3, 4, 5]].sum() == 2
    assert (plast.tolist(), thswap.tolist(), theta.tolist()) == ([Q16_ONE - Q16_ONE // 4], [1], [3])
    assert weights[:, 0].tolist() == [1, 1, 1, 0, 0, 0]  # pure: the input is untouched


def test_half_plasticity_moves_ceil_half_of_the_mismatch():
    weights = np.array([[1], [1], [1], [0], [0], [0]], np.uint8)
    sample = np.array([[0, 1, 0, 1, 1, 1]], np.uint8)
    state = fresh_state(1, plasticity=Q16_ONE // 2)
    new_w, (_, _, theta), _ = learn(rule(initial_plasticity=0.5), weights, state, sample, np.ones((1, 1), bool))
    assert int(new_w[[3, 4, 5], 0].sum()) == 1 and theta.tolist() == [2]


def test_zero_plasticity_never_learns():
    weights = np.array([[1], [1], [0], [0]], np.uint8)
    state = fresh_state(1, plasticity=0)
    new_w, new_state, _ = learn(rule(num_weights=2, initial_plasticity=0.0), weights, state,
                                np.array([[0, 0, 1, 1]]), np.ones((1, 1), bool))
    assert np.array_equal(new_w, weights) and all(np.array_equal(a, b) for a, b in zip(new_state, state))


def test_plasticity_schedule():
    r = rule(initial_plasticity=0.8, plasticity_decay=0.25, min_plasticity=0.3)
    p, seen = r.initial, []
    for _ in range(6):
        seen.append(p)
        p = decayed(r, p)
    step = r.decay
    assert seen == [r.initial, r.initial - step, r.initial - 2 * step, r.minimum, r.minimum, r.minimum]
    below = rule(initial_plasticity=0.05, min_plasticity=0.1)  # starts under the floor: stays, never rises
    assert decayed(below, below.initial) == below.initial


@pytest.mark.parametrize("competition, learner", [(0.0, 1), (0.5, 0)])
def test_competition_lets_trained_neurons_claim_similar_samples(competition, learner):
    r = rule(learning_competition=competition)
    # neuron 0 learned a sample it matched with 3 connections; this one it matches with 2
    state = (np.array([Q16_ONE // 2, Q16_ONE], np.int32), np.array([1, 0], np.int32), np.array([3, 0], np.int32))
    assert choose_learner(r, np.array([2, 1]), np.array([True, True]), state) == learner


def test_trained_neuron_learns_when_no_fresh_neuron_is_left():
    state = (np.array([100, 100], np.int32), np.array([2, 1], np.int32), np.array([3, 3], np.int32))
    assert choose_learner(rule(), np.array([0, 1]), np.array([True, True]), state) == 1
    assert choose_learner(rule(), np.array([0, 1]), np.array([True, False]), state) == 0
    assert choose_learner(rule(), np.array([0, 1]), np.array([False, False]), state) == -1


def test_initial_weights_have_exactly_num_weights_ones_and_depend_on_seed_and_neuron():
    w = initial_weights(rule(num_weights=7), 30, np.arange(4))
    assert w.dtype == np.uint8 and w.sum(axis=0).tolist() == [7] * 4
    assert len({w[:, j].tobytes() for j in range(4)}) == 4
    assert np.array_equal(initial_weights(rule(num_weights=7), 30, [2]), w[:, 2:3])  # add_classes draws alike
    assert not np.array_equal(initial_weights(rule(num_weights=7, seed=1), 30, np.arange(4)), w)


def test_priorities_are_distinct_and_reproducible():
    a = priorities(3, 1, 2, 5, np.arange(10_000))
    assert len(np.unique(a)) == 10_000
    assert np.array_equal(a, priorities(3, 1, 2, 5, np.arange(10_000)))
    assert int(priorities(0, 0, 0, 0, [0])[0]) == int(priorities(0, 0, 0, 0, [0, 1])[0])


def test_ineligible_neurons_never_learn_even_when_every_potential_is_zero():
    state = fresh_state(3)
    assert choose_learner(rule(), np.zeros(3, np.int32), np.array([False, True, False]), state) == 1
    assert choose_learner(rule(), np.zeros(3, np.int32), np.array([False, False, True]), state) == 2


def test_scalar_and_array_splitmix64_agree():
    from akida_core.learning_rule import _splitmix64, _splitmix64_int
    values = [0, 1, 2 ** 63, 2 ** 64 - 1, 0x123456789ABCDEF0]
    assert [int(v) for v in _splitmix64(np.array(values, np.uint64))] == [_splitmix64_int(v) for v in values]
    assert _splitmix64_int(0) == 0 and _splitmix64_int(1) == 0x5692161D100B05E5

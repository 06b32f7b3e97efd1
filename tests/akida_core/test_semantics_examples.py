"""The worked examples of docs/semantics.md, computed by the runtime."""
import numpy as np

import akida_core as ak

IMAGE = np.arange(1, 10, dtype=np.uint8).reshape(1, 3, 3, 1)
TOP_LEFT = np.zeros((3, 3, 1, 1), np.int8)
TOP_LEFT[0, 0] = 1


def _raw(layer_first, *more):
    model = ak.Model()
    model.add(layer_first)
    for layer in more:
        model.add(layer)
    return model


def test_example_1_input_conv_correlates_and_conv_convolves():
    ic = _raw(ak.InputConvolutional((3, 3, 1), 3, 1, padding=ak.Padding.Valid, weights_bits=8,
                                    activation=False))
    ic.layers[0].variables["weights"] = TOP_LEFT
    assert ic.forward(IMAGE).ravel().tolist() == [1]
    conv = _raw(ak.InputData((3, 3, 1), input_bits=4),
                ak.Convolutional(3, 1, padding=ak.Padding.Valid, weights_bits=2, activation=False))
    conv.layers[1].variables["weights"] = TOP_LEFT
    assert conv.forward(IMAGE).ravel().tolist() == [9]


def test_example_2_padding_value():
    ic = _raw(ak.InputConvolutional((3, 3, 1), 3, 1, weights_bits=8, activation=False, padding_value=5))
    ic.layers[0].variables["weights"] = TOP_LEFT
    assert ic.forward(IMAGE)[0, :, :, 0].tolist() == [[5, 5, 5], [5, 1, 2], [5, 4, 5]]


def test_example_3_column_major_flatten():
    model = _raw(ak.InputData((1, 2, 2), input_bits=4), ak.FullyConnected(1, weights_bits=8, activation=False))
    x = np.zeros((1, 1, 2, 2), np.uint8)
    x[0, 0, 0, 0], x[0, 0, 1, 0], x[0, 0, 0, 1], x[0, 0, 1, 1] = 1, 2, 3, 4
    model.layers[1].variables["weights"] = np.array([1, 2, 4, 8], np.int8).reshape(1, 1, 4, 1)
    assert int(model.forward(x).ravel()[0]) == 49  # row-major would give 47


def _pooled(pool_type, **kw):
    model = _raw(ak.InputData((2, 2, 1), input_bits=4),
                 ak.Convolutional(1, 1, weights_bits=8, activation=False, pool_type=pool_type, **kw))
    # a 1x1 kernel of weight 1 passes the input through as potentials
    model.layers[1].variables["weights"] = np.ones((1, 1, 1, 1), np.int8)
    return model


def test_example_4_max_and_global_average_pooling():
    x = np.array([[1, 5], [3, 0]], np.uint8).reshape(1, 2, 2, 1)
    assert _pooled(ak.PoolType.Max, pool_size=(2, 2)).forward(x).ravel().tolist() == [5]
    assert _pooled(ak.PoolType.Average).forward(x).ravel().tolist() == [9]


def _activated(act_bits):
    model = _raw(ak.InputData((1, 1, 1), input_bits=1),
                 ak.FullyConnected(1, weights_bits=1, act_bits=act_bits, threshold=10))
    model.layers[1].variables["act_step"] = np.array([2.0], np.float32)
    return model.layers[1]


def test_example_5_activation_levels():
    def levels(act_bits, potentials):
        layer = _activated(act_bits)
        return layer._activate(np.array(potentials, np.int32)[:, None]).ravel().tolist()
    assert levels(4, [11, 12, 13, 39]) == [1, 1, 2, 15]
    assert levels(2, [11, 19, 27]) == [1, 2, 3]
    assert levels(1, [10, 11]) == [0, 1]


def test_example_6_predict():
    model = _raw(ak.InputData((1, 1, 1), input_bits=4),
                 ak.FullyConnected(1, weights_bits=8, activation=False, threshold=2))
    model.layers[1].variables["weights"] = np.array([[[[1]]]], np.int8)
    model.layers[1].variables["act_step"] = np.array([0.5], np.float32)
    assert model.predict(np.array([[[[7]]]], np.uint8)).ravel().tolist() == [10.0]

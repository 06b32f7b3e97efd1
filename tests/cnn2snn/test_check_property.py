"""Property: check_model_compatibility never raises on any well-formed Keras chain, and every issue
names a layer of the model (or the model), a rule and a fix."""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from keras import layers as L

from cnn2snn import check_model_compatibility

from .models import seq

pytestmark = pytest.mark.akida_version("v1")  # Akida 1.0 flows; the default is Akida 2.0

LAYERS = {
    "conv": lambda d: L.Conv2D(d.draw(st.integers(1, 4)), d.draw(st.sampled_from([1, 2, 3, 5, 9])),
                               strides=d.draw(st.sampled_from([1, 2, 3])),
                               padding=d.draw(st.sampled_from(["same", "valid"]))),
    "sep": lambda d: L.SeparableConv2D(2, d.draw(st.sampled_from([1, 3])), padding="same"),
    "dw": lambda d: L.DepthwiseConv2D(3, padding="same"),
    "relu": lambda d: L.ReLU(d.draw(st.sampled_from([None, 6.0]))),
    "act": lambda d: L.Activation(d.draw(st.sampled_from(["relu", "sigmoid", "linear"]))),
    "max": lambda d: L.MaxPooling2D(d.draw(st.sampled_from([1, 2, 3])), padding="same"),
    "avg": lambda d: L.AveragePooling2D(2, padding="same"),
    "bn": lambda d: L.BatchNormalization(),
    "drop": lambda d: L.Dropout(0.1),
    "zpad": lambda d: L.ZeroPadding2D(1),
    "rescale": lambda d: L.Rescaling(0.5),
}
HEADS = {
    "flatten-dense": lambda: [L.Flatten(), L.Dense(3)],
    "gap-dense": lambda: [L.GlobalAveragePooling2D(), L.Dense(3), L.Softmax()],
    "dense": lambda: [L.Dense(3)],
    "none": lambda: [],
}


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.data())
def test_check_never_raises(data):
    names = data.draw(st.lists(st.sampled_from(sorted(LAYERS)), min_size=1, max_size=6))
    head = data.draw(st.sampled_from(sorted(HEADS)))
    channels = data.draw(st.sampled_from([1, 2, 3]))
    try:
        model = seq((12, 12, channels), *[LAYERS[n](data) for n in names], *HEADS[head]())
    except ValueError:  # shapes that Keras itself refuses
        assume(False)
    issues = check_model_compatibility(model, weight_bits=data.draw(st.sampled_from([None, 4, 8])))
    layer_names = {layer.name for layer in model.layers} | {"model"}
    for issue in issues:
        assert issue.layer in layer_names and issue.rule and issue.hint and issue.message


def test_bn_with_negative_gamma_after_max_pool():
    model = seq((8, 8, 2), L.Conv2D(4, 3, padding="same"), L.MaxPooling2D(),
                L.BatchNormalization(), L.ReLU(6.0), L.Conv2D(4, 3, padding="same"),
                L.ReLU(6.0), L.Flatten(), L.Dense(3))
    assert check_model_compatibility(model) == []
    bn = model.layers[2]
    bn.gamma.assign(-np.ones(4, np.float32))
    issues = check_model_compatibility(model)
    assert [(i.layer, i.rule) for i in issues] == [(bn.name, "bn_gamma")]
    assert "before the pooling" in issues[0].hint

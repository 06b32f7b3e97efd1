"""Hypothesis over whole random models: quantize (random bits per layer) -> export -> an
integer-only numpy evaluation equals the Keras output bit for bit."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantizeml import Akida1QuantizationParams
from quantizeml.export import export_blocks
from quantizeml.models import quantize

from .integer_reference import model_forward

# Akida 1.0 flows (the default is Akida 2.0)
pytestmark = [pytest.mark.akida_version("v1"),
              pytest.mark.filterwarnings("ignore::UserWarning")]


@st.composite
def random_models(draw):
    layers = keras.layers
    channels = draw(st.sampled_from([1, 3, 2]))
    size = draw(st.integers(6, 10))
    stack = [keras.Input((size, size, channels))]
    if draw(st.booleans()):
        stack.append(layers.Rescaling(1 / 255.0, offset=draw(st.sampled_from([0.0, -0.5])),
                                      name="rescale"))
    q_config = {}
    for index in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["conv", "separable"]))
        name = f"n{index}"
        if kind == "conv":
            stack.append(layers.Conv2D(draw(st.integers(2, 5)), draw(st.sampled_from([1, 3])),
                                       strides=draw(st.sampled_from([1, 2])), padding="same",
                                       name=name))
        else:
            stack.append(layers.SeparableConv2D(draw(st.integers(2, 5)), 3, padding="same",
                                                name=name))
        if draw(st.booleans()):
            stack.append(layers.BatchNormalization(name=f"bn{index}"))
        stack.append(layers.ReLU(name=f"r{index}"))
        if draw(st.booleans()):
            stack.append(layers.MaxPooling2D(padding="same", name=f"p{index}"))
        bits = {"separable": [2, 4]}.get(kind, [1, 2, 4])
        q_config[name] = Akida1QuantizationParams(weight_bits=draw(st.sampled_from(bits)),
                                            activation_bits=draw(st.sampled_from([1, 2, 4])),
                                            per_tensor_activations=draw(st.booleans()))
    stack += [layers.Flatten(name="flat"), layers.Dense(draw(st.integers(2, 4)), name="out")]
    return stack, q_config, draw(st.integers(0, 2**16))


@settings(max_examples=25)
@given(random_models())
def test_random_model_equals_integer_reference(case):
    stack, q_config, seed = case
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(stack)
    x = np.random.default_rng(seed).integers(0, 256, (6,) + model.input_shape[1:])
    x = x.astype(np.float32)
    qmodel = quantize(model, q_config=q_config, samples=x, verbose=0)
    spec = export_blocks(qmodel)
    _, floats = model_forward(spec, qmodel.layers[1].numpy(x))
    np.testing.assert_array_equal(np.asarray(qmodel(x)), floats)

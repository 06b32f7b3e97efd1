"""Pattern registry and matching: every pattern matches its fixture; near misses name a fix."""
import pytest
from keras import layers as L

from akida_core import LayerType
from cnn2snn import check_model_compatibility, list_patterns, registered_patterns
from cnn2snn.match import split_model
from cnn2snn.patterns import Pattern, register

from .models import PATTERN_FIXTURES, conv, head, relu, sep, seq

pytestmark = pytest.mark.akida_version("v1")  # Akida 1.0 flows; the default is Akida 2.0

NAMES = [p.name for p in registered_patterns("v1")]


def test_every_pattern_has_a_fixture():
    assert sorted(PATTERN_FIXTURES) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_pattern_matches_its_fixture(name):
    model = PATTERN_FIXTURES[name]()
    split = split_model(model)
    assert name in [b.pattern.name for b in split.blocks]
    assert check_model_compatibility(model) == []


def test_matching_is_longest_first_and_deterministic():
    model = seq((8, 8, 2), conv(), L.BatchNormalization(), L.MaxPooling2D(padding="same"),
                L.BatchNormalization(), relu(), *head())
    split = split_model(model)
    assert [b.pattern.name for b in split.blocks] == ["input-data", "conv-pool-relu", "dense-relu"]
    assert list(split.blocks[1].roles) == ["neural", "bn", "pool", "bn_after_pool", "act"]
    assert [b.pattern.name for b in split_model(model).blocks] == \
        [b.pattern.name for b in split.blocks]


def test_skipped_layers_reported():
    split = split_model(PATTERN_FIXTURES["dense-relu"]())
    assert [(i.kind, r.split()[0]) for i, r in split.skipped] == [("dropout", "Dropout"),
                                                                  ("softmax", "final")]


def test_rescaling_is_the_input_scaling():
    split = split_model(seq((8, 8, 3), L.Rescaling(1 / 255), conv(), relu(), *head()))
    assert split.rescaling is not None and split.blocks[0].produces == LayerType.InputConvolutional


def test_registry_rejects_duplicates_and_lists_itself():
    with pytest.raises(ValueError, match="already registered"):
        register(Pattern(name="conv-pool-relu", sequence=(), produces=LayerType.Convolutional))
    text = list_patterns()
    every = [p.name for p in registered_patterns()]
    assert all(name in text for name in every) and len(text.splitlines()) == len(every)


# (model, rule, text in the message, text in the hint)
NEAR_MISSES = {
    "conv-pool-relu": (lambda: seq((8, 8, 2), conv(), relu(), L.GlobalAveragePooling2D(),
                                   L.Dense(3)),
                       "no_pattern", "conv-pool-relu", "put pooling before the activation"),
    "sepconv-pool-relu": (lambda: seq((8, 8, 3), conv(), relu(), sep(), relu(),
                                      L.GlobalAveragePooling2D(), L.Dense(3)),
                          "no_pattern", "sepconv-pool-relu", "put pooling before the activation"),
    "input-conv-pool-relu": (lambda: seq((8, 8, 3), conv(), L.ReLU(), *head()),
                             "relu_unbounded", "unbounded ReLU", "bound the ReLU with max_value"),
    "input-conv-relu-pool": (lambda: seq((8, 8, 3), conv(), relu(), L.MaxPooling2D(),
                                         L.MaxPooling2D(), *head()),
                             "no_pattern", "input-conv-relu-pool", "one pooling layer per block"),
    "conv-relu-pool": (lambda: seq((8, 8, 2), conv(), relu(), relu(), *head()),
                       "no_pattern", "conv-relu-pool", "required between two activations"),
    "sepconv-relu-pool": (lambda: seq((8, 8, 3), conv(), relu(), sep(), L.ReLU(), *head()),
                          "relu_unbounded", "unbounded", "max_value"),
    "dense-relu": (lambda: seq((8, 8, 3), conv(), relu(), L.Dense(3)),
                   "dense_rank", "acts on the last axis", "add a Flatten"),
    "input-data": (lambda: seq((8, 8, 2), L.MaxPooling2D(), conv(), relu(), *head()),
                   "no_pattern", "conv-pool-relu", "put pooling directly after a Conv2D"),
}


def test_every_pattern_has_a_near_miss():
    assert sorted(NEAR_MISSES) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_near_miss(name):
    build, rule, message, hint = NEAR_MISSES[name]
    issues = check_model_compatibility(build())
    assert [i.rule for i in issues] == [rule], [str(i) for i in issues]
    assert message in issues[0].message and hint in issues[0].hint


def test_all_problems_in_one_report():
    model = seq((32, 32, 3), conv(8, 9), L.ReLU(), conv(8, 3, strides=3), relu(),
                L.Reshape((-1, 8)), L.LSTM(4), L.Dense(3), L.Softmax())
    issues = check_model_compatibility(model)
    kinds = [(type(model.get_layer(i.layer)).__name__, i.rule) for i in issues]
    assert kinds == [("Conv2D", "kernel_size"), ("ReLU", "relu_unbounded"), ("Conv2D", "stride"),
                     ("Reshape", "no_pattern"), ("LSTM", "unsupported_layer")]
    assert all(i.hint and i.layer in i.message for i in issues)
    # a 9x9 kernel and a 3x3 stride-3 convolution are Akida 1.0 layers the HRC/CNP cannot map
    assert [i.level for i in issues] == ["hardware", "convert", "hardware", "convert", "convert"]


def test_branches_and_unknown_layers_reported():
    import keras
    inp = keras.Input((8, 8, 2))
    x = conv()(inp)
    y = relu()(x)
    out = L.Add()([x, y])
    issues = check_model_compatibility(keras.Model(inp, out))
    assert {"branch", "unsupported_layer"} <= {i.rule for i in issues}


@pytest.mark.parametrize("activation,pool,rules", [
    ("relu6", L.MaxPooling2D(padding="same"), ["pool_successor"]),  # hardware level
    ("relu", None, ["relu_unbounded"]),
    ("relu6", L.GlobalAveragePooling2D(), ["gap_after_activation"]),
    ("sigmoid", None, ["fused_activation"]),
])
def test_fused_activations(activation, pool, rules):
    layers = [conv(activation=activation)] + ([pool] if pool is not None else [])
    head_layers = [L.Dense(3)] if isinstance(pool, L.GlobalAveragePooling2D) else head()
    model = seq((8, 8, 2), *layers, *head_layers)
    assert [i.rule for i in check_model_compatibility(model)] == rules


def test_fused_final_softmax_is_skipped_and_double_activation_reported():
    assert check_model_compatibility(seq((8, 8, 3), conv(), relu(), L.Flatten(),
                                         L.Dense(3, activation="softmax"))) == []
    issues = check_model_compatibility(seq((8, 8, 2), conv(activation="relu6"), relu(), *head()))
    assert [i.rule for i in issues] == ["double_activation"]


def test_unit_reshapes_and_dense_on_1x1_inputs_are_accepted():
    model = seq((8, 8, 2), conv(), L.GlobalAveragePooling2D(keepdims=True), relu(),
                L.Reshape((1, 1, 4)), L.Dense(3))
    assert check_model_compatibility(model) == []
    split = split_model(model)
    assert "reshape" in [info.kind for info, _ in split.skipped]
    flat = seq((8, 8, 2), conv(), relu(), L.Reshape((8, 8, 4, 1)), *head())
    assert [i.rule for i in check_model_compatibility(flat)] == []


@pytest.mark.parametrize("activation,rules", [("relu6", []), ("relu", ["relu_unbounded"])])
def test_activation_layers_read_as_relus(activation, rules):
    model = seq((8, 8, 2), conv(), L.Activation(activation), *head())
    assert [i.rule for i in check_model_compatibility(model)] == rules


def test_float_check_bits_keep_8_bit_input_weights_by_default():
    from quantizeml import Akida1QuantizationParams
    from cnn2snn.compatibility import DEFAULT_INPUT_WEIGHT_BITS
    assert DEFAULT_INPUT_WEIGHT_BITS == Akida1QuantizationParams().input_weight_bits
    model = seq((8, 8, 3), conv(), relu(), conv(), relu(), *head())
    assert check_model_compatibility(model, weight_bits=2, activation_bits=2) == []
    issues = check_model_compatibility(model, weight_bits=2, input_weight_bits=2)
    assert [i.rule for i in issues] == ["weights_bits"]


@pytest.mark.parametrize("pad,strides,rules", [
    (1, 1, []),                                     # (1, 1) each side = 'same' for 3x3 stride 1
    (((0, 1), (0, 1)), 2, []),                      # keras.applications style before stride 2
    (2, 1, ["unsupported_layer", "padding"]),       # pads more than 'same': not equivalent
    (((1, 1), (1, 1)), 2, ["unsupported_layer", "padding"]),  # 'same' pads (0, 1) here
])
def test_zero_padding_folded_only_when_it_is_same_padding(pad, strides, rules):
    model = seq((16, 16, 3), L.Conv2D(8, 3, padding="same"), relu(), L.ZeroPadding2D(pad),
                L.Conv2D(8, 3, strides=strides), relu(), *head())
    assert [i.rule for i in check_model_compatibility(model)] == rules
    if not rules:
        assert "ZeroPadding2D" in [info.class_name for info, _ in split_model(model).skipped]


def test_per_channel_rescaling_is_an_issue():
    model = seq((8, 8, 3), L.Rescaling([1 / 255.0] * 3, [0.0, 0.1, 0.2]), conv(), relu(), *head())
    assert [i.rule for i in check_model_compatibility(model)] == ["rescaling_per_channel"]


def test_checking_goes_past_a_lambda_and_an_unknown_class():
    import keras

    class Custom(keras.layers.Layer):
        def call(self, x):
            return x

    model = seq((16, 16, 2), conv(8, 9), L.ReLU(), L.Lambda(lambda x: x * 2, name="double"),
                conv(8, 3, strides=3), relu(), Custom(name="custom"), conv(8, 4), relu(),
                *head())
    issues = check_model_compatibility(model)
    assert [(i.rule, i.level) for i in issues] == [
        ("kernel_size", "hardware"), ("relu_unbounded", "convert"),
        ("unsupported_layer", "convert"), ("stride", "hardware"),
        ("unsupported_layer", "convert"), ("kernel_size", "convert")]
    assert [i.layer for i in issues if i.rule == "unsupported_layer"] == ["double", "custom"]

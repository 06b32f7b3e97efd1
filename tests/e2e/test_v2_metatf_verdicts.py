"""Akida 2.0 verdict matrix: one tiny Keras model per row of conversion-v2.md §5 and §6, each
under MetaTF's schemes; our verdict (accepted / refused at quantize / refused at convert) must
equal MetaTF's as measured there, except the documented improvements (docs/coming-from-metatf.md,
"Akida 2.0 verdicts"), and every accepted model is bit-exact between quantized Keras and
akida_core."""
from __future__ import annotations

import dataclasses
import warnings

import keras
import numpy as np
import pytest

from cnn2snn import ConversionError, convert
from cnn2snn.errors import ConversionWarning
from quantizeml.errors import QuantizationConfigError, QuantizationError
from quantizeml.models import QuantizationParams, quantize
from quantizeml.v2 import layers as ql

from ..quantizeml.v2_models import decoder, images

L = keras.layers
ACCEPTED, AT_QUANTIZE, AT_CONVERT = "accepted", "refused at quantize", "refused at convert"
SCHEMES = {"8/8 per-axis": {}, "8/8 per-tensor": {"per_tensor_activations": True},
           "4/4 per-axis": {"weight_bits": 4, "activation_bits": 4},
           "4/4 per-tensor": {"weight_bits": 4, "activation_bits": 4,
                              "per_tensor_activations": True}}


@dataclasses.dataclass(frozen=True)
class Row:
    """A model, MetaTF's verdict, ours where it deliberately differs (with the reason), the
    settings every scheme gets for this row, and the schemes it is meaningful for."""

    build: object
    metatf: str
    ours: str | None = None
    why: str = ""
    improvement: bool = False
    qparams: dict = dataclasses.field(default_factory=dict)
    schemes: tuple | None = None
    slow: bool = False

    @property
    def scheme_names(self) -> tuple:
        """Every scheme for a model MetaTF accepts; a refusal's cause does not depend on the
        scheme, so two of them (8-bit per-axis, 4-bit per-tensor) suffice there."""
        if self.schemes is not None:
            return self.schemes
        return tuple(SCHEMES) if self.metatf == ACCEPTED else ("8/8 per-axis", "4/4 per-tensor")


def _uint8(size=8, channels=3):
    return images(16, size=size, channels=channels)


def _chain(shape, *layers, samples=None):
    inp = keras.Input(shape)
    x = inp
    for layer in layers:
        x = layer(x)
    return keras.Model(inp, x), _uint8(shape[0], shape[-1]) if samples is None else samples


def _stem(**kwargs):
    return [L.Conv2D(4, 3, padding="same", name="stem", **kwargs), L.ReLU(name="stem_relu")]


def conv(kernel=3, **kwargs):
    """A 4-filter Conv2D, 'same' unless told."""
    return L.Conv2D(4, kernel, padding=kwargs.pop("padding", "same"), **kwargs)


def _floats(shape, n=16):
    return np.random.default_rng(0).normal(0, 1, (n,) + shape).astype(np.float32)


def _ints(shape, n=16):
    return np.random.default_rng(0).integers(-128, 128, (n,) + shape).astype(np.float32)


# ---- §6: models MetaTF converts (exactness aside) ----

def plain_cnn():
    return _chain((16, 16, 3), L.Conv2D(8, 3, padding="same"), L.ReLU(6.0),
                  L.Conv2D(8, 3, strides=2, padding="same"), L.BatchNormalization(), L.ReLU(),
                  L.Conv2D(8, 3, padding="same"), L.MaxPooling2D(padding="same"), L.ReLU(6.0),
                  L.Conv2D(8, 1), L.ReLU(), L.GlobalAveragePooling2D(), L.Dense(4))


def int8_input():
    return _chain((8, 8, 8), L.Conv2D(8, 3, padding="same"), L.ReLU(), L.Conv2D(4, 1),
                  L.ReLU(), L.GlobalAveragePooling2D(), L.Dense(4), samples=_ints((8, 8, 8)))


def depthwise_separable():
    return _chain((8, 8, 3), *_stem(), L.DepthwiseConv2D(3, padding="same"),
                  L.BatchNormalization(), L.ReLU(), L.Conv2D(8, 1), L.ReLU(),
                  L.DepthwiseConv2D(3, strides=2, padding="same"), L.ReLU(), L.Conv2D(4, 1))


def _branches(merge, second=None, shape=(8, 8, 3)):
    inp = keras.Input(shape)
    x = L.ReLU(name="stem_relu")(L.Conv2D(4, 3, padding="same", name="stem")(inp))
    a = L.ReLU()(L.Conv2D(4, 3, padding="same")(x)) if second is None else second(x)
    x = merge([x, a])
    return keras.Model(inp, L.Conv2D(4, 1)(x)), _uint8(shape[0])


def residual():
    return _branches(L.Add())


def concatenate():
    return _branches(L.Concatenate())


def transpose_decoder():
    return decoder(), _floats((6, 6, 4))


def flatten_dense():
    return _chain((8, 8, 3), *_stem(), L.Conv2D(4, 3, strides=2, padding="same"), L.ReLU(),
                  L.Flatten(), L.Dense(8), L.ReLU(), L.Dense(4))


def float_input():
    return _chain((8, 8, 3), *_stem(), L.Conv2D(4, 1), samples=_floats((8, 8, 3)))


def conv_relu_head():
    return _chain((8, 8, 3), *_stem(), L.Conv2D(4, 3, padding="same"), L.ReLU(), L.Conv2D(4, 1))


def akidanet_like():
    layers = [L.Rescaling(1 / 127.5, -1.0), L.Conv2D(8, 3, strides=2, padding="same"),
              L.BatchNormalization(), L.ReLU(), L.Conv2D(16, 3, padding="same"),
              L.BatchNormalization(), L.ReLU()]
    for filters, stride in ((16, 2), (32, 1), (32, 2), (64, 1)):
        layers += [L.SeparableConv2D(filters, 3, strides=stride, padding="same")
                   if stride == 1 else L.DepthwiseConv2D(3, strides=2, padding="same"),
                   L.BatchNormalization(), L.ReLU()]
        if stride == 2:
            layers += [L.Conv2D(filters, 1), L.BatchNormalization(), L.ReLU()]
    layers += [L.GlobalAveragePooling2D(), L.Dense(10), L.Softmax()]
    return _chain((32, 32, 3), *layers)


# ---- §5: what MetaTF refuses or alters ----

def inner(layers):
    """A stem then the layers ``layers()`` builds (fresh layers for every model)."""
    return lambda: _chain((8, 8, 3), *_stem(), *layers())


def add_of_three():
    inp = keras.Input((8, 8, 3))
    x = L.ReLU()(L.Conv2D(4, 3, padding="same")(inp))
    a, b = (L.ReLU()(L.Conv2D(4, 1)(x)) for _ in range(2))
    return keras.Model(inp, L.Conv2D(4, 1)(L.Add(name="bad")([x, a, b]))), _uint8()


def add_broadcast():
    return _branches(L.Add(name="bad"), lambda x: L.ReLU()(L.Conv2D(4, 7)(x)), shape=(7, 7, 3))


def two_outputs():
    inp = keras.Input((8, 8, 3))
    x = L.ReLU()(L.Conv2D(4, 3, padding="same")(inp))
    return keras.Model(inp, [L.Conv2D(4, 1, name="bad")(x), L.Conv2D(2, 1)(x)]), _uint8()


def maxpool_after_add():
    return _branches(lambda xs: L.MaxPooling2D(name="bad")(L.Add()(xs)))


def gap_after_add():
    inp = keras.Input((8, 8, 3))
    x = L.ReLU()(L.Conv2D(4, 3, padding="same")(inp))
    x = L.Add()([x, L.ReLU()(L.Conv2D(4, 1)(x))])
    return keras.Model(inp, L.Dense(4)(L.GlobalAveragePooling2D(name="bad")(x))), _uint8()


def concatenate_axis_1():
    return _branches(L.Concatenate(axis=1, name="bad"))


def multiply():
    return _branches(L.Multiply(name="bad"))


def first_dense():
    return _chain((16,), L.Dense(8, name="bad"), L.ReLU(), L.Dense(4),
                  samples=np.random.default_rng(0).integers(0, 256, (16, 16)).astype(np.float32))


def dense_int8():
    return _chain((16,), L.Dense(8), L.ReLU(), L.Dense(4), samples=_ints((16,)))


def sequential():
    model = keras.Sequential([keras.Input((8, 8, 3)), *_stem(), L.Conv2D(4, 1)])
    return model, _uint8()


def partial(layers, tail=list):
    """A model whose float tail MetaTF leaves after a Dequantizer (quantization stops)."""
    return inner(lambda: [L.Conv2D(4, 3, padding="same"), L.ReLU(), *layers(), L.Conv2D(4, 1),
                          *tail()])


EARLIER = "refused at quantize, by the quantized layers, before calibration (not at convert)"
ROWS = {
    # §6
    "plain CNN uint8": Row(plain_cnn, ACCEPTED),
    "int8 input, 8 channels": Row(int8_input, ACCEPTED, qparams={"input_dtype": "int8"}),
    "depthwise-separable": Row(depthwise_separable, ACCEPTED),
    "residual Add": Row(residual, ACCEPTED),
    "Concatenate": Row(concatenate, ACCEPTED),
    "Conv2DTranspose k4 + k3 decoder": Row(transpose_decoder, ACCEPTED),
    "Flatten > Dense > ReLU > Dense": Row(flatten_dense, ACCEPTED),
    "float input": Row(float_input, ACCEPTED),
    "2-bit activations": Row(conv_relu_head, ACCEPTED, qparams={"activation_bits": 2}),
    "last_output_bits=8": Row(plain_cnn, ACCEPTED, qparams={"last_output_bits": 8}),
    "last_output_bits=16": Row(plain_cnn, ACCEPTED, qparams={"last_output_bits": 16}),
    "AkidaNet-like": Row(akidanet_like, ACCEPTED, slow=True),
    # §5, accepted
    "input conv k7 s4": Row(lambda: _chain((16, 16, 3), L.Conv2D(4, 7, strides=4,
                                                                 padding="same"), L.ReLU(),
                                           L.Conv2D(4, 1)), ACCEPTED),
    "input conv k4 s2": Row(lambda: _chain((8, 8, 3), L.Conv2D(4, 4, strides=2,
                                                               padding="same"), L.ReLU(),
                                           L.Conv2D(4, 1)), ACCEPTED),
    "inner k9": Row(inner(lambda: [conv(9)]), ACCEPTED),
    "'valid' convs, k3 s2": Row(inner(lambda: [conv(strides=2, padding="valid"), L.ReLU(),
                                               conv(padding="valid")]),
                                ACCEPTED),
    "even kernel stride 1": Row(inner(lambda: [conv(2), L.ReLU(),
                                      L.DepthwiseConv2D(4, padding="same")]), ACCEPTED),
    "DW k5 s2 (split)": Row(inner(lambda: [L.DepthwiseConv2D(5, strides=2, padding="same"),
                                           L.ReLU(),
                                  L.Conv2D(4, 1)]), ACCEPTED),
    "1-channel input": Row(lambda: _chain((8, 8, 1), *_stem(), L.Conv2D(4, 1)), ACCEPTED),
    "Concatenate of 3": Row(lambda: _branches(
        lambda xs: L.Concatenate()(xs + [L.ReLU()(L.Conv2D(2, 1)(xs[0]))])), ACCEPTED),
    # MetaTF converts LeakyReLU; here quantization stops before it (float tail): same verdict
    "LeakyReLU": Row(inner(lambda: [conv(),
                                    L.LeakyReLU(0.1, name="bad"), L.Conv2D(4, 1)]), ACCEPTED),
    "unbounded ReLU": Row(inner(lambda: [L.Conv2D(4, 1)]), ACCEPTED),
    "Conv2D(activation='relu')": Row(inner(lambda: [conv(activation="relu"),
                                           L.Conv2D(4, 1)]), ACCEPTED),
    "Activation('relu')": Row(inner(lambda: [conv(), L.Activation("relu"),
                                    L.Conv2D(4, 1)]), ACCEPTED),
    "ZeroPadding2D": Row(inner(lambda: [L.ZeroPadding2D(((0, 1), (0, 1))), L.DepthwiseConv2D(
        3, strides=2), L.ReLU(), L.Conv2D(4, 1)]), ACCEPTED),
    "Rescaling offset": Row(lambda: _chain((8, 8, 3), L.Rescaling(1 / 127.5, -1.0),
                                           *_stem(), L.Conv2D(4, 1)), ACCEPTED),
    "Sequential": Row(sequential, ACCEPTED),
    "2-D int8 input": Row(dense_int8, ACCEPTED, qparams={"input_dtype": "int8"}),
    "SeparableConv2D": Row(inner(lambda: [L.SeparableConv2D(4, 3, padding="same"), L.ReLU(),
                                 L.Conv2D(4, 1)]), AT_CONVERT, ACCEPTED,
                           "split into DepthwiseConv2D + 1×1 Conv2D, both exact", True),
    "MaxPool after Add": Row(maxpool_after_add, AT_CONVERT, ACCEPTED,
                             "identity 1×1 Conv2D inserted, as MetaTF does for a ReLU", True),
    "GAP after Add": Row(gap_after_add, AT_CONVERT, ACCEPTED,
                         "identity 1×1 Conv2D inserted, as MetaTF does for a ReLU", True),
    # §5, quantization stops at the first unquantizable layer (Dequantizer; float tail)
    "Conv2D groups 2": Row(partial(lambda: [conv(groups=2, name="bad")]),
                           ACCEPTED),
    "AveragePooling2D": Row(partial(lambda: [L.AveragePooling2D(2, name="bad")]), ACCEPTED),
    "UpSampling2D": Row(partial(lambda: [L.UpSampling2D(name="bad")]), ACCEPTED),
    "sigmoid": Row(partial(lambda: [L.Activation("sigmoid", name="bad")]), ACCEPTED),
    "Activation('relu6')": Row(inner(lambda: [conv(),
                                              L.Activation("relu6"), L.Conv2D(4, 1)]), ACCEPTED),
    "BN after ReLU": Row(partial(lambda: [L.BatchNormalization(name="bad")]), ACCEPTED),
    "final Softmax": Row(inner(lambda: [conv(), L.ReLU(),
                                        L.Conv2D(4, 1), L.Softmax()]), ACCEPTED),
    "final sigmoid": Row(inner(lambda: [conv(), L.ReLU(),
                                        L.Conv2D(4, 1), L.Activation("sigmoid", name="bad")]),
                         ACCEPTED),
    # §5, refused at quantize
    "DW depth_multiplier 2": Row(inner(lambda: [L.DepthwiseConv2D(3, padding="same",
                                                                  depth_multiplier=2,
                                                         name="bad")]), AT_QUANTIZE),
    "DW first after uint8 Rescaling": Row(lambda: _chain(
        (8, 8, 3), L.Rescaling(1 / 255), L.DepthwiseConv2D(3, padding="same", name="bad"),
        L.ReLU(), L.Conv2D(4, 1)), AT_QUANTIZE),
    "Add of 3 tensors": Row(add_of_three, AT_QUANTIZE),
    # §5, refused at convert
    "non-square kernel": Row(inner(lambda: [conv((3, 1), name="bad")]),
                             AT_CONVERT),
    "unequal strides": Row(inner(lambda: [conv(strides=(2, 1), name="bad")]),
                           AT_CONVERT),
    "inner stride 3": Row(inner(lambda: [L.Conv2D(4, 3, strides=3, padding="same", name="bad")]),
                          AT_CONVERT),
    "inner k5 stride 2": Row(inner(lambda: [conv(5, strides=2, name="bad")]),
                             AT_CONVERT),
    "inner k4 stride 2": Row(inner(lambda: [conv(4, strides=2, name="bad")]),
                             AT_CONVERT),
    "dilation 2": Row(inner(lambda: [L.Conv2D(4, 3, dilation_rate=2, padding="same", name="bad")]),
                      AT_CONVERT),
    "Multiply": Row(multiply, AT_CONVERT, AT_QUANTIZE, EARLIER),
    "MaxPool padding != conv padding": Row(inner(lambda: [conv(), L.MaxPooling2D(
        padding="valid", name="bad"), L.ReLU()]), AT_CONVERT),
    "non-square MaxPool": Row(inner(lambda: [conv(), L.MaxPooling2D(
        (2, 1), padding="same", name="bad"), L.ReLU()]), AT_CONVERT),
    "MaxPool stride > size": Row(inner(lambda: [conv(), L.MaxPooling2D(
        2, strides=3, padding="same", name="bad"), L.ReLU()]), AT_CONVERT),
    "weight_bits 2": Row(conv_relu_head, AT_CONVERT, qparams={"weight_bits": 2}),
    "weight_bits 6": Row(conv_relu_head, AT_CONVERT, qparams={"weight_bits": 6}),
    "input_weight_bits 2": Row(conv_relu_head, AT_CONVERT, qparams={"input_weight_bits": 2}),
    "activation_bits 16": Row(conv_relu_head, AT_CONVERT, qparams={"activation_bits": 16}),
    "uint8 input, 4 channels": Row(lambda: _chain((8, 8, 4), conv(kernel=3,
                                                                      name="bad"), L.ReLU(),
                                                  L.Conv2D(4, 1)), AT_CONVERT),
    "uint8 input, Conv > ReLU > GAP first": Row(lambda: _chain(
        (8, 8, 3), conv(name="bad"), L.ReLU(),
        L.GlobalAveragePooling2D(), L.Dense(4)), AT_CONVERT),
    "uint8 input, Dense first": Row(first_dense, AT_CONVERT),
    "uint8 input, Conv alone first": Row(lambda: _chain(
        (8, 8, 3), conv(name="bad"), L.Conv2D(4, 1)), AT_CONVERT,
        ACCEPTED, "an input Conv2D without activation is an InputConv2D too (exact)", True),
    "Add (H,W,C) + (1,1,C)": Row(add_broadcast, AT_CONVERT),
    "Concatenate axis 1": Row(concatenate_axis_1, AT_CONVERT, AT_QUANTIZE, EARLIER),
    "Dense on a 4-D input": Row(inner(lambda: [L.Dense(4, name="bad")]), AT_CONVERT),
    "Conv2DTranspose k5": Row(inner(lambda: [L.Conv2DTranspose(4, 5, strides=2, padding="same",
                                                      name="bad")]), AT_CONVERT),
    "Conv2DTranspose stride 1": Row(inner(lambda: [L.Conv2DTranspose(4, 3, padding="same",
                                                            name="bad")]), AT_CONVERT),
    "Conv2DTranspose 'valid'": Row(inner(lambda: [L.Conv2DTranspose(4, 3, strides=2, name="bad")]),
                                   AT_CONVERT),
    "two outputs": Row(two_outputs, AT_CONVERT, AT_QUANTIZE, EARLIER),
}


def measure(model, samples, qparams):
    """(verdict, error or (quantized model, Akida model)); untyped errors propagate (a bug)."""
    try:
        qmodel = quantize(model, qparams=qparams, samples=samples)
    except (QuantizationError, QuantizationConfigError) as err:
        return AT_QUANTIZE, err
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConversionWarning)
            akida_model = convert(qmodel)
    except ConversionError as err:
        return AT_CONVERT, err
    return ACCEPTED, (qmodel, akida_model)


def assert_exact(qmodel, akida_model, samples):
    """The Akida model's float outputs equal the quantized Keras model's up to its Dequantizer."""
    dequantizer = next(layer for layer in qmodel.layers if isinstance(layer, ql.Dequantizer))
    keras_out = np.asarray(keras.Model(qmodel.inputs, dequantizer.output)(samples))
    float_input = isinstance(qmodel.layers[1], ql.InputQuantizer)
    feed = samples.reshape((len(samples),) + tuple(akida_model.input_shape))  # (C,) -> (1, 1, C)
    akida_out = akida_model.forward(feed if float_input else feed.astype(
        np.int8 if samples.min() < 0 else np.uint8))
    np.testing.assert_array_equal(keras_out.reshape(akida_out.shape), akida_out)


def _cases():
    """Every (row, scheme) pair; the default run takes one scheme per row, in turn (so every
    scheme meets every kind of row), the others are marked slow (about 1 s each)."""
    for index, (name, row) in enumerate(ROWS.items()):
        names = row.scheme_names
        for scheme in names:
            fast = scheme == names[index % len(names)] and not row.slow
            yield pytest.param(name, scheme, id=f"{name} | {scheme}",
                               marks=[] if fast else [pytest.mark.slow])


@pytest.mark.parametrize("name, scheme", list(_cases()))
def test_verdict_agrees_with_metatf(name, scheme):
    row = ROWS[name]
    keras.utils.set_random_seed(0)
    model, samples = row.build()
    qparams = QuantizationParams(**{**SCHEMES[scheme], **row.qparams})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        verdict, result = measure(model, samples, qparams)
    expected = row.ours or row.metatf
    assert verdict == expected, f"{name} under {scheme}: {verdict} ({result}); expected " \
        f"{expected} (MetaTF: {row.metatf})"
    if verdict == ACCEPTED:
        assert_exact(*result, samples)
    elif any(layer.name == "bad" for layer in model.layers):
        assert "bad" in str(result), f"the error does not name the layer: {result}"


def test_agreement_is_at_least_95_percent():
    # documented improvements aside; an earlier refusal counts as a disagreement
    pairs = [row for row in ROWS.values() if not row.improvement for _ in row.scheme_names]
    agreeing = sum(row.ours is None for row in pairs)
    assert agreeing / len(pairs) >= 0.95, f"{agreeing}/{len(pairs)}"
    assert all(row.why for row in ROWS.values() if row.ours), "a difference without a reason"


def test_float_tail_converts_the_quantized_part_with_one_warning():
    # MetaTF: quantize stops at the sigmoid (warning), convert converts up to the Dequantizer
    # (warning); the final activation is monotone, so the classes agree.
    from cnn2snn import check_model_compatibility
    from quantizeml.transforms import QuantizationWarning
    keras.utils.set_random_seed(1)
    model, samples = _chain((8, 8, 3), *_stem(), L.Conv2D(4, 3, padding="same"), L.ReLU(),
                            L.GlobalAveragePooling2D(), L.Dense(6),
                            L.Activation("sigmoid", name="sigmoid"), L.Dropout(0.1, name="drop"))
    with pytest.warns(QuantizationWarning, match="'sigmoid' \\(Activation\\).*activation="
                      "'sigmoid'"):
        qmodel = quantize(model, qparams=QuantizationParams(), samples=samples)
    with pytest.warns(ConversionWarning, match="'sigmoid', 'drop'.*outside Akida") as record:
        akida_model = convert(qmodel)
    assert len(record) == 1
    assert_exact(qmodel, akida_model, samples)
    np.testing.assert_array_equal(np.argmax(qmodel.predict(samples, verbose=0), -1),
                                  akida_model.predict_classes(samples.astype(np.uint8)))
    issues = check_model_compatibility(qmodel)
    assert [(issue.rule, issue.level) for issue in issues] == [("float_tail", "hardware")]
    assert issues[0].layer == "sigmoid, drop"


def test_every_refusal_of_a_model_at_once():
    keras.utils.set_random_seed(2)
    model, samples = _chain((16, 16, 3), *_stem(),
                            L.Conv2D(4, 3, strides=3, padding="same", name="stride3"),
                            L.Conv2D(4, 4, strides=2, padding="same", name="k4s2"),
                            L.Conv2D(4, 3, dilation_rate=2, padding="same", name="dilated"))
    with pytest.raises(ConversionError) as err:
        convert(quantize(model, qparams=QuantizationParams(weight_bits=6), samples=samples))
    layers = [issue.layer.split(" > ")[0] for issue in err.value.issues]
    assert {"stride3", "k4s2", "dilated"} <= set(layers)
    assert "dilation_rate=(2, 2)" in str(err.value) and "weight_bits=6" in str(err.value)

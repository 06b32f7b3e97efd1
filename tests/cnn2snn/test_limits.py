"""Each AKD1000 table limit: a model just inside passes, one just outside gets exactly that issue."""
import pytest
from keras import layers as L

from akida_core import LayerType
from akida_core.hardware import AKD1000
from cnn2snn import check_model_compatibility

from .models import conv, head, relu, sep, seq

pytestmark = pytest.mark.akida_version("v1")  # Akida 1.0 flows; the default is Akida 2.0

HRC = AKD1000.limits(LayerType.InputConvolutional)
CNP = AKD1000.limits(LayerType.Convolutional)
FNP = AKD1000.limits(LayerType.FullyConnected)


def input_conv(shape=(8, 8, 3), pool=None, **kw):
    layers = [conv(**kw)] + ([pool] if pool is not None else []) + [relu(), *head()]
    return seq(shape, *layers)


def inner(layer, shape=(8, 8, 2), pool=None, tail=None):
    layers = [layer] + ([pool] if pool is not None else []) + [relu()]
    return seq(shape, *layers, *(tail if tail is not None else head()))


def pooled(pool, tail=None):
    """A Convolutional with max pooling, then a convolution (a max-pooling CNP layer must feed a
    CNP layer to map in hardware)."""
    return inner(conv(), pool=pool, tail=tail if tail is not None else [conv(), relu(), *head()])


def gap_model(h, w):
    return seq((h, w, 2), conv(), L.GlobalAveragePooling2D(), relu(), L.Dense(3))


# name: (model just inside, model just outside, expected rule, check kwargs); LEVELS below.
LIMITS = {
    "hrc-kernel": (lambda: input_conv(kernel=max(HRC.kernel_sizes)),
                   lambda: input_conv(kernel=max(HRC.kernel_sizes) + 2), "kernel_size", {}),
    "hrc-stride": (lambda: input_conv(kernel=5, strides=max(HRC.strides)),
                   lambda: input_conv(kernel=5, strides=max(HRC.strides) + 1), "stride", {}),
    "hrc-filters": (lambda: input_conv(filters=HRC.max_filters),
                    lambda: input_conv(filters=HRC.max_filters + 1), "max_filters", {}),
    "hrc-width": (lambda: input_conv(shape=(3, HRC.max_input_width, 1)),
                  lambda: input_conv(shape=(3, HRC.max_input_width + 1, 1)), "input_width", {}),
    "hrc-pool-size": (lambda: input_conv(pool=L.MaxPooling2D(2, padding="same")),
                      lambda: input_conv(pool=L.MaxPooling2D(3, padding="same")), "pool_size", {}),
    "hrc-pool-stride": (lambda: input_conv(pool=L.MaxPooling2D(2, 2, padding="same")),
                        lambda: input_conv(pool=L.MaxPooling2D(2, 1, padding="same")),
                        "pool_stride", {}),
    "hrc-weight-bits": (lambda: input_conv(), lambda: input_conv(), "weights_bits",
                        ({"input_weight_bits": 8}, {"input_weight_bits": 2})),
    "cnp-kernel": (lambda: inner(conv(kernel=7)), lambda: inner(conv(kernel=9)), "kernel_size", {}),
    "cnp-stride2-kernel": (lambda: inner(conv(kernel=3, strides=2)),
                           lambda: inner(conv(kernel=5, strides=2)), "stride_kernel", {}),
    "cnp-stride": (lambda: inner(conv(kernel=3, strides=2)),
                   lambda: inner(conv(kernel=3, strides=3)), "stride", {}),
    "cnp-padding": (lambda: inner(conv(kernel=1, padding="valid")),
                    lambda: inner(conv(kernel=3, padding="valid")), "padding", {}),
    "cnp-pool-size": (lambda: pooled(L.MaxPooling2D(2, 1, padding="same")),
                      lambda: pooled(L.MaxPooling2D(3, 2, padding="same")), "pool_size", {}),
    "cnp-pool-stride": (lambda: pooled(L.MaxPooling2D(2, 2, padding="same")),
                        lambda: pooled(L.MaxPooling2D(2, 3, padding="same")), "pool_stride", {}),
    "cnp-valid-3x3": (lambda: inner(conv(kernel=3, padding="same")),
                      lambda: inner(conv(kernel=3, padding="valid")), "padding", {}),
    "cnp-kernel-even": (lambda: inner(conv(kernel=3)), lambda: inner(conv(kernel=4)),
                        "kernel_size", {}),
    "cnp-stride-gt-kernel": (lambda: inner(conv(kernel=1, strides=1)),
                             lambda: inner(conv(kernel=1, strides=2)), "stride_gt_kernel", {}),
    "cnp-gap-area": (lambda: gap_model(16, 16), lambda: gap_model(17, 16), "gap_area", {}),
    "cnp-gap-height": (lambda: gap_model(32, 4), lambda: gap_model(33, 4), "gap_height", {}),
    "cnp-gap-rows": (lambda: gap_model(3, 3), lambda: gap_model(2, 3), "gap_rows", {}),
    "cnp-filter-memory": (lambda: inner(conv(), shape=(4, 4, 448)),
                          lambda: inner(conv(), shape=(4, 4, 449)), "filter_memory",
                          {"weight_bits": 4}),
    "cnp-weight-bits": (lambda: inner(conv(), tail=[]), lambda: inner(conv(), tail=[]),
                        "weights_bits",
                        ({"weight_bits": 4, "input_weight_bits": 8},
                         {"weight_bits": 8, "input_weight_bits": 8})),
    "sep-weight-bits": (lambda: inner(sep()), lambda: inner(sep()), "weights_bits",
                        ({"weight_bits": 2}, {"weight_bits": 1})),
    "sep-kernel": (lambda: inner(sep(kernel=3)), lambda: inner(sep(kernel=1)), "kernel_size", {}),
    "act-bits": (lambda: inner(conv()), lambda: inner(conv()), "act_bits",
                 ({"activation_bits": 4}, {"activation_bits": 8})),
    "fnp-inputs": (lambda: seq((FNP.max_inputs,), L.Dense(2)),
                   lambda: seq((FNP.max_inputs + 1,), L.Dense(2)), "max_inputs", {}),
    "fnp-units": (lambda: seq((2,), L.Dense(FNP.max_filters)),
                  lambda: seq((2,), L.Dense(FNP.max_filters + 1)), "max_filters", {}),
    "pool-not-last": (lambda: pooled(L.MaxPooling2D(padding="same")),
                      lambda: pooled(L.MaxPooling2D(padding="same"), tail=[]), "pool_last", {}),
    "pool-before-dense": (lambda: pooled(L.MaxPooling2D(padding="same")),
                          lambda: pooled(L.MaxPooling2D(padding="same"), tail=head()),
                          "pool_successor", {}),
    "activation-between": (lambda: seq((8, 8, 2), conv(), relu(), conv(), relu(), *head()),
                           lambda: seq((8, 8, 2), conv(), conv(), relu(), *head()),
                           "activation_required", {}),
}


# Limits whose outside value an Akida 1.0 layer still expresses: the model converts, and only
# map(hw_only=True) refuses it (the rest are convert-level: MetaTF's converter refuses them too).
HARDWARE_LIMITS = {"hrc-kernel", "hrc-stride", "hrc-filters", "hrc-width", "hrc-pool-size",
                   "hrc-pool-stride", "cnp-kernel", "cnp-stride2-kernel", "cnp-stride",
                   "cnp-padding", "cnp-valid-3x3", "cnp-pool-size", "cnp-gap-height",
                   "cnp-gap-rows", "cnp-filter-memory", "fnp-inputs", "fnp-units", "pool-not-last",
                   "pool-before-dense", "sep-kernel"}


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_limit(name):
    ok, bad, rule, kwargs = LIMITS[name]
    ok_kw, bad_kw = kwargs if isinstance(kwargs, tuple) else (kwargs, kwargs)
    assert check_model_compatibility(ok(), **ok_kw) == []
    issues = check_model_compatibility(bad(), **bad_kw)
    assert [i.rule for i in issues] == [rule], [str(i) for i in issues]
    issue = issues[0]
    assert issue.hint and issue.allowed is not None and issue.found is not None
    assert issue.layer in issue.message
    assert issue.level == ("hardware" if name in HARDWARE_LIMITS else "convert")
    assert issue.to_dict()["level"] == issue.level


def test_issue_message_names_found_and_allowed():
    (issue,) = check_model_compatibility(inner(conv(kernel=9)))
    assert issue.message == ("Layer 'conv2d' (Convolutional): kernel_size=9 is not supported on "
                             "AKD1000; supported: 1, 3, 5, 7.") or "kernel_size=9" in issue.message
    assert issue.found == 9 and tuple(issue.allowed) == CNP.kernel_sizes
    assert issue.to_dict()["allowed"] == [1, 3, 5, 7]


def test_equivalent_forms_accepted():
    # Same conv + Valid max pool with identical output shape: same computation on Akida.
    model = pooled(L.MaxPooling2D(2, padding="valid"))
    assert check_model_compatibility(model) == []
    # Max pooling after a bounded ReLU equals pooling before it.
    assert check_model_compatibility(seq((8, 8, 2), conv(), relu(), L.MaxPooling2D(),
                                         conv(), relu(), *head())) == []

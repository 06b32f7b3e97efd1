"""Each mapping rule with a model just inside (maps with hw_only=True) and just outside (clear error)."""
import numpy as np
import pytest

import akida_core as ak
from akida_core.devices import Mesh, NPType
from akida_core.mapping import map_model

from .helpers import randomize

MAX, GAP = ak.PoolType.Max, ak.PoolType.Average


def model_of(input_layer, *layers, seed=0):
    """A model of these layers with random valid weights and small thresholds."""
    model = ak.Model()
    for layer in (input_layer, *layers):
        model.add(layer)
    return randomize(model, seed, threshold_range=(0, 5), act_step_range=(1.0, 2.0))


def data(shape, bits=4):
    return ak.InputData(shape, input_bits=bits, name="input")


def conv(kernel=3, filters=4, **kw):
    kw.setdefault("weights_bits", 4)
    kw.setdefault("act_bits", 4)
    return ak.Convolutional((kernel, kernel), filters, name="conv", **kw)


def ic(shape=(8, 8, 3), filters=4, **kw):
    kw.setdefault("weights_bits", 8)
    kw.setdefault("act_bits", 4)
    return ak.InputConvolutional(shape, (3, 3), filters, name="ic", **kw)


def fc(units=3, **kw):
    kw.setdefault("weights_bits", 4)
    return ak.FullyConnected(units, name="fc", **kw)


def set_variable(layer_name, name, value):
    def apply(model):
        layer = model.get_layer(layer_name)
        layer.variables[name] = np.full(layer.variables[name].shape, value, layer.variables[name].dtype)
        return model
    return apply


# (rule, build(value) -> model, inside value, outside value, layer named in the error, message part)
RULES = [
    ("conv per-filter memory k3@4", lambda c: model_of(data((4, 4, c)), conv(3)), 448, 449, "conv",
     "Filter size is too big to fit in a CNP"),
    ("conv per-filter memory k7@4", lambda c: model_of(data((8, 8, c)), conv(7)), 149, 150, "conv",
     "at most 149 input channels"),
    ("conv kernel size", lambda k: model_of(data((12, 12, 2)), conv(k)), 7, 9, "conv",
     "Kernel size 9 is not supported; allowed: 1, 3, 5, 7"),
    ("conv stride 2 needs 3x3", lambda k: model_of(data((8, 8, 2)), conv(k, kernel_stride=2)), 3, 5, "conv",
     "Stride 2 needs a kernel size in 3"),
    ("conv stride", lambda s: model_of(data((9, 9, 2)), conv(3, kernel_stride=s)), 2, 3, "conv",
     "Stride 3 is not supported"),
    ("conv weights bits", lambda b: model_of(data((4, 4, 2)), conv(3, weights_bits=b)), 4, 8, "conv",
     "Weights bits 8 not supported; allowed: 1, 2, 4"),
    ("separable weights bits", lambda b: model_of(data((4, 4, 2)), ak.SeparableConvolutional(
        (3, 3), 4, weights_bits=b, act_bits=4, name="conv")), 2, 1, "conv", "Weights bits 1 not supported"),
    ("conv padding", lambda p: model_of(data((6, 6, 2)), conv(3, padding=p)), ak.Padding.Same,
     ak.Padding.Valid, "conv", "Padding Valid is not supported"),
    ("max pool size", lambda p: model_of(data((12, 12, 2)), conv(3, pool_type=MAX, pool_size=p),
                                         ak.Convolutional((1, 1), 2, weights_bits=4, name="next")),
     2, 3, "conv", "Max pooling size 3 is not supported"),
    ("global average pooling rows", lambda h: model_of(data((h, 4, 2)), conv(3, pool_type=GAP)), 3, 2, "conv",
     "needs at least 3 rows"),
    ("global average pooling height", lambda h: model_of(data((h, 4, 2)), conv(3, pool_type=GAP)), 32, 33,
     "conv", "height 33 exceeds 32"),
    ("input conv filters", lambda f: model_of(ic(filters=f)), 192, 193, "ic", "between 1 and 192"),
    ("input conv width", lambda w: model_of(ic(shape=(3, w, 1))), 256, 257, "ic",
     "maximum input second dimension size is 256"),
    ("input conv channels", lambda c: model_of(ic(shape=(5, 5, c))), 3, 2, "ic", "Input channels 2"),
    ("input conv activation", lambda a: model_of(ic(activation=a)), True, False, "ic",
     "must have its activation enabled"),
    ("fully connected inputs", lambda n: model_of(data((1, 1, n), bits=1), fc(1, weights_bits=1)), 57334, 57335,
     "fc", "flattened input size 57335 exceeds 57334"),
    ("fully connected units", lambda u: model_of(data((1, 1, 1)), fc(u)), 8192, 8193, "fc",
     "between 1 and 8192"),
    ("fully connected weights bits", lambda b: model_of(data((1, 1, 4)), fc(2, weights_bits=b)), 4, 8, "fc",
     "Weights bits 8"),
    ("CNP threshold register", lambda t: set_variable("conv", "threshold", t)(
        model_of(data((4, 4, 2)), conv(3))), 2 ** 19 - 1, 2 ** 19, "conv", "20-bit register"),
    ("HRC threshold register", lambda t: set_variable("ic", "threshold", t)(model_of(ic())), 2 ** 23 - 1,
     2 ** 23, "ic", "24-bit register"),
    ("CNP act_step register", lambda s: set_variable("conv", "act_step", s)(
        model_of(data((4, 4, 2)), conv(3))), 65535.0, 65536.0, "conv", "act_step 65536.0 must be < 65536"),
    ("max pooling cannot end the model", lambda last: model_of(
        data((8, 8, 2)), conv(3, pool_type=MAX, pool_size=2), *([ak.Convolutional((3, 3), 2, name="c2")]
                                                                  if last else [])), True, False, "conv",
     "cannot end a sequence"),
    ("max pooling must feed a CNP", lambda kind: model_of(
        data((8, 8, 2)), conv(3, pool_type=MAX, pool_size=2),
        ak.Convolutional((3, 3), 2, name="next") if kind == "cnp" else fc(2)), "cnp", "fnp", "conv",
     "the next layer 'fc' is FullyConnected"),
    ("FNP cannot feed a CNP", lambda order: model_of(
        data((1, 1, 8)), *((fc(4, weights_bits=4), ak.Convolutional((1, 1), 2, name="conv_after"))
                           if order == "fnp-cnp" else (ak.Convolutional((1, 1), 2, name="conv_after"),
                                                       fc(4, weights_bits=4)))), "cnp-fnp", "fnp-cnp",
     "conv_after", "FNP cannot be directly followed by a layer mapped on CNP"),
    # 3x3x448 filters at 4 bits take 16,128 bits: 32 fill one 64 KiB NP, 33 need a second NP.
    ("stride 2 + max pool stays on one NP", lambda f: model_of(
        data((8, 8, 448)), conv(3, filters=f, kernel_stride=2, pool_type=MAX, pool_size=2),
        ak.Convolutional((1, 1), 2, weights_bits=4, name="next")), 32, 33, "conv",
     "stride > 1 and max pooling if the layer is mapped on multiple NPs"),
]


@pytest.mark.parametrize("rule,build,inside,outside,layer,message", RULES, ids=[r[0] for r in RULES])
def test_rule_just_inside_and_just_outside(rule, build, inside, outside, layer, message):
    model = build(inside)
    model.map(ak.AKD1000(), hw_only=True)
    assert [s.backend for s in model.sequences] == [ak.BackendType.Hardware]
    model = build(outside)
    with pytest.raises(ak.MappingError, match=f"Cannot map layer '{layer}'. ") as err:
        model.map(ak.AKD1000(), hw_only=True)
    assert message in str(err.value)
    model.map(ak.AKD1000())   # without hw_only the same model maps, with software or split sequences
    hardware = [s for s in model.sequences if s.backend is ak.BackendType.Hardware]
    assert len(model.sequences) > 1 or not hardware
    assert model._mapping.reasons[layer] in str(err.value)


def chain(n_convs):
    """InputData then `n_convs` 1x1 convolutions of one filter each: exactly one CNP per layer."""
    return model_of(data((2, 2, 1)), *[ak.Convolutional((1, 1), 1, weights_bits=4, act_bits=4, name=f"c{i}")
                                       for i in range(n_convs)])


@pytest.mark.parametrize("build,count", [(ak.AKD1000, 78), (ak.AKD1500, 32), (ak.TwoNodesIPv1, 8)])
def test_np_budget_just_inside_and_outside(build, count):
    model = chain(count)
    model.map(build(), hw_only=True)
    assert sum(len(nps) for nps in model.sequences[0].nps.values()) == count
    model = chain(count + 1)
    with pytest.raises(ak.MappingError, match=f"Cannot map layer 'c{count}'. The device runs out of NPs: "
                                              f"the sequence needs {count + 1} CNPs"):
        model.map(build(), hw_only=True)
    model.map(build())
    assert [s.name for s in model.sequences] == [f"HW/input-c{count - 1}", f"HW/c{count}-c{count}"]


def test_big_model_runs_out_on_small_devices_only():
    model = chain(40)
    model.map(ak.AKD1000(), hw_only=True)
    for small in (ak.AKD1500(), ak.TwoNodesIPv1()):
        with pytest.raises(ak.MappingError, match="runs out of NPs"):
            model.map(small, hw_only=True)


def test_max_pool_layer_moves_to_the_next_sequence_when_cut():
    layers = [ak.Convolutional((1, 1), 1, weights_bits=4, act_bits=4, name=f"c{i}") for i in range(8)]
    layers[7] = ak.Convolutional((1, 1), 1, weights_bits=4, act_bits=4, pool_type=MAX, pool_size=2, name="c7")
    model = model_of(data((4, 4, 1)), *layers, ak.Convolutional((1, 1), 1, weights_bits=4, name="c8"))
    model.map(ak.TwoNodesIPv1())   # 8 CNPs: the cut after c7 would leave a max-pooling layer last
    assert [s.name for s in model.sequences] == ["HW/input-c6", "HW/c7-c8"]


def test_fully_connected_on_fnp2_uses_external_memory():
    model = model_of(data((1, 1, 4096)), fc(200, weights_bits=4))   # 3,276,800 bits > one NP
    model.map(ak.AKD1000(), hw_only=True)
    (mapping,) = model.sequences[0].nps["fc"]
    assert mapping.type is NPType.FNP2
    assert model.sequences[0].external_memory == 4096 * 200 * 4 // 8


def test_fully_connected_split_over_fnp3_without_fnp2_unless_learning():
    nps = tuple(ak.NP((1, 1, i), {NPType.FNP3}) for i in range(1, 5))
    device = ak.Device(ak.NSoC_v2, Mesh(nps))
    model = model_of(data((1, 1, 8192), bits=1), fc(65, weights_bits=1))   # 532,480 bits: two FNP3
    model.map(device, hw_only=True)
    assert [(m.type, m.start, m.stop) for m in model.sequences[0].nps["fc"]] == \
        [(NPType.FNP3, 0, 33), (NPType.FNP3, 33, 65)]
    with pytest.raises(ak.MappingError, match="Cannot map layer 'fc'. .*not enough FNPs"):
        map_model(model, device, hw_only=True, single_np_layers=("fc",))


def test_learning_layer_stays_on_one_np():
    model = model_of(data((1, 1, 64), bits=1), fc(10, weights_bits=1))
    model.compile(ak.AkidaUnsupervised(num_weights=8, num_classes=2))
    model.map(ak.AKD1000(), hw_only=True)
    assert model._mapping.single_np_layers == ("fc",) and len(model.sequences[0].nps["fc"]) == 1


def test_device_without_hrc_or_fnp():
    no_hrc = ak.create_device(4, 1, include_hrc=False, hw_version=ak.NSoC_v2)
    with pytest.raises(ak.MappingError, match="Cannot map layer 'ic'. .*no HRC"):
        model_of(ic()).map(no_hrc, hw_only=True)
    with pytest.raises(ak.MappingError, match="Cannot map layer 'fc'. .*not enough FNPs"):
        model_of(data((1, 1, 4)), fc(2)).map(ak.create_device(4, 0, hw_version=ak.NSoC_v2), hw_only=True)


def test_ip_version_and_argument_errors():
    model = model_of(ic())
    with pytest.raises(ak.MappingError, match="model IP version v1 does not match the device IP version v2"):
        model.map(ak.create_device(4, 1))
    with pytest.raises(ak.MappingError, match="Cannot map on hardware only without device"):
        model.map(None, hw_only=True)
    with pytest.raises(ak.MappingError, match="is not a MapMode"):
        model.map(ak.AKD1000(), mode="AllNps")
    with pytest.raises(ak.MappingError, match="is not a Device"):
        model.map("AKD1000")
    with pytest.raises(ak.MappingError, match="none of its layers"):
        model_of(data((4, 4, 1))).map(ak.AKD1000(), hw_only=True)

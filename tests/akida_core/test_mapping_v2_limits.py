"""Every hw_only limit of mapping-v2.md §4 (and the table hardware/akida2.py): a model just inside maps in one
hardware sequence; the model just outside is refused with a LayerMappingError naming the layer, the limit and
the value. Table-driven: one row per limit (and per probed value pair)."""
import numpy as np
import pytest

import akida_core as ak
from akida_core.hardware.akida2 import AKIDA2, CONV2D

from .v2_mapping_models import A, P, POOL, conv, follower, net

MAX = POOL.Max


def ic(shape=(8, 8, 3), filters=8, kernel=3, **kwargs):
    """A model holding one InputConv2D named L."""
    model = ak.Model()
    model.add(ak.InputConv2D(shape, filters, kernel, name="L", **kwargs))
    return model


def dense(units=4, shape=(1, 1, 8), bits=8, **kwargs):
    return net(ak.Dense1D(units, name="L", **kwargs), shape=shape, bits=bits)


def shifted(model, value):
    layer = model.get_layer("L")
    layer.variables["input_shift"] = np.full(layer.variables["input_shift"].shape, value, np.uint8)
    return model


def chain_btc(count):
    return net(*[ak.BufferTempConv(8, 2, name="L" if k == count - 1 else f"btc_{k}") for k in range(count)])


C = ak.Conv2D
PER_FILTER = [((k, w), n) for (k, w), n in sorted(CONV2D.max_input_channels_per_filter.items()) if k > 1]

LIMITS = [
    # --- Conv2D (CNP1) ---
    ("conv kernel", lambda: net(conv(kernel=7)), lambda: net(conv(kernel=9)), "Kernel size must be 1, 3, 5 or 7 (got 9)"),
    ("conv padding", lambda: net(conv()), lambda: net(conv(padding=P.Valid)), "'Same' or 'SameUpper' are supported (got Valid)"),
    ("conv SameUpper stride", lambda: net(conv(kernel_stride=2, padding=P.SameUpper)),
     lambda: net(conv(padding=P.SameUpper)), "only stride 2 is supported (got stride 1)"),
    ("conv SameUpper weights", lambda: net(conv(kernel_stride=2, padding=P.SameUpper)),
     lambda: net(conv(kernel_stride=2, padding=P.SameUpper, weights_bits=4)), "only 8-bit weights are supported (got 4-bit)"),
    ("conv SameUpper outputs", lambda: net(conv(kernel_stride=2, padding=P.SameUpper)),
     lambda: net(conv(kernel_stride=2, padding=P.SameUpper, output_bits=4)), "only 8-bit activations are supported (got output_bits=4)"),
    ("conv max pool size", lambda: net(conv(pool_type=MAX, pool_size=2), follower()),
     lambda: net(conv(pool_type=MAX, pool_size=3), follower()), "Pooling size must be 1 or 2 (got 3)"),
    ("conv max pool and stride", lambda: net(conv(pool_type=MAX, pool_size=2), follower()),
     lambda: net(conv(kernel_stride=2, pool_type=MAX, pool_size=2), follower()), "both pooling and stride"),
    ("conv max pool ends sequence", lambda: net(conv(pool_type=MAX, pool_size=2), follower()),
     lambda: net(conv(pool_type=MAX, pool_size=2)), "cannot be the last layer of a sequence"),
    ("conv max pool before Dense1D", lambda: net(conv(pool_type=MAX, pool_size=2), follower()),
     lambda: net(conv(pool_type=MAX, pool_size=2), ak.Dense1D(4)), "cannot be the last layer of a sequence"),
    ("conv max pool > input", lambda: net(conv(kernel=1, pool_type=MAX, pool_size=1), follower(), shape=(1, 1, 8)),
     lambda: net(conv(kernel=1, pool_type=MAX, pool_size=2), follower(), shape=(1, 1, 8)),
     "Pooling size cannot be greater than input dimensions (pool size 2, convolution output 1x1)"),
    ("conv max pool with LUT", lambda: net(conv(pool_type=MAX, pool_size=2), follower()),
     lambda: net(conv(pool_type=MAX, pool_size=2, activation=A.LUT), follower()), "not supported with activation LUT"),
    ("GAP area", lambda: net(conv(pool_type=POOL.Average), shape=(12, 12, 8)),
     lambda: net(conv(pool_type=POOL.Average), shape=(13, 13, 8)), "cannot exceed 144 (got 13 x 13 = 169)"),
    ("GAP d0", lambda: net(conv(pool_type=POOL.Average), shape=(64, 2, 8)),
     lambda: net(conv(pool_type=POOL.Average), shape=(65, 2, 8)), "input height (d0) cannot exceed 64 (got 65)"),
    ("GAP d0 (sheet: 2x72 ok, 72x2 refused)", lambda: net(conv(pool_type=POOL.Average), shape=(2, 72, 8)),
     lambda: net(conv(pool_type=POOL.Average), shape=(72, 2, 8)), "cannot exceed 64 (got 72)"),
    ("GAP output bits", lambda: net(conv(pool_type=POOL.Average)),
     lambda: net(conv(pool_type=POOL.Average, activation=A.NoActivation, output_bits=28)),
     "With average pooling output bitwidth should be <= 8 (got 28)"),
    ("conv weights bits", lambda: net(conv(weights_bits=4)), lambda: net(conv(weights_bits=2)),
     "Weights bitwidth should be 4-bit or 8-bit (got 2-bit)"),
    ("conv input bits 5", lambda: net(conv(weights_bits=4), bits=4), lambda: net(conv(weights_bits=4), bits=5),
     "Input should be 4-bit or 8-bit (got 5-bit"),
    ("conv input bits 3", lambda: net(conv(weights_bits=4), bits=4), lambda: net(conv(weights_bits=4), bits=3),
     "Input should be 4-bit or 8-bit (got 3-bit"),
    ("conv input >= weights", lambda: net(conv()), lambda: net(conv(), bits=4),
     "Input bits should be >= weights bits (got 4-bit input from 'input' and 8-bit weights)"),
    ("conv ReLU output", lambda: net(conv()), lambda: net(conv(output_bits=16)),
     "With activation ReLU output bitwidth should be 4 or 8 (got 16)"),
    ("conv LUT output", lambda: net(conv(activation=A.LUT)), lambda: net(conv(activation=A.LUT, output_bits=4)),
     "With activation LUT output bitwidth should be 8 (got 4)"),
    ("conv no-activation output", lambda: net(conv(activation=A.NoActivation, output_bits=28)),
     lambda: net(conv(activation=A.NoActivation, output_bits=16)), "Without activation output bitwidth should be 8 or 28 (got 16)"),
    ("conv 4-bit weights 8-bit potential", lambda: net(conv(activation=A.NoActivation, output_bits=28, weights_bits=4)),
     lambda: net(conv(activation=A.NoActivation, output_bits=8, weights_bits=4)), "4-bit weights and 8-bit potential is not allowed"),
    ("conv filters", lambda: net(conv(2048, 1)), lambda: net(conv(2049, 1)), "maximum number of filters is 2048 (got 2049)"),
    ("conv input channels", lambda: net(conv(kernel=1), shape=(2, 2, 2048)), lambda: net(conv(kernel=1), shape=(2, 2, 2049)),
     "The maximum input channel value is 2048 (got 2049)"),
    *[(f"conv k{k} w{w} channels per filter", lambda k=k, w=w, n=n: net(conv(kernel=k, weights_bits=w), shape=(4, 4, n)),
       lambda k=k, w=w, n=n: net(conv(kernel=k, weights_bits=w), shape=(4, 4, n + 1)),
       f"at most {n} input channels with a {k}x{k} kernel and {w}-bit weights (got {n + 1})") for (k, w), n in PER_FILTER],
    ("conv d1", lambda: net(conv(kernel=1), shape=(1, 4096, 8)), lambda: net(conv(kernel=1), shape=(1, 4097, 8)),
     "The maximum input second dimension (d1) is 4096 (got 4097)"),
    ("conv d0 rows per CNP", lambda: net(conv(), shape=(1536, 1, 8)), lambda: net(conv(), shape=(1537, 1, 8)),
     "Not enough hardware components of type CNP1 available. 25 are needed but 24 are available"),
    ("conv input_shift", lambda: shifted(net(conv()), 7), lambda: shifted(net(conv()), 8),
     "input_shift should only contain unsigned values that use no more than 3-bit (largest value 8"),
    # --- DepthwiseConv2D (CNP1) ---
    ("dw kernel 1", lambda: net(ak.DepthwiseConv2D(3, name="L")), lambda: net(ak.DepthwiseConv2D(1, name="L")),
     "Kernel size must be 3, 5 or 7 (got 1)"),
    ("dw kernel 9", lambda: net(ak.DepthwiseConv2D(7, name="L")), lambda: net(ak.DepthwiseConv2D(9, name="L")),
     "Kernel size must be 3, 5 or 7 (got 9)"),
    ("dw 4-bit weights need 4-bit outputs", lambda: net(ak.DepthwiseConv2D(3, weights_bits=4, output_bits=4, name="L")),
     lambda: net(ak.DepthwiseConv2D(3, weights_bits=4, name="L")), "4-bit weights and 8-bit activation is not allowed"),
    ("dw channels", lambda: net(ak.DepthwiseConv2D(3, name="L"), shape=(2, 2, 2048)),
     lambda: net(ak.DepthwiseConv2D(3, name="L"), shape=(2, 2, 2049)), "maximum input channel value is 2048 (got 2049)"),
    ("dw input >= weights", lambda: net(ak.DepthwiseConv2D(3, name="L")),
     lambda: net(ak.DepthwiseConv2D(3, name="L"), bits=4), "Input bits should be >= weights bits"),
    # --- InputConv2D (HRC) ---
    ("ic kernel 1", lambda: ic(kernel=3), lambda: ic(kernel=1), "Kernel size must be 3, 4, 5 or 7 (got 1)"),
    ("ic kernel 2", lambda: ic(kernel=4), lambda: ic(kernel=2), "Kernel size must be 3, 4, 5 or 7 (got 2)"),
    ("ic kernel 9", lambda: ic(kernel=7), lambda: ic(kernel=9), "Kernel size must be 3, 4, 5 or 7 (got 9)"),
    ("ic stride k3", lambda: ic(kernel=3, kernel_stride=3), lambda: ic(kernel=3, kernel_stride=4),
     "For a kernel size 3, the kernel stride must be 1, 2 or 3 (got 4)"),
    ("ic max pool (2, 2)", lambda: ic(pool_type=MAX, pool_size=2, pool_stride=2), lambda: ic(pool_type=MAX, pool_size=2, pool_stride=1),
     "(got (2, 1))"),
    ("ic max pool (3, 2)", lambda: ic(pool_type=MAX, pool_size=3, pool_stride=2), lambda: ic(pool_type=MAX, pool_size=3, pool_stride=3),
     "(got (3, 3))"),
    ("ic weights", lambda: ic(), lambda: ic(weights_bits=4), "Weights bitwidth should be 8-bit (got 4-bit)"),
    ("ic activation", lambda: ic(), lambda: ic(activation=A.NoActivation), "can only be mapped if its activations are enabled"),
    ("ic filters", lambda: ic(filters=512), lambda: ic(filters=513), "maximum number of filters is 512 (got 513)"),
    ("ic d1 max", lambda: ic(shape=(5, 384, 3)), lambda: ic(shape=(5, 385, 3)), "between 5 and 384 (got 385)"),
    ("ic d1 min", lambda: ic(shape=(5, 5, 3)), lambda: ic(shape=(5, 4, 3)), "between 5 and 384 (got 4)"),
    ("ic d0 min", lambda: ic(shape=(5, 5, 1)), lambda: ic(shape=(4, 5, 1)), "first dimension should be >= 5 (got 4)"),
    # --- Dense1D (FNP) ---
    ("dense inputs", lambda: dense(shape=(1, 1, 2048)), lambda: dense(shape=(1, 1, 2049)),
     "too large to fit in a FNP. The maximum value is 2048 (got 2049 flattened inputs)"),
    ("dense inputs 4x4x128", lambda: dense(shape=(4, 4, 128)), lambda: dense(shape=(4, 4, 129)), "The maximum value is 2048"),
    ("dense units", lambda: dense(65535, shape=(1, 1, 1)), lambda: dense(65536, shape=(1, 1, 1)),
     "maximum number of units is 65535 (got 65536)"),
    ("dense weights bits", lambda: dense(weights_bits=4, output_bits=32), lambda: dense(weights_bits=2, output_bits=32),
     "(got 2-bit)"),
    ("dense input >= weights", lambda: dense(), lambda: dense(bits=4), "Input bits should be >= weights bits"),
    ("dense 4-bit weights output", lambda: dense(weights_bits=4, activation=A.ReLU, output_bits=4),
     lambda: dense(weights_bits=4, activation=A.ReLU, output_bits=8), "4-bit weights and 8-bit activation is not allowed"),
    ("dense no-activation output", lambda: dense(output_bits=32), lambda: dense(output_bits=16),
     "Without activation output bitwidth should be 8, 28 or 32 (got 16)"),
    ("dense ReLU output", lambda: dense(activation=A.ReLU, output_bits=8), lambda: dense(activation=A.ReLU, output_bits=16),
     "With activation ReLU output bitwidth should be 4 or 8 (got 16)"),
    ("dense LUT", lambda: dense(activation=A.ReLU), lambda: dense(activation=A.LUT), "Does not support activation type 'LUT'"),
    ("FNP then CNP", lambda: net(ak.Dense1D(8), ak.Dense1D(4, name="L"), shape=(1, 1, 8)),
     lambda: net(ak.Dense1D(8), conv(kernel=1), shape=(1, 1, 8)), "A layer mapped on FNP cannot be directly followed"),
    # --- Conv2DTranspose / DepthwiseConv2DTranspose (CNP1) ---
    ("transpose kernel 5", lambda: net(ak.Conv2DTranspose(8, 3, name="L")), lambda: net(ak.Conv2DTranspose(8, 5, name="L")),
     "Kernel size must be 3 or 4 (got 5)"),
    ("transpose kernel 2", lambda: net(ak.Conv2DTranspose(8, 4, name="L")), lambda: net(ak.Conv2DTranspose(8, 2, name="L")),
     "Kernel size must be 3 or 4 (got 2)"),
    ("transpose weights", lambda: net(ak.Conv2DTranspose(8, 3, name="L")),
     lambda: net(ak.Conv2DTranspose(8, 3, weights_bits=4, name="L")), "Weights bitwidth should be 8-bit (got 4-bit)"),
    ("transpose ReLU output", lambda: net(ak.Conv2DTranspose(8, 3, name="L")),
     lambda: net(ak.Conv2DTranspose(8, 3, output_bits=4, name="L")), "With activation ReLU output bitwidth should be 8 (got 4)"),
    ("transpose filters", lambda: net(ak.Conv2DTranspose(2048, 3, name="L"), shape=(2, 2, 8)),
     lambda: net(ak.Conv2DTranspose(2049, 3, name="L"), shape=(2, 2, 8)), "maximum number of filters is 2048 (got 2049)"),
    ("transpose k3 channels", lambda: net(ak.Conv2DTranspose(8, 3, name="L"), shape=(2, 2, 682)),
     lambda: net(ak.Conv2DTranspose(8, 3, name="L"), shape=(2, 2, 683)), "at most 682 input channels"),
    ("transpose k4 channels", lambda: net(ak.Conv2DTranspose(8, 4, name="L"), shape=(2, 2, 341)),
     lambda: net(ak.Conv2DTranspose(8, 4, name="L"), shape=(2, 2, 342)), "at most 341 input channels"),
    ("transpose d1", lambda: net(ak.Conv2DTranspose(8, 3, name="L"), shape=(2, 128, 8)),
     lambda: net(ak.Conv2DTranspose(8, 3, name="L"), shape=(2, 129, 8)), "Split by height is not supported"),
    ("transpose d0 rows (output doubles)", lambda: net(ak.Conv2DTranspose(8, 3, name="L"), shape=(768, 1, 8)),
     lambda: net(ak.Conv2DTranspose(8, 3, name="L"), shape=(769, 1, 8)), "25 are needed but 24 are available"),
    ("dw transpose channels", lambda: net(ak.DepthwiseConv2DTranspose(3, name="L"), shape=(2, 2, 2048)),
     lambda: net(ak.DepthwiseConv2DTranspose(3, name="L"), shape=(2, 2, 2049)), "maximum input channel value is 2048"),
    # --- BufferTempConv / DepthwiseBufferTempConv (TNP_B + skip DMA) ---
    ("btc weights", lambda: net(ak.BufferTempConv(8, 3, name="L")), lambda: net(ak.BufferTempConv(8, 3, weights_bits=4, name="L")),
     "Weights bitwidth should be 8-bit (got 4-bit)"),
    ("btc output", lambda: net(ak.BufferTempConv(8, 3, name="L")), lambda: net(ak.BufferTempConv(8, 3, output_bits=4, name="L")),
     "output bitwidth should be 8 (got 4)"),
    ("btc LUT", lambda: net(ak.BufferTempConv(8, 3, name="L")),
     lambda: net(ak.BufferTempConv(8, 3, activation=A.LUT, name="L")), "Does not support activation type 'LUT'"),
    ("btc input bits", lambda: net(ak.BufferTempConv(8, 3, name="L")), lambda: net(ak.BufferTempConv(8, 3, name="L"), bits=4),
     "Input should be 8-bit (got 4-bit"),
    ("btc filters", lambda: net(ak.BufferTempConv(2048, 2, name="L")), lambda: net(ak.BufferTempConv(2049, 2, name="L")),
     "maximum number of filters is 2048 (got 2049)"),
    ("btc channels fifo 3", lambda: net(ak.BufferTempConv(8, 3, name="L"), shape=(2, 2, 512)),
     lambda: net(ak.BufferTempConv(8, 3, name="L"), shape=(2, 2, 513)), "maximum input channel value is 512 (got 513)"),
    ("btc channels fifo 10", lambda: net(ak.BufferTempConv(8, 10, name="L"), shape=(2, 2, 186)),
     lambda: net(ak.BufferTempConv(8, 10, name="L"), shape=(2, 2, 187)), "Cannot split to fit weights in ram"),
    ("dbtc channels fifo 10", lambda: net(ak.DepthwiseBufferTempConv(10, name="L"), shape=(2, 2, 376)),
     lambda: net(ak.DepthwiseBufferTempConv(10, name="L"), shape=(2, 2, 377)), "Cannot split to fit inputs in ram"),
    ("btc d1", lambda: net(ak.Conv2D(8, 1), ak.BufferTempConv(8, 2, name="L"), shape=(8, 3072, 8)),
     lambda: net(ak.Conv2D(8, 1), ak.BufferTempConv(8, 2, name="L"), shape=(8, 3073, 8)),
     "The next BufferTempConv L can't be mapped in the current pass"),
    ("btc d0 after a 1x1 conv", lambda: net(ak.Conv2D(8, 1), ak.BufferTempConv(8, 2, name="L"), shape=(768, 8, 8)),
     lambda: net(ak.Conv2D(8, 1), ak.BufferTempConv(8, 2, name="L"), shape=(769, 8, 8)),
     "Not enough hardware components of type TNP_B available"),
    ("btc chain vs skip-DMA channels", lambda: chain_btc(4), lambda: chain_btc(5),
     "A TNP-B layer cannot be the first layer of a pass"),
]


@pytest.mark.parametrize("inside,outside,fragment", [row[1:] for row in LIMITS], ids=[row[0] for row in LIMITS])
def test_limit_just_inside_maps_and_just_outside_is_refused(inside, outside, fragment):
    model = inside()
    model.map(ak.SixNodesIPv2(), hw_only=True)
    (sequence,) = model.sequences
    assert sequence.backend is ak.BackendType.Hardware and "L" in [lay.name for lay in sequence.layers]
    refused = outside()
    with pytest.raises(ak.LayerMappingError) as info:
        refused.map(ak.SixNodesIPv2(), hw_only=True)
    assert info.value.layer == "L", str(info.value)
    assert str(info.value).startswith("Cannot map layer 'L'. ") and fragment in str(info.value), str(info.value)
    assert refused.device is None   # a failed map leaves the model unmapped


@pytest.mark.parametrize("inside,outside,fragment", [row[1:] for row in LIMITS], ids=[row[0] for row in LIMITS])
def test_fallback_puts_the_refused_layer_in_software(inside, outside, fragment):
    model = outside()
    model.map(ak.SixNodesIPv2())
    software = [lay.name for s in model.sequences if s.backend is ak.BackendType.Software for lay in s.layers]
    # A layer that only cannot share the sequence of its neighbours starts a new hardware sequence instead.
    assert "L" in software or len(model.sequences) > 1, model.sequences
    if "L" in software:
        assert fragment in model._mapping.reasons["L"]


def test_every_conv2d_per_filter_probe_is_a_row():
    assert len(PER_FILTER) == 6 and AKIDA2.limits(ak.LayerType.Conv2D) is CONV2D


def test_hw_only_lists_every_failed_check_of_the_layer():
    model = net(conv(kernel=9, weights_bits=2, output_bits=16), bits=5)
    with pytest.raises(ak.LayerMappingError) as info:
        model.map(ak.SixNodesIPv2(), hw_only=True)
    text = str(info.value)
    assert len(info.value.reasons) == 4
    for fragment in ("Kernel size must be 1, 3, 5 or 7 (got 9)", "Weights bitwidth should be 4-bit or 8-bit (got 2-bit)",
                     "Input should be 4-bit or 8-bit (got 5-bit", "output bitwidth should be 4 or 8 (got 16)"):
        assert fragment in text

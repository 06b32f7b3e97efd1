"""The Akida 2.0 benchmark model: the 22-layer MobileNet-like model of mapping-v2.md §7.

InputConv2D(64x64x3, 32, k3 s2) + 9 x (DepthwiseConv2D k3 + Conv2D 1x1, 32 -> 256 channels, 3 of stride 2)
+ Conv2D(256, k3, GAP) + Dense1D(10) + Dequantizer. Used by bench/mapping.py and the mapping tests.
"""
import akida_core as ak


def mobilenet_22():
    """Build the 22-layer model (default variable values; mapping does not depend on them)."""
    model = ak.Model()
    model.add(ak.InputConv2D((64, 64, 3), 32, 3, kernel_stride=2))
    for filters, stride in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (256, 2), (256, 1), (256, 1), (256, 1)]:
        model.add(ak.DepthwiseConv2D(3, kernel_stride=stride))
        model.add(ak.Conv2D(filters, 1))
    model.add(ak.Conv2D(256, 3, pool_type=ak.PoolType.Average))
    model.add(ak.Dense1D(10))
    model.add(ak.Dequantizer())
    return model

"""Per-layer speed of the Akida 2.0 layer kinds outside the AkidaNet-like graph: transposed convolutions and the
FIFO (temporal) layers, each beside a Conv2D that runs on the same input, as the yardstick.

Each case is an 8-bit InputConv2D (16x16x3 -> 16x16x64) followed by the layer; the layer's time is the model's
time minus the input convolution's alone (best of several timed repetitions each, bench/runtime.best_time), at
batch 1 and 16 (for the FIFO layers, 16 time steps). Printed: ms per call, GMAC/s, and the ratio of the layer's
GMAC/s to the Conv2D's (the same standard for every layer kind: near 1 is as fast per MAC as a convolution;
depthwise kinds do few MACs per value read and stay far below).

Run: python bench/layers_v2.py [--repeats N]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import akida_core as ak  # noqa: E402
from bench.runtime import best_time  # noqa: E402
from bench.runtime_v2 import _calibrate, _randomize  # noqa: E402

SIZE, CHANNELS = 16, 64
LAYERS = {
    "Conv2D 3x3": lambda: ak.Conv2D(CHANNELS, 3, name="layer"),
    "Conv2DTranspose 3x3": lambda: ak.Conv2DTranspose(CHANNELS, 3, name="layer"),
    "DepthwiseConv2D 3x3": lambda: ak.DepthwiseConv2D(3, name="layer"),
    "DepthwiseConv2DTranspose 3x3": lambda: ak.DepthwiseConv2DTranspose(3, name="layer"),
    "Conv2D 1x1": lambda: ak.Conv2D(CHANNELS, 1, name="layer"),
    "BufferTempConv fifo 5": lambda: ak.BufferTempConv(CHANNELS, 5, name="layer"),
    "DepthwiseBufferTempConv fifo 5": lambda: ak.DepthwiseBufferTempConv(5, name="layer"),
}
#: The yardstick of each kind: the Conv2D (or DepthwiseConv2D) on the same input.
YARDSTICK = {"Conv2DTranspose 3x3": "Conv2D 3x3", "DepthwiseConv2DTranspose 3x3": "DepthwiseConv2D 3x3",
             "BufferTempConv fifo 5": "Conv2D 1x1", "DepthwiseBufferTempConv fifo 5": "DepthwiseConv2D 3x3"}


def case(make, rng):
    """The InputConv2D > layer model, randomized and calibrated (bench/runtime_v2.py)."""
    model = ak.Model()
    model.add(ak.InputConv2D((SIZE, SIZE, 3), CHANNELS, 3, name="conv_0"))
    model.add(make())
    for layer in model.layers:
        _randomize(layer, rng)
    _calibrate(model, rng.integers(0, 256, (2, SIZE, SIZE, 3)).astype(np.uint8))
    return model


def layer_seconds(model, x, repeats):
    """Best time of the model on `x` minus that of its input convolution alone."""
    whole = best_time(lambda: model._run(x, 0, layers=model.layers), repeats)
    first = best_time(lambda: model._run(x, 0, layers=model.layers[:1]), repeats)
    return max(whole - first, 1e-9)


def main(argv=None):
    """Print ms, GMAC/s and the ratio to the yardstick convolution per layer kind and batch."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions per measurement")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"input {SIZE}x{SIZE}x{CHANNELS}; layer time = model time - input convolution time")
    print(f"{'layer':<32}{'batch':>6}{'ms':>9}{'GMAC/s':>9}{'vs conv':>9}")
    rates = {}
    for name, make in LAYERS.items():
        model = case(make, rng)
        macs = model.layers[1].macs
        for batch in (1, 16):
            x = rng.integers(0, 256, (batch, SIZE, SIZE, 3)).astype(np.uint8)
            seconds = layer_seconds(model, x, args.repeats)
            rates[name, batch] = macs * batch / seconds / 1e9
            yardstick = rates.get((YARDSTICK.get(name), batch))
            ratio = f"{rates[name, batch] / yardstick:>9.2f}" if yardstick else f"{'':>9}"
            print(f"{name:<32}{batch:>6}{seconds * 1e3:>9.3f}{rates[name, batch]:>9.2f}{ratio}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of the akida_core Akida 2.0 runtime on an 8-bit AkidaNet-like graph.

The model: an 8-bit input convolution, depthwise-separable blocks (DepthwiseConv2D + pointwise
Conv2D, stride 2 on some), one residual Add around a separable block, global average pooling, a
Dense1D head and a Dequantizer. Weights are random 8-bit, shifts and scales keep activations alive.
Prints samples/s, CPU ms per sample (all threads), effective GMAC/s and their ratio to a float32 matmul of
the same MAC count measured in the same run (bench/runtime.py) at batch 1 and 64, then the peak memory of a
batch-64 inference (the Akida 1.0 AkidaNet-like model reaches 40% of that rate at batch 64; issue 17 asks the
same standard of the Akida 2.0 layers).

With --compete, each batch is also timed while one busy process competes for the CPU (bench/runtime.py).

Run: python bench/runtime_v2.py [--repeats N] [--size 128] [--compete]
"""
import argparse
import os
import sys
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import akida_core as ak  # noqa: E402
from bench.runtime import best_time, competing_process, matmul_gmacs  # noqa: E402

A = ak.ActivationType


def _randomize(layer, rng):
    v = layer.variables
    if "weights" in v:
        v["weights"] = rng.integers(-127, 128, v["weights"].shape).astype(np.int8)
    if "output_scales" in v:
        units = v["output_scales"].shape[0]
        v["bias"] = rng.integers(-20, 20, units).astype(np.int8)
        v["output_scales"] = rng.integers(64, 256, units).astype(np.uint8)


def _calibrate(model, x):
    """Per layer, in order, the least negative output shift that saturates < 1% of its outputs."""
    for index, layer in enumerate(model.layers):
        if "output_shift" not in layer.variables.names or layer.layer_type.name == "Add":
            continue
        units = layer.variables["output_shift"].shape[0]
        low, high = -31, 0
        while low < high:  # binary search on a monotone property
            shift = (low + high + 1) // 2
            layer.variables["output_shift"] = np.full(units, shift, np.int8)
            out = model._run(x, 0, layers=model.layers[:index + 1])
            if np.mean(out >= np.iinfo(out.dtype).max) < 0.01:
                low = shift
            else:
                high = shift - 1
        layer.variables["output_shift"] = np.full(units, low, np.int8)


def akidanet_v2(size=128, width=32):
    """The benchmark graph (8-bit weights and activations), returned with its layers randomized."""
    rng = np.random.default_rng(0)
    model = ak.Model()
    model.add(ak.InputConv2D((size, size, 3), width, 3, kernel_stride=2, name="conv_0"))
    channels = width

    def separable(name, filters, stride):
        model.add(ak.DepthwiseConv2D(3, kernel_stride=stride, name=f"{name}_dw"))
        model.add(ak.Conv2D(filters, 1, name=f"{name}_pw"))

    separable("sep_1", 2 * channels, 1)
    separable("sep_2", 4 * channels, 2)
    separable("sep_3", 4 * channels, 1)
    block_in = model.get_layer("sep_3_pw")
    separable("sep_4", 4 * channels, 1)
    model.add(ak.Add(name="residual"), [block_in, model.get_layer("sep_4_pw")])
    separable("sep_5", 8 * channels, 2)
    separable("sep_6", 8 * channels, 2)
    model.add(ak.Conv2D(16 * channels, 1, pool_type=ak.PoolType.Average, name="gap_pw"))
    model.add(ak.Dense1D(10, name="classifier"))
    model.add(ak.Dequantizer(name="dequantizer"))
    for layer in model.layers:
        _randomize(layer, rng)
    _calibrate(model, rng.integers(0, 256, (2, size, size, 3)).astype(np.uint8))
    return model


def main(argv=None):
    """Time the graph at batch 1 and 64 and print samples/s and GMAC/s."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions per measurement")
    parser.add_argument("--size", type=int, default=128, help="input height and width")
    parser.add_argument("--compete", action="store_true",
                        help="also time each batch with one competing CPU-bound process")
    args = parser.parse_args(argv)
    model = akidanet_v2(args.size)
    print(f"AkidaNet-like Akida 2.0 graph, input {args.size}x{args.size}x3, {model.layer_count} layers, "
          f"{model.macs / 1e6:.1f} MMAC/sample")
    busy_header = f"{'busy samples/s':>16}" if args.compete else ""
    print(f"{'batch':>6}{'samples/s':>12}{'CPU ms':>8}{'GMAC/s':>9}{'ms/batch':>10}{'matmul GMAC/s':>15}"
          f"{'ratio':>8}{busy_header}")
    rng = np.random.default_rng(1)
    for batch in (1, 64):
        x = rng.integers(0, 256, (batch, args.size, args.size, 3)).astype(np.uint8)
        cpu = []
        seconds = best_time(lambda: model.forward(x), args.repeats, cpu)
        ours = model.macs * batch / seconds / 1e9
        reference = matmul_gmacs(model.macs * batch, args.repeats)
        row = (f"{batch:>6}{batch / seconds:>12.1f}{cpu[0] / batch * 1e3:>8.2f}"
               f"{ours:>9.2f}{seconds * 1e3:>10.1f}{reference:>15.2f}{ours / reference:>8.1%}")
        if args.compete:
            with competing_process():
                row += f"{batch / best_time(lambda: model.forward(x), args.repeats):>16.1f}"
        print(row, flush=True)
    stats = model.statistics
    dead = [name for name, s in stats.layers.items() if s.events == 0]
    if dead:
        print(f"warning: layers with all-zero outputs: {dead}")
    x = rng.integers(0, 256, (64, args.size, args.size, 3)).astype(np.uint8)
    tracemalloc.start()
    try:
        model.forward(x)
        peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
    finally:
        tracemalloc.stop()
    print(f"peak memory of a batch-64 inference: {peak:.1f} MB (tracemalloc, inputs excluded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

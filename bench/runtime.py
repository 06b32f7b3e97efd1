"""Benchmark of the akida_core integer runtime against the machine's float32 matmul rate.

For each benchmark model (bench/models.py) and batch 1 / 64, prints samples/s, effective GMAC/s and the
ratio to a float32 numpy matmul doing the same number of MACs, measured in the same run.
Target (issue 3): the AkidaNet-like model at batch 64 reaches >= 25% of the float32 matmul rate.

Run: python bench/runtime.py [--repeats N]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.models import BENCHMARK_MODELS, random_inputs  # noqa: E402


def best_time(fn, repeats):
    """Best wall time of `repeats` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_gmacs(macs, repeats):
    """GMAC/s of a float32 (m, k) @ (k, n) product with about `macs` multiply-accumulates."""
    k = n = 256
    m = max(1, int(macs // (k * n)))
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    seconds = best_time(lambda: a @ b, repeats)
    return m * k * n / seconds / 1e9


def main(argv=None):
    """Run the benchmark and print one row per model and batch size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions per measurement")
    args = parser.parse_args(argv)
    print(f"{'model':<14}{'batch':>6}{'MMAC/sample':>13}{'samples/s':>12}{'GMAC/s':>9}"
          f"{'matmul GMAC/s':>15}{'ratio':>8}")
    results = {}
    for name, build in BENCHMARK_MODELS.items():
        model = build()
        for batch in (1, 64):
            x = random_inputs(model, batch)
            seconds = best_time(lambda: model.forward(x), args.repeats)
            macs = model.macs * batch
            ours = macs / seconds / 1e9
            reference = matmul_gmacs(macs, args.repeats)
            results[(name, batch)] = ours / reference
            print(f"{name:<14}{batch:>6}{model.macs / 1e6:>13.2f}{batch / seconds:>12.1f}{ours:>9.2f}"
                  f"{reference:>15.2f}{ours / reference:>8.1%}")
    target = results[("akidanet_05", 64)]
    print(f"AkidaNet-like batch 64 reaches {target:.1%} of the float32 matmul rate "
          f"(target >= 25%): {'OK' if target >= 0.25 else 'BELOW TARGET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

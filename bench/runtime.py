"""Benchmark of the akida_core integer runtime against the machine's float32 matmul rate.

For each benchmark model (bench/models.py) and batch 1 / 64, prints samples/s, effective GMAC/s and the
ratio to a float32 numpy matmul doing the same number of MACs (best of one thread and all cores), measured
in the same run; then the peak
memory (tracemalloc: numpy's allocations included) of a batch-64 AkidaNet inference.
With --compete, every measurement is repeated while one busy process (`while True: pass`, started and
stopped by the benchmark) competes for the CPU, and the drop is printed next to it (issue 17: at most
about 2×). --blas picks who sets the threads: the runtime's rules (default: worker threads for large
batches and large one-sample layers, akida_core/model/workers.py, and one BLAS thread below 1 G MACs per
call), one thread for everything, or numpy's library default (no worker threads; the runtime does not
touch the BLAS threads). "CPU ms" is the processor time per sample (all threads): the work done, which
another process sharing the CPU changes far less than the wall time.
Target (issue 17): the AkidaNet-like model at batch 64 reaches >= 40% of the float32 matmul rate.

Run: python bench/runtime.py [--repeats N] [--compete] [--blas {rule,one,library}]
"""
import argparse
import contextlib
import math
import os
import subprocess
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from akida_core.model import threads, workers  # noqa: E402
from bench.models import BENCHMARK_MODELS, akidanet_05, random_inputs  # noqa: E402


MIN_TIMED_SECONDS = 0.05
"""A timed repetition calls the function as many times as fill at least this long (a batch-1 call of a small
model takes a fraction of a millisecond: one call alone measures the timer and the scheduler)."""
WARM_UP_SECONDS = 0.3
"""Calls before timing: at least one, and as many as fill this long. An idle CPU takes a moment to reach its
working clock: with one warm-up call, batch-1 MNIST measured 3,050 samples/s against 4,300 after 0.3 s."""


def best_time(fn, repeats, cpu=None):
    """Best wall time per call over `repeats` timed repetitions (after WARM_UP_SECONDS of warm-up calls), each of
    as many calls as fill MIN_TIMED_SECONDS; `cpu`, a list, receives the processor time per call (all threads of
    the process) of the best repetition."""
    start = time.perf_counter()
    fn()
    first = max(time.perf_counter() - start, 1e-6)
    while time.perf_counter() - start < WARM_UP_SECONDS:
        call = time.perf_counter()
        fn()
        first = min(first, max(time.perf_counter() - call, 1e-6))
    calls = max(1, math.ceil(MIN_TIMED_SECONDS / first))
    best, best_cpu = float("inf"), None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            fn()
        seconds = (time.perf_counter() - start) / calls
        if seconds < best:
            best, best_cpu = seconds, (time.process_time() - start_cpu) / calls
    if cpu is not None:
        cpu.append(best_cpu)
    return best


def matmul_gmacs(macs, repeats):
    """GMAC/s of a float32 (m, k) @ (k, n) product with about `macs` multiply-accumulates: the faster of
    one BLAS thread and all of them (on a shared CPU the library's default threading can stall for a
    whole time slice, which would make any ratio meaningless), best of `repeats`."""
    k = n = 256
    m = max(1, int(macs // (k * n)))
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    limiter = threads.ThreadLimiter()
    seconds = []
    for count in sorted({1, threads.available_cores()}):
        limiter.set(count)
        seconds.append(best_time(lambda: a @ b, repeats))
    limiter.restore()
    return m * k * n / min(seconds) / 1e9


@contextlib.contextmanager
def competing_process():
    """One CPU-bound Python process running for the duration of the block (always stopped on exit)."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start spinning
        yield busy
    finally:
        busy.kill()
        busy.wait()


def peak_memory_mb(model, batch):
    """Peak traced memory (MB) of one `model.forward` on `batch` random inputs (inputs excluded)."""
    x = random_inputs(model, batch)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        model.forward(x)
        return tracemalloc.get_traced_memory()[1] / 2 ** 20
    finally:
        tracemalloc.stop()


def choose_blas(mode):
    """Apply the --blas choice (the runtime's rule, one thread always, or the library's default)."""
    if mode in ("one", "library"):
        workers.MAX_WORKERS = 1
    if mode == "one":
        threads.PARALLEL_MACS = float("inf")
    elif mode == "library":
        threads._libraries = ()


def main(argv=None):
    """Run the benchmark and print one row per model and batch size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions per measurement")
    parser.add_argument("--compete", action="store_true",
                        help="also measure each row with one competing CPU-bound process")
    parser.add_argument("--blas", choices=("rule", "one", "library"), default="rule",
                        help="threads: the runtime's rules, one for everything, or numpy's default (no workers)")
    args = parser.parse_args(argv)
    choose_blas(args.blas)
    print(f"BLAS threads: {args.blas}; cores: {threads.available_cores()}")
    header = (f"{'model':<14}{'batch':>6}{'MMAC/sample':>13}{'samples/s':>12}{'CPU ms':>8}{'GMAC/s':>9}"
              f"{'matmul GMAC/s':>15}{'ratio':>8}")
    if args.compete:
        header += f"{'busy samples/s':>16}{'drop':>7}"
    print(header)
    results = {}
    for name, build in BENCHMARK_MODELS.items():
        model = build()
        for batch in (1, 64):
            x = random_inputs(model, batch)
            cpu = []
            seconds = best_time(lambda: model.forward(x), args.repeats, cpu)
            macs = model.macs * batch
            ours = macs / seconds / 1e9
            reference = matmul_gmacs(macs, args.repeats)
            results[(name, batch)] = ours / reference
            row = (f"{name:<14}{batch:>6}{model.macs / 1e6:>13.2f}{batch / seconds:>12.1f}"
                   f"{cpu[0] / batch * 1e3:>8.2f}{ours:>9.2f}"
                   f"{reference:>15.2f}{ours / reference:>8.1%}")
            if args.compete:
                with competing_process():
                    busy = best_time(lambda: model.forward(x), args.repeats)
                row += f"{batch / busy:>16.1f}{busy / seconds:>6.1f}x"
            print(row, flush=True)
    target = results[("akidanet_05", 64)]
    print(f"AkidaNet-like batch 64 reaches {target:.1%} of the float32 matmul rate "
          f"(target >= 40%): {'OK' if target >= 0.40 else 'BELOW TARGET'}")
    print(f"peak memory of a batch-64 AkidaNet-like inference: {peak_memory_mb(akidanet_05(), 64):.1f} MB "
          "(tracemalloc, inputs excluded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

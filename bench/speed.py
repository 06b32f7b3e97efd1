"""Toolchain speed: quantize + calibrate and convert times against MetaTF's (issues 16 and 17).

Every case runs in fresh Python processes: the *first* call there pays TensorFlow's tracing and
graph building, as a user's script does; *warm* is the same call repeated in that process.
Imports and building the float model are not timed (``from cnn2snn import convert`` imports the
converter and akida_core first, as a user's script does).
Calibration: 1024 uint8-valued samples (batch 32 for the Akida 2.0 cases, as MetaTF's
measurement). The ratio is MetaTF's time / ours (higher is better; the goal is >= 5x).

    python bench/speed.py [--repeats 3] [--heavy] [--case NAME ...]

``--heavy`` adds AkidaNet-0.5 128x128 Akida 1.0 (a few seconds per process). The machine's load
moves every figure: compare ratios measured in one run, and look at the ranges.
"""
import argparse
import json
import os
import subprocess
import sys
import time

#: MetaTF's measured times in seconds on this kind of machine (2 cores, TF 2.19 CPU), 1024
#: calibration samples: (quantize + calibrate, convert). Akida 2.0: conversion-v2.md §7;
#: Akida 1.0: issue 17.
METATF_SECONDS = {
    "akidanet_like_v2_per_axis": (11.3, 7.0),
    "akidanet_like_v2_per_tensor": (9.2, 7.0),
    "mnist_cnn_v1": (2.5, 1.2),
    "ds_cnn_kws_v1": (4.5, 2.5),
    "akidanet_05_v1": (15.2, 6.0),
}
HEAVY = ("akidanet_05_v1",)
SAMPLES = 1024


def _case(name):
    """Model, samples and the quantize call of one case."""
    import numpy as np
    import keras
    keras.utils.set_random_seed(0)
    if name.endswith("_v2_per_axis") or name.endswith("_v2_per_tensor"):
        from bench.akida2 import akidanet_like
        from quantizeml.models import QuantizationParams, quantize
        model = akidanet_like()
        qparams = QuantizationParams(per_tensor_activations=name.endswith("per_tensor"))
        kwargs = {"qparams": qparams, "batch_size": 32}
    else:
        from bench.convert import MODELS, randomize
        from quantizeml import Akida1QuantizationParams
        from quantizeml.models import quantize
        model = randomize(MODELS[name[:-len("_v1")]]())
        kwargs = {"qparams": Akida1QuantizationParams(), "verbose": 0}
    shape = tuple(model.inputs[0].shape[1:])
    x = np.random.default_rng(1).integers(0, 256, (SAMPLES, *shape)).astype(np.float32)
    return model, x, lambda: quantize(model, samples=x, **kwargs)


def measure(name, warm_repeats=2):
    """In this process: first and warm quantize/convert seconds of case ``name``."""
    import warnings
    from cnn2snn import convert  # imports the converter (and akida_core), as user code does
    model, x, run = _case(name)
    times = {"quantize": [], "convert": [], "quantize_cpu": []}
    for _ in range(1 + warm_repeats):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start, cpu = time.perf_counter(), time.process_time()
            qmodel = run()
            times["quantize"].append(time.perf_counter() - start)
            times["quantize_cpu"].append(time.process_time() - cpu)
            start = time.perf_counter()
            akida_model = convert(qmodel)
            times["convert"].append(time.perf_counter() - start)
    return {"name": name, "layers": len(akida_model.layers), **times}


def _child(name):
    result = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", name],
                            capture_output=True, text=True, check=False,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode or not lines:
        raise RuntimeError(f"case {name} failed:\n{result.stderr[-2000:]}")
    return json.loads(lines[-1])


def _range(values):
    return f"{min(values):5.2f}-{max(values):5.2f}" if len(values) > 1 else f"{values[0]:11.2f}"


def main(argv=None):
    """Run each case in ``--repeats`` fresh processes and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per case")
    parser.add_argument("--heavy", action="store_true", help="add AkidaNet-0.5 128x128 v1")
    parser.add_argument("--case", nargs="*", choices=sorted(METATF_SECONDS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        print(json.dumps(measure(args.child)))
        return 0
    cases = args.case or [c for c in METATF_SECONDS if args.heavy or c not in HEAVY]
    print(f"{SAMPLES} calibration samples; seconds as min-max over {args.repeats} fresh "
          "processes; ratio = MetaTF's measured time / our best first call; cpu = CPU seconds "
          "of the first quantize (all threads; less sensitive to other processes' load)")
    print(f"{'case':<28}{'quantize first':>15}{'cpu':>6}{'warm':>7}{'MetaTF':>8}{'ratio':>7}"
          f"{'convert first':>15}{'warm':>7}{'MetaTF':>8}{'ratio':>7}")
    for name in cases:
        runs = [_child(name) for _ in range(args.repeats)]
        first_q = [r["quantize"][0] for r in runs]
        first_c = [r["convert"][0] for r in runs]
        warm_q = min(t for r in runs for t in r["quantize"][1:])
        warm_c = min(t for r in runs for t in r["convert"][1:])
        metatf_q, metatf_c = METATF_SECONDS[name]
        cpu = min(r["quantize_cpu"][0] for r in runs)
        print(f"{name:<28}{_range(first_q):>15}{cpu:6.2f}{warm_q:7.2f}{metatf_q:8.1f}"
              f"{metatf_q / min(first_q):6.1f}x{_range(first_c):>15}{warm_c:7.2f}"
              f"{metatf_c:8.1f}{metatf_c / min(first_c):6.1f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

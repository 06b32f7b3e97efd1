"""Benchmark of model.map(): map time, NPs, sequences and program bytes of the three benchmark models.

For each benchmark model (bench/models.py), device (AKD1000, AKD1500, TwoNodesIPv1) and map mode
(AllNps, Minimal), prints the best map time (including encoding every program), the sequences, the
NPs used (HRC not counted), the program bytes, external memory, and the estimated frames per second
at 300 MHz (an ESTIMATE of akida_core.estimates, not a measurement).
Target (issue 6): mapping the AkidaNet-like model on AKD1000 takes under 1 s.
Akida 2.0 (issue 15): the 22-layer model of mapping-v2.md §7 (bench/models_v2.py) on the IPv2 devices in
every mode, hw_only and fallback: map time, sequences, passes, NP uses; goal under 0.1 s on SixNodesIPv2.

Run: python bench/mapping.py [--repeats N]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import akida_core as ak  # noqa: E402
from bench.models import BENCHMARK_MODELS  # noqa: E402
from bench.models_v2 import mobilenet_22  # noqa: E402

DEVICES = {"AKD1000": ak.AKD1000, "AKD1500": ak.AKD1500, "TwoNodesIPv1": ak.TwoNodesIPv1}


def map_and_encode(model, device, mode):
    """Map, then build every program (what a user pays for before loading the device)."""
    model.map(device, mode=mode)
    return [s.program for s in model.sequences]


def best_time(fn, repeats):
    """Best wall time of `repeats` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def describe(model):
    """(sequences text, NPs used, program bytes, external memory bytes, estimated fps) of the mapping."""
    hardware = [s for s in model.sequences if s.backend is ak.BackendType.Hardware]
    software = len(model.sequences) - len(hardware)
    nps = max((sum(1 for nps in s.nps.values() for m in nps if m.type.name != "HRC") for s in hardware),
              default=0)
    text = f"{len(hardware)} HW" + (f" + {software} SW" if software else "")
    estimates = model.statistics.estimates
    return (text, nps, sum(s.program_size for s in hardware), sum(s.external_memory for s in hardware),
            estimates.fps if estimates is not None else None)


def main(argv=None):
    """Run the benchmark and print one row per model, device and mode."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per row (best is kept)")
    args = parser.parse_args(argv)
    print(f"{'model':<13}{'device':<14}{'mode':<9}{'map ms':>8}{'sequences':>12}{'NPs':>5}"
          f"{'program B':>11}{'ext. mem B':>12}{'est. fps':>10}")
    akidanet_ms = None
    for name, build in BENCHMARK_MODELS.items():
        model = build()
        for device_name, make_device in DEVICES.items():
            for mode in (ak.MapMode.AllNps, ak.MapMode.Minimal):
                device = make_device()
                seconds = best_time(lambda: map_and_encode(model, device, mode), args.repeats)
                sequences, nps, program, external, fps = describe(model)
                fps_text = f"{fps:>10.0f}" if fps else f"{'-':>10}"
                print(f"{name:<13}{device_name:<14}{mode.name:<9}{seconds * 1e3:>8.1f}{sequences:>12}{nps:>5}"
                      f"{program:>11,}{external:>12,}{fps_text}")
                if name == "akidanet_05" and device_name == "AKD1000" and mode is ak.MapMode.AllNps:
                    akidanet_ms = seconds * 1e3
    print(f"AkidaNet-like on AKD1000 (AllNps) maps in {akidanet_ms:.1f} ms (target < 1000 ms): "
          f"{'OK' if akidanet_ms < 1000 else 'TOO SLOW'}")
    print("est. fps: ESTIMATE from akida_core.estimates (cost model v1, 300 MHz, dense inputs), not measured.")
    v2_ms = main_v2(args.repeats)
    return 0 if akidanet_ms < 1000 and v2_ms < 100 else 1


def map_v2(model, device, mode, hw_only):
    """Map; a hw_only refusal is a result too (its message is the answer)."""
    try:
        model.map(device, hw_only=hw_only, mode=mode)
    except ak.MappingError as err:
        return str(err).split(". ")[1][:60]
    hardware = [s for s in model.sequences if s.backend is ak.BackendType.Hardware]
    uses = sum(len(m.nps) for s in hardware for m in s.mappings.values())
    return (f"{len(hardware)} HW + {len(model.sequences) - len(hardware)} SW, "
            f"{sum(len(s.passes) for s in hardware)} passes, {uses} NP uses")


def main_v2(repeats):
    """The Akida 2.0 rows; returns the SixNodesIPv2 AllNps hw_only map time in ms."""
    print(f"\n{'Akida 2.0 model':<16}{'device':<17}{'mode':<9}{'hw_only':<9}{'map ms':>8}  result")
    model, six_ms = mobilenet_22(), None
    for name in ("TwoNodesIPv2", "FourNodesIPv2", "SixNodesIPv2", "TwelveNodesIPv2"):
        device = getattr(ak, name)()
        for mode in ak.MapMode:
            for hw_only in (True, False):
                result = map_v2(model, device, mode, hw_only)
                seconds = best_time(lambda: map_v2(model, device, mode, hw_only), repeats)
                print(f"{'mobilenet_22':<16}{name:<17}{mode.name:<9}{str(hw_only):<9}{seconds * 1e3:>8.1f}  {result}")
                if name == "SixNodesIPv2" and mode is ak.MapMode.AllNps and hw_only:
                    six_ms = seconds * 1e3
    print(f"Akida 2.0 22-layer model on SixNodesIPv2 (AllNps, hw_only) maps in {six_ms:.1f} ms (goal < 100 ms): "
          f"{'OK' if six_ms < 100 else 'TOO SLOW'}")
    return six_ms


if __name__ == "__main__":
    sys.exit(main())

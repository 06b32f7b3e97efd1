"""`akida-core` command line: demo, summary, run (and map once mapping is available).

Exit codes: 0 success, 2 usage error or bad input, 3 unreadable or invalid model file.
"""
import argparse
import json
import logging
import sys
import time

import numpy as np

from . import __version__
from .errors import AkidaError, InputDataError, ModelFormatError

EXIT_OK, EXIT_USAGE, EXIT_BAD_FILE = 0, 2, 3


def _load(path):
    from .model import Model
    return Model(path)


def _cmd_demo(args):
    from .demo import run_demo
    run_demo(output=args.output, samples=args.samples, seed=args.seed)
    return EXIT_OK


def _cmd_summary(args):
    model = _load(args.model)
    if args.format == "json":
        layers = [{"name": lay.name, "type": lay.layer_type.name, "output_shape": list(lay.output_dims),
                   "macs": lay.macs} for lay in model.layers]
        print(json.dumps({"input_shape": model.input_shape, "output_shape": model.output_shape,
                          "macs": model.macs, "layers": layers}, indent=2))
    else:
        model.summary()
    return EXIT_OK


def _read_inputs(path, model):
    try:
        inputs = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputDataError(f"cannot read inputs from {path}: {err}") from err
    if not isinstance(inputs, np.ndarray):
        raise InputDataError(f"{path} holds several arrays; give a .npy file with one (batch, h, w, c) array")
    return inputs


def _cmd_run(args):
    model = _load(args.model)
    if args.input:
        inputs = _read_inputs(args.input, model)
    else:
        print("No input provided, using random data (seed 0).", file=sys.stderr)
        first = model.layers[0]
        inputs = np.random.default_rng(0).integers(0, 2 ** first.input_bits, (args.batch, *model.input_shape),
                                                   dtype=np.int64).astype(np.uint8)
    start = time.perf_counter()
    outputs = model.forward(inputs)
    seconds = time.perf_counter() - start
    if args.format == "json":
        stats = {name: {"events": s.events, "sparsity": s.sparsity, "macs_per_sample": s.macs_per_sample}
                 for name, s in model.statistics.layers.items()}
        print(json.dumps({"output_shape": list(outputs.shape), "output_dtype": str(outputs.dtype),
                          "seconds": seconds, "samples_per_second": len(inputs) / seconds,
                          "statistics": stats}, indent=2))
    else:
        print(f"outputs: shape {outputs.shape}, dtype {outputs.dtype}")
        print(model.statistics)
        print(f"time: {seconds * 1000:.2f} ms for {len(inputs)} samples ({len(inputs) / seconds:,.1f} samples/s)")
    return EXIT_OK


def build_parser():
    """The argparse parser of `akida-core`."""
    parser = argparse.ArgumentParser(prog="akida-core", description="The akida_core integer runtime.")
    parser.add_argument("--version", action="version", version=f"akida-core {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build a model by hand, run, summarise, save and reload it")
    demo.add_argument("-o", "--output", help="where to save the demo .fbz (default: a temp dir)")
    demo.add_argument("--samples", type=int, default=256, help="number of random samples to run")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_cmd_demo)
    summary = sub.add_parser("summary", help="print the summary of a .fbz model")
    summary.add_argument("model", help="path to a .fbz file")
    summary.add_argument("--format", choices=("text", "json"), default="text")
    summary.set_defaults(func=_cmd_summary)
    run = sub.add_parser("run", help="run a .fbz model on inputs (.npy) or random data")
    run.add_argument("-m", "--model", required=True, help="path to a .fbz file")
    run.add_argument("-i", "--input", help="a .npy file holding a (batch, h, w, c) integer array")
    run.add_argument("--batch", type=int, default=8, help="random samples when no input is given")
    run.add_argument("--format", choices=("text", "json"), default="text")
    run.set_defaults(func=_cmd_run)
    try:
        from .mapping_cli import add_map_command
    except ImportError:
        pass
    else:
        add_map_command(sub)
    return parser


def main(argv=None):
    """Entry point of `akida-core`; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING)
    try:
        return args.func(args)
    except ModelFormatError as err:
        if args.debug:
            raise
        print(f"akida-core: error: {err}", file=sys.stderr)
        return EXIT_BAD_FILE
    except (AkidaError, OSError) as err:
        if args.debug:
            raise
        print(f"akida-core: error: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())

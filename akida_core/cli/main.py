"""`akida-core` command line: demo, summary, run (and map once mapping is available).

Exit codes: 0 success, 2 usage error or bad input, 3 unreadable or invalid model or inputs file,
4 internal error (a bug: rerun with --debug and report it).
"""
import argparse
import json
import logging
import math
import sys
import time

import numpy as np

from .. import __version__
from ..errors import AkidaError, InputDataError, InputFileError, ModelFormatError
from ..model.inference import check_sample_memory
from ..model.inputs import input_range, read_inputs_file

EXIT_OK, EXIT_USAGE, EXIT_BAD_FILE, EXIT_INTERNAL = 0, 2, 3, 4
MAX_RANDOM_INPUT_BYTES = 256 * 2 ** 20
"""`run` without -i generates at most this many bytes of random inputs."""


def _load(path):
    from ..model import Model
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
        extra = {}
        if model.ip_version.name == "v2":  # graphs: say what feeds each layer
            for entry, lay in zip(layers, model.layers):
                entry["inbounds"] = [inbound.name for inbound in lay.inbounds]
            extra["ip_version"] = "v2"
        print(json.dumps({"input_shape": model.input_shape, "output_shape": model.output_shape,
                          "macs": model.macs, **extra, "layers": layers}, indent=2))
    else:
        model.summary()
    return EXIT_OK


def _random_inputs(model, batch):
    """Seeded random inputs in the model's input range, refused before allocating when too large."""
    check_sample_memory(model.layers)
    size = batch * math.prod(model.input_shape)
    if size > MAX_RANDOM_INPUT_BYTES:
        raise InputDataError(
            f"--batch {batch} random inputs of shape {tuple(model.input_shape)} would take {size:,} bytes; "
            f"at most {MAX_RANDOM_INPUT_BYTES:,} are generated. Hint: a smaller --batch, or give -i inputs.npy")
    first = model.layers[0]
    low, high = input_range(first.input_bits, first.input_signed)
    print("No input provided, using random data (seed 0).", file=sys.stderr)
    if first.layer_type.name == "Quantizer":  # Akida 2.0 float inputs
        return np.random.default_rng(0).uniform(-1, 1, (batch, *model.input_shape)).astype(np.float32)
    if model.ip_version.name == "v2":  # exact dtypes: uint8 up to 4 bits and for InputConv2D, else int8
        low, high = (0, 255) if first.layer_type.name == "InputConv2D" else (max(low, -128), min(high, 127))
    dtype = np.int8 if low < 0 else np.uint8  # drawn in the final dtype: no 8x int64 temporary
    return np.random.default_rng(0).integers(low, high, (batch, *model.input_shape), dtype, endpoint=True)


def _cmd_run(args):
    model = _load(args.model)
    inputs = read_inputs_file(args.input) if args.input else _random_inputs(model, args.batch)
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


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 1")
    return value


def build_parser():
    """The argparse parser of `akida-core`."""
    parser = argparse.ArgumentParser(
        prog="akida-core", description="The akida_core integer runtime.",
        epilog="Exit codes: 0 success, 1 map --hw-only: does not fit, 2 usage error or bad input, "
        "3 unreadable or invalid model/inputs file, 4 internal error.")
    parser.add_argument("--version", action="version", version=f"akida-core {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build a model by hand, run, summarise, save and reload it")
    demo.add_argument("-o", "--output", help="where to save the demo .fbz (default: a temp dir)")
    demo.add_argument("--samples", type=_positive, default=256, help="number of random samples to run")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_cmd_demo)
    summary = sub.add_parser("summary", help="print the summary of a .fbz model")
    summary.add_argument("model", help="path to a .fbz file")
    summary.add_argument("--format", choices=("text", "json"), default="text")
    summary.set_defaults(func=_cmd_summary)
    run = sub.add_parser("run", help="run a .fbz model on inputs (.npy) or random data")
    run.add_argument("-m", "--model", required=True, help="path to a .fbz file")
    run.add_argument("-i", "--input", help="a .npy file holding a (batch, h, w, c) integer array")
    run.add_argument("--batch", type=_positive, default=8, help="random samples when no input is given")
    run.add_argument("--format", choices=("text", "json"), default="text")
    run.set_defaults(func=_cmd_run)
    try:
        from .mapping import add_map_command
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
    codes = ((ModelFormatError, EXIT_BAD_FILE), (InputFileError, EXIT_BAD_FILE), (AkidaError, EXIT_USAGE),
             (OSError, EXIT_USAGE))
    try:
        return args.func(args)
    except Exception as err:  # a bug too gets one line and a documented code; --debug shows it
        if args.debug:
            raise
        code = next((code for kind, code in codes if isinstance(err, kind)), EXIT_INTERNAL)
        text = " ".join(str(err).split())
        if code == EXIT_INTERNAL:
            text = f"internal error: {type(err).__name__}: {text} (rerun with --debug and report it)"
        print(f"akida-core: error: {text}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())

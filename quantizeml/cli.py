"""`quantizeml` command line: quantize a float model file, print per-layer bits, version.

Exit codes: 0 success; 1 the model cannot be quantized (unsupported layers or order, already
quantized); 2 usage error (bad option, bad samples); 3 unreadable, invalid or unsafe model or
samples file; 4 internal error (a bug: rerun with --debug and report it).

Example:
    $ quantizeml quantize -m float.keras -w 4 -a 4 -i 8 --samples calib.npz -o q.keras
    $ quantizeml config -m q.keras --format json
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import warnings

EXIT_OK, EXIT_NOT_QUANTIZABLE, EXIT_USAGE, EXIT_FILE, EXIT_INTERNAL = 0, 1, 2, 3, 4
#: Columns of the `config` table: (dump_config key, header).
COLUMNS = (("weight_bits", "weight bits"), ("input_bits", "input bits"),
           ("activation_bits", "act bits"), ("per_tensor_activations", "per-tensor act"),
           ("padding_value", "padding"), ("bits", "bits"), ("scale", "scale"),
           ("zero_point", "zero point"))


class SamplesFileError(ValueError):
    """The calibration samples file cannot be read or holds no usable array."""


#: Largest samples array read (bytes), checked from the .npy header before allocating.
MAX_SAMPLES_BYTES = 2 * 1024**3
MAX_NPZ_MEMBERS = 1024
#: Integer samples must be exactly representable in float32 (calibration runs in float32).
MAX_INTEGER_SAMPLE = 2**24
NPY_MAGIC, ZIP_MAGIC = b"\x93NUMPY", b"PK\x03\x04"


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version
    parts = []
    for package in ("open-akida-toolchain", "tensorflow", "keras", "numpy"):
        try:
            parts.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            parts.append(f"{package} (not installed)")
    return f"quantizeml ({', '.join(parts)}, Python {platform.python_version()})"


def _read_npy(handle, size: int, what: str):
    """The array of a .npy stream holding ``size`` bytes, its header checked before reading."""
    import numpy as np
    fmt = np.lib.format
    start = handle.tell()
    version = fmt.read_magic(handle)
    if version not in ((1, 0), (2, 0)):
        raise SamplesFileError(f"{what} cannot be read: .npy format version {version}; allowed: "
                               "1.0, 2.0.")
    reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, _, dtype = reader(handle)
    if dtype.hasobject:
        raise SamplesFileError(f"{what} cannot be read: it holds Python objects (dtype "
                               f"{dtype}); pickles are never loaded.")
    needed = dtype.itemsize
    for dim in shape:
        needed *= dim
    available = size - handle.tell()
    if needed > MAX_SAMPLES_BYTES:
        raise SamplesFileError(f"{what}: its header declares shape {shape} of {dtype} "
                               f"({needed} bytes); the limit is {MAX_SAMPLES_BYTES} bytes.")
    if needed > available:
        raise SamplesFileError(f"{what} is truncated or its header is wrong: shape {shape} of "
                               f"{dtype} needs {needed} bytes, it holds {available}.")
    handle.seek(start)
    return fmt.read_array(handle, allow_pickle=False)


def _read_npz(path, key, what: str):
    import zipfile
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        if len(members) > MAX_NPZ_MEMBERS:
            raise SamplesFileError(f"{what} holds {len(members)} members; the limit is "
                                   f"{MAX_NPZ_MEMBERS}.")
        for member in members:
            if member.flag_bits & 0x1 or member.compress_type not in (zipfile.ZIP_STORED,
                                                                      zipfile.ZIP_DEFLATED):
                raise SamplesFileError(f"{what} cannot be read: member {member.filename!r} is "
                                       "encrypted or uses a compression numpy does not write.")
        names = [m.filename[:-4] for m in members if m.filename.endswith(".npy")]
        if key is None:
            if len(names) == 1:
                key = names[0]
            else:
                key = next((name for name in ("x", "samples") if name in names), None)
        if key not in names:
            raise SamplesFileError(f"{what} holds arrays {names}; choose one with --samples-key "
                                   "(default: the only array, else 'x' or 'samples').")
        member = archive.getinfo(key + ".npy")
        with archive.open(member) as handle:
            return _read_npy(handle, member.file_size, f"{what} array {key!r}")


def _check_samples(array, what: str):
    from .errors import CalibrationError
    if array.ndim == 0:
        raise CalibrationError(f"{what} holds a single value (shape ()); expected a batch of "
                               "samples (N, height, width, channels).")
    if array.dtype.kind not in "biuf":
        raise CalibrationError(f"{what} holds {array.dtype} values; allowed: bool, integer or "
                               "float samples.")
    if array.dtype.kind in "iu" and array.size:
        largest = max(abs(int(array.min())), abs(int(array.max())))
        if largest > MAX_INTEGER_SAMPLE:
            raise CalibrationError(f"{what} holds integers up to magnitude {largest}; allowed: "
                                   f"<= {MAX_INTEGER_SAMPLE} (exact in float32, which "
                                   "calibration uses).")
    return array


def read_samples(path, key=None):
    """Calibration samples from a `.npy` file or a `.npz` archive (never unpickles).

    The `.npy` header (shape, dtype) is checked against the bytes present before anything is
    allocated.

    Args:
        path: the file.
        key: the array of a `.npz` to use; default: its only array, else "x" or "samples".

    Returns:
        The numpy array.

    Raises:
        SamplesFileError: missing/unreadable/truncated/corrupted file, a header declaring more
            data than present (or over ``MAX_SAMPLES_BYTES``), pickled objects, no array to
            choose.
        CalibrationError: a 0-d array, complex or non-numeric values, integers beyond float32's
            exact range.
    """
    import stat
    import zipfile
    import zlib
    what = f"samples file {str(path)!r}"
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise SamplesFileError(f"{what} cannot be read as .npy/.npz: not a regular file.")
        with open(path, "rb") as handle:
            magic = handle.read(len(NPY_MAGIC))
            handle.seek(0)
            if not magic:
                raise SamplesFileError(f"{what} cannot be read as .npy/.npz: it is empty (0 "
                                       "bytes).")
            if magic.startswith(NPY_MAGIC):
                if key is not None:
                    raise SamplesFileError(f"{what} is a .npy (one array); --samples-key "
                                           f"{key!r} only applies to .npz archives.")
                array = _read_npy(handle, info.st_size, what)
            elif magic.startswith(ZIP_MAGIC):
                array = _read_npz(path, key, what)
            else:
                raise SamplesFileError(f"{what} cannot be read as .npy/.npz: it starts with "
                                       f"{magic!r}, neither the .npy nor the zip magic.")
    except SamplesFileError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError,
            RuntimeError, NotImplementedError, MemoryError) as err:
        raise SamplesFileError(f"{what} cannot be read as .npy/.npz: {type(err).__name__}: "
                               f"{err}") from err
    return _check_samples(array, what)


def default_output(model_path, args) -> str:
    """`<model>_i{input weight bits}_w{weight bits}_a{activation bits}.keras` next to the model."""
    base = os.path.splitext(model_path)[0]
    return f"{base}_i{args.input_weight_bits}_w{args.weight_bits}_a{args.activation_bits}.keras"


def _qparams(args):
    from .params import Akida1QuantizationParams  # this command quantizes for Akida 1.0
    return Akida1QuantizationParams(weight_bits=args.weight_bits,
                                    activation_bits=args.activation_bits,
                                    input_weight_bits=args.input_weight_bits,
                                    per_tensor_activations=not args.per_channel_activations)


def _cmd_quantize(args):
    from .models import dump_config, load_model, quantize, save_model
    output = args.output or default_output(args.model, args)
    if not output.endswith(".keras"):
        raise argparse.ArgumentTypeError(f"--output {output!r} must end with '.keras'")
    if os.path.abspath(output) == os.path.abspath(args.model):
        raise argparse.ArgumentTypeError(f"--output {output!r} is the input model")
    if os.path.exists(output) and not args.force:
        raise argparse.ArgumentTypeError(f"{output} already exists; pass --force to overwrite it")
    samples = read_samples(args.samples, args.samples_key) if args.samples else None
    qparams = _qparams(args)
    model = load_model(args.model)
    source = f"{len(samples)} samples from {args.samples}" if samples is not None else \
        "random samples (no --samples: accuracy will suffer)"
    if args.format == "text":
        print(f"Quantizing model {args.model}: {qparams.weight_bits}-bit weights, "
              f"{qparams.activation_bits}-bit activations, {qparams.input_weight_bits}-bit "
              f"input-layer weights; calibration on {source}.")
    with warnings.catch_warnings():
        if samples is None:
            warnings.simplefilter("ignore")  # said above, once
        qmodel = quantize(model, qparams=qparams, samples=samples, num_samples=args.num_samples,
                          batch_size=args.batch_size, epochs=args.epochs,
                          # Keras draws its bar with escape codes even into a file: a plain
                          # line there (verbose=2), the bar on a terminal.
                          verbose=0 if args.format == "json" or args.quiet else
                          1 if sys.stdout.isatty() else 2)
    save_model(qmodel, output)
    if args.format == "json":
        print(json.dumps({"model": args.model, "output": output, "qparams": qparams.to_dict(),
                          "calibration": source, "layers": _jsonable(dump_config(qmodel))},
                         indent=2))
    else:
        print(f"Saved quantized model to {output}.")
    return EXIT_OK


def _jsonable(value):
    import numpy as np
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def resolved_config(model, qparams):
    """Per-layer settings of a quantized model, or of what `quantize` would build from a float one.

    A float model is quantized with random calibration samples (bits and structure do not depend
    on them; scales do, so they are left out).

    Returns:
        (quantized: bool, {layer name: settings}).
    """
    from .models import dump_config, quantize
    from .models.quantize import QUANTIZED_CLASSES
    if any(isinstance(layer, QUANTIZED_CLASSES) for layer in model.layers):
        return True, _jsonable(dump_config(model))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random calibration samples: irrelevant for the bits
        qmodel = quantize(model, qparams=qparams, num_samples=1, verbose=0)
    config = _jsonable(dump_config(qmodel))
    for settings in config.values():
        settings.pop("scale", None)
        settings.pop("zero_point", None)
    return False, config


def format_config(config) -> str:
    """The per-layer settings as a text table (one row per quantized layer)."""
    columns = [(key, header) for key, header in COLUMNS
               if any(key in settings for settings in config.values())]
    header = ["layer", "class"] + [title for _, title in columns]
    rows = [[name, settings["class_name"]] + [_cell(settings.get(key)) for key, _ in columns]
            for name, settings in config.items()]
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(f"{cell:<{width}}" for cell, width in zip(row, widths)).rstrip()
             for row in [header, ["-" * w for w in widths]] + rows]
    return "\n".join(lines)


def _cell(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _cmd_config(args):
    from .models import load_model
    qparams = _qparams(args)
    model = load_model(args.model)
    quantized, config = resolved_config(model, qparams)
    if args.format == "json":
        text = json.dumps({"model": args.model, "quantized": quantized,
                           "qparams": None if quantized else qparams.to_dict(),
                           "layers": config}, indent=2)
    else:
        origin = "quantized model" if quantized else (
            f"float model, as `quantizeml quantize -w {qparams.weight_bits} -a "
            f"{qparams.activation_bits} -i {qparams.input_weight_bits}` would quantize it")
        text = f"{args.model}: {origin}\n" + format_config(config)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        print(f"Saved the configuration to {args.output}.")
    else:
        print(text)
    return EXIT_OK


def _cmd_version(args):
    print(_versions())
    return EXIT_OK


def _add_bits(parser):
    parser.add_argument("-w", "--weight-bits", type=int, choices=(1, 2, 4, 8), default=4,
                        help="weight bits of every neural layer but the first (default 4)")
    parser.add_argument("-a", "--activation-bits", type=int, choices=(1, 2, 4), default=4,
                        help="ReLU output bits (default 4)")
    parser.add_argument("-i", "--input-weight-bits", type=int, choices=(4, 8), default=8,
                        help="weight bits of the first neural layer (default 8)")
    parser.add_argument("--per-channel-activations", action="store_true",
                        help="one activation range per channel (default: per tensor)")


def _positive(value):
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be 1 or more")
    return number


def build_parser():
    """The argparse parser of `quantizeml`."""
    parser = argparse.ArgumentParser(
        # Raw: argparse would wrap the --version line.
        prog="quantizeml", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Quantize Keras models for Akida 1.0 (exact integer "
        "semantics).", epilog="Exit codes: 0 success, 1 model cannot be quantized, 2 usage "
        "error, 3 unreadable/invalid/unsafe file, 4 internal error.")
    parser.add_argument("--version", action="version", version=_versions())
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    quantize = sub.add_parser("quantize", help="quantize and calibrate a float .keras/.h5 model")
    quantize.add_argument("-m", "--model", required=True, help="float model (.keras or .h5)")
    _add_bits(quantize)
    quantize.add_argument("--samples", help="calibration inputs: .npy, or .npz (see "
                          "--samples-key), in the float model's input domain")
    quantize.add_argument("--samples-key", help="array of the .npz to use")
    quantize.add_argument("--num-samples", type=_positive, default=1024,
                          help="calibration samples per epoch (default 1024)")
    quantize.add_argument("--batch-size", type=_positive, help="calibration batch size")
    quantize.add_argument("--epochs", type=_positive, default=1, help="calibration epochs")
    quantize.add_argument("-o", "--output", help="output .keras (default: "
                          "<model>_i<i>_w<w>_a<a>.keras)")
    quantize.add_argument("--force", action="store_true", help="overwrite an existing output")
    quantize.add_argument("--format", choices=("text", "json"), default="text")
    quantize.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    quantize.set_defaults(func=_cmd_quantize)
    config = sub.add_parser("config", help="print the resolved per-layer quantization settings")
    config.add_argument("-m", "--model", required=True, help="quantized or float model")
    _add_bits(config)
    config.add_argument("--format", choices=("text", "json"), default="text")
    config.add_argument("-o", "--output", help="write the configuration to this file")
    config.set_defaults(func=_cmd_config)
    version = sub.add_parser("version", help="print the versions")
    version.set_defaults(func=_cmd_version)
    return parser


def main(argv=None) -> int:
    """Entry point of `quantizeml`; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # TensorFlow is already loaded (by this package's import): the `quantizeml` command quiets it
    # first, in its entry point cnn2snn.console.quantizeml_main.
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING)
    from .errors import (CalibrationError, ModelFormatError, QuantizationConfigError,
                         QuantizationError)
    codes = ((argparse.ArgumentTypeError, EXIT_USAGE), (ModelFormatError, EXIT_FILE),
             (SamplesFileError, EXIT_FILE), (QuantizationError, EXIT_NOT_QUANTIZABLE),
             (QuantizationConfigError, EXIT_NOT_QUANTIZABLE), (CalibrationError, EXIT_USAGE),
             (OSError, EXIT_FILE))
    try:
        return args.func(args)
    except Exception as err:
        if args.debug:
            raise
        code = next((code for kind, code in codes if isinstance(err, kind)), EXIT_INTERNAL)
        text = " ".join(str(err).split()) if code != EXIT_INTERNAL else \
            f"internal error: {type(err).__name__}: {err} (rerun with --debug)"
        print(f"quantizeml: error: {text}", file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

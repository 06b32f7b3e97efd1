"""Command-line tools: `cnn2snn-check` and `cnn2snn convert` (argument parsing and printing only).

Exit codes: 0 compatible / converted, 1 issues found, 2 usage error, 3 unreadable or unsafe model
file, 4 internal error (a bug: rerun with --debug and report it).
"""
from __future__ import annotations

import argparse
import os
import sys

from .console import quiet_tensorflow

EXIT_OK, EXIT_ISSUES, EXIT_USAGE, EXIT_FILE, EXIT_INTERNAL = 0, 1, 2, 3, 4


def _bits(value):
    try:
        bits = int(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer bit width") from err
    if bits not in (1, 2, 4, 8):
        raise argparse.ArgumentTypeError(f"{bits} bits is not supported; allowed: 1, 2, 4, 8")
    return bits


def _target_names(akida2=False):
    """Akida 1.0 targets (AKD1000), plus the Akida 2.0 virtual devices with `akida2` (the checker maps
    Akida 2.0-quantized models on them), upper-cased as `--target` reads them."""
    from akida_core.hardware import TARGETS
    from akida_core.mapping.devices_v2 import V2_DEVICES
    return sorted(name.upper() for name in [*TARGETS, *(V2_DEVICES if akida2 else ())])


def _display_name(target):
    """The device's own spelling of an upper-cased `--target` (SIXNODESIPV2 -> SixNodesIPv2)."""
    from akida_core.hardware import TARGETS
    from akida_core.mapping.devices_v2 import V2_DEVICES
    return {name.upper(): name for name in [*TARGETS, *V2_DEVICES]}.get(target, target)


def checked_for(model, target) -> tuple[str, str]:
    """What the report says was checked: (the target as given, else the generation's default
    "AKD1000 (Akida 1.0)" or "Akida 2.0" (quantized and converted, no device); "v1" or "v2")."""
    from .compatibility import checked_generation
    from .versions import AkidaVersion
    version = checked_generation(model, target)
    if target is not None:
        return target, version.value
    return ("AKD1000 (Akida 1.0)" if version is AkidaVersion.v1 else "Akida 2.0"), version.value


def _selected_label() -> str:
    """The report label of the selected Akida generation (the default's, "Akida 2.0", when
    CNN2SNN_TARGET_AKIDA_VERSION holds an invalid value)."""
    from .versions import AkidaVersion, get_akida_version
    try:
        return "AKD1000 (Akida 1.0)" if get_akida_version() is AkidaVersion.v1 else "Akida 2.0"
    except ValueError:
        return "Akida 2.0"


def _check_parser():
    parser = argparse.ArgumentParser(
        prog="cnn2snn-check", description="Check a Keras model (.h5 or .keras) against an Akida "
        "device and list every problem with a fix, grouped by level: 'convert' (does not "
        "convert) or 'hardware' (converts; not mappable in hardware only). Exit: 0 no issue, "
        "1 issues found (any level), 2 usage error, 3 unreadable/unsafe file.")
    parser.add_argument("model", nargs="?", help="model file (.h5 legacy Keras 2, or .keras)")
    parser.add_argument("--target", default=None, type=str.upper,
                        choices=_target_names(akida2=True),
                        help="hardware target: AKD1000 (Akida 1.0) or an Akida 2.0 device such as "
                        "SixNodesIPv2 (default: no device; a float model is checked for the Akida "
                        "version of CNN2SNN_TARGET_AKIDA_VERSION, default v2, a quantized model "
                        "for its own generation)")
    parser.add_argument("--format", default="text", choices=("text", "json"))
    parser.add_argument("--weight-bits", type=_bits, help="assumed weight bits (float models)")
    parser.add_argument("--activation-bits", type=_bits,
                        help="assumed activation bits (float models)")
    parser.add_argument("--input-weight-bits", type=_bits,
                        help="assumed input-layer weight bits (default: 8 when --weight-bits "
                        "is given)")
    parser.add_argument("--allow-input-narrowing", action="store_true",
                        help="accept re-quantizing 8-bit input data to a <= 4-bit InputData "
                        "(the Akida model then takes cnn2snn.akida_inputs(model, x))")
    parser.add_argument("--list-patterns", action="store_true",
                        help="print the conversion pattern registry and exit")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _print(text):
    try:
        print(text)
    except BrokenPipeError:  # `cnn2snn-check ... | head` closed the pipe: not an error
        sys.stderr.close()


def _run(debug, body):
    """Runs `body()`; maps our error types to exit codes, printing one line on stderr."""
    from quantizeml.errors import ModelFormatError

    from .errors import ModelFileError
    try:
        return body()
    except (ModelFileError, ModelFormatError) as err:
        if debug:
            raise
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return EXIT_FILE
    except Exception as err:  # a bug: say so, keep the traceback for --debug
        if debug:
            raise
        print(f"internal error: {type(err).__name__}: {err} (rerun with --debug)",
              file=sys.stderr)
        return EXIT_INTERNAL


def check_main(argv=None) -> int:
    """Entry point of `cnn2snn-check`; returns the exit code."""
    args = _check_parser().parse_args(argv)
    quiet_tensorflow(args.debug)
    if args.list_patterns:
        from .patterns import list_patterns
        _print(list_patterns())
        return EXIT_OK
    if args.model is None:
        _check_parser().error("the MODEL argument is required (or use --list-patterns)")

    def body():
        from .compatibility import check_model_compatibility
        from .files import UnsupportedFileLayers, load_model_for_check
        from .match import split_model
        from .report import json_report, text_report
        render = json_report if args.format == "json" else text_report
        try:
            model = load_model_for_check(args.model)
        except UnsupportedFileLayers as err:  # readable, but not rebuildable: report the layers
            _print(render(err.issues, _display_name(args.target) if args.target else
                          _selected_label(), os.path.basename(args.model)))
            return EXIT_ISSUES
        target = None if args.target is None else _display_name(args.target)
        try:
            checked, version = checked_for(model, target)
            issues = check_model_compatibility(model, target, weight_bits=args.weight_bits,
                                               activation_bits=args.activation_bits,
                                               input_weight_bits=args.input_weight_bits,
                                               allow_input_narrowing=args.allow_input_narrowing)
        except ValueError as err:  # an Akida 2.0 device for an Akida 1.0 model, a bad variable
            print(f"error: {err}", file=sys.stderr)
            return EXIT_USAGE
        skipped = [(info.name, reason) for info, reason in split_model(model).skipped]
        _print(render(issues, checked, os.path.basename(args.model), skipped, version))
        return EXIT_ISSUES if issues else EXIT_OK

    return _run(args.debug, body)


def _main_parser():
    parser = argparse.ArgumentParser(prog="cnn2snn", description="Convert quantized Keras "
                                     "models to akida_core models (.fbz).")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    convert = sub.add_parser("convert", help="convert a quantized .keras/.h5 model to .fbz")
    convert.add_argument("-m", "--model", required=True, help="quantized model file")
    convert.add_argument("-o", "--output", help="output .fbz (default: <model>.fbz)")
    convert.add_argument("--target", default=None, type=str.upper, choices=_target_names(),
                         help="Akida 1.0 target (default AKD1000; a model quantized for Akida "
                         "2.0 converts to Akida 2.0 and takes none)")
    convert.add_argument("--force", action="store_true", help="overwrite an existing output")
    convert.add_argument("--allow-input-narrowing", action="store_true",
                         help="accept re-quantizing 8-bit input data to a <= 4-bit InputData")
    convert.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def main(argv=None) -> int:
    """Entry point of `cnn2snn` (sub-command `convert`); returns the exit code."""
    parser = _main_parser()
    args = parser.parse_args(argv)
    quiet_tensorflow(args.debug)
    output = args.output or os.path.splitext(args.model)[0] + ".fbz"
    if not os.path.splitext(output)[1]:
        output += ".fbz"
    if os.path.abspath(output) == os.path.abspath(args.model):
        parser.error(f"the output {output} is the input model")
    if os.path.exists(output) and not args.force:
        parser.error(f"{output} already exists; pass --force to overwrite it")

    def body():
        from .conversion import convert
        from .errors import ConversionError
        from .files import load_model_file
        from .match import split_model
        model = load_model_file(args.model)
        try:
            convert(model, output, target=args.target,
                    allow_input_narrowing=args.allow_input_narrowing)
        except ConversionError as err:
            print(str(err), file=sys.stderr)
            return EXIT_ISSUES
        from .v2 import is_akida2_model
        if not is_akida2_model(model):
            for info, reason in split_model(model).skipped:
                print(f"skipped {info.name}: {reason}")
        print(f"Model successfully converted and saved as {output}.")
        return EXIT_OK

    return _run(args.debug, body)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

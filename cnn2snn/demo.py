"""`cnn2snn-demo`: the whole toolchain end to end on scikit-learn's bundled digits.

The generation is the selected Akida version (`cnn2snn.get_akida_version()`, default Akida 2.0 as
in MetaTF: `demo_v2.py`); `--akida-version v1` (or CNN2SNN_TARGET_AKIDA_VERSION=v1) runs the
Akida 1.0 (AKD1000) flow of this module, and the first line printed says which one runs.

The Akida 1.0 flow trains a small Keras CNN, quantizes it (4-bit weights and activations, 8-bit
input layer by default), fine-tunes it with quantization-aware training, checks it against AKD1000,
converts it, proves the akida_core model computes the same outputs as the quantized Keras model bit
for bit, maps it on a virtual AKD1000, saves the `.fbz`, reloads it and evaluates it. Ends with a
table.

Exit codes: 0 success; 1 the model is not AKD1000-compatible (the issues are printed) or the
akida_core outputs differ from the quantized Keras outputs (a bug: please report it); 2 usage
error; 3 the output file cannot be written; 4 internal error (rerun with --debug).

Example:
    $ cnn2snn-demo                                   # Akida 2.0 (the default)
    $ cnn2snn-demo --akida-version v1 --epochs 10 --qat-epochs 3 --seed 0 -o digits.fbz
    >>> from cnn2snn.demo import run_demo
    >>> result = run_demo(epochs=1, qat_epochs=1, train_samples=256, verbose=0)
    >>> result.identical_fraction
    1.0
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time

import numpy as np

from .console import progress_verbose, quiet_tensorflow
from .demo_data import (IMAGE_SIZE, Steps, build_float_model, compile_model,  # noqa: F401
                        keras_accuracy, load_digits_images)

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_FILE, EXIT_INTERNAL = 0, 1, 2, 3, 4


@dataclasses.dataclass(frozen=True)
class DemoResult:
    """Every figure the demo measures (accuracies in [0, 1], sizes in bytes, times in seconds)."""

    seed: int
    train_samples: int
    test_samples: int
    weight_bits: int
    activation_bits: int
    input_weight_bits: int
    qat_epochs: int
    float_accuracy: float
    quantized_accuracy: float
    akida_accuracy: float
    identical_samples: int
    parameters: int
    float_bytes: int
    akida_weight_bytes: int
    device: str
    sequences: int
    hardware_sequences: int
    nps: int
    device_nps: int
    program_bytes: int
    fbz_path: str
    fbz_bytes: int
    reloaded_identical: bool
    seconds: float
    issues: tuple = ()

    @property
    def identical_fraction(self) -> float:
        """Share of test samples whose akida_core outputs equal the quantized Keras outputs."""
        return self.identical_samples / self.test_samples


def keras_integer_outputs(qmodel, x):
    """The integers the Akida model's `forward` must return, computed by the quantized Keras model.

    The output of the layer before the Dequantizer, minus `sum_size·bias_int` when the last block
    has no activation (docs/quantization.md, export contract: Akida's potential excludes the bias).
    """
    import keras
    from quantizeml.export import export_blocks
    last = export_blocks(qmodel)["blocks"][-1]
    values = np.asarray(keras.Model(qmodel.input, qmodel.layers[-2].output)(x, training=False))
    values = values.astype(np.int64)
    if last["act_bits"] is None:
        values = values + last["threshold"].astype(np.int64)
    return values


def _identical_per_sample(*pairs):
    same = None
    for keras_values, akida_values in pairs:
        keras_values = np.asarray(keras_values).reshape(len(keras_values), -1)
        akida_values = np.asarray(akida_values).reshape(len(akida_values), -1)
        equal = np.all(keras_values == akida_values, axis=1)
        same = equal if same is None else same & equal
    return same


def _weight_bytes(akida_model):
    bits = 0
    for layer in akida_model.layers:
        weights_bits = getattr(layer.parameters, "weights_bits", None)
        if weights_bits is None:
            continue
        for name in ("weights", "weights_pw"):
            if name in layer.variables.names:
                bits += layer.variables[name].size * weights_bits
    return -(-bits // 8)


def _mapping_figures(akida_model, device):
    from akida_core.devices import NPType
    from akida_core.mapping import BackendType
    sequences = akida_model.sequences
    hardware = [s for s in sequences if s.backend is BackendType.Hardware]
    nps = {(m.ident, s.name) for s in hardware for maps in s.nps.values() for m in maps
           if m.type is not NPType.HRC}
    device_nps = device.table.num_nps
    return {"sequences": len(sequences), "hardware_sequences": len(hardware), "nps": len(nps),
            "device_nps": device_nps, "program_bytes": sum(s.program_size for s in hardware)}


def run_demo(epochs=10, qat_epochs=3, weight_bits=4, activation_bits=4, input_weight_bits=8,
             seed=0, output=None, train_samples=None, batch_size=32, verbose=1, print_fn=print):
    """Runs the end-to-end Akida 1.0 (AKD1000) demo and returns its figures.

    It runs under ``set_akida_version(AkidaVersion.v1)`` with ``Akida1QuantizationParams``,
    whatever Akida version is selected outside.

    Args:
        epochs: float training epochs (0: keep the random initial weights).
        qat_epochs: quantization-aware training epochs (0: post-training quantization only).
        weight_bits: weight bits of every layer but the first (1, 2, 4; AKD1000 takes 8 only on
            the input layer, so 8 makes the compatibility check fail on purpose).
        activation_bits: activation bits (1, 2, 4).
        input_weight_bits: weight bits of the input convolution (1, 2, 4, 8).
        seed: seeds the split, the weights and the training: same seed, same figures.
        output: where to save the `.fbz` (None: a new temporary directory).
        train_samples: train on the first N training images only (None: all 1,347).
        batch_size: training batch size.
        verbose: 0 silent Keras, 1 progress bars, 2 one plain line per epoch and for
            calibration (what `cnn2snn-demo` uses when its output is not a terminal).
        print_fn: where step headers go.

    Returns:
        A DemoResult. When AKD1000 reports issues, `issues` lists them and the figures after the
        check are zeros.

    Raises:
        ModelFormatError (akida_core) or OSError: the `.fbz` cannot be written or read back.
    """
    start = time.perf_counter()
    from .versions import AkidaVersion, set_akida_version
    with set_akida_version(AkidaVersion.v1):
        return _run_demo_v1(start, epochs, qat_epochs, weight_bits, activation_bits,
                            input_weight_bits, seed, output, train_samples, batch_size, verbose,
                            print_fn)


def _run_demo_v1(start, epochs, qat_epochs, weight_bits, activation_bits, input_weight_bits, seed,
                 output, train_samples, batch_size, verbose, print_fn):
    import keras
    import tensorflow as tf

    import akida_core
    from quantizeml import Akida1QuantizationParams
    from quantizeml.models import quantize

    from . import akida_inputs, check_model_compatibility, convert

    steps = Steps(8, print_fn)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()

    steps("Loading scikit-learn's digits (8×8 upsampled to 16×16, uint8 values)")
    x_train, x_test, y_train, y_test = load_digits_images(seed, train_samples)
    print_fn(f"      {len(x_train)} training images, {len(x_test)} test images")

    steps(f"Training the float Keras model ({epochs} epochs)")
    model = build_float_model()
    compile_model(model, 3e-3)
    if epochs:
        model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=verbose)
    float_accuracy = keras_accuracy(model, x_test, y_test)

    steps(f"Quantizing: {weight_bits}-bit weights, {activation_bits}-bit activations, "
          f"{input_weight_bits}-bit input layer; calibrating on the training images")
    qparams = Akida1QuantizationParams(weight_bits=weight_bits, activation_bits=activation_bits,
                                       input_weight_bits=input_weight_bits)
    qmodel = quantize(model, qparams=qparams, samples=x_train, verbose=verbose)
    print_fn(f"      post-training accuracy {keras_accuracy(qmodel, x_test, y_test):.2%}")

    steps(f"Quantization-aware training ({qat_epochs} epochs)")
    compile_model(qmodel, 5e-4)
    if qat_epochs:
        qmodel.fit(x_train, y_train, epochs=qat_epochs, batch_size=batch_size, verbose=verbose)
    quantized_accuracy = keras_accuracy(qmodel, x_test, y_test)

    steps("Checking compatibility with AKD1000")
    issues = tuple(check_model_compatibility(qmodel, "AKD1000"))
    figures = dict(seed=seed, train_samples=len(x_train), test_samples=len(x_test),
                   weight_bits=weight_bits, activation_bits=activation_bits,
                   input_weight_bits=input_weight_bits, qat_epochs=qat_epochs,
                   float_accuracy=float_accuracy, quantized_accuracy=quantized_accuracy,
                   parameters=int(model.count_params()),
                   float_bytes=int(sum(np.asarray(w).nbytes for w in model.weights)))
    if issues:
        for issue in issues:
            print_fn(f"      {issue}")
        steps.done()
        zeros = {f.name: 0 for f in dataclasses.fields(DemoResult) if f.name not in figures}
        zeros.update(device="AKD1000", fbz_path="", reloaded_identical=False,
                     seconds=time.perf_counter() - start, issues=issues)
        return DemoResult(**{**zeros, **figures})
    print_fn("      no issue: every layer fits AKD1000")

    steps("Converting to akida_core and comparing with the quantized Keras model")
    akida_model = convert(qmodel)
    inputs = akida_inputs(qmodel, x_test)
    same = _identical_per_sample(
        (keras_integer_outputs(qmodel, x_test), akida_model.forward(inputs)),
        (np.asarray(qmodel(x_test, training=False)), akida_model.predict(inputs)))
    print_fn(f"      {int(same.sum())}/{len(same)} test samples bit-identical "
             "(forward integers and predict floats)")

    steps("Mapping on a virtual AKD1000 (hw_only=True)")
    device = akida_core.AKD1000()
    akida_model.map(device, hw_only=True)
    mapping = _mapping_figures(akida_model, device)
    print_fn(f"      {mapping['hardware_sequences']} hardware sequence(s), {mapping['nps']} NPs, "
             f"program {mapping['program_bytes']:,} bytes")

    steps("Saving the .fbz, reloading it and evaluating")
    path = output or os.path.join(tempfile.mkdtemp(prefix="cnn2snn_demo_"), "digits_cnn.fbz")
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    akida_model.save(path)
    reloaded = akida_core.Model(path)
    reloaded_predictions = reloaded.predict(inputs)
    reloaded_identical = bool(np.array_equal(reloaded_predictions, akida_model.predict(inputs))
                              and len(reloaded.sequences) == mapping["sequences"])
    akida_accuracy = float(np.mean(
        np.argmax(reloaded_predictions.reshape(len(inputs), -1), axis=-1) == y_test))
    steps.done()
    return DemoResult(**figures, akida_accuracy=akida_accuracy, identical_samples=int(same.sum()),
                      akida_weight_bytes=_weight_bytes(akida_model), device=device.desc, **mapping,
                      fbz_path=os.path.abspath(path), fbz_bytes=os.path.getsize(path),
                      reloaded_identical=reloaded_identical,
                      seconds=time.perf_counter() - start)


def format_table(result: DemoResult) -> str:
    """The demo's final table as text."""
    bits = (f"{result.weight_bits}-bit weights, {result.activation_bits}-bit activations, "
            f"{result.input_weight_bits}-bit input layer, {result.qat_epochs} QAT epochs")
    rows = [("float Keras accuracy", f"{result.float_accuracy:.2%}"),
            ("quantized Keras accuracy", f"{result.quantized_accuracy:.2%}  ({bits})")]
    if result.issues:
        rows.append(("AKD1000 issues", f"{len(result.issues)} (see above): not converted"))
    else:
        rows += [
            ("akida_core accuracy", f"{result.akida_accuracy:.2%}  (reloaded .fbz)"),
            ("akida ≡ quantized Keras", f"{result.identical_fraction:.2%}  "
             f"({result.identical_samples}/{result.test_samples} samples bit-identical)"),
            ("parameters", f"{result.parameters:,}  (float32 {result.float_bytes:,} bytes; "
             f"Akida weights {result.akida_weight_bytes:,} bytes)"),
            ("AKD1000 mapping", f"{result.hardware_sequences} hardware / {result.sequences} "
             f"sequence(s), {result.nps} of {result.device_nps} NPs"),
            ("program size", f"{result.program_bytes:,} bytes"),
            ("saved model", f"{result.fbz_path}  ({result.fbz_bytes:,} bytes, reloaded "
             f"{'identical' if result.reloaded_identical else 'DIFFERENT'})"),
        ]
    rows.append(("total time", f"{result.seconds:.1f} s  (seed {result.seed}, "
                 f"{result.train_samples} train / {result.test_samples} test images)"))
    width = max(len(name) for name, _ in rows)
    rule = "-" * (width + 2 + max(len(value) for _, value in rows))
    lines = ["", "cnn2snn demo: digits CNN on AKD1000", rule]
    lines += [f"{name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines + [rule])


def _non_negative(value):
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return number


def _positive(value):
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be 1 or more")
    return number


#: The first line `cnn2snn-demo` prints: which generation runs and how to run the other one.
GENERATION_LINES = {
    "v2": "cnn2snn-demo: Akida 2.0 (the default generation, as in MetaTF; --akida-version v1 runs "
          "the Akida 1.0 / AKD1000 flow)",
    "v1": "cnn2snn-demo: Akida 1.0 (AKD1000), selected by --akida-version v1 or "
          "CNN2SNN_TARGET_AKIDA_VERSION=v1 (the default is Akida 2.0)",
}


def build_parser():
    """The argparse parser of `cnn2snn-demo`."""
    parser = argparse.ArgumentParser(
        prog="cnn2snn-demo", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a small CNN on scikit-learn's digits, quantize it, fine-tune it (QAT),\n"
        "check and convert it, prove the Akida model is bit-exact, map it, save the .fbz,\n"
        "reload it and evaluate it, for the selected Akida generation (default Akida 2.0,\n"
        "as in MetaTF; --akida-version v1 for AKD1000). About a minute on 2 cores.",
        epilog="Exit codes: 0 success, 1 AKD1000 issues or outputs differ, 2 usage error,\n"
        "3 output file not writable, 4 internal error.")
    parser.add_argument("--version", action="version", version=f"cnn2snn-demo {_version()}")
    parser.add_argument("--epochs", type=_non_negative, default=10,
                        help="float training epochs (default 10)")
    parser.add_argument("--qat-epochs", type=_non_negative, default=None,
                        help="quantization-aware training epochs (default 3 on v1, 0 on v2)")
    parser.add_argument("--akida-version", choices=("v1", "v2"), default=None,
                        help="the Akida generation: v2 (Akida 2.0: 8-bit quantizeml scheme, "
                        "post-training only by default) or v1 (AKD1000: 4-bit, QAT); default: "
                        "CNN2SNN_TARGET_AKIDA_VERSION, else v2 as in MetaTF")
    parser.add_argument("-w", "--weight-bits", type=int, choices=(1, 2, 4, 8), default=None,
                        help="weight bits after the input layer (default 4 on v1, 8 on v2; "
                        "AKD1000 rejects 8)")
    parser.add_argument("-a", "--activation-bits", type=int, choices=(1, 2, 4, 8), default=None,
                        help="activation bits (default 4 on v1, 8 on v2; v1 takes 1, 2, 4)")
    parser.add_argument("-i", "--input-weight-bits", type=int, choices=(4, 8), default=8,
                        help="weight bits of the input convolution (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("-o", "--output", help="path of the saved .fbz, overwritten if it exists "
                        "(default: a new temporary directory)")
    parser.add_argument("--train-samples", type=_positive,
                        help="train on the first N training images only (default: all 1,347)")
    parser.add_argument("--batch-size", type=_positive, default=32)
    parser.add_argument("-q", "--quiet", action="store_true", help="no Keras progress bars")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return parser


def _version():
    from importlib.metadata import PackageNotFoundError, version
    parts = []
    for package in ("open-akida-toolchain", "tensorflow", "keras", "numpy"):
        try:
            parts.append(f"{package} {version(package)}")
        except PackageNotFoundError:  # e.g. running from a source tree that was not installed
            parts.append(f"{package} (not installed)")
    return ", ".join(parts) + f", Python {sys.version.split()[0]}"


def _output_problem(path):
    """Why `path` cannot receive the .fbz (checked before training, not after), or None."""
    if path is None:
        return None
    if os.path.isdir(path):
        return "is a directory; give a file path such as digits.fbz"
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"{parent} is a file, not a directory"
    if not os.access(parent, os.W_OK):
        return f"directory {parent} is not writable"
    return None


def main(argv=None) -> int:
    """Entry point of `cnn2snn-demo`; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.akida_version is None:
        from .versions import get_akida_version
        try:
            args.akida_version = get_akida_version().value
        except ValueError as err:
            parser.error(str(err))
    if args.akida_version == "v1" and args.activation_bits == 8:
        parser.error("argument -a/--activation-bits: 8 needs --akida-version v2 (Akida 1.0 "
                     "activations are 1, 2 or 4 bits)")
    print(GENERATION_LINES[args.akida_version], flush=True)
    problem = _output_problem(args.output)
    if problem:
        print(f"cnn2snn-demo: error: --output {args.output}: {problem}", file=sys.stderr)
        return EXIT_USAGE if os.path.isdir(args.output) else EXIT_FILE
    quiet_tensorflow(args.debug)
    try:
        if args.akida_version == "v2":
            from .demo_v2 import format_table_v2, run_demo_v2
            result = run_demo_v2(epochs=args.epochs, qat_epochs=args.qat_epochs or 0,
                                 weight_bits=args.weight_bits or 8,
                                 activation_bits=args.activation_bits or 8, seed=args.seed,
                                 output=args.output, train_samples=args.train_samples,
                                 batch_size=args.batch_size, verbose=progress_verbose(args.quiet))
            print(format_table_v2(result))
            ok = result.identical_samples == result.test_samples and result.reloaded_identical
            return EXIT_OK if ok else EXIT_MISMATCH
        qat_epochs = 3 if args.qat_epochs is None else args.qat_epochs
        result = run_demo(epochs=args.epochs, qat_epochs=qat_epochs,
                          weight_bits=args.weight_bits or 4,
                          activation_bits=args.activation_bits or 4,
                          input_weight_bits=args.input_weight_bits, seed=args.seed,
                          output=args.output, train_samples=args.train_samples,
                          batch_size=args.batch_size,
                          verbose=progress_verbose(args.quiet))
    except OSError as err:
        if args.debug:
            raise
        print(f"cnn2snn-demo: error: cannot write {args.output}: {err}", file=sys.stderr)
        return EXIT_FILE
    except Exception as err:  # a bug: one line, the traceback with --debug
        if args.debug:
            raise
        print(f"cnn2snn-demo: internal error: {type(err).__name__}: {err} (rerun with --debug)",
              file=sys.stderr)
        return EXIT_INTERNAL
    print(format_table(result))
    if result.issues or result.identical_samples != result.test_samples or \
            not result.reloaded_identical:
        return EXIT_MISMATCH
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

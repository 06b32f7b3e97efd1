"""The Akida 2.0 path of `cnn2snn-demo` (`--akida-version v2`): the digits CNN quantized with
quantizeml's Akida 2.0 scheme (8-bit weights and activations, per-axis by default), converted to
an Akida 2.0 graph model, compared bit for bit, mapped on a virtual Akida 2.0 device
(SixNodesIPv2), saved, reloaded and evaluated.

Example:
    >>> from cnn2snn.demo_v2 import run_demo_v2
    >>> result = run_demo_v2(epochs=1, train_samples=256, verbose=0)
    >>> result.identical_samples == result.test_samples
    True
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
import time

import numpy as np


@dataclasses.dataclass(frozen=True)
class DemoV2Result:
    """Figures of the Akida 2.0 demo (accuracies in [0, 1], sizes in bytes, times in seconds)."""

    seed: int
    train_samples: int
    test_samples: int
    weight_bits: int
    activation_bits: int
    qat_epochs: int
    float_accuracy: float
    ptq_accuracy: float
    quantized_accuracy: float
    akida_accuracy: float
    identical_samples: int
    layers: tuple
    mapping: str
    fbz_path: str
    fbz_bytes: int
    reloaded_identical: bool
    quantize_seconds: float
    convert_seconds: float
    seconds: float


def run_demo_v2(epochs=10, qat_epochs=0, weight_bits=8, activation_bits=8, seed=0, output=None,
                train_samples=None, batch_size=32, verbose=1, print_fn=print):
    """Run the Akida 2.0 demo; returns its figures (see ``cnn2snn.demo.run_demo`` for the args;
    post-training quantization only by default: 8 bits stay close to float without QAT). It runs
    under ``set_akida_version(AkidaVersion.v2)`` whatever Akida version is selected outside."""
    from .versions import AkidaVersion, set_akida_version
    with set_akida_version(AkidaVersion.v2):
        return _run_demo_v2(epochs, qat_epochs, weight_bits, activation_bits, seed, output,
                            train_samples, batch_size, verbose, print_fn)


def _run_demo_v2(epochs, qat_epochs, weight_bits, activation_bits, seed, output, train_samples,
                 batch_size, verbose, print_fn):
    start = time.perf_counter()
    import keras
    import tensorflow as tf

    import akida_core
    from quantizeml.models import QuantizationParams, quantize
    from quantizeml.v2 import strip_float_tail

    from . import convert
    from .demo_data import Steps, build_float_model, compile_model, keras_accuracy, \
        load_digits_images

    steps = Steps(5, print_fn)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    steps("Loading scikit-learn's digits (8×8 upsampled to 16×16, uint8 values)")
    x_train, x_test, y_train, y_test = load_digits_images(seed, train_samples)
    steps(f"Training the float Keras model ({epochs} epochs)")
    model = build_float_model()
    compile_model(model, 3e-3)
    if epochs:
        model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=verbose)
    float_accuracy = keras_accuracy(model, x_test, y_test)

    steps(f"Quantizing for Akida 2.0: {weight_bits}-bit weights, {activation_bits}-bit "
          "activations (per-axis); calibrating on the training images")
    began = time.perf_counter()
    qmodel = quantize(model, qparams=QuantizationParams(weight_bits=weight_bits,
                                                         activation_bits=activation_bits),
                      samples=x_train)
    quantize_seconds = time.perf_counter() - began
    ptq_accuracy = keras_accuracy(qmodel, x_test, y_test)
    print_fn(f"      post-training accuracy {ptq_accuracy:.2%}")
    if qat_epochs:
        compile_model(qmodel, 5e-4)
        qmodel.fit(x_train, y_train, epochs=qat_epochs, batch_size=batch_size, verbose=verbose)
    quantized_accuracy = keras_accuracy(qmodel, x_test, y_test)

    steps("Converting to an Akida 2.0 akida_core model, comparing, mapping on SixNodesIPv2")
    began = time.perf_counter()
    akida_model = convert(qmodel)
    convert_seconds = time.perf_counter() - began
    inputs = x_test.astype(np.uint8)
    keras_out = np.asarray(strip_float_tail(qmodel)(x_test, training=False))  # what Akida runs
    akida_out = akida_model.predict(inputs).reshape(keras_out.shape)
    same = np.all(keras_out == akida_out, axis=1)
    print_fn(f"      {int(same.sum())}/{len(same)} test samples bit-identical")
    device = akida_core.SixNodesIPv2()
    akida_model.map(device)  # hardware where it fits, software sequences elsewhere
    hardware = [s for s in akida_model.sequences if s.backend.name == "Hardware"]
    mapping = (f"{len(hardware)} hardware / {len(akida_model.sequences)} sequence(s) on "
               f"SixNodesIPv2 ({getattr(device, 'desc', 'virtual')})")
    print_fn(f"      mapped: {mapping}")

    steps("Saving the .fbz, reloading it and evaluating")
    path = output or os.path.join(tempfile.mkdtemp(prefix="cnn2snn_demo_"), "digits_cnn_v2.fbz")
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    akida_model.save(path)
    reloaded = akida_core.Model(path).predict(inputs).reshape(keras_out.shape)
    akida_accuracy = float(np.mean(np.argmax(reloaded, axis=-1) == y_test))
    steps.done()
    return DemoV2Result(
        seed=seed, train_samples=len(x_train), test_samples=len(x_test), weight_bits=weight_bits,
        activation_bits=activation_bits, qat_epochs=qat_epochs, float_accuracy=float_accuracy,
        ptq_accuracy=ptq_accuracy, quantized_accuracy=quantized_accuracy,
        akida_accuracy=akida_accuracy, identical_samples=int(same.sum()),
        layers=tuple(f"{layer.name}:{layer.layer_type.name}" for layer in akida_model.layers),
        mapping=mapping,
        fbz_path=os.path.abspath(path), fbz_bytes=os.path.getsize(path),
        reloaded_identical=bool(np.array_equal(reloaded, akida_out)),
        quantize_seconds=quantize_seconds, convert_seconds=convert_seconds,
        seconds=time.perf_counter() - start)


def format_table_v2(result: DemoV2Result) -> str:
    """The Akida 2.0 demo's final table as text."""
    bits = (f"{result.weight_bits}-bit weights, {result.activation_bits}-bit activations, "
            f"{result.qat_epochs} QAT epochs")
    rows = [("float Keras accuracy", f"{result.float_accuracy:.2%}"),
            ("quantized Keras accuracy", f"{result.quantized_accuracy:.2%}  ({bits}; "
             f"post-training {result.ptq_accuracy:.2%})"),
            ("akida_core accuracy", f"{result.akida_accuracy:.2%}  (reloaded .fbz)"),
            ("akida ≡ quantized Keras", f"{result.identical_samples}/{result.test_samples} "
             "samples bit-identical"),
            ("Akida 2.0 layers", ", ".join(item.split(":")[1] for item in result.layers)),
            ("Akida 2.0 mapping", result.mapping),
            ("quantize / convert", f"{result.quantize_seconds:.1f} s / "
             f"{result.convert_seconds:.2f} s"),
            ("saved model", f"{result.fbz_path}  ({result.fbz_bytes:,} bytes, reloaded "
             f"{'identical' if result.reloaded_identical else 'DIFFERENT'})"),
            ("total time", f"{result.seconds:.1f} s  (seed {result.seed})")]
    width = max(len(name) for name, _ in rows)
    rule = "-" * (width + 2 + max(len(value) for _, value in rows))
    lines = ["", "cnn2snn demo: digits CNN on Akida 2.0", rule]
    return "\n".join(lines + [f"{name:<{width}}  {value}" for name, value in rows] + [rule])

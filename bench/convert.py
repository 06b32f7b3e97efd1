"""Conversion benchmark: quantize + convert time of the three benchmark architectures (as Keras
models) and the agreement of akida_core with the quantized Keras model (must be 100%).

The architectures are those of bench/models.py (built there directly in akida_core), written here
as float Keras models with BatchNormalization and bounded ReLUs, random weights, quantized with
`quantizeml.models.quantize` for Akida 1.0 (`Akida1QuantizationParams`: 4-bit weights and
activations, 8-bit input layer), checked against AKD1000 and converted with
`cnn2snn.convert`.

Run: python bench/convert.py [--samples N] [--calibration N]
"""
import argparse
import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers as L  # noqa: E402

import cnn2snn  # noqa: E402
from quantizeml import Akida1QuantizationParams  # noqa: E402
from quantizeml.models import quantize  # noqa: E402
from quantizeml.transforms import QuantizationWarning  # noqa: E402


def _block(conv, pool=None):
    return [conv, L.BatchNormalization()] + ([pool] if pool is not None else []) + [L.ReLU(6.0)]


def mnist_cnn():
    """28x28x1: Conv 3x3 32 (max 2) > Conv 3x3 64 (max 2) > Conv 3x3 64 > Dense 10."""
    return keras.Sequential([
        keras.Input((28, 28, 1)), L.Rescaling(1 / 255.0),
        *_block(L.Conv2D(32, 3, padding="same"), L.MaxPooling2D(padding="same")),
        *_block(L.Conv2D(64, 3, padding="same"), L.MaxPooling2D(padding="same")),
        *_block(L.Conv2D(64, 3, padding="same")), L.Flatten(), L.Dense(10)], name="mnist_cnn")


def ds_cnn_kws():
    """49x10x1: Conv 5x5/2 64 > 4 x SeparableConv 3x3 64 (last with GAP) > Dense 33."""
    layers = [keras.Input((49, 10, 1)), *_block(L.Conv2D(64, 5, strides=2, padding="same"))]
    for i in range(4):
        pool = L.GlobalAveragePooling2D() if i == 3 else None
        layers += _block(L.SeparableConv2D(64, 3, padding="same"), pool)
    return keras.Sequential(layers + [L.Dense(33)], name="ds_cnn_kws")


def akidanet_05(input_size=128, classes=10):
    """AkidaNet-like MobileNet, alpha 0.5: 4 convs, 10 separable convs (last with GAP), Dense."""
    layers = [keras.Input((input_size, input_size, 3)), L.Rescaling(1 / 255.0),
              *_block(L.Conv2D(16, 3, strides=2, padding="same"))]
    for filters, stride in [(32, 1), (64, 2), (64, 1)]:
        layers += _block(L.Conv2D(filters, 3, strides=stride, padding="same"))
    separables = [(128, 2), (128, 1), (256, 2), (256, 1), (256, 1), (256, 1), (256, 1), (256, 1),
                  (512, 2), (512, 1)]
    for i, (filters, stride) in enumerate(separables):
        pool = L.GlobalAveragePooling2D() if i == len(separables) - 1 else None
        layers += _block(L.SeparableConv2D(filters, 3, strides=stride, padding="same"), pool)
    return keras.Sequential(layers + [L.Dense(classes)], name="akidanet_05")


MODELS = {"mnist_cnn": mnist_cnn, "ds_cnn_kws": ds_cnn_kws, "akidanet_05": akidanet_05}


def randomize(model, seed=0, he=False):
    """Random float weights; BN statistics that keep every channel alive.

    Kernels are normal with variance 1/fan_in (the fan-in of every axis but the last), or with
    ``he=True`` He-normal, 2/fan_in, where a DepthwiseConv2D's fan-in is its window only: what a
    deep ReLU6 stack needs for its activations not to vanish (bench/akida2.py)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        window = he and isinstance(layer, keras.layers.DepthwiseConv2D)
        for w in layer.weights:
            if "moving_variance" in w.path or "gamma" in w.path:
                w.assign(rng.uniform(0.5, 1.5, w.shape))
            elif "moving_mean" in w.path or "beta" in w.path or "bias" in w.path:
                w.assign(rng.normal(0.0, 0.1, w.shape))
            else:
                fan_in = int(np.prod(w.shape[:2] if window else w.shape[:-1])) or 1
                w.assign(rng.normal(0.0, np.sqrt((2.0 if he else 1.0) / fan_in), w.shape))
    return model


def integer_outputs(qmodel, x):
    """The quantized Keras model's integers before its Dequantizer (Akida forward domain)."""
    head = keras.Model(qmodel.inputs[0], qmodel.layers[-2].output)
    return np.asarray(head.predict(x, verbose=0, batch_size=32), np.float64)


def run(name, samples, calibration, seed=0):
    """Quantizes, converts and compares one model; returns a dict of figures."""
    model = randomize(MODELS[name](), seed)
    shape = tuple(model.inputs[0].shape[1:])
    rng = np.random.default_rng(seed + 1)
    calib = rng.integers(0, 256, (calibration, *shape)).astype(np.float32)
    issues = cnn2snn.check_model_compatibility(model, "AKD1000", weight_bits=4, activation_bits=4,
                                               input_weight_bits=8)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        # quantize() coarsens the weight grid of blocks whose exact threshold/act_step would
        # not fit the AKD1000 registers (a large global average pooling); count those layers.
        warnings.simplefilter("always", QuantizationWarning)
        qmodel = quantize(model, qparams=Akida1QuantizationParams(), samples=calib, verbose=0)
    fitted = [str(w.message).split("'")[1] for w in caught
              if issubclass(w.category, QuantizationWarning) and "coarser" in str(w.message)]
    quantize_s = time.perf_counter() - start
    start = time.perf_counter()
    akida_model = cnn2snn.convert(qmodel)
    convert_s = time.perf_counter() - start
    x = rng.integers(0, 256, (samples, *shape)).astype(np.float32)
    x_int = cnn2snn.akida_inputs(qmodel, x)
    keras_int = integer_outputs(qmodel, x)
    start = time.perf_counter()
    forward = akida_model.forward(x_int).astype(np.float64).reshape(keras_int.shape)
    forward_s = time.perf_counter() - start
    last = akida_model.layers[-1]
    if not last.params.activation:
        keras_int = keras_int + last.variables["threshold"].astype(np.float64)
        keras_out = np.asarray(qmodel.predict(x, verbose=0, batch_size=32))
        predict = akida_model.predict(x_int).reshape(keras_out.shape)
        predict_equal = float(np.mean(predict == keras_out))
    else:
        predict_equal = float("nan")
    return {"issues": len(issues), "fitted": fitted, "quantize_s": quantize_s,
            "convert_s": convert_s,
            "forward_s": forward_s, "equal": float(np.mean(forward == keras_int)),
            "predict_equal": predict_equal, "values": keras_int.size,
            "classes": float(np.mean(forward.reshape(samples, -1).argmax(1)
                                     == keras_int.reshape(samples, -1).argmax(1)))}


def main(argv=None):
    """Runs the benchmark and prints one row per model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=64, help="inputs compared per model")
    parser.add_argument("--calibration", type=int, default=64, help="calibration samples")
    args = parser.parse_args(argv)
    print(f"{'model':<13}{'issues':>10}{'quantize s':>11}{'convert s':>10}{'forward s':>10}"
          f"{'values':>9}{'forward =':>10}{'predict =':>10}{'class =':>9}")
    all_equal = True
    for name in MODELS:
        r = run(name, args.samples, args.calibration)
        all_equal &= r["equal"] == 1.0 and (r["predict_equal"] == 1.0
                                            or np.isnan(r["predict_equal"]))
        print(f"{name:<13}{r['issues']:>10}{r['quantize_s']:>11.2f}{r['convert_s']:>10.3f}"
              f"{r['forward_s']:>10.3f}{r['values']:>9}{r['equal']:>10.2%}"
              f"{r['predict_equal']:>10.2%}{r['classes']:>9.2%}")
        if r["fitted"]:
            print(f"  note: weight grid coarsened to fit the registers in {', '.join(r['fitted'])}")
    print(f"akida_core vs quantized Keras agreement: {'100%' if all_equal else 'NOT 100%'}")
    return 0 if all_equal else 1


if __name__ == "__main__":
    sys.exit(main())

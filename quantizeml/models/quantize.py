"""quantize(), calibrate() and dump_config(): float Keras model -> quantized Keras model."""
from __future__ import annotations

import os
import warnings

import keras
import numpy as np

from .. import layers as qlayers
from ..calibrate import iterate_batches, observe, random_samples, search_range
from ..errors import QuantizationConfigError, QuantizationError
from ..generation import scheme_of, to_akida1
from ..ir import (ModelSpec, build_float_model, call_with_zero_init, spec_from_model, suggest,
                  validate_weight_shapes)
from ..layers.neural import NEURAL_LAYERS
from ..params import QuantizationParams
from ..registers import set_block_ranges
from ..transforms import QuantizationWarning, sanitize
from ..v2 import QuantizationParams as Akida2Params
from ..v2 import quantize as quantize_v2

TWINS = {"Conv2D": qlayers.QuantizedConv2D, "SeparableConv2D": qlayers.QuantizedSeparableConv2D,
         "DepthwiseConv2D": qlayers.QuantizedDepthwiseConv2D, "Dense": qlayers.QuantizedDense,
         "ReLU": qlayers.QuantizedReLU, "MaxPooling2D": qlayers.QuantizedMaxPool2D,
         "GlobalAveragePooling2D": qlayers.QuantizedGlobalAveragePooling2D,
         "Flatten": qlayers.QuantizedFlatten, "Reshape": qlayers.QuantizedReshape}
QUANTIZED_CLASSES = tuple(TWINS.values()) + (qlayers.InputQuantizer, qlayers.Dequantizer,
                                             qlayers.QuantizedRescaling)


def to_spec(model) -> ModelSpec:
    """Read a Keras 3 / tf-keras model, a model file path or a ModelSpec into a ModelSpec.

    Raises:
        QuantizationConfigError: the model is already quantized.
    """
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        from .io import load_model, load_spec
        if not os.fsdecode(os.fspath(model)).lower().endswith(".keras"):
            return load_spec(model)
        model = load_model(model)  # then checked like an in-memory model
    if isinstance(model, keras.Model) and any(isinstance(lay, QUANTIZED_CLASSES)
                                              for lay in model.layers):
        raise QuantizationConfigError(
            f"Model '{model.name}' is already quantized (it holds quantizeml layers); quantize "
            "the float model instead, or use calibrate() to refresh its ranges.")
    return spec_from_model(model)


def _check_q_config(q_config, names):
    if q_config is None:
        return {}
    if not isinstance(q_config, dict):
        raise QuantizationConfigError(f"q_config must be a dict layer name -> QuantizationParams,"
                                      f" got {type(q_config).__name__}.")
    for name, params in q_config.items():
        if name not in names:
            raise QuantizationConfigError(
                f"q_config names layer {name!r}, which is not in the model.{suggest(name, names)}")
        if not isinstance(params, QuantizationParams):
            raise QuantizationConfigError(
                f"q_config[{name!r}] is {type(params).__name__}; expected QuantizationParams "
                "(e.g. QuantizationParams(weight_bits=2)).")
    return q_config


def _plan(spec: ModelSpec, q_config: dict, qparams: QuantizationParams) -> dict:
    """Per-layer quantization arguments of the quantized twins."""
    plan, block_params = {}, qparams
    neural = [lay for lay in spec.layers if lay.class_name in TWINS and
              TWINS[lay.class_name] in NEURAL_LAYERS]
    relus = [lay.name for lay in spec.layers if lay.class_name == "ReLU"]
    first = neural[0]
    channels = spec.input_shape[-1] if len(spec.input_shape) == 3 else None
    input_conv = first.class_name == "Conv2D" and channels in (1, 3)
    input_bits = 8 if input_conv else q_config.get(first.name, qparams).output_bits
    previous_bits = input_bits
    for layer in spec.layers:
        if layer.class_name not in TWINS:
            continue
        cls = TWINS[layer.class_name]
        if cls in NEURAL_LAYERS:
            block_params = q_config.get(layer.name, qparams)
            bits = block_params.input_weight_bits if (layer is first and input_conv) \
                else block_params.weight_bits
            plan[layer.name] = {"weight_bits": bits, "input_bits": previous_bits}
        elif cls is qlayers.QuantizedReLU:
            params = q_config.get(layer.name, block_params)
            bits = params.activation_bits
            if layer.name == relus[-1] and layer is spec.layers[-1] and \
                    params.last_output_bits is not None:
                bits = params.last_output_bits
            plan[layer.name] = {"activation_bits": bits,
                                "per_tensor_activations": params.per_tensor_activations}
            previous_bits = bits
    return {"layers": plan, "input_bits": input_bits, "first": first.name}


def _warn_if_samples_look_normalized(spec: ModelSpec, stats: dict) -> None:
    """Samples in [0, 1] fed to a model that rescales by about 1/255 were probably normalized
    twice (ecosystem.md §5.2 #34)."""
    rescaling = spec.folded_rescaling
    low, high = float(np.min(stats["input_min"])), float(np.max(stats["input_max"]))
    if rescaling is not None and rescaling["scale"] < 0.02 and low >= 0 and high <= 1.0:
        warnings.warn(
            f"Calibration samples lie in [{low:.3g}, {high:.3g}] but the model's first layer "
            f"'{rescaling['name']}' rescales by {rescaling['scale']:.4g}: the samples look already "
            "normalized. Pass raw inputs (e.g. uint8 images 0..255).", UserWarning, stacklevel=3)


def _input_quantizer_settings(stats: dict, bits: int) -> tuple[float, int]:
    levels = 2**bits - 1
    low, high = float(np.min(stats["input_min"])), float(np.max(stats["input_max"]))
    if float(np.max(stats["input_fraction"])) == 0.0 and low >= 0 and high <= levels:
        return 1.0, 0  # already the integers the Akida model receives
    low, high = min(low, 0.0), max(high, 0.0)
    if high == low:
        return 1.0, 0
    scale = (high - low) / levels
    return float(np.float32(scale)), int(round(-low / scale))


def _build_quantized(spec: ModelSpec, plan: dict, input_settings, name: str) -> keras.Model:
    inputs = keras.Input(spec.input_shape, name="input")
    scale, zero_point = input_settings
    x = qlayers.InputQuantizer(plan["input_bits"], scale, zero_point, name="input_quantizer")(
        inputs)
    padding_value = zero_point
    if spec.folded_rescaling is not None:
        rescaling = spec.folded_rescaling
        x = qlayers.QuantizedRescaling(rescaling["scale"], rescaling["offset"],
                                       name=rescaling["name"])(x)
        padding_value = zero_point - rescaling["offset"] / (rescaling["scale"] * scale)
    padding_value = int(np.clip(np.round(padding_value), 0, 2**plan["input_bits"] - 1))
    for layer_spec in spec.layers:
        config = dict(layer_spec.config, **plan["layers"].get(layer_spec.name, {}))
        if layer_spec.name == plan["first"]:
            config["padding_value"] = padding_value
        layer = TWINS[layer_spec.class_name](name=layer_spec.name, **config)
        x = call_with_zero_init(layer, x) if layer_spec.weights else layer(x)
        if layer_spec.weights:
            layer.set_weights(list(layer_spec.weights) + [np.asarray(w) for w in
                                                          layer.get_weights()[len(
                                                              layer_spec.weights):]])
    outputs = qlayers.Dequantizer(name="dequantizer")(x)
    return keras.Model(inputs, outputs, name=name)


def _apply_ranges(qmodel: keras.Model, stats: dict) -> None:
    """Freeze every scale of ``qmodel`` from the calibration statistics, in layer order."""
    current, sum_size, activated = None, 1, False
    neural = pool = block_input = None
    for layer in qmodel.layers:
        if isinstance(layer, qlayers.InputQuantizer):
            channels = layer.input.shape[-1]
            current = np.full(channels, layer.quantizer.scale, np.float64)
        elif isinstance(layer, qlayers.QuantizedRescaling):
            current = current * float(layer.scale)
        elif isinstance(layer, NEURAL_LAYERS):
            layer.set_scales(current)
            neural, pool, block_input, sum_size, activated = layer, None, current, 1, False
        elif isinstance(layer, (qlayers.QuantizedGlobalAveragePooling2D,
                                qlayers.QuantizedMaxPool2D)):
            pool = layer
            sum_size = getattr(layer, "sum_size", 1)
        elif isinstance(layer, qlayers.QuantizedReLU):
            current = set_block_ranges(neural, pool, layer, None, block_input,
                                       stats["ranges"][layer.name], sum_size).astype(np.float64)
            sum_size, activated = 1, True
        elif isinstance(layer, qlayers.QuantizedFlatten):
            current = np.tile(current, int(np.prod(layer.input.shape[1:-1])))
        elif isinstance(layer, qlayers.QuantizedReshape) and activated:
            width = layer.output.shape[-1]
            if len(current) != width:
                if not np.all(current == current[0]):
                    raise QuantizationError(f"Layer '{layer.name}' (QuantizedReshape) mixes "
                                            "channels with different scales.")
                current = np.full(width, current[0])
        elif isinstance(layer, qlayers.Dequantizer):
            if activated:
                layer.set_divisor(1.0 / current)
            else:
                set_block_ranges(neural, pool, None, layer, block_input, None, sum_size)


def quantize(model, q_config=None, qparams=None, samples=None, num_samples=1024,
             batch_size=None, epochs=1, verbose=1) -> keras.Model:
    """Quantize a float Keras model and calibrate it, with the Akida 1.0 or Akida 2.0 scheme.

    The scheme is the Akida version selected with ``cnn2snn.set_akida_version`` (or
    ``CNN2SNN_TARGET_AKIDA_VERSION``), default Akida 2.0 as in MetaTF (see
    ``quantizeml.v2.quantize``). With no version selected, ``quantizeml.Akida1QuantizationParams``
    is an explicit Akida 1.0 choice and selects the Akida 1.0 scheme. Under Akida 1.0, MetaTF's
    ``QuantizationParams`` are translated field by field; settings with no Akida 1.0 meaning
    (8-bit activations, ...) are quantized with the Akida 2.0 scheme, with a QuantizationWarning,
    and ``cnn2snn.convert`` then refuses the model for Akida 1.0 with the fix (MetaTF quantizes any
    bit width and leaves the limits to conversion).

    Args:
        model: Keras 3 or tf-keras model, a ``.keras``/``.h5`` path, or a ModelSpec.
        q_config: optional {float layer name: QuantizationParams} overrides (a neural layer's entry
            also sets the bits of its block's ReLU).
        qparams: model-wide QuantizationParams.
        samples: calibration inputs (numpy array, iterable of batches, tf.data.Dataset), in the
            float model's input domain; None: random integers (with a warning).
        num_samples: maximum number of samples per epoch.
        batch_size: batch size for array samples (default min(len, 128)).
        epochs: passes over ``samples``.
        verbose: 0 silent, 1 progress bar (plain lines when stdout is not a terminal), 2 one
            plain line (for logs and files).

    Returns:
        The quantized Keras model (InputQuantizer > ... > Dequantizer).

    Raises:
        QuantizationError: every unsupported layer/order at once (``.issues``).
        QuantizationConfigError: bad qparams/q_config or an already quantized model.
        CalibrationError: bad samples.
    """
    settings = [qparams] + list((q_config or {}).values() if isinstance(q_config, dict) else [])
    if scheme_of(settings) == "v2":
        return quantize_v2(model, q_config=q_config, qparams=qparams, samples=samples,
                           num_samples=num_samples, batch_size=batch_size, epochs=epochs)
    qparams = QuantizationParams() if qparams is None else qparams
    try:
        if isinstance(qparams, Akida2Params):
            qparams = to_akida1(qparams)
        if isinstance(q_config, dict):
            q_config = {name: to_akida1(p) if isinstance(p, Akida2Params) else p
                        for name, p in q_config.items()}
    except QuantizationConfigError as err:
        # MetaTF quantizes any bit width whatever the generation and leaves the limits to
        # convert: evaluate 8 bits first, then pick 4 bits for AKD1000.
        warnings.warn(f"{err} Quantized with the Akida 2.0 scheme instead: evaluate it in Keras; "
                      "cnn2snn.convert refuses it for Akida 1.0.", QuantizationWarning,
                      stacklevel=2)
        return quantize_v2(model, q_config=q_config, qparams=qparams, samples=samples,
                           num_samples=num_samples, batch_size=batch_size, epochs=epochs)
    if not isinstance(qparams, QuantizationParams):
        raise QuantizationConfigError(f"qparams is {type(qparams).__name__}; expected "
                                      "QuantizationParams.")
    spec = to_spec(model)
    if not isinstance(model, keras.Model):  # a live Keras model's weights fit its layers
        validate_weight_shapes(spec)
    names = {layer.name for layer in spec.layers}
    sanitized = sanitize(spec)
    names |= {layer.name for layer in sanitized.layers}
    q_config = _check_q_config(q_config, names)
    plan = _plan(sanitized, q_config, qparams)
    float_model = build_float_model(sanitized)
    stats = _observe(float_model, sanitized, plan["input_bits"], samples, num_samples, batch_size,
                     epochs, verbose)
    _warn_if_samples_look_normalized(sanitized, stats)
    settings = _input_quantizer_settings(stats, plan["input_bits"])
    qmodel = _build_quantized(sanitized, plan, settings, f"{sanitized.name}_quantized")
    stats["ranges"] = _search_ranges(qmodel, stats)
    _apply_ranges(qmodel, stats)
    return qmodel


def _observe(float_model, spec, input_bits, samples, num_samples, batch_size, epochs, verbose):
    """Input statistics, and per-channel maxima and histograms of every ReLU output (one pass)."""
    if samples is None:
        samples = random_samples(spec.input_shape, input_bits, min(num_samples, 64))
    relus = [lay.name for lay in spec.layers if lay.class_name == "ReLU"]
    # Kept in memory (at most num_samples per epoch; views of an array): observe counts the samples
    # before it starts.
    batches = list(iterate_batches(samples, spec.input_shape, num_samples, batch_size, epochs))
    return observe(float_model, relus, batches, verbose, len(batches))


def _search_ranges(qmodel, stats) -> dict:
    """Each QuantizedReLU's range: the least squared error over the histogram of its float output
    (calibrate.observe), among fractions of min(observed max, max_value)."""
    relus = [lay for lay in qmodel.layers if isinstance(lay, qlayers.QuantizedReLU)]
    ranges = {}
    for layer in relus:
        observed = np.maximum(np.asarray(stats["layers"][layer.name], np.float64), 0.0)
        if layer.max_value is not None:
            observed = np.minimum(observed, float(layer.max_value))
        upper = np.where(observed > 0, observed, 1.0)  # dead channel: any range
        histogram = stats["histograms"][layer.name]
        ranges[layer.name] = search_range(histogram.counts[:, 1:], upper,
                                          2**layer.activation_bits - 1,
                                          layer.per_tensor_activations, bounds=histogram.bounds)
    unbounded = [f"'{layer.name}' (at {float(np.max(ranges[layer.name])):.3g})" for layer in relus
                 if layer.max_value is None]
    if unbounded:
        warnings.warn(f"ReLU layers without max_value bounded at their calibrated range: "
                      f"{', '.join(unbounded)}. Akida 1.0 activations saturate there; MetaTF "
                      "refuses unbounded ReLUs. Give the float model ReLU(max_value=6) to choose "
                      "the bound yourself.", QuantizationWarning, stacklevel=3)
    return ranges


def calibrate(model, qmodel, samples=None, num_samples=1024, batch_size=None, epochs=1,
              verbose=1) -> None:
    """Re-calibrate the activation ranges of ``qmodel`` (in place) by observing ``model``.

    The InputQuantizer and padding values chosen by ``quantize`` are kept.

    Raises:
        QuantizationError / CalibrationError: as ``quantize``.
    """
    sanitized = sanitize(to_spec(model))
    input_bits = qmodel.layers[1].bits if isinstance(qmodel.layers[1], qlayers.InputQuantizer) \
        else 8
    float_model = build_float_model(sanitized)
    stats = _observe(float_model, sanitized, input_bits, samples, num_samples, batch_size, epochs,
                     verbose)
    stats["ranges"] = _search_ranges(qmodel, stats)
    _apply_ranges(qmodel, stats)


def dump_config(model) -> dict:
    """Return {layer name: quantization settings} for every quantized layer of ``model``."""
    keys = ("weight_bits", "input_bits", "padding_value", "per_tensor_weights", "activation_bits",
            "per_tensor_activations", "bits", "scale", "zero_point")
    result = {}
    for layer in model.layers:
        if isinstance(layer, QUANTIZED_CLASSES):
            config = layer.get_config()
            result[layer.name] = {"class_name": type(layer).__name__,
                                  **{k: config[k] for k in keys if k in config}}
    return result

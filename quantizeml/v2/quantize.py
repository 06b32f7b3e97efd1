"""quantize() for the Akida 2.0 scheme: float Keras graph -> calibrated quantized Keras model.

Steps: read the graph (``graph.py``) and sanitize it (``sanitize.py``), plan the blocks and their
output quantizers (``plan_blocks``), observe the float model on samples (per-channel ``max|x|`` at block ends,
quantizeml's moving average), build the quantized twins and freeze every scale and shift in
topological order (``freeze.py``).
"""
from __future__ import annotations

import keras
import numpy as np

import warnings

from ..calibrate import iterate_batches
from ..errors import QuantizationConfigError, QuantizationError
from . import layers as qlayers
from .equalize import equalize
from .freeze import freeze
from .graph import INPUT, NEURAL, build_model, output_source, read_graph
from .sanitize import sanitize
from .inputs import (fold_zero_point, input_format, padding_values, plan_input_quantizer,
                     zero_point_readers)
from .lut import LUT_CLASSES
from .params import QuantizationParams
from .observe import observe_ranges
from .tail import split_float_tail

TWINS = {"Conv2D": qlayers.QuantizedConv2D, "DepthwiseConv2D": qlayers.QuantizedDepthwiseConv2D,
         "Conv2DTranspose": qlayers.QuantizedConv2DTranspose, "Dense": qlayers.QuantizedDense,
         "ReLU": qlayers.QuantizedReLU, "MaxPooling2D": qlayers.QuantizedMaxPool2D,
         "GlobalAveragePooling2D": qlayers.QuantizedGlobalAveragePooling2D,
         "Add": qlayers.QuantizedAdd, "Concatenate": qlayers.QuantizedConcatenate,
         "Flatten": qlayers.QuantizedFlatten, "Reshape": qlayers.QuantizedReshape,
         "Activation": qlayers.QuantizedActivation,
         "LeakyReLU": qlayers.QuantizedLeakyReLU}
#: What may follow each layer kind inside one Akida 2.0 layer (conversion-v2.md §4). A LUT
#: activation's 11-bit input quantizer does not end the block. Dense > LUT forms a block too:
#: quantize accepts it and conversion refuses it, as MetaTF does ("Invalid block found").
CONTINUES = {"Conv2D": ("MaxPooling2D", "ReLU", "GlobalAveragePooling2D") + LUT_CLASSES,
             "DepthwiseConv2D": ("MaxPooling2D", "ReLU", "GlobalAveragePooling2D") + LUT_CLASSES,
             "Conv2DTranspose": ("ReLU",) + LUT_CLASSES, "Dense": ("ReLU",) + LUT_CLASSES,
             "MaxPooling2D": ("ReLU",) + LUT_CLASSES, "ReLU": ("GlobalAveragePooling2D",),
             **{name: ("GlobalAveragePooling2D",) for name in LUT_CLASSES}}
#: Layer kinds whose block output is an activation (``activation_bits``).
ACTIVATIONS = ("ReLU",) + LUT_CLASSES
QUANTIZED_CLASSES = tuple(TWINS.values()) + (qlayers.InputQuantizer, qlayers.Dequantizer)


def plan_blocks(graph, q_config: dict, qparams: QuantizationParams) -> dict:
    """Per node: its block's neural layer, whether it ends the block, and its layer arguments.

    A block continues into the single consumer of a layer when ``CONTINUES`` allows it (a max pool
    and a global average pool never share a block); the layer with a fan-out, a merge after it,
    or the model output ends the block and carries the output quantizer: ``activation_bits``
    after a ReLU, else ``output_bits``; the model output ``last_output_bits`` or, when None, its
    raw ``buffer_bits`` sums (as MetaTF's unquantized last layer; a final Reshape is looked
    through). A LUT activation (Activation,
    LeakyReLU) continues its neural layer's block: its 11-bit input quantizer is not a block end.
    """
    plan, block_of, seen_neural = {}, {}, False
    output = output_source(graph)
    for node in graph.nodes:
        params = q_config.get(node.name, qparams)
        args = {}
        if node.class_name in NEURAL:
            block_of[node.name] = {"neural": node.name, "kinds": [node.class_name],
                                   "params": params}
            args = {"weight_bits": params.input_weight_bits if not seen_neural
                    else params.weight_bits, "buffer_bits": params.neural_buffer_bits}
            seen_neural = True
        elif node.class_name in ("MaxPooling2D", "ReLU", "GlobalAveragePooling2D") + LUT_CLASSES:
            block = dict(block_of[node.inbounds[0]])
            block["kinds"] = block["kinds"] + [node.class_name]
            block_of[node.name] = block
            if node.class_name == "GlobalAveragePooling2D":
                args["nonnegative_inputs"] = "ReLU" in block["kinds"]
        consumers = graph.consumers(node.name)
        continues = (node.name in block_of and len(consumers) == 1 and node is not graph.nodes[-1]
                     and consumers[0].class_name in CONTINUES.get(node.class_name, ())
                     and not ("MaxPooling2D" in block_of[node.name]["kinds"]
                              and consumers[0].class_name == "GlobalAveragePooling2D"))
        ends = node.name in block_of and not continues or node.class_name == "Add"
        if ends:
            block_params = block_of.get(node.name, {}).get("params", params)
            activated = any(kind in ACTIVATIONS
                            for kind in block_of.get(node.name, {}).get("kinds", ()))
            bits = block_params.activation_bits if activated else block_params.output_bits
            if node.name == output:
                bits = block_params.last_output_bits
                if bits is None:
                    bits = 32 if node.class_name == "Add" else block_params.neural_buffer_bits
            args["output_bits"] = bits
        plan[node.name] = args
    return plan


def _is_integer_input(samples_stats, dtype: str, graph) -> bool:
    info = np.iinfo(np.dtype(dtype))
    return graph.input_scale != 1.0 or (samples_stats["integer"] and
                                        samples_stats["min"] >= info.min and
                                        samples_stats["max"] <= info.max)


def quantize(model, q_config=None, qparams=None, samples=None, num_samples=1024,
             batch_size=None, epochs=1):
    """Quantize a float Keras 3 model with the Akida 2.0 scheme and calibrate it.

    Args:
        model: a Keras 3 Sequential or Functional model (branches, skips).
        q_config: optional {layer name: QuantizationParams} overrides.
        qparams: the model-wide ``quantizeml.v2.QuantizationParams`` (default: MetaTF's).
        samples: calibration inputs (array, iterable of batches, tf.data.Dataset); None: random
            integers of ``qparams.input_dtype``.
        num_samples, batch_size, epochs: as for the Akida 1.0 ``quantize``.

    Returns:
        The quantized Keras model (``[InputQuantizer >] ... > Dequantizer``); integer inputs
        (images) are fed as they are, float inputs go through an InputQuantizer of
        ``qparams.input_dtype``'s bits: signed, or unsigned with a zero point (the default
        uint8) folded into the biases of the layers reading it. As in MetaTF, quantization
        stops before the first layer the scheme cannot quantize (e.g. AveragePooling2D,
        sigmoid): the Dequantizer comes there and the layers from it on stay in float after it
        (a QuantizationWarning names it and why).

    Raises:
        QuantizationError, UnsupportedLayerError: every unsupported layer or order at once.
        QuantizationConfigError: bad qparams / q_config.
        CalibrationError: bad samples.
    """
    qparams = QuantizationParams() if qparams is None else qparams
    if not isinstance(qparams, QuantizationParams):
        raise QuantizationConfigError(
            f"qparams is {type(qparams).__name__}; expected quantizeml.v2.QuantizationParams.")
    if isinstance(model, keras.Model) and any(
            type(layer).__module__.startswith("quantizeml") for layer in model.layers):
        raise QuantizationConfigError(
            f"Model '{model.name}' is already quantized (it holds quantizeml layers); quantize "
            "the float model instead.")
    graph, tail = split_float_tail(read_graph(model))
    graph = sanitize(graph)
    q_config = _check_q_config(q_config, {node.name for node in graph.nodes})
    plan = plan_blocks(graph, q_config, qparams)
    rescale = None if graph.input_scale == 1.0 and graph.input_offset == 0.0 else \
        keras.layers.Rescaling(graph.input_scale, graph.input_offset)
    float_model = build_model(graph, _float_class, input_layer=rescale)
    if samples is None:
        samples = random_samples(graph.input_shape, qparams.input_dtype, num_samples, batch_size)
    batches = iterate_batches(samples, graph.input_shape, num_samples, batch_size, epochs)
    ends = [name for name, args in plan.items() if "output_bits" in args]
    # a LUT's 11-bit input quantizer needs the range of the sums it reads
    lut_inputs = [node.inbounds[0] for node in graph.nodes if node.class_name in LUT_CLASSES]
    stats = observe_ranges(float_model, list(dict.fromkeys(ends + lut_inputs)), batches)
    per_tensor = {name: q_config.get(name, qparams).per_tensor_activations or
                  len(float_model.get_layer(name).output.shape) == 2 for name in ends}
    stats["ranges"].update({name: np.full_like(stats["ranges"][name],
                                               stats["tensor_ranges"][name])
                            for name in ends if per_tensor[name]})
    stats["rates"] = equalize(graph, plan, stats["ranges"], per_tensor)
    integer_input = _is_integer_input(stats["input"], qparams.input_dtype, graph)
    first = graph.nodes[0]
    bits, signed = input_format(qparams.input_dtype)
    # uint8 images, or float inputs quantized to uint8 codes with a zero point (conversion-v2 §4)
    input_conv = first.class_name == "Conv2D" and first.inbounds == [INPUT] and \
        graph.input_shape[-1] in (1, 3) and (bits, signed) == (8, False) and \
        len(graph.consumers(INPUT)) == 1
    frac = zero_point = pad = None
    readers = set()
    if not integer_input:
        # a Reshape mixing the input channels needs one fractional bit count (see freeze.py)
        mixing = any(qlayers.mixes_channels(graph.input_shape, keras.layers.Reshape(
            node.config["target_shape"]).compute_output_shape((None,) + graph.input_shape)[1:])
            for node in graph.consumers(INPUT) if node.class_name == "Reshape")
        signed, frac, zero_point = plan_input_quantizer(
            graph, stats["input"], bits, signed, qparams.per_tensor_activations or mixing,
            input_conv)
        if zero_point.any():
            readers = set(zero_point_readers(graph))
        if input_conv:
            pad = padding_values(frac, zero_point, plan[first.name]["weight_bits"])

    if graph.input_offset != 0.0 and not input_conv:
        raise QuantizationError([f"The input Rescaling's offset {graph.input_offset} can only be "
                                 "folded into a first Conv2D on uint8 images of 1 or 3 channels "
                                 f"('{first.name}' is not one). Hint: use Rescaling without "
                                 "offset."])
    padding_value = int(np.clip(np.round(-graph.input_offset / graph.input_scale), 0, 255))
    dtype = np.dtype(qparams.input_dtype)
    input_readers = [node for node in graph.consumers(INPUT) if node.class_name in NEURAL]
    if integer_input and not input_conv and dtype.kind == "u":
        depthwise = [node.name for node in input_readers if node.class_name == "DepthwiseConv2D"]
        if depthwise:  # MetaTF's quantize refuses this one too (its other cases fail at convert)
            raise QuantizationError([f"Layer '{name}' (DepthwiseConv2D) reads the {dtype} "
                                     "inputs directly; Akida 2.0 takes unsigned inputs only "
                                     "in an input Conv2D on 1 or 3 channels. Hint: start with "
                                     "a Conv2D, or quantize with float samples (an "
                                     "InputQuantizer is inserted)." for name in depthwise])

    def extra(node):
        args = dict(plan[node.name])
        if node is first and input_conv:
            args["input_conv"] = True
            if graph.input_offset != 0.0:
                args.update(padding_value=padding_value, use_bias=True)
            elif pad is not None and any(pad):
                args["padding_value"] = pad
        elif integer_input and dtype.kind == "i" and node in input_readers:
            args["input_bits"] = dtype.itemsize * 8  # an Akida 2.0 InputData feeds it
        if node.name in readers:
            args["use_bias"] = True
        return args

    input_layer = None if integer_input else qlayers.InputQuantizer(bits, signed,
                                                                     name="input_quantizer")
    qmodel = build_model(graph, lambda node: TWINS[node.class_name], extra, input_layer,
                         qlayers.Dequantizer(name="dequantizer"), f"{graph.name}_quantized",
                         tail)
    if not integer_input:
        input_layer.set_quantizer(frac, zero_point)
        fold_zero_point(qmodel, graph, frac, zero_point)
    if graph.input_offset != 0.0:  # x·s + o: the offset's share of every sum joins the bias
        conv = qmodel.get_layer(first.name)
        kernel, bias = conv.kernel.numpy(), conv.bias.numpy()
        conv.bias.assign(bias + graph.input_offset * kernel.sum(axis=(0, 1, 2)))
    freeze(qmodel, graph, stats, qparams, q_config, integer_input)
    return qmodel


def random_samples(input_shape, dtype, num_samples, batch_size=None, seed=0):
    """MetaTF's calibration without samples: ``num_samples`` random integers of the input dtype
    (yielded in batches of ``batch_size``, default 128), with a warning."""
    warnings.warn("quantize: no calibration samples; calibrating on random inputs of dtype "
                  f"{dtype}. The ranges will not match real data: pass samples, or use "
                  "per_tensor_activations=True.", UserWarning, stacklevel=3)
    info = np.iinfo(np.dtype(dtype))
    rng = np.random.default_rng(seed)
    size = batch_size or 128
    return (rng.integers(info.min, info.max + 1, (min(size, num_samples - start),) +
                         tuple(input_shape)).astype(np.float32)
            for start in range(0, num_samples, size))


def _float_class(node):
    return getattr(keras.layers, node.class_name)


def _check_q_config(q_config, names):
    if q_config is None:
        return {}
    if not isinstance(q_config, dict):
        raise QuantizationConfigError(f"q_config must be a dict layer name -> QuantizationParams,"
                                      f" got {type(q_config).__name__}.")
    for name, params in q_config.items():
        if name not in names:
            raise QuantizationConfigError(f"q_config names layer {name!r}, which is not in the "
                                          f"model; layers: {', '.join(sorted(names))}.")
        if not isinstance(params, QuantizationParams):
            raise QuantizationConfigError(f"q_config[{name!r}] is {type(params).__name__}; "
                                          "expected quantizeml.v2.QuantizationParams.")
    return q_config


def strip_float_tail(qmodel) -> keras.Model:
    """The quantized Keras model up to its Dequantizer, without the float layers after it (a
    final softmax, or where quantization stopped): what ``convert`` turns into Akida layers, so
    its outputs equal the Akida model's.

    Args:
        qmodel: a model returned by ``quantize``.

    Returns:
        ``qmodel`` itself when it ends with its Dequantizer, else a model sharing its layers.

    Raises:
        QuantizationConfigError: ``qmodel`` has no Dequantizer (it is not an Akida 2.0
            quantized model).
    """
    dequantizer = next((layer for layer in qmodel.layers
                        if isinstance(layer, qlayers.Dequantizer)), None)
    if dequantizer is None:
        raise QuantizationConfigError(
            f"Model '{qmodel.name}' has no Dequantizer: it is not an Akida 2.0 quantized model. "
            "Hint: pass the model quantizeml.v2.quantize returned.")
    if dequantizer is qmodel.layers[-1]:
        return qmodel
    return keras.Model(qmodel.inputs, dequantizer.output, name=f"{qmodel.name}_integer_part")

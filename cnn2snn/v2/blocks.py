"""Splitting an Akida 2.0 quantized Keras model (quantizeml.v2) into blocks, one per Akida layer.

A block is the run of layers from a neural layer (or an Add, a Concatenate, the InputQuantizer,
the Dequantizer) to the first layer carrying an output quantizer (``output_bits`` set); a Flatten
or a Reshape joins the Dense after it (Akida's Dense1D flattens row-major itself), each Dense
reading it getting its own copy. A Reshape that
only relabels (``QuantizedReshape.relabels``: same Akida (H, W, C) tensor, e.g. (C,) -> (1, 1, C))
is no Akida layer: it is dropped and its readers read what it read. The blocks keep the graph:
each knows the blocks feeding it.
"""
from __future__ import annotations

import dataclasses

#: kind of each quantizeml.v2 layer class name, as the patterns name them
KINDS = {"QuantizedConv2D": "conv", "QuantizedDepthwiseConv2D": "depthwise",
         "QuantizedConv2DTranspose": "conv_transpose", "QuantizedDense": "dense",
         "QuantizedMaxPool2D": "maxpool", "QuantizedReLU": "relu",
         "QuantizedGlobalAveragePooling2D": "gap", "QuantizedActivation": "lut",
         "QuantizedLeakyReLU": "lut", "QuantizedAdd": "add",
         "QuantizedConcatenate": "concatenate", "QuantizedFlatten": "flatten",
         "QuantizedReshape": "reshape", "InputQuantizer": "input_quantizer",
         "Dequantizer": "dequantizer"}
#: kinds that start a block
STARTS = ("conv", "depthwise", "conv_transpose", "dense", "add", "concatenate",
          "input_quantizer", "dequantizer", "flatten", "reshape")
#: kinds a block of only these kinds takes in (they end in one Dense1D)
JOINS = {("flatten",): ("dense",), ("reshape",): ("flatten", "dense"),
         ("reshape", "flatten"): ("dense",)}


def is_akida2_model(model) -> bool:
    """Whether a Keras model was quantized with the Akida 2.0 scheme (quantizeml.v2 layers)."""
    return any(type(layer).__module__.startswith("quantizeml.v2")
               for layer in getattr(model, "layers", []))


@dataclasses.dataclass
class Block:
    """Keras layers becoming one Akida 2.0 layer, the blocks feeding it, its matched pattern."""

    layers: list
    inbounds: list
    pattern: object = None

    @property
    def kinds(self) -> tuple:
        return tuple(KINDS.get(type(layer).__name__, "unknown") for layer in self.layers)

    @property
    def name(self) -> str:
        """The Akida layer name: the block's first Keras layer name that is no Flatten or
        Reshape."""
        return next((lay.name for lay in self.layers if KINDS.get(type(lay).__name__) not in
                     ("flatten", "reshape")), self.layers[0].name)

    @property
    def chain(self) -> str:
        return " > ".join(layer.name for layer in self.layers)

    def role(self, kind):
        """The layer of ``kind`` in the block, or None."""
        return next((lay for lay, k in zip(self.layers, self.kinds) if k == kind), None)

    @property
    def last(self):
        return self.layers[-1]


def _sources(layer) -> list:
    node = layer._inbound_nodes[0]
    return [t._keras_history.operation for t in node.input_tensors]


def _inputs(layer, dropped: dict) -> list:
    """The layers feeding ``layer``, looking through dropped (relabelling) reshapes, without the
    InputLayer."""
    sources = []
    for src in _sources(layer):
        sources.extend(dropped.get(id(src), [src]))
    return [src for src in sources if type(src).__name__ != "InputLayer"]


def float_tail(model) -> list:
    """The float layers after the model's Dequantizer (where quantization stopped, as MetaTF):
    they run outside Akida, on the Akida model's dequantized outputs."""
    tail = []
    for layer in model.layers:
        sources = _sources(layer) if layer._inbound_nodes else []
        if any(type(src).__name__ == "Dequantizer" or src in tail for src in sources):
            tail.append(layer)
    return tail


def is_final_softmax(tail) -> bool:
    """Whether a float tail is only a final softmax (with Reshapes, Flattens or Dropouts): the
    monotone layer quantize keeps in float, as MetaTF, and convert leaves out."""
    def softmax(layer):
        return type(layer).__name__ == "Softmax" or (type(layer).__name__ == "Activation" and
                                                    layer.get_config().get("activation") ==
                                                    "softmax")
    return sum(map(softmax, tail)) == 1 and all(
        softmax(layer) or type(layer).__name__ in ("Reshape", "Flatten", "Dropout")
        for layer in tail)


def split_blocks(model) -> tuple[list, list]:
    """Return (blocks in topological order, unknown layers); block inbounds are Block objects
    (an empty list for the first block, fed by the model input). The float tail after the
    Dequantizer (``float_tail``) is in neither."""
    block_of, blocks, unknown, dropped, joined = {}, [], [], {}, set()
    tail = float_tail(model)
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer" or layer in tail:
            continue
        kind = KINDS.get(type(layer).__name__)
        if kind is None:
            unknown.append(layer)
            continue
        sources = _inputs(layer, dropped)
        if kind == "reshape" and layer.relabels:
            dropped[id(layer)] = sources
            continue
        parent = block_of.get(id(sources[0])) if sources else None
        if parent is not None and kind in JOINS.get(parent.kinds, ()):
            # a copy per reader: a Flatten feeding two Dense layers is part of both Dense1D
            block = Block(parent.layers + [layer], parent.inbounds)
            joined.add(id(parent))
            blocks.append(block)
            block_of[id(layer)] = block
            continue
        open_parent = parent is not None and len(sources) == 1 and \
            getattr(parent.last, "output_bits", None) is None and kind not in STARTS \
            and parent.kinds[-1] not in ("add", "concatenate", "input_quantizer")
        if open_parent:
            parent.layers.append(layer)
            block_of[id(layer)] = parent
            continue
        block = Block([layer], [block_of[id(src)] for src in sources if id(src) in block_of])
        blocks.append(block)
        block_of[id(layer)] = block
    read = {id(src) for block in blocks for src in block.inbounds}
    return [block for block in blocks if id(block) not in joined or id(block) in read], unknown

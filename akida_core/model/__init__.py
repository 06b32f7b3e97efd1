"""The model: a graph of layers and what runs on it.

`graph` (Model: add with inbounds, topological forward/predict, save/load delegation), `description`
(the model as a dict, written and read with validation), `state`
(layers from their dict form, the registry of extra state that mapping and learning save),
`inference` (batch chunking, memory caps), `inputs` (input validation, .npy reading),
`statistics` and `summary`.
"""
from ..layers import LAYER_KINDS
from .graph import MAX_LAYERS, MODEL_DICT_VERSION, Model

__all__ = ["Model", "LAYER_KINDS", "MAX_LAYERS", "MODEL_DICT_VERSION"]

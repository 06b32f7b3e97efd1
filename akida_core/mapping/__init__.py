"""Devices and mapping: Model + Device -> hardware/software sequences.

`devices` (hardware versions, NPs, meshes, virtual devices), `soc` (clock and power settings),
`rules` (what each NP kind can hold, read from the tables in `akida_core.hardware`), `mapper`
(map_model, sequences, MapMode), `program` (the program bytes of a sequence), `estimates` (labelled
hardware estimates) and `state` (the mapping saved in .fbz and shown by summary). Akida 1.0 only.
"""
from .mapper import BackendType, MapMode, MappingState, Sequence, map_model, model_sequences

__all__ = ["BackendType", "MapMode", "MappingState", "Sequence", "map_model", "model_sequences"]

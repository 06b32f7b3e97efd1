"""Devices and mapping: Model + Device -> hardware/software sequences.

`devices` (hardware versions, NPs, meshes, virtual devices), `soc` (clock and power settings),
`rules` (what each NP kind can hold, read from the tables in `akida_core.hardware`), `mapper`
(map_model, sequences, MapMode), `program` (the program bytes of a sequence), `estimates` (labelled
hardware estimates) and `state` (the mapping saved in .fbz and shown by summary) for Akida 1.0;
`devices_v2` (the Akida 2.0 and pico meshes) and the `v2` package (Akida 2.0 graphs: components,
skip connections, passes, map modes) for Akida 2.0.
"""
from .mapper import *  # noqa: F401,F403 (the flat `akida_core.mapping` module's API: map_model, MapMode, ...)
from .mapper import BackendType, MapMode, MappingState, Sequence, map_model, mapping_reasons, model_sequences

"""Akida 2.0 mapping: an Akida 2.0 graph Model + an Akida 2.0 device -> sequences and passes.

`checks` (what each layer needs and which limits of `akida_core.hardware.akida2` it breaks),
`graph` (skip connections, outbounds, max-pool placement), `plan` (NP slots and passes of one
hardware sequence), `search` (the map modes' search over constraints), `mapper` (map_model_v2,
MapConstraints, compute_min_device, LayerMappingError) and `state` (the mapping saved in .fbz and
shown by summary and `akida-core map`).
"""

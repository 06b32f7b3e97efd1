"""The mapping in Model.summary(), in .fbz files (save/load) and in model.statistics (estimates).

Registered on import (akida_core/__init__.py imports this module):

* a summary section: device, sequences, NP allocation per layer and totals, program sizes,
  external memory where an FNP2 is used;
* the "mapping" model state: saved as the device description, the options and the expected
  NP allocation; loading maps again (mapping is deterministic) and rejects a file whose stored
  allocation differs from the recomputed one;
* the estimator behind `model.statistics.estimates` (akida_core.estimates, labelled estimates).
"""
from .devices import device_from_dict
from ..errors import AkidaError, ModelFormatError
from .estimates import estimate
from .mapper import BackendType, MappingState, MapMode, map_model
from ..model.state import register_state
from ..model.statistics import register_estimator
from ..model.summary import format_table, register_section


def _components(nps):
    counts = {}
    for mapping in nps:
        counts[mapping.type.name] = counts.get(mapping.type.name, 0) + 1
    return ", ".join(f"{n} {name}" for name, n in counts.items()) or "-"


def component_counts(model):
    """NP type name -> number of NPs used, over all hardware sequences (max over sequences, since
    sequences are loaded one after the other and reuse the same NPs)."""
    totals = {}
    for sequence in model.sequences:
        per_sequence = {}
        for nps in sequence.nps.values():
            for mapping in nps:
                per_sequence[mapping.type.name] = per_sequence.get(mapping.type.name, 0) + 1
        for name, count in per_sequence.items():
            totals[name] = max(totals.get(name, 0), count)
    return totals


def summary_section(model):
    """Lines added to Model.summary() once the model is mapped (None when it is not)."""
    state = model._mapping
    if not isinstance(state, MappingState):   # unmapped, or Akida 2.0 (mapping.v2.state)
        return None
    device = state.device
    sequences = state.sequences
    hardware = [s for s in sequences if s.backend is BackendType.Hardware]
    sizes = {s.name: s.program_size for s in hardware}
    lines = [f"Hardware mapping on {device.desc} ({device.version.name}), mode {state.mode.name}, "
             f"hw_only={state.hw_only}",
             f"Sequences: {len(sequences)} ({len(hardware)} hardware, {len(sequences) - len(hardware)} software)"
             f"  Program size: {sum(sizes.values()):,} bytes"]
    counts = component_counts(model)
    lines += format_table(("Component (type)", "Count"), [(name, str(n)) for name, n in counts.items()])
    external = sum(s.external_memory for s in hardware)
    nps_used = sum(n for name, n in counts.items() if name != "HRC")
    lines.append(f"NPs used: {nps_used} of {len(device.mesh.nps)} (HRC not counted)"
                 + (f"  External Memory (Bytes): {external:,}" if external else ""))
    for sequence in sequences:
        lines.append("")
        if sequence.backend is BackendType.Hardware:
            lines.append(f"Sequence {sequence.name} (Hardware) - passes: {len(sequence.passes)} - "
                         f"size: {sizes[sequence.name]:,} bytes")
            cut = state.reasons.get(sequence.layers[0].name)
            if cut:
                lines.append(f"  new sequence at {sequence.layers[0].name}: {cut}")
            external = sequence.external_memory
            header = ("Layer (type)", "NPs", "Components") + (("External Memory (Bytes)",) if external else ())
            rows = []
            for layer in sequence.layers:
                nps = sequence.nps[layer.name]
                row = (f"{layer.name} ({layer.layer_type.name})",
                       str(len(nps) if nps and nps[0].type.name != "HRC" else 0), _components(nps))
                rows.append(row + ((f"{sequence.layer_external_memory(layer.name):,}",) if external else ()))
            lines += format_table(header, rows)
        else:
            lines.append(f"Sequence {sequence.name} (Software) - runs on the host")
            for layer in sequence.layers:
                reason = state.reasons.get(layer.name)
                if reason:
                    lines.append(f"  {layer.name}: {reason}")
    return lines


def _allocation_list(sequences):
    return [{"name": s.name, "backend": s.backend.name,
             "nps": {layer: [[*m.ident, m.type.name, m.start, m.stop] for m in nps]
                     for layer, nps in s.nps.items()}} for s in sequences]


def save_state(model):
    """The mapping state for .fbz (None when the model is not mapped)."""
    state = model._mapping
    if not isinstance(state, MappingState):   # unmapped, or Akida 2.0 (mapping.v2.state)
        return None
    return {"device": state.device.to_dict(), "mode": state.mode.name, "hw_only": state.hw_only,
            "single_np_layers": list(state.single_np_layers), "sequences": _allocation_list(state.sequences)}


def load_state(model, data):
    """Map the loaded model again with the saved device and options; check the saved allocation.

    Raises:
        ModelFormatError: malformed state, or an allocation the mapper does not reproduce.
    """
    keys = {"device", "mode", "hw_only", "single_np_layers", "sequences"}
    if not isinstance(data, dict) or set(data) != keys:
        found = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise ModelFormatError(f"mapping state must be a dict with keys {sorted(keys)}; got {found}")
    device = device_from_dict(data["device"])
    mode, hw_only = data["mode"], data["hw_only"]
    if not isinstance(mode, str) or mode not in MapMode.__members__ or not isinstance(hw_only, bool):
        raise ModelFormatError(f"mapping state: bad mode {_short(mode)} (one of {list(MapMode.__members__)}) "
                               f"or hw_only {_short(hw_only)} (True or False)")
    single = data["single_np_layers"]
    names = {layer.name for layer in model.layers}
    if not isinstance(single, list) or not all(isinstance(n, str) and n in names for n in single):
        raise ModelFormatError(f"mapping state: single_np_layers {_short(single)} must name layers of the model")
    if not _is_plain(data["sequences"]):
        raise ModelFormatError("mapping state: sequences must hold lists, dicts, strings and numbers only "
                               "(as saved); found an array or another object")
    try:
        map_model(model, device, hw_only=data["hw_only"], mode=MapMode[data["mode"]], single_np_layers=single)
    except AkidaError as err:
        raise ModelFormatError(f"the saved mapping cannot be reproduced: {err}") from err
    if _allocation_list(model._mapping.sequences) != data["sequences"]:
        model._mapping = None
        raise ModelFormatError("the saved mapping differs from the mapping of this model on the saved device; "
                               "the file is corrupted or was written by another mapper version. Hint: load it, "
                               "call model.map(device) again and save.")


def _is_plain(node):
    if isinstance(node, dict):
        return all(_is_plain(value) for value in node.values())
    if isinstance(node, list):
        return all(_is_plain(value) for value in node)
    return node is None or type(node) in (str, int, float, bool)


def _short(value):
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


register_section(summary_section)
register_state("mapping", save_state, load_state)
register_estimator(estimate)

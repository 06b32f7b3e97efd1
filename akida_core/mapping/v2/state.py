"""The Akida 2.0 mapping in Model.summary(), in .fbz files (save/load) and in `akida-core map`.

Registered on import (akida_core/__init__.py imports this module):

* a summary section: device, sequences, passes, NPs per layer with their components ("8 CNP1 +
  1 SKIP_DMA_STORE"), skip-DMA channels, external memory (Dense1D weights on an FNP2);
* the "mapping_v2" model state: the device description, the options and the expected layout;
  loading maps again (mapping is deterministic) and rejects a file whose layout differs.

No fps or energy estimate is given for Akida 2.0: there is no documented cost model for it.
"""
import math

from ..devices import NPType
from ..devices_v2 import device_v2_from_dict
from ...errors import AkidaError, ModelFormatError
from ..mapper import BackendType, MapMode
from .mapper import MapConstraints, MappingStateV2, map_model_v2
from ...model.state import register_state
from ...model.summary import format_table, register_section


def _state(model):
    state = model._mapping
    return state if isinstance(state, MappingStateV2) else None


def component_count(model):
    """NP.Type -> components used in the busiest pass (passes reuse the NPs), skip-DMA components included."""
    state = _state(model)
    totals = {}
    if state is None:
        return totals
    for sequence in state.sequences:
        per_pass = {}
        for mapping in sequence.mappings.values():
            counts = per_pass.setdefault(mapping.pass_index, {})
            for component in mapping.nps + mapping.skipdma_stores + mapping.skipdma_loads:
                counts[component.type] = counts.get(component.type, 0) + 1
        for counts in per_pass.values():
            for np_type, n in counts.items():
                totals[np_type] = max(totals.get(np_type, 0), n)
    return dict(sorted(totals.items(), key=lambda item: item[0].value))


def layer_external_memory(model, name, mapping):
    """Bytes of a layer's weights held in external memory (a Dense1D on an FNP2), else 0."""
    if not any(component.type is NPType.FNP2 for component in mapping.nps):
        return 0
    layer = model.get_layer(name)
    return -(-math.prod(layer.input_dims) * layer.params.units * layer.params.weights_bits // 8)


def external_memory_size(model):
    """Bytes of weights in external memory over the whole mapping."""
    state = _state(model)
    if state is None:
        return 0
    return sum(layer_external_memory(model, name, mapping) for s in state.sequences
               for name, mapping in s.mappings.items())


def _np_uses(sequence):
    return sum(len(m.nps) for m in sequence.mappings.values() if not (m.nps and m.nps[0].type is NPType.HRC))


def summary_section(model):
    """Lines added to Model.summary() for an Akida 2.0 mapping (None otherwise)."""
    state = _state(model)
    if state is None:
        return None
    device = state.device
    hardware = [s for s in state.sequences if s.backend is BackendType.Hardware]
    counts = component_count(model)
    per_pass = {}
    for k, sequence in enumerate(hardware):
        for mapping in sequence.mappings.values():
            if not (mapping.nps and mapping.nps[0].type is NPType.HRC):
                per_pass[(k, mapping.pass_index)] = per_pass.get((k, mapping.pass_index), 0) + len(mapping.nps)
    busiest = max(per_pass.values(), default=0)
    external = external_memory_size(model)
    lines = [f"Hardware mapping on {device.name} ({device.desc}, {device.version.name}, "
             f"IpVersion.{device.ip_version.name}), mode {state.mode.name}, hw_only={state.hw_only}, "
             f"at most {state.cap} filters per NP",
             f"Sequences: {len(state.sequences)} ({len(hardware)} hardware, {len(state.sequences) - len(hardware)} "
             f"software)  Passes: {sum(len(s.passes) for s in hardware)}  NPs: {sum(_np_uses(s) for s in hardware)} "
             f"uses, busiest pass {busiest} of {len(device.mesh.nps)}  Skip DMAs: "
             f"{counts.get(NPType.SKIP_DMA_STORE, 0)} of {device.mesh.skip_channels} channels"
             + (f"  External Memory (Bytes): {external:,}" if external else "")]
    lines += format_table(("Component (type)", "Count"), [(t.name, str(n)) for t, n in counts.items()])
    for sequence in state.sequences:
        lines.append("")
        if sequence.backend is BackendType.Software:
            lines.append(f"Sequence {sequence.name} (Software) - runs on the host")
            lines += [f"  {layer.name}: {state.reasons[layer.name]}" for layer in sequence.layers
                      if layer.name in state.reasons]
            continue
        lines.append(f"Sequence {sequence.name} (Hardware) - passes: {len(sequence.passes)}")
        cut = state.reasons.get(sequence.layers[0].name)
        if cut:
            lines.append(f"  new sequence at {sequence.layers[0].name}: {cut}")
        rows = []
        for index, pass_ in enumerate(sequence.passes, start=1):
            rows.append((f"-- pass {index} --", "", ""))
            for layer in pass_.layers:
                mapping = sequence.mappings[layer.name]
                nps = 0 if mapping.nps and mapping.nps[0].type is NPType.HRC else len(mapping.nps)
                rows.append((f"{layer.name} ({layer.layer_type.name})", str(nps), mapping.components_text()))
        lines += format_table(("Layer (type)", "NPs", "Components"), rows)
    return lines


def mapping_report(model):
    """Plain data of an Akida 2.0 mapping for `akida-core map` (sequences, passes, NPs, skip DMAs)."""
    state = _state(model)
    sequences = []
    for sequence in state.sequences:
        entry = {"name": sequence.name, "backend": sequence.backend.name,
                 "layers": [layer.name for layer in sequence.layers], "nps": 0, "passes": []}
        if sequence.backend is BackendType.Hardware:
            entry["nps"] = _np_uses(sequence)
            for pass_ in sequence.passes:
                entry["passes"].append({name: sequence.mappings[name].components_text()
                                        for name in (layer.name for layer in pass_.layers)})
        else:
            entry["reasons"] = {layer.name: state.reasons[layer.name] for layer in sequence.layers
                                if layer.name in state.reasons}
        sequences.append(entry)
    counts = component_count(model)
    return {"ip_version": state.device.ip_version.name, "device": state.device.name, "mode": state.mode.name,
            "sequences": sequences, "nps": sum(s["nps"] for s in sequences),
            "skip_dma_channels": counts.get(NPType.SKIP_DMA_STORE, 0),
            "external_memory_bytes": external_memory_size(model),
            "component_count": {t.name: n for t, n in counts.items()}}


def report_lines(report):
    """Text lines of `mapping_report` output."""
    lines = []
    for sequence in report["sequences"]:
        if sequence["backend"] == "Hardware":
            lines.append(f"{sequence['name']} (Hardware): {len(sequence['layers'])} layer(s), "
                         f"{len(sequence['passes'])} pass(es), {sequence['nps']} NPs")
            for index, components in enumerate(sequence["passes"], start=1):
                lines.append(f"  pass {index}: " + "; ".join(f"{n} {c}" for n, c in components.items()))
        else:
            lines.append(f"{sequence['name']} (Software): {len(sequence['layers'])} layer(s)")
            lines += [f"  {name}: {why}" for name, why in sequence["reasons"].items()]
    hardware = sum(s["backend"] == "Hardware" for s in report["sequences"])
    lines.append(f"{report['device']}, mode {report['mode']}: {len(report['sequences'])} sequence(s), {hardware} in "
                 f"hardware, {report['nps']} NP uses, {report['skip_dma_channels']} skip-DMA channel(s)")
    return lines


def _layout(sequences):
    out = []
    for s in sequences:
        components = {name: [[*c.ident, c.type.name, c.start, c.stop, c.row_start, c.row_stop, c.channel]
                             for c in m.nps + m.skipdma_stores + m.skipdma_loads] for name, m in s.mappings.items()}
        out.append({"name": s.name, "backend": s.backend.name,
                    "passes": [[layer.name for layer in p.layers] for p in s.passes], "components": components})
    return out


def save_state(model):
    """The Akida 2.0 mapping state for .fbz (None when the model is not mapped on an Akida 2.0 device)."""
    state = _state(model)
    if state is None:
        return None
    return {"device": state.device.to_dict(), "mode": state.mode.name, "hw_only": state.hw_only,
            "constraints": list(state.constraints), "sequences": _layout(state.sequences)}


def load_state(model, data):
    """Map the loaded model again with the saved device and options; check the saved layout.

    Raises:
        ModelFormatError: malformed state, or a layout the mapper does not reproduce.
    """
    keys = {"device", "mode", "hw_only", "constraints", "sequences"}
    if not isinstance(data, dict) or set(data) != keys:
        found = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise ModelFormatError(f"Akida 2.0 mapping state must be a dict with keys {sorted(keys)}; got {found}")
    device = device_v2_from_dict(data["device"])
    mode, hw_only, limits = data["mode"], data["hw_only"], data["constraints"]
    if not isinstance(mode, str) or mode not in MapMode.__members__ or not isinstance(hw_only, bool) or \
            not isinstance(limits, list) or len(limits) != 2:
        raise ModelFormatError(f"Akida 2.0 mapping state: bad mode {str(mode)[:40]!r}, hw_only {str(hw_only)[:40]!r} "
                               f"or constraints {str(limits)[:40]!r}")
    constraints = MapConstraints(device)
    constraints.cnp_max_filters, constraints.cnp_max_width = limits
    try:
        map_model_v2(model, device, hw_only=hw_only, mode=MapMode[mode], constraints=constraints)
    except AkidaError as err:
        raise ModelFormatError(f"the saved Akida 2.0 mapping cannot be reproduced: {err}") from err
    if _layout(model._mapping.sequences) != data["sequences"]:
        model._mapping = None
        raise ModelFormatError("the saved Akida 2.0 mapping differs from the mapping of this model on the saved "
                               "device; the file is corrupted or was written by another mapper version. Hint: load "
                               "it, call model.map(device) again and save.")


register_section(summary_section)
register_state("mapping_v2", save_state, load_state)

"""Mapping an Akida 2.0 (or pico) model onto an Akida 2.0 (or pico) device: sequences, passes, components.

`model.map(device, hw_only=False, mode=MapMode.AllNps, constraints=None)` calls `map_model_v2` for
Akida 2.0 models. Each layer goes on the component the table names (InputConv2D on the HRC, Conv2D
and the depthwise / transposed convolutions on CNP1, Dense1D on one FNP3 or FNP2, BufferTempConv
kinds on TNP_B with a skip-DMA store and load, Add / Concatenate / Quantizer / Dequantizer on no NP);
hardware sequences are cut into passes (mapping_v2_plan); layers that cannot run in hardware form
`SW/...` sequences. With `hw_only=True` the model must be one hardware sequence, else a
`LayerMappingError` names the layer and lists every failed check with its limit and value.

Modes (mapping-v2.md §3): Minimal maps once with `cnp_max_filters` filters per NP at most; AllNps
and HwPr binary-search that cap and keep the best plan by (more layers mapped, fewer sequences,
fewer passes [AllNps only], more NPs). Inference is unchanged: the same exact integer engine runs.

Example:
    >>> model.map(SixNodesIPv2(), hw_only=True)
    >>> [(s.name, len(s.passes)) for s in model.sequences]
"""
import dataclasses

from ..devices import Device, IpVersion, NPType
from ..devices_v2 import DeviceV2, create_device_v2
from ...enums import LayerType
from ...errors import MappingError
from ..mapper import BackendType, MapMode
from .search import Analysis, search


class LayerMappingError(MappingError):
    """`map(hw_only=True)` refused: `.layer` is the layer named, `.reasons` its failed checks, and
    `.issues` every layer's reasons (layer name -> list)."""

    def __init__(self, layer, reasons, issues):
        others = [name for name in issues if name != layer]
        text = f"Cannot map layer '{layer}'. " + " ".join(reasons)
        if others:
            text += " Other layers that cannot be mapped: " + " ".join(
                f"'{name}': {' '.join(issues[name])}" for name in others)
        super().__init__(text + " Hint: map with hw_only=False to run what does not fit in software, or change "
                         "the layer.")
        self.layer, self.reasons, self.issues = layer, list(reasons), dict(issues)


class IpVersionMismatch(MappingError):
    """The model and the device are of different Akida generations (no software fallback either)."""


class MapConstraints:
    """Mapper settings of a device: `cnp_max_filters` (filters per NP at most, the cap AllNps and HwPr
    search below) and `cnp_max_width` (d0 rows one CNP or TNP_B handles); `*_default` hold the defaults."""

    def __init__(self, device):
        table = device.table
        self.cnp_max_filters_default = self.cnp_max_filters = table.cnp_max_filters or 1
        self.cnp_max_width_default = self.cnp_max_width = table.cnp_max_width or 1

    def checked(self):
        """(cnp_max_filters, cnp_max_width), validated."""
        for name in ("cnp_max_filters", "cnp_max_width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MappingError(f"MapConstraints.{name}={value!r} must be an int >= 1")
        return self.cnp_max_filters, self.cnp_max_width

    def __repr__(self):
        return f"MapConstraints(cnp_max_filters={self.cnp_max_filters}, cnp_max_width={self.cnp_max_width})"


@dataclasses.dataclass(frozen=True)
class Component:
    """One component used by a layer: NP ident and type, filters [start, stop) and rows [row_start, row_stop)
    on it; for skip DMAs the DMA ident and `channel`."""

    ident: tuple
    type: NPType
    start: int = 0
    stop: int = 0
    row_start: int = 0
    row_stop: int = 0
    channel: int = -1


@dataclasses.dataclass(frozen=True)
class LayerMapping:
    """`nps`, `skipdma_stores` and `skipdma_loads` (tuples of Component) of a mapped layer, and its pass."""

    nps: tuple
    skipdma_stores: tuple
    skipdma_loads: tuple
    pass_index: int

    def components_text(self):
        """'8 CNP1 + 1 SKIP_DMA_STORE', '1 HRC', or 'none'."""
        counts = {}
        for component in self.nps + self.skipdma_stores + self.skipdma_loads:
            counts[component.type.name] = counts.get(component.type.name, 0) + 1
        return " + ".join(f"{n} {name}" for name, n in counts.items()) or "none"


@dataclasses.dataclass(frozen=True)
class PassV2:
    """A subset of a hardware sequence loaded at once (partial reconfiguration)."""

    layers: tuple


class SequenceV2:
    """Layers run together: `HW/<first>-<last>` with passes and per-layer mappings, or `SW/...`."""

    def __init__(self, layers, backend, passes=(), mappings=None):
        self.layers = tuple(layers)
        self.backend = backend
        self.passes = tuple(passes) if passes else (PassV2(self.layers),)
        self.mappings = dict(mappings or {})
        first, last = self.layers[0].name, self.layers[-1].name
        prefix = "HW" if backend is BackendType.Hardware else "SW"
        self.name = f"{prefix}/{first}" if first == last else f"{prefix}/{first}-{last}"

    @property
    def nps(self):
        """Layer name -> tuple of the NP Components (empty for software layers and 0-NP layers)."""
        return {layer.name: self.mappings[layer.name].nps if layer.name in self.mappings else ()
                for layer in self.layers}

    def __repr__(self):
        passes = f", {len(self.passes)} pass(es)" if self.backend is BackendType.Hardware else ""
        return f"<Sequence {self.name} ({self.backend.name}){passes}>"


@dataclasses.dataclass
class MappingStateV2:
    """What `model._mapping` holds for an Akida 2.0 mapping."""

    device: Device
    mode: MapMode
    hw_only: bool
    constraints: tuple        # (cnp_max_filters, cnp_max_width) asked
    cap: int                  # filters per NP at most, as chosen by the mode
    sequences: tuple
    reasons: dict             # layer name -> why it runs in software or starts a sequence
    skips: tuple


def model_ip_version(model):
    """IpVersion the model maps as: pico with a StatefulRecurrent layer, else the model's own."""
    if any(layer.layer_type == LayerType.StatefulRecurrent for layer in model.layers):
        return IpVersion.pico
    return model.ip_version


def _check_device(model, device):
    if not isinstance(device, DeviceV2):
        if isinstance(device, Device):
            raise IpVersionMismatch(
                f"The IP version of the model and device must be identical: the model is "
                f"IpVersion.{model_ip_version(model).name} (Akida 2.0 layers), the device {device.desc} "
                f"({device.version.name}) is IpVersion.{device.ip_version.name}. Hint: map Akida 2.0 models on "
                "SixNodesIPv2(), TwelveNodesIPv2(), ... or create_device(...); AKD1000/AKD1500 run Akida 1.0 models.")
        raise MappingError(f"device={device!r} is not a Device; use SixNodesIPv2(), TwelveNodesIPv2(), ... or "
                           "create_device(...)")
    model_ip = model_ip_version(model)
    if model_ip is not device.ip_version:
        raise IpVersionMismatch(
            f"The IP version of the model and device must be identical: the model is IpVersion.{model_ip.name}"
            f"{' (it holds a StatefulRecurrent layer)' if model_ip is IpVersion.pico else ''}, the device "
            f"{device.name} is IpVersion.{device.ip_version.name}. Hint: "
            + ("map it on PicoIP()." if model_ip is IpVersion.pico
               else "use an Akida 2.0 device such as SixNodesIPv2()."))




def map_model_v2(model, device, hw_only=False, mode=None, constraints=None):
    """Map an Akida 2.0 / pico `model` on `device` (a DeviceV2); the model is left unmapped on failure.

    Args:
        model: the akida_core Model.
        device: a DeviceV2 (SixNodesIPv2(), create_device(...), PicoIP()).
        hw_only: require one hardware sequence holding every layer (InputData is in no sequence).
        mode: a MapMode (None: MapMode.AllNps).
        constraints: a MapConstraints of the device (None: its defaults).

    Raises:
        MappingError: bad arguments, or the model and device IP versions differ.
        LayerMappingError: hw_only and a layer cannot be in the one hardware sequence.
    """
    mode = MapMode.AllNps if mode is None else mode
    if not isinstance(mode, MapMode):
        raise MappingError(f"mode={mode!r} is not a MapMode; allowed: MapMode.AllNps, MapMode.HwPr, MapMode.Minimal")
    model._mapping = None
    model._require_layers()
    _check_device(model, device)
    if constraints is None:
        constraints = MapConstraints(device)
    if not isinstance(constraints, MapConstraints):
        raise MappingError(f"constraints={constraints!r} must be a MapConstraints(device)")
    max_filters, width = constraints.checked()
    analysis = Analysis(model, device, width)
    cap, (planned, reasons, _) = search(analysis, mode, max_filters, hw_only)
    names = [lay.name for lay in analysis.layers]
    if hw_only and not (len(planned) == 1 and planned[0].hardware and planned[0].names == names):
        layer = next((name for name in names if name in reasons), None) or next(iter(reasons), names[0])
        raise LayerMappingError(layer, reasons.get(layer, ["It does not fit the one hardware sequence."]),
                                {n: reasons[n] for n in names if n in reasons})
    sequences = tuple(_build_sequence(model, device, planned_sequence, analysis, cap)
                      for planned_sequence in planned)
    flat = {name: " ".join(why) for name, why in reasons.items() if name in set(names)}
    model._mapping = MappingStateV2(device, mode, bool(hw_only), (max_filters, width), cap, sequences, flat,
                                    tuple(analysis.skips))


def _build_sequence(model, device, planned, analysis, cap):
    layers = [model.get_layer(name) for name in planned.names]
    if not planned.hardware:
        return SequenceV2(layers, BackendType.Software)
    mappings, passes = {}, []
    for index, fit in enumerate(planned.passes):
        passes.append(PassV2(tuple(model.get_layer(name) for name in fit.layers)))
        mappings.update(_assign(device, fit, analysis, cap, index))
    return SequenceV2(layers, BackendType.Hardware, passes, mappings)


def _assign(device, fit, analysis, cap, pass_index):
    """Concrete components of one pass: slots taken type by type (most constrained first), skip channels in order."""
    mesh = device.mesh
    free = sorted(mesh.nps, key=lambda np_: (len(np_.types), np_.ident))
    taken = {}
    order = {"FNP2": 0, "FNP3": 1, "TNP_R": 2, "TNP_B": 3, "CNP1": 4}
    wanted = sorted(((order[t], k, name, t, n) for k, (name, (t, n)) in enumerate(fit.types.items())
                     if t is not None and t != "HRC"))
    for _, _, name, type_name, count in wanted:
        np_type = NPType[type_name]
        chosen = [np_ for np_ in free if np_.can(np_type)][:count]
        assert len(chosen) == count, (name, type_name)   # PassFit checked the counts
        chosen_ids = {np_.ident for np_ in chosen}
        free = [np_ for np_ in free if np_.ident not in chosen_ids]
        taken[name] = _split_components(chosen, np_type, analysis.demands[name], cap)
    channels = [(dma.ident, c) for dma in mesh.skip_dmas for c in range(dma.channels)]
    stores, loads = {}, {}
    for name in fit.layers:
        count = (1 if analysis.demands[name].fifo else 0) + \
            sum(skip.source == name for skip in analysis.skips)
        for skip in [s for s in analysis.skips if s.source == name] + ([None] if analysis.demands[name].fifo else []):
            ident, channel = channels.pop(0)
            stores.setdefault(name, []).append(Component(ident, NPType.SKIP_DMA_STORE, channel=channel))
            target = name if skip is None else skip.target
            loads.setdefault(target, []).append(Component(ident, NPType.SKIP_DMA_LOAD, channel=channel))
        assert count == len(stores.get(name, ()))
    out = {}
    for name in fit.layers:
        nps = taken.get(name, ())
        if fit.types[name][0] == "HRC":
            nps = (Component(mesh.hrc.ident, NPType.HRC, 0, analysis.demands[name].filters),)
        out[name] = LayerMapping(tuple(nps), tuple(stores.get(name, ())), tuple(loads.get(name, ())), pass_index)
    return out


def _split_components(nps, np_type, demand, cap):
    """Components of a layer on `nps`: filter groups of `per_np(cap)` times row parts."""
    if np_type not in (NPType.CNP1, NPType.TNP_B):
        return tuple(Component(np_.ident, np_type, 0, demand.filters) for np_ in nps)
    per_np = demand.per_np(cap)
    groups = [(start, min(start + per_np, demand.filters)) for start in range(0, demand.filters, per_np)]
    parts = demand.row_parts
    out = []
    for k, np_ in enumerate(nps):
        start, stop = groups[k % len(groups)]
        part = k // len(groups)
        out.append(Component(np_.ident, np_type, start, stop, part, min(part + 1, parts)))
    return tuple(out)


def compute_min_device(model, enable_hwpr=False, sram_size=None, minimal_memory=False):
    """The smallest `create_device(...)` the model maps on with hw_only=True (Akida 2.0 and pico models).

    Maps with MapMode.Minimal on a large base device, counts the CNP/TNP components, the FNPs and the
    skip-DMA channels of the busiest pass, builds that device and maps again to check it. With
    `enable_hwpr`, sizes for the largest pass instead of the whole model (passes reuse the NPs).

    Args:
        model: an Akida 2.0 or pico Model.
        enable_hwpr: allow several passes (partial reconfiguration).
        sram_size: SRAM per NP of the device built (None: the default).
        minimal_memory: size the SRAM to the largest weight block mapped on one NP (input SRAM kept).

    Returns:
        A DeviceV2.

    Raises:
        ValueError: an Akida 1.0 model.
        MappingError: no device fits ("It was not possible to find a device for this model. Reason: ...").
    """
    ip = model_ip_version(model)
    if ip not in (IpVersion.v2, IpVersion.pico):
        raise ValueError("Only IpVersion.v2 and IpVersion.pico models are supported (this model is Akida 1.0; use "
                         "AKD1000(), AKD1500() or TwoNodesIPv1()).")
    from ..devices import FPGA_v2, Pico_FPGA
    hw_version = Pico_FPGA if ip is IpVersion.pico else FPGA_v2
    base = create_device_v2(1024, 64, 1024, True, sram_size, hw_version)
    try:
        map_model_v2(model, base, hw_only=True, mode=MapMode.Minimal)
    except MappingError as err:
        raise MappingError(f"It was not possible to find a device for this model. Reason: {err}") from err
    (sequence,) = model._mapping.sequences
    cnp, fnp, channels = _pass_needs(sequence, 0)
    if minimal_memory:
        from ..devices_v2 import SramSize
        weight = max([_np_weight_bytes(model, sequence)] + [1])
        sram_size = SramSize(base.mesh.np_sram_size.input_bytes, weight)
    candidates = [(cnp, fnp, channels)]
    if enable_hwpr:
        # Passes reuse the NPs: start from the largest pair of consecutive layers, grow until it maps.
        per_layer = [_pass_needs(sequence, 0, only=lay.name) for lay in sequence.layers]
        pairs = [tuple(a[k] + b[k] for k in range(3)) for a, b in zip(per_layer, per_layer[1:])] or per_layer
        low = tuple(max(p[k] for p in pairs) for k in range(3))
        candidates = [(c, min(max(low[1], 1 if fnp else 0), fnp), ch) for c in range(low[0], cnp + 4, 4)
                      for ch in range(min(low[2], channels), channels + 1)] + candidates
    error = None
    for num_cnp, num_fnp, num_channels in candidates:
        device = create_device_v2(num_cnp, num_fnp, num_channels, True, sram_size, hw_version)
        try:
            map_model_v2(model, device, hw_only=True, mode=MapMode.HwPr if enable_hwpr else MapMode.Minimal)
            return device
        except MappingError as err:
            error = err
        finally:
            model._mapping = None
    raise MappingError(f"It was not possible to find a device for this model. Reason: {error}") from error


def _pass_needs(sequence, index, only=None):
    """(CNP/TNP components, FNPs, skip channels) of one pass (or of one layer of it)."""
    cnp = fnp = channels = 0
    for name, mapping in sequence.mappings.items():
        if mapping.pass_index != index or (only is not None and name != only):
            continue
        for component in mapping.nps:
            if component.type in (NPType.FNP2, NPType.FNP3):
                fnp += 1
            elif component.type is not NPType.HRC:
                cnp += 1
        channels += len(mapping.skipdma_stores)
    return cnp, fnp, channels


def _np_weight_bytes(model, sequence):
    """Largest weight block on one NP: filters on it x bytes per filter (FNP3 with its overhead)."""
    from ...hardware.akida2 import AKIDA2
    from .checks import layer_demand
    largest = 0
    for name, mapping in sequence.mappings.items():
        layer = model.get_layer(name)
        demand = layer_demand(layer, model._mapping.device.table, model._mapping.device.mesh, AKIDA2.cnp_max_width)
        for component in mapping.nps:
            if component.type in (NPType.CNP1, NPType.TNP_B):
                largest = max(largest, (component.stop - component.start) * demand.filter_bytes)
            elif component.type is NPType.FNP3:
                import math
                num, den = AKIDA2.fnp3_weight_scale
                size = -(-math.prod(layer.input_dims) * demand.filters * layer.params.weights_bits // 8)
                largest = max(largest, -(-size * num // den))
    return largest

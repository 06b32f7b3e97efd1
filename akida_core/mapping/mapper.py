"""Mapping a Model onto a Device: hardware / software sequences, NPs per layer, programs.

`model.map(device, hw_only=False, mode=MapMode.AllNps)` calls `map_model`. Layers that can run on
the device (mapping_rules.layer_issue) form hardware sequences `HW/<first>-<last>`; the others run on
the host as `SW/<name>` sequences. A hardware sequence is cut where the device would run out of NPs,
where an FNP layer is followed by a CNP layer, and never right after a max-pooling CNP layer. With
`hw_only=True` the whole model must be one hardware sequence, else `MappingError("Cannot map layer
'<name>'. <reason>")`. Inference is unchanged: mapped or not, the same exact integer engine runs.

Example:
    >>> model.map(AKD1000(), hw_only=True)
    >>> [s.name for s in model.sequences], len(model.sequences[0].program)
"""
import dataclasses
import enum

from .devices import Device, IpVersion, NPType
from ..errors import MappingError
from .rules import SequenceFit, allocate, has_max_pool, layer_issue, layer_need, np_kind
from .program import encode_program


class MapMode(enum.Enum):
    """AllNps (default): most NPs, fewest passes; HwPr: same on Akida 1.0 (no partial
    reconfiguration, so always one pass); Minimal: fewest NPs."""

    AllNps = 1
    HwPr = 2
    Minimal = 3


class BackendType(enum.Enum):
    """Where a sequence runs."""

    Software = 0
    Hardware = 1


@dataclasses.dataclass(frozen=True)
class NPMapping:
    """One NP used by a layer: its ident, the type it acts as, and the filters [start, stop) it holds."""

    ident: tuple
    type: NPType
    start: int
    stop: int


@dataclasses.dataclass(frozen=True)
class Pass:
    """A subset of a sequence loaded at once (one per sequence on Akida 1.0)."""

    layers: tuple


class Sequence:
    """Consecutive layers run on one backend: name, backend, passes, NPs per layer and program."""

    def __init__(self, model, device, layers, backend, allocation=None):
        self._model = model
        self._device = device
        self.layers = tuple(layers)
        self.backend = backend
        self._allocation = allocation or {}
        first, last = self.layers[0].name, self.layers[-1].name
        if backend is BackendType.Hardware:
            self.name = f"HW/{first}-{last}"
        else:
            self.name = f"SW/{first}" if first == last else f"SW/{first}-{last}"
        self.passes = (Pass(self.layers),)

    @property
    def nps(self):
        """Layer name -> tuple of NPMapping (empty for InputData and software layers)."""
        return {layer.name: tuple(NPMapping(np_.ident, t, a, b) for np_, t, a, b in
                                  self._allocation.get(layer.name, ())) for layer in self.layers}

    @property
    def program(self):
        """The program bytes (None for a software sequence); see akida_core.program for the layout."""
        if self.backend is BackendType.Software:
            return None
        return encode_program(self._device, self.layers, self._allocation)

    @property
    def program_size(self):
        """len(program) in bytes (0 for a software sequence)."""
        program = self.program
        return 0 if program is None else len(program)

    def layer_external_memory(self, name):
        """Bytes of the layer's weights held in external memory (its FNP2 blocks)."""
        layer = next(lay for lay in self.layers if lay.name == name)
        return sum(-(-layer.input_size * (stop - start) * layer.params.weights_bits // 8)
                   for _, np_type, start, stop in self._allocation.get(name, ()) if np_type is NPType.FNP2)

    @property
    def external_memory(self):
        """Bytes of weights held in external memory (FNP2 blocks) by the whole sequence."""
        return sum(self.layer_external_memory(layer.name) for layer in self.layers)

    def __repr__(self):
        size = f", program {self.program_size} bytes" if self.backend is BackendType.Hardware else ""
        return f"<Sequence {self.name} ({self.backend.name}){size}>"


@dataclasses.dataclass
class MappingState:
    """What `model._mapping` holds: the device, the options and the sequences."""

    device: Device
    mode: MapMode
    hw_only: bool
    single_np_layers: tuple
    sequences: tuple
    reasons: dict


def _software(model):
    return (Sequence(model, None, model.layers, BackendType.Software),)


def model_sequences(model):
    """Sequences of the current mapping; an unmapped model is one software sequence."""
    if not model.layers:
        return []
    if model._mapping is None:
        return list(_software(model))
    return list(model._mapping.sequences)


def _learning_layers(model):
    return (model.layers[-1].name,) if getattr(model, "_learning", None) is not None else ()


def map_model(model, device, hw_only=False, mode=None, single_np_layers=None):
    """Map `model` on `device` (None: back to the software backend).

    Args:
        model: the akida_core Model.
        device: a Device (AKD1000(), ...) or None.
        hw_only: require one hardware sequence holding every layer.
        mode: a MapMode (None: MapMode.AllNps).
        single_np_layers: names of layers that must stay on one NP (default: the learning layer).

    Raises:
        MappingError: no device with hw_only, IP version mismatch, or (hw_only) a layer that cannot
            be in the single hardware sequence; the message names the layer and the reason.
    """
    mode = MapMode.AllNps if mode is None else mode
    if not isinstance(mode, MapMode):
        raise MappingError(f"mode={mode!r} is not a MapMode; allowed: MapMode.AllNps, MapMode.HwPr, "
                           "MapMode.Minimal")
    if device is None:
        if hw_only:
            raise MappingError("Cannot map on hardware only without device. Hint: pass a device such as "
                               "AKD1000().")
        model._mapping = None
        return
    if not isinstance(device, Device):
        raise MappingError(f"device={device!r} is not a Device; use AKD1000(), AKD1500(), TwoNodesIPv1() or "
                           "create_device(...)")
    model._require_layers()
    if device.ip_version is not IpVersion.v1 or device.table is None:
        raise MappingError(f"Cannot map model: model IP version v1 does not match the device IP version "
                           f"{device.ip_version.name} ({device.version.name}). Hint: use an Akida 1.0 device "
                           "such as AKD1000().")
    single = tuple(_learning_layers(model) if single_np_layers is None else single_np_layers)
    plan, reasons = _plan(model, device, mode, single)
    if hw_only and (len(plan) != 1 or plan[0][0] is not BackendType.Hardware):
        if not reasons:
            raise MappingError(f"Cannot map model: none of its layers {[lay.name for lay in model.layers]} runs "
                               "on an NP. Hint: add an InputConvolutional, Convolutional or FullyConnected layer.")
        name = next(iter(reasons))
        raise MappingError(f"Cannot map layer '{name}'. {reasons[name]} Hint: map with hw_only=False to run the "
                           "model as several sequences, or change this layer.")
    sequences = tuple(Sequence(model, device, layers, backend, allocation)
                      for backend, layers, allocation in plan)
    model._mapping = MappingState(device, mode, bool(hw_only), single, sequences, reasons)
    if getattr(model._statistics, "_model", None) is None:
        model._statistics._model = model   # so statistics.estimates reports this mapping before inference


def mapping_reasons(model, device):
    """Why `map(device)` would put layers in software or start new sequences, without mapping.

    Args:
        model: the akida_core Model.
        device: an Akida 1.0 Device.

    Returns:
        {layer name: reason}, in layer order; empty when every layer maps in one hardware
        sequence (what `hw_only=True` needs; cnn2snn's checker asks this).
    """
    return _plan(model, device, MapMode.AllNps, tuple(_learning_layers(model)))[1]


def _plan(model, device, mode, single):
    """[(backend, layers, allocation)] and {layer name: why it is in software or starts a new sequence}."""
    table = device.table
    layers = model.layers
    reasons, needs = {}, {}
    for layer in layers:
        issue = layer_issue(layer, table)
        if issue is None:
            needs[layer.name], issue = layer_need(layer, table, layer.name in single)
        if issue is not None:
            reasons[layer.name] = issue
    _drop_trailing_max_pools(layers, reasons, table)

    def misfit(group):  # why a group does not fit (the messages); SequenceFit answers whether, faster
        return _allocation(device, group, needs, MapMode.Minimal)[1]

    def fit_of(group):
        fit = SequenceFit(device.mesh)
        for member in group:
            fit = fit and fit.extended(needs[member.name])
        return fit

    # `fit` is the state of `current`: growing it layer by layer costs one layer, not the whole group,
    # so a file with many layers and a big device cannot make loading (which maps again) hang.
    plan, current, fit = [], [], SequenceFit(device.mesh)
    for layer in layers:
        if layer.name in reasons:
            # A max-pooling layer before a software layer is itself software: `current` ends cleanly.
            _close(plan, device, current, needs, mode)
            plan.append((BackendType.Software, [layer], None))
            current, fit = [], SequenceFit(device.mesh)
            continue
        if current and np_kind(current[-1]) == "FNP" and np_kind(layer) == "CNP":
            cut = (f"A layer mapped on FNP cannot be directly followed by a layer mapped on CNP "
                   f"('{current[-1].name}' is on an FNP).")
        elif (bigger := fit.extended(needs[layer.name])) is None:
            if not current:
                reasons[layer.name] = f"The layer does not fit the device: {misfit([layer])}"
                plan.append((BackendType.Software, [layer], None))
                continue
            cut = f"The device runs out of NPs: {misfit(current + [layer])}"
        else:
            current.append(layer)
            fit = bigger
            continue
        carried = []   # a max-pooling layer cannot end a sequence: it moves to the next one
        while current and has_max_pool(current[-1], device.table):
            carried.insert(0, current.pop())
        _close(plan, device, current, needs, mode)
        current = carried + [layer]
        reasons.setdefault(current[0].name, cut)
        fit = fit_of(current)
        if fit is None:
            alone = misfit([layer])
            reasons[layer.name] = f"The layer does not fit the device: {alone}" if alone else \
                f"The device runs out of NPs: {misfit(current)}"
            for moved in carried:
                reasons[moved.name] = (f"A layer with max pooling cannot end a sequence: the next layer "
                                       f"'{layer.name}' cannot be mapped with it.")
            plan.extend((BackendType.Software, [moved], None) for moved in current)
            current, fit = [], SequenceFit(device.mesh)
    _close(plan, device, current, needs, mode)
    return _merge_software(plan), _ordered(reasons, layers)


def _close(plan, device, layers, needs, mode):
    """Append the hardware sequence of `layers` (they fit: checked while growing it)."""
    if layers:
        allocation, issue = _allocation(device, layers, needs, mode)
        assert issue is None, issue
        plan.append((BackendType.Hardware, list(layers), allocation))


def _drop_trailing_max_pools(layers, reasons, table):
    """A max-pooling CNP layer must be followed by a hardware layer on an NP its table row allows
    (`LayerLimits.max_pool_successor_ok`, also read by cnn2snn's checker), else it runs in software."""
    changed = True
    while changed:
        changed = False
        for i, layer in enumerate(layers):
            if layer.name in reasons or not has_max_pool(layer, table):
                continue
            row = table.limits(layer.layer_type)
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if nxt is None:
                why = "it is the last layer of the model"
            elif nxt.name in reasons:
                why = f"the next layer '{nxt.name}' cannot be mapped"
            elif not row.max_pool_successor_ok(np_kind(nxt)):
                why = f"the next layer '{nxt.name}' is {nxt.layer_type.name}"
            else:
                continue
            allowed = ", ".join(row.max_pool_successor_nps)
            reasons[layer.name] = (f"A layer with max pooling cannot end a sequence: it must be followed by a "
                                   f"layer on a {allowed}, but {why}.")
            changed = True


def _allocation(device, layers, needs, mode):
    pairs = [(layer.name, needs[layer.name]) for layer in layers]
    return allocate(pairs, device.mesh, mode is not MapMode.Minimal)


def _merge_software(plan):
    """Consecutive software layers form one sequence; a hardware sequence needs an NP layer."""
    merged = []
    for backend, layers, allocation in plan:
        if backend is BackendType.Hardware and all(np_kind(layer) == "" for layer in layers):
            backend, allocation = BackendType.Software, None
        if merged and backend is BackendType.Software and merged[-1][0] is BackendType.Software:
            merged[-1] = (backend, merged[-1][1] + list(layers), None)
        else:
            merged.append((backend, list(layers), allocation))
    return merged


def _ordered(reasons, layers):
    return {layer.name: reasons[layer.name] for layer in layers if layer.name in reasons}

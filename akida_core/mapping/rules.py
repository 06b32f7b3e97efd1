"""Mapping rules: can a layer run on a device, and how many NPs of which type does it need.

Every limit is read from the device's constraints table (`akida_core.hardware`); nothing here
repeats a hardware number. The per-NP memory model (docs/mapping.md):

* A CNP or FNP3 has `table.np_weight_memory_bits` of weight memory.
* Convolutional: one filter takes kh·kw·cin·weights_bits bits and must also pass the probed per-filter
  limit (`max_input_channels`); an NP holds as many whole filters as its memory takes.
* SeparableConvolutional: every NP of the layer holds the whole depthwise kernel (kh·kw·cin·bits,
  each pointwise filter needs every depthwise channel) plus cin·bits per pointwise filter.
* FullyConnected: inputs·weights_bits bits per unit. It takes one FNP3 when it fits one; else one FNP2
  (weights in external memory) when the device has one free; else its units are split over FNP3s.
* A layer's filters may be split over NPs (never more NPs than filters), except a layer with
  stride > 1 and max pooling, and the edge-learning layer, which stay on one NP.
"""
import dataclasses

from .devices import NPType
from ..enums import LayerType, PoolType

CNP_KINDS = (LayerType.Convolutional, LayerType.SeparableConvolutional)


@dataclasses.dataclass(frozen=True)
class Need:
    """NP demand of one layer: kind ("HRC", "CNP", "FNP" or "" for InputData), filters, capacity."""

    kind: str
    filters: int = 0
    per_np: int = 0          # filters (units) one NP can hold
    single_np: bool = False  # the layer must stay on one NP
    fc_bits: int = 0         # FullyConnected weight bits (for FNP2 external memory)

    @property
    def min_nps(self):
        """Fewest NPs (of the on-chip kind) the layer fits in."""
        return -(-self.filters // self.per_np) if self.per_np else 0


def np_kind(layer):
    """"HRC", "CNP", "FNP" or "" (InputData) for a layer kind."""
    return {LayerType.InputConvolutional: "HRC", LayerType.Convolutional: "CNP",
            LayerType.SeparableConvolutional: "CNP", LayerType.FullyConnected: "FNP"}.get(layer.layer_type, "")


def has_max_pool(layer, table):
    """Whether the layer max-pools and its table row says such a layer cannot end a sequence."""
    row = table.limits(layer.layer_type)
    return row is not None and row.max_pool_needs_successor and \
        getattr(layer.params, "pool_type", None) == PoolType.Max


def _allowed(values):
    return ", ".join(str(getattr(v, "name", v)) for v in values) or "none"


def _conv_issue(layer, row, table):
    p = layer.params
    kh, kw = p.kernel_size
    sh, sw = p.kernel_stride
    if kh != kw and row.square_kernel:
        return f"Kernel size {kh}x{kw} must be square on {table.name}."
    if kh not in row.kernel_sizes:
        return f"Kernel size {kh} is not supported; allowed: {_allowed(row.kernel_sizes)}."
    if sh != sw and not row.independent_strides:
        return f"Strides {sh}x{sw} must be equal on {table.name}."
    for stride in (sh, sw):
        if stride not in row.strides:
            return f"Stride {stride} is not supported; allowed: {_allowed(row.strides)}."
        if kh not in row.allowed_kernels_for_stride(stride):
            return (f"Stride {stride} needs a kernel size in {_allowed(row.allowed_kernels_for_stride(stride))}; "
                    f"got {kh}.")
    if p.padding not in row.paddings:
        return f"Padding {p.padding.name} is not supported; allowed: {_allowed(row.paddings)}."
    if p.pool_type not in row.pool_types:
        return f"Pooling {p.pool_type.name} is not supported; allowed: {_allowed(row.pool_types)}."
    if p.pool_type == PoolType.Max:
        for size, stride in zip(p.pool_size, p.pool_stride):
            if size not in row.max_pool_sizes:
                return f"Max pooling size {size} is not supported on {table.name}; allowed: " \
                       f"{_allowed(row.max_pool_sizes)}."
            if (stride != size) if row.max_pool_stride_rule == "equal" else (stride > size):
                rule = "equal" if row.max_pool_stride_rule == "equal" else "at most"
                return f"Max pooling stride {stride} must be {rule} the pool size {size}."
    if p.pool_type == PoolType.Average:
        rows = -(-layer.input_dims[0] // sh)   # CNP padding is Same: rows = ceil(height / stride)
        if row.gap_min_rows is not None and rows < row.gap_min_rows:
            return f"Global average pooling needs at least {row.gap_min_rows} rows of input; got {rows}."
        if row.gap_max_height is not None and rows > row.gap_max_height:
            return f"Global average pooling input height {rows} exceeds {row.gap_max_height}."
    if row.input_channels and layer.input_dims[2] not in row.input_channels:
        return f"Input channels {layer.input_dims[2]} not supported; allowed: {_allowed(row.input_channels)}."
    if row.max_input_width is not None and layer.input_dims[1] > row.max_input_width:
        return f"The maximum input second dimension size is {row.max_input_width}; got {layer.input_dims[1]}."
    if layer.layer_type == LayerType.Convolutional:
        limit = row.max_input_channels(kh, p.weights_bits)
        if limit is not None and layer.input_dims[2] > limit:
            return (f"Filter size is too big to fit in a CNP: {kh}x{kh}x{layer.input_dims[2]} at "
                    f"{p.weights_bits} bits; at most {limit} input channels.")
    return None


def _neuron_issue(layer, row):
    if row.activation_required and not layer.params.activation:
        return "The layer must have its activation enabled to be mapped."
    if not layer.params.activation:
        return None
    if layer.params.act_bits not in row.act_bits:
        return f"Activation bits {layer.params.act_bits} not supported; allowed: {_allowed(row.act_bits)}."
    threshold = layer._values["threshold"]
    if row.threshold_range is not None:
        low, high = row.threshold_range
        if threshold.min() < low or threshold.max() > high:
            return (f"Thresholds span [{threshold.min()}, {threshold.max()}]; the {row.threshold_bits}-bit "
                    f"register holds [{low}, {high}].")
    act_step = layer._values["act_step"]
    if row.max_act_step is not None and act_step.max() >= row.max_act_step:
        return f"act_step {act_step.max()} must be < {row.max_act_step:g} (register limit)."
    return None


def layer_issue(layer, table):
    """Why `layer` cannot run on a device with this constraints table, or None when it can.

    Args:
        layer: a built akida_core layer.
        table: the device's HardwareTarget.

    Returns:
        A sentence naming the value found and what is allowed, or None.
    """
    row = table.limits(layer.layer_type)
    kind = layer.layer_type.name
    if row is None:
        return f"{kind} layers are not supported on {table.name}."
    if layer.layer_type == LayerType.InputData:
        allowed = table.model_input_bits.get(LayerType.InputData, row.input_bits)
        if layer.params.input_bits not in allowed:
            return f"Input bits {layer.params.input_bits} not supported; allowed: {_allowed(allowed)}."
        return None
    if layer.input_bits not in row.input_bits:
        return f"Input bits {layer.input_bits} not supported; allowed: {_allowed(row.input_bits)}."
    weights_bits = row.map_weights_bits or row.weights_bits
    if layer.params.weights_bits not in weights_bits:
        return f"Weights bits {layer.params.weights_bits} not supported; allowed: {_allowed(weights_bits)}."
    filters = layer.params.units if layer.layer_type == LayerType.FullyConnected else layer.params.filters
    if row.max_filters is not None and filters > row.max_filters:
        return f"num_neurons {filters} must be between 1 and {row.max_filters}."
    if layer.layer_type == LayerType.FullyConnected:
        inputs = layer.input_size
        if row.max_inputs is not None and inputs > row.max_inputs:
            return f"The flattened input size {inputs} exceeds {row.max_inputs}."
    else:
        issue = _conv_issue(layer, row, table)
        if issue:
            return issue
    return _neuron_issue(layer, row)


def layer_need(layer, table, single_np=False):
    """NP demand of a layer under the per-NP memory model (module docstring).

    Args:
        layer: a built layer that passed `layer_issue`.
        table: the device's HardwareTarget (for `np_weight_memory_bits`).
        single_np: force the layer onto one NP (edge learning).

    Returns:
        (Need, issue): issue is None, or why the layer cannot fit an NP.
    """
    kind = np_kind(layer)
    p = layer.params
    memory = table.np_weight_memory_bits
    if kind in ("", "HRC"):
        return Need(kind, getattr(p, "filters", 0), getattr(p, "filters", 0), True), None
    if kind == "FNP":
        unit_bits = layer.input_size * p.weights_bits
        per_np = memory // unit_bits
        return Need(kind, p.units, per_np, single_np, unit_bits * p.units), None
    cin = layer.input_dims[2]
    kh, kw = p.kernel_size
    if layer.layer_type == LayerType.SeparableConvolutional:
        per_np = max(memory - kh * kw * cin * p.weights_bits, 0) // (cin * p.weights_bits)
    else:
        per_np = memory // (kh * kw * cin * p.weights_bits)
    if per_np == 0:
        return Need(kind, p.filters, 0), (f"Filter size is too big to fit in a CNP: one filter needs more than "
                                          f"the {memory}-bit NP weight memory.")
    no_split = single_np or (max(p.kernel_stride) > 1 and p.pool_type == PoolType.Max)
    need = Need(kind, p.filters, per_np, no_split)
    if no_split and need.min_nps > 1:
        why = "edge learning" if single_np else "convolution stride > 1 and max pooling"
        return need, (f"Cannot have {why} if the layer is mapped on multiple NPs: it needs {need.min_nps} "
                      f"NPs of {memory} bits.")
    return need, None


def _split(total, parts):
    """Contiguous (start, stop) ranges splitting `total` items over `parts` as evenly as possible."""
    q, r = divmod(total, parts)
    bounds, start = [], 0
    for k in range(parts):
        stop = start + q + (k < r)
        bounds.append((start, stop))
        start = stop
    return bounds


def allocate(needs, mesh, all_nps):
    """Assign NPs to the layers of one hardware sequence.

    Args:
        needs: list of (layer name, Need) in sequence order.
        mesh: the device Mesh.
        all_nps: True for MapMode.AllNps (spread filters over the most NPs), False for Minimal.

    Returns:
        (allocation, issue): allocation maps layer name -> list of (NP, NPType, start, stop); issue is
        None, or why the sequence does not fit the device.
    """
    free = list(mesh.nps)
    out = {}
    for name, need in needs:
        if need.kind == "HRC":
            if mesh.hrc is None:
                return None, "the device has no HRC for an InputConvolutional layer."
            out[name] = [(mesh.hrc, NPType.HRC, 0, need.filters)]
        elif need.kind == "FNP":
            got = _allocate_fnp(need, free)
            if got is None:
                return None, _fnp_shortage(need, mesh)
            out[name] = got
    cnp_layers = [(name, need) for name, need in needs if need.kind == "CNP"]
    cnp_free = sorted((np_ for np_ in free if np_.can(NPType.CNP1)),
                      key=lambda np_: (np_.can(NPType.FNP2) or np_.can(NPType.FNP3), np_.ident))
    counts = _cnp_counts(cnp_layers, len(cnp_free), all_nps)
    if counts is None:
        wanted = sum(need.min_nps for _, need in cnp_layers)
        return None, f"the sequence needs {wanted} CNPs but the device has {len(cnp_free)} free."
    position = 0
    for (name, need), count in zip(cnp_layers, counts):
        out[name] = [(np_, NPType.CNP1, start, stop) for np_, (start, stop)
                     in zip(cnp_free[position:position + count], _split(need.filters, count))]
        position += count
    return out, None


class SequenceFit:
    """Whether a group of layers, grown one layer at a time, fits a mesh (MapMode.Minimal).

    `extended(need)` gives the state of the group plus one layer, or None when that group does not
    fit: the same verdict as `allocate(needs + [need], mesh, all_nps=False)`, in time for one layer
    instead of the whole group. FNPs are taken in layer order exactly as `allocate` takes them, and the
    CNP layers need their Minimal counts among the CNP-capable NPs left free.
    """

    def __init__(self, mesh, free=None, cnp_free=None, cnp_wanted=0):
        self._mesh = mesh
        self._free = list(mesh.nps) if free is None else free
        self._cnp_free = sum(np_.can(NPType.CNP1) for np_ in self._free) if cnp_free is None else cnp_free
        self._cnp_wanted = cnp_wanted

    def extended(self, need):
        """The state with `need` added, or None if the group no longer fits."""
        free, cnp_free, cnp_wanted = self._free, self._cnp_free, self._cnp_wanted
        if need.kind == "HRC" and self._mesh.hrc is None:
            return None
        if need.kind == "FNP":
            free = list(free)
            got = _allocate_fnp(need, free)
            if got is None:
                return None
            cnp_free -= sum(np_.can(NPType.CNP1) for np_, *_ in got)
        elif need.kind == "CNP":
            # The Minimal count of _cnp_counts: the common cap there is >= this layer's filters.
            cnp_wanted += 1 if need.single_np else -(-need.filters // min(need.filters, need.per_np))
        if cnp_wanted > cnp_free:
            return None
        return SequenceFit(self._mesh, free, cnp_free, cnp_wanted)


def _allocate_fnp(need, free):
    def take(np_type, count):  # the first `count` free NPs able to act as np_type, in mesh order
        positions = []
        for position, np_ in enumerate(free):
            if len(positions) == count:
                break
            if np_.can(np_type):
                positions.append(position)
        if len(positions) < count:
            return None
        chosen = [free[position] for position in positions]
        for position in reversed(positions):
            del free[position]
        return [(np_, np_type, start, stop) for np_, (start, stop) in zip(chosen, _split(need.filters, count))]
    if need.min_nps == 1:
        got = take(NPType.FNP3, 1)
        if got:
            return got
    got = take(NPType.FNP2, 1)
    if got or need.single_np or need.per_np == 0:
        return got
    return take(NPType.FNP3, need.min_nps)


def _fnp_shortage(need, mesh):
    return (f"not enough FNPs: the layer needs one FNP2 (external memory) or {need.min_nps or 'more'} FNP3; "
            f"the device has {mesh.count(NPType.FNP2)} FNP2 and {mesh.count(NPType.FNP3)} FNP3 "
            "(some may be used by other layers of the sequence).")


def _cnp_counts(layers, available, all_nps):
    """NPs per CNP layer: Minimal = fewest; AllNps = most NPs that fit (filters spread, in layer order)."""
    def count(need, cap):
        return 1 if need.single_np else -(-need.filters // min(cap, need.per_np))

    def counts_for(cap):
        return [count(need, cap) for _, need in layers]
    biggest = max((need.filters for _, need in layers), default=1)
    if sum(counts_for(biggest)) > available:
        return None
    if not all_nps:
        return counts_for(biggest)
    # count() only shrinks as the per-NP filter cap grows: binary-search the smallest common cap that
    # fits, then give the NPs left over to the layers in order by lowering each one's own cap.
    cap = _smallest(1, biggest, lambda c: sum(counts_for(c)) <= available)
    counts = counts_for(cap)
    for i, (_, need) in enumerate(layers):
        others = sum(counts) - counts[i]
        own = _smallest(1, cap, lambda c: others + count(need, c) <= available)
        counts[i] = count(need, own)
    return counts


def _smallest(low, high, fits):
    """Smallest value in [low, high] for which the monotone predicate `fits` holds (`fits(high)` is True)."""
    while low < high:
        mid = (low + high) // 2
        if fits(mid):
            high = mid
        else:
            low = mid + 1
    return low

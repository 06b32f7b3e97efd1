"""Akida 2.0 mapping, search: analyse a model on a device once, plan it for a filters cap, pick the cap.

`Analysis(model, device, width)` runs the per-layer checks, the graph rules and the NP demands
once; `Analysis.plan(cap, prefer_fnp2)` adds what depends on the cap (a layer too big for the
device even alone), plans the sequences and verifies that every skip connection sits in one pass.
`search(analysis, mode, max_filters)` implements the map modes (mapping_v2 docstring).
"""
from ..devices import NPType
from ...enums import LayerType
from ..mapper import MapMode
from .checks import layer_checks, layer_demand
from .graph import find_skips, max_pool_issues, outbounds_of
from .plan import Context, PlannedSequence, plan, slot_groups


def device_issues(layer, demand, mesh, cap):
    """Why a layer that passed its checks cannot fit this device even alone (a list, maybe empty)."""
    component, kind = demand.component, layer.layer_type.name
    if component == "HRC" and mesh.hrc is None:
        return [f"The device has no HRC for {kind} '{layer.name}'."]
    if component in ("CNP1", "TNP_B", "TNP_R"):
        available = mesh.count(NPType[component])
        needed = demand.nps(cap)
        if available == 0 and component == "TNP_B":
            return [f"The next {kind} {layer.name} can't be mapped in the current pass: the device has no TNP_B."]
        if needed > available:
            return [f"Not enough hardware components of type {component} available. {needed} are needed but "
                    f"{available} are available."]
    if component == "FNP":
        fnp2, fnp3 = mesh.count(NPType.FNP2), mesh.count(NPType.FNP3)
        if not demand.fits_fnp3 and not fnp2:
            return ["Its weights need external memory (an FNP2) but the device has no FNP2."]
        if not fnp2 + fnp3:
            return ["The device has no FNP for a Dense1D layer."]
    if demand.fifo and mesh.skip_channels < 1:
        return [f"The next {kind} {layer.name} can't be mapped in the current pass: its FIFO needs a skip-DMA "
                "channel and the device has none."]
    return []


class Analysis:
    """The cap-independent facts of a model on a device (see the module docstring)."""

    def __init__(self, model, device, width):
        table, mesh = device.table, device.mesh
        self.device, self.table = device, table
        self.all_layers = model.layers
        self.layers = [lay for lay in self.all_layers if lay.layer_type != LayerType.InputData]
        self.outbounds = outbounds_of(self.all_layers)
        self.issues = {}
        for layer in self.layers:
            reasons = layer_checks(layer, table)
            if reasons:
                self.issues[layer.name] = reasons
        self.demands = {lay.name: layer_demand(lay, table, mesh, width) for lay in self.layers
                        if lay.name not in self.issues}
        self.skips, self.graph = find_skips(self.all_layers, self.outbounds, self.issues, table)
        sources = {}
        for skip in self.skips:
            sources[skip.source] = sources.get(skip.source, 0) + 1
        self.context = dict(
            groups=slot_groups(mesh), has_hrc=mesh.hrc is not None, channels=mesh.skip_channels,
            no_pass_start=table.no_pass_start, forbidden=table.forbidden_successions,
            inbounds={lay.name: [i.name for i in lay.inbounds] for lay in self.all_layers},
            max_pool={lay.name for lay in self.all_layers if getattr(lay.params, "pool_type", None) is not None
                      and lay.params.pool_type.name == "Max"},
            skip_sources=sources, spans=[(s.start, s.end) for s in self.skips],
            index={lay.name: i for i, lay in enumerate(self.all_layers)},
            kinds={lay.name: lay.layer_type for lay in self.all_layers})

    def plan(self, cap, prefer_fnp2):
        """(sequences, reasons, context): PlannedSequence list and {layer name: [reasons]}.

        A broken skip-connection rule, or a skip connection that does not end up in one pass, leaves
        the whole model in software (as the vendor does).
        """
        names = [lay.name for lay in self.layers]
        if self.graph:
            return [PlannedSequence(False, names)], {**self.graph, **self.issues}, None
        issues = {name: list(reasons) for name, reasons in self.issues.items()}
        for layer in self.layers:
            if layer.name not in issues:
                extra = device_issues(layer, self.demands[layer.name], self.device.mesh, cap)
                if extra:
                    issues[layer.name] = extra
        max_pool_issues(self.all_layers, self.outbounds, issues, self.table)
        ctx = Context(demands=self.demands, cap=cap, prefer_fnp2=prefer_fnp2, **self.context)
        sequences, cuts = plan(ctx, names, issues)
        placed = {}
        for k, sequence in enumerate(sequences):
            if sequence.hardware:
                for p, fit in enumerate(sequence.passes):
                    placed.update({name: (k, p) for name in fit.layers})
        for skip in self.skips:
            where = placed.get(skip.source)
            if where is None or where != placed.get(skip.target) or where != placed.get(skip.merge):
                broken = [f"'{n}': {issues[n][0]}" for n in (skip.source, skip.target) if issues.get(n)]
                why = (f"The skip connection '{skip.source}' -> '{skip.merge}' -> '{skip.target}' cannot be mapped: "
                       "its layers must run in one pass of one hardware sequence, but "
                       + ("; ".join(broken) if broken else "they do not fit one pass of the device together") + ".")
                return [PlannedSequence(False, names)], {skip.merge: [why], **issues}, None
        reasons = dict(issues)
        for name, why in cuts.items():
            reasons.setdefault(name, [why])
        return sequences, reasons, ctx


def plan_key(sequences, mode):
    """Ranking of a plan: more layers mapped > fewer sequences > fewer passes (not HwPr) > more NPs."""
    hardware = [s for s in sequences if s.hardware]
    mapped = sum(len(s.names) for s in hardware)
    passes = sum(len(s.passes) for s in hardware)
    nps = sum(count for s in hardware for fit in s.passes for _, count in fit.types.values())
    if mode is MapMode.HwPr:
        return mapped, -len(sequences), nps
    return mapped, -len(sequences), -passes, nps


def search(analysis, mode, max_filters, hw_only=False):
    """(cap, (sequences, reasons, context)) chosen by the map mode.

    Minimal: one plan with `max_filters`. AllNps / HwPr: binary search of the smallest cap keeping
    the ranking of the `max_filters` plan (without its NP count), keeping the best plan seen. With
    `hw_only`, a `max_filters` plan that is not one hardware sequence is final (its reasons are the
    refusal: spreading filters over more NPs cannot make a model fit).
    """
    prefer_fnp2 = mode is MapMode.AllNps
    base = analysis.plan(max_filters, prefer_fnp2)
    whole = len(base[0]) == 1 and base[0][0].hardware and len(base[0][0].names) == len(analysis.layers)
    if mode is MapMode.Minimal or base[2] is None or (hw_only and not whole):
        return max_filters, base
    target = plan_key(base[0], mode)[:-1]
    best_cap, best = max_filters, base
    low, high = 1, max_filters
    while low < high:
        mid = (low + high) // 2
        result = analysis.plan(mid, prefer_fnp2)
        key = plan_key(result[0], mode)
        if result[2] is not None and key[:-1] == target:
            high = mid
            if key > plan_key(best[0], mode):
                best_cap, best = mid, result
        else:
            low = mid + 1
    return best_cap, best

"""Akida 2.0 mapping, planning: layers -> hardware sequences cut into passes, and software sequences.

Layers are taken in model order. A layer joins the current pass when the pass still fits the mesh
(`PassFit`: every NP slot acts as one type; skip-DMA channels = FIFO layers + skip connections
started in the pass); else a new pass of the same sequence starts (every pass may reuse all NPs).
A pass cannot start with an FNP or TNP_B layer, a 0-NP layer, right after a max-pooling layer, or
inside a skip connection: the cut then moves back. When no pass can take the layer, the sequence
ends (its last pass, when it is not its first, becomes the next sequence, as the vendor does) and
a new sequence starts. A layer with issues runs in software. `plan` is pure: names in, names out.
"""
import dataclasses

from ...enums import LayerType

_TYPE_ORDER = ("FNP2", "FNP3", "TNP_R", "TNP_B", "CNP1", "HRC")


def slot_groups(mesh):
    """[(type names, count)] of the mesh's NPs, fewest capabilities first (the greedy order)."""
    groups = {}
    for np_ in mesh.nps:
        key = tuple(sorted(t.name for t in np_.types))
        groups[key] = groups.get(key, 0) + 1
    return sorted(groups.items(), key=lambda item: (len(item[0]), item[0]))


def fits(groups, counts, has_hrc):
    """Whether type counts {type name: n} fit the slots (each slot acts as one type)."""
    if counts.get("HRC", 0) > (1 if has_hrc else 0):
        return False
    free = [count for _, count in groups]
    for type_name in _TYPE_ORDER[:-1]:
        wanted = counts.get(type_name, 0)
        for k, (types, _) in enumerate(groups):
            if wanted and type_name in types:
                taken = min(wanted, free[k])
                free[k] -= taken
                wanted -= taken
        if wanted:
            return False
    return True


@dataclasses.dataclass
class Context:
    """What planning reads: demands, skips, per-layer facts and the device."""

    demands: dict            # name -> Demand
    cap: int                 # filters per NP at most
    prefer_fnp2: bool        # AllNps puts a Dense1D on FNP2 when it can
    groups: list
    has_hrc: bool
    channels: int            # skip-DMA channels of the device
    no_pass_start: tuple
    forbidden: tuple         # (component, component) successions
    inbounds: dict           # name -> inbound names
    max_pool: set            # names of max-pooling layers
    skip_sources: dict       # name -> number of skip connections it stores
    spans: list              # (start index, end index) of each skip connection
    index: dict              # name -> model index
    kinds: dict              # name -> LayerType


class PassFit:
    """The layers of one pass with their types and counts; `add` keeps it within the mesh."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.layers = []
        self.types = {}      # name -> (type name or None, count)
        self.counts = {}
        self.channels = 0

    def _cost(self, name, type_name):
        demand = self.ctx.demands[name]
        channels = (1 if demand.fifo else 0) + self.ctx.skip_sources.get(name, 0)
        return type_name, demand.nps(self.ctx.cap), channels

    def _options(self, name):
        demand = self.ctx.demands[name]
        if demand.component == "FNP":
            if not demand.fits_fnp3:
                return ("FNP2",)
            return ("FNP2", "FNP3") if self.ctx.prefer_fnp2 else ("FNP3", "FNP2")
        return (None,) if demand.component == "none" else (demand.component,)

    def add(self, name):
        """Add a layer if the pass still fits; returns whether it was added."""
        for option in self._options(name):
            type_name, count, channels = self._cost(name, option)
            counts = dict(self.counts)
            if type_name is not None:
                counts[type_name] = counts.get(type_name, 0) + count
            if self.channels + channels <= self.ctx.channels and fits(self.ctx.groups, counts, self.ctx.has_hrc):
                self.layers.append(name)
                self.types[name] = (type_name, count)
                self.counts, self.channels = counts, self.channels + channels
                return True
        return False

    @classmethod
    def of(cls, ctx, names):
        """A pass holding `names`, or None when they do not fit together."""
        fit = cls(ctx)
        for name in names:
            if not fit.add(name):
                return None
        return fit


@dataclasses.dataclass
class PlannedSequence:
    """A planned sequence: hardware with passes (lists of PassFit), or software with layer names."""

    hardware: bool
    passes: list

    @property
    def names(self):
        """Layer names in order."""
        if self.hardware:
            return [name for fit in self.passes for name in fit.layers]
        return list(self.passes)


def _inside_skip(ctx, name):
    position = ctx.index[name]
    return any(start < position <= end for start, end in ctx.spans)


def can_start_sequence(ctx, name):
    """A sequence may start here: not a 0-NP layer, not after a max-pooling layer, not inside a skip."""
    if ctx.demands[name].component == "none" and ctx.kinds[name] != LayerType.Quantizer:
        return False
    if any(inbound in ctx.max_pool for inbound in ctx.inbounds[name]):
        return False
    return not _inside_skip(ctx, name)


def can_start_pass(ctx, name):
    """A later pass may start here: a sequence start that is not an FNP or TNP_B layer."""
    return ctx.demands[name].component not in ctx.no_pass_start and can_start_sequence(ctx, name)


def _split_point(ctx, names, allowed):
    """Index in `names` (> 0) of the last layer where `allowed` lets a new pass / sequence start, or None."""
    for position in range(len(names) - 1, 0, -1):
        if allowed(ctx, names[position]):
            return position
    return None


def _tied_group(ctx, names):
    """The layers that would have to share a new pass with the last of `names` (all when none can start one)."""
    position = _split_point(ctx, names, can_start_pass)
    return names if position is None else names[position:]


def shortage(ctx, names):
    """(layer, reason) for layers that do not fit one pass: the component type short, needed vs available."""
    fit = PassFit(ctx)
    for name in names:
        if not fit.add(name):
            break
    else:
        return names[-1], "It does not fit the device with the layers of its pass."
    counts = dict(fit.counts)
    option = fit._options(name)[0]
    type_name, count, channels = fit._cost(name, option)
    if fit.channels + channels > ctx.channels:
        first = ("A TNP-B layer cannot be the first layer of a pass. " if type_name == "TNP_B" else "")
        return name, (f"{first}Not enough skip-DMA channels available. {fit.channels + channels} are needed but "
                      f"{ctx.channels} are available (layers that must share a pass: {', '.join(names)}).")
    counts[type_name] = counts.get(type_name, 0) + count
    types = dict(fit.types, **{name: (type_name, count)})

    def available(kind):   # most NPs of `kind` that fit beside the other types' counts
        n = counts[kind]
        while n > 0 and not fits(ctx.groups, {**counts, kind: n}, ctx.has_hrc):
            n -= 1
        return n
    kind = max((k for k in counts if k and counts[k] and available(k) < counts[k]),
               key=lambda k: (counts[k], k == type_name), default=type_name)
    biggest = max((n for n in names if types.get(n, (None,))[0] == kind), key=lambda n: types[n][1], default=name)
    return biggest, (f"Not enough hardware components of type {kind} available. {counts[kind]} are needed but "
                     f"{available(kind)} are available (layers that must share a pass: {', '.join(names)}).")


def _try_new_pass(ctx, sequence, name):
    last = sequence.passes[-1]
    names = last.layers + [name]
    position = _split_point(ctx, names, can_start_pass)
    if position is None:
        return False
    new = PassFit.of(ctx, names[position:])
    if new is None:
        return False
    sequence.passes[-1] = PassFit.of(ctx, names[:position])
    sequence.passes.append(new)
    return True


def _forbidden_after(ctx, sequence, name):
    """Why `name` cannot follow its inbound inside `sequence` (FNP then CNP), or None."""
    component = ctx.demands[name].component
    mine = {layer for fit in sequence.passes for layer in fit.layers}
    for inbound in ctx.inbounds[name]:
        if inbound in mine:
            pair = (ctx.demands[inbound].component, component)
            if pair in ctx.forbidden:
                return (f"A layer mapped on {pair[0]} cannot be directly followed by a layer mapped on {pair[1]} "
                        f"due to incompatible data processing requirements ('{inbound}' is on an {pair[0]}).")
    return None


def plan(ctx, names, issues):
    """Plan the sequences of the layers `names` (model order, without InputData).

    Args:
        ctx: the Context.
        names: layer names.
        issues: name -> list of reasons; a layer with reasons runs in software.

    Returns:
        (sequences, cuts): PlannedSequence list, and {layer name: why a new sequence starts there}.
    """
    sequences, cuts = [], {}
    current = None

    def close():
        nonlocal current
        if current is not None:
            sequences.append(current)
        current = None

    def software(layer_names):
        if sequences and not sequences[-1].hardware:
            sequences[-1].passes.extend(layer_names)
        else:
            sequences.append(PlannedSequence(False, list(layer_names)))

    for name in names:
        if issues.get(name):
            close()
            software([name])
            continue
        if ctx.demands[name].component == "none" and ctx.kinds[name] != LayerType.Quantizer:
            if current is None:
                software([name])      # "Can't start a sequence with a Dequantizer" (nor a merge)
            else:
                current.passes[-1].add(name)
            continue
        if current is not None:
            why = _forbidden_after(ctx, current, name)
            if why:
                cuts[name] = why
                close()
        if current is None:
            current = PlannedSequence(True, [PassFit.of(ctx, [name])])
            continue
        if current.passes[-1].add(name) or _try_new_pass(ctx, current, name):
            continue
        short, why = shortage(ctx, _tied_group(ctx, current.passes[-1].layers + [name]))
        cuts[short] = why
        if len(current.passes) > 1:
            moved = current.passes.pop()
            close()
            current = PlannedSequence(True, [moved])
            if current.passes[-1].add(name) or _try_new_pass(ctx, current, name):
                continue
        last = current.passes[-1].layers + [name]
        position = _split_point(ctx, last, can_start_sequence)
        group = PassFit.of(ctx, last[position:]) if position is not None else None
        if group is None:
            # Nothing can be cut off: the layers tied to this one (skip, max pooling) go to software.
            tied = last if position is None else last[position:]
            for layer in tied:
                cuts.pop(layer, None)
                issues.setdefault(layer, []).append(
                    f"Does not fit the device together with the layers it is tied to ({', '.join(tied)}).")
            keep = [] if position is None else last[:position]
            current.passes[-1] = PassFit.of(ctx, keep) if keep else None
            if current.passes[-1] is None:
                current.passes.pop()
            if not current.passes:
                current = None
            close()
            software(tied)
            continue
        current.passes[-1] = PassFit.of(ctx, last[:position])
        close()
        current = PlannedSequence(True, [group])
    close()
    return _only_np_sequences(ctx, sequences), cuts


def _only_np_sequences(ctx, sequences):
    """A hardware sequence without an NP layer (a lone Quantizer) runs in software; software runs merge."""
    out = []
    for sequence in sequences:
        if sequence.hardware and all(ctx.demands[n].component == "none" for n in sequence.names):
            sequence = PlannedSequence(False, sequence.names)
        if out and not sequence.hardware and not out[-1].hardware:
            out[-1].passes.extend(sequence.passes)
        else:
            out.append(sequence)
    return out

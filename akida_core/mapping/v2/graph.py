"""Akida 2.0 mapping, graph rules: skip connections (Add / Concatenate), outbounds, max-pool successors.

A skip connection is a merge layer M (Add or Concatenate, mapped with 0 NPs) whose two inbounds
come from a branch. The inbound computed first is kept in a skip-DMA channel (a SKIP_DMA_STORE on
it) and read back by the one layer after M, which must be a CNP layer (a SKIP_DMA_LOAD on it). The
store, the merge and the load belong to one pass (mapping-v2.md §5). When a skip connection breaks a
rule, the vendor leaves the whole model in software; so do we (`graph_issues`).
"""
import dataclasses

from ...enums import LayerType, PoolType
from .checks import FIFO_KINDS, MERGE_KINDS

CNP_KINDS = (LayerType.Conv2D, LayerType.DepthwiseConv2D, LayerType.Conv2DTranspose,
             LayerType.DepthwiseConv2DTranspose)
MERGE_INBOUND_KINDS = CNP_KINDS + (LayerType.InputConv2D,) + MERGE_KINDS
"""'Inbounds must be of types Conv, Add or Concat.'"""


@dataclasses.dataclass(frozen=True)
class Skip:
    """One skip connection: `merge`, the stored inbound `source` and the loading layer `target` (names)."""

    merge: str
    source: str
    target: str
    start: int   # index of source in the model's layers
    end: int     # index of target


def outbounds_of(layers):
    """Layer name -> the distinct layers it feeds, in model order."""
    out = {layer.name: [] for layer in layers}
    for layer in layers:
        for inbound in dict.fromkeys(layer.inbounds):
            out[inbound.name].append(layer)
    return out


def _kinds(layers):
    return ", ".join(f"{lay.layer_type.name} '{lay.name}'" for lay in layers)


def find_skips(layers, outbounds, issues, table):
    """The skip connections, and every broken rule as {layer name: [reasons]} (whole model in software).

    Args:
        layers: the model's layers in order.
        outbounds: `outbounds_of(layers)`.
        issues: per-layer hardware issues (layer name -> list); a merge's CNP outbound must have none.
        table: the HardwareTargetV2 (max outbounds, temporal layers with skips).
    """
    index = {layer.name: i for i, layer in enumerate(layers)}
    skips, broken = [], {}
    for layer in layers:
        fed = outbounds[layer.name]
        if table.max_outbounds is not None and len(fed) > table.max_outbounds:
            broken.setdefault(layer.name, []).append(
                f"A layer may feed at most {table.max_outbounds} layers on hardware (got {len(fed)}: {_kinds(fed)}; "
                "the vendor runtime crashes on this graph).")
        if layer.layer_type not in MERGE_KINDS:
            continue
        reasons = broken.setdefault(layer.name, [])
        for inbound in dict.fromkeys(layer.inbounds):
            if inbound.layer_type not in MERGE_INBOUND_KINDS:
                reasons.append(f"Inbounds must be of types Conv, Add or Concat (got {inbound.layer_type.name} "
                               f"'{inbound.name}').")
        if not fed:
            reasons.append(f"Bad mapping on skip connection: the merge layer '{layer.name}' is the last layer of the "
                           "model; it must be followed by one layer mapped on a CNP (Conv2D, DepthwiseConv2D or a "
                           "transposed convolution).")
        elif len(fed) > 1:
            reasons.append(f"A layer which outputs directly to one skip dma and another skipdma via dual outputs is "
                           f"not supported: the merge '{layer.name}' feeds {_kinds(fed)}; a merge must feed exactly "
                           "one CNP layer. Hint: put a convolution between back-to-back residual blocks.")
        elif fed[0].layer_type not in CNP_KINDS:
            reasons.append(f"Bad mapping on skip connection: the merge layer '{layer.name}' is followed by "
                           f"{_kinds(fed)}; it must be followed by a layer mapped on a CNP (Conv2D, DepthwiseConv2D "
                           "or a transposed convolution).")
        elif issues.get(fed[0].name):
            reasons.append(f"No valid merge layer. {layer.layer_type.name} layer requires an outbound that is "
                           f"mappable on a CNP: '{fed[0].name}' cannot be mapped.")
        if reasons:
            continue
        del broken[layer.name]
        source = min(dict.fromkeys(layer.inbounds), key=lambda lay: index[lay.name])
        skips.append(Skip(layer.name, source.name, fed[0].name, index[source.name], index[fed[0].name]))
    temporal = [layer for layer in layers if layer.layer_type in FIFO_KINDS]
    merges = [layer for layer in layers if layer.layer_type in MERGE_KINDS]
    if not table.temporal_with_skips and temporal and merges:
        broken.setdefault(merges[0].name, []).append(
            f"Model cannot have both temporal layers and skip connections in a hardware sequence (temporal "
            f"{_kinds(temporal[:1])}, skip connection {_kinds(merges[:1])}).")
    return skips, {name: reasons for name, reasons in broken.items() if reasons}


def max_pool_issues(layers, outbounds, issues, table):
    """Add to `issues` the max-pooling layers that are not followed by a hardware CNP / TNP_B layer.

    'A layer with max pooling cannot be the last layer of a sequence': every layer it feeds must be a
    mappable CNP or TNP_B layer (or a merge, itself followed by one). Repeats until stable, since a
    layer moved to software can break its own max-pooling inbound.
    """
    def follower_ok(layer):
        if issues.get(layer.name):
            return False
        row = table.limits(layer.layer_type)
        if row is not None and row.component == "none" and layer.layer_type in MERGE_KINDS:
            return all(follower_ok(nxt) for nxt in outbounds[layer.name]) and bool(outbounds[layer.name])
        return row is not None and row.component in ("CNP1", "TNP_B")

    changed = True
    while changed:
        changed = False
        for layer in layers:
            row = table.limits(layer.layer_type)
            if issues.get(layer.name) or row is None or not row.max_pool_needs_successor or \
                    getattr(layer.params, "pool_type", None) != PoolType.Max:
                continue
            fed = outbounds[layer.name]
            bad = [nxt for nxt in fed if not follower_ok(nxt)]
            if fed and not bad:
                continue
            why = "it is the last layer of the model" if not fed else f"it feeds {_kinds(bad)}, which " + (
                "cannot be mapped" if any(issues.get(n.name) for n in bad) else "is not a CNP or TNP_B layer")
            issues.setdefault(layer.name, []).append(
                f"A layer with max pooling cannot be the last layer of a sequence: it must be followed by a CNP or "
                f"TNP_B layer of its sequence, but {why}.")
            changed = True

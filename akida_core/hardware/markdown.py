"""Renders a constraints table as Markdown, so docs/hardware-constraints.md is generated, not copied."""
from __future__ import annotations


def _values(values):
    if not values:
        return "-"
    return ", ".join(str(getattr(v, "name", v)) for v in values)


def _number(value):
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _optional(value):
    return "-" if value is None else _number(value)


def constraints_markdown(target) -> str:
    """Returns the Markdown table of every layer row of `target`, plus its device facts.

    Args:
        target: a HardwareTarget.

    Returns:
        Markdown text (stable: tests compare it with docs/hardware-constraints.md).
    """
    rows = [("NP", lambda r: r.np_type),
            ("kernel sizes", lambda r: _values(r.kernel_sizes) + (" (square)" if r.kernel_sizes
                                                                    and r.square_kernel else "")),
            ("strides", lambda r: _values(r.strides) + (" (x, y independent)"
                                                        if r.independent_strides else "")),
            ("kernels per stride", lambda r: "; ".join(
                f"stride {s}: {_values(k)}" for s, k in sorted(r.kernel_sizes_for_stride.items()))
             or "-"),
            ("padding", lambda r: _values(r.paddings)),
            ("pooling", lambda r: _values(r.pool_types)),
            ("max-pool sizes", lambda r: _values(r.max_pool_sizes)),
            ("max-pool stride", lambda r: f"{r.max_pool_stride_rule} pool size"
             if r.max_pool_sizes else "-"),
            ("max pool ends a sequence", lambda r: "no; next layer on: " + _values(
                r.max_pool_successor_nps) if r.max_pool_needs_successor else "-"),
            ("GAP input rows", lambda r: "-" if r.gap_min_rows is None else
             f">= {r.gap_min_rows}, height <= {r.gap_max_height}, H*W <= {r.gap_max_area}"),
            ("weights bits", lambda r: _values(r.weights_bits)),
            ("input bits", lambda r: _values(r.input_bits)),
            ("activation bits", lambda r: _values(r.act_bits)),
            ("input channels", lambda r: _values(r.input_channels) if r.input_channels else "any"),
            ("max filters / units", lambda r: _optional(r.max_filters)),
            ("max input width", lambda r: _optional(r.max_input_width)),
            ("max flattened inputs", lambda r: _optional(r.max_inputs)),
            ("act_step", lambda r: f">= {_number(r.min_act_step)}" + (
                f", < {_number(r.max_act_step)}" if r.max_act_step is not None else "")),
            ("threshold", lambda r: "-" if r.threshold_range is None else
             f"{r.threshold_bits}-bit signed [{r.threshold_range[0]}, {r.threshold_range[1]}]"),
            ("activation required", lambda r: "yes" if r.activation_required else "-"),
            ("max input channels per filter", lambda r: "; ".join(
                f"k{k}@{b}b: {v}" for (k, b), v in sorted(r.max_input_channels_per_filter.items()))
             or "-")]
    kinds = list(target.layers.values())
    lines = [f"| {target.name} | " + " | ".join(r.layer_type.name for r in kinds) + " |",
             "|---" * (len(kinds) + 1) + "|"]
    for label, get in rows:
        lines.append(f"| {label} | " + " | ".join(str(get(r)) for r in kinds) + " |")
    lines.append("")
    lines.append(f"Device: IP {target.ip_version}, {_optional(target.num_nodes)} nodes, "
                 f"{_optional(target.num_nps)} NPs ("
                 + ", ".join(f"{k}: {v}" for k, v in target.np_counts.items()) + ").")
    for first, second in target.forbidden_successions:
        lines.append(f"A layer on an {first} cannot be directly followed by a layer on a "
                     f"{second}.")
    return "\n".join(lines) + "\n"

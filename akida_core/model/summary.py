"""Model.summary(): a text table of the layers, plus sections registered by mapping and learning.

Akida 2.0 models (graphs) get an Inbounds column and their output bits; Akida 1.0 models keep
their table (act bits).
"""
import numpy as np

from ..enums import PoolType
from ..kernels import off_register_grid

_SECTIONS = []


def register_section(section):
    """Register `section(model) -> list of lines or None`, printed after the layer table."""
    _SECTIONS.append(section)


def _kernel_text(params):
    kernel = getattr(params, "kernel_size", None)
    if kernel is None:
        return "-"
    if isinstance(kernel, int):  # Akida 2.0: square kernels, one int
        text = f"{kernel}x{kernel}"
        if hasattr(params, "kernel_stride"):
            text += f"/{params.kernel_stride} {params.padding.name}"
        elif hasattr(params, "filters") or "Transpose" in type(params).__name__:
            text += "/2T"
        if getattr(params, "pool_type", PoolType.NoPooling) == PoolType.Max:
            text += f" max{params.pool_size}/{params.pool_stride}"
        elif getattr(params, "pool_type", None) == PoolType.Average:
            text += " gap"
        return text
    text = f"{kernel[0]}x{kernel[1]}/{params.kernel_stride[0]}x{params.kernel_stride[1]}"
    text += " " + params.padding.name
    if params.pool_type == PoolType.Max:
        text += f" max{params.pool_size[0]}x{params.pool_size[1]}/{params.pool_stride[0]}"
    elif params.pool_type == PoolType.Average:
        text += " gap"
    return text


def layer_rows(model):
    """One row per layer: name (type), output shape, kernel/stride, weight bits, act bits, params, MACs."""
    rows = []
    for layer in model.layers:
        p = layer.params
        n_params = sum(v.size for k, v in layer._values.items() if k.startswith("weights"))
        act = p.act_bits if getattr(p, "activation", False) else "-"
        rows.append((f"{layer.name} ({layer.layer_type.name})", str(list(layer.output_dims)),
                     _kernel_text(p), str(getattr(p, "weights_bits", "-")), str(act),
                     f"{n_params:,}", f"{layer.macs:,}"))
    return rows


def graph_rows(model):
    """Akida 2.0 rows: name (type), output shape, inbounds, kernel, weight bits, output bits, activation,
    params, MACs."""
    rows = []
    for layer in model.layers:
        p = layer.params
        n_params = sum(v.size for k, v in layer._values.items() if k.startswith("weights") or k.endswith("_proj"))
        activation = getattr(p, "activation", None)
        rows.append((f"{layer.name} ({layer.layer_type.name})", str(list(layer.output_dims)),
                     ", ".join(inbound.name for inbound in layer.inbounds) or "-", _kernel_text(p),
                     str(getattr(p, "weights_bits", "-")), str(layer.output_bits),
                     activation.name if activation is not None else "-", f"{n_params:,}", f"{layer.macs:,}"))
    return rows


def act_step_notes(model):
    """One line per layer whose act_step is off the register's 1/16 grid (the chip floors it)."""
    notes = []
    for layer in model.layers:
        if "act_step" not in layer.variable_specs():
            continue
        steps = layer._values["act_step"]
        off = off_register_grid(steps)
        if off.any():
            first = int(np.argmax(off))
            notes.append(
                f"Note: layer '{layer.name}': act_step of {int(off.sum())} of {off.size} neurons is not a "
                f"multiple of 1/16; Akida computes with floor(act_step*16)/16 (neuron {first}: "
                f"{float(steps[first]):.6g} acts as {float(layer.register_act_step[first]):.6g}).")
    return notes


def format_table(header, rows):
    """Left-aligned text table with a rule under the header."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return [line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]


def summary_text(model):
    """The whole summary as one string."""
    if not model.layers:
        return "Model Summary\n(empty model)"
    total_params = sum(v.size for lay in model.layers for k, v in lay._values.items()
                       if k.startswith("weights") or k.endswith("_proj"))
    lines = ["Model Summary",
             f"Input shape: {model.input_shape}  Output shape: {model.output_shape}  "
             f"Layers: {model.layer_count}"]
    if model.ip_version.name == "v2":
        lines[1] += "  IP: Akida 2.0 (v2)"
        header = ("Layer (type)", "Output shape", "Inbounds", "Kernel/stride", "Weight bits", "Out bits",
                  "Activation", "Params", "MACs")
        lines += format_table(header, graph_rows(model))
    else:
        header = ("Layer (type)", "Output shape", "Kernel/stride", "Weight bits", "Act bits", "Params", "MACs")
        lines += format_table(header, layer_rows(model))
    lines.append(f"Total parameters: {total_params:,}  Total MACs/sample: {model.macs:,}")
    lines += act_step_notes(model)
    for section in _SECTIONS:
        extra = section(model)
        if extra:
            lines.append("")
            lines.extend(extra)
    return "\n".join(lines)

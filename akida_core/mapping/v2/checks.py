"""Akida 2.0 mapping, per layer: every hardware check of a layer, and how many NPs of which kind it needs.

Both read the generation's table (`akida_core.hardware.akida2`) and nothing else for limits. A check
returns a sentence with the vendor's gist, the limit and the value found; `layer_checks` returns
*all* failed checks of a layer (the vendor concatenates them in its refusal).

The NP model (docs/mapping.md): a CNP1 / TNP_B layer is split over `row_parts` = ceil(rows / rows
per NP) spatial parts (rows = d0 of the input, of the output for the transposed convolutions) times
ceil(filters / filters per NP) filter groups; filters per NP = min(cnp_max_filters, what the NP
weight memory holds, taken in groups of `filters_granularity`). A Dense1D takes one FNP: FNP3 when its
weights (times the FNP3 overhead) fit the NP weight memory, else FNP2 (external memory).
"""
import dataclasses
import math

from ...enums import ActivationType, LayerType, Padding, PoolType

FIFO_KINDS = (LayerType.BufferTempConv, LayerType.DepthwiseBufferTempConv)
MERGE_KINDS = (LayerType.Add, LayerType.Concatenate)


def _alternatives(values, unit=""):
    """'1, 3, 5 or 7' (with a unit such as '-bit')."""
    items = [f"{v}{unit}" for v in values]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _activation(params):
    activation = getattr(params, "activation", None)
    return None if activation is None else ActivationType(activation).name


def filters_of(layer):
    """Output channels of a neural layer (units of a Dense1D, the input channels of depthwise kinds)."""
    p = layer.params
    if layer.layer_type == LayerType.Dense1D:
        return p.units
    if layer.layer_type == LayerType.StatefulRecurrent:
        return p.output_channels
    if layer.layer_type in (LayerType.DepthwiseConv2D, LayerType.DepthwiseConv2DTranspose,
                            LayerType.DepthwiseBufferTempConv):
        return layer.input_dims[2]
    return p.filters


def conv_output_rows(layer):
    """(d0, d1) of the convolution before pooling."""
    from ... import kernels
    p = layer.params
    padding = Padding.Same if p.padding == Padding.SameUpper else p.padding
    return tuple(kernels.output_size(d, p.kernel_size, p.kernel_stride, padding) for d in layer.input_dims[:2])


def _geometry_checks(layer, row, out):
    p = layer.params
    kernel = getattr(p, "kernel_size", None)
    stride = getattr(p, "kernel_stride", 1)
    if row.kernel_sizes:
        if kernel not in row.kernel_sizes:
            out.append(f"Kernel size must be {_alternatives(row.kernel_sizes)} (got {kernel}).")
        elif stride not in row.allowed_strides(kernel):
            allowed = _alternatives(row.allowed_strides(kernel))
            out.append(f"For a kernel size {kernel}, the kernel stride must be {allowed} (got {stride}).")
    padding = getattr(p, "padding", None)
    if row.paddings and padding is not None:
        name = Padding(padding).name
        if name not in row.paddings:
            out.append(f"Only padding {_alternatives([repr(n) for n in row.paddings])} are supported (got {name}).")
        elif name == "SameUpper":
            if row.same_upper_strides and stride not in row.same_upper_strides:
                out.append(f"With SameUpper padding only stride {_alternatives(row.same_upper_strides)} is supported "
                           f"(got stride {stride}).")
            if row.same_upper_weights_bits and p.weights_bits not in row.same_upper_weights_bits:
                out.append(f"With SameUpper padding only {_alternatives(row.same_upper_weights_bits, '-bit')} weights "
                           f"are supported (got {p.weights_bits}-bit).")
            if row.same_upper_output_bits and p.output_bits not in row.same_upper_output_bits:
                out.append(f"With SameUpper padding only {_alternatives(row.same_upper_output_bits, '-bit')} "
                           f"activations are supported (got output_bits={p.output_bits}).")


def _pool_checks(layer, row, out):
    p = layer.params
    pool = getattr(p, "pool_type", PoolType.NoPooling)
    if pool == PoolType.Max:
        size, stride = p.pool_size, p.pool_stride
        if row.max_pool_pairs:
            if (size, stride) not in row.max_pool_pairs:
                out.append(f"Unsupported max-pooling size, max-pooling stride combination: the only supported "
                           f"(size, stride) are {_alternatives(row.max_pool_pairs)} (got ({size}, {stride})).")
        elif not row.max_pool_sizes:
            out.append("Max pooling is not supported by this layer on hardware.")
        elif size not in row.max_pool_sizes:
            out.append(f"Pooling size must be {_alternatives(row.max_pool_sizes)} (got {size}).")
        if not row.max_pool_with_stride and p.kernel_stride > 1:
            out.append(f"The CNP cannot support both pooling and stride (kernel_stride={p.kernel_stride} with max "
                       "pooling; max pooling needs stride 1).")
        if not row.max_pool_with_lut and p.activation == ActivationType.LUT:
            out.append("Max pooling is not supported with activation LUT.")
        rows = conv_output_rows(layer)
        if min(rows) < size:
            out.append(f"Pooling size cannot be greater than input dimensions (pool size {size}, convolution output "
                       f"{rows[0]}x{rows[1]}).")
    elif pool == PoolType.Average:
        d0, d1 = layer.input_dims[:2]
        if row.gap_max_area is None:
            out.append("Global average pooling is not supported by this layer on hardware.")
            return
        if d0 * d1 > row.gap_max_area:
            out.append(f"With global average pooling the input dimensions width * height cannot exceed "
                       f"{row.gap_max_area} (got {d0} x {d1} = {d0 * d1}).")
        if d0 > row.gap_max_d0:
            out.append(f"With global average pooling the input height (d0) cannot exceed {row.gap_max_d0} (got {d0}).")
        if p.output_bits > row.gap_max_output_bits:
            out.append(f"With average pooling output bitwidth should be <= {row.gap_max_output_bits} "
                       f"(got {p.output_bits}).")


def _bits_checks(layer, row, out):
    p = layer.params
    wb = getattr(p, "weights_bits", None)
    if row.weights_bits and wb not in row.weights_bits:
        out.append(f"Weights bitwidth should be {_alternatives(row.weights_bits, '-bit')} (got {wb}-bit).")
    if row.input_bits and not layer.is_input:
        source = layer.inbounds[0].name if layer.inbounds else "the input"
        if layer.input_bits not in row.input_bits:
            out.append(f"Input should be {_alternatives(row.input_bits, '-bit')} (got {layer.input_bits}-bit from "
                       f"'{source}').")
        elif row.input_bits_at_least_weights and wb is not None and layer.input_bits < wb:
            out.append(f"Input bits should be >= weights bits (got {layer.input_bits}-bit input from '{source}' and "
                       f"{wb}-bit weights).")
    activation = _activation(p)
    if row.activations and activation not in row.activations:
        if layer.layer_type == LayerType.InputConv2D:
            out.append("The first convolutional layer of a model can only be mapped if its activations are enabled "
                       f"(got activation {activation}).")
        else:
            out.append(f"Does not support activation type '{activation}' (supported: "
                       f"{_alternatives(row.activations)}).")
        return
    if not row.output_bits:
        return
    ob = p.output_bits
    phrase = "Without activation" if activation == "NoActivation" else f"With activation {activation}"
    any_weights = row.allowed_output_bits(activation)
    if ob not in any_weights:
        out.append(f"{phrase} output bitwidth should be {_alternatives(any_weights)} (got {ob}).")
    elif wb in row.weights_bits and ob not in row.allowed_output_bits(activation, wb):
        allowed = row.allowed_output_bits(activation, wb)
        kind = "potential" if activation == "NoActivation" else "activation"
        hint = f"output bitwidth {_alternatives(allowed)}" if allowed else "no output bitwidth maps"
        out.append(f"{wb}-bit weights and {ob}-bit {kind} is not allowed ({phrase.lower()} and {wb}-bit weights: "
                   f"{hint}).")


def _size_checks(layer, row, out):
    p = layer.params
    d0, d1, cin = layer.input_dims
    filters = filters_of(layer)
    if row.max_filters is not None and filters > row.max_filters:
        what = "units" if layer.layer_type == LayerType.Dense1D else "filters"
        out.append(f"The maximum number of {what} is {row.max_filters} (got {filters}).")
    if row.input_channels and cin not in row.input_channels:
        out.append(f"Input channels must be {_alternatives(row.input_channels)} (got {cin}).")
    if row.max_input_channels is not None and cin > row.max_input_channels:
        out.append(f"The maximum input channel value is {row.max_input_channels} (got {cin}).")
    limit = row.max_input_channels_per_filter.get((getattr(p, "kernel_size", None), getattr(p, "weights_bits", None)))
    if limit is not None and cin > limit:
        out.append(f"Filter size is too big to fit in a CNP: at most {limit} input channels with a "
                   f"{p.kernel_size}x{p.kernel_size} kernel and {p.weights_bits}-bit weights (got {cin}). Hint: "
                   "decrease the input channels or the bitwidth.")
    if row.max_fifo_channels is not None and p.fifo_size * cin > row.max_fifo_channels:
        ram = "weights" if layer.layer_type == LayerType.BufferTempConv else "inputs"
        out.append(f"Cannot split to fit {ram} in ram: fifo_size x input channels must be <= {row.max_fifo_channels} "
                   f"(got {p.fifo_size} x {cin} = {p.fifo_size * cin}).")
    if row.max_inputs is not None and d0 * d1 * cin > row.max_inputs:
        # Dense1D reports its input_dims flattened, (1, 1, H·W·C), as the vendor does.
        out.append(f"Input dimensions are too large to fit in a FNP. The maximum value is {row.max_inputs} "
                   f"(got {d0 * d1 * cin} flattened inputs).")
    if row.min_d0 is not None and d0 < row.min_d0:
        out.append(f"Unsupported input size: the first dimension should be >= {row.min_d0} (got {d0}).")
    if row.min_d1 is not None and d1 < row.min_d1:
        out.append(f"Unsupported input size: the second dimension should be between {row.min_d1} and {row.max_d1} "
                   f"(got {d1}).")
    elif row.max_d1 is not None and d1 > row.max_d1:
        if layer.layer_type in FIFO_KINDS:
            out.append(f"The next {layer.layer_type.name} {layer.name} can't be mapped in the current pass: its input "
                       f"second dimension must be <= {row.max_d1} (got {d1}).")
        elif row.rows_on_output:
            out.append(f"Split by height is not supported: the input second dimension must be <= {row.max_d1} "
                       f"(got {d1}).")
        elif row.min_d1 is not None:
            out.append(f"Unsupported input size: the second dimension should be between {row.min_d1} and "
                       f"{row.max_d1} (got {d1}).")
        else:
            out.append(f"The maximum input second dimension (d1) is {row.max_d1} (got {d1}).")
    shifts = layer._values.get("input_shift")
    if row.max_input_shift is not None and shifts is not None and shifts.size \
            and int(shifts.max()) > row.max_input_shift:
        largest = int(shifts.max())
        out.append(f"The variable input_shift should only contain unsigned values that use no more than "
                   f"{row.max_input_shift.bit_length()}-bit (largest value {largest} needs {largest.bit_length()} "
                   f"bits; at most {row.max_input_shift}).")


def layer_checks(layer, table):
    """Every failed hardware check of `layer` on a generation's table (empty: it can run in hardware).

    Args:
        layer: a built Akida 2.0 layer (InputData is not checked: it is in no sequence).
        table: the HardwareTargetV2 of the device.

    Returns:
        A list of sentences, each with the limit and the value found.
    """
    row = table.limits(layer.layer_type)
    if row is None:
        return [f"{layer.layer_type.name} layers are not supported by {table.name} hardware."]
    out = []
    if row.component == "none":
        return out
    _geometry_checks(layer, row, out)
    _pool_checks(layer, row, out)
    _bits_checks(layer, row, out)
    _size_checks(layer, row, out)
    return out


@dataclasses.dataclass(frozen=True)
class Demand:
    """What one layer takes from a pass: its component, how it splits, and its skip-DMA channels.

    `nps(cap)` gives its NP count when at most `cap` filters go on one NP.
    """

    component: str
    filters: int = 0
    filter_bytes: int = 0
    row_parts: int = 1
    weight_bytes: int = 0
    granularity: int = 1
    fits_fnp3: bool = True
    fifo: bool = False

    def per_np(self, cap):
        """Filters one NP holds with at most `cap` filters per NP."""
        memory = self.weight_bytes // self.filter_bytes if self.filter_bytes else cap
        if memory >= self.granularity:
            memory -= memory % self.granularity
        return max(1, min(cap, memory, self.filters))

    def nps(self, cap):
        """NPs of the layer's component with at most `cap` filters per NP (HRC, FNP, TNP_R: 1; none: 0)."""
        if self.component == "none":
            return 0
        if self.component in ("CNP1", "TNP_B"):
            return self.row_parts * -(-self.filters // self.per_np(cap))
        return 1


def layer_demand(layer, table, mesh, rows_per_np):
    """The Demand of a layer that passed `layer_checks`.

    Args:
        layer: the layer.
        table: the HardwareTargetV2.
        mesh: the device mesh (its NP SRAM sizes the filters per NP).
        rows_per_np: d0 rows one CNP / TNP_B handles (MapConstraints.cnp_max_width).
    """
    row = table.limits(layer.layer_type)
    p = layer.params
    component = row.component
    if component in ("none", "HRC", "TNP_R"):
        return Demand(component, filters=getattr(p, "filters", 0))
    filters = filters_of(layer)
    cin = layer.input_dims[2]
    wb = p.weights_bits
    weight_bytes = mesh.np_sram_size.weight_bytes
    if component == "FNP":
        total = -(-math.prod(layer.input_dims) * filters * wb // 8)
        num, den = table.fnp3_weight_scale
        return Demand(component, filters, weight_bytes=weight_bytes, fits_fnp3=total * num <= weight_bytes * den)
    depthwise = layer.layer_type in (LayerType.DepthwiseConv2D, LayerType.DepthwiseConv2DTranspose,
                                     LayerType.DepthwiseBufferTempConv)
    if layer.layer_type in FIFO_KINDS:
        per_filter = p.fifo_size * (1 if depthwise else cin)
    else:
        per_filter = p.kernel_size ** 2 * (1 if depthwise else cin)
    rows = layer.output_dims[0] if row.rows_on_output else layer.input_dims[0]
    rows_per_np = min(row.rows_per_np or rows_per_np, rows_per_np)
    return Demand(component, filters, filter_bytes=-(-per_filter * wb // 8), row_parts=-(-rows // rows_per_np),
                  weight_bytes=weight_bytes, granularity=table.filters_granularity,
                  fifo=layer.layer_type in FIFO_KINDS)

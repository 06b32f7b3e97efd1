"""AKD1000 (NSoC_v2, Akida 1.0 IP) hardware constraints: the one place these numbers live.

Source: probed on BrainChip's runtime (akida 2.x): small models mapped with `map(hw_only=True)` on
its virtual `AKD1000()`, just inside and just outside each limit; the comments give the message it
printed. Limits whose comment says "converter" are per-layer checks and register limits of
BrainChip's cnn2snn (2.19, quantizeml path), read from its conversion messages.
docs/hardware-constraints.md shows this table (generated from it).
"""
from ..enums import LayerType, Padding, PoolType
from .limits import HardwareTarget, LayerLimits

# The HRC takes the model's 8-bit image input; every other NP takes <=4-bit unsigned activations.
_NP_INPUT_BITS = (1, 2, 4)

INPUT_DATA = LayerLimits(
    layer_type=LayerType.InputData,
    np_type="none",
    strides=(),
    paddings=(),
    pool_types=(),
    # Only an InputConvolutional takes 8-bit inputs; InputData > 4 bits is signed and no NP accepts it.
    input_bits=_NP_INPUT_BITS,
    act_bits=(),
)

INPUT_CONVOLUTIONAL = LayerLimits(
    layer_type=LayerType.InputConvolutional,
    np_type="HRC",
    kernel_sizes=(3, 5, 7),                  # "Kernel size should be 3, 5 or 7" (1 and 9 rejected)
    square_kernel=True,
    strides=(1, 2, 3),                       # stride 4 rejected
    independent_strides=True,                # x and y strides may differ
    paddings=(Padding.Same, Padding.Valid),
    pool_types=(PoolType.NoPooling, PoolType.Max),   # Average pooling rejected on the HRC
    max_pool_sizes=(1, 2),                   # per axis; 2x1 accepted, 3 and 4 rejected
    max_pool_stride_rule="equal",            # pool stride must equal pool size
    weights_bits=(4, 8),                     # HW takes 1/2/4/8; the converter only emits 4 or 8
    input_bits=(8,),
    act_bits=(1, 2, 4),
    input_channels=(1, 3),
    max_filters=192,                         # "num_neurons ... between 1 and 192"
    max_input_width=256,                     # "maximum input second dimension size is 256"
    max_act_step=2.0 ** 20,                  # HRC act_step register: act_step < 2^20
    threshold_bits=24,                       # HRC threshold: 24-bit signed
    activation_required=True,                # must have activation enabled to map
    map_weights_bits=(1, 2, 4, 8),           # the HRC maps 1/2/4/8-bit weights (probed)
)

CONVOLUTIONAL = LayerLimits(
    layer_type=LayerType.Convolutional,
    np_type="CNP",
    kernel_sizes=(1, 3, 5, 7),               # kernel 9 rejected
    square_kernel=True,
    strides=(1, 2),                          # stride 3 rejected
    kernel_sizes_for_stride={2: (3,)},       # stride 2 only with a 3x3 kernel
    paddings=(Padding.Same,),                # Valid rejected on CNPs
    pool_types=(PoolType.NoPooling, PoolType.Max, PoolType.Average),
    max_pool_sizes=(1, 2),                   # pool 3 "not supported on NSoC_v2", pool 4 rejected
    max_pool_stride_rule="at_most",          # pool stride <= pool size (stride 1 ok)
    max_pool_needs_successor=True,           # max pooling cannot end a sequence: it must be
    max_pool_successor_nps=("CNP",),         # followed by a conv-type (CNP) layer
    gap_min_rows=3,                          # GAP needs >= 3 rows of conv output
    gap_max_height=32,                       # ... and a height <= 32
    gap_max_area=256,                        # converter: GAP input H*W <= 256
    weights_bits=(1, 2, 4),                  # "Standard CNP weights bitwidth must be 1, 2 or 4"
    input_bits=_NP_INPUT_BITS,
    act_bits=(1, 2, 4),
    max_act_step=2.0 ** 16,                  # CNP act_step register: act_step < 2^16
    threshold_bits=20,                       # CNP threshold: 20-bit signed
    # Probed "Filter size is too big to fit in a CNP": (kernel, weights_bits) -> max input channels.
    max_input_channels_per_filter={(1, 4): 448, (3, 4): 448, (5, 4): 448, (3, 2): 896,
                                   (3, 1): 896, (7, 4): 149, (7, 1): 896},
)

SEPARABLE_CONVOLUTIONAL = LayerLimits(
    layer_type=LayerType.SeparableConvolutional,
    np_type="CNP",
    kernel_sizes=(3, 5, 7),                  # kernel 1 rejected
    square_kernel=True,
    strides=(1, 2),
    kernel_sizes_for_stride={2: (3,)},
    paddings=(Padding.Same,),
    pool_types=(PoolType.NoPooling, PoolType.Max, PoolType.Average),
    max_pool_sizes=(1, 2),
    max_pool_stride_rule="at_most",
    max_pool_needs_successor=True,
    max_pool_successor_nps=("CNP",),
    gap_min_rows=3,
    gap_max_height=32,
    gap_max_area=256,
    weights_bits=(2, 4),                     # 1-bit and 8-bit weights rejected
    input_bits=_NP_INPUT_BITS,
    act_bits=(1, 2, 4),
    max_act_step=2.0 ** 16,
    threshold_bits=20,
    # in-channels up to 2048 probed fine; no per-filter memory limit known.
)

FULLY_CONNECTED = LayerLimits(
    layer_type=LayerType.FullyConnected,
    np_type="FNP",
    strides=(),
    paddings=(),
    pool_types=(PoolType.NoPooling,),
    weights_bits=(1, 2, 4),                  # "Weight bits should be between 1 and 4"
    input_bits=_NP_INPUT_BITS,
    act_bits=(1, 2, 4),
    max_filters=8192,                        # largest unit count probed (units up to 8192 tested)
    max_inputs=57334,                        # flattened inputs > 57334 rejected
    max_act_step=2.0 ** 16,                  # FNP act_step register: act_step < 2^16
    threshold_bits=20,                       # FNP threshold: 20-bit signed
)

AKD1000 = HardwareTarget(
    name="AKD1000",
    ip_version="v1",
    layers={row.layer_type: row for row in (INPUT_DATA, INPUT_CONVOLUTIONAL, CONVOLUTIONAL,
                                            SEPARABLE_CONVOLUTIONAL, FULLY_CONNECTED)},
    # Model inputs are uint8: 8 bits only into an InputConvolutional, else the InputData bits.
    model_input_bits={LayerType.InputConvolutional: (8,), LayerType.InputData: _NP_INPUT_BITS},
    num_nodes=20,
    num_nps=78,
    np_counts={"HRC": 1, "CNP1": 78, "CNP2": 54, "FNP3": 18, "FNP2": 4},
    # "A layer mapped on FNP cannot be directly followed by a layer mapped on CNP"
    forbidden_successions=(("FNP", "CNP"),),
    # Per-NP weight memory of akida_core.mapping (an assumption, not probed; docs/mapping.md): 64 KiB,
    # room for 11 of the largest probed filters (5x5x448 at 4 bits = 44,800 bits).
    np_weight_memory_bits=64 * 1024 * 8,
    hw_version=(0xBC, 0x00, 0, 2),           # NSoC_v2, "BC.00.000.002"
)

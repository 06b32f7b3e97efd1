"""Akida 2.0 (IpVersion.v2, FPGA_v2 meshes) and pico hardware constraints: the one place these numbers live.

Source: BrainChip's runtime, probed with `map(device, hw_only=True)` on its virtual SixNodesIPv2 unless
stated (meshes, components, per-layer limits, skip connections; docs/mapping-v2.md). Each comment
gives the vendor's refusal. A row field marked "fitted" or "assumed" in `probed` was not measured as
such; docs/mapping.md lists them.
"""
from ..enums import LayerType
from .limits_v2 import HardwareTargetV2, LayerLimitsV2, MeshSpec

_NP_INPUT_BITS = (4, 8)                       # "Input should be 4-bit or 8-bit."
_CNP_PADDINGS = ("Same", "SameUpper")         # Valid: "Only padding 'Same' and 'SameUpper' are supported."
_ROWS_PER_NP = 64                             # d0 rows per CNP/TNP_B (MapConstraints.cnp_max_width)
_MAX_INPUT_SHIFT = 7                          # "input_shift should only contain ... no more than 3-bit"
_GAP = dict(gap_max_area=144,                 # "...input dimensions width * height cannot exceed 144."
            gap_max_d0=64,                    # "...input height cannot exceed 64." (d0 of the input)
            gap_max_output_bits=8)            # "With average pooling output bitwidth should be <= 8."
_SAME_UPPER = dict(same_upper_strides=(2,),           # "With SameUpper padding only stride 2 is supported."
                   same_upper_weights_bits=(8,),      # "...only 8-bit weights are supported."
                   same_upper_output_bits=(8,))       # "...only 8-bit activations are supported."
_CNP_MAX_POOL = dict(max_pool_sizes=(1, 2),           # "Pooling size must be 1 or 2."
                     max_pool_with_stride=False,      # "The CNP cannot support both pooling and stride."
                     max_pool_with_lut=False,         # "Max pooling is not supported with activation LUT."
                     max_pool_needs_successor=True)   # "...cannot be the last layer of a sequence."

CONV2D = LayerLimitsV2(
    layer_type=LayerType.Conv2D,
    component="CNP1",
    kernel_sizes=(1, 3, 5, 7),                # "Kernel size must be 1, 3, 5 or 7."
    strides={1: (1, 2), 3: (1, 2), 5: (1,), 7: (1,)},
    paddings=_CNP_PADDINGS, **_SAME_UPPER, **_CNP_MAX_POOL, **_GAP,
    weights_bits=(4, 8),                      # "Weights bitwidth should be 4-bit or 8-bit."
    input_bits=_NP_INPUT_BITS,
    input_bits_at_least_weights=True,         # "Input bits should be >= weights bits."
    activations=("NoActivation", "ReLU", "LUT"),
    output_bits={("ReLU", 4): (4, 8), ("ReLU", 8): (4, 8),
                 ("LUT", 4): (8,), ("LUT", 8): (8,),          # "4-bit activation is not supported with LUT."
                 ("NoActivation", 8): (8, 28),                # "Without activation output bitwidth should be 8 or 28."
                 ("NoActivation", 4): (28,)},                 # "4-bit weights and 8-bit potential is not allowed."
    max_filters=2048,                         # "The maximum number of filters is 2048 (got 2049)."
    max_input_channels=2048,                  # "The maximum input channel value is 2048"
    # "Filter size is too big to fit in a CNP": probed on an 8x8 input with 8 filters (no formula).
    max_input_channels_per_filter={(1, 4): 2048, (1, 8): 2048, (3, 4): 1365, (3, 8): 682,
                                   (5, 4): 512, (5, 8): 204, (7, 4): 195, (7, 8): 73},
    max_d1=4096,                              # "The maximum input height is 4096 (got 4097)."
    rows_per_np=_ROWS_PER_NP,
    max_input_shift=_MAX_INPUT_SHIFT,
)

DEPTHWISE_CONV2D = LayerLimitsV2(
    layer_type=LayerType.DepthwiseConv2D,
    component="CNP1",
    kernel_sizes=(3, 5, 7),                   # "Kernel size must be 3, 5 or 7."
    strides={3: (1, 2), 5: (1,), 7: (1,)},
    paddings=_CNP_PADDINGS, **_SAME_UPPER, **_CNP_MAX_POOL, **_GAP,
    weights_bits=(4, 8),
    input_bits=_NP_INPUT_BITS,
    input_bits_at_least_weights=True,
    activations=("NoActivation", "ReLU", "LUT"),
    # "4-bit weights and 8-bit activation is not allowed.": 4-bit weights need 4-bit outputs.
    output_bits={("ReLU", 4): (4,), ("ReLU", 8): (4, 8), ("LUT", 8): (8,), ("NoActivation", 8): (8, 28)},
    max_input_channels=2048,
    max_d1=4096,
    rows_per_np=_ROWS_PER_NP,
    max_input_shift=_MAX_INPUT_SHIFT,
)

INPUT_CONV2D = LayerLimitsV2(
    layer_type=LayerType.InputConv2D,
    component="HRC",
    kernel_sizes=(3, 4, 5, 7),                # "Unsupported kernel size. The kernel size should be 3, 4, 5 or 7."
    # k3: stride 4 refused ("...must be smaller than 3", though 3 maps); k4/k5/k7: 1-4 probed, 5+ not.
    strides={3: (1, 2, 3), 4: (1, 2, 3, 4), 5: (1, 2, 3, 4), 7: (1, 2, 3, 4)},
    paddings=("Same", "Valid"),
    same_upper_strides=(2,),
    max_pool_pairs=((2, 2), (3, 2)),          # "Unsupported max-pooling size, max-pooling stride combinaison."
    weights_bits=(8,),                        # "Only 8-bit weigths are supported."
    activations=("ReLU", "LUT"),              # NoActivation: "...can only be mapped if its activations are enabled."
    output_bits={("ReLU", 8): (4, 8), ("LUT", 8): (8,)},
    max_filters=512,                          # "The filters number should be set between 1 and 512."
    input_channels=(1, 3),
    min_d0=5,                                 # "...first dimension should be >= 5."
    min_d1=5, max_d1=384,                     # "The second dimension should be between 5 and 384."
)

DENSE1D = LayerLimitsV2(
    layer_type=LayerType.Dense1D,
    component="FNP",
    weights_bits=(4, 8),
    input_bits=_NP_INPUT_BITS,
    input_bits_at_least_weights=True,
    activations=("NoActivation", "ReLU"),     # LUT: "Does not support activation type 'LUT'."
    # "With 4-bit weights, output must be 4-bit or 32-bit." / "...should be 8, 28 or 32."
    output_bits={("ReLU", 8): (4, 8), ("ReLU", 4): (4,),
                 ("NoActivation", 8): (8, 28, 32), ("NoActivation", 4): (28, 32)},
    max_filters=65535,                        # 65536: "...write value 65536 into a 16-bit field..."
    max_inputs=2048,                          # "Input dimensions are too large to fit in a FNP."
    max_input_shift=_MAX_INPUT_SHIFT,
)

_TRANSPOSE = dict(
    component="CNP1",
    kernel_sizes=(3, 4),                      # "Kernel size must be 3 or 4."
    weights_bits=(8,),                        # "Weights should be 8-bit."
    input_bits=_NP_INPUT_BITS,
    input_bits_at_least_weights=True,
    activations=("NoActivation", "ReLU", "LUT"),
    output_bits={("ReLU", 8): (8,), ("LUT", 8): (8,),     # "With activation output bitwidth should be 8."
                 ("NoActivation", 8): (8, 28)},
    max_d1=128,                               # "Split by height is not supported."
    rows_per_np=_ROWS_PER_NP,
    rows_on_output=True,                      # 768 input rows max on 24 NPs: the output doubles
    max_input_shift=_MAX_INPUT_SHIFT,
    probed="probed, except input bits (the general CNP rule, assumed)",
)

CONV2D_TRANSPOSE = LayerLimitsV2(
    layer_type=LayerType.Conv2DTranspose,
    max_filters=2048,
    # "Filter size is too big to fit in a CNP: try decreasing the input."
    max_input_channels_per_filter={(3, 8): 682, (4, 8): 341},
    **_TRANSPOSE,
)

DEPTHWISE_CONV2D_TRANSPOSE = LayerLimitsV2(
    layer_type=LayerType.DepthwiseConv2DTranspose,
    max_input_channels=2048,
    **_TRANSPOSE,
)

_FIFO = dict(
    component="TNP_B",
    weights_bits=(8,),                        # "Only 8-bit weights are supported."
    input_bits=(8,),                          # "Input should be 8-bit."
    activations=("NoActivation", "ReLU"),     # LUT: "Does not support activation type 'LUT'."
    output_bits={("ReLU", 8): (8,), ("NoActivation", 8): (8,)},   # "Output should be 8-bit."
    max_d1=3072,                              # Conv(1x1) > BTC on 8 x d1 x 8: "...can't be mapped in the current pass."
    rows_per_np=_ROWS_PER_NP,                 # d0 <= 768 with a Conv(1x1) before it on 24 NPs
    max_input_shift=_MAX_INPUT_SHIFT,
)

BUFFER_TEMP_CONV = LayerLimitsV2(
    layer_type=LayerType.BufferTempConv,
    max_filters=2048,
    max_input_channels=512,                   # fifo 3: 512 maps, 513 "Cannot split to fit weights in ram."
    max_fifo_channels=1860,                   # fifo 10: 186 maps, 187 refused (fitted: fifo x channels <= 1860)
    probed="fitted: fifo x channels <= 1860 from the fifo-10 probe; d1 3072 probed with 8 channels",
    **_FIFO,
)

DEPTHWISE_BUFFER_TEMP_CONV = LayerLimitsV2(
    layer_type=LayerType.DepthwiseBufferTempConv,
    max_fifo_channels=3760,                   # fifo 10: 376 maps, 377 "Cannot split to fit inputs in ram." (fitted)
    probed="fitted: fifo x channels <= 3760 from the fifo-10 probe",
    **_FIFO,
)

_NO_NP = {kind: LayerLimitsV2(layer_type=kind, component="none")
          for kind in (LayerType.Add, LayerType.Concatenate, LayerType.Quantizer, LayerType.Dequantizer)}

AKIDA2 = HardwareTargetV2(
    name="Akida 2.0",
    ip_version="v2",
    layers={row.layer_type: row for row in (CONV2D, DEPTHWISE_CONV2D, INPUT_CONV2D, DENSE1D, CONV2D_TRANSPOSE,
                                            DEPTHWISE_CONV2D_TRANSPOSE, BUFFER_TEMP_CONV,
                                            DEPTHWISE_BUFFER_TEMP_CONV, *_NO_NP.values())},
    np_input_bytes=65536,                     # NP.SramSize on v2
    np_weight_bytes=51200,
    cnp_max_filters=512,                      # MapConstraints defaults on a v2 device
    cnp_max_width=_ROWS_PER_NP,
    # Fitted: the 22-layer model's Conv2D(256 -> 256, k3, 8-bit) needs 16 CNP1 ("16 are needed"):
    # 22 filters of 2,304 bytes fit 51,200 bytes, taken as 16 = groups of 8.
    filters_granularity=8,
    fnp3_weight_scale=(50, 48),               # compute_minimal_memory scales FNP3 weights by 50/48
    skip_channels_per_dma=4,                  # create_device: <= 4 skip channels per column
    # "A TNP-B layer cannot be the first layer of a pass."; an FNP stays in its inbound's pass (§7:
    # FourNodesIPv2 cannot put Conv2D_20 (16 CNP1) and Dense1D_21 in one pass nor start a pass at the Dense1D).
    no_pass_start=("FNP", "TNP_B"),
    forbidden_successions=(("FNP", "CNP1"),),  # "A layer mapped on FNP cannot be directly followed by ... CNP"
    temporal_with_skips=False,                # "Model cannot have both temporal layers and skip connections..."
    max_outbounds=2,                          # 3 outbounds: the vendor segfaults; we refuse
    meshes={
        "TwoNodesIPv2": MeshSpec(((("CNP1", "FNP2"), 1), (("CNP1",), 3), (("CNP1", "FNP3"), 1),
                                  (("CNP1", "CNP2"), 3)), skip_dmas=1, channels_per_dma=2),
        "FourNodesIPv2": MeshSpec(((("TNP_B", "CNP1", "FNP2"), 1), (("TNP_B", "CNP1"), 3),
                                   (("TNP_B", "CNP1", "FNP3"), 3), (("TNP_B", "CNP1", "CNP2"), 9)),
                                  skip_dmas=1, channels_per_dma=4),
        "SixNodesIPv2": MeshSpec(((("TNP_B", "CNP1", "FNP2"), 1), (("TNP_B", "CNP1"), 3),
                                  (("TNP_B", "CNP1", "FNP3"), 2), (("TNP_B", "CNP1", "CNP2"), 18)),
                                 skip_dmas=1, channels_per_dma=4),
        "TwelveNodesIPv2": MeshSpec(((("TNP_B", "CNP1", "FNP2"), 1), (("TNP_B", "CNP1"), 3),
                                     (("TNP_B", "CNP1", "FNP3"), 3), (("TNP_B", "CNP1", "CNP2"), 41)),
                                    skip_dmas=3, channels_per_dma=4),
    },
    hw_version=(0xBC, 0xA2, 1, 0),            # FPGA_v2, "BC.A2.001.000"
)

STATEFUL_RECURRENT = LayerLimitsV2(
    layer_type=LayerType.StatefulRecurrent,
    component="TNP_R",
    probed="assumed: maps on PicoIP as 1 TNP_R; no per-parameter limit was probed",
)

PICO = HardwareTargetV2(
    name="Akida pico",
    ip_version="pico",
    layers={STATEFUL_RECURRENT.layer_type: STATEFUL_RECURRENT,
            LayerType.Dequantizer: _NO_NP[LayerType.Dequantizer]},
    max_outbounds=1,
    meshes={"PicoIP": MeshSpec(((("TNP_R",), 1),), hrc=False)},
    hw_version=(0xBC, 0xB1, 1, 0),            # Pico_FPGA, "BC.B1.001.000"
)

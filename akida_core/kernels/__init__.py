"""Pure integer kernels: numpy arrays and explicit parameters in, integer arrays out.

`shared` holds the maths both generations use (padding geometry, convolution and depthwise
convolution on exact float BLAS, dense, max pooling, saturation); `saturating` the Akida 1.0 global
pooling (a sum in a saturating register, in closed form); `v1` the Akida 1.0 activation
(thresholds, act_step registers); `v2` the Akida 2.0 maths (round-half-up shifts, the 32-bit wrap,
saturating registers, post-processing, transposed sums), with `v2_affine` (its POST as one float map
where the constants prove it exact), `v2_temporal` (the FIFO and recurrent layers) and `windows`
(depthwise sums over strided views);
`buffered` the same kernels for one fixed input shape, with their buffers made once (fast small batches).
No classes, no device knowledge; each is tested against a readable loop reference in tests/akida_core/.

`akida_core.kernels.<name>` keeps giving the shared and Akida 1.0 functions (the flat module's API).
"""
from . import buffered, saturating, shared, v1, v2, v2_temporal  # noqa: F401
from .saturating import global_sum_pool
from .shared import (FLOAT32_EXACT, FLOAT64_EXACT, accumulator_dtype, conv2d, dense, depthwise_conv2d,
                     max_pool2d, output_size, padding_amounts, same_padding, saturate, separable_conv2d)
from .v1 import (ACT_STEP_FRACTION_BITS, FLOAT32_STEP_BITS, activation_boundaries, dequantize,
                 float32_exact_steps, off_register_grid, register_act_step, threshold_activation, to_int32)

__all__ = ["FLOAT32_EXACT", "FLOAT64_EXACT", "accumulator_dtype", "conv2d", "dense", "depthwise_conv2d",
           "global_sum_pool", "max_pool2d", "output_size", "padding_amounts", "same_padding", "saturate",
           "separable_conv2d", "ACT_STEP_FRACTION_BITS", "FLOAT32_STEP_BITS", "activation_boundaries",
           "dequantize", "float32_exact_steps", "off_register_grid", "register_act_step", "threshold_activation",
           "to_int32", "buffered", "saturating", "shared", "v1", "v2", "v2_temporal"]

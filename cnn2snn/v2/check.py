"""Akida 2.0 compatibility of a float model, as MetaTF checks it: quantize, convert, map."""
from __future__ import annotations

import re
import warnings

from ..errors import CONVERT, HARDWARE, ConversionError, Issue

#: Samples quantize draws to calibrate when checking: the verdict never depends on the ranges.
CHECK_SAMPLES = 4

_LAYER = re.compile(r"[Ll]ayer '([^']+)'")


def akida2_float_issues(model, input_dtype="uint8", device=None, bits=None) -> list:
    """Every reason a float Keras model cannot run on Akida 2.0, found as MetaTF finds them.

    The model is quantized with ``QuantizationParams(input_dtype=input_dtype, **bits)`` on a few
    random samples (quietly), converted with the Akida 2.0 converter and, when ``device`` is an
    Akida 2.0 device, mapped on it with ``hw_only=True``.

    Args:
        model: a float Keras 3 model.
        input_dtype: integer numpy dtype of the model input ('uint8' images, 'int8').
        device: an Akida 2.0 akida_core Device, or None (quantize and convert only).
        bits: optional {"weight_bits", "activation_bits", "input_weight_bits": int} overrides.

    Returns:
        Issues: convert-level ones for what quantize or convert refuses, one hardware-level issue
        for float layers quantize left after the Dequantizer (they run outside Akida), and
        hardware-level ones for each layer the device refuses.

    Raises:
        QuantizationConfigError (a ValueError): ``input_dtype`` or ``bits`` are not valid
            QuantizationParams values (a bad argument, not a bad model).
    """
    from quantizeml.errors import QuantizeMLError
    from quantizeml.v2 import QuantizationParams, quantize

    qparams = QuantizationParams(input_dtype=input_dtype, **(bits or {}))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # random-sample and range warnings: not the verdict
            qmodel = quantize(model, qparams=qparams, num_samples=CHECK_SAMPLES)
    except QuantizeMLError as err:  # unsupported layers, orders, overflowing float weights
        return [_quantization_issue(text) for text in getattr(err, "issues", [str(err)])]
    return akida2_quantized_issues(qmodel, device)


def akida2_quantized_issues(qmodel, device=None) -> list:
    """Every reason a model quantized for Akida 2.0 does not run wholly on Akida 2.0: the
    converter's refusals (convert level), the float layers quantize left after the Dequantizer,
    and, when ``device`` is an Akida 2.0 device, each layer it refuses (hardware level)."""
    from .conversion import convert_v2, float_tail_issue
    try:
        akida_model = convert_v2(qmodel)
    except ConversionError as err:
        return list(err.issues)
    left_out = [issue for issue in [float_tail_issue(qmodel)] if issue is not None]
    return left_out + ([] if device is None else akida2_mapping_issues(akida_model, device))


def _quantization_issue(text: str) -> Issue:
    message, _, hint = text.partition(" Hint: ")
    match = _LAYER.search(message)
    return Issue(match.group(1) if match else "model", "quantization",
                 f"Akida 2.0 quantization refuses the model: {message}", None, None,
                 hint or "change the model as the message says, or check it for Akida 1.0 with "
                 "target='AKD1000'.", CONVERT)


def akida2_device(target):
    """The Akida 2.0 device `target` names (a device object, or a case-insensitive name of the Akida 2.0
    virtual devices such as "SixNodesIPv2"), or None for an Akida 1.0 target."""
    from akida_core.mapping.devices import Device, IpVersion
    from akida_core.mapping.devices_v2 import V2_DEVICES
    if isinstance(target, str):
        factory = {name.upper(): make for name, make in V2_DEVICES.items()}.get(target.upper())
        return None if factory is None else factory()
    if isinstance(target, Device) and target.ip_version is not IpVersion.v1:
        return target
    return None


def akida2_mapping_issues(akida_model, device) -> list:
    """One hardware-level Issue per layer of a converted Akida 2.0 model that `device` refuses with
    `map(hw_only=True)` (the default mapping then runs it in software); [] when the model maps."""
    from akida_core.mapping.v2.mapper import LayerMappingError
    try:
        akida_model.map(device, hw_only=True)
    except LayerMappingError as err:
        return [Issue(layer, "mapping", f"Layer '{layer}' cannot be mapped in hardware on {device.name} (it "
                      f"converts; runs in software there): {' '.join(reasons)}", None, None,
                      "change the layer as the message says, or use a larger device "
                      "(akida_core.compute_min_device(model) gives the smallest one).", HARDWARE)
                for layer, reasons in err.issues.items()]
    finally:
        akida_model.map(None)
    return []

"""Which quantization scheme ``quantizeml.models.quantize`` runs: Akida 1.0 or Akida 2.0.

The generation is MetaTF's setting, the environment variable ``CNN2SNN_TARGET_AKIDA_VERSION``
(``cnn2snn.set_akida_version`` sets it; quantizeml reads it without importing cnn2snn). When it is
not set, the settings object decides: ``quantizeml.QuantizationParams`` is the Akida 1.0 recipe,
``quantizeml.models.QuantizationParams`` (= ``quantizeml.v2.QuantizationParams``) MetaTF's.
"""
from __future__ import annotations

import os

from .errors import QuantizationConfigError

ENVIRONMENT = "CNN2SNN_TARGET_AKIDA_VERSION"


def selected_generation() -> str | None:
    """'v1' or 'v2' when the Akida version was selected explicitly, else None.

    Raises:
        QuantizationConfigError: the environment variable holds another value.
    """
    value = os.environ.get(ENVIRONMENT)
    if value is None:
        return None
    if value not in ("v1", "v2"):
        raise QuantizationConfigError(f"{ENVIRONMENT}={value!r} is not an Akida version; "
                                      "allowed: v1, v2.")
    return value


def to_akida1(params):
    """The Akida 1.0 QuantizationParams with the same fields as Akida 2.0 ``params``.

    ``output_bits`` (MetaTF default 8) only sets the InputData bits of an Akida 1.0 model that
    does not start with an input convolution: a value Akida 1.0 has no InputData for becomes the
    Akida 1.0 default (4), as MetaTF ignores it for image models.

    Raises:
        QuantizationConfigError: a value Akida 1.0 cannot use, with the fix.
    """
    from .params import ALLOWED_INPUT_DATA_BITS
    from .params import QuantizationParams as Akida1Params
    fields = params.to_dict()
    if fields["output_bits"] not in ALLOWED_INPUT_DATA_BITS:
        fields["output_bits"] = Akida1Params().output_bits
    try:
        return Akida1Params(**fields)
    except QuantizationConfigError as err:
        raise QuantizationConfigError(
            f"{err} The selected Akida version is v1 (AKD1000). Hint: use 4-bit weights and "
            "activations (QuantizationParams(weight_bits=4, activation_bits=4, output_bits=4)), "
            "or select Akida 2.0 with cnn2snn.set_akida_version(AkidaVersion.v2).") from err

"""Which quantization scheme ``quantizeml.models.quantize`` runs: Akida 1.0 or Akida 2.0.

The generation is MetaTF's setting, the environment variable ``CNN2SNN_TARGET_AKIDA_VERSION``
(``cnn2snn.set_akida_version`` sets it; quantizeml reads it without importing cnn2snn), default
Akida 2.0 as in MetaTF. ``quantizeml.Akida1QuantizationParams`` is an explicit Akida 1.0 choice:
with the variable unset, settings of that class select the Akida 1.0 scheme.
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
                                      "allowed: v1, v2. Hint: unset it (default v2) or use "
                                      "cnn2snn.set_akida_version(AkidaVersion.v1).")
    return value


def scheme_of(settings) -> str:
    """'v1' or 'v2': the scheme ``quantize`` runs for these settings objects (None entries allowed).

    Akida 1.0 when Akida 1.0 is selected, or when nothing is selected and the settings are
    ``Akida1QuantizationParams``; Akida 2.0 otherwise (MetaTF's default).

    Raises:
        QuantizationConfigError: Akida1QuantizationParams under an explicit Akida 2.0 selection, or
            the environment variable holds another value than v1 or v2.
    """
    from .params import Akida1QuantizationParams
    selected = selected_generation()
    akida1 = [p for p in settings if isinstance(p, Akida1QuantizationParams)]
    if selected == "v2" and akida1:
        raise QuantizationConfigError(
            f"{akida1[0]!r} is an Akida 1.0 recipe but Akida 2.0 is selected "
            f"({ENVIRONMENT}=v2). Hint: use quantizeml.QuantizationParams for Akida 2.0, or "
            "quantize inside `with cnn2snn.set_akida_version(AkidaVersion.v1):` for AKD1000.")
    if selected is not None:
        return selected
    return "v1" if akida1 else "v2"


def to_akida1(params):
    """The Akida 1.0 QuantizationParams with the same fields as Akida 2.0 ``params``.

    ``output_bits`` (MetaTF default 8) only sets the InputData bits of an Akida 1.0 model that
    does not start with an input convolution: a value Akida 1.0 has no InputData for becomes the
    Akida 1.0 default (4), as MetaTF ignores it for image models.

    Raises:
        QuantizationConfigError: a value Akida 1.0 cannot use, with the fix.
    """
    from .params import ALLOWED_INPUT_DATA_BITS
    from .params import Akida1QuantizationParams as Akida1Params
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

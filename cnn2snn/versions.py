"""Akida IP version selection, as in MetaTF (`AkidaVersion`, `get_akida_version`, `set_akida_version`).

The default is Akida 2.0 (v2), as in MetaTF. The selection decides which scheme
`quantizeml.models.quantize` runs, which generation `check_model_compatibility` and `cnn2snn-check`
check without a target, and which `cnn2snn-demo` runs. Akida 1.0 (AKD1000) stays fully available:
`with set_akida_version(AkidaVersion.v1): ...`, an Akida 1.0 `target`, or
`quantizeml.Akida1QuantizationParams`.
"""
from __future__ import annotations

import contextlib
import enum
import os

from .errors import ConversionError, Issue

_ENV = "CNN2SNN_TARGET_AKIDA_VERSION"


class AkidaVersion(enum.Enum):
    """Akida IP generations: v1 (Akida 1.0, AKD1000) and v2 (Akida 2.0)."""

    v1 = "v1"
    v2 = "v2"


def get_akida_version() -> AkidaVersion:
    """Returns the target Akida version (env CNN2SNN_TARGET_AKIDA_VERSION, default v2 as in MetaTF).

    Raises:
        ValueError: if the environment variable holds another value than v1 or v2.
    """
    value = os.environ.get(_ENV, AkidaVersion.v2.value)
    try:
        return AkidaVersion(value)
    except ValueError as err:
        raise ValueError(f"{_ENV}={value!r} is not an Akida version; allowed: v1, v2. "
                         "Unset it (default v2) or select one with "
                         "set_akida_version(AkidaVersion.v1).") from err


@contextlib.contextmanager
def set_akida_version(version: AkidaVersion):
    """Context manager selecting the Akida version, restoring the previous one on exit.

    Args:
        version: an AkidaVersion.

    Raises:
        TypeError: if `version` is not an AkidaVersion.
    """
    if not isinstance(version, AkidaVersion):
        raise TypeError(f"set_akida_version expects an AkidaVersion (v1 or v2), got {version!r}.")
    previous = os.environ.get(_ENV)
    os.environ[_ENV] = version.value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(_ENV, None)
        else:
            os.environ[_ENV] = previous


def refuse_akida1_under_v2(model):
    """Raises a ConversionError (one issue, the fix) for an Akida 1.0-quantized model while
    Akida 2.0 is selected explicitly; returns otherwise."""
    if os.environ.get(_ENV) != "v2":
        return
    name = getattr(model, "name", "model")
    raise ConversionError([Issue("model", "generation", f"Model '{name}' is quantized with the "
                                 "Akida 1.0 scheme but Akida 2.0 is selected "
                                 f"({_ENV}=v2).", "Akida 1.0", "Akida 2.0",
                                 "quantize the float model again with "
                                 "quantizeml.models.quantize(model, qparams=QuantizationParams()) "
                                 "for Akida 2.0, or convert it for Akida 1.0 inside `with "
                                 "set_akida_version(AkidaVersion.v1):` or with "
                                 "convert(model, target='AKD1000').")], "Akida 2.0")

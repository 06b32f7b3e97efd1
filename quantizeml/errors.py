"""Exception types of quantizeml.

Every error caused by a user's model, file, configuration or data is one of these, so callers (and
the cnn2snn CLI) can tell a bad input apart from a bug. All are ``ValueError`` subclasses except
``UnsafeModelError`` which is also a ``ValueError`` (the input was wrong) but must never be retried.
"""
from __future__ import annotations


class QuantizeMLError(Exception):
    """Base class of every quantizeml error."""


class QuantizationConfigError(QuantizeMLError, ValueError):
    """A quantization setting (bits, per-layer override, argument) has a disallowed value."""


class QuantizationError(QuantizeMLError, ValueError):
    """A model cannot be quantized for the target; ``.issues`` lists every problem found at once."""

    def __init__(self, issues: list[str] | str):
        self.issues = [issues] if isinstance(issues, str) else list(issues)
        if len(self.issues) == 1:
            text = self.issues[0]
        else:
            text = f"{len(self.issues)} problems prevent quantization:\n" + "\n".join(
                f"  - {issue}" for issue in self.issues
            )
        super().__init__(text)


class UnsupportedLayerError(QuantizationError):
    """The model holds layers (or layer settings) that have no quantized twin for the target."""


class CalibrationError(QuantizeMLError, ValueError):
    """Calibration samples are missing, empty, of the wrong shape or contain NaN/Inf."""


class ModelFormatError(QuantizeMLError, ValueError):
    """A model file or in-memory model description is malformed, truncated or inconsistent."""


class UnsafeModelError(ModelFormatError):
    """A model file asks to run code (Lambda, arbitrary functions/modules) and is refused."""

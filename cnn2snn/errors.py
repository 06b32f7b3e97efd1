"""Issue records and the exceptions of cnn2snn.

An :class:`Issue` is one reason a model cannot run on a target: it names the layer, the rule, the
value found, the values allowed and a fix. Checks return lists of Issues; `convert` raises one
:class:`ConversionError` holding all of them.
"""
from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Issue:
    """One incompatibility between a Keras model and a hardware target.

    Attributes:
        layer: the Keras layer name(s) concerned ("model" for model-level issues).
        rule: a short stable rule identifier (e.g. "kernel_size", "unsupported_layer").
        message: one sentence stating the fact, naming the layer and the target.
        found: the value found (JSON-friendly).
        allowed: the values allowed (JSON-friendly), or a description.
        hint: how to fix it.
    """

    layer: str
    rule: str
    message: str
    found: Any = None
    allowed: Any = None
    hint: str = ""

    def __str__(self):
        return f"{self.message} Hint: {self.hint}" if self.hint else self.message

    def to_dict(self) -> dict:
        """Returns the issue as a JSON-serializable dict."""
        return {"layer": self.layer, "rule": self.rule, "message": self.message,
                "found": _jsonable(self.found), "allowed": _jsonable(self.allowed),
                "hint": self.hint}


def _jsonable(value):
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "name") and hasattr(value, "value"):  # enums
        return value.name
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def summarize(issues, target_name: str) -> str:
    """Returns the summary line: "N issues in M layers" or "compatible with <target>"."""
    if not issues:
        return f"compatible with {target_name}"
    layers = {issue.layer for issue in issues}
    return (f"{len(issues)} issue{'s' if len(issues) != 1 else ''} in {len(layers)} "
            f"layer{'s' if len(layers) != 1 else ''}")


class Cnn2snnError(Exception):
    """Base class of every cnn2snn error."""


class ConversionError(Cnn2snnError, ValueError):
    """A model cannot be converted; `.issues` lists every problem found, each with a fix."""

    def __init__(self, issues, target_name: str = "AKD1000", header: str = ""):
        self.issues = list(issues)
        self.target_name = target_name
        lines = [header or f"Model cannot be converted for {target_name}: "
                 f"{summarize(self.issues, target_name)}."]
        lines += [f"  - {issue}" for issue in self.issues]
        super().__init__("\n".join(lines))


class ModelFileError(Cnn2snnError, ValueError):
    """A model file cannot be read: missing, unreadable, corrupt or unsafe."""

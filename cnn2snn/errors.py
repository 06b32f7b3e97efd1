"""Issue records and the exceptions of cnn2snn.

An :class:`Issue` is one reason a model cannot run on a target: it names the layer, the rule, the
value found, the values allowed and a fix, and carries a level:

- ``"convert"``: no Akida 1.0 model can express it (MetaTF's converter refuses it too); `convert`
  raises one :class:`ConversionError` holding every such issue;
- ``"hardware"``: the model converts, but on the target `map(device, hw_only=True)` refuses it; the
  default mapping runs the model as several sequences, part of it in software. `convert` accepts it
  with one :class:`ConversionWarning` naming these issues.
"""
from __future__ import annotations

import dataclasses
from typing import Any

#: The model cannot be converted: no Akida 1.0 layer expresses it.
CONVERT = "convert"
#: The model converts; the target cannot map it in hardware in one sequence (part runs in software).
HARDWARE = "hardware"
LEVELS = (CONVERT, HARDWARE)


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
        level: CONVERT (convert refuses it) or HARDWARE (converts; not mappable in hardware only).
    """

    layer: str
    rule: str
    message: str
    found: Any = None
    allowed: Any = None
    hint: str = ""
    level: str = CONVERT

    def __post_init__(self):
        assert self.level in LEVELS, self.level

    def __str__(self):
        return f"{self.message} Hint: {self.hint}" if self.hint else self.message

    def to_dict(self) -> dict:
        """Returns the issue as a JSON-serializable dict."""
        return {"layer": self.layer, "rule": self.rule, "message": self.message,
                "found": _jsonable(self.found), "allowed": _jsonable(self.allowed),
                "hint": self.hint, "level": self.level}


def _jsonable(value):
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "name") and hasattr(value, "value"):  # enums
        return value.name
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _count(issues) -> str:
    layers = {issue.layer for issue in issues}
    return (f"{len(issues)} issue{'s' if len(issues) != 1 else ''} in {len(layers)} "
            f"layer{'s' if len(layers) != 1 else ''}")


def summarize(issues, target_name: str) -> str:
    """Returns the summary line: "compatible with <target>", or the issue counts per level, e.g.
    "2 issues in 2 layers: 1 convert-level (does not convert), 1 hardware-level (converts; not
    mappable on AKD1000 in hardware only)"."""
    if not issues:
        return f"compatible with {target_name}"
    parts = []
    for level, meaning in ((CONVERT, "does not convert"),
                           (HARDWARE, f"converts; not mappable on {target_name} in hardware only")):
        count = sum(issue.level == level for issue in issues)
        if count:
            parts.append(f"{count} {level}-level ({meaning})")
    return f"{_count(issues)}: {', '.join(parts)}"


def by_level(issues, level: str) -> list:
    """The issues of one level, in their order."""
    return [issue for issue in issues if issue.level == level]


class Cnn2snnError(Exception):
    """Base class of every cnn2snn error."""


class ConversionError(Cnn2snnError, ValueError):
    """A model cannot be converted; `.issues` lists every problem found, each with a fix."""

    def __init__(self, issues, target_name: str = "AKD1000", header: str = ""):
        self.issues = list(issues)
        self.target_name = target_name
        lines = [header or f"Model cannot be converted for {target_name}: "
                 f"{_count(self.issues)}."]
        lines += [f"  - {issue}" for issue in self.issues]
        super().__init__("\n".join(lines))


class ConversionWarning(UserWarning):
    """A model converted, with a caveat: hardware-level issues (it maps on the target only as
    several sequences, part in software), or an input narrowed on request."""


class ModelFileError(Cnn2snnError, ValueError):
    """A model file cannot be read: missing, unreadable, corrupt or unsafe."""

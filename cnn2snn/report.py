"""Formatting check results for people (text) and programs (JSON); used by the CLI."""
from __future__ import annotations

import json

from .errors import CONVERT, HARDWARE, by_level, summarize

_HEADINGS = {CONVERT: "convert-level issues (the model does not convert):",
             HARDWARE: "hardware-level issues (it converts; map(device, hw_only=True) refuses it "
                       "on {target}: the default mapping runs it as several sequences, part in "
                       "software):"}


def text_report(issues, target_name: str, source: str, skipped=(), akida_version=None) -> str:
    """Returns the human-readable report: issues grouped by level, then by layer, then the summary.

    Args:
        issues: list of Issue.
        target_name: e.g. "AKD1000".
        source: the model file or name.
        skipped: (layer name, reason) pairs of layers producing no Akida layer.
        akida_version: "v1" or "v2", the Akida generation checked (shown when given).
    """
    generation = {"v1": "Akida 1.0", "v2": "Akida 2.0"}.get(akida_version)
    shown = target_name if generation is None or generation in target_name else \
        f"{target_name} ({generation})"
    lines = [f"{source}: checked for {shown}"]
    for level in (CONVERT, HARDWARE):
        level_issues = by_level(issues, level)
        if not level_issues:
            continue
        lines.append(_HEADINGS[level].format(target=target_name))
        groups = {}
        for issue in level_issues:
            groups.setdefault(issue.layer, []).append(issue)
        for layer, layer_issues in groups.items():
            lines.append(f"  {layer}:")
            lines += [f"    [{issue.rule}] {issue}" for issue in layer_issues]
    for name, reason in skipped:
        lines.append(f"skipped {name}: {reason}")
    lines.append(summarize(issues, target_name))
    return "\n".join(lines)


def json_report(issues, target_name: str, source: str, skipped=(), akida_version=None) -> str:
    """Returns the report as a JSON document (sorted keys, stable for snapshots); "akida_version"
    ("v1", "v2" or null) is the Akida generation checked."""
    return json.dumps({"model": source, "target": target_name, "akida_version": akida_version,
                       "compatible": not issues,
                       "converts": not by_level(issues, CONVERT),
                       "summary": summarize(issues, target_name),
                       "issues": [issue.to_dict() for issue in issues],
                       "skipped": [{"layer": n, "reason": r} for n, r in skipped]},
                      indent=2, sort_keys=True)

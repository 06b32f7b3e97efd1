"""Pattern objects and their registry: the data that says which Keras blocks become which Akida layer.

A Pattern is a name, an ordered sequence of steps (each a set of Keras layer kinds, optional or not,
with a role name), the Akida layer kind it produces and a `build(block, context)` function. Each
produced kind has its own module in this package that registers its patterns on import.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional

from akida_core import LayerType

from ..keras_model import KIND_NAMES


@dataclasses.dataclass(frozen=True)
class Step:
    """One position of a pattern: the accepted layer kinds, whether optional, and its role name."""

    kinds: tuple
    role: str
    optional: bool = False

    def __str__(self):
        text = "|".join(KIND_NAMES.get(k, k) for k in self.kinds)
        return f"[{text}]" if self.optional else text


def one(role, *kinds):
    """A mandatory step."""
    return Step(tuple(kinds), role, optional=False)


def maybe(role, *kinds):
    """An optional step."""
    return Step(tuple(kinds), role, optional=True)


@dataclasses.dataclass(frozen=True)
class Pattern:
    """A registered conversion rule.

    Attributes:
        name: unique name (e.g. "conv-pool-relu").
        sequence: the ordered steps it consumes.
        produces: the Akida layer kind built.
        build: `build(block, context) -> (akida layer, issues)`; None for structure-only patterns.
        first_only: the pattern only applies to the model's first block (input layers).
        description: one line for `--list-patterns`.
        generation: the Akida generation of the produced layer, "v1" or "v2".
    """

    name: str
    sequence: tuple
    produces: LayerType
    build: Optional[Callable] = None
    first_only: bool = False
    description: str = ""
    generation: str = "v1"

    def __str__(self):
        return " > ".join(str(s) for s in self.sequence) or "(no Keras layer)"

    def uses(self, kind: str) -> bool:
        """Whether any step of the pattern accepts `kind`."""
        return any(kind in step.kinds for step in self.sequence)

    def match(self, infos, start: int) -> Optional[dict]:
        """Longest match of the pattern at infos[start:]; returns {role: LayerInfo} or None.

        The roles dict keeps insertion order, i.e. the Keras layer order of the block.
        """
        best = None

        def walk(step_index, pos, roles):
            nonlocal best
            if step_index == len(self.sequence):
                if roles and (best is None or len(roles) > len(best)):
                    best = dict(roles)
                return
            step = self.sequence[step_index]
            if pos < len(infos) and infos[pos].kind in step.kinds:
                roles[step.role] = infos[pos]
                walk(step_index + 1, pos + 1, roles)
                del roles[step.role]
            if step.optional:
                walk(step_index + 1, pos, roles)

        walk(0, start, {})
        return best


_REGISTRY: dict = {}


def register(pattern: Pattern) -> Pattern:
    """Adds a pattern to the registry.

    Raises:
        ValueError: if a pattern with the same name is already registered.
    """
    if pattern.name in _REGISTRY:
        raise ValueError(f"Pattern '{pattern.name}' is already registered "
                         f"({_REGISTRY[pattern.name]}); choose a unique name.")
    _REGISTRY[pattern.name] = pattern
    return pattern


def registered_patterns(generation=None) -> tuple:
    """Returns every registered pattern (of one generation, "v1" or "v2", if given), in
    registration order."""
    return tuple(p for p in _REGISTRY.values() if generation in (None, p.generation))


def list_patterns() -> str:
    """Returns the registry as text, one pattern per line (what `--list-patterns` prints)."""
    lines = []
    for p in registered_patterns():
        where = " (first layer only)" if p.first_only else ""
        lines.append(f"{p.name:<28} {p.generation}  {p.produces.name:<24} {p}{where}")
    return "\n".join(lines)

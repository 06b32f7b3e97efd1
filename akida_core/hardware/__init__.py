"""Hardware constraints tables, one frozen :class:`HardwareTarget` per device generation.

Example:
    >>> from akida_core import LayerType
    >>> from akida_core.hardware import AKD1000, get_target
    >>> get_target("akd1000").limits(LayerType.Convolutional).kernel_sizes
    (1, 3, 5, 7)
"""
from .akd1000 import AKD1000
from .limits import HardwareTarget, LayerLimits

#: Every known target by name; a new device table is one new module plus one entry here.
TARGETS = {AKD1000.name: AKD1000}


def get_target(target) -> HardwareTarget:
    """Returns the HardwareTarget for a target object or a (case-insensitive) device name.

    Args:
        target: a HardwareTarget, or its name such as "AKD1000".

    Returns:
        The HardwareTarget.

    Raises:
        ValueError: if the name is unknown (the message lists the known targets).
    """
    if isinstance(target, HardwareTarget):
        return target
    by_upper = {name.upper(): t for name, t in TARGETS.items()}
    if isinstance(target, str) and target.upper() in by_upper:
        return by_upper[target.upper()]
    raise ValueError(f"Unknown hardware target {target!r}; known targets: "
                     f"{', '.join(sorted(TARGETS))}. Pass one of these names or a HardwareTarget.")


__all__ = ["AKD1000", "HardwareTarget", "LayerLimits", "TARGETS", "get_target"]

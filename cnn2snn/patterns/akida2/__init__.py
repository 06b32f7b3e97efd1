"""Akida 2.0 conversion patterns (generation "v2"): importing this package registers them."""
from . import io, neural  # noqa: F401

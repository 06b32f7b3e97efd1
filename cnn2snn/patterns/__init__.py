"""The conversion pattern registry; importing this package registers every pattern.

One module per produced Akida layer kind; adding a kind is adding a module here.
"""
from . import (akida2, convolutional, fully_connected, input_convolutional,  # noqa: F401
               input_data, separable_convolutional)
from .base import Pattern, Step, list_patterns, maybe, one, register, registered_patterns

__all__ = ["Pattern", "Step", "list_patterns", "maybe", "one", "register", "registered_patterns"]

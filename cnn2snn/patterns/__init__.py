"""The conversion pattern registry; importing this package registers every pattern.

One module per produced Akida layer kind; adding a kind is adding a module here.
"""
from . import (convolutional, fully_connected, input_convolutional, input_data,  # noqa: F401
               separable_convolutional)
from .base import Pattern, Step, list_patterns, maybe, one, register, registered_patterns

__all__ = ["Pattern", "Step", "list_patterns", "maybe", "one", "register", "registered_patterns"]

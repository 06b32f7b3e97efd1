"""Edge learning (Akida 1.0): `rule` (AkidaUnsupervised options and the pure weight-update rule) and
`training` (compile, fit, add_classes on a model, its .fbz state and summary section)."""
from .rule import AkidaUnsupervised, LearningError, LearningParameterError
from .training import *  # noqa: F401,F403 (the flat `akida_core.learning` module's API)
from .training import (add_classes, class_scores, compile_model, fit_model, learning_histogram, learning_layer,
                       learning_summary)

__all__ = ["AkidaUnsupervised", "LearningError", "LearningParameterError", "add_classes", "class_scores",
           "compile_model", "fit_model", "learning_histogram", "learning_layer", "learning_summary"]

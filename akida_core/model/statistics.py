"""Statistics of the last inference: per-layer events (non-zero outputs), sparsity and MACs."""
import dataclasses
import math

import numpy as np

from .inference import layer_macs

# --- hardware estimates hook (akida_core.mapping registers `estimator(model, statistics)`) ---
_ESTIMATORS = []


def register_estimator(estimator):
    """Register `estimator(model, statistics) -> labelled estimates or None` (used by mapping)."""
    if estimator not in _ESTIMATORS:
        _ESTIMATORS.append(estimator)
# --- end of hook ---


@dataclasses.dataclass
class LayerStatistics:
    """Counts of one layer over the samples of the last inference."""

    name: str
    macs_per_sample: int
    outputs_per_sample: int
    samples: int = 0
    events: int = 0

    @property
    def sparsity(self):
        """Fraction of zero outputs (0.0 when nothing ran)."""
        total = self.samples * self.outputs_per_sample
        return 1.0 - self.events / total if total else 0.0

    @property
    def events_per_sample(self):
        """Average number of non-zero outputs per sample."""
        return self.events / self.samples if self.samples else 0.0


class Statistics:
    """Per-layer statistics of the last forward; mapping adds labelled hardware estimates.

    `str(statistics)` prints a table; `statistics.layers[name]` gives one layer's counts.

    Inference only appends (layer name, samples, events) triples; the LayerStatistics entries are made
    and summed when `layers` is first read (most inferences never read them, and building them cost
    about as much as a small layer's product at batch 1).
    """

    def __init__(self, model=None, entries=()):
        self._layers = {}
        self._entries = entries  # (name, macs per sample, outputs per sample) still to be made
        self._pending = []  # (name, samples, events) still to be added
        self.fps = None
        self._model = model

    @property
    def layers(self):
        """{layer name: LayerStatistics} of the last inference."""
        if self._entries or self._pending:
            self._settle()
        return self._layers

    def _settle(self):
        for name, macs, outputs in self._entries:
            self._layers[name] = LayerStatistics(name, macs, outputs)
        self._entries = ()
        pending, self._pending = self._pending, []
        for name, samples, events in pending:
            entry = self._layers[name]
            entry.samples += samples
            entry.events += int(events)

    @property
    def estimates(self):
        """Labelled hardware estimates of the model's current mapping (None when not mapped)."""
        for estimator in _ESTIMATORS if self._model is not None else ():
            found = estimator(self._model, self)
            if found is not None:
                return found
        return None

    @staticmethod
    def entries_of(layers):
        """The (name, macs per sample, outputs per sample) of these layers, for `for_layers`."""
        return tuple((layer.name, layer_macs(layer), math.prod(layer.output_dims)) for layer in layers)

    @classmethod
    def for_layers(cls, layers, entries=None):
        """Empty statistics for these layers (`entries`: their `entries_of`, when already known)."""
        return cls(layers[0].model if layers else None, cls.entries_of(layers) if entries is None else entries)

    def record(self, layer, outputs):
        """Add the outputs of one chunk of samples (counted now: the caller may change them later)."""
        self._pending.append((layer.name, outputs.shape[0], np.count_nonzero(outputs)))

    def merge(self, other):
        """Add the counts of `other` (statistics of the same layers on other samples)."""
        for name, entry in other.layers.items():
            self._pending.append((name, entry.samples, entry.events))

    @property
    def samples(self):
        """Number of samples of the last inference."""
        return max((s.samples for s in self.layers.values()), default=0)

    def __str__(self):
        if not self.layers:
            estimates = self.estimates
            return "No inference statistics: run forward() or predict() first." + (
                "" if estimates is None else "\n" + str(estimates))
        lines = [f"Inference statistics ({self.samples} samples)",
                 f"{'Layer':<24}{'MACs/sample':>14}{'events/sample':>16}{'sparsity':>10}"]
        for s in self.layers.values():
            lines.append(f"{s.name:<24}{s.macs_per_sample:>14,}{s.events_per_sample:>16.1f}"
                         f"{s.sparsity:>10.1%}")
        if self.estimates is not None:
            lines.append(str(self.estimates))
        else:
            lines.append("Average framerate = N/A (no hardware device: see model.map() for estimates)")
        return "\n".join(lines)

    __repr__ = __str__

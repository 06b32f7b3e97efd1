"""ESTIMATES, not measurements: latency, frames per second and energy of a mapped model.

There is no Akida hardware here. This is a documented cost model (docs/mapping.md), good for
comparing mappings of the same model, not for predicting a real device to better than a factor
of a few. Its assumptions, all in `COST_MODEL_V1`:

* Akida is event-based: a layer's work is its MACs times the density of its input events (non-zero
  inputs) measured by the last inference of the model; before any inference, density 1.0.
* Each CNP or FNP does `ops_per_np_per_clock` synaptic operations per clock, the HRC
  `hrc_macs_per_clock` MACs (its 8-bit input is dense); a layer split over k NPs runs k times faster.
* The layers of a sequence run one after the other (no pipelining), plus the time to stream the
  input in at `input_bytes_per_clock`. Software sequences run on the host and are not estimated.
* Energy per frame = static power of the clock mode x latency + `picojoules_per_op` x operations.
"""
import dataclasses

from ..enums import LayerType
from .soc import ClockMode


@dataclasses.dataclass(frozen=True)
class CostModel:
    """Assumed (not probed) constants of the estimates; see the module docstring."""

    name: str
    ops_per_np_per_clock: int
    hrc_macs_per_clock: int
    input_bytes_per_clock: int
    picojoules_per_op: float
    static_milliwatts: dict


COST_MODEL_V1 = CostModel(
    name="akida_core cost model v1",
    ops_per_np_per_clock=8,
    hrc_macs_per_clock=32,
    input_bytes_per_clock=4,
    picojoules_per_op=2.0,
    static_milliwatts={ClockMode.Performance: 30.0, ClockMode.Economy: 12.0, ClockMode.LowPower: 1.0},
)


@dataclasses.dataclass(frozen=True)
class SequenceEstimate:
    """Estimated cost of one hardware sequence per frame at one clock mode."""

    sequence: str
    clock_mode: ClockMode
    clocks: int
    operations: int

    @property
    def latency_ms(self):
        """Estimated milliseconds per frame."""
        return self.clocks / (self.clock_mode.mhz * 1e3)

    @property
    def fps(self):
        """Estimated frames per second."""
        return 1e3 / self.latency_ms if self.clocks else float("inf")

    @property
    def energy_mj(self):
        """Estimated millijoules per frame."""
        static = COST_MODEL_V1.static_milliwatts[self.clock_mode] * self.latency_ms * 1e-3
        return static + self.operations * COST_MODEL_V1.picojoules_per_op * 1e-9


class Estimates:
    """Labelled estimates of every hardware sequence at every clock mode (`model.statistics.estimates`)."""

    def __init__(self, entries, clock_mode, software):
        self.entries = tuple(entries)
        self.clock_mode = clock_mode
        self.software = tuple(software)
        self.cost_model = COST_MODEL_V1

    def at(self, clock_mode=None):
        """Entries at one clock mode (default: the device's current one)."""
        mode = clock_mode or self.clock_mode
        return [e for e in self.entries if e.clock_mode is mode]

    @property
    def fps(self):
        """Estimated frames per second of the whole model at the current clock mode (hardware part)."""
        total_ms = sum(e.latency_ms for e in self.at())
        return 1e3 / total_ms if total_ms else None

    def lines(self):
        """The text table (every line says these are estimates)."""
        out = [f"ESTIMATES ({self.cost_model.name}; not measured, see docs/mapping.md), "
               f"device clock mode: {self.clock_mode.name}",
               f"{'Sequence':<36}{'Clock mode':<20}{'latency ms':>12}{'est. fps':>12}{'mJ/frame':>12}"]
        for e in self.entries:
            out.append(f"{e.sequence:<36}{e.clock_mode.name + f' {e.clock_mode.mhz} MHz':<20}"
                       f"{e.latency_ms:>12.4f}{e.fps:>12.1f}{e.energy_mj:>12.5f}")
        for name in self.software:
            out.append(f"{name:<36}{'(host CPU: not estimated)'}")
        return out

    def __str__(self):
        return "\n".join(self.lines())


def _densities(model, statistics):
    """Input event density of each layer from the last inference (1.0 when nothing ran)."""
    out, previous = {}, None
    for layer in model.layers:
        density = 1.0
        if previous is not None and statistics is not None:
            entry = statistics.layers.get(previous)
            if entry is not None and entry.samples:
                density = 1.0 - entry.sparsity
        out[layer.name] = density
        previous = layer.name
    return out


def estimate(model, statistics=None):
    """Estimates for the model's current mapping, or None when it is not mapped.

    Args:
        model: a mapped Model.
        statistics: Statistics of the last inference (for event densities), or None.

    Returns:
        An Estimates object.
    """
    mapping = model._mapping
    if mapping is None or mapping.device.ip_version.name != "v1":  # no documented Akida 2.0 cost model
        return None
    density = _densities(model, statistics)
    entries, software = [], []
    for sequence in mapping.sequences:
        if sequence.backend.name == "Software":
            software.append(sequence.name)
            continue
        clocks, ops = _sequence_cost(sequence, density)
        entries.extend(SequenceEstimate(sequence.name, mode, clocks, ops) for mode in ClockMode)
    return Estimates(entries, mapping.device.soc.clock_mode, software)


def _sequence_cost(sequence, density):
    cm = COST_MODEL_V1
    first = sequence.layers[0]
    in_bytes = -(-int(first.input_dims[0] * first.input_dims[1] * first.input_dims[2] * first.input_bits) // 8)
    clocks, ops = -(-in_bytes // cm.input_bytes_per_clock), 0
    nps = sequence.nps
    for layer in sequence.layers:
        if not nps[layer.name]:
            continue
        if layer.layer_type == LayerType.InputConvolutional:
            work = layer.macs
            clocks += -(-work // cm.hrc_macs_per_clock)
        else:
            # Filters are split over the NPs: the NP holding the most filters sets the pace.
            work = int(round(layer.macs * density[layer.name]))
            share = max(m.stop - m.start for m in nps[layer.name]) / sum(m.stop - m.start for m in nps[layer.name])
            clocks += -(-int(round(work * share)) // cm.ops_per_np_per_clock)
        ops += work
    return clocks, ops

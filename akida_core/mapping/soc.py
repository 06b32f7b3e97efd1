"""System-on-chip settings of a device: clock mode and power measurement (`device.soc`).

There is no Akida hardware here, so nothing is measured: the settings exist so that seed-style code
(`device.soc.power_measurement_enabled = True`, `device.soc.clock_mode = ClockMode.Performance`)
runs, and the clock mode selects the frequency of the labelled estimates (akida_core.estimates).
"""
import enum


class ClockMode(enum.Enum):
    """Clock modes of an Akida SoC; `.mhz` is the clock frequency (reference api.md "Power")."""

    Performance = 300
    Economy = 100
    LowPower = 5

    @property
    def mhz(self):
        """Clock frequency in MHz."""
        return self.value


class PowerMeter:
    """Power meter of a SoC; a virtual device has no sensor, so it never records events."""

    def __init__(self):
        self.floor = None

    def events(self):
        """Power events recorded since the last call: always empty on a virtual device."""
        return []


class SoC:
    """Clock and power-measurement settings of one device (validated on assignment)."""

    def __init__(self):
        self._power_measurement_enabled = False
        self._clock_mode = ClockMode.Performance
        self.power_meter = PowerMeter()

    @property
    def power_measurement_enabled(self):
        """Whether power is measured during inference (no effect on a virtual device)."""
        return self._power_measurement_enabled

    @power_measurement_enabled.setter
    def power_measurement_enabled(self, value):
        if not isinstance(value, bool):
            raise TypeError(f"SoC.power_measurement_enabled must be True or False, got {value!r}")
        self._power_measurement_enabled = value

    @property
    def clock_mode(self):
        """The ClockMode; it selects the clock frequency used by the mapping estimates."""
        return self._clock_mode

    @clock_mode.setter
    def clock_mode(self, value):
        if not isinstance(value, ClockMode):
            allowed = ", ".join(f"ClockMode.{m.name}" for m in ClockMode)
            raise TypeError(f"SoC.clock_mode={value!r} is not a ClockMode; allowed: {allowed}")
        self._clock_mode = value

    def __repr__(self):
        return (f"<SoC clock_mode={self._clock_mode.name} ({self._clock_mode.mhz} MHz) "
                f"power_measurement_enabled={self._power_measurement_enabled}>")

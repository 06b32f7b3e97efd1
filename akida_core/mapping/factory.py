"""`create_device`: a virtual device of either generation, by NP counts (MetaTF's signature).

Apart from devices.py and devices_v2.py because it needs both (devices_v2 builds on devices).
"""
from .devices import FPGA_v2, HwVersion, IpVersion, create_device_v1
from .devices_v2 import create_device_v2


def create_device(num_cnp_tnp, num_fnp, num_skip_dma_channel=0, include_hrc=True, sram_size=None,
                  hw_version=FPGA_v2):
    """Build a virtual device with the given NP counts, in nodes of 4 NPs (reference signature).

    The first FNP is an FNP2 (external memory), the others FNP3. With a v1 `hw_version` (such as
    NSoC_v2) the CNPs are CNP1 and the device uses the AKD1000 layer rows; the default FPGA_v2 builds
    an Akida 2.0 device (devices_v2.create_device_v2: slots rounded up to a multiple of 4, skip DMAs).

    Args:
        num_cnp_tnp: number of convolutional NPs (>= 0).
        num_fnp: number of fully connected NPs (>= 0).
        num_skip_dma_channel: skip-DMA channels (Akida 2.0 only).
        include_hrc: whether the device has an HRC for InputConvolutional layers.
        sram_size: Akida 2.0 SRAM per NP (None: the default; a devices_v2.SramSize or a pair).
        hw_version: a HwVersion.

    Returns:
        The Device.

    Raises:
        ValueError: negative counts, or a v2-only option with a v1 hw_version.
    """
    for name, value in (("num_cnp_tnp", num_cnp_tnp), ("num_fnp", num_fnp),
                        ("num_skip_dma_channel", num_skip_dma_channel)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"create_device: {name}={value!r} must be a non-negative int")
    if not isinstance(hw_version, HwVersion):
        raise TypeError(f"create_device: hw_version={hw_version!r} must be a HwVersion (e.g. NSoC_v2)")
    v1 = hw_version.ip_version is IpVersion.v1
    if v1 and (num_skip_dma_channel or sram_size is not None):
        raise ValueError(f"create_device: num_skip_dma_channel and sram_size are Akida 2.0 options; "
                         f"hw_version {hw_version.name} is IP v1. Hint: leave them at 0 / None.")
    if v1:
        return create_device_v1(num_cnp_tnp, num_fnp, include_hrc, hw_version)
    return create_device_v2(num_cnp_tnp, num_fnp, num_skip_dma_channel, include_hrc, sram_size, hw_version)



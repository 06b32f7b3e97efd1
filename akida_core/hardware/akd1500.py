"""AKD1500 (AKD1500_v1) and TwoNodesIP_v1: Akida 1.0 IP devices sharing AKD1000's layer rows.

Same IP (v1) as AKD1000, so the per-layer limits are AKD1000's rows; only the mesh differs.
Source: the virtual devices of BrainChip's runtime (akida 2.x `AKD1500()`, `TwoNodesIPv1()`:
versions, node and NP counts as it reports them; the Akida API reference's "Devices"). How
TwoNodesIP_v1 splits NP capabilities was not reported: it is our assumption (2 nodes of 4 NPs,
5 CNP2-capable, 2 FNP3, 1 FNP2).
"""
import dataclasses

from .akd1000 import AKD1000

AKD1500 = dataclasses.replace(
    AKD1000,
    name="AKD1500",
    num_nodes=8,
    num_nps=32,
    np_counts={"HRC": 1, "CNP1": 32, "CNP2": 21, "FNP3": 7, "FNP2": 1},
    hw_version=(0xBC, 0xA1, 3, 9),           # AKD1500_v1, "BC.A1.003.009"
)

TWO_NODES_IP_V1 = dataclasses.replace(
    AKD1000,
    name="TwoNodesIPv1",
    num_nodes=2,
    num_nps=8,
    np_counts={"HRC": 1, "CNP1": 8, "CNP2": 5, "FNP3": 2, "FNP2": 1},   # split assumed (see above)
    hw_version=(0xBC, 0xA1, 3, 6),           # TwoNodesIP_v1, "BC.A1.003.006"
)

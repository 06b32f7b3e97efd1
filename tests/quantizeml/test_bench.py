"""The digits benchmark meets its target: QAT within 1.5 points of float (slow: trains)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))


@pytest.mark.slow
def test_digits_qat_within_1_5_points_of_float():
    import quantization
    result = quantization.run(epochs=20, qat_epochs=3)
    assert result["float_acc"] > 95.0
    assert result["qat_acc"] >= result["float_acc"] - 1.5
    assert result["ptq_acc"] > 90.0

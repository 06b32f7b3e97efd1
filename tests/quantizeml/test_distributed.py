"""Scale-out: calibration and QAT under tf.distribute.MirroredStrategy with 2 logical CPUs.

Runs in a subprocess: logical devices must be configured before TensorFlow initialises.
"""
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.akida_version("v1")  # Akida 1.0 flows; the default is Akida 2.0

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = r"""
import json, warnings
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from quantizeml.models import quantize
from tests.quantizeml.conftest import small_cnn
warnings.simplefilter("ignore")
x = np.random.default_rng(1).integers(0, 256, (48, 12, 12, 1)).astype(np.float32)
y = np.arange(48) % 5
model = small_cnn()
single = quantize(model, samples=x, batch_size=16, verbose=0)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    mirrored = quantize(model, samples=x, batch_size=16, verbose=0)
    mirrored.compile(keras.optimizers.Adam(1e-3),
                     keras.losses.SparseCategoricalCrossentropy(from_logits=True))
equal = all(np.array_equal(a.numpy(), b.numpy())
            for a, b in zip(single.non_trainable_weights, mirrored.non_trainable_weights))
history = mirrored.fit(x, y, epochs=1, batch_size=16, verbose=0)
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "equal": equal,
                  "count": len(single.non_trainable_weights),
                  "loss": float(history.history["loss"][-1])}))
"""


@pytest.mark.slow
def test_mirrored_calibration_equals_single_device_and_qat_step_runs():
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, timeout=600,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["equal"] and report["count"] > 10
    assert report["loss"] == report["loss"] and report["loss"] < 1e6

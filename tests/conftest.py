"""Suite-wide test settings: quiet TensorFlow, a derandomized Hypothesis profile for CI."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("ci")



import pytest  # noqa: E402

#: The variable cnn2snn.set_akida_version sets (MetaTF's name).
AKIDA_VERSION_VARIABLE = "CNN2SNN_TARGET_AKIDA_VERSION"
_CALLER_VERSION = os.environ.get(AKIDA_VERSION_VARIABLE)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Selects the Akida version of a test before any of its fixtures (module-scoped ones
    included) is set up: `@pytest.mark.akida_version("v1")` (or a module's `pytestmark`) sets
    CNN2SNN_TARGET_AKIDA_VERSION; without the marker it is unset, so the test sees the default
    (Akida 2.0) whatever the caller's environment."""
    marker = item.get_closest_marker("akida_version")
    if marker is None:
        os.environ.pop(AKIDA_VERSION_VARIABLE, None)
        return
    version = marker.args[0]
    assert version in ("v1", "v2"), f"akida_version marker takes 'v1' or 'v2', got {version!r}"
    os.environ[AKIDA_VERSION_VARIABLE] = version


def pytest_sessionfinish(session, exitstatus):
    """Gives the caller's CNN2SNN_TARGET_AKIDA_VERSION back."""
    if _CALLER_VERSION is None:
        os.environ.pop(AKIDA_VERSION_VARIABLE, None)
    else:
        os.environ[AKIDA_VERSION_VARIABLE] = _CALLER_VERSION

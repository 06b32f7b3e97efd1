"""Old flat module paths (`akida_core.fbz`, `akida_core.devices`, ...) keep working after the regroup.

A meta-path finder maps each old dotted name to the module that now holds the code and returns that
very module object, so `from akida_core.fbz import loads`, `import akida_core.inference` and
monkeypatching an attribute through the old name all act on the real module. Nothing is imported
until an old name is asked for.
"""
import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {
    "kernels_v2": "kernels.v2",
    "model_state": "model.state", "inference": "model.inference", "inputs": "model.inputs",
    "statistics": "model.statistics", "summary": "model.summary",
    "fbz": "io.fbz", "fbz_errors": "io.fbz_errors",
    "devices": "mapping.devices", "soc": "mapping.soc", "mapping_rules": "mapping.rules",
    "mapping_state": "mapping.state", "program": "mapping.program", "estimates": "mapping.estimates",
    "learning_rule": "learning.rule",
    "mapping_cli": "cli.mapping", "demo": "cli.demo",
    "layers.convolutional": "layers.v1.convolutional", "layers.fully_connected": "layers.v1.fully_connected",
    "layers.input_convolutional": "layers.v1.input_convolutional",
    "layers.separable_convolutional": "layers.v1.separable_convolutional",
}
"""old name -> new name, both relative to the akida_core package."""


class _Alias(importlib.abc.Loader):
    def __init__(self, target):
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)

    def exec_module(self, module):
        """The target module is already executed."""


class LegacyFinder(importlib.abc.MetaPathFinder):
    """Finds `akida_core.<old name>` and hands out the module now at `akida_core.<new name>`."""

    def __init__(self, package):
        self.names = {f"{package}.{old}": f"{package}.{new}" for old, new in MOVED.items()}

    def find_spec(self, fullname, path=None, target=None):
        target_name = self.names.get(fullname)
        if target_name is None:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(target_name))


def install(package):
    """Register the finder once for `package`; old names of modules already imported are entered in
    sys.modules at once (so importing them later does not set a package attribute: `akida_core.devices`
    stays the devices() function, as before)."""
    for old, new in MOVED.items():
        module = sys.modules.get(f"{package}.{new}")
        if module is not None:
            sys.modules.setdefault(f"{package}.{old}", module)
    if not any(isinstance(finder, LegacyFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, LegacyFinder(package))  # before path finders: an old name is never a file

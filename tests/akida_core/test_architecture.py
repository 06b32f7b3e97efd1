"""The package layout: no import cycles between akida_core modules (counting imports inside functions
too), a docstring at the top of every package, no TensorFlow/Keras, and the old flat module paths
still importable."""
import ast
import importlib
import pathlib

import pytest

import akida_core
from akida_core._legacy import MOVED

ROOT = pathlib.Path(akida_core.__file__).parent


def _module_name(path):
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules():
    return {_module_name(path): path for path in ROOT.rglob("*.py")}


def _imports(name, path, modules):
    """Modules `name` imports anywhere in its file (relative imports resolved; `from pkg import sub`
    counts as an import of the submodule when `sub` is one)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in modules and m != name}


def test_no_import_cycles():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    # a package's __init__ re-exporting its own children is not a cycle: drop parent -> child edges
    graph = {name: {t for t in targets if not t.startswith(name + ".")} for name, targets in graph.items()}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "active"
        for target in sorted(graph[node]):
            if state.get(target) == "active":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack + [target])
        state[node] = "done"
    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_every_package_says_what_lives_there():
    for init in ROOT.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) > 40, f"{init} needs a docstring saying what lives in the package"


def test_no_tensorflow_or_keras():
    for name, path in _modules().items():
        text = path.read_text()
        assert "import tensorflow" not in text and "import keras" not in text and "from keras" not in text, name


@pytest.mark.parametrize("old, new", sorted(MOVED.items()))
def test_old_flat_module_paths_are_the_new_modules(old, new):
    assert importlib.import_module(f"akida_core.{old}") is importlib.import_module(f"akida_core.{new}")


def test_public_names_unchanged():
    for name in ("Model", "InputData", "InputConvolutional", "Convolutional", "SeparableConvolutional",
                 "FullyConnected", "Conv2D", "Add", "AKD1000", "devices", "soc", "MapMode", "AkidaUnsupervised"):
        assert hasattr(akida_core, name), name
    assert callable(akida_core.devices) and akida_core.devices() == []

"""Tutorial notebooks are committed without outputs and numbered; nbmake runs them (README command 2)."""
import json
import pathlib

import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert path.name[:2].isdigit(), "notebooks are numbered: NN_title.ipynb"
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, \
                f"{path.name}: clear outputs before committing"
    assert nb["cells"][-1]["cell_type"] == "markdown" and "Summary" in "".join(nb["cells"][-1]["source"])

"""The notebooks in notebooks/ are stored without outputs and execute cleanly on the demo.

Each runs in a fresh temporary working directory, so its runs and figures never land in the
repository. The kernel must be this interpreter (``sys.executable``) even when the venv is not
on PATH: the ``python3`` kernel spec's command is ``python``, which jupyter_client (8.x) replaces
by ``sys.executable``; an extra first cell checks it, so a change in that rule fails loudly.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
TIMEOUT_S = 600  # per cell; each notebook takes well under two minutes on a CPU


def test_notebooks_are_found():
    assert [p.name for p in NOTEBOOKS] == ["01_quickstart.ipynb", "02_attention_graphs.ipynb", "03_custom_graph_builder.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    # Prove which interpreter runs the cells before any of them does.
    nb.cells.insert(0, nbformat.v4.new_code_cell(f"import sys\nassert sys.executable == {sys.executable!r}, sys.executable"))
    client = NotebookClient(nb, kernel_name="python3", timeout=TIMEOUT_S, resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert any(o.output_type in ("display_data", "execute_result") for c in nb.cells for o in c.get("outputs", []))

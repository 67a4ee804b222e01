"""The inspection notebook executes headless on the shared data, so it never rots."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "inspect.ipynb"


def test_committed_notebook_has_no_outputs():
    notebook = json.loads(NOTEBOOK.read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.mark.slow
def test_notebook_executes(data_dir, session_cache, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("WORKBENCH_DATA", str(data_dir))
    monkeypatch.setenv("WORKBENCH_RUNS", str(tmp_path / "runs"))
    # Two rerankers, so that the disagreement section has something to compare.
    monkeypatch.setenv("WORKBENCH_NOTEBOOK_SYSTEMS",
                       "official-bm25,official-bm25+tfidf:sublinear_tf=false,official-bm25+tfidf")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the slice plot
    text = json.dumps([o.get("data", {}).get("text/plain", "") or o.get("text", "") for o in outputs])
    assert "wins/ties/losses of official-bm25+tfidf vs official-bm25" in text
    assert "kendall_tau" in text

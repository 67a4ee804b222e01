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
def test_notebook_executes_with_its_defaults(data_dir, session_cache, tmp_path, monkeypatch):
    """With no settings but the runs directory, the notebook compares official BM25 with the best
    reranker on the leaderboard and finds disagreements across every reranker on it."""
    import nbformat
    from nbclient import NotebookClient

    from workbench.experiment import Workbench

    runs = tmp_path / "runs"
    bench = Workbench(data_dir=data_dir, runs_dir=runs, leaderboard=runs / "leaderboard.csv", progress=False)
    # three rerankers (two over official BM25, one over TAS-B) and the first stages; cheap ones, so
    # the notebook need not run the default systems
    bench.run_experiment(["dl19"], ["official-bm25", "official-tasb", "official-bm25+tfidf",
                                    "official-bm25+tfidf:sublinear_tf=false", "official-tasb+tfidf"])
    best = bench.best_reranker("dl19")
    assert best == "official-tasb+tfidf"  # MRR@10 0.72 here, the two over BM25 below 0.44
    monkeypatch.setenv("WORKBENCH_DATA", str(data_dir))
    monkeypatch.setenv("WORKBENCH_RUNS", str(runs))
    for name in ("WORKBENCH_NOTEBOOK_DATASET", "WORKBENCH_NOTEBOOK_BASELINE", "WORKBENCH_NOTEBOOK_CHALLENGER"):
        monkeypatch.delenv(name, raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the slice plot
    text = json.dumps([o.get("data", {}).get("text/plain", "") or o.get("text", "") for o in outputs])
    assert f"dl19: official-bm25 against {best} (the best of 3 rerankers on the leaderboard)" in text
    assert f"wins/ties/losses of {best} vs official-bm25" in text
    assert "kendall_tau" in text and "verdict" in text and "MDE" in text
    assert "qa: significantly helped by" in text and "exploratory: significantly helped by" in text
    spread_line = next(line for o in outputs for line in (o.get("text") or "").splitlines()
                       if line.startswith("3 rerankers; spread"))
    low = float(spread_line.split(": ")[1].split("-")[0])
    assert low > 0, spread_line  # the rerankers disagree: no zero spreads at the top

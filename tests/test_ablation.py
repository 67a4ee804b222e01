"""The ablation table from leaderboard rows compared against one baseline."""
from __future__ import annotations

import pandas as pd
import pytest

from workbench.core.errors import WorkbenchError
from workbench.report.ablation import ablation_markdown, ablation_table

SYSTEMS = ["base", "other"]


def board() -> pd.DataFrame:
    rows = []
    for dataset in ("dl19", "dl20"):
        for slice_name, n in (("exploratory", 4), ("all", 10), ("qa", 6)):
            for system in SYSTEMS:
                row = {"dataset": dataset, "system": system, "slice": slice_name, "n_queries": n,
                       "ndcg@10": 0.5, "ndcg@5": 0.4, "mrr@10": 0.6}
                if system == "other":
                    row.update({"baseline": "base", "delta_ndcg@10": 0.1, "sig_ndcg@10": "*", "delta_ndcg@5": -0.05,
                                "sig_ndcg@5": "", "delta_mrr@10": 0.0, "sig_mrr@10": ""})
                rows.append(row)
    return pd.DataFrame(rows)


def test_table_orders_slices_and_systems_and_marks_significance():
    table = ablation_table(board(), SYSTEMS, "base")
    assert list(table[table.dataset == "dl19"]["slice"].drop_duplicates()) == ["all", "qa", "exploratory"]
    first = table.iloc[:2]
    assert list(first["system"]) == ["base", "other"]
    assert (first.iloc[1]["d_ndcg@10"], first.iloc[1]["sig_ndcg@10"]) == (0.1, "*")
    text = ablation_markdown(table, "base")
    assert "## dl19, all (n=10)" in text and "| other | 0.5000 (+0.1000*) | 0.4000 (-0.0500) |" in text


def test_rows_not_compared_with_the_baseline_are_an_error():
    with pytest.raises(WorkbenchError, match="not every system was compared against other"):
        ablation_table(board(), SYSTEMS, "other")
    with pytest.raises(WorkbenchError, match="no rows for missing"):
        ablation_table(board(), SYSTEMS + ["missing"], "base")

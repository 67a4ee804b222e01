"""The ablation table: each system's metrics per dataset and query-type slice, with its delta
against one baseline system and the Holm-corrected significance marker, from the leaderboard
rows ``workbench eval --baseline <baseline>`` wrote."""
from __future__ import annotations

import pandas as pd

from ..analysis.query_types import SLICES
from ..core.errors import WorkbenchError

ABLATION_METRICS = ("ndcg@10", "ndcg@5", "mrr@10")


def ablation_table(board: pd.DataFrame, systems: list[str], baseline: str,
                   metrics: tuple[str, ...] = ABLATION_METRICS) -> pd.DataFrame:
    """Rows ``dataset, slice, system, n`` with, per metric, the value, ``d_<m>`` (vs ``baseline``)
    and ``sig_<m>``; systems in the given order, slices all / qa / exploratory."""
    rows = board[board["system"].isin(systems)].copy()
    if rows.empty:
        raise WorkbenchError(f"no leaderboard rows for the ablation systems; run workbench eval --systems ... "
                             f"--baseline {baseline}")
    missing = [s for s in systems if s not in set(rows["system"])]
    if missing:
        raise WorkbenchError(f"the leaderboard has no rows for {', '.join(missing)}")
    compared = rows[(rows["system"] == baseline) | (rows.get("baseline", pd.Series(dtype=object)) == baseline)]
    if set(compared["system"]) != set(systems):
        raise WorkbenchError(f"not every system was compared against {baseline}; re-run workbench eval with "
                             f"--baseline {baseline}")
    out = []
    for record in compared.to_dict("records"):
        row = {"dataset": record["dataset"], "slice": record["slice"], "system": record["system"],
               "n": int(record["n_queries"])}
        for metric in metrics:
            row[metric] = record[metric]
            is_base = record["system"] == baseline
            row[f"d_{metric}"] = 0.0 if is_base else record.get(f"delta_{metric}")
            marker = record.get(f"sig_{metric}")
            row[f"sig_{metric}"] = "" if is_base or not isinstance(marker, str) else marker
            row[f"mde_{metric}"] = float("nan") if is_base else record.get(f"mde_{metric}", float("nan"))
        out.append(row)
    table = pd.DataFrame(out)
    order = {name: i for i, name in enumerate(systems)}
    slices = {name: i for i, name in enumerate(SLICES)}
    return table.sort_values(["dataset", "slice", "system"], key=lambda col: col.map(
        slices if col.name == "slice" else order if col.name == "system" else lambda v: v)).reset_index(drop=True)


def ablation_markdown(table: pd.DataFrame, baseline: str, metrics: tuple[str, ...] = ABLATION_METRICS) -> str:
    """Markdown: one table per dataset and slice; deltas vs the baseline, ``*``/``**`` significant at
    0.05/0.01 (paired randomization test, Holm-corrected across the systems compared)."""
    lines = ["# Loss ablation", "", f"Baseline: `{baseline}`. Deltas are against it; `*`/`**`: significant at "
             "0.05/0.01 (paired randomization test, exact where the slice allows) after Holm correction over the "
             "family of every system the leaderboard compares with this baseline on that dataset and slice.", ""]
    for (dataset, slice_name), group in table.groupby(["dataset", "slice"], sort=False):
        lines += [f"## {dataset}, {slice_name} (n={int(group['n'].iloc[0])})", "",
                  "| system | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
        for record in group.to_dict("records"):
            cells = []
            for m in metrics:
                delta = record[f"d_{m}"]
                cells.append(f"{record[m]:.4f}" + ("" if record["system"] == baseline or pd.isna(delta)
                                                   else f" ({delta:+.4f}{record[f'sig_{m}']})"))
            lines.append(f"| {record['system']} | " + " | ".join(cells) + " |")
        mdes = [f"{m} {group[f'mde_{m}'].min():.3f}–{group[f'mde_{m}'].max():.3f}" for m in metrics
                if f"mde_{m}" in group.columns and group[f"mde_{m}"].notna().any()]
        if mdes:
            lines += ["", "Minimal detectable effect against the baseline (80% power, 0.05; range over the "
                      "systems): " + ", ".join(mdes) + "."]
        lines.append("")
    return "\n".join(lines)

"""The depth analysis on disk and in the HTML report: ``runs/depth/<system>/`` holds depth.csv
(one row per dataset and depth), depth-summary.csv (the smallest sufficient depth per dataset and
metric), depth.md (the tables) and depth.png (each metric against k with 95% CIs, and the time
per query on a second axis); :func:`depth_sections` reads them back for the report page."""
from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..core.files import atomic_write

DEPTH_FILES = ("depth.csv", "depth-summary.csv", "depth.md", "depth.png")


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _p(value: Any) -> str:
    number = _number(value)
    if number is None:
        return ""
    return f"{number:.3f}" if number >= 0.001 else f"{number:.0e}"


def depth_markdown(table: pd.DataFrame, summary: pd.DataFrame, system: str, candidates: str, metrics: list[str],
                   margins: Mapping[str, float], alpha: float, correction: str, cpu: str = "",
                   notes: Sequence[str] = ()) -> str:
    """The depth tables as Markdown: one table per dataset or pool, each with its verdicts, then
    ``notes`` (what this invocation had to score again, and why)."""
    depths = sorted({int(k) for k in table["depth"]}, reverse=True)
    deepest = depths[0]
    lines = [f"# Depth against cost: {system}", "",
             f"The top k of `{candidates}` reranked for k = {', '.join(map(str, sorted(depths)))}, followed by "
             f"the candidates ranked k+1 to {deepest} in their own order (every depth ranks the same documents); "
             f"every depth is a stored run, compared with k = {deepest} on the same queries. Mean with its 95% t "
             f"confidence interval; Δ against k = {deepest} with * / ** when a paired randomization test is "
             f"significant at {alpha:g} / {alpha / 5:g} after {correction} correction over the shallower depths (one family per "
             "dataset and metric), the corrected p in parentheses."]
    for metric, margin in margins.items():
        lines[-1] += (f" TOST {metric}: two one-sided tests of equivalence within ±{margin:g} at {alpha:g} "
                      "(✓ equivalent).")
    lines[-1] += (" Pairs scored and cache hits: what this invocation did (0 and 0 for a stored run it reused). "
                  "Time per query: reranking plus the candidates' stored run, in ms; `measured` where the run "
                  "scored its own pairs, else derived from the measured seconds per pair of the run that did "
                  "(depth.csv's time_source says which)" + (f"; CPU: {cpu}." if cpu else "."))
    for dataset, rows in table.groupby("dataset", sort=False):
        rows = rows.sort_values("depth", ascending=False)
        pooled = str(rows["pooled"].iloc[0] or "") if "pooled" in rows.columns else ""
        title = f"{dataset} (pooled over {pooled.replace('+', ' + ')}, " if pooled else f"{dataset} ("
        lines += ["", f"## {title}{int(rows['n_queries'].iloc[0])} queries)", ""]
        header = ["k"]
        for metric in metrics:
            header += [metric, f"Δ {metric}"]
            if metric in margins:
                header.append(f"TOST {metric} ±{margins[metric]:g}")
        header += ["pairs/query", "pairs scored", "cache hits", "ms/query", "time"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in rows.to_dict("records"):
            cells = [str(int(row["depth"]))]
            for metric in metrics:
                cells.append(f"{row[metric]:.4f} [{row[f'{metric}_ci_low']:.3f}, {row[f'{metric}_ci_high']:.3f}]")
                if int(row["depth"]) == deepest:
                    cells.append("")
                else:
                    cells.append(f"{row[f'delta_{metric}']:+.4f}{row[f'sig_{metric}']} ({_p(row[f'p_adj_{metric}'])})")
                if metric in margins:
                    tost = _p(row.get(f"tost_p_{metric}"))
                    cells.append("" if not tost else f"{tost} " + ("✓" if row.get(f"equivalent_{metric}") else "✗"))
            ms = _number(row.get("ms_per_query"))
            cells += [f"{row['pairs_per_query']:.1f}", str(int(row["pairs_scored"])), str(int(row["cache_hits"])),
                      "" if ms is None else f"{ms:.1f}", str(row.get("time_basis", ""))]
            lines.append("| " + " | ".join(cells) + " |")
        verdicts = summary[summary["dataset"] == dataset]
        if not verdicts.empty:
            lines.append("")
            lines += [f"- {record['metric']}: {record['verdict']}" for record in verdicts.to_dict("records")]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def plot_depth(table: pd.DataFrame, summary: pd.DataFrame, metrics: list[str], system: str):
    """One panel per dataset or pool: each metric against k (log scale) with 95% CI bars, the
    smallest depth not significantly worse than the deepest marked on the first metric with a
    margin (else the first), and the time per query on the right axis; returns the figure."""
    from matplotlib.figure import Figure

    datasets = list(dict.fromkeys(table["dataset"]))
    figure = Figure(figsize=(4.6 * len(datasets), 4.2))
    axes = figure.subplots(1, len(datasets), squeeze=False)[0]
    marked = next((m for m in metrics if f"equivalent_{m}" in table.columns), metrics[0])
    handles: dict[str, Any] = {}
    for axis, dataset in zip(axes, datasets):
        rows = table[table["dataset"] == dataset].sort_values("depth")
        depths = rows["depth"].to_numpy(dtype=float)
        for position, metric in enumerate(metrics):
            means = rows[metric].to_numpy(dtype=float)
            errors = np.vstack([np.clip(means - rows[f"{metric}_ci_low"].to_numpy(dtype=float), 0, None),
                                np.clip(rows[f"{metric}_ci_high"].to_numpy(dtype=float) - means, 0, None)])
            # each metric a little apart on the log axis, so that no CI bar hides another
            shifted = depths * (1 + 0.05 * (position - (len(metrics) - 1) / 2))
            handles[metric] = axis.errorbar(shifted, means, yerr=errors, marker="o", capsize=3, label=metric)
        choice = summary[(summary["dataset"] == dataset) & (summary["metric"] == marked)]
        if not choice.empty:
            k = int(choice["smallest_not_worse"].iloc[0])
            handles["k"] = axis.axvline(k, color="grey", linestyle=":",
                                        label=f"smallest k not significantly worse ({marked})")
        axis.set_xscale("log")
        axis.set_xticks(depths, [str(int(k)) for k in depths])
        axis.minorticks_off()
        axis.set_xlabel("rerank depth k")
        axis.set_ylabel("metric (95% CI)")
        axis.set_title(f"{dataset} (n={int(rows['n_queries'].iloc[0])})")
        axis.grid(alpha=0.3)
        cost = axis.twinx()
        times = rows["ms_per_query"].to_numpy(dtype=float)
        if np.isfinite(times).any():
            (handles["ms"],) = cost.plot(depths, times, color="black", linestyle="--", marker="s", markersize=4,
                                         alpha=0.6, label="ms per query (right axis)")
        cost.set_ylabel("ms per query")
        cost.set_ylim(bottom=0)
    figure.suptitle(f"{system}: depth against cost", fontsize=10)
    figure.legend(list(handles.values()), [h.get_label() for h in handles.values()], loc="lower center",
                  ncol=min(5, len(handles)), fontsize=7, frameon=False)
    figure.tight_layout(rect=(0, 0.08, 1, 0.96))
    return figure


def write_depth_report(table: pd.DataFrame, summary: pd.DataFrame, out_dir: str | Path, system: str,
                       candidates: str, metrics: list[str], margins: Mapping[str, float], alpha: float,
                       correction: str, cpu: str = "", notes: Sequence[str] = ()) -> dict[str, Path]:
    """Write the four files of :data:`DEPTH_FILES` under ``out_dir``, each atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in DEPTH_FILES}
    with atomic_write(paths["depth.csv"]) as handle:
        table.to_csv(handle, index=False)
    with atomic_write(paths["depth-summary.csv"]) as handle:
        summary.to_csv(handle, index=False)
    with atomic_write(paths["depth.md"]) as handle:
        handle.write(depth_markdown(table, summary, system, candidates, metrics, margins, alpha, correction, cpu,
                                    notes))
    figure = plot_depth(table, summary, metrics, system)
    with atomic_write(paths["depth.png"], mode="wb") as handle:
        figure.savefig(handle, format="png", dpi=110)
    return paths


def depth_sections(depth_dir: str | Path | None) -> list[dict[str, str]]:
    """What the HTML report shows of each depth analysis under ``depth_dir`` (``runs/depth``):
    per ``<system>/depth.md``, its title, its tables as HTML and its plot as a data URI."""
    if depth_dir is None or not Path(depth_dir).is_dir():
        return []
    from markdown_it import MarkdownIt

    render = MarkdownIt("commonmark", {"html": False}).enable("table").render
    sections = []
    for markdown in sorted(Path(depth_dir).glob("*/depth.md")):
        text = markdown.read_text(encoding="utf-8")
        first, _, body = text.partition("\n")
        plot = markdown.with_name("depth.png")
        sections.append({
            "anchor": "depth-" + "".join(c if c.isalnum() else "-" for c in markdown.parent.name).lower(),
            "title": first.lstrip("# ").strip() or markdown.parent.name, "path": str(markdown.parent),
            "html": render(body.replace("\n## ", "\n#### ")),
            "plot": ("data:image/png;base64," + base64.b64encode(plot.read_bytes()).decode("ascii"))
            if plot.is_file() else ""})
    return sections

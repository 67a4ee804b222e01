"""The ablation table: each system's metrics per dataset and query-type slice, with its delta
against one baseline system and the Holm-corrected significance marker, from the leaderboard
rows ``workbench eval --baseline <baseline>`` wrote."""
from __future__ import annotations

from typing import Any

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


# ---------------------------------------------------------------------------------------------
# The ablation with power (workbench ablate): two baselines, seed spread, the verdict

#: the hypothesis' cells: (slice, metric) for Q&A queries (one short answer) and exploratory ones
VERDICT_CELLS = (("qa", "mrr@10"), ("qa", "ndcg@5"), ("exploratory", "ndcg@10"), ("all", "ndcg@10"))
DATASET_ORDER = ("dl19", "dl20", "dl19+dl20")


def _rows(board: pd.DataFrame, system: str, baseline: str | None = None) -> pd.DataFrame:
    rows = board[board["system"] == system]
    if baseline is not None and "baseline" in rows.columns:
        rows = rows[rows["baseline"].fillna("") == baseline]
    return rows


def _cell(board: pd.DataFrame, system: str, dataset: str, slice_name: str, baseline: str | None = None) -> dict:
    rows = _rows(board, system, baseline)
    rows = rows[(rows["dataset"] == dataset) & (rows["slice"] == slice_name)]
    return rows.iloc[0].to_dict() if len(rows) else {}


def seed_spread(board: pd.DataFrame, replicas: dict[str, list[str]],
                metrics: tuple[str, ...] = ABLATION_METRICS) -> pd.DataFrame:
    """Per loss, dataset, slice and metric: each seed's value, their mean, standard deviation and
    range (max - min). ``replicas``: loss name -> its systems, one per seed."""
    out = []
    for loss, systems in replicas.items():
        for dataset in DATASET_ORDER:
            for slice_name in SLICES:
                cells = [_cell(board, s, dataset, slice_name) for s in systems]
                if not all(cells):
                    continue
                for metric in metrics:
                    values = [float(c[metric]) for c in cells]
                    series = pd.Series(values)
                    out.append({"loss": loss, "dataset": dataset, "slice": slice_name, "metric": metric,
                                "values": values, "mean": float(series.mean()),
                                "sd": float(series.std(ddof=1)) if len(values) > 1 else 0.0,
                                "range": float(series.max() - series.min()), "n": int(cells[0]["n_queries"])})
    return pd.DataFrame(out)


def noise_level(spread: pd.DataFrame, dataset: str, slice_name: str, metric: str) -> float:
    """The largest seed range of any replicated loss on this cell: a difference below it is noise."""
    if spread.empty:
        return 0.0
    cell = spread[(spread["dataset"] == dataset) & (spread["slice"] == slice_name) & (spread["metric"] == metric)]
    return float(cell["range"].max()) if len(cell) else 0.0


def _delta_text(record: dict, metric: str, noise: float) -> str:
    delta = record.get(f"delta_{metric}")
    if delta is None or pd.isna(delta):
        return "–"
    marker = record.get(f"sig_{metric}")
    marker = marker if isinstance(marker, str) else ""
    noisy = "~" if abs(float(delta)) < noise else ""
    return f"{float(delta):+.3f}{marker}{noisy}"


def verdict(boards: dict[str, pd.DataFrame], systems: dict[str, str], spread: pd.DataFrame, hybrid: str,
            compared: list[str], dataset: str = "dl19+dl20") -> list[dict[str, Any]]:
    """For each hypothesis cell and each loss in ``compared``: hybrid minus that loss on ``dataset``,
    its Holm-corrected marker (from the board where the hybrid is the baseline), the MDE and the seed
    noise level, and the call: ``better`` / ``worse`` (significant and beyond the seed spread) or
    ``cannot tell``."""
    out = []
    base = systems[hybrid]
    for slice_name, metric in VERDICT_CELLS:
        noise = noise_level(spread, dataset, slice_name, metric)
        for other in compared:
            record = _cell(boards["hybrid"], systems[other], dataset, slice_name, baseline=base)
            if not record:
                continue
            difference = -float(record[f"delta_{metric}"])  # the board holds other - hybrid
            marker = record.get(f"sig_{metric}")
            significant = isinstance(marker, str) and marker.startswith("*")
            call = "cannot tell"
            if significant and abs(difference) >= noise:
                call = "better" if difference > 0 else "worse"
            out.append({"slice": slice_name, "metric": metric, "other": other, "difference": difference,
                        "significant": significant, "mde": float(record.get(f"mde_{metric}", float("nan"))),
                        "noise": noise, "call": call, "n": int(record["n_queries"])})
    return out


def power_markdown(boards: dict[str, pd.DataFrame], systems: dict[str, str], replicas: dict[str, list[str]],
                   hybrid: str, baseline: str, off_the_shelf: str, strongest: str,
                   metrics: tuple[str, ...] = ABLATION_METRICS) -> tuple[str, list[dict[str, Any]]]:
    """The ablation's Markdown (tables per dataset and slice with deltas against ``baseline`` and the
    off-the-shelf model, MDEs, the seed spread, the verdict) and the verdict rows.

    ``systems``: loss name -> system of its first seed, in table order."""
    spread = seed_spread(boards["seeds"], replicas, metrics)
    parts = [loss for loss in ("pairwise", "listwise") if loss in systems]
    compared = list(dict.fromkeys([*parts, strongest, baseline, *[s for s in systems if s != hybrid]]))
    compared = [c for c in compared if c != hybrid]
    calls = verdict(boards, systems, spread, hybrid, compared)
    lines = ["## Results", "",
             f"Each cell: value, then its delta against the **{baseline}** model / against the **off-the-shelf** "
             f"model (`{off_the_shelf}`). `*`/`**`: significant at 0.05/0.01 (paired randomization test, Holm over "
             "the ablation family of that baseline, dataset and slice); `~`: smaller than the seed spread of that "
             "cell (the largest max - min over the seeds of the replicated losses): noise.", ""]
    for dataset in DATASET_ORDER:
        for slice_name in SLICES:
            first = _cell(boards["pointwise"], systems[baseline], dataset, slice_name)
            if not first:
                continue
            lines += [f"### {dataset}, {slice_name} (n={int(first['n_queries'])})", "",
                      "| loss | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
            reference = _cell(boards["off-the-shelf"], off_the_shelf, dataset, slice_name)
            if reference:
                lines.append("| off-the-shelf | " + " | ".join(f"{float(reference[m]):.4f}" for m in metrics) + " |")
            mdes: dict[str, list[float]] = {m: [] for m in metrics}
            for loss, system in systems.items():
                against_base = _cell(boards["pointwise"], system, dataset, slice_name,
                                     baseline=None if loss == baseline else systems[baseline])
                against_ots = _cell(boards["off-the-shelf"], system, dataset, slice_name, baseline=off_the_shelf)
                if not against_base:
                    continue
                cells = []
                for m in metrics:
                    noise = noise_level(spread, dataset, slice_name, m)
                    first_delta = "·" if loss == baseline else _delta_text(against_base, m, noise)
                    cells.append(f"{float(against_base[m]):.4f} ({first_delta} / {_delta_text(against_ots, m, noise)})")
                    if loss != baseline and pd.notna(against_base.get(f"mde_{m}")):
                        mdes[m].append(float(against_base[f"mde_{m}"]))
                lines.append(f"| {loss} | " + " | ".join(cells) + " |")
            lines += ["", "MDE against the pointwise model (80% power, 0.05): "
                      + ", ".join(f"{m} {min(v):.3f}-{max(v):.3f}" for m, v in mdes.items() if v) + "; seed spread "
                      + ", ".join(f"{m} {noise_level(spread, dataset, slice_name, m):.3f}" for m in metrics) + ".", ""]
    lines += ["## Seed spread", "",
              f"{len(next(iter(replicas.values())))} seeds each of the hybrid and of the strongest other loss "
              f"(`{strongest}`, chosen by validation NDCG@10 on held-out *training* queries). Values per seed, "
              "mean, standard deviation and range.", "",
              "| loss | dataset | slice | metric | seeds | mean | sd | range |", "|---|---|---|---|---|---|---|---|"]
    for record in spread.to_dict("records"):
        lines.append(f"| {record['loss']} | {record['dataset']} | {record['slice']} | {record['metric']} | "
                     + ", ".join(f"{v:.4f}" for v in record["values"])
                     + f" | {record['mean']:.4f} | {record['sd']:.4f} | {record['range']:.4f} |")
    lines += ["", "## The hypothesis, cell by cell (pooled DL19+DL20)", "",
              "Hybrid minus the other loss; `better`/`worse` only when significant (Holm over the ablation family "
              "compared with the hybrid) *and* larger than the seed spread; otherwise `cannot tell` at this power.",
              "", "| queries | metric | vs | hybrid - other | significant | MDE | seed spread | call |",
              "|---|---|---|---|---|---|---|---|"]
    for c in calls:
        lines.append(f"| {c['slice']} (n={c['n']}) | {c['metric']} | {c['other']} | {c['difference']:+.4f} | "
                     f"{'yes' if c['significant'] else 'no'} | {c['mde']:.3f} | {c['noise']:.3f} | **{c['call']}** |")
    return "\n".join(lines) + "\n", calls

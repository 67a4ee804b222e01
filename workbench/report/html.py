"""The HTML report (``runs/report/index.html``): one self-contained file (styles, script and
plots inline; opens from disk with no server and no network) with, per dataset, the leaderboard
(slices, confidence intervals, deltas, significance markers; sortable by any column, filterable
by slice), the slice plot, and for every compared pair the queries with the largest gains and
losses, each opening both rankings side by side; then the card and training curves of every
model trained here that a system on the board uses.

Markup lives in Jinja2 templates (``templates/``); this module only prepares values for them.
"""
from __future__ import annotations

import base64
import datetime as _dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from ..analysis.query_types import SLICES, slice_warnings
from ..core.errors import WorkbenchError
from ..evaluation.condensed import judged_disagreements, judged_pairs
from ..evaluation.metrics import DEFAULT_METRICS, HEADLINE_METRICS
from .inspection import (DatasetView, ReportData, TrainedModel, anchor, number_or_none, text_or_empty,
                         trained_models)
from .judged_view import JUDGED_DISAGREE_HELP, JUDGED_DISAGREE_MARK
from .depth_report import depth_sections
from .leaderboard import LOW_JUDGED, LOW_JUDGED_MARK, low_judged, not_comparable
from .risk_view import risk_tables
from .summary import SMALL_SLICE_MDE

TEMPLATES = Path(__file__).resolve().parent / "templates"


# A leaderboard row stays one line high: a text cell longer than this shows a short label and a
# numbered key ([1]) linking to the legend under the table, which gives the full text (so does
# the cell's tooltip).
SHORT_TEXT = 32


@dataclass
class Cell:
    """One leaderboard cell: what it shows, what it sorts by, and an optional link and tooltip."""

    text: str
    sort: str = ""
    href: str = ""
    title: str = ""
    css: str = ""
    detail: str = ""  # shown small after the value, on the same line (a confidence interval)
    key: int = 0  # the number of the legend note holding the cell's full text (0: none)
    key_href: str = ""


class Legend:
    """The numbered notes under a dataset's leaderboard: each distinct long text once, numbered in
    order of first appearance."""

    def __init__(self, anchor_prefix: str):
        self.anchor_prefix = anchor_prefix
        self.notes: list[dict[str, Any]] = []
        self._keys: dict[str, int] = {}

    def key(self, text: str, column: str) -> tuple[int, str]:
        """The key of ``text`` (numbered on first use) and the anchor of its note."""
        if text not in self._keys:
            number = self._keys[text] = len(self.notes) + 1
            self.notes.append({"key": number, "text": text, "columns": [],
                               "anchor": f"{self.anchor_prefix}-note-{number}"})
        note = self.notes[self._keys[text] - 1]
        if column not in note["columns"]:
            note["columns"].append(column)
        return note["key"], note["anchor"]


def short_label(text: str, limit: int = SHORT_TEXT) -> str:
    """A long text's label in its cell: the part before a parenthesised explanation, cut to
    ``limit`` characters (with an ellipsis) if still longer."""
    head = text.split(" (", 1)[0].strip() or text
    return head if len(head) <= limit else head[:limit - 1].rstrip() + "…"


def text_cell(text: str, column: str, legend: Legend) -> Cell:
    """A text cell: short texts as they are; a long one as its short label, its key in the
    legend, and the full text as tooltip (sorting still by the full text)."""
    if len(text) <= SHORT_TEXT:
        return Cell(text, sort=text)
    key, href = legend.key(text, column)
    return Cell(short_label(text), sort=text, title=text, key=key, key_href=href, css="noted")


def leaderboard_columns(board: pd.DataFrame, metrics: list[str] | None = None,
                        headline: list[str] | None = None) -> list[tuple[str, str]]:
    """(key, header) of the report's leaderboard columns, in order, for what ``board`` holds
    (``metrics``/``headline``: the dataset's, default TREC DL's)."""
    metrics = [m for m in (metrics or DEFAULT_METRICS) if m in board.columns]
    headline = [m for m in (headline or HEADLINE_METRICS) if m in board.columns]
    columns = [("system", "system"), ("slice", "slice"), ("n", "n")]
    columns += [(m, m) for m in metrics]
    columns += [(f"delta_{m}", f"Δ {m}") for m in headline if f"delta_{m}" in board.columns]
    columns += [(f"mde_{m}", f"MDE {m}") for m in headline if f"mde_{m}" in board.columns]
    if f"wtl_{headline[0] if headline else ''}" in board.columns:
        columns.append((f"wtl_{headline[0]}", f"W/T/L {headline[0]}"))
    for key, header in (("baseline", "baseline"), ("precision", "precision"), ("candidates", "candidates"),
                        ("wall_time_s", "seconds")):
        if key in board.columns:
            columns.append((key, header))
    return columns


def leaderboard_cells(view: DatasetView, columns: list[tuple[str, str]],
                      legend: Legend | None = None) -> list[dict[str, Any]]:
    """The rows of a dataset's leaderboard as cells, with each system linked to its drill-down;
    long texts are keyed to ``legend`` (the notes under the table)."""
    pair_of = {pair.b: pair.anchor for pair in view.pairs if pair.origin == "baseline"}
    legend = legend if legend is not None else Legend(view.anchor)
    rows = []
    for record in view.board.to_dict("records"):
        cells = []
        small = any((number_or_none(record.get(f"mde_{m}")) or 0) > SMALL_SLICE_MDE for m in view.headline)
        notes = judged_disagreements(record, view.metrics)  # the judged-only delta against the standard one
        disagree = {judged: notes[standard] for standard, judged in judged_pairs(view.metrics) if standard in notes}
        for key, _ in columns:
            if key == "system":
                flagged = not_comparable(record)
                cells.append(Cell(record["system"] + (" †" if flagged else ""), sort=record["system"],
                                  href="#" + pair_of[record["system"]] if record["system"] in pair_of else "",
                                  title=(text_or_empty(record.get("comparability"))
                                         or text_or_empty(record.get("candidates"))),
                                  css="system"))
            elif key == "slice":
                cells.append(Cell(record["slice"] + (" ‡" if small else ""), sort=record["slice"],
                                  title="too small to detect differences under 0.10" if small else ""))
            elif key == "n":
                cells.append(Cell(str(int(record["n_queries"])), sort=str(int(record["n_queries"]))))
            elif key in view.metrics:
                value = number_or_none(record.get(key))
                low, high = number_or_none(record.get(f"{key}_ci_low")), number_or_none(record.get(f"{key}_ci_high"))
                interval = "" if low is None or high is None else f"[{low:.3f}, {high:.3f}]"
                shallow = low_judged(key, value)
                title = f"{key} 95% CI {interval}" if interval else ""
                if shallow:
                    title = (f"{title}; " if title else "") + (f"under {LOW_JUDGED:.1f}: unjudged documents in the top "
                                                               "count as non-relevant, so gains may be pool artefacts")
                if key in disagree:
                    title = (f"{title}; " if title else "") + f"{JUDGED_DISAGREE_MARK} {disagree[key]}"
                cells.append(Cell("" if value is None else f"{value:.4f}" + (f" {LOW_JUDGED_MARK}" if shallow else "")
                                  + (f" {JUDGED_DISAGREE_MARK}" if key in disagree else ""),
                                  sort="" if value is None else repr(value), detail=interval, title=title,
                                  css="num" + (" low-judged" if shallow else "")
                                  + (" judged-disagrees" if key in disagree else "")))
            elif key.startswith("delta_"):
                metric = key[len("delta_"):]
                value = number_or_none(record.get(key))
                marker = text_or_empty(record.get(f"sig_{metric}"))
                p_value = number_or_none(record.get(f"p_adj_{metric}", record.get(f"p_{metric}")))
                css = "num" + (" up" if value and value > 0 else " down" if value and value < 0 else "")
                cells.append(Cell("" if value is None else f"{value:+.4f}{marker}",
                                  sort="" if value is None else repr(value), css=css,
                                  title="" if p_value is None else f"p = {p_value:.4g} (corrected)"))
            elif key.startswith("mde_"):
                value = number_or_none(record.get(key))
                cells.append(Cell("" if value is None else f"{value:.3f}", sort="" if value is None else repr(value),
                                  css="num"))
            elif key == "wall_time_s":
                value = number_or_none(record.get(key))
                cells.append(Cell("" if value is None else f"{value:.1f}", sort="" if value is None else repr(value),
                                  css="num"))
            else:
                cells.append(text_cell(text_or_empty(record.get(key)), key, legend))
        rows.append({"slice": record["slice"], "cells": cells, "judged_disagrees": bool(disagree)})
    return rows


def flagged_systems(board: pd.DataFrame) -> list[dict[str, str]]:
    """Systems marked † whose comparability column says why (the legend lists them; a system
    flagged by its candidates alone is explained by its candidates note)."""
    flagged: dict[str, str] = {}
    for record in board.to_dict("records"):
        reason = text_or_empty(record.get("comparability"))
        if reason and not_comparable(record) and record["system"] not in flagged:
            flagged[record["system"]] = reason
    return [{"system": system, "reason": reason} for system, reason in flagged.items()]


def png_data_uri(figure_or_path) -> str:
    """A PNG as a ``data:`` URI (the report embeds its images so it works as a single file)."""
    if isinstance(figure_or_path, (str, Path)):
        data = Path(figure_or_path).read_bytes()
    else:
        buffer = io.BytesIO()
        figure_or_path.savefig(buffer, format="png", dpi=100)
        data = buffer.getvalue()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def markdown_html(text: str) -> str:
    """A model card's Markdown as HTML (raw HTML in the card is escaped, not passed through)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


def environment():
    """The Jinja2 environment of the report templates (autoescaped)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = lambda value, digits=4: "" if number_or_none(value) is None else f"{float(value):.{digits}f}"
    env.filters["signed"] = lambda value, digits=4: "" if number_or_none(value) is None else f"{float(value):+.{digits}f}"
    return env


#: the loss ablation's write-up (``make ablate``), read relative to the working directory
ABLATION_REPORT = Path("docs/ablation.md")


def ablation_verdict(models: list[TrainedModel], report: str | Path | None = ABLATION_REPORT) -> dict[str, str]:
    """The ``## Verdict`` section of the loss ablation's report (``workbench ablate``), when a
    trained model on the board is one of the ablation's: ``{"path", "html"}``, else ``{}``."""
    path = Path(report) if report else None
    if not models or path is None or not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    if not any(model.name in text for model in models):
        return {}
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("## "):
            if inside:
                break
            inside = line.strip() == "## Verdict"
            continue
        if inside:
            lines.append(line)
    return {"path": str(path), "html": markdown_html("\n".join(lines))} if any(l.strip() for l in lines) else {}


def render_html(views: list[DatasetView], models: list[TrainedModel], plots: dict[str, str],
                metadata: dict[str, Any], ablation: dict[str, str] | None = None,
                depth: list[dict[str, str]] | None = None) -> str:
    """The report page for prepared dataset views, trained models and plot data URIs (and the depth
    analyses of :func:`~.depth_report.depth_sections`)."""
    datasets = []
    for view in views:
        columns = leaderboard_columns(view.board, view.metrics, view.headline)
        legend = Legend(view.anchor)
        rows = leaderboard_cells(view, columns, legend)
        datasets.append({"view": view, "columns": columns, "rows": rows, "notes": legend.notes,
                         "flagged": flagged_systems(view.board),
                         "risk": risk_tables(view.board, view.headline),  # URisk, TRisk, GeoRisk (slice all)
                         # the query-type rules' default labelled too many topics: the slices say little
                         "slice_warning": next(iter(slice_warnings(view.board).values()), ""),
                         "plot": plots.get(view.name, ""), "slices": [s for s in SLICES
                                                                      if s in set(view.board["slice"])]})
    cards = [{"model": model, "card": markdown_html(model.card_markdown) if model.card_markdown else "",
              "curves": png_data_uri(model.curves_png) if model.curves_png else ""} for model in models]
    return environment().get_template("report.html.j2").render(
        datasets=datasets, models=cards, meta=metadata, headline=list(HEADLINE_METRICS),
        small_slice_mde=SMALL_SLICE_MDE, judged_disagree_help=JUDGED_DISAGREE_HELP, low_judged=LOW_JUDGED, low_judged_mark=LOW_JUDGED_MARK, models_anchor=anchor("trained-models"), ablation=ablation or {},
        depth=depth or [])


def build_html(session, board: pd.DataFrame, named_pairs: Iterable[tuple[str, str]] = (),
               query_types: str | Path | None = None, metric: str = "ndcg@10", top: int = 10, passages: int = 10,
               progress=None, source: str = "", ablation_report: str | Path | None = ABLATION_REPORT,
               depth_dir: str | Path | None = None) -> tuple[str, list[DatasetView]]:
    """The report page for a leaderboard, read through ``session`` (no model is called), and the
    dataset views it shows. The training section quotes the loss ablation's verdict
    (``ablation_report``) when a model of the ablation is on the board."""
    from .plots import plot_slices

    if board.empty:
        raise WorkbenchError("the leaderboard is empty: run `workbench eval` (make eval) first")
    named_pairs = list(named_pairs)
    on_board = set(board["system"])
    for a, b in named_pairs:
        missing = [s for s in (a, b) if s not in on_board]
        if missing:
            raise WorkbenchError(f"--pair {a} {b}: not on the leaderboard: {', '.join(missing)} "
                                 "(run `workbench eval --systems ...` first)")
    data = ReportData(session, board, query_types=query_types, metric=metric, top=top, passages=passages,
                      progress=progress)
    views = [data.dataset_view(name, named_pairs) for name in sorted(board["dataset"].unique())]
    plots = {view.name: png_data_uri(plot_slices(view.board, tuple(view.headline), datasets=[view.name]))
             for view in views}
    from importlib.metadata import version

    metadata = {"generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "source": source, "workbench": version("workbench"), "ranx": version("ranx"),
                "metric": metric, "top": top, "passages": passages,
                "data_dir": _data_dir(session, views)}
    models = trained_models(board["system"].unique())
    return render_html(views, models, plots, metadata, ablation_verdict(models, ablation_report),
                       depth=depth_sections(depth_dir)), views  # `workbench depth`'s tables and plots


def _data_dir(session, views: list[DatasetView]) -> str:
    """The data directory of the built-in datasets shown (else the first dataset's source)."""
    for view in views:
        if not view.pooled:
            dataset = session.dataset(view.name)
            return str(dataset.data_dir) if dataset.spec.source == "built-in" else dataset.spec.source
    return ""


def write_html_report(session, board: pd.DataFrame, out_dir: str | Path = "runs/report",
                      named_pairs: Iterable[tuple[str, str]] = (), query_types: str | Path | None = None,
                      metric: str = "ndcg@10", top: int = 10, passages: int = 10, progress=None,
                      source: str = "", depth_dir: str | Path | None = None) -> tuple[Path, list[DatasetView]]:
    """Write ``index.html`` into ``out_dir`` atomically; returns its path and the dataset views."""
    from ..core.files import atomic_write

    page, views = build_html(session, board, named_pairs, query_types=query_types, metric=metric, top=top,
                      passages=passages, progress=progress, source=source, depth_dir=depth_dir)
    path = Path(out_dir) / "index.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        handle.write(page)
    return path, views

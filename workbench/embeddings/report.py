"""``workbench embed-diagnose``: the diagnostics of one or more models under several poolings
(and whitenings) on a dataset's judged pairs, written as JSON, Markdown and PNG under
``runs/diagnostics/<model>/``."""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ..core.files import atomic_write
from ..data.collection import Collection
from ..data.datasets import get_dataset
from ..models.dense import POOLINGS
from .diagnostics import Embedded, JudgedSet, embed_rows, judged_set, measure, nearest_neighbours
from .plots import plot_before_after, plot_histograms, plot_projections

READING = """\
How to read it:
- **range** collapsing towards 1 (min cosine high) means every text gets nearly the same vector: cosine
  says little (first-token pooling on an encoder without [CLS] does this).
- **random-pair cos** is the anisotropy: a high mean cosine between unrelated passages (a narrow cone)
  compresses every cosine; **PC1** is the share of the variance along the top principal axis.
- **AUC** is the probability that a relevant pair (grade >= {level}) scores a higher cosine than a
  non-relevant one (grade 0), over all judged pairs; **query AUC** is its mean per query (what a
  ranker needs). **gap/sd** is the relevant-minus-non-relevant gap in pooled standard deviations,
  comparable across rows whose cosines are compressed differently; the raw gap is not.
- **within/between** (ratio): mean cosine of passages relevant to the same query vs to different queries
  (and of queries of the same vs different query type). After centering or whitening, between-group
  cosines approach 0, so read the difference (within - between) there rather than the ratio.
- **mean** pooling averages padding positions too: with the length-sorted, dynamically padded batches
  used here it moves little, but padded to a fixed length (pad_to) the padding vectors, alike for every
  text, dominate and lift unrelated pairs (`workbench similarity examples/sentence-pairs.tsv --pooling
  mean --pad-to 256`).
"""


@dataclass
class DiagnosticsReport:
    dataset: str
    models: list[str]
    rows: list[dict[str, Any]]
    neighbours: dict[str, list[dict[str, Any]]]
    settings: dict[str, Any]

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def best(self) -> dict[str, Any]:
        """The row whose cosine separates relevant from non-relevant pairs best (query AUC, then AUC)."""
        return max(self.rows, key=lambda r: (_number(r["query_auc"]), _number(r["auc"])))

    def markdown(self) -> str:
        lines = [f"# Embedding diagnostics: {', '.join(self.models)} on {self.dataset}", "",
                 f"{self.settings['queries']} judged queries, {self.settings['passages']} judged passages, "
                 f"{self.rows[0]['relevant_pairs']} relevant (grade >= {self.settings['relevance_level']}) and "
                 f"{self.rows[0]['nonrelevant_pairs']} non-relevant (grade 0) pairs; range over "
                 f"{self.settings['range_items']} items, anisotropy over {self.settings['random_pairs']} random "
                 "passage pairs.", "",
                 "| row | range min / mean / max | random-pair cos | PC1 | relevant cos | non-rel. cos | gap | gap/sd "
                 "| AUC | query AUC | passages within / between (ratio; diff) | query types within / between (ratio; diff) |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            lines.append(
                f"| {row_label(r)} | {r['sim_min']:.3f} / {r['sim_mean']:.3f} / {r['sim_max']:.3f} | "
                f"{r['random_pair_cos']:.3f} | {r['pc1_share']:.3f} | {r['relevant_cos']:.3f} | "
                f"{r['nonrelevant_cos']:.3f} | {r['gap']:.3f} | {r['gap_sd']:.2f} | {r['auc']:.3f} | "
                f"{r['query_auc']:.3f} | {_groups(r, 'passage')} | {_groups(r, 'qtype')} |")
        best = self.best()
        lines += ["", f"Separates relevant from non-relevant best: **{row_label(best)}** (query AUC "
                      f"{best['query_auc']:.3f}, AUC {best['auc']:.3f}).", "",
                  READING.format(level=self.settings["relevance_level"]), "## Nearest judged passages of sample queries", ""]
        for label, found in self.neighbours.items():
            lines.append(f"**{label}**")
            for item in found:
                shown = ", ".join(f"{n['docno']} (cos {n['cosine']:.3f}, grade "
                                  f"{'unjudged' if n['grade'] is None else n['grade']})" for n in item["neighbours"])
                lines.append(f"- {item['qid']} {item['query']!r}: {shown}")
            lines.append("")
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "models": self.models, "settings": self.settings,
                "rows": [{k: _jsonable(v) for k, v in r.items()} for r in self.rows], "neighbours": self.neighbours}


def _groups(row: dict[str, Any], prefix: str) -> str:
    within, between = row[f"{prefix}_within"], row[f"{prefix}_between"]
    # a ratio over a between-group cosine near 0 (isotropic or whitened vectors) means nothing
    ratio = f"{within / between:.2f}" if abs(between) >= 0.05 else "n/a"
    return f"{within:.3f} / {between:.3f} ({ratio}; {within - between:+.3f})"


def row_label(row: dict[str, Any]) -> str:
    post = row.get("postprocess", "none")
    return f"{row['model']} {row['pooling']}" + ("" if post in ("none", "") else f"+{post}")


def _number(value: Any) -> float:
    return -1.0 if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    return value


def diagnose(models: Sequence[str], dataset: str = "dl19", poolings: Sequence[str] = POOLINGS,
             whiten: Sequence[str] = (), data_dir: str | Path | None = None, limit_queries: int | None = None,
             fit_sample: int | None = None, neighbours: int = 3, progress: bool = True, seed: int = 0,
             **options: Any) -> tuple[DiagnosticsReport, list[Embedded], JudgedSet]:
    """Diagnose every model under every pooling (and whitening) on ``dataset``'s judged pairs."""
    started = time.perf_counter()
    data = get_dataset(dataset, data_dir)
    collection = Collection(data.collection_path)
    judged = judged_set(data, collection, limit_queries, seed)
    embedded: list[Embedded] = []
    for model in models:
        embedded += embed_rows(model, judged, data, poolings, whiten, fit_sample, collection, progress, **options)
    rows = [measure(row, judged, seed) for row in embedded]
    found = {row.label: nearest_neighbours(row, judged, neighbours, seed=seed) for row in embedded}
    settings = {"queries": len(judged.qids), "passages": len(judged.docnos), "relevance_level": judged.relevance_level,
                "poolings": list(poolings), "whiten": list(whiten), "fit_sample": fit_sample, "seed": seed,
                "range_items": min(len(judged.docnos), 1000) + len(judged.qids), "random_pairs": 20_000,
                "limit_queries": limit_queries, "seconds": round(time.perf_counter() - started, 1),
                "options": {k: str(v) for k, v in options.items()}}
    labels = list(dict.fromkeys(row.model for row in embedded))
    return DiagnosticsReport(dataset, labels, rows, found, settings), embedded, judged


def write_diagnostics_report(report: DiagnosticsReport, embedded: Sequence[Embedded], judged: JudgedSet,
                 out: str | Path) -> list[Path]:
    """``diagnostics.json``, ``diagnostics.md``, ``histograms.png``, one ``projection-<row>.png``
    per row and ``before-after.png`` in ``out``."""
    out = Path(out)
    written = []
    with atomic_write(out / "diagnostics.json") as handle:
        json.dump(report.to_json(), handle, indent=1)
    written.append(out / "diagnostics.json")
    with atomic_write(out / "diagnostics.md") as handle:
        handle.write(report.markdown())
    written.append(out / "diagnostics.md")
    written.append(plot_histograms(embedded, out / "histograms.png"))
    for row in embedded:
        name = row.label.replace(" ", "-").replace("/", "-")
        written.append(plot_projections(row, judged, out / f"projection-{name}.png"))
    if len(embedded) > 1:
        written.append(plot_before_after(embedded, judged, out / "before-after.png"))
    return written

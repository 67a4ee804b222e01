"""What the HTML report shows, gathered from the leaderboard, the stored runs and the data
directory, with no model call: per dataset the leaderboard rows, and for each compared pair of
systems the queries with the largest gains and losses, each with both rankings side by side
(passage text, NIST grades, unjudged marked) and the query type with the rule that labelled it.

The gathering is separate from the rendering (:mod:`.html`), so the notebook and tests can use
the same views.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from ..analysis.compare import UNJUDGED, gains_and_losses, per_query_deltas, top_passages
from ..analysis.query_types import SLICES, load_query_types
from ..core.errors import WorkbenchError
from ..evaluation.metrics import DEFAULT_METRICS, HEADLINE_METRICS, Evaluation, evaluate_cached
from ..evaluation.slices import slice_qids
from ..evaluation.stats import wins_ties_losses
from .leaderboard import metric_columns

DRILL_METRIC = "ndcg@10"  # orders the gains and losses: graded, and deep enough to see a ranking change
SHOWN_METRICS = ("mrr@10", "ndcg@5", "ndcg@10")
DRILL_METRICS = tuple(DEFAULT_METRICS)  # what drill-downs evaluate per query, on any dataset  # per-query values shown beside each drill-down


def anchor(*parts: str) -> str:
    """A stable HTML id for a system, pair or query: readable prefix plus a short hash (system
    names hold ``+ : , = [ |`` and can be long)."""
    text = "\x00".join(parts)
    readable = re.sub(r"[^a-z0-9]+", "-", parts[0].lower()).strip("-")[:24] or "x"
    return f"{readable}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:10]}"


@dataclass
class Passage:
    """One ranked passage of one system for one query."""

    rank: int
    docno: str
    score: float
    grade: int | None  # None: not judged by NIST
    text: str
    other_rank: int | None  # its rank in the other system's run (None: not retrieved there)


@dataclass
class QueryDrill:
    """One query of a pair: both systems' values and top passages."""

    qid: str
    query: str
    type: str
    reason: str
    values: dict[str, tuple[float, float]]  # metric -> (a, b)
    delta: float  # b - a on the pair's metric
    a_passages: list[Passage]
    b_passages: list[Passage]
    n_judged: int
    n_relevant: int  # at the dataset's relevance level
    anchor: str


@dataclass
class PairView:
    """System ``b`` against system ``a`` on one dataset, query by query."""

    dataset: str
    a: str
    b: str
    metric: str
    origin: str  # "baseline" (the leaderboard's pair) or "named" (asked for by the user)
    mean_a: float
    mean_b: float
    wtl: str
    per_slice: list[dict[str, Any]]
    gains: list[QueryDrill]
    losses: list[QueryDrill]
    anchor: str
    significance: dict[str, str] = field(default_factory=dict)  # headline metric -> "+0.0123**" (slice all)

    @property
    def largest_disagreement(self) -> QueryDrill | None:
        """The query whose metric changed most, either way."""
        queries = self.gains + self.losses
        return max(queries, key=lambda q: (abs(q.delta), q.qid)) if queries else None


@dataclass
class TrainedModel:
    """A model trained here that a system on the board uses: its card and training curves."""

    name: str
    directory: Path
    card_markdown: str | None
    curves_png: Path | None
    systems: list[str]
    anchor: str


@dataclass
class DatasetView:
    """Everything the report shows for one dataset."""

    name: str
    board: pd.DataFrame  # the leaderboard rows of this dataset, every slice
    pairs: list[PairView]
    n_topics: int
    n_unjudged: int
    relevance_level: int
    label_sources: dict[str, int]
    anchor: str
    #: the dataset's metrics on the board, headline first (TREC DL: MRR@10, NDCG@5; CACM: MAP, P@30)
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS))
    headline: list[str] = field(default_factory=lambda: list(HEADLINE_METRICS))
    pooled: str = ""  # "dl19+dl20" for rows pooled over datasets
    description: str = ""
    comparability: str = ""


def view_metrics(board: pd.DataFrame, declared: Iterable[str]) -> tuple[list[str], list[str]]:
    """(metrics, headline) a dataset's rows show: its declared metrics that have values, then any
    other metric column with values; the headline is the first two."""
    metrics = metric_columns(board, declared)
    return metrics, metrics[:2]


def dataset_headlines(session, board: pd.DataFrame) -> dict[str, tuple[str, ...]]:
    """Each dataset's headline metrics on ``board`` (its first two declared metrics with values; a
    pool: its first dataset's), for the summary and the slice plot."""
    headlines = {}
    pooled = board["pooled"].fillna("").astype(str) if "pooled" in board.columns else pd.Series("", index=board.index)
    for name in board["dataset"].unique():
        members = pooled[board["dataset"] == name]
        first = members.iloc[0].split("+")[0] if not members.empty and members.iloc[0] else name
        rows = board[board["dataset"] == name]
        try:
            declared = session.dataset(first).metrics
        except WorkbenchError:  # a dataset this machine cannot resolve: TREC DL's headline first
            declared = list(HEADLINE_METRICS)
        headlines[name] = tuple(view_metrics(rows, declared)[1]) or tuple(HEADLINE_METRICS)
    return headlines


def baseline_pairs(board: pd.DataFrame, dataset: str) -> list[tuple[str, str]]:
    """(baseline, system) for every system the leaderboard compares with a baseline on ``dataset``."""
    rows = board[(board["dataset"] == dataset) & (board.get("slice", "all") == "all")]
    pairs = []
    for record in rows.to_dict("records"):
        base = record.get("baseline")
        if isinstance(base, str) and base:
            pairs.append((base, record["system"]))
    return list(dict.fromkeys(pairs))


def best_system(board: pd.DataFrame, dataset: str, metrics: Iterable[str] = tuple(HEADLINE_METRICS),
                eligible: Callable[[str], bool] | None = None) -> str | None:
    """The system with the highest first headline metric (ties: the next ones, then the name) on
    ``dataset``'s ``all`` slice, among the systems ``eligible`` accepts (default: every one;
    :meth:`Workbench.best_reranker <workbench.experiment.Workbench.best_reranker>` passes the
    reranked ones)."""
    metrics = [m for m in metrics if m in board.columns]
    rows = board[(board["dataset"] == dataset) & (board.get("slice", "all") == "all")]
    if eligible is not None:
        rows = rows[[bool(eligible(s)) for s in rows["system"]]]
    if rows.empty or not metrics:
        return None
    ordered = rows.sort_values(metrics + ["system"], ascending=[False] * len(metrics) + [True], kind="mergesort")
    return str(ordered["system"].iloc[0])


_FINETUNED = re.compile(r"finetuned:([A-Za-z0-9_.\-]+)((?:,[a-z_]+=[^,|\]+]+)*)")


def trained_model_names(system: str) -> list[tuple[str, str | None]]:
    """(name, root option or None) of every ``finetuned:<name>`` model a system uses, as a
    reranker or as a first-stage encoder."""
    found = []
    for match in _FINETUNED.finditer(system):
        options = dict(part.split("=", 1) for part in match.group(2).split(",") if "=" in part)
        found.append((match.group(1), options.get("root")))
    return list(dict.fromkeys(found))


class ReportData:
    """Reads what the report needs through a workbench session: stored runs (checked against
    their manifests), evaluations (cached by run and qrels checksum), qrels, topics, query types
    and passage texts."""

    def __init__(self, session, board: pd.DataFrame, query_types: str | Path | None = None,
                 metric: str = DRILL_METRIC, top: int = 10, passages: int = 10, progress=None):
        if metric not in DRILL_METRICS:
            raise WorkbenchError(f"unknown drill-down metric {metric!r}; one of {', '.join(DRILL_METRICS)}")
        if top < 1 or passages < 1:
            raise WorkbenchError("--top and --passages must be at least 1")
        self.session = session
        self.board = board
        self.query_types = query_types
        self.metric = metric
        self.top = top
        self.passages = passages
        self.progress = progress or (lambda message: None)
        self._runs: dict[tuple[str, str], pd.DataFrame] = {}
        self._evaluations: dict[tuple[str, str], Evaluation] = {}

    # -- inputs
    def run(self, dataset: str, system: str) -> pd.DataFrame:
        key = (dataset, system)
        if key not in self._runs:
            rows = self.board[(self.board["dataset"] == dataset) & (self.board["system"] == system)]
            run_path = rows["run_path"].iloc[0] if "run_path" in rows.columns and not rows.empty else None
            stored = self.session.store.load(dataset, system, run_path if isinstance(run_path, str) else None)
            self._runs[key] = stored.run
            data = self.session.dataset(dataset)
            self._evaluations[key] = evaluate_cached(stored.run, stored.manifest["sha256"], data.qrels,
                                                     data.qrels_sha256, data.relevance_level,
                                                     list(DRILL_METRICS))
        return self._runs[key]

    def evaluation(self, dataset: str, system: str) -> Evaluation:
        self.run(dataset, system)
        return self._evaluations[(dataset, system)]

    # -- views
    def dataset_view(self, dataset_name: str, named_pairs: Iterable[tuple[str, str]] = ()) -> DatasetView:
        rows = self.board[self.board["dataset"] == dataset_name]
        pooled = rows["pooled"].dropna().astype(str) if "pooled" in rows.columns else pd.Series(dtype=object)
        if not pooled.empty and pooled.iloc[0]:
            return self.pooled_view(dataset_name, pooled.iloc[0].split("+"))
        dataset = self.session.dataset(dataset_name)
        labels = load_query_types(dataset, override_path=self.query_types)
        rows = self.board[self.board["dataset"] == dataset_name]
        on_board = set(rows["system"])
        pairs = [(a, b, "baseline") for a, b in baseline_pairs(self.board, dataset_name)]
        for a, b in named_pairs:
            if a in on_board and b in on_board and (a, b) not in {(x, y) for x, y, _ in pairs}:
                pairs.append((a, b, "named"))
        views = []
        for a, b, origin in pairs:
            self.progress(f"{dataset_name}: {b} vs {a}")
            views.append(self.pair_view(dataset, labels, a, b, origin))
        metrics, headline = view_metrics(rows, dataset.metrics)
        return DatasetView(dataset_name, rows.reset_index(drop=True), views, n_topics=len(dataset.topics),
                           n_unjudged=dataset.n_unjudged, relevance_level=dataset.relevance_level,
                           label_sources=dict(labels.attrs.get("sources", {})), anchor=anchor(dataset_name),
                           metrics=metrics, headline=headline, description=dataset.description,
                           comparability=dataset.comparability)

    def pooled_view(self, name: str, members: list[str]) -> DatasetView:
        """Rows pooled over datasets: the leaderboard and its slices (drill-downs are per dataset)."""
        datasets = [self.session.dataset(member) for member in members]
        rows = self.board[self.board["dataset"] == name]
        sources: dict[str, int] = {}
        for dataset in datasets:
            for source, count in load_query_types(dataset, override_path=self.query_types).attrs.get("sources",
                                                                                                    {}).items():
                sources[source] = sources.get(source, 0) + int(count)
        metrics, headline = view_metrics(rows, datasets[0].metrics)
        return DatasetView(name, rows.reset_index(drop=True), [], n_topics=sum(len(d.topics) for d in datasets),
                           n_unjudged=sum(d.n_unjudged for d in datasets), relevance_level=datasets[0].relevance_level,
                           label_sources=sources, anchor=anchor(name), metrics=metrics, headline=headline,
                           pooled="+".join(members),
                           description="the union of the judged queries of " + ", ".join(members)
                           + ", each with its own qrels")

    def pair_view(self, dataset, labels: pd.DataFrame, a: str, b: str, origin: str) -> PairView:
        name = dataset.name
        per_a, per_b = self.evaluation(name, a).per_query, self.evaluation(name, b).per_query
        qids = per_a.index
        values_a = per_a[self.metric]
        values_b = per_b[self.metric].reindex(qids).fillna(0.0)  # a judged query missing from b scores 0
        deltas = per_query_deltas(per_a, per_b, self.metric, dataset.topics, labels)
        gains, losses = gains_and_losses(deltas, self.top)
        delta = deltas.set_index("qid")["delta"]
        qrels = dataset.qrels
        run_a, run_b = self.run(name, a), self.run(name, b)
        pair_anchor = anchor(b, a, name)

        def drill(qid: str) -> QueryDrill:
            grades = qrels[qrels["qid"] == qid].set_index("docno")["label"].astype(int)
            ranks_a, ranks_b = self._ranks(run_a, qid), self._ranks(run_b, qid)
            row = deltas.loc[deltas["qid"] == qid].iloc[0]
            return QueryDrill(
                qid=str(qid), query=text_or_empty(row["query"]), type=text_or_empty(row["type"]),
                reason=text_or_empty(row["reason"]),
                values={m: (float(per_a.at[qid, m]), float(per_b[m].get(qid, 0.0))) for m in SHOWN_METRICS
                        if m in per_a.columns},
                delta=float(delta[qid]),
                a_passages=self._passages(dataset, run_a, qid, ranks_b),
                b_passages=self._passages(dataset, run_b, qid, ranks_a),
                n_judged=int(len(grades)), n_relevant=int((grades >= dataset.relevance_level).sum()),
                anchor=anchor(str(qid), pair_anchor))

        per_slice = []
        for slice_name in SLICES:
            chosen = slice_qids(labels, qids, slice_name)
            if len(chosen) == 0:
                continue
            per_slice.append({"slice": slice_name, "n": len(chosen), "mean_a": float(values_a[chosen].mean()),
                              "mean_b": float(values_b[chosen].mean()), "delta": float(delta[chosen].mean()),
                              "wtl": str(wins_ties_losses(values_a[chosen], values_b[chosen]))})
        return PairView(dataset=name, a=a, b=b, metric=self.metric, origin=origin,
                        mean_a=float(values_a.mean()), mean_b=float(values_b.mean()),
                        wtl=str(wins_ties_losses(values_a, values_b)), per_slice=per_slice,
                        gains=[drill(q) for q in gains["qid"]], losses=[drill(q) for q in losses["qid"]],
                        anchor=pair_anchor, significance=self._significance(name, a, b))

    def _significance(self, dataset: str, a: str, b: str) -> dict[str, str]:
        """The leaderboard's delta and corrected marker of ``b`` against ``a`` (slice all), where
        the leaderboard compared them."""
        rows = self.board[(self.board["dataset"] == dataset) & (self.board["system"] == b)
                          & (self.board.get("slice", "all") == "all")]
        if rows.empty or rows.get("baseline", pd.Series([None])).iloc[0] != a:
            return {}
        record = rows.iloc[0]
        out = {}
        for metric in self.session.dataset(dataset).metrics[:2]:  # the dataset's headline metrics
            value = record.get(f"delta_{metric}", np.nan)
            if not pd.isna(value):
                marker = record.get(f"sig_{metric}", "")
                out[metric] = f"{value:+.4f}{'' if pd.isna(marker) else marker}"
        return out

    @staticmethod
    def _ranks(run: pd.DataFrame, qid: str) -> dict[str, int]:
        rows = run[run["qid"] == qid]
        return dict(zip(rows["docno"].astype(str), rows["rank"].astype(int)))

    def _passages(self, dataset, run: pd.DataFrame, qid: str, other_ranks: dict[str, int]) -> list[Passage]:
        top = top_passages(run, qid, dataset.qrels, self.session.collection(dataset), self.passages)
        return [Passage(rank=int(row.rank), docno=str(row.docno), score=float(row.score),
                        grade=None if row.grade == UNJUDGED else int(row.grade), text=row.text,
                        other_rank=other_ranks.get(str(row.docno)))
                for row in top.itertuples(index=False)]


def trained_models(systems: Iterable[str]) -> list[TrainedModel]:
    """The models trained here that ``systems`` use, with their card (``README.md``) and curves
    (``training.png``) from ``<models>/<name>/`` (``workbench train`` writes both)."""
    from ..models.ranker import models_root

    users: dict[tuple[str, str | None], list[str]] = {}
    for system in systems:
        for key in trained_model_names(system):
            users.setdefault(key, []).append(system)
    models = []
    for (name, root), used_by in users.items():
        directory = Path(root or models_root()) / name
        card = directory / "README.md"
        curves = directory / "training.png"
        models.append(TrainedModel(name=name, directory=directory,
                                   card_markdown=card.read_text(encoding="utf-8") if card.is_file() else None,
                                   curves_png=curves if curves.is_file() else None, systems=used_by,
                                   anchor=anchor("model", name, str(directory))))
    return models


def slice_effects(board: pd.DataFrame, dataset: str, metric: str = HEADLINE_METRICS[1]) -> pd.DataFrame:
    """Which query-type slice each compared system helps or hurts on ``dataset``: per system and
    slice the delta against its baseline, the corrected significance marker and p-value, the
    minimal detectable effect (80% power at 0.05) and a verdict that reads a missing ``*`` on a
    small slice as "could not tell", not as "no difference"."""
    rows = board[(board["dataset"] == dataset) & board.get("baseline", pd.Series(dtype=object)).notna()]
    rows = rows[rows["baseline"].astype(str) != ""] if not rows.empty else rows
    out = []
    for record in rows.to_dict("records"):
        delta = _float(record.get(f"delta_{metric}"))
        marker = record.get(f"sig_{metric}")
        marker = marker if isinstance(marker, str) else ""
        mde = _float(record.get(f"mde_{metric}"))
        if np.isnan(delta):
            verdict = ""
        elif marker:
            verdict = "helps" if delta > 0 else "hurts"
        elif not np.isnan(mde) and abs(delta) < mde:
            verdict = f"could not tell (|Δ| below the MDE {mde:.3f} of n={int(record['n_queries'])})"
        else:
            verdict = "not significant after correction"
        out.append({"system": record["system"], "baseline": record["baseline"], "slice": record["slice"],
                    "n": int(record["n_queries"]), metric: _float(record.get(metric)), f"delta_{metric}": delta,
                    "sig": marker, "p_adj": _float(record.get(f"p_adj_{metric}")), "mde": mde, "verdict": verdict})
    columns = ["system", "baseline", "slice", "n", metric, f"delta_{metric}", "sig", "p_adj", "mde", "verdict"]
    return pd.DataFrame(out, columns=columns)


def text_or_empty(value: Any) -> str:
    """A value as text; None and NaN (a missing CSV cell) as the empty string."""
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def number_or_none(value: Any) -> float | None:
    """A value as a float; None, NaN (a missing CSV cell) and non-numbers as None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(number) else number


def _float(value: Any) -> float:
    number = number_or_none(value)
    return float("nan") if number is None else number


def disagreement(data: "ReportData", dataset: str, systems: list[str], metric: str = DRILL_METRIC,
                 top: int = 10) -> pd.DataFrame:
    """The queries on which ``systems`` disagree most: per query each system's ``metric``, the
    ``spread`` (best minus worst), which systems are best and worst, and the Kendall tau between
    those two systems' rankings of the passages both retrieved; largest spreads first."""
    from scipy.stats import kendalltau

    if len(systems) < 2:
        raise WorkbenchError(f"disagreement needs at least two systems on {dataset}, got {len(systems)}")
    per_query = pd.DataFrame({s: data.evaluation(dataset, s).per_query[metric] for s in systems})
    spread = per_query.max(axis=1) - per_query.min(axis=1)
    table = per_query.assign(spread=spread, best=per_query.idxmax(axis=1), worst=per_query.idxmin(axis=1))
    table = table.assign(key=table.index.astype(str)).sort_values(["spread", "key"], ascending=[False, True])
    table = table.drop(columns="key").head(top)
    topics = data.session.dataset(dataset).topics.set_index("qid")["query"]
    taus = []
    for qid, record in table.iterrows():
        ranks_best = ReportData._ranks(data.run(dataset, record["best"]), qid)
        ranks_worst = ReportData._ranks(data.run(dataset, record["worst"]), qid)
        shared = sorted(set(ranks_best) & set(ranks_worst))
        taus.append(float(kendalltau([ranks_best[d] for d in shared], [ranks_worst[d] for d in shared]).statistic)
                    if len(shared) > 1 else float("nan"))
    return table.assign(kendall_tau=taus, query=[topics.get(q, "") for q in table.index])

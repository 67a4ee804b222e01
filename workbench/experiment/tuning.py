"""Tuning on other queries only: parameters chosen on queries the evaluated run never includes.

Two ways to hold queries out, written ``tune=...`` in a system's options:

* ``tune=other-year`` (TREC DL: DL20 tunes DL19 and DL19 tunes DL20) or ``tune=<dataset>``: the
  parameters are chosen on another dataset's judged queries, refused when they share a query
  with the evaluated ones;
* ``tune=folds:K`` (``seed=``): the evaluated queries split into K folds; each fold's queries are
  run with the parameters chosen on the other K-1 folds, so no query's run was tuned on it.

What is tuned: a fusion's weights, RRF's k and the other parameters of ranx's ``optimize_fusion``
(:mod:`.fusion`), and a first stage's options over a grid (``bm25-mini:k1=0.6;0.9;1.2,b=0.3;0.5;0.7,
tune=other-year``: every combination of the ``;``-separated values, BM25's k1/b or RM3's
fb_terms/fb_docs/original_query_weight), chosen by ``metric=`` (default nDCG@10). The tuned values
and the tuning queries go in the run's manifest; :func:`check_tuning_queries` is the guard every
tuning path calls before it chooses anything.
"""
from __future__ import annotations

import itertools
import random
from importlib.metadata import version
from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

from ..core.cache import fingerprint
from ..core.errors import WorkbenchError
from ..core.options import split_spec
from ..data.datasets import Dataset
from .system_base import Computed, RunConfig, System, SystemContext

#: options that say how to tune, beside a system's own
TUNING_OPTIONS = ("tune", "metric", "seed")
DEFAULT_TUNING_METRIC = "ndcg@10"
#: ``tune=other-year``: the TREC DL year whose queries tune the other
OTHER_YEAR = {"dl19": "dl20", "dl20": "dl19"}
GRID_SEPARATOR = ";"


@dataclass(frozen=True)
class TuningPlan:
    """How a system is tuned: on another dataset (``kind="dataset"``, ``target`` its name or
    ``other-year``) or by ``folds`` over the evaluated queries; the metric chosen by; ranx
    optimiser options (``step``, ``min_k``, ...) for a fusion."""

    kind: str
    target: str = ""
    folds: int = 0
    seed: int = 0
    metric: str = DEFAULT_TUNING_METRIC
    optimiser: dict[str, str] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        """The plan as recorded in a key and manifest."""
        shown: dict[str, Any] = {"on": self.target if self.kind == "dataset" else f"folds:{self.folds}",
                                 "metric": self.metric}
        if self.kind == "folds":
            shown["seed"] = self.seed
        if self.optimiser:
            shown["optimiser"] = dict(self.optimiser)
        return shown

    def tuning_dataset(self, session: SystemContext, dataset: Dataset) -> Dataset:
        """The dataset whose queries tune a run on ``dataset``; refused when it is ``dataset`` or
        shares a judged query with it."""
        name = self.target
        if name == "other-year":
            if dataset.name not in OTHER_YEAR:
                raise WorkbenchError(f"tune=other-year: {dataset.name} has no other year; use tune=<dataset> "
                                     "or tune=folds:5")
            name = OTHER_YEAR[dataset.name]
        tuning_set = session.dataset(name)
        check_tuning_queries(set(tuning_set.judged_topics["qid"]), set(dataset.judged_topics["qid"]),
                             f"tune={self.target}", dataset.name)
        return tuning_set


def parse_tuning(options: dict[str, str], optimiser: dict[str, str], system: str) -> TuningPlan:
    """A :class:`TuningPlan` from ``tune=``/``metric=``/``seed=`` option text (one-line errors)."""
    target = options.get("tune", "").strip()
    if not target:
        raise WorkbenchError(f"{system!r}: metric= or seed= need tune=other-year, tune=<dataset> or tune=folds:K")
    metric = options.get("metric", DEFAULT_TUNING_METRIC).strip() or DEFAULT_TUNING_METRIC
    try:
        seed = int(options.get("seed", "0"))
    except ValueError:
        raise WorkbenchError(f"seed={options['seed']!r} in {system!r} must be an integer") from None
    if target.startswith("folds"):
        _, _, count = target.partition(":")
        try:
            folds = int(count)
        except ValueError:
            folds = 0
        if folds < 2:
            raise WorkbenchError(f"tune={target!r} in {system!r}: write tune=folds:K with K >= 2 folds")
        return TuningPlan("folds", folds=folds, seed=seed, metric=metric, optimiser=dict(optimiser))
    return TuningPlan("dataset", target=target, seed=seed, metric=metric, optimiser=dict(optimiser))


def check_tuning_queries(tuning_qids: set[str], evaluated_qids: set[str], system: str,
                         dataset: str | None = None) -> None:
    """Refuse, in one line, to tune on any query the evaluated run includes (the tuning
    counterpart of the training leakage guard)."""
    shared = sorted(set(tuning_qids) & set(evaluated_qids))
    if shared:
        where = f" on {dataset}" if dataset else ""
        raise WorkbenchError(f"{system}: the tuning queries overlap the evaluated queries{where} ({len(shared)} "
                             f"shared, e.g. {shared[0]}): tune on other queries (tune=other-year, "
                             "tune=<another dataset> or tune=folds:K)")
    if not tuning_qids:
        raise WorkbenchError(f"{system}: no tuning queries")


def split_folds(qids: Sequence[str], folds: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """``folds`` (held-out queries, tuning queries) pairs: the queries shuffled with ``seed`` and
    dealt round-robin, so fold sizes differ by at most one and every query is held out once."""
    ordered = sorted(qids)
    if len(ordered) < folds:
        raise WorkbenchError(f"{len(ordered)} queries cannot make {folds} folds")
    random.Random(seed).shuffle(ordered)
    held = [sorted(ordered[fold::folds]) for fold in range(folds)]
    return [(held[fold], sorted(q for other in range(folds) if other != fold for q in held[other]))
            for fold in range(folds)]


def tuning_requested(spec: str) -> bool:
    """Whether a first-stage spec asks to be tuned (an option ``tune=...``)."""
    if spec.startswith("run:"):
        return False
    _, text = split_spec(spec)
    return any(part.strip().startswith("tune=") for part in text.split(","))


@dataclass(frozen=True)
class TunedFirstStageSystem(System):
    """A first stage whose options are chosen from a grid on other queries (module docstring):
    each grid point is a first-stage run of its own (stored and reused), and the run is the
    chosen point's (per fold with ``tune=folds:K``)."""

    name: str
    base: str
    fixed: tuple[tuple[str, str], ...]
    grid: tuple[tuple[str, tuple[str, ...]], ...]
    plan: TuningPlan

    @classmethod
    def parse(cls, spec: str) -> "TunedFirstStageSystem":
        """``bm25-mini:k1=0.6;0.9,b=0.4;0.7,tune=other-year`` -> the system (one-line errors)."""
        base, text = split_spec(spec)
        fixed, grid, tuning = [], [], {}
        for part in [p for p in text.split(",") if p.strip()]:
            key, eq, value = part.partition("=")
            key, value = key.strip(), value.strip()
            if not eq:
                raise WorkbenchError(f"bad option {part!r} in {spec!r}: expected key=value")
            if key in TUNING_OPTIONS:
                tuning[key] = value
            elif GRID_SEPARATOR in value or not value:
                values = tuple(v.strip() for v in value.split(GRID_SEPARATOR) if v.strip())
                if not values:
                    raise WorkbenchError(f"empty parameter grid for {key} in {spec!r}: give values separated by ';'")
                grid.append((key, values))
            else:
                fixed.append((key, value))
        if not grid:
            raise WorkbenchError(f"nothing to tune in {spec!r}: give an option two or more values separated "
                                 "by ';' (k1=0.6;0.9;1.2)")
        return cls(spec, base, tuple(fixed), tuple(grid), parse_tuning(tuning, {}, spec))

    def points(self) -> list[str]:
        """Every grid point as a first-stage spec, in grid order (the first of equals wins)."""
        keys = [key for key, _ in self.grid]
        specs = []
        for values in itertools.product(*(values for _, values in self.grid)):
            options = [*(f"{k}={v}" for k, v in self.fixed), *(f"{k}={v}" for k, v in zip(keys, values))]
            specs.append(f"{self.base}:{','.join(options)}")
        return specs

    def config(self, session: SystemContext, dataset: Dataset) -> RunConfig:
        points = self.points()
        judged = sorted(set(dataset.judged_topics["qid"]))
        if self.plan.kind == "dataset":  # one choice on the other dataset's queries for all of this one's
            scored_on = self.plan.tuning_dataset(session, dataset)
            splits = [(sorted(set(scored_on.judged_topics["qid"])), None)]
        else:  # each fold's choice on the other folds' queries
            scored_on = dataset
            splits = [(tuning_qids, held_out) for held_out, tuning_qids in
                      split_folds(judged, self.plan.folds, self.plan.seed)]
        scores = _point_scores(session, points, scored_on, self.plan.metric)
        plan = []
        for tuning_qids, held_out in splits:
            check_tuning_queries(set(tuning_qids), set(judged if held_out is None else held_out), self.name,
                                 dataset.name)
            means = {point: float(table.loc[tuning_qids].mean()) for point, table in scores.items()}
            chosen = max(points, key=lambda point: (means[point], -points.index(point)))
            plan.append({"chosen": chosen, "tuning_queries": tuning_qids, "evaluated_queries": held_out,
                         "scores": means})
        tuning_note = {"dataset": scored_on.name, "qrels_sha256": scored_on.qrels_sha256,
                       "relevance_level": scored_on.relevance_level}
        chosen_runs = {entry["chosen"]: session.produce(entry["chosen"], dataset.name) for entry in plan}
        settings = {"type": "tuned-first-stage", "base": self.base, "grid": points, "tuning": self.plan.settings(),
                    **{f"tuning_{k}": v for k, v in tuning_note.items()},
                    "chosen": [entry["chosen"] for entry in plan],
                    "chosen_sha256": [chosen_runs[entry["chosen"]].manifest["sha256"] for entry in plan],
                    # what the choice read: the judgments at their relevance level, the evaluated queries
                    "relevance_level": dataset.relevance_level, "qrels_sha256": dataset.qrels_sha256,
                    "ranx": version("ranx")}
        return RunConfig(settings, fingerprint(settings), {"plan": plan, "chosen_runs": chosen_runs})

    def compute(self, session: SystemContext, dataset: Dataset, config: RunConfig) -> Computed:
        from ..data.trec import sort_run

        plan, chosen_runs = config.inputs["plan"], config.inputs["chosen_runs"]
        pieces = []
        for entry in plan:
            run = chosen_runs[entry["chosen"]].run
            if entry["evaluated_queries"] is not None:
                run = run[run["qid"].isin(set(entry["evaluated_queries"]))]
            pieces.append(run)
        run = sort_run(pd.concat(pieces, ignore_index=True))
        first = chosen_runs[plan[0]["chosen"]].manifest
        record = {"tuning": {**self.plan.settings(), "tuning_dataset": config.config["tuning_dataset"],
                             "grid": config.config["grid"],
                             "choices": [{**entry, "scores": {p: round(s, 6) for p, s in entry["scores"].items()}}
                                         for entry in plan]},
                  "tuned_params": [_options_of(entry["chosen"]) for entry in plan]}
        details = {key: first[key] for key in ("precision", "backend") if key in first}
        candidates = str(first.get("candidates", self.base))
        return Computed(run, f"{candidates} (options tuned on other queries)", details, record)


def _options_of(spec: str) -> dict[str, str]:
    _, text = split_spec(spec)
    return dict(part.split("=", 1) for part in text.split(",") if "=" in part)


def _point_scores(session: SystemContext, points: list[str], dataset: Dataset, metric: str) -> dict[str, pd.Series]:
    """Per-query ``metric`` of every grid point's run on ``dataset`` (each point stored and reused)."""
    from ..evaluation.metrics import evaluate_cached

    scores = {}
    for point in points:
        stored = session.produce(point, dataset.name)
        evaluation = evaluate_cached(stored.run, stored.manifest["sha256"], dataset.qrels, dataset.qrels_sha256,
                                     dataset.relevance_level, [metric])
        scores[point] = evaluation.per_query[metric]
    return scores

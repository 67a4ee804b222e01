"""Fusion systems: every ranx fusion method, with any of its normalisations, by name.

    fusion  := method [":" options] "[" system ("|" system)+ "]"
    options := norm=<min-max|max|sum|zmuv|rank|borda|min-max-inverted|none>
               | a fusion parameter (weights=0.3;0.7, k=60, gamma=.., phi=.., sigma=.., w=..)
               | tune=<other-year|<dataset>|folds:K> [metric=ndcg@10] [seed=0] [an optimiser option]

``wsum:norm=min-max,weights=0.3;0.7[official-bm25|official-bm25+dense-minilm]`` is a weighted sum
of min-max-normalised scores; ``wsum:norm=min-max,tune=other-year[...]`` takes its weights from
ranx's ``optimize_fusion`` on the other TREC DL year's queries (see :mod:`.tuning`). ``rrf``
(k=60), ``combsum`` (``sum`` of min-max scores) and ``combmnz`` keep their meaning. The run is
``ranx.fuse`` of the components' stored runs over the queries they share; methods that read
ranks get each run in trec_eval's order, so tied scores rank as trec_eval ranks them. The method,
normalisation, parameters (given or tuned) and the tuning queries are in the run's key and manifest.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..core.cache import fingerprint
from ..core.errors import WorkbenchError
from ..data.datasets import Dataset
from .system_base import Computed, RunConfig, System, SystemContext, combine
from .tuning import TUNING_OPTIONS, TuningPlan, check_tuning_queries, parse_tuning, split_folds


@dataclass(frozen=True)
class FusionMethod:
    """A ranx fusion method as the workbench offers it: what it reads (``scores`` or ``ranks``),
    the parameters ``ranx.fuse`` takes, its default normalisation and whether it must be trained
    on judged queries (``supervised``: ProbFuse, SegFuse, SlideFuse, PosFuse, BayesFuse, MAPFuse)."""

    name: str
    reads: str
    params: tuple[str, ...] = ()
    default_norm: str | None = "min-max"
    supervised: bool = False
    help: str = ""


def _methods(*methods: FusionMethod) -> dict[str, FusionMethod]:
    return {method.name: method for method in methods}


#: every method of ranx's ``fuse`` (ranx 0.3): name -> declaration
FUSION_METHODS = _methods(
    FusionMethod("min", "scores", help="CombMIN"), FusionMethod("max", "scores", help="CombMAX"),
    FusionMethod("med", "scores", help="CombMED"), FusionMethod("anz", "scores", help="CombANZ"),
    FusionMethod("sum", "scores", help="CombSUM"), FusionMethod("mnz", "scores", help="CombMNZ"),
    FusionMethod("gmnz", "scores", ("gamma",), help="CombGMNZ"),
    FusionMethod("wsum", "scores", ("weights",), help="weighted sum (linear interpolation)"),
    FusionMethod("wmnz", "scores", ("weights",), help="weighted CombMNZ"),
    FusionMethod("mixed", "scores", ("weights",), help="Mixed"),
    FusionMethod("rrf", "ranks", ("k",), None, help="reciprocal rank fusion (k=60)"),
    FusionMethod("isr", "ranks", (), None, help="inverse square rank"),
    FusionMethod("log_isr", "ranks", (), None, help="log inverse square rank"),
    FusionMethod("logn_isr", "ranks", ("sigma",), None, help="logN inverse square rank"),
    FusionMethod("rbc", "ranks", ("phi",), None, help="rank-biased centroids"),
    FusionMethod("bordafuse", "ranks", (), None, help="BordaFuse"),
    FusionMethod("w_bordafuse", "ranks", ("weights",), None, help="weighted BordaFuse"),
    FusionMethod("condorcet", "ranks", (), None, help="CondorcetFuse"),
    FusionMethod("w_condorcet", "ranks", ("weights",), None, help="weighted CondorcetFuse"),
    FusionMethod("probfuse", "ranks", (), None, True, "ProbFuse (trained)"),
    FusionMethod("segfuse", "ranks", (), None, True, "SegFuse (trained)"),
    FusionMethod("slidefuse", "ranks", (), None, True, "SlideFuse (trained)"),
    FusionMethod("posfuse", "ranks", (), None, True, "PosFuse (trained)"),
    FusionMethod("bayesfuse", "ranks", (), None, True, "BayesFuse (trained)"),
    FusionMethod("mapfuse", "ranks", (), None, True, "MAPFuse (trained)"),
)
#: names kept from before every method was offered: prefix -> (method, normalisation)
FUSION_ALIASES = {"combsum": ("sum", "min-max"), "combmnz": ("mnz", "min-max")}
#: ranx's normalisations ("none": the runs' own scores)
NORMALISATIONS = ("min-max", "min-max-inverted", "max", "sum", "zmuv", "rank", "borda", "none")
RRF_K = 60
#: parameters without which a method cannot fuse, unless tuned: their defaults
_DEFAULT_PARAMS = {"k": RRF_K, "sigma": 0.01}
_INT_PARAMS = {"k", "w", "n_segments"}


@dataclass(frozen=True)
class FusionSpec:
    """A fusion head parsed: ranx method, normalisation, given parameters and how to tune the rest."""

    method: FusionMethod
    norm: str | None
    params: dict[str, Any] = field(default_factory=dict)
    tuning: TuningPlan | None = None

    def settings(self) -> dict[str, Any]:
        """What determines the fused run, for its key and manifest."""
        return {"method": self.method.name, "norm": self.norm, "params": self.params,
                "tuning": self.tuning.settings() if self.tuning else None}


def parse_fusion_head(head: str, n_components: int, system: str) -> FusionSpec:
    """``wsum:norm=min-max,weights=0.3;0.7`` -> :class:`FusionSpec` (one-line errors naming ``system``)."""
    prefix, _, text = head.partition(":")
    prefix = prefix.strip()
    if prefix in FUSION_ALIASES:
        name, norm = FUSION_ALIASES[prefix]
    elif prefix in FUSION_METHODS:
        name, norm = prefix, FUSION_METHODS[prefix].default_norm
    else:
        raise WorkbenchError(f"unknown fusion method {prefix!r} in {system!r}; known: "
                             f"{', '.join([*FUSION_METHODS, *FUSION_ALIASES])}")
    method = FUSION_METHODS[name]
    options: dict[str, str] = {}
    for part in [p for p in text.split(",") if p.strip()] if text else []:
        key, eq, value = part.partition("=")
        if not eq:
            raise WorkbenchError(f"bad fusion option {part!r} in {system!r}: expected key=value")
        options[key.strip()] = value.strip()
    if "norm" in options:
        norm = options.pop("norm").lower()
        if norm not in NORMALISATIONS:
            raise WorkbenchError(f"unknown normalisation {norm!r} in {system!r}; known: {', '.join(NORMALISATIONS)}")
        norm = None if norm == "none" else norm
    tuning_options = {key: options.pop(key) for key in list(options) if key in TUNING_OPTIONS}
    params = {key: _parse_param(key, options.pop(key), n_components, system)
              for key in list(options) if key in method.params}
    grid_keys = _optimiser_options(name)
    optimiser = {key: options.pop(key) for key in list(options) if key in grid_keys}
    if options:
        allowed = [*method.params, "norm", *TUNING_OPTIONS, *grid_keys]
        raise WorkbenchError(f"fusion {name} takes no option {next(iter(options))!r} (in {system!r}); "
                             f"it takes {', '.join(allowed)}")
    tuning = parse_tuning(tuning_options, optimiser, system) if tuning_options else None
    if optimiser and tuning is None:
        raise WorkbenchError(f"{', '.join(optimiser)} in {system!r} only set how tune= searches: add tune=...")
    if tuning is not None and not method.supervised and not grid_keys:
        raise WorkbenchError(f"fusion {name} has no parameter to tune: drop tune= from {system!r}")
    if tuning is not None:
        _grid_options(name, tuning.optimiser, system)  # a bad or empty grid fails now, before any work
    if method.supervised and tuning is None:
        raise WorkbenchError(f"fusion {name} is trained on judged queries: add tune=other-year or tune=folds:5 "
                             f"to {system!r}")
    if tuning is None:
        for param in method.params:
            if param not in params:
                if param == "weights":
                    params[param] = [round(1.0 / n_components, 6)] * n_components  # equal weights
                elif param in _DEFAULT_PARAMS:
                    params[param] = _DEFAULT_PARAMS[param]
                else:
                    raise WorkbenchError(f"fusion {name} needs {param}=... or tune=... in {system!r}")
    return FusionSpec(method, norm, params, tuning)


def _parse_param(key: str, value: str, n_components: int, system: str) -> Any:
    try:
        if key == "weights":
            weights = [float(w) for w in value.split(";") if w.strip()]
            if len(weights) != n_components or any(w < 0 for w in weights):
                raise ValueError
            return weights
        number = float(value)
        return int(number) if key in _INT_PARAMS else number
    except ValueError:
        wanted = (f"{n_components} non-negative numbers separated by ';'" if key == "weights" else "a number")
        raise WorkbenchError(f"fusion option {key}={value!r} in {system!r} must be {wanted}") from None


def _optimiser_options(method: str) -> tuple[str, ...]:
    """The grid options of ranx's optimiser for ``method`` (``step``, ``min_k``, ...)."""
    skip = {"qrels", "runs", "metric", "show_progress", "return_optimization_report"}
    try:
        optimiser = _optimiser(method)
    except ValueError:  # a method ranx cannot optimise: nothing to tune
        return ()
    return tuple(name for name in inspect.signature(optimiser).parameters if name not in skip)


def split_fusion(system: str) -> tuple[str, list[str]] | None:
    """``rrf[a|b]`` -> ("rrf", ["a", "b"]); ``wsum:norm=max[a|b]`` -> ("wsum:norm=max", [...]);
    None if ``system`` is not a fusion."""
    head, bracket, rest = system.partition("[")
    if not bracket or not rest.endswith("]"):
        return None
    prefix = head.partition(":")[0].strip()
    if prefix not in {*FUSION_METHODS, *FUSION_ALIASES}:
        if "|" in rest and prefix.replace("_", "").replace("-", "").isalnum():  # written as a fusion
            raise WorkbenchError(f"unknown fusion method {prefix!r} in {system!r}; known: "
                                 f"{', '.join([*FUSION_METHODS, *FUSION_ALIASES])}")
        return None
    parts, depth, current = [], 0, ""
    for char in rest[:-1]:
        if char == "|" and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += (char == "[") - (char == "]")
        current += char
    parts.append(current)
    parts = [part.strip() for part in parts]
    if len(parts) < 2 or not all(parts):
        raise WorkbenchError(f"fusion {system!r} needs at least two systems separated by '|'")
    return head, parts


def runs_for_ranx(runs: list[pd.DataFrame], names: list[str], method: FusionMethod, norm: str | None,
                  qids: set[str] | None = None) -> list:
    """ranx Runs of ``runs`` over ``qids`` (default: the queries every run has): the runs' own
    scores for a method that reads scores, trec_eval's order (strictly decreasing scores) for one
    that reads ranks or a rank normalisation, so tied scores rank as trec_eval ranks them."""
    from ..evaluation.metrics import to_ranx_run

    common = set.intersection(*(set(run["qid"]) for run in runs))
    qids = common if qids is None else common & set(qids)
    by_rank = method.reads == "ranks" or norm in ("rank", "borda")
    return [to_ranx_run(run[run["qid"].isin(qids)], name=name, trec_eval_order=by_rank)
            for run, name in zip(runs, names)]


def fuse_runs(runs: list[pd.DataFrame], names: list[str], method: FusionMethod, norm: str | None,
              params: dict[str, Any], qids: set[str] | None = None) -> pd.DataFrame:
    """``ranx.fuse`` of ``runs`` (over ``qids``, default their shared queries) as a TREC run frame."""
    from ranx import fuse

    from ..data.trec import sort_run

    ranx_runs = runs_for_ranx(runs, names, method, norm, qids)
    fused = fuse(ranx_runs, norm=norm, method=method.name, params=params).to_dataframe()
    return sort_run(fused.rename(columns={"q_id": "qid", "doc_id": "docno"}))


def tune_fusion(runs: list[pd.DataFrame], names: list[str], spec: FusionSpec, qrels: pd.DataFrame,
                relevance_level: int, tuning_qids: set[str], evaluated_qids: set[str],
                system: str, dataset: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The parameters of ``spec``'s method that ranx's ``optimize_fusion`` finds best on
    ``tuning_qids`` (their judgments only), refused when they overlap ``evaluated_qids``.

    Returns (parameters as ``ranx.fuse`` takes them, the same as plain JSON for the manifest)."""
    import warnings

    import numpy as np
    from ranx import Qrels, optimize_fusion

    from ..core.measures import resolve_measure

    check_tuning_queries(tuning_qids, evaluated_qids, system, dataset)
    tuning = spec.tuning
    assert tuning is not None
    measure = resolve_measure(tuning.metric, relevance_level)
    if measure.engine != "ranx":
        raise WorkbenchError(f"tuning metric {tuning.metric!r} of {system!r} is not one ranx computes; "
                             "tune on ndcg@10, mrr@10, map, recall@100, ...")
    qids = set.intersection(*(set(run["qid"]) for run in runs)) & set(tuning_qids) & set(qrels["qid"])
    judged = qrels[qrels["qid"].isin(qids)]
    if not qids:
        raise WorkbenchError(f"{system!r}: no tuning query is judged and in every component run")
    ranx_runs = runs_for_ranx(runs, names, spec.method, spec.norm, qids)
    ranx_qrels = Qrels.from_df(judged.assign(label=judged["label"].astype(int)), q_id_col="qid",
                               doc_id_col="docno", score_col="label")
    options = _grid_options(spec.method.name, tuning.optimiser, system)
    with warnings.catch_warnings():  # ranx warns about its own numba typed-dict conversions
        warnings.simplefilter("ignore")
        found = optimize_fusion(ranx_qrels, ranx_runs, norm=spec.norm, method=spec.method.name,
                                metric=measure.ranx_name, **options)
    if not found or any(value is None or (isinstance(value, list) and not value) for value in found.values()):
        raise WorkbenchError(f"empty parameter grid for {spec.method.name} in {system!r}: "
                             f"{', '.join(f'{k}={v}' for k, v in tuning.optimiser.items()) or 'ranx defaults'} "
                             "leave nothing to try")

    def plain(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value.item() if isinstance(value, np.generic) else value

    return dict(found), {key: plain(value) for key, value in found.items()}


def _grid_options(method: str, given: dict[str, str], system: str) -> dict[str, Any]:
    """ranx optimiser options from ``step=0.05``-style text, typed as the optimiser's defaults are
    (RRF's ``step``, ``min_k`` and ``max_k`` are integers) and checked to leave a non-empty grid."""
    declared = inspect.signature(_optimiser(method)).parameters
    options: dict[str, Any] = {}
    for key, text in given.items():
        integer = isinstance(declared[key].default, int) and not isinstance(declared[key].default, bool)
        try:
            number = float(text)
            if integer and not number.is_integer():
                raise ValueError
        except ValueError:
            kind = "an integer" if integer else "a number"
            raise WorkbenchError(f"optimiser option {key}={text!r} in {system!r} must be {kind}") from None
        options[key] = int(number) if integer else number
    if "step" in options and (options["step"] <= 0 or (method in _WEIGHTED and options["step"] > 1)):
        raise WorkbenchError(f"empty parameter grid for {method} in {system!r}: step={given['step']} "
                             + ("must be in (0, 1]" if method in _WEIGHTED else "must be positive"))
    bounds = {key: options.get(key, declared[key].default) for key in declared if key.startswith(("min_", "max_"))}
    for low in [key for key in bounds if key.startswith("min_")]:
        high = "max_" + low[4:]
        if high in bounds and (low in options or high in options) and bounds[low] > bounds[high]:
            raise WorkbenchError(f"empty parameter grid for {method} in {system!r}: {low}={bounds[low]} > "
                                 f"{high}={bounds[high]}")
    if "show_progress" in declared:
        options["show_progress"] = False
    return options


def _optimiser(method: str):
    from ranx.fusion_optimization import optimization_switch

    return optimization_switch(method)


#: fusion heads whose run keys predate the method table (see :meth:`FusedSystem.config`)
_LEGACY_HEADS = ("rrf", "combsum", "combmnz")
_WEIGHTED = {"wsum", "wmnz", "mixed", "w_bordafuse", "w_condorcet"}


@dataclass(frozen=True)
class FusedSystem(System):
    """Systems fused with ranx ``fuse`` by any of its methods and normalisations (module docstring)."""

    name: str
    head: str
    components: tuple[System, ...]
    spec: FusionSpec

    @property
    def method(self) -> str:
        """The fusion head as written (``rrf``, ``wsum:norm=min-max,tune=other-year``)."""
        return self.head

    @property
    def parts(self) -> tuple[System, ...]:
        return self.components

    @property
    def default_baseline(self) -> str | None:
        return self.components[0].name

    def config(self, session: SystemContext, dataset: Dataset) -> RunConfig:
        stored = [session.produce(part, dataset.name) for part in self.components]
        if self.head in _LEGACY_HEADS:  # keys as before every method was offered: stored runs stay valid
            described: dict[str, Any] = {"method": self.spec.method.name, "norm": self.spec.norm,
                                         "rrf_k": RRF_K if self.head == "rrf" else None}
        else:
            described = self.spec.settings()
        settings: dict[str, Any] = {"type": "fusion", **described,
                                    "components": [part.name for part in self.components],
                                    "components_sha256": [c.manifest["sha256"] for c in stored]}
        inputs: dict[str, Any] = {"stored": stored}
        tuning = self.spec.tuning
        if tuning is not None and tuning.kind == "dataset":
            tuning_set = tuning.tuning_dataset(session, dataset)
            tuned_on = [session.produce(part, tuning_set.name) for part in self.components]
            settings["tuning_components_sha256"] = [c.manifest["sha256"] for c in tuned_on]
            settings["tuning_qrels_sha256"] = tuning_set.qrels_sha256
            settings["tuning_relevance_level"] = tuning_set.relevance_level
            inputs.update(tuning_set=tuning_set, tuned_on=tuned_on)
        elif tuning is not None:
            settings["tuning_qrels_sha256"] = dataset.qrels_sha256
            settings["tuning_relevance_level"] = dataset.relevance_level
        if tuning is not None:  # the evaluated queries are the judged ones; ranx's optimiser chooses
            from importlib.metadata import version

            settings["qrels_sha256"] = dataset.qrels_sha256
            settings["ranx"] = version("ranx")
        return RunConfig(settings, fingerprint(settings), inputs)

    def compute(self, session: SystemContext, dataset: Dataset, config: RunConfig) -> Computed:
        stored = config.inputs["stored"]
        runs, names = [c.run for c in stored], [part.name for part in self.components]
        spec, tuning = self.spec, self.spec.tuning
        evaluated = set.intersection(*(set(run["qid"]) for run in runs)) & set(dataset.judged_topics["qid"])
        record: dict[str, Any] = {}
        if tuning is None:
            run = fuse_runs(runs, names, spec.method, spec.norm, spec.params)
            record["fusion_params"] = spec.params
        elif tuning.kind == "dataset":
            tuning_set = config.inputs["tuning_set"]
            tuned_runs = [c.run for c in config.inputs["tuned_on"]]
            tuning_qids = set.intersection(*(set(r["qid"]) for r in tuned_runs)) & set(tuning_set.judged_topics["qid"])
            params, shown = tune_fusion(tuned_runs, names, spec, tuning_set.qrels, tuning_set.relevance_level,
                                        tuning_qids, evaluated, self.name, dataset.name)
            run = fuse_runs(runs, names, spec.method, spec.norm, params, evaluated)
            record["fusion_params"] = shown
            record["tuning"] = {**tuning.settings(), "dataset": tuning_set.name, "queries": sorted(tuning_qids)}
        else:
            folds, pieces = [], []
            for fold, (held_out, tuning_qids) in enumerate(split_folds(sorted(evaluated), tuning.folds, tuning.seed)):
                params, shown = tune_fusion(runs, names, spec, dataset.qrels, dataset.relevance_level,
                                            set(tuning_qids), set(held_out), self.name, dataset.name)
                pieces.append(fuse_runs(runs, names, spec.method, spec.norm, params, set(held_out)))
                folds.append({"fold": fold, "params": shown, "evaluated_queries": list(held_out),
                              "tuning_queries": list(tuning_qids)})
            from ..data.trec import sort_run

            run = sort_run(pd.concat(pieces, ignore_index=True))
            record["tuning"] = {**tuning.settings(), "dataset": dataset.name, "folds": folds}
        details = {"precision": combine(*(c.manifest.get("precision") for c in stored)),
                   "backend": combine(*(c.manifest.get("backend") for c in stored))}
        described = f"{spec.method.name} fusion of {', '.join(names)}"
        return Computed(run, described, details, record)

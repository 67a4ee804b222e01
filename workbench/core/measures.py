"""Metric names, two notations, one meaning each: the workbench's (ranx's) and ir_measures'.

* **Workbench names** (``mrr@10``, ``ndcg@5``, ``map``, ``recall@100``, ``precision@30``): ranx's
  names; binary metrics count a document relevant at the *dataset's* relevance level (grade >= 2
  on TREC DL, the official convention).
* **ir_measures notation** (``nDCG@10``, ``RR(rel=2)@10``, ``AP``, ``P@30``, ``R@100``,
  ``Judged@10``, ``Bpref``/``bpref``): exactly what ir_measures means by them, so ``rel`` is 1
  unless written (``RR@10`` counts grade 1 as relevant on TREC DL; ``RR(rel=2)@10`` is the
  workbench's ``mrr@10`` there).
* **Judged-only (condensed-list) variants** of either: the name followed by ``:judged``
  (``ndcg@10:judged``, ``RR(rel=2)@10:judged``), or ir_measures' ``judged_only=True``
  (``nDCG(judged_only=True)@10``): the measure over the run with every unjudged document removed
  and the ranks closed up (Sakai's condensed lists; trec_eval's ``-J``).

Each name resolves to a :class:`Measure` that says who computes it: ranx where ranx has the
measure with the same semantics (nDCG, RR, AP, P, R), the workbench itself for
``Judged@k`` (the fraction of the top k with a judgment: a few lines, so the default leaderboard
needs no extra) and for the condensed variants (engine ``condensed``, wrapping the base measure),
else ir_measures (its pytrec_eval provider first; installed with the
``ir-measures`` extra). Every one is checked equal to trec_eval in the tests.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import WorkbenchError, first_line

BINARY_METRICS = {"mrr", "map", "recall", "precision", "hit_rate", "r-precision", "f1", "hits"}
KNOWN_METRICS = BINARY_METRICS | {"ndcg", "ndcg_burges", "dcg", "dcg_burges"}

_WORKBENCH_NAME = re.compile(r"([a-z][a-z_-]*)(@\d+)?")
_IR_MEASURES_NAME = re.compile(r"([A-Za-z][A-Za-z0-9_]*)(?:\(([^()]*)\))?(?:@(\d+))?")
#: ir_measures measures ranx computes with the same semantics: name -> (ranx name, parameters allowed)
#: (Bpref is not here: ranx's divides by min(R, N), 0 when a query has no judged non-relevant document,
#: where trec_eval's counts the retrieved relevant ones; every dev600 query is such a query)
_RANX_EQUIVALENTS = {"nDCG": ("ndcg", ()), "RR": ("mrr", ("rel",)), "AP": ("map", ("rel",)),
                     "P": ("precision", ("rel",)), "R": ("recall", ("rel",))}
#: ir_measures measures that take no cutoff
_NO_CUTOFF = {"Bpref"}
#: ir_measures measures that need a cutoff when ranx computes them
_CUTOFF_REQUIRED = {"P", "R", "Judged"}
_ALIASES = {"bpref": "Bpref"}  # trec_eval's spelling
#: a metric name ending in this is the judged-only (condensed-list) variant of the name before it
JUDGED_SUFFIX = ":judged"
_TRUE, _FALSE = ("True", "true", 1), ("False", "false", 0)
#: ir_measures providers tried in order (pytrec_eval is trec_eval itself)
_PROVIDER_ORDER = ("pytrec_eval", "judged")
#: leaderboard columns derived from a metric (``delta_ndcg@5``, ``mde_mrr@10``, ``wtl_nDCG@10``, ...)
_DERIVED_PREFIXES = ("delta_", "sig_", "p_", "d_", "mde_", "wtl_",
                     "urisk_", "trisk_", "georisk_")  # risk-sensitive measures (evaluation.risk)
NOTATION_HELP = ("a workbench name (mrr@10, ndcg@5, ndcg@10, map, recall@100, precision@30) or ir_measures "
                 "notation (nDCG@10, RR(rel=2)@10, AP, P@30, R@100, Judged@10, bpref), either followed by "
                 f"{JUDGED_SUFFIX} for its judged-only variant (ndcg@10{JUDGED_SUFFIX}, nDCG(judged_only=True)@10)")


@dataclass(frozen=True)
class Measure:
    """A metric name resolved: the column it is reported under and who computes it.

    ``engine`` is ``ranx`` (``ranx_name`` is ranx's name with the relevance level applied),
    ``judged`` (the workbench's Judged@k), ``condensed`` (``base`` over the run's condensed list:
    its judged documents only) or ``ir_measures`` (``ir_measures_name``, computed by its
    ``provider``)."""

    name: str
    engine: str
    ranx_name: str = ""
    cutoff: int | None = None
    ir_measures_name: str = ""
    provider: str = ""
    params: dict[str, Any] = field(default_factory=dict, compare=False)
    base: "Measure | None" = None


def is_workbench_name(name: str) -> bool:
    """Whether ``name`` is in the workbench's (ranx's) notation: ``mrr@10``, ``map``, ..."""
    found = _WORKBENCH_NAME.fullmatch(name)
    return bool(found) and found.group(1) in KNOWN_METRICS


def ranx_metric(metric: str, relevance_level: int) -> str:
    """ranx name of a workbench metric with the relevance level applied where the metric is binary."""
    base = metric.split("@")[0]
    if base not in KNOWN_METRICS:
        raise WorkbenchError(f"unknown metric {metric!r}; known: {', '.join(sorted(KNOWN_METRICS))}")
    return f"{metric}-l{relevance_level}" if base in BINARY_METRICS and relevance_level > 1 else metric


def _parse_notation(name: str) -> tuple[str, dict[str, Any], int | None]:
    found = _IR_MEASURES_NAME.fullmatch(name)
    if not found:
        raise WorkbenchError(f"metric {name!r} does not parse: expected {NOTATION_HELP}")
    base, text, cutoff = found.group(1), found.group(2), found.group(3)
    params: dict[str, Any] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, eq, value = part.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise WorkbenchError(f"metric {name!r} does not parse: parameters are key=value, as in RR(rel=2)@10")
        value = value.strip()
        params[key.strip()] = int(value) if re.fullmatch(r"-?\d+", value) else value
    return _ALIASES.get(base, base), params, int(cutoff) if cutoff is not None else None


def _format(base: str, params: dict[str, Any], cutoff: int | None) -> str:
    inner = ",".join(f"{key}={value}" for key, value in params.items())
    return base + (f"({inner})" if inner else "") + (f"@{cutoff}" if cutoff is not None else "")


def resolve_measure(name: str, relevance_level: int = 1) -> Measure:
    """The :class:`Measure` a metric name stands for on a dataset with this relevance level
    (which only workbench names read). One-line :class:`WorkbenchError` for a name that does not
    parse or that nothing installed computes."""
    name = str(name).strip()
    if not name:
        raise WorkbenchError(f"empty metric name: expected {NOTATION_HELP}")
    if name.endswith(JUDGED_SUFFIX):
        return _condensed(name, resolve_measure(name[:-len(JUDGED_SUFFIX)], relevance_level))
    if is_workbench_name(name):
        cutoff = name.partition("@")[2]
        return Measure(name, "ranx", ranx_name=ranx_metric(name, relevance_level),
                       cutoff=int(cutoff) if cutoff else None)
    base, params, cutoff = _parse_notation(name)
    judged_only = params.pop("judged_only", False)
    if judged_only not in (*_TRUE, *_FALSE):
        raise WorkbenchError(f"metric {name!r}: judged_only is True or False")
    if judged_only in _TRUE:  # ir_measures' spelling of the condensed list: the base without it, condensed
        condensed = _condensed(name, resolve_measure(_format(base, params, cutoff), relevance_level))
        return Measure(_format(base, {**params, "judged_only": True}, cutoff), condensed.engine,
                       cutoff=cutoff, params=params, base=condensed.base)
    canonical = _format(base, params, cutoff)
    if base in _CUTOFF_REQUIRED and cutoff is None:
        raise WorkbenchError(f"metric {name!r} needs a cutoff, as in {base}@10")
    if base in _NO_CUTOFF and cutoff is not None:
        raise WorkbenchError(f"metric {name!r}: {base} takes no cutoff (it reads the whole ranking)")
    if cutoff is not None and cutoff < 1:
        raise WorkbenchError(f"metric {name!r}: the cutoff must be at least 1")
    if "rel" in params and not (isinstance(params["rel"], int) and params["rel"] >= 1):
        raise WorkbenchError(f"metric {name!r}: rel must be a whole grade of at least 1, as in RR(rel=2)@10")
    if base == "Judged" and not params:
        return Measure(canonical, "judged", cutoff=cutoff, params=params)
    if base in _RANX_EQUIVALENTS and set(params) <= set(_RANX_EQUIVALENTS[base][1]) and \
            not (base == "AP" and cutoff is not None):  # ranx's map@k divides by min(k, R), trec_eval's by R
        ranx_base, _ = _RANX_EQUIVALENTS[base]
        rel = int(params.get("rel", 1))
        ranx_name = ranx_base + (f"@{cutoff}" if cutoff is not None else "") + (f"-l{rel}" if rel > 1 else "")
        return Measure(canonical, "ranx", ranx_name=ranx_name, cutoff=cutoff, params=params)
    return _ir_measures_measure(name, canonical, cutoff, params)


def _condensed(name: str, base: Measure) -> Measure:
    """The judged-only (condensed-list) variant of ``base``."""
    if base.engine == "condensed":
        raise WorkbenchError(f"metric {name!r}: already judged-only (write {JUDGED_SUFFIX} once)")
    if base.engine == "judged":
        raise WorkbenchError(f"metric {name!r}: {base.name} of a list of judged documents only is 1 by construction")
    return Measure(base.name + JUDGED_SUFFIX, "condensed", cutoff=base.cutoff, params=base.params, base=base)


def _ir_measures_measure(name: str, canonical: str, cutoff: int | None, params: dict[str, Any]) -> Measure:
    try:
        import ir_measures
    except ImportError:
        raise WorkbenchError(f"metric {name!r} is computed by ir_measures, which is not installed: "
                             "pip install 'workbench[ir-measures]' (ranx computes nDCG, RR, AP, P and R, "
                             "and the workbench Judged@k, without it)") from None
    try:
        parsed = ir_measures.parse_measure(canonical)
        getattr(parsed, "validate_params", lambda: None)()  # parameters the measure does not take
    except Exception as error:  # noqa: BLE001 - NameError, ValueError, AssertionError (unsupported params), ...
        raise WorkbenchError(f"metric {name!r} does not parse as ir_measures notation ({first_line(error)}); "
                             f"expected {NOTATION_HELP}") from None
    providers = {provider.NAME: provider for provider in ir_measures.DefaultPipeline.providers}
    order = [*_PROVIDER_ORDER, *(p for p in providers if p not in _PROVIDER_ORDER and p not in ("runtime", "ranx"))]
    for provider_name in order:
        provider = providers.get(provider_name)
        if provider is not None and provider.is_available() and provider.supports(parsed):
            return Measure(canonical, "ir_measures", cutoff=cutoff, ir_measures_name=str(parsed),
                           provider=provider_name, params=params)
    missing = [p for p, provider in providers.items() if not provider.is_available()]
    raise WorkbenchError(f"metric {name!r}: neither ranx nor an installed ir_measures provider computes it "
                         f"(not installed: {', '.join(missing) or 'none'})")


def split_metrics(text: str) -> list[str]:
    """Metric names as written on a command line (``--metrics``): separated by commas or
    whitespace, except inside parentheses (``nDCG(dcg=exp-log2,judged_only=True)@10`` is one)."""
    from .options import split_top_level

    return split_top_level(text, "(", ")")[0]


def check_metrics(metrics: list[str], relevance_level: int = 1) -> list[str]:
    """``metrics`` after resolving each (one-line error for the first bad one), before any work."""
    for metric in metrics:
        resolve_measure(metric, relevance_level)
    return list(metrics)


def is_metric_column(column: str) -> bool:
    """Whether a leaderboard column holds a metric (not ``precision``, the numeric-precision
    column, nor ``delta_*``/``sig_*``/``*_ci_low`` and friends)."""
    if column == "precision" or column.startswith(_DERIVED_PREFIXES):
        return False
    if column.endswith(JUDGED_SUFFIX):
        return is_metric_column(column[:-len(JUDGED_SUFFIX)])
    if is_workbench_name(column):
        return True
    found = _IR_MEASURES_NAME.fullmatch(column)
    if not found:
        return False
    base = _ALIASES.get(found.group(1), found.group(1))
    return base in _RANX_EQUIVALENTS or base in _NO_CUTOFF or base == "Judged" or bool(found.group(2) or found.group(3))

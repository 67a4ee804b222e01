"""Whether a dataset's query-type slices can be trusted.

The rules were written for MS MARCO questions. On another collection many topics may match no
rule and fall to the default label (``qa``): on CACM 35 of 64 topics did, so topical requests
("Parallel algorithms") were counted as Q&A. Where more than :data:`MAX_DEFAULT_SHARE` of a
dataset's topics get the default, its ``qa`` / ``exploratory`` slices say more about the rules
than about the queries, and the leaderboard and the report say so. Labels a dataset declares
itself (``query_types`` in its TOML file, covering every topic) are reliable by declaration.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pandas as pd

from .rules import DEFAULT_REASON

#: above this share of topics labelled by the default rule, a dataset's slices are unreliable
MAX_DEFAULT_SHARE = 0.25
#: the leaderboard columns :meth:`SliceReliability.columns` fills
SLICE_COLUMNS = ("slice_default_share", "slice_note")


def default_rule_qids(labels: pd.DataFrame) -> list[str]:
    """The qids of ``labels`` (``qid, label, reason``) whose label is the rules' default: no rule
    matched. Told by the reason, which the rules and the files they generate write verbatim."""
    fell = labels["reason"].astype(str).str.strip() == DEFAULT_REASON
    return [str(qid) for qid in labels.loc[fell, "qid"]]


@dataclass(frozen=True)
class SliceReliability:
    """How many of a dataset's topics fell to the default rule, and whether its slices are
    reliable: the share is at most ``threshold``, or the dataset declares its own labels."""

    n_topics: int
    n_default: int
    declared: bool = False
    threshold: float = MAX_DEFAULT_SHARE

    @property
    def share(self) -> float:
        """The share of topics labelled by the default rule (0 for no topics)."""
        return self.n_default / self.n_topics if self.n_topics else 0.0

    @property
    def reliable(self) -> bool:
        """Whether the dataset declares its own labels or at most ``threshold`` fell to the default."""
        return self.declared or self.share <= self.threshold

    def note(self) -> str:
        """One line for the leaderboard and the report; empty where the slices are reliable."""
        if self.reliable:
            return ""
        return (f"slices unreliable: {self.n_default} of {self.n_topics} topics ({self.share:.0%}) fell to the "
                f"query-type rules' default label (qa; more than {self.threshold:.0%}); declare the dataset's "
                "own labels (query_types in its TOML file) or pass --query-types")

    def columns(self) -> dict[str, object]:
        """The leaderboard columns of every row of the dataset (:data:`SLICE_COLUMNS`)."""
        return {"slice_default_share": round(self.share, 4), "slice_note": self.note()}


def _declares_all(labels: pd.DataFrame) -> bool:
    # load_query_types counts labels per source; declared labels vouch only for the topics they cover
    declared = int(labels.attrs.get("sources", {}).get("declared", 0))
    return len(labels) > 0 and declared >= len(labels)


def slice_reliability(labels: pd.DataFrame | Sequence[pd.DataFrame], declared: bool | None = None,
                      threshold: float = MAX_DEFAULT_SHARE) -> SliceReliability:
    """The slice reliability of a dataset's labels (``qid, label, reason``, one row per topic, as
    :func:`~.labels.load_query_types` returns them), or of several datasets' labels pooled.

    ``declared`` None: read from the labels' ``attrs["sources"]``: true when the dataset's declared
    label file labelled every topic (of every pooled dataset).
    """
    frames = [labels] if isinstance(labels, pd.DataFrame) else list(labels)
    if declared is None:
        declared = bool(frames) and all(_declares_all(frame) for frame in frames)
    return SliceReliability(n_topics=sum(len(frame) for frame in frames),
                            n_default=sum(len(default_rule_qids(frame)) for frame in frames),
                            declared=declared, threshold=threshold)


def slice_warnings(board: pd.DataFrame) -> dict[str, str]:
    """Dataset -> its ``slice_note``, for each dataset on a leaderboard whose rows say its slices
    are unreliable (in board order; boards written before the column have none)."""
    if "slice_note" not in board.columns or board.empty:
        return {}
    warnings: dict[str, str] = {}
    for dataset, note in zip(board["dataset"], board["slice_note"]):
        if isinstance(note, str) and note.strip() and dataset not in warnings:
            warnings[str(dataset)] = note.strip()
    return warnings

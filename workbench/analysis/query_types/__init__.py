"""Query types: ``qa`` (one short answer satisfies) vs ``exploratory`` (the user browses a
list). Transparent rules with reasons (:mod:`.rules`), separate from the label files that are
committed or supplied by a user (:mod:`.labels`), and whether a dataset's slices are reliable
(:mod:`.reliability`)."""
from .labels import (DEFAULT_LABELS_DIR, LABEL_COLUMNS, LABEL_FILE_SUFFIX, LabelScores, label_distribution,
                     labels_path, load_query_types, read_labels, score_labels, write_dataset_labels, write_labels)
from .reliability import (MAX_DEFAULT_SHARE, SLICE_COLUMNS, SliceReliability, default_rule_qids,
                          slice_reliability, slice_warnings)
from .rules import (DEFAULT_REASON, EXPLORATORY, LABELS, QA, RULES, SLICES, QueryType, Rule, classify,
                    classify_topics, normalise_query)

__all__ = ["DEFAULT_LABELS_DIR", "EXPLORATORY", "LABELS", "LABEL_COLUMNS", "LABEL_FILE_SUFFIX", "LabelScores", "QA",
           "QueryType", "RULES", "Rule", "SLICES", "classify", "classify_topics", "label_distribution", "labels_path",
           "load_query_types", "normalise_query", "read_labels", "score_labels", "write_dataset_labels",
           "write_labels",
           "DEFAULT_REASON", "MAX_DEFAULT_SHARE", "SLICE_COLUMNS", "SliceReliability", "default_rule_qids",
           "slice_reliability", "slice_warnings"]

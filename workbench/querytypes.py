"""Query types: label each query ``qa`` (one short answer satisfies it) or ``exploratory``.

* **qa** -- a fact, number or quantity, date, name, place, yes/no, a definition or a
  short description: "how long is life cycle of flea", "define visceral?",
  "who sings monk theme song".
* **exploratory** -- the user wants a list, an explanation, a comparison, a procedure,
  causes/symptoms/types, or an open topic to browse: "causes of left ventricular
  hypertrophy", "difference between rn and bsn", "how to find the midsegment of a
  trapezoid", "why did the us volunterilay enter ww1".

The classifier is a transparent, ordered list of regular-expression rules over the
lowercased query; the first rule that matches decides, and every label carries a short
reason naming that rule (``"starts with 'define' -> definition"``). Order matters and
encodes precedence: comparisons beat everything, "how many/long/much" beats the
"how ..." explanation rule, yes/no questions beat cue words such as "cause", and so on.

Labels for a dataset come from (highest priority first) a user-supplied label file, the
committed ``qrels/<dataset>.query-types.tsv`` and, for anything still missing, the rules.
Label files are TSV with a header ``qid<TAB>label<TAB>reason`` (a user file may omit the
reason column). How the rules were measured against hand labels is in
``docs/query-types.md``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from .atomic import atomic_write
from .errors import WorkbenchError

QA = "qa"
EXPLORATORY = "exploratory"
LABELS = (QA, EXPLORATORY)
SLICES = ("all", QA, EXPLORATORY)
LABEL_COLUMNS = ["qid", "label", "reason"]
LABEL_FILE_SUFFIX = ".query-types.tsv"
DEFAULT_LABELS_DIR = "qrels"
# Repository root, used to find the committed label files when the working directory is elsewhere.
_REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class QueryType:
    """The type of one query: ``label`` is ``qa`` or ``exploratory``; ``reason`` says which rule fired."""

    label: str
    reason: str


@dataclass(frozen=True)
class Rule:
    """One classification rule: if ``pattern`` matches the normalised query, assign ``label``.

    ``reason`` is a template; ``{m}`` is replaced by the matched text so that the reason
    shows the evidence (``"contains 'vs' -> comparison"``).
    """

    name: str
    label: str
    pattern: re.Pattern
    reason: str

    def explain(self, match: re.Match) -> str:
        return self.reason.format(m=" ".join(match.group(0).split()))


def _rule(name: str, label: str, pattern: str, reason: str) -> Rule:
    return Rule(name, label, re.compile(pattern), reason)


# Verbs and function words that end in "s" but are not plural nouns, for the
# "what <plural noun> ..." rule ("what does", "what is", "what causes" ...).
_NOT_PLURAL = (r"(?:is|was|has|does|goes|this|thus|his|its|hers|yours|ours|theirs|whats|"
               r"means|happens|says|gets|lies|plus|less|unless|across|"
               r"texas|kansas|arkansas|illinois|paris|memphis|athens|las|los|des|"
               # time units ask for a date or time, not a list
               r"years|days|dates|months|hours|times|weeks|minutes|seconds|decades|centuries)")
# A word that looks like a plural noun (not "ss", "us", "is" endings, not a known non-plural).
_PLURAL = rf"(?!{_NOT_PLURAL}\b)[\w-]{{2,}}[^siu\W']s"
_AUX = r"(?:is|are|was|were|am|do|does|did|can|could|will|would|should|has|have|had|may|might|must|shall)"

# Ordered: the first match wins. Exploratory cues that are unambiguous come first, then
# the question forms that fix the answer type (quantity, yes/no), then list/explanation
# cue words, then the factoid question words, then the default.
RULES: tuple[Rule, ...] = (
    # A comparison is exploratory whatever the question word ("what is wifi vs bluetooth").
    _rule("comparison", EXPLORATORY,
          r"\b(?:vs\.?|versus)(?=\s|$)|\bdifferences?\s+(?:between|among|in\s+\w+\s+and)\b"
          r"|\b(?:differ|differs|differentiate|distinguish)\b|\bcompar(?:e|ed|es|ing|ison|isons)\b"
          r"|\bsimilarit(?:y|ies)\b|\bhow similar\b|\bpros and cons\b|\b(?:better|worse) than\b"
          r"|\bor\b.*\b(?:better|worse)\b|\b(?:better|worse)\b.*\bor\b",
          "contains '{m}' -> comparison"),
    # Cloze questions from quizzes have one missing term.
    _rule("blank", QA, r"_{2,}", "fill-in-the-blank '{m}' -> one missing term"),
    # Quantities: "how many/much/long/old/often ..." ask for a number, even if they
    # continue with "... does it take to" or "... types of".
    _rule("quantity", QA,
          r"^(?:about |approximately )?how (?:many|much|long|old|far|big|tall|often|fast|deep|high|large|"
          r"heavy|hot|cold|warm|wide|soon|early|late|small|short|thick|strong|expensive|frequently|"
          r"close|bright|loud|quickly|accurate)\b",
          "starts with '{m}' -> number/quantity"),
    # "why is it called X" asks for the origin of a name, a short description.
    _rule("why-name", QA, r"^why\b.*\b(?:called|call|named|nicknamed|known as)\b",
          "'{m}' -> origin of a name"),
    _rule("why", EXPLORATORY,
          r"^(?:why|how come)\b|\bwhy (?:is|are|was|were|do|does|did|would|should|can|could|has|have|"
          r"will|don't|doesn't|didn't|isn't|aren't)\b|\breasons\b|\breason why\b|\bto what extent\b",
          "'{m}' -> explanation"),
    _rule("explain", EXPLORATORY,
          r"^(?:describe|explain|discuss|outline|summarize|summarise)\b|\bexplain\b|\boverview\b",
          "'{m}' -> explanation"),
    # Pronunciation, spelling and translation look like procedures but have a one-word answer.
    _rule("say-spell", QA,
          r"\bhow (?:do|to|would|can|should|does) (?:you |i |we |one )?(?:pronounce|spell|say|write|abbreviate)\b"
          r"|\bpronounc(?:e|ed|iation)\b|\bhow is .* (?:spelled|spelt)\b",
          "'{m}' -> pronunciation/spelling/translation"),
    _rule("procedure", EXPLORATORY,
          r"\bhow (?:to|do i|do you|do we|can i|can you|can we|should i|should you|would i|would you|"
          r"could i|could you|does one|can one|did you|did i)\b|\b(?:ways?|steps|tips|instructions|guide) "
          r"(?:to|for|on|in)\b|\bwhat (?:can|should|do|could|would) (?:i|you|we|one) do\b|^what to\b"
          r"|\btips\b|\brecipes?\b",
          "'{m}' -> procedure/advice"),
    # "how is the weather in X" is a short description, unlike "how is X made".
    _rule("weather", QA, r"^how (?:is|was|are) the (?:weather|climate)\b",
          "'{m}' -> short description"),
    _rule("how-explanation", EXPLORATORY,
          r"^how (?:does|do|did|is|are|was|were|can|could|would|will|has|have|should|might|may|"
          r"doe?s?n'?t)\b|^how (?:a|an|the)\b|^how\b.*\b(?:works?|forms?|formed|made|grown|developed|"
          r"happens?|occurs?)$",
          "'{m}' -> explanation of a process/mechanism"),
    # Yes/no questions: "does legionella pneumophila cause pneumonia" is qa although it
    # mentions a cause.
    _rule("yes-no", QA, rf"^{_AUX}(?=\s)", "starts with '{m}' -> yes/no"),
    _rule("consequence", EXPLORATORY,
          r"\bwhat (?:happens|happened|would happen|will happen|could happen|can happen|might happen|if)\b"
          r"|\bwhat does it mean (?:if|when|that)\b|\bwhat do(?:es)? (?:it|this|that) mean (?:if|when)\b"
          r"|\b(?:effects?|impacts?|influences?|consequences?|implications?) (?:of|on)\b"
          r"|\b(?:affect|affects|affected|impact|impacts) (?:the|your|a|an|my|our|their|on)\b"
          r"|\b(?:lead|led|result) (?:to|in)\s*\??$|\baccomplish(?:ed|ments?)?\b|\bachievements\b",
          "'{m}' -> consequences/effects"),
    _rule("definition", QA,
          r"^(?:define|definition|definitions|meaning|meanings|def)\b|\b(?:define|defined|definition|"
          r"meaning|meanings|synonyms?|antonyms?|stands? for|abbreviation|acronym|etymology|"
          r"translate|translation|in english|what is meant by)\b|\bwhat (?:does|do|did) .*\bmean\b"
          r"|\bmean(?:s)? in (?:english|spanish|french|german|italian|latin|hebrew|greek|japanese|chinese|"
          r"hawaiian|arabic|text|texting|slang)\b",
          "'{m}' -> definition"),
    # Cue words that ask for several items or facets: causes, symptoms, types ...
    _rule("facets", EXPLORATORY,
          r"\b(?:causes|symptoms|signs|types|kinds|sorts|categories|benefits|advantages|disadvantages|"
          r"side effects|effects|risks|risk factors|dangers|treatments|remedies|therapies|cures|examples|"
          r"applications|functions|features|characteristics|properties|qualities|factors|"
          r"ingredients|ideas|stages|phases|complications|methods|techniques|strategies|options|"
          r"alternatives|things|activities|requirements|responsibilities|duties|components|parts|"
          r"elements|foods|exercises|problems|issues|challenges|facts|list|lists|steps|places|spots|"
          r"attractions|ways)\b|\buses (?:of|for)\b|\buses$",
          "cue word '{m}' -> list of items"),
    _rule("cause", EXPLORATORY,
          r"\b(?:what|which) (?:can |could |might |may |would |will |usually |commonly )?"
          r"(?:cause|causes|triggers?)\b|\bcaused (?:by|from)\b|\bcause of (?:pain|swelling|death of)\b",
          "'{m}' -> causes"),
    _rule("composition", EXPLORATORY,
          r"\b(?:consists?|consisting) of\b|\bmade up of\b|\bcompos(?:ed|e) of\b|\bcomprised of\b"
          r"|\bmake up\b|\bincludes?\b|\binvolved in\b|^what(?:'s| is| goes) in\b",
          "'{m}' -> list of components"),
    # "what foods contain ...", "which federal judges did ...": a plural noun after the
    # question word asks for several items. After a modifier word the plural must be
    # followed by an auxiliary or preposition, else it is usually a verb after a singular
    # noun ("what company manufactures docetaxel").
    _rule("plural-what", EXPLORATORY,
          rf"^(?:what|which)\s+(?!{_AUX}\b){_PLURAL}\b"
          rf"|^(?:what|which)\s+(?!{_AUX}\b|the\b|a\b|an\b|kind\b|type\b|sort\b)[\w-]+\s+{_PLURAL}"
          rf"(?=\s+(?:{_AUX}|to|that|which|in|of|for|on|with|from)\b)",
          "'{m}' (plural) -> list of items"),
    _rule("open-topic", EXPLORATORY,
          r"\b(?:history|culture|daily life|lifestyle|way of life|importance|significance|evolution|"
          r"process|mechanism|pathophysiology|special about|facts about|all about)\b",
          "topic '{m}' -> open topic to browse"),
    # Attribute look-ups: a number, price, contact detail or measurement.
    _rule("attribute", QA,
          r"\b(?:cost|costs|price|prices|priced|salary|salaries|wages?|income|net worth|pay|paid|fees?|"
          r"population|calories|number|phone|fax|zip|zipcode|postal code|area code|address|weather|"
          r"temperature|temp|climate|distance|time zone|time difference|current time|rates?|percent|"
          r"percentage|dimensions|hours|odds|chances|capital|nickname|mileage|horsepower|"
          r"speed|value|worth|amount|average|median|age|height|weight|length|size|date|year)\b",
          "asks for '{m}' -> number/attribute"),
    # "what are the two species ...": a small fixed number of items is one short answer.
    _rule("fixed-count", QA, r"^(?:what|which|who) (?:are|were) the (?:two|three|four|five|[2-5])\b",
          "'{m}' -> a fixed small set, one short answer"),
    # "what are the social determinants of health": "what are the/some X" asks for a list.
    _rule("what-are-the", EXPLORATORY,
          r"^(?:what|which) are (?:the |some |all |common |main |different |typical |good |best |most |"
          r"major |key |important |possible |several |various )",
          "'{m}' -> list of items"),
    # Keyword queries headed by a plural noun ("names of tundras", "medications for
    # oppositional defiant disorder", "different hindu prayers") ask for a list.
    _rule("plural-topic", EXPLORATORY,
          rf"^different\b|^(?:other |common |generic |famous |popular )?(?!{_NOT_PLURAL}\b)"
          rf"[\w-]{{2,}}[^siu\W']s (?:of|for|that|which|in|to|good|used|near|with|like)\b",
          "'{m}' (plural head noun) -> list of items"),
    _rule("who", QA, r"^(?:who|whom|whose|who's|whos)\b|\bwho (?:is|was|are|were|invented|wrote|sings|"
          r"sang|played|plays|owns|founded|discovered|created|made|makes)\b", "'{m}' -> a person/name"),
    _rule("when", QA, r"^when\b|\b(?:what|which) (?:year|date|day|month|time|century|decade|age)\b"
          r"|\bwhen (?:is|was|did|does|do|will|were)\b", "'{m}' -> a date/time"),
    _rule("where", QA, r"^where\b|\bwhere (?:is|was|are|were|did|does|do)\b|\b(?:what|which) "
          r"(?:county|state|country|city|town|continent|region|province|district|zone|ocean)\b",
          "'{m}' -> a place"),
    _rule("which", QA, r"^which\b", "starts with 'which' -> pick one"),
    # Keyword queries led by an action ("treating tension headaches ...") ask how to do it.
    _rule("gerund-procedure", EXPLORATORY,
          r"^(?:treating|preventing|managing|curing|relieving|reducing|lowering|raising|increasing|"
          r"improving|getting rid of|caring for|dealing with|cleaning|removing|installing|growing|"
          r"repairing|fixing|losing|applying for|becoming|starting|planning|choosing|training)\b",
          "starts with '{m}' -> procedure"),
    # "largest onion producers", "most popular spectator sports": a superlative over a
    # plural noun asks for a ranking (a list), over a singular noun for one entity.
    _rule("superlative-list", EXPLORATORY,
          rf"^(?:the )?(?:most|largest|biggest|smallest|highest|best|top|worst|richest|oldest|"
          rf"famous|popular)\s+(?:[\w-]+\s+){{0,2}}?(?!{_NOT_PLURAL}\b)[\w-]{{2,}}[^siu\W']s"
          rf"(?=\s+(?:in|of|on|near|for|ever|to|that|from|at|by|with)\b|\s*$)",
          "'{m}' -> ranking/list"),
    _rule("superlative", QA,
          r"^(?:the )?(?:largest|biggest|smallest|highest|lowest|tallest|longest|shortest|oldest|newest|"
          r"first|last|most|least|fastest|slowest|richest|poorest|deepest|hottest|coldest|cheapest)\b",
          "superlative '{m}' -> a single entity"),
    _rule("what-type", QA, r"^(?:what|which) (?:kind|type|sort|brand|make|model|color|colour|form) of\b",
          "'{m}' (singular) -> one category"),
    _rule("what-is", QA, r"^(?:what(?:'s|s)?|wat) (?:is|was|are|were)\b|^what's\b",
          "'{m} X' -> definition/short description"),
    _rule("what", QA, r"^what\b", "'what' question -> a short fact"),
    # Quiz statements that stop where the answer goes ("independence day was first celebrated in").
    _rule("cloze", QA, r"\b(?:in|of|on|at|by|for|to|from|with|is|are|was|were|the|a|an|called|known as)"
          r"\s*[.?:]?$", "ends with '{m}' -> statement missing one term"),
    _rule("example", QA, r"\b(?:an? |one )?example of\b", "'{m}' (singular) -> one example"),
)

# No rule fired: a keyword query such as "cwh price target" or "vanguard wellesley
# income". MS MARCO queries are mostly look-ups, so the default is qa (see the docs).
DEFAULT = QueryType(QA, "no exploratory cue -> default qa (look-up)")


def normalise_query(query: str) -> str:
    """Lowercase, unify apostrophes and collapse whitespace; rules match on this form."""
    query = query.lower().replace("\u2019", "'").replace("`", "'")
    return " ".join(query.split())


def classify(query: str) -> QueryType:
    """Label one query ``qa`` or ``exploratory`` with the ordered rules; the reason names the rule."""
    text = normalise_query(query)
    for rule in RULES:
        match = rule.pattern.search(text)
        if match:
            return QueryType(rule.label, f"{rule.name}: {rule.explain(match)}")
    return QueryType(DEFAULT.label, f"default: {DEFAULT.reason}")


def classify_topics(topics: pd.DataFrame) -> pd.DataFrame:
    """Classify every topic of a ``qid, query`` DataFrame; returns ``qid, label, reason`` in input order."""
    missing = {"qid", "query"} - set(topics.columns)
    if missing:
        raise WorkbenchError(f"topics need columns qid and query (missing: {', '.join(sorted(missing))})")
    types = [classify(str(query)) for query in topics["query"]]
    return pd.DataFrame({
        "qid": pd.Series([str(qid) for qid in topics["qid"]], dtype=object),
        "label": pd.Series([t.label for t in types], dtype=object),
        "reason": pd.Series([t.reason for t in types], dtype=object),
    })


def _clean_field(value: object) -> str:
    # Tabs or newlines inside a reason would break the TSV; collapse them to spaces.
    return " ".join(str(value).split())


def write_labels(labels: pd.DataFrame, path: str | Path) -> Path:
    """Write ``qid, label, reason`` labels atomically as TSV with a header; returns the path.

    Labels are validated first (known label, unique non-empty qid), so a file written
    here always reads back with :func:`read_labels`.
    """
    path = Path(path)
    missing = set(LABEL_COLUMNS) - set(labels.columns)
    if missing:
        raise WorkbenchError(f"labels need columns {', '.join(LABEL_COLUMNS)} (missing: "
                             f"{', '.join(sorted(missing))})", path)
    if labels.empty:
        raise WorkbenchError("refusing to write an empty label file", path)
    seen: set[str] = set()
    rows = []
    for qid, label, reason in labels[LABEL_COLUMNS].itertuples(index=False):
        qid, label, reason = _clean_field(qid), _clean_field(label), _clean_field(reason)
        if not qid:
            raise WorkbenchError("refusing to write a label with an empty qid", path)
        if label not in LABELS:
            raise WorkbenchError(f"refusing to write unknown label {label!r} for qid {qid!r} "
                                 f"(expected {' or '.join(LABELS)})", path)
        if qid in seen:
            raise WorkbenchError(f"refusing to write duplicate qid {qid!r}", path)
        seen.add(qid)
        rows.append(f"{qid}\t{label}\t{reason or '-'}\n")
    with atomic_write(path) as handle:
        handle.write("\t".join(LABEL_COLUMNS) + "\n")
        handle.writelines(rows)
    return path


def read_labels(path: str | Path) -> pd.DataFrame:
    """Read a query-type label file strictly; returns ``qid, label, reason``.

    The first non-blank line must be the header ``qid<TAB>label<TAB>reason`` or
    ``qid<TAB>label`` (hand-made files may leave reasons out; they then read as
    ``"label file <name>"``). Every row must have the header's number of fields, a
    non-empty qid, a label ``qa`` or ``exploratory`` and a qid not seen before;
    otherwise a :class:`WorkbenchError` names the file and line. Blank lines are skipped
    and CRLF line ends are tolerated.
    """
    path = Path(path)
    if not path.is_file():
        raise WorkbenchError("query-type label file not found", path)
    qids, labels, reasons = [], [], []
    seen: dict[str, int] = {}
    columns: list[str] | None = None
    with open(path, encoding="utf-8", newline=None) as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = [field.strip() for field in line.split("\t")]
            if columns is None:
                if fields not in (LABEL_COLUMNS, LABEL_COLUMNS[:2]):
                    raise WorkbenchError(
                        "malformed label file header: expected 'qid<TAB>label<TAB>reason' "
                        f"(or 'qid<TAB>label'), got {line.strip()!r}", path, number)
                columns = fields
                continue
            if len(fields) != len(columns):
                raise WorkbenchError(
                    f"malformed label line: expected {len(columns)} tab-separated fields "
                    f"({', '.join(columns)}), got {len(fields)}", path, number)
            qid, label = fields[0], fields[1]
            if not qid:
                raise WorkbenchError("malformed label line: empty qid", path, number)
            if label not in LABELS:
                raise WorkbenchError(f"unknown label {label!r} for qid {qid!r} "
                                     f"(expected {' or '.join(LABELS)})", path, number)
            if qid in seen:
                raise WorkbenchError(f"duplicate qid {qid!r} (first on line {seen[qid]})", path, number)
            seen[qid] = number
            reason = fields[2] if len(columns) == 3 else ""
            qids.append(qid)
            labels.append(label)
            reasons.append(reason or f"label file {path.name}")
    if columns is None:
        raise WorkbenchError("query-type label file is empty", path)
    if not qids:
        raise WorkbenchError("query-type label file has a header but no labels", path)
    return pd.DataFrame({"qid": pd.Series(qids, dtype=object), "label": pd.Series(labels, dtype=object),
                         "reason": pd.Series(reasons, dtype=object)})


def labels_path(dataset_name: str, labels_dir: str | Path = DEFAULT_LABELS_DIR) -> Path:
    """Path of the committed label file of a dataset: ``<labels_dir>/<dataset>.query-types.tsv``.

    A relative ``labels_dir`` that does not exist under the working directory is looked
    up under the repository root, so the committed files are found from anywhere.
    """
    directory = Path(labels_dir)
    if not directory.is_absolute() and not directory.is_dir() and (_REPO_ROOT / directory).is_dir():
        directory = _REPO_ROOT / directory
    return directory / f"{dataset_name}{LABEL_FILE_SUFFIX}"


def _dataset(dataset, data_dir=None):
    if isinstance(dataset, str):
        from .datasets import get_dataset  # local import: datasets is only needed for names
        return get_dataset(dataset, data_dir)
    return dataset


def load_query_types(dataset, override_path: str | Path | None = None,
                     labels_dir: str | Path = DEFAULT_LABELS_DIR, data_dir: str | Path | None = None
                     ) -> pd.DataFrame:
    """Query-type labels (``qid, label, reason``) for every topic of ``dataset``, in topic order.

    ``dataset`` is a :class:`~workbench.datasets.Dataset` or a dataset name (resolved
    with ``data_dir``). Sources, highest priority first:

    1. ``override_path``, a user label file: its labels win for the qids it covers
       (qids of other datasets are ignored, but a file sharing no qid with the dataset
       is an error -- it is almost certainly the wrong file);
    2. the committed ``<labels_dir>/<dataset>.query-types.tsv`` if present;
    3. the rules (:func:`classify`) for any topic still unlabelled.

    Since the committed files are generated by the rules, 2 and 3 agree unless someone
    edited the committed file by hand. ``df.attrs["sources"]`` counts labels per source.
    """
    dataset = _dataset(dataset, data_dir)
    topics = dataset.topics
    result = classify_topics(topics).set_index("qid")
    sources = pd.Series("rules", index=result.index, dtype=object)
    committed = labels_path(dataset.name, labels_dir)
    layers = [(committed, "committed")] if committed.is_file() else []
    if override_path is not None:
        layers.append((Path(override_path), "override"))
    for path, source in layers:
        labels = read_labels(path).set_index("qid")
        covered = labels.index.intersection(result.index)
        if source == "override" and covered.empty:
            raise WorkbenchError(f"label file shares no qid with the {len(topics)} topics of "
                                 f"dataset {dataset.name!r}; wrong file?", path)
        result.loc[covered, ["label", "reason"]] = labels.loc[covered, ["label", "reason"]].to_numpy()
        sources.loc[covered] = source
    out = result.reset_index()[LABEL_COLUMNS]
    out.attrs["sources"] = {name: int(count) for name, count in sources.value_counts().items()}
    return out


def label_distribution(labels: pd.DataFrame) -> dict[str, int]:
    """Number of queries per label (both labels always present)."""
    counts = labels["label"].value_counts()
    return {label: int(counts.get(label, 0)) for label in LABELS}


@dataclass(frozen=True)
class LabelScores:
    """Agreement of predicted labels with gold labels."""

    n: int
    accuracy: float
    precision: dict[str, float]
    recall: dict[str, float]
    confusion: pd.DataFrame  # rows: gold label, columns: predicted label


def score_labels(gold: Sequence[str], predicted: Sequence[str]) -> LabelScores:
    """Accuracy, per-class precision/recall and the confusion matrix of ``predicted`` vs ``gold``."""
    gold, predicted = list(gold), list(predicted)
    if len(gold) != len(predicted) or not gold:
        raise WorkbenchError(f"cannot score {len(predicted)} predictions against {len(gold)} gold labels")
    confusion = pd.DataFrame(0, index=pd.Index(LABELS, name="gold"), columns=pd.Index(LABELS, name="predicted"))
    for g, p in zip(gold, predicted):
        confusion.loc[g, p] += 1
    precision, recall = {}, {}
    for label in LABELS:
        hit = confusion.loc[label, label]
        col, row = confusion[label].sum(), confusion.loc[label].sum()
        precision[label] = float(hit / col) if col else 0.0
        recall[label] = float(hit / row) if row else 0.0
    accuracy = float(sum(confusion.loc[label, label] for label in LABELS) / len(gold))
    return LabelScores(len(gold), accuracy, precision, recall, confusion)


def write_dataset_labels(dataset_names: Iterable[str], data_dir: str | Path | None = None,
                         labels_dir: str | Path = DEFAULT_LABELS_DIR) -> list[Path]:
    """Label all topics of each dataset with the rules and write ``<labels_dir>/<name>.query-types.tsv``.

    These are the committed label files; regenerate them after changing the rules.
    """
    from .datasets import get_dataset

    paths = []
    for name in dataset_names:
        dataset = get_dataset(name, data_dir)
        path = Path(labels_dir) / f"{name}{LABEL_FILE_SUFFIX}"
        paths.append(write_labels(classify_topics(dataset.topics), path))
    return paths


def main_query_types(args) -> int:
    """CLI entry (``workbench query-types``): write the label files and print the distribution.

    Reads from ``args`` (all optional): ``datasets`` (names; default all),
    ``data_dir``, ``labels_dir`` (default ``qrels``) and ``override`` (a label file:
    only print the resulting distribution, write nothing). Returns the exit code.
    """
    from .datasets import DATASETS, get_dataset

    names = list(getattr(args, "datasets", None) or DATASETS)
    data_dir = getattr(args, "data_dir", None)
    labels_dir = getattr(args, "labels_dir", None) or DEFAULT_LABELS_DIR
    override = getattr(args, "override", None)
    if override is None:
        for path in write_dataset_labels(names, data_dir, labels_dir):
            print(f"wrote {path}")
    for name in names:
        dataset = get_dataset(name, data_dir)
        labels = load_query_types(dataset, override, labels_dir)
        judged = labels[labels["qid"].isin(set(dataset.qrels["qid"]))]
        counts, judged_counts = label_distribution(labels), label_distribution(judged)
        print(f"{name}: {len(labels)} topics: " + ", ".join(f"{k} {v}" for k, v in counts.items())
              + f"; judged {len(judged)}: " + ", ".join(f"{k} {v}" for k, v in judged_counts.items()))
    return 0

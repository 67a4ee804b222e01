"""Query-type rules: label each query ``qa`` (one short answer satisfies it) or ``exploratory``.

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
How the rules were measured against hand labels is in ``docs/query-types.md``; label files
(committed, or a user's) are :mod:`.labels`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from ...core.errors import WorkbenchError

QA = "qa"
EXPLORATORY = "exploratory"
LABELS = (QA, EXPLORATORY)
#: the slices of a sliced evaluation, in display order
SLICES = ("all", QA, EXPLORATORY)


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
#: the reason of a query no rule matched, exactly as classify() writes it (and the committed
#: files hold it): how slice reliability counts the topics that fell to the default
DEFAULT_REASON = f"default: {DEFAULT.reason}"


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
    return QueryType(DEFAULT.label, DEFAULT_REASON)


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

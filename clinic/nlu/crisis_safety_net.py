"""Rasa NLU component: the crisis safety net behind the classifier.

Runs last in the pipeline. When the patterns of
``clinic.safety.crisis_patterns`` find crisis language, or when the classifier
ranked ``crisis`` near the top but fell back for low confidence, the message's
intent becomes ``crisis``: recall comes before precision.

Most messages contain none of the words a pattern needs, and spaCy's matcher
costs about 0.25 ms a message to find that out (each of its regular expressions
tried on each token). ``MatcherPrecheck`` tells those messages apart first, in
about a fifth of that, from the matcher's own patterns: a pattern can match
only when every token it requires (not optional) is in the message, and those
tokens are written as lists of words (``^(?:kill|kil|...)$`` on the lower-cased
token), so a message lacking one of them for every pattern has no match and
``CrisisDetector.find`` would return None (it reports only the matcher's
matches: a rule found another way would have to be checked here too). Anything
the check cannot read as a list of words counts as present, so it only ever
skips a search that finds nothing (tests/test_nlu_equivalence.py compares it with the detector on all the
project's texts).
"""

from typing import Any, Dict, FrozenSet, List, Optional, Text, Tuple

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import SPACY_DOCS
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from clinic.safety.crisis_patterns import PATTERNS, CrisisDetector

CRISIS = "crisis"
FALLBACK = "nlu_fallback"


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class CrisisSafetyNet(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        # A fallback whose runner-up is `crisis` at this confidence or more
        # becomes `crisis`.
        return {"fallback_crisis_threshold": 0.2}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self._threshold = float(config.get("fallback_crisis_threshold", 0.2))
        self._detector: Optional[CrisisDetector] = None
        self._precheck: Optional[MatcherPrecheck] = None

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "CrisisSafetyNet":
        return cls(config)

    def _detector_for(self, doc: Any) -> CrisisDetector:
        if self._detector is None or self._detector.vocab is not doc.vocab:
            self._detector = CrisisDetector(doc.vocab)
            self._precheck = MatcherPrecheck(self._detector.matcher, PATTERNS)
        return self._detector

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            reason = self._crisis_reason(message)
            if reason:
                _set_crisis(message, reason)
        return messages

    def _crisis_reason(self, message: Message) -> Optional[Text]:
        doc = message.get(SPACY_DOCS[TEXT])
        if doc is not None:
            detector = self._detector_for(doc)
            match = detector.find(doc) if self._precheck.may_match(doc) else None
            if match:
                return f"pattern:{match.rule}"
        intent = message.get(INTENT) or {}
        if intent.get("name") == FALLBACK:
            for ranked in message.get(INTENT_RANKING_KEY) or []:
                if ranked.get("name") == CRISIS and ranked.get("confidence", 0) >= self._threshold:
                    return "classifier:low_confidence"
        return None


def _set_crisis(message: Message, reason: Text) -> None:
    ranking = [r for r in (message.get(INTENT_RANKING_KEY) or []) if r.get("name") != CRISIS]
    crisis = {"name": CRISIS, "confidence": 1.0}
    message.set(INTENT, crisis, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [crisis] + ranking, add_to_output=True)
    message.set("crisis_safety_net", reason, add_to_output=True)


_REGEX_META = frozenset(".^$*+?{}[]\\|()")
Requirement = FrozenSet[Text]  # the words one required token may be


def _words(spec: Dict[Text, Any]) -> Optional[Requirement]:
    """The words a required token of a matcher pattern may be, if the spec says so plainly:
    ``{"LOWER": {"REGEX": "^(?:a|b)$"}}`` (or ``^(?:(a|b))$``), nothing else in it."""
    if set(spec) != {"LOWER"} or not isinstance(spec["LOWER"], dict) or set(spec["LOWER"]) != {"REGEX"}:
        return None
    regex = spec["LOWER"]["REGEX"]
    if not (isinstance(regex, str) and regex.startswith("^(?:") and regex.endswith(")$")):
        return None
    body = regex[4:-2]
    if body.startswith("(") and body.endswith(")") and body.count("(") == 1 and body.count(")") == 1:
        body = body[1:-1]
    words = body.split("|")
    if any(not w or _REGEX_META.intersection(w) for w in words):
        return None
    return frozenset(words)


class MatcherPrecheck:
    """Whether a spaCy ``Matcher`` may find anything in a doc, from the words its patterns require."""

    def __init__(self, matcher: Any, rules: Any) -> None:
        patterns: List[Tuple[Requirement, ...]] = []
        for rule in rules:
            for pattern in matcher.get(rule)[1]:
                required = [_words(spec) for spec in pattern if "OP" not in spec]
                # a required token the check cannot read may be any word: no requirement
                known = [words for words in required if words is not None]
                # the rarer words first (longer: "kill" before "my"), to rule a pattern out early
                patterns.append(tuple(sorted(known, key=lambda ws: (min(map(len, ws)), -len(ws)), reverse=True)))
        self.patterns = patterns

    def may_match(self, doc: Any) -> bool:
        words = {token.lower_ for token in doc}
        if any(word.endswith("\n") for word in words):  # `$` also matches before a final newline
            return True
        return any(all(not required.isdisjoint(words) for required in pattern) for pattern in self.patterns)

"""The safety layer's decision for one message: crisis, urgent_medical or none.

Two detectors, the patterns (``clinic.safety.crisis_patterns``: explicit wording, slang, the
clinic's products as means) and the classifier (``clinic.safety.classifier``: meaning), and
thresholds set on the validation bank (config.yml, docs/SAFETY.md):

- a pattern's first-person statement (``STATEMENT``), or the classifier's crisis probability
  at ``takeover`` or more: crisis, with the full crisis reply (a pattern's mere mention of
  suicide or overdose is left to the classifier: it marks the message for the footer);
- else an urgent-medical probability at ``urgent`` or more: urgent_medical;
- else a crisis probability at ``check_in`` or more: crisis, with a check-in (the question is
  answered and the assistant asks whether the visitor is safe): recall comes first, and where
  the classifier is unsure a check-in is better than silence;
- else none; with a one-line 988 footer when the message is about overdose, death or safety
  (a pattern's mention, or a crisis probability at ``footer``),
  and marked ``distress`` when the visitor is struggling without risk, and ``settled`` only
  when both the crisis and the distress probabilities are under ``settled`` and nothing was
  mentioned (in safety mode, the sign that the visitor has moved on).

The classifier judges words: a message with fewer than ``MIN_LETTERS`` letters (a number typed as
an answer, punctuation, emoji alone) is left to the patterns ("kms" is one), since a model of
meaning says nothing reliable about "2" or "😀😀😀".

A long message is also scored sentence by sentence, and its riskiest sentence counts against
thresholds of its own (``takeover_sentence``, ``check_in_sentence``): a sentence out of its
message says less than the whole (measured on the validation bank, one sentence at the whole's
thresholds doubled the takeovers of hard negatives).
"""

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from clinic.safety.bank import CRISIS, NONE, URGENT_MEDICAL
from clinic.safety.classifier import SafetyModel
from clinic.safety.crisis_patterns import MENTION, CrisisDetector, CrisisMatch
from clinic.safety.verdict import (
    CHECK_IN,
    INGESTION_CATEGORIES,
    NOW_CATEGORIES,
    PERSON_DANGER_CATEGORIES,
    TAKEOVER,
    SafetyVerdict,
)

MIN_LETTERS = 3

# The category a pattern's rule stands for (its words say which).
RULE_CATEGORIES = {
    "kill_self": "active_ideation",
    "want_to_die": "passive_death_wish",
    "suicidal_now": "active_ideation",
    "self_harm": "self_harm",
    "overdose": "overdose_taken",
    "lethal_amount": "lethal_amount_question",
    "danger_now": "danger_from_another",
    "suicide_mention": "active_ideation",
    "overdose_mention": "overdose_taken",
}


@dataclass(frozen=True)
class Thresholds:
    takeover: float = 0.6
    takeover_sentence: float = 0.9
    check_in: float = 0.1
    check_in_sentence: float = 0.4
    urgent: float = 0.4
    footer: float = 0.05
    distress: float = 0.5
    settled: float = 0.05


class SafetyLayer:
    def __init__(self, model: Optional[SafetyModel], detector: Optional[CrisisDetector], thresholds: Thresholds) -> None:
        self.model = model
        self.detector = detector
        self.thresholds = thresholds

    def judge(self, text: str, doc: Any = None, embedding: Optional[np.ndarray] = None,
              parts: Sequence[Tuple[str, Optional[np.ndarray]]] = (), intent: Optional[str] = None) -> SafetyVerdict:
        t = self.thresholds
        match: Optional[CrisisMatch] = None
        mentioned = False
        if self.detector is not None and doc is not None:
            match = self.detector.find(doc)
            mentioned = match is not None or self.detector.mentions(doc)  # a match found is one mentioned
            if match is not None and match.kind == MENTION:
                match = None
        judged = self.model is not None and sum(c.isalpha() for c in text) >= MIN_LETTERS
        scores = self.model.score(text, embedding) if judged else None
        part = self.model.score_parts(parts) if judged and parts else None
        verdict = SafetyVerdict(intent=intent, scores=scores.as_dict() if scores else {}, settled=False)
        if part is not None:
            verdict.scores["sentence_" + CRISIS] = round(part.crisis, 4)
            verdict.scores["sentence_" + URGENT_MEDICAL] = round(part.urgent_medical, 4)
        if match is not None:
            category = RULE_CATEGORIES.get(match.rule)
            if scores is not None and scores.crisis >= t.check_in and scores.crisis_category:
                category = scores.crisis_category  # the classifier's finer reading of the same risk
            return self._crisis(verdict, TAKEOVER, category, f"pattern:{match.rule}", match)
        if scores is None:
            verdict.footer = mentioned
            verdict.settled = not mentioned
            return verdict
        if scores.crisis >= t.takeover:
            return self._crisis(verdict, TAKEOVER, scores.crisis_category, "classifier")
        if part is not None and part.crisis >= t.takeover_sentence:
            return self._crisis(verdict, TAKEOVER, part.crisis_category, "classifier:sentence")
        urgent = max((s for s in (scores, part) if s is not None), key=lambda s: s.urgent_medical)
        if urgent.urgent_medical >= t.urgent:
            verdict.outcome = URGENT_MEDICAL
            verdict.category = urgent.urgent_category
            verdict.ingestion = urgent.urgent_category in INGESTION_CATEGORIES
            verdict.source = "classifier" if urgent is scores else "classifier:sentence"
            return verdict
        if scores.crisis >= t.check_in:
            return self._crisis(verdict, CHECK_IN, scores.crisis_category, "classifier")
        if part is not None and part.crisis >= t.check_in_sentence:
            return self._crisis(verdict, CHECK_IN, part.crisis_category, "classifier:sentence")
        verdict.outcome = NONE
        verdict.footer = mentioned or scores.crisis >= t.footer
        verdict.distress = scores.distress >= t.distress
        verdict.settled = not verdict.footer and max(scores.crisis, scores.distress) < t.settled
        return verdict

    @staticmethod
    def _crisis(verdict: SafetyVerdict, response: str, category: Optional[str], source: str,
                match: Optional[CrisisMatch] = None) -> SafetyVerdict:
        verdict.outcome = CRISIS
        verdict.response = response
        verdict.category = category
        verdict.source = source
        verdict.now = response == TAKEOVER and (
            category in NOW_CATEGORIES or (match is not None and match.rule == "danger_now")
        )
        verdict.danger_from_person = category in PERSON_DANGER_CATEGORIES or (
            match is not None and match.rule == "danger_now"
        )
        return verdict

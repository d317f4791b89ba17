"""The safety classifier: how likely a message is a crisis, an urgent symptom, or neither.

One linear model (``clinic.nlu.linear_model``: word and character n-grams and the sentence
embedding, calibrated) over fine labels: each crisis and urgent-medical category of the banks
(``crisis:passive_death_wish``, ``urgent_medical:chest_pain``...), each kind of hard negative
(``none:death_idioms``, ``none:grief_and_loss``, ``none:contrast_farewell``...) and each of
the assistant's other intents and FAQ topics (``none:goodbye``, ``none:faq/pricing``...).
Categories and kinds are learned apart, because a farewell and an overdose share few words, and
a grief message shares many with a crisis: measured on the validation banks, one label per kind
of hard negative instead of a single ``none`` halved the false alarms at the same recall, and
one per intent kept ordinary messages ("goodbye", "end this") from being read as farewells
(check-ins on 1-2% of the NLU validation set instead of 15%). An outcome's probability is the sum
of its labels'; ``distress`` is that of the kinds of someone struggling without risk
(frustration, low mood, grief). Every label weighs alike (``class_weight: balanced``).

Pure: no Rasa types. ``clinic.nlu.safety_layer`` trains and runs it inside Rasa.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from clinic.nlu.linear_model import LinearModel
from clinic.safety.bank import CRISIS, DISTRESS_KINDS, URGENT_MEDICAL, Example

DISTRESS = "distress"


def label_of(example: Example) -> str:
    """The fine label an example trains: ``<outcome>:<category or kind>``, or the outcome alone."""
    return f"{example.outcome}:{example.group}" if example.group else example.outcome


@dataclass(frozen=True)
class Scores:
    crisis: float
    urgent_medical: float
    distress: float
    crisis_category: Optional[str]
    urgent_category: Optional[str]

    def as_dict(self) -> Dict[str, float]:
        return {CRISIS: round(self.crisis, 4), URGENT_MEDICAL: round(self.urgent_medical, 4),
                DISTRESS: round(self.distress, 4)}


class SafetyModel:
    """The trained linear model, read by outcome."""

    def __init__(self, linear: LinearModel) -> None:
        self.linear = linear
        names = linear.class_names
        self._crisis = [i for i, n in enumerate(names) if n == CRISIS or n.startswith(CRISIS + ":")]
        self._urgent = [i for i, n in enumerate(names) if n == URGENT_MEDICAL or n.startswith(URGENT_MEDICAL + ":")]
        self._distress = [i for i, n in enumerate(names) if n.split(":", 1)[-1] in DISTRESS_KINDS]
        self._names = names

    def probabilities(self, text: str, embedding: Optional[np.ndarray]) -> np.ndarray:
        return self.linear.confidences(self.linear.scores(text, embedding))

    def _category(self, p: np.ndarray, indices: List[int]) -> Optional[str]:
        if not indices:
            return None
        best = indices[int(np.argmax(p[indices]))]
        name = self._names[best]
        return name.split(":", 1)[1] if ":" in name else None

    def score(self, text: str, embedding: Optional[np.ndarray]) -> Scores:
        p = self.probabilities(text, embedding)
        return Scores(
            crisis=float(p[self._crisis].sum()),
            urgent_medical=float(p[self._urgent].sum()),
            distress=float(p[self._distress].sum()),
            crisis_category=self._category(p, self._crisis),
            urgent_category=self._category(p, self._urgent),
        )

    def score_parts(self, parts: Sequence[Tuple[str, Optional[np.ndarray]]]) -> Optional[Scores]:
        """The riskiest sentence of a long message (a risk said once must not be averaged away);
        None for a message read whole."""
        best: Optional[Scores] = None
        for text, embedding in parts:
            scores = self.score(text, embedding)
            if best is None or max(scores.crisis, scores.urgent_medical) > max(best.crisis, best.urgent_medical):
                best = scores
        return best

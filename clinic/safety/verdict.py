"""What the safety layer found in one message, as the parse carries it (``parse["safety"]``).

The safety layer (``clinic.safety.layer``, run inside the Rasa server's NLU) writes it; the
custom actions read it (``verdict_of(tracker.latest_message)``). Plain data, no model: the
action server imports this module without TensorFlow or spaCy.

- ``outcome``: ``crisis``, ``urgent_medical`` or ``none`` (the parse's intent is the outcome
  when it is not ``none``);
- ``response``: for a crisis, ``takeover`` (the crisis reply) or ``check_in`` (the layer is
  unsure: the message's question is answered, and the assistant asks whether the visitor
  is safe);
- ``category``: the closest category of the banks (``passive_death_wish``, ``chest_pain``...);
- ``now``: it is happening now (an overdose taken, means at hand, danger from someone): 911
  comes first; ``danger_from_person``: the National Domestic Violence Hotline is added;
  ``ingestion``: something swallowed (Poison Control first);
- ``footer``: no risk, but the message is about overdose, death or safety: its answer gets a
  one-line 988 footer;
- ``distress``: no risk, but the visitor is struggling (hopelessness, frustration, grief);
- ``settled``: no sign of risk or struggle at all (crisis and distress probabilities both under
  the layer's ``settled`` threshold, no mention of overdose, death or safety): in the safety
  mode after a crisis reply or a check-in, only a settled message moves on to an FAQ answer;
- ``intent``: what the intent classifier made of the message before the safety layer;
- ``source``: what decided (``pattern:<rule>``, ``classifier``, ``classifier:sentence``);
- ``scores``: the classifier's probabilities per outcome.
"""

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional

TAKEOVER = "takeover"
CHECK_IN = "check_in"

# Categories in which the risk is happening now: 911 first.
NOW_CATEGORIES = frozenset({
    "overdose_taken", "means_at_hand", "danger_from_another", "someone_else_at_risk_now",
})
PERSON_DANGER_CATEGORIES = frozenset({"danger_from_another"})
INGESTION_CATEGORIES = frozenset({"child_or_pet_ingestion", "accidental_extra_dose"})


@dataclass
class SafetyVerdict:
    outcome: str = "none"
    response: Optional[str] = None
    category: Optional[str] = None
    now: bool = False
    danger_from_person: bool = False
    ingestion: bool = False
    footer: bool = False
    distress: bool = False
    settled: bool = True
    intent: Optional[str] = None
    source: Optional[str] = None
    scores: Dict[str, float] = field(default_factory=dict)

    @property
    def check_in(self) -> bool:
        return self.outcome == "crisis" and self.response == CHECK_IN

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


OUTCOMES = frozenset({"crisis", "urgent_medical", "none"})


def _valid(name: str, value: Any) -> bool:
    """Whether a field read from a parse has the type the verdict gives it."""
    if name == "outcome":
        return value in OUTCOMES
    if name == "scores":
        return isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in value.items())
    if isinstance(SafetyVerdict.__dataclass_fields__[name].default, bool):
        return isinstance(value, bool)
    return value is None or isinstance(value, str)


def verdict_of(parse: Optional[Dict[str, Any]]) -> SafetyVerdict:
    """The verdict in a parse (a ``latest_message``); an empty one when it has none.

    A field of the wrong type (a parse edited by hand, an older or newer server) takes its default
    and the others are kept: a crisis with a malformed ``now`` is still a crisis.
    """
    data = parse.get("safety") if isinstance(parse, dict) else None
    if not isinstance(data, dict):
        return SafetyVerdict()
    fields = SafetyVerdict.__dataclass_fields__
    return SafetyVerdict(**{k: v for k, v in data.items() if k in fields and _valid(k, v)})

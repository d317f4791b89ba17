"""The pre-screen's questions, screening scores and eligibility rules.

Pure functions of plain data: the answers are a mapping of question name to
value (see ``QUESTIONS`` and the value domains below), the clinic's rules come
from ``settings/eligibility.yml`` through ``Rules.from_dict``, and ``assess``
returns the outcome with the reasons behind it. Nothing here talks to Rasa,
reads files or logs anything.

Value domains of the answers:

- ``age``: int
- ``state``: two-letter code (``clinic.rules.us_states.STATE_NAMES``) of the state the
  visitor will be in for video visits and sessions
- ``concern``: "depression" | "anxiety" | "ptsd" | "other"
- ``treatments_tried``: "medication" | "therapy" | "both" | "none"
- ``phq2_interest``, ``phq2_mood``, ``gad2_nervous``, ``gad2_worry``: int 0..3
- ``suicidal_thoughts`` (in the past month), ``suicide_plan`` (a plan or an
  intention to act on them) and ``suicide_attempt`` (in the past year):
  "yes" | "no" | "unsure"; the last two are asked only after a "yes" or
  "unsure" to the first
- ``pregnant_or_breastfeeding``, ``psychosis_history``, ``cardiovascular``,
  ``medications`` (takes one of the listed medicines), ``medical_conditions``
  (has one of the listed conditions) and ``support_person`` (a sober adult
  nearby during at-home sessions): "yes" | "no" | "unsure"
- ``substance_use`` (problems with alcohol or drugs in the past year, or
  ketamine or another dissociative ever used outside medical care):
  "current" | "past" | "no" | "unsure"

A missing answer (absent, or ``None`` as an unset Rasa slot is) is simply not
answered yet; keys that are not questions are ignored. A value outside its
domain raises ``ValueError``: answers are parsed before they get here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Tuple

from clinic.rules.us_states import STATE_NAMES

# --- Questions ------------------------------------------------------------

QUESTIONS: Tuple[str, ...] = (
    "age",
    "state",
    "concern",
    "treatments_tried",
    "phq2_interest",
    "phq2_mood",
    "gad2_nervous",
    "gad2_worry",
    "suicidal_thoughts",
    "suicide_plan",
    "suicide_attempt",
    "pregnant_or_breastfeeding",
    "psychosis_history",
    "cardiovascular",
    "medications",
    "medical_conditions",
    "substance_use",
    "support_person",
)

# Asked only when the answer to suicidal_thoughts is "yes" or "unsure".
SUICIDE_FOLLOW_UPS: Tuple[str, ...] = ("suicide_plan", "suicide_attempt")
SUICIDE_QUESTIONS: Tuple[str, ...] = ("suicidal_thoughts",) + SUICIDE_FOLLOW_UPS

# The health questions whose "unsure" a clinician weighs ("unsure_answer").
SAFETY_QUESTIONS: Tuple[str, ...] = (
    "pregnant_or_breastfeeding",
    "psychosis_history",
    "cardiovascular",
    "medications",
    "medical_conditions",
    "substance_use",
)

CONCERNS: Tuple[str, ...] = ("depression", "anxiety", "ptsd", "other")
TREATMENTS: Tuple[str, ...] = ("medication", "therapy", "both", "none")
YES_NO_UNSURE: Tuple[str, ...] = ("yes", "no", "unsure")
SUBSTANCE_USE: Tuple[str, ...] = ("current", "past", "no", "unsure")
SCREEN_ITEMS: Tuple[str, ...] = ("phq2_interest", "phq2_mood", "gad2_nervous", "gad2_worry")
# Every question whose answer is one of a few words, and those words.
CHOICES: Dict[str, Tuple[str, ...]] = {
    "concern": CONCERNS,
    "treatments_tried": TREATMENTS,
    "substance_use": SUBSTANCE_USE,
    **{name: YES_NO_UNSURE for name in SUICIDE_QUESTIONS + SAFETY_QUESTIONS + ("support_person",)
       if name != "substance_use"},
}

# --- PHQ-2 (Kroenke, Spitzer & Williams 2003) and GAD-2 (Kroenke et al. 2007)

# The published stems: the PHQ's reads "any of the following problems", the GAD's "the following problems".
PHQ2_STEM = "Over the last 2 weeks, how often have you been bothered by any of the following problems?"
GAD2_STEM = "Over the last 2 weeks, how often have you been bothered by the following problems?"
PHQ2_INTEREST = "Little interest or pleasure in doing things"
PHQ2_MOOD = "Feeling down, depressed, or hopeless"
GAD2_NERVOUS = "Feeling nervous, anxious, or on edge"
GAD2_WORRY = "Not being able to stop or control worrying"
PHQ2_ITEMS: Tuple[str, str] = (PHQ2_INTEREST, PHQ2_MOOD)
GAD2_ITEMS: Tuple[str, str] = (GAD2_NERVOUS, GAD2_WORRY)
# Question name -> published item wording.
ITEM_WORDING: Dict[str, str] = {
    "phq2_interest": PHQ2_INTEREST,
    "phq2_mood": PHQ2_MOOD,
    "gad2_nervous": GAD2_NERVOUS,
    "gad2_worry": GAD2_WORRY,
}
FREQUENCY_OPTIONS: Tuple[Tuple[str, int], ...] = (
    ("Not at all", 0),
    ("Several days", 1),
    ("More than half the days", 2),
    ("Nearly every day", 3),
)
CUTOFF = 3


def _item(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3:
        raise ValueError(f"{name}: expected an int 0..3")  # never the value: it is health data
    return value


def phq2_score(interest: int, mood: int) -> int:
    """PHQ-2 total, 0..6: the sum of the two items (each 0..3)."""
    return _item(interest, "phq2_interest") + _item(mood, "phq2_mood")


def gad2_score(nervous: int, worry: int) -> int:
    """GAD-2 total, 0..6: the sum of the two items (each 0..3)."""
    return _item(nervous, "gad2_nervous") + _item(worry, "gad2_worry")


def is_positive(score: int) -> bool:
    """A PHQ-2 or GAD-2 total of 3 or more is a positive screen."""
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 6:
        raise ValueError("expected a score 0..6")
    return score >= CUTOFF


# --- Reasons and outcomes -------------------------------------------------

# Fixed reasons: not configurable, each decides its own outcome.
SUICIDE_RISK = "suicide_risk"  # a plan or intention to act, or an attempt in the past year ("unsure" too)
UNDER_MIN_AGE = "under_min_age"
STATE_NOT_SERVED = "state_not_served"
SUICIDAL_THOUGHTS = "suicidal_thoughts"  # thoughts of ending one's life ("unsure" too), no plan or attempt
FIXED_REASONS: Tuple[str, ...] = (SUICIDE_RISK, UNDER_MIN_AGE, STATE_NOT_SERVED, SUICIDAL_THOUGHTS)

# Reasons the clinic places under `exclude` or `review` in eligibility.yml.
CONFIGURABLE_REASONS: Tuple[str, ...] = (
    "pregnant_or_breastfeeding",
    "psychosis_history",
    "cardiovascular",
    "medications",
    "medical_conditions",
    "substance_use_current",
    "substance_use_past",
    "no_support_person",
    "no_prior_treatment",
    "screens_below_cutoff",
    "unsure_answer",
)

CRISIS = "crisis"
NOT_ELIGIBLE = "not_eligible"
OUT_OF_AREA = "out_of_area"
CLINICIAN_REVIEW = "clinician_review"
ELIGIBLE = "eligible"
OUTCOMES: Tuple[str, ...] = (CRISIS, NOT_ELIGIBLE, OUT_OF_AREA, CLINICIAN_REVIEW, ELIGIBLE)
# Outcomes after which nothing more is asked.
FINAL_OUTCOMES: FrozenSet[str] = frozenset({CRISIS, NOT_ELIGIBLE, OUT_OF_AREA})

# Health questions whose "yes" is a reason of the same name.
_YES_REASONS: Tuple[str, ...] = (
    "pregnant_or_breastfeeding",
    "psychosis_history",
    "cardiovascular",
    "medications",
    "medical_conditions",
)
# "Yes" or "not sure": to these questions, the same thing for safety.
_NOT_A_CLEAR_NO: Tuple[str, ...] = ("yes", "unsure")


@dataclass(frozen=True)
class Rules:
    """The clinic's rules, as read from settings/eligibility.yml."""

    min_age: int
    states_served: FrozenSet[str]
    exclude: FrozenSet[str]
    review: FrozenSet[str]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Rules:
        """Validated rules from the YAML mapping; ValueError says what is wrong.

        ``exclude`` and ``review`` must be present (an empty list is fine): a
        key dropped by mistake must not silently let everyone through. Other
        top-level keys are ignored (other code reads the same file).
        """
        if not isinstance(d, Mapping):
            raise ValueError("eligibility rules: expected a mapping")
        for key in ("min_age", "states_served", "exclude", "review"):
            if key not in d:
                raise ValueError(f"eligibility rules: missing '{key}'")

        min_age = d["min_age"]
        if isinstance(min_age, bool) or not isinstance(min_age, int) or not 0 < min_age <= 120:
            raise ValueError(f"eligibility rules: min_age must be a whole number of years (1..120), got {min_age!r}")

        states = _string_list(d["states_served"], "states_served")
        bad = [s for s in states if s.upper() not in STATE_NAMES]
        if bad:
            raise ValueError(
                f"eligibility rules: states_served has unknown state code(s) {', '.join(map(repr, bad))}; "
                "use two-letter codes such as CA or TX"
            )

        lists = {}
        for key in ("exclude", "review"):
            names = _string_list(d[key], key)
            fixed = [n for n in names if n in FIXED_REASONS]
            if fixed:
                raise ValueError(
                    f"eligibility rules: {key} lists {', '.join(map(repr, fixed))}, a fixed rule that cannot be moved"
                )
            unknown = [n for n in names if n not in CONFIGURABLE_REASONS]
            if unknown:
                raise ValueError(
                    f"eligibility rules: {key} has unknown reason(s) {', '.join(map(repr, unknown))}; "
                    f"known reasons: {', '.join(CONFIGURABLE_REASONS)}"
                )
            lists[key] = frozenset(names)
        both = sorted(lists["exclude"] & lists["review"])
        if both:
            raise ValueError(f"eligibility rules: {', '.join(map(repr, both))} listed under both exclude and review")

        return cls(
            min_age=min_age,
            states_served=frozenset(s.upper() for s in states),
            exclude=lists["exclude"],
            review=lists["review"],
        )


def _string_list(value: Any, key: str) -> List[str]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"eligibility rules: {key} must be a list of names, got {value!r}")
    return list(value)


def load_rules(data: Mapping[str, Any]) -> Rules:
    """Alias of ``Rules.from_dict``."""
    return Rules.from_dict(data)


@dataclass(frozen=True)
class Assessment:
    """An outcome (one of ``OUTCOMES``) and every reason found, most serious first."""

    outcome: str
    reasons: Tuple[str, ...]

    @property
    def urgent(self) -> bool:
        """A crisis, or thoughts of ending one's life: a person or a clinician should reach them first."""
        return self.outcome == CRISIS or SUICIDAL_THOUGHTS in self.reasons


def is_valid_answer(name: str, value: Any) -> bool:
    """True when ``value`` is an answer to question ``name`` in its domain."""
    if name not in QUESTIONS or value is None:
        return False
    if name == "state" and (not isinstance(value, str) or value != value.upper()):
        return False  # "ok", "hi", "in" typed in lower case are words, not codes
    try:
        _answer({name: value}, name)
    except ValueError:
        return False
    return True


def _answer(answers: Mapping[str, Any], name: str) -> Optional[Any]:
    """The validated answer to one question, or None when not answered."""
    value = answers.get(name)
    if value is None:
        return None
    if name == "age":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("age: expected an int")
        return value
    if name == "state":
        if not isinstance(value, str) or value.upper() not in STATE_NAMES:
            raise ValueError("state: expected a two-letter state code")
        return value.upper()
    if name in SCREEN_ITEMS:
        return _item(value, name)
    domain = CHOICES[name]
    if value not in domain:
        raise ValueError(f"{name}: expected one of {', '.join(domain)}")
    return value


def reasons_found(answers: Mapping[str, Any], rules: Rules) -> Tuple[str, ...]:
    """Every reason in the answers given so far, before any is weighed.

    For the three suicide questions only a clear "no" is no: "unsure" counts as
    "yes". Thoughts of ending one's life are "suicidal_thoughts"; a plan or
    intention to act on them, or an attempt in the past year, is
    "suicide_risk" as well. ``support_person`` "unsure" counts as
    "no_support_person": a sober adult nearby is a condition of at-home
    sessions, so one not yet arranged is the same question for the clinician
    as none. "unsure" to any other health question is "unsure_answer".
    """
    a = {name: _answer(answers, name) for name in QUESTIONS}
    found = set()
    if a["suicidal_thoughts"] in _NOT_A_CLEAR_NO:
        found.add(SUICIDAL_THOUGHTS)
    if any(a[name] in _NOT_A_CLEAR_NO for name in SUICIDE_FOLLOW_UPS):
        found.add(SUICIDE_RISK)
    if a["age"] is not None and a["age"] < rules.min_age:
        found.add(UNDER_MIN_AGE)
    if a["state"] is not None and a["state"] not in rules.states_served:
        found.add(STATE_NOT_SERVED)
    for name in _YES_REASONS:
        if a[name] == "yes":
            found.add(name)
    if a["substance_use"] == "current":
        found.add("substance_use_current")
    if a["substance_use"] == "past":
        found.add("substance_use_past")
    if any(a[name] == "unsure" for name in SAFETY_QUESTIONS):
        found.add("unsure_answer")
    if a["support_person"] in ("no", "unsure"):
        found.add("no_support_person")
    if a["treatments_tried"] == "none":
        found.add("no_prior_treatment")
    if a["concern"] in ("depression", "anxiety") and all(a[n] is not None for n in SCREEN_ITEMS):
        phq = phq2_score(a["phq2_interest"], a["phq2_mood"])
        gad = gad2_score(a["gad2_nervous"], a["gad2_worry"])
        if not is_positive(phq) and not is_positive(gad):
            found.add("screens_below_cutoff")
    order = FIXED_REASONS + CONFIGURABLE_REASONS
    return tuple(r for r in order if r in found)


def assess(answers: Mapping[str, Any], rules: Rules) -> Assessment:
    """The outcome of the answers given so far, and the reasons for it.

    Precedence: crisis ("suicide_risk") > not_eligible for age > out_of_area >
    clinician_review for thoughts of ending one's life (urgent: never a dead
    end, whatever else is found) > not_eligible for an ``exclude`` reason >
    clinician_review (any ``review`` reason) > eligible. The reasons list
    every reason found that the rules act on: the fixed ones, then exclude
    reasons, then review reasons; a reason the clinic lists under neither is
    dropped. Whether a configurable reason excludes or needs review comes only
    from ``rules``.
    """
    found = reasons_found(answers, rules)
    counted = [r for r in found if r in FIXED_REASONS]
    counted += [r for r in found if r in rules.exclude]
    counted += [r for r in found if r in rules.review]
    reasons = tuple(counted)
    if SUICIDE_RISK in reasons:
        outcome = CRISIS
    elif UNDER_MIN_AGE in reasons:
        outcome = NOT_ELIGIBLE
    elif STATE_NOT_SERVED in reasons:
        outcome = OUT_OF_AREA
    elif SUICIDAL_THOUGHTS in reasons:
        outcome = CLINICIAN_REVIEW
    elif any(r in rules.exclude for r in reasons):
        outcome = NOT_ELIGIBLE
    elif any(r in rules.review for r in reasons):
        outcome = CLINICIAN_REVIEW
    else:
        outcome = ELIGIBLE
    return Assessment(outcome=outcome, reasons=reasons)


def remaining_questions(answers: Mapping[str, Any], rules: Rules) -> List[str]:
    """The questions still to ask, in asking order.

    None once the outcome is settled whatever comes next (crisis, age under
    the minimum, a state not served, or an ``exclude`` reason without thoughts
    of ending one's life); otherwise the unanswered questions, the two
    follow-ups of ``suicidal_thoughts`` only after a "yes" or "unsure" to it.
    """
    if assess(answers, rules).outcome in FINAL_OUTCOMES:
        return []
    follow_up = _answer(answers, "suicidal_thoughts") in _NOT_A_CLEAR_NO
    return [
        name for name in QUESTIONS
        if answers.get(name) is None and (follow_up or name not in SUICIDE_FOLLOW_UPS)
    ]


def progress(answers: Mapping[str, Any], rules: Rules) -> Tuple[int, int]:
    """(number of the next question, questions in all) as far as the answers so far tell.

    The questions this visitor has answered and those still to ask: the total
    grows by two when thoughts of ending one's life bring their follow-ups,
    and no question that will be skipped is counted. (0, answered) once
    nothing remains to ask.
    """
    answered = sum(1 for name in QUESTIONS if _answer(answers, name) is not None)
    remaining = len(remaining_questions(answers, rules))
    if not remaining:
        return 0, answered
    return answered + 1, answered + remaining

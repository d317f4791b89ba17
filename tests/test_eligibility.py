"""The pre-screen rules: outcomes, reasons, precedence, skipping, PHQ-2/GAD-2 scoring."""

import pytest

from clinic import eligibility, settings
from clinic.eligibility import (
    CUTOFF,
    FREQUENCY_OPTIONS,
    QUESTIONS,
    Assessment,
    Rules,
    assess,
    gad2_score,
    is_positive,
    load_rules,
    phq2_score,
    remaining_questions,
)

RULES_DICT = {
    "min_age": 18,
    "states_served": ["CA", "CO", "FL", "NY", "TX", "WA"],
    "exclude": ["pregnant_or_breastfeeding", "psychosis_history", "cardiovascular"],
    "review": ["substance_misuse", "no_support_person", "no_prior_treatment", "screens_below_cutoff", "unsure_answer"],
}
RULES = Rules.from_dict(RULES_DICT)

# Every question answered, nothing found: eligible.
CLEAR = {
    "age": 34,
    "state": "TX",
    "concern": "depression",
    "treatments_tried": "both",
    "phq2_interest": 2,
    "phq2_mood": 2,
    "gad2_nervous": 1,
    "gad2_worry": 0,
    "suicidal_thoughts": "no",
    "pregnant_or_breastfeeding": "no",
    "psychosis_history": "no",
    "cardiovascular": "no",
    "substance_misuse": "no",
    "support_person": "yes",
}


def with_(**changes):
    return {**CLEAR, **changes}


def rules(**changes):
    return Rules.from_dict({**RULES_DICT, **changes})


# --- The real settings file -------------------------------------------------


def test_the_real_settings_file_loads_into_rules():
    data = settings.load_yaml(settings.ROOT / "settings" / "eligibility.yml")
    assert Rules.from_dict(data) == RULES


# --- Questions and published wording -------------------------------------------


def test_questions_in_asking_order():
    assert QUESTIONS == (
        "age", "state", "concern", "treatments_tried", "phq2_interest", "phq2_mood",
        "gad2_nervous", "gad2_worry", "suicidal_thoughts", "pregnant_or_breastfeeding",
        "psychosis_history", "cardiovascular", "substance_misuse", "support_person",
    )


def test_published_wording():
    assert eligibility.PHQ2_STEM == "Over the last 2 weeks, how often have you been bothered by the following problems?"
    assert eligibility.GAD2_STEM == eligibility.PHQ2_STEM
    assert eligibility.PHQ2_ITEMS == ("Little interest or pleasure in doing things", "Feeling down, depressed, or hopeless")
    assert eligibility.GAD2_ITEMS == ("Feeling nervous, anxious, or on edge", "Not being able to stop or control worrying")
    assert eligibility.ITEM_WORDING["phq2_interest"] == "Little interest or pleasure in doing things"
    assert eligibility.ITEM_WORDING["gad2_worry"] == "Not being able to stop or control worrying"
    assert FREQUENCY_OPTIONS == (
        ("Not at all", 0), ("Several days", 1), ("More than half the days", 2), ("Nearly every day", 3),
    )
    assert CUTOFF == 3


# --- PHQ-2 / GAD-2 scoring --------------------------------------------------


@pytest.mark.parametrize("a", range(4))
@pytest.mark.parametrize("b", range(4))
def test_scores_are_the_sum_of_the_two_items(a, b):
    assert phq2_score(a, b) == a + b
    assert gad2_score(a, b) == a + b


@pytest.mark.parametrize("score, positive", [(0, False), (1, False), (2, False), (3, True), (4, True), (5, True), (6, True)])
def test_positive_iff_three_or_more(score, positive):
    assert is_positive(score) is positive


@pytest.mark.parametrize("a, b, positive", [(1, 1, False), (2, 0, False), (0, 2, False), (1, 2, True), (3, 0, True), (0, 3, True)])
def test_boundary_two_versus_three(a, b, positive):
    assert is_positive(phq2_score(a, b)) is positive
    assert is_positive(gad2_score(a, b)) is positive


@pytest.mark.parametrize("bad", [-1, 4, 1.0, "2", None, True])
def test_items_outside_0_to_3_are_refused(bad):
    with pytest.raises(ValueError):
        phq2_score(bad, 0)
    with pytest.raises(ValueError):
        gad2_score(0, bad)


@pytest.mark.parametrize("bad", [-1, 7, "3", None])
def test_scores_outside_0_to_6_are_refused(bad):
    with pytest.raises(ValueError):
        is_positive(bad)


# --- Outcomes, one branch at a time -----------------------------------------------


def test_everything_clear_is_eligible():
    assert assess(CLEAR, RULES) == Assessment("eligible", ())


def test_suicidal_thoughts_is_crisis():
    assert assess(with_(suicidal_thoughts="yes"), RULES) == Assessment("crisis", ("suicidal_thoughts",))


@pytest.mark.parametrize("age, outcome", [(17, "not_eligible"), (18, "eligible"), (0, "not_eligible"), (120, "eligible")])
def test_minimum_age_boundary(age, outcome):
    result = assess(with_(age=age), RULES)
    assert result.outcome == outcome
    assert result.reasons == (("under_min_age",) if outcome == "not_eligible" else ())


@pytest.mark.parametrize("state, outcome", [("OH", "out_of_area"), ("PR", "out_of_area"), ("WA", "eligible"), ("co", "eligible")])
def test_state_served(state, outcome):
    result = assess(with_(state=state), RULES)
    assert result.outcome == outcome
    assert result.reasons == (("state_not_served",) if outcome == "out_of_area" else ())


@pytest.mark.parametrize("question", ["pregnant_or_breastfeeding", "psychosis_history", "cardiovascular"])
def test_yes_to_an_excluding_question_is_not_eligible(question):
    assert assess(with_(**{question: "yes"}), RULES) == Assessment("not_eligible", (question,))


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"substance_misuse": "yes"}, "substance_misuse"),
        ({"support_person": "no"}, "no_support_person"),
        ({"support_person": "unsure"}, "no_support_person"),
        ({"treatments_tried": "none"}, "no_prior_treatment"),
        ({"suicidal_thoughts": "unsure"}, "unsure_answer"),
        ({"pregnant_or_breastfeeding": "unsure"}, "unsure_answer"),
        ({"psychosis_history": "unsure"}, "unsure_answer"),
        ({"cardiovascular": "unsure"}, "unsure_answer"),
        ({"substance_misuse": "unsure"}, "unsure_answer"),
        ({"phq2_interest": 1, "phq2_mood": 1, "gad2_nervous": 1, "gad2_worry": 1}, "screens_below_cutoff"),
        ({"concern": "anxiety", "phq2_interest": 0, "phq2_mood": 0, "gad2_nervous": 2, "gad2_worry": 0}, "screens_below_cutoff"),
    ],
)
def test_each_review_reason(changes, reason):
    assert assess(with_(**changes), RULES) == Assessment("clinician_review", (reason,))


@pytest.mark.parametrize("treatments", ["medication", "therapy", "both"])
def test_any_prior_treatment_is_no_reason(treatments):
    assert assess(with_(treatments_tried=treatments), RULES).outcome == "eligible"


@pytest.mark.parametrize("concern", ["ptsd", "other"])
def test_low_screens_do_not_matter_when_the_concern_is_ptsd_or_other(concern):
    low = with_(concern=concern, phq2_interest=0, phq2_mood=0, gad2_nervous=0, gad2_worry=0)
    assert assess(low, RULES) == Assessment("eligible", ())


@pytest.mark.parametrize(
    "phq, gad, reason",
    [((1, 1), (1, 1), True), ((2, 1), (0, 0), False), ((0, 0), (1, 2), False), ((3, 3), (3, 3), False), ((0, 2), (2, 0), True)],
)
def test_below_cutoff_only_when_both_screens_are_under_three(phq, gad, reason):
    answers = with_(phq2_interest=phq[0], phq2_mood=phq[1], gad2_nervous=gad[0], gad2_worry=gad[1])
    assert ("screens_below_cutoff" in assess(answers, RULES).reasons) is reason


def test_screens_are_not_judged_before_all_four_items_are_answered():
    answers = {k: v for k, v in with_(phq2_interest=0, phq2_mood=0, gad2_nervous=0).items() if k != "gad2_worry"}
    assert assess(answers, RULES) == Assessment("eligible", ())


def test_every_reason_found_is_listed_most_serious_first():
    everything = with_(
        age=16, state="OH", treatments_tried="none", phq2_interest=0, phq2_mood=0, gad2_nervous=0, gad2_worry=0,
        suicidal_thoughts="yes", pregnant_or_breastfeeding="yes", psychosis_history="yes", cardiovascular="unsure",
        substance_misuse="yes", support_person="no",
    )
    assert assess(everything, RULES) == Assessment(
        "crisis",
        (
            "suicidal_thoughts", "under_min_age", "state_not_served",
            "pregnant_or_breastfeeding", "psychosis_history",
            "substance_misuse", "no_support_person", "no_prior_treatment", "screens_below_cutoff", "unsure_answer",
        ),
    )


# --- Precedence -----------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, outcome",
    [
        ({"suicidal_thoughts": "yes", "age": 15, "state": "OH", "cardiovascular": "yes", "substance_misuse": "yes"}, "crisis"),
        ({"age": 15, "state": "OH", "cardiovascular": "yes", "substance_misuse": "yes"}, "not_eligible"),
        ({"state": "OH", "cardiovascular": "yes", "substance_misuse": "yes"}, "out_of_area"),
        ({"cardiovascular": "yes", "substance_misuse": "yes"}, "not_eligible"),
        ({"substance_misuse": "yes"}, "clinician_review"),
        ({}, "eligible"),
    ],
)
def test_precedence(changes, outcome):
    assert assess(with_(**changes), RULES).outcome == outcome


def test_under_age_wins_over_out_of_area():
    assert assess(with_(age=17, state="OH"), RULES) == Assessment("not_eligible", ("under_min_age", "state_not_served"))


def test_out_of_area_wins_over_an_exclude_reason():
    result = assess(with_(state="OH", psychosis_history="yes"), RULES)
    assert result == Assessment("out_of_area", ("state_not_served", "psychosis_history"))


# --- The rules decide, not the code ---------------------------------------------------


def test_moving_a_reason_from_review_to_exclude_changes_the_outcome():
    answers = with_(substance_misuse="yes")
    assert assess(answers, RULES).outcome == "clinician_review"
    stricter = rules(
        exclude=RULES_DICT["exclude"] + ["substance_misuse"],
        review=[r for r in RULES_DICT["review"] if r != "substance_misuse"],
    )
    assert assess(answers, stricter) == Assessment("not_eligible", ("substance_misuse",))
    assert remaining_questions({k: v for k, v in answers.items() if k != "support_person"}, stricter) == []


def test_moving_a_reason_from_exclude_to_review_changes_the_outcome():
    answers = with_(pregnant_or_breastfeeding="yes")
    softer = rules(exclude=["psychosis_history", "cardiovascular"], review=RULES_DICT["review"] + ["pregnant_or_breastfeeding"])
    assert assess(answers, softer) == Assessment("clinician_review", ("pregnant_or_breastfeeding",))


def test_a_reason_under_neither_list_lets_the_answer_pass():
    lenient = rules(review=[r for r in RULES_DICT["review"] if r != "no_prior_treatment"])
    assert assess(with_(treatments_tried="none"), lenient) == Assessment("eligible", ())


def test_min_age_and_states_come_from_the_rules():
    other = rules(min_age=21, states_served=["OH"])
    assert assess(with_(age=20, state="OH"), other) == Assessment("not_eligible", ("under_min_age",))
    assert assess(with_(age=21, state="TX"), other) == Assessment("out_of_area", ("state_not_served",))


# --- Answers outside their domain ---------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"age": "25"}, {"age": 25.0}, {"age": True}, {"state": "XX"}, {"state": "Texas"}, {"concern": "stress"},
        {"treatments_tried": "meds"}, {"phq2_mood": 4}, {"gad2_worry": "1"}, {"suicidal_thoughts": "maybe"},
        {"support_person": True},
    ],
)
def test_answers_outside_their_domain_are_refused(changes):
    with pytest.raises(ValueError):
        assess(with_(**changes), RULES)


def test_none_is_unanswered_and_other_keys_are_ignored():
    assert assess({"age": None, "state": None, "email": "x@example.com", "requested_slot": "age"}, RULES) == Assessment("eligible", ())


# --- remaining_questions ------------------------------------------------------------


def test_nothing_answered_asks_everything_in_order():
    assert remaining_questions({}, RULES) == list(QUESTIONS)


def test_unanswered_questions_remain_in_order():
    answers = {"age": 30, "state": "CA", "phq2_interest": 1, "substance_misuse": None}
    assert remaining_questions(answers, RULES) == [q for q in QUESTIONS if q not in ("age", "state", "phq2_interest")]


def test_all_answered_leaves_nothing():
    assert remaining_questions(CLEAR, RULES) == []


@pytest.mark.parametrize(
    "answers",
    [
        {"age": 17},
        {"age": 30, "state": "OH"},
        {"age": 30, "state": "TX", "suicidal_thoughts": "yes"},
        {"age": 30, "state": "TX", "concern": "anxiety", "pregnant_or_breastfeeding": "yes"},
        {"age": 30, "state": "TX", "psychosis_history": "yes"},
        {"age": 30, "state": "TX", "cardiovascular": "yes"},
    ],
)
def test_nothing_more_once_the_outcome_is_decided(answers):
    assert remaining_questions(answers, RULES) == []


@pytest.mark.parametrize(
    "answers",
    [
        {"age": 30, "state": "TX", "substance_misuse": "yes"},
        {"age": 30, "state": "TX", "treatments_tried": "none"},
        {"age": 30, "state": "TX", "cardiovascular": "unsure"},
    ],
)
def test_a_review_reason_keeps_the_questions_coming(answers):
    assert remaining_questions(answers, RULES) == [q for q in QUESTIONS if q not in answers]


# --- Rules.from_dict validation -----------------------------------------------------------


def test_rules_from_dict():
    assert RULES == Rules(
        min_age=18,
        states_served=frozenset({"CA", "CO", "FL", "NY", "TX", "WA"}),
        exclude=frozenset({"pregnant_or_breastfeeding", "psychosis_history", "cardiovascular"}),
        review=frozenset({"substance_misuse", "no_support_person", "no_prior_treatment", "screens_below_cutoff", "unsure_answer"}),
    )
    assert load_rules(RULES_DICT) == RULES


def test_lowercase_state_codes_and_empty_lists_are_accepted():
    r = rules(states_served=["tx"], exclude=[], review=None)
    assert (r.states_served, r.exclude, r.review) == (frozenset({"TX"}), frozenset(), frozenset())


def test_other_keys_in_the_file_are_ignored():
    assert rules(faq_note="anything") == RULES


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"min_age": "18"}, "min_age"),
        ({"min_age": 18.5}, "min_age"),
        ({"min_age": True}, "min_age"),
        ({"min_age": 0}, "min_age"),
        ({"states_served": ["TX", "XX"]}, "'XX'"),
        ({"states_served": ["Texas"]}, "'Texas'"),
        ({"states_served": "TX"}, "states_served"),
        ({"exclude": ["pregnant"]}, "unknown reason(s) 'pregnant'"),
        ({"review": ["no_support_person", "no_suport_person"]}, "'no_suport_person'"),
        ({"review": ["under_min_age"]}, "fixed rule"),
        ({"exclude": ["suicidal_thoughts"]}, "fixed rule"),
        ({"exclude": ["cardiovascular"], "review": ["cardiovascular"]}, "both exclude and review"),
        ({"exclude": [1]}, "exclude must be a list"),
    ],
)
def test_bad_rules_are_refused_with_a_clear_message(changes, message):
    with pytest.raises(ValueError) as info:
        rules(**changes)
    assert message in str(info.value)


@pytest.mark.parametrize("key", ["min_age", "states_served", "exclude", "review"])
def test_a_missing_key_is_refused(key):
    with pytest.raises(ValueError, match=f"missing '{key}'"):
        Rules.from_dict({k: v for k, v in RULES_DICT.items() if k != key})


def test_rules_must_be_a_mapping():
    with pytest.raises(ValueError):
        Rules.from_dict(["min_age", 18])

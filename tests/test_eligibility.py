"""The pre-screen rules: outcomes, reasons, precedence, skipping, progress, PHQ-2/GAD-2 scoring."""

import pytest

from clinic.rules import eligibility
from clinic import settings
from clinic.rules.eligibility import (
    CUTOFF,
    FREQUENCY_OPTIONS,
    QUESTIONS,
    Assessment,
    Rules,
    assess,
    gad2_score,
    is_positive,
    is_valid_answer,
    load_rules,
    phq2_score,
    progress,
    remaining_questions,
)

RULES_DICT = {
    "min_age": 18,
    "states_served": ["CA", "CO", "FL", "NY", "TX", "WA"],
    "exclude": ["pregnant_or_breastfeeding", "psychosis_history", "substance_use_current"],
    "review": [
        "cardiovascular", "medications", "medical_conditions", "substance_use_past", "no_support_person",
        "no_prior_treatment", "screens_below_cutoff", "unsure_answer",
    ],
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
    "medications": "no",
    "medical_conditions": "no",
    "substance_use": "no",
    "support_person": "yes",
}
# Thoughts of ending one's life, no plan or intention, no attempt: passive thoughts.
PASSIVE = {"suicidal_thoughts": "yes", "suicide_plan": "no", "suicide_attempt": "no"}


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
        "gad2_nervous", "gad2_worry", "suicidal_thoughts", "suicide_plan", "suicide_attempt",
        "pregnant_or_breastfeeding", "psychosis_history", "cardiovascular", "medications", "medical_conditions",
        "substance_use", "support_person",
    )
    assert eligibility.SUICIDE_FOLLOW_UPS == ("suicide_plan", "suicide_attempt")
    assert eligibility.SAFETY_QUESTIONS == (
        "pregnant_or_breastfeeding", "psychosis_history", "cardiovascular", "medications", "medical_conditions",
        "substance_use",
    )


def test_the_answers_each_question_takes():
    assert eligibility.CONCERNS == ("depression", "anxiety", "ptsd", "other")
    assert eligibility.TREATMENTS == ("medication", "therapy", "both", "none")
    assert eligibility.YES_NO_UNSURE == ("yes", "no", "unsure")
    assert eligibility.SUBSTANCE_USE == ("current", "past", "no", "unsure")
    assert eligibility.SCREEN_ITEMS == ("phq2_interest", "phq2_mood", "gad2_nervous", "gad2_worry")
    assert eligibility.CHOICES == {
        "concern": ("depression", "anxiety", "ptsd", "other"),
        "treatments_tried": ("medication", "therapy", "both", "none"),
        "substance_use": ("current", "past", "no", "unsure"),
        **{q: ("yes", "no", "unsure") for q in (
            "suicidal_thoughts", "suicide_plan", "suicide_attempt", "pregnant_or_breastfeeding", "psychosis_history",
            "cardiovascular", "medications", "medical_conditions", "support_person")},
    }


def test_published_wording():
    assert eligibility.PHQ2_STEM == "Over the last 2 weeks, how often have you been bothered by any of the following problems?"
    assert eligibility.GAD2_STEM == "Over the last 2 weeks, how often have you been bothered by the following problems?"
    assert eligibility.PHQ2_ITEMS == ("Little interest or pleasure in doing things", "Feeling down, depressed, or hopeless")
    assert eligibility.GAD2_ITEMS == ("Feeling nervous, anxious, or on edge", "Not being able to stop or control worrying")
    assert eligibility.ITEM_WORDING == {
        "phq2_interest": "Little interest or pleasure in doing things",
        "phq2_mood": "Feeling down, depressed, or hopeless",
        "gad2_nervous": "Feeling nervous, anxious, or on edge",
        "gad2_worry": "Not being able to stop or control worrying",
    }
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


@pytest.mark.parametrize("bad", [-1, 7, "3", None, True, 3.0])
def test_scores_outside_0_to_6_are_refused(bad):
    with pytest.raises(ValueError, match=r"^expected a score 0\.\.6$"):
        is_positive(bad)


@pytest.mark.parametrize("bad", [-1, 4, "2", True])
def test_a_refused_item_names_its_question_and_never_the_value(bad):
    for call, name in [
        (lambda: phq2_score(bad, 0), "phq2_interest"), (lambda: phq2_score(0, bad), "phq2_mood"),
        (lambda: gad2_score(bad, 0), "gad2_nervous"), (lambda: gad2_score(0, bad), "gad2_worry"),
    ]:
        with pytest.raises(ValueError, match=f"^{name}: expected an int 0\\.\\.3$"):
            call()


# --- Outcomes, one branch at a time -----------------------------------------------


def test_everything_clear_is_eligible():
    assert assess(CLEAR, RULES) == Assessment("eligible", ())


# --- Thoughts of ending one's life ----------------------------------------------------


@pytest.mark.parametrize("thoughts", ["yes", "unsure"])
@pytest.mark.parametrize(
    "plan, attempt",
    [("yes", None), ("unsure", None), ("no", "yes"), ("no", "unsure"), ("yes", "yes"), ("unsure", "no")],
)
def test_a_plan_an_intention_or_an_attempt_is_a_crisis(thoughts, plan, attempt):
    result = assess(with_(suicidal_thoughts=thoughts, suicide_plan=plan, suicide_attempt=attempt), RULES)
    assert result == Assessment("crisis", ("suicide_risk", "suicidal_thoughts"))
    assert result.urgent is True


@pytest.mark.parametrize("thoughts", ["yes", "unsure"])
def test_passive_thoughts_are_an_urgent_clinician_review(thoughts):
    result = assess(with_(suicidal_thoughts=thoughts, suicide_plan="no", suicide_attempt="no"), RULES)
    assert result == Assessment("clinician_review", ("suicidal_thoughts",))
    assert result.urgent is True


@pytest.mark.parametrize("follow_up", ["suicide_plan", "suicide_attempt"])
def test_a_yes_to_a_follow_up_is_a_crisis_on_its_own(follow_up):
    assert assess({follow_up: "yes"}, RULES) == Assessment("crisis", ("suicide_risk",))
    assert assess({follow_up: "unsure"}, RULES).outcome == "crisis"
    assert assess({follow_up: "no"}, RULES) == Assessment("eligible", ())


def test_thoughts_not_yet_followed_up_keep_the_questions_coming():
    answers = {"age": 30, "state": "TX", "suicidal_thoughts": "yes"}
    assert assess(answers, RULES) == Assessment("clinician_review", ("suicidal_thoughts",))
    assert remaining_questions(answers, RULES)[:8] == [
        "concern", "treatments_tried", "phq2_interest", "phq2_mood", "gad2_nervous", "gad2_worry",
        "suicide_plan", "suicide_attempt",
    ]


@pytest.mark.parametrize("thoughts", ["no", None])
def test_no_thoughts_no_follow_ups(thoughts):
    remaining = remaining_questions({"age": 30, "state": "TX", "suicidal_thoughts": thoughts}, RULES)
    assert "suicide_plan" not in remaining and "suicide_attempt" not in remaining
    assert ("suicidal_thoughts" in remaining) is (thoughts is None)


def test_passive_thoughts_outrank_an_exclusion_the_visitor_is_never_left_without_care():
    result = assess(with_(**PASSIVE, pregnant_or_breastfeeding="yes", psychosis_history="yes"), RULES)
    assert result == Assessment("clinician_review", ("suicidal_thoughts", "pregnant_or_breastfeeding", "psychosis_history"))
    assert result.urgent is True
    # ...and the questions go on after an exclusion
    partial = {"age": 30, "state": "TX", **PASSIVE, "pregnant_or_breastfeeding": "yes"}
    assert remaining_questions(partial, RULES) == [q for q in QUESTIONS if q not in partial]


@pytest.mark.parametrize(
    "answers, urgent",
    [
        (CLEAR, False),
        (with_(substance_use="past"), False),
        (with_(pregnant_or_breastfeeding="yes"), False),
        (with_(age=12), False),
        (with_(**PASSIVE), True),
        (with_(suicidal_thoughts="no", suicide_plan="yes"), True),
    ],
)
def test_urgent_only_for_a_crisis_or_thoughts_of_ending_ones_life(answers, urgent):
    assert assess(answers, RULES).urgent is urgent


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


@pytest.mark.parametrize("question", ["pregnant_or_breastfeeding", "psychosis_history"])
def test_yes_to_an_excluding_question_is_not_eligible(question):
    assert assess(with_(**{question: "yes"}), RULES) == Assessment("not_eligible", (question,))


def test_alcohol_or_drug_problems_still_going_on_are_not_eligible():
    assert assess(with_(substance_use="current"), RULES) == Assessment("not_eligible", ("substance_use_current",))


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"cardiovascular": "yes"}, "cardiovascular"),
        ({"medications": "yes"}, "medications"),
        ({"medical_conditions": "yes"}, "medical_conditions"),
        ({"substance_use": "past"}, "substance_use_past"),
        ({"support_person": "no"}, "no_support_person"),
        ({"support_person": "unsure"}, "no_support_person"),
        ({"treatments_tried": "none"}, "no_prior_treatment"),
        ({"pregnant_or_breastfeeding": "unsure"}, "unsure_answer"),
        ({"psychosis_history": "unsure"}, "unsure_answer"),
        ({"cardiovascular": "unsure"}, "unsure_answer"),
        ({"medications": "unsure"}, "unsure_answer"),
        ({"medical_conditions": "unsure"}, "unsure_answer"),
        ({"substance_use": "unsure"}, "unsure_answer"),
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


@pytest.mark.parametrize("answer", ["no", "yes", "unsure"])
def test_an_unsure_to_a_suicide_question_is_no_unsure_answer(answer):
    # "not sure" to these counts as "yes": a fixed rule, never the clinic's unsure_answer
    for question in eligibility.SUICIDE_QUESTIONS:
        assert "unsure_answer" not in assess(with_(**{question: answer}), RULES).reasons


def test_every_reason_found_is_listed_most_serious_first():
    everything = with_(
        age=16, state="OH", treatments_tried="none", phq2_interest=0, phq2_mood=0, gad2_nervous=0, gad2_worry=0,
        suicidal_thoughts="yes", suicide_plan="yes", pregnant_or_breastfeeding="yes", psychosis_history="yes",
        cardiovascular="yes", medications="yes", medical_conditions="unsure", substance_use="current",
        support_person="no",
    )
    assert assess(everything, RULES) == Assessment(
        "crisis",
        (
            "suicide_risk", "under_min_age", "state_not_served", "suicidal_thoughts",
            "pregnant_or_breastfeeding", "psychosis_history", "substance_use_current",
            "cardiovascular", "medications", "no_support_person", "no_prior_treatment", "screens_below_cutoff",
            "unsure_answer",
        ),
    )
    past = assess(with_(substance_use="past", medical_conditions="yes"), RULES)
    assert past == Assessment("clinician_review", ("medical_conditions", "substance_use_past"))


# --- Precedence -----------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, outcome",
    [
        ({"suicide_plan": "yes", "age": 15, "state": "OH", "psychosis_history": "yes", "medications": "yes"}, "crisis"),
        ({**PASSIVE, "age": 15, "state": "OH", "psychosis_history": "yes", "medications": "yes"}, "not_eligible"),
        ({**PASSIVE, "state": "OH", "psychosis_history": "yes", "medications": "yes"}, "out_of_area"),
        ({**PASSIVE, "psychosis_history": "yes", "medications": "yes"}, "clinician_review"),
        ({"psychosis_history": "yes", "medications": "yes"}, "not_eligible"),
        ({"medications": "yes"}, "clinician_review"),
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
    answers = with_(cardiovascular="yes")
    assert assess(answers, RULES).outcome == "clinician_review"
    stricter = rules(
        exclude=RULES_DICT["exclude"] + ["cardiovascular"],
        review=[r for r in RULES_DICT["review"] if r != "cardiovascular"],
    )
    assert assess(answers, stricter) == Assessment("not_eligible", ("cardiovascular",))
    assert remaining_questions({k: v for k, v in answers.items() if k != "support_person"}, stricter) == []


def test_moving_a_reason_from_exclude_to_review_changes_the_outcome():
    answers = with_(pregnant_or_breastfeeding="yes")
    softer = rules(
        exclude=["psychosis_history", "substance_use_current"], review=RULES_DICT["review"] + ["pregnant_or_breastfeeding"]
    )
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
        {"age": "25"}, {"age": 25.0}, {"age": True}, {"state": "XX"}, {"state": "Texas"}, {"state": 5},
        {"concern": "stress"}, {"treatments_tried": "meds"}, {"phq2_mood": 4}, {"gad2_worry": "1"},
        {"suicidal_thoughts": "maybe"}, {"suicide_plan": "sometimes"}, {"suicide_attempt": True},
        {"medications": "xanax"}, {"medical_conditions": 1}, {"substance_use": "yes"}, {"cardiovascular": "past"},
        {"support_person": True},
    ],
)
def test_answers_outside_their_domain_are_refused(changes):
    with pytest.raises(ValueError):
        assess(with_(**changes), RULES)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"age": "25"}, "age: expected an int"),
        ({"state": "XX"}, "state: expected a two-letter state code"),
        ({"concern": "stress"}, "concern: expected one of depression, anxiety, ptsd, other"),
        ({"substance_use": "yes"}, "substance_use: expected one of current, past, no, unsure"),
        ({"phq2_mood": 9}, "phq2_mood: expected an int 0..3"),
    ],
)
def test_an_answer_outside_its_domain_is_named_in_the_error_without_its_value(changes, message):
    with pytest.raises(ValueError) as info:
        assess(with_(**changes), RULES)
    assert str(info.value) == message


def test_rules_and_assessments_cannot_be_changed_once_made():
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        RULES.min_age = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        assess(CLEAR, RULES).outcome = "crisis"


def test_none_is_unanswered_and_other_keys_are_ignored():
    assert assess({"age": None, "state": None, "email": "x@example.com", "requested_slot": "age"}, RULES) == Assessment("eligible", ())


# --- remaining_questions ------------------------------------------------------------


NOT_FOLLOWED_UP = [q for q in QUESTIONS if q not in ("suicide_plan", "suicide_attempt")]


def test_nothing_answered_asks_everything_but_the_follow_ups_in_order():
    assert remaining_questions({}, RULES) == NOT_FOLLOWED_UP


def test_unanswered_questions_remain_in_order():
    answers = {"age": 30, "state": "CA", "phq2_interest": 1, "substance_use": None}
    assert remaining_questions(answers, RULES) == [q for q in NOT_FOLLOWED_UP if q not in ("age", "state", "phq2_interest")]


def test_all_answered_leaves_nothing():
    assert remaining_questions(CLEAR, RULES) == []


@pytest.mark.parametrize(
    "answers",
    [
        {"age": 17},
        {"age": 30, "state": "OH"},
        {"age": 30, "state": "TX", "suicidal_thoughts": "yes", "suicide_plan": "yes"},
        {"age": 30, "state": "TX", "suicidal_thoughts": "unsure", "suicide_plan": "no", "suicide_attempt": "unsure"},
        {"age": 30, "state": "TX", "concern": "anxiety", "pregnant_or_breastfeeding": "yes"},
        {"age": 30, "state": "TX", "psychosis_history": "yes"},
        {"age": 30, "state": "TX", "substance_use": "current"},
    ],
)
def test_nothing_more_once_the_outcome_is_decided(answers):
    assert remaining_questions(answers, RULES) == []


@pytest.mark.parametrize(
    "answers",
    [
        {"age": 30, "state": "TX", "substance_use": "past"},
        {"age": 30, "state": "TX", "treatments_tried": "none"},
        {"age": 30, "state": "TX", "cardiovascular": "yes"},
        {"age": 30, "state": "TX", "medications": "unsure"},
    ],
)
def test_a_review_reason_keeps_the_questions_coming(answers):
    assert remaining_questions(answers, RULES) == [q for q in NOT_FOLLOWED_UP if q not in answers]


# --- progress ---------------------------------------------------------------------------


def test_progress_counts_the_questions_this_visitor_will_be_asked():
    assert progress({}, RULES) == (1, 16)
    assert progress({"age": 30}, RULES) == (2, 16)
    answered = {q: CLEAR[q] for q in QUESTIONS[:8]}
    assert progress(answered, RULES) == (9, 16)
    # a yes to thoughts of ending one's life brings its two follow-ups
    assert progress({**answered, "suicidal_thoughts": "yes"}, RULES) == (10, 18)
    assert progress({**answered, "suicidal_thoughts": "unsure", "suicide_plan": "no"}, RULES) == (11, 18)
    assert progress({**answered, "suicidal_thoughts": "no"}, RULES) == (10, 16)
    assert progress({k: v for k, v in CLEAR.items() if k != "support_person"}, RULES) == (16, 16)


def test_progress_once_nothing_remains():
    assert progress(CLEAR, RULES) == (0, 16)
    assert progress({"age": 15}, RULES) == (0, 1)
    assert progress({"age": 30, "state": "OH"}, RULES) == (0, 2)


def test_progress_does_not_count_answers_outside_their_domain():
    with pytest.raises(ValueError):
        progress({"age": "thirty"}, RULES)


# --- is_valid_answer ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, value",
    [
        ("age", 30), ("age", 0), ("state", "TX"), ("concern", "ptsd"), ("treatments_tried", "none"),
        ("phq2_mood", 0), ("gad2_worry", 3), ("suicidal_thoughts", "unsure"), ("suicide_plan", "no"),
        ("suicide_attempt", "yes"), ("medications", "yes"), ("medical_conditions", "no"),
        ("substance_use", "past"), ("substance_use", "current"), ("support_person", "yes"),
    ],
)
def test_valid_answers(name, value):
    assert is_valid_answer(name, value) is True


@pytest.mark.parametrize(
    "name, value",
    [
        ("age", None), ("age", "30"), ("state", "ok"), ("state", "tx"), ("state", "Texas"), ("state", 7),
        ("state", "XX"), ("concern", "sad"), ("phq2_mood", 4), ("phq2_mood", "2"), ("suicidal_thoughts", "maybe"),
        ("substance_use", "yes"), ("email", "a@b.co"), ("requested_slot", "age"),
    ],
)
def test_invalid_answers(name, value):
    assert is_valid_answer(name, value) is False


# --- Rules.from_dict validation -----------------------------------------------------------


def test_rules_from_dict():
    assert RULES == Rules(
        min_age=18,
        states_served=frozenset({"CA", "CO", "FL", "NY", "TX", "WA"}),
        exclude=frozenset({"pregnant_or_breastfeeding", "psychosis_history", "substance_use_current"}),
        review=frozenset({
            "cardiovascular", "medications", "medical_conditions", "substance_use_past", "no_support_person",
            "no_prior_treatment", "screens_below_cutoff", "unsure_answer",
        }),
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
        ({"review": ["suicide_risk"]}, "fixed rule"),
        ({"exclude": ["state_not_served"]}, "fixed rule"),
        ({"exclude": ["substance_misuse"]}, "unknown reason(s) 'substance_misuse'"),
        ({"exclude": ["cardiovascular"], "review": ["cardiovascular"]}, "both exclude and review"),
        ({"exclude": [1]}, "exclude must be a list"),
    ],
)
def test_bad_rules_are_refused_with_a_clear_message(changes, message):
    with pytest.raises(ValueError) as info:
        rules(**changes)
    assert message in str(info.value)


@pytest.mark.parametrize("min_age", [1, 120])
def test_min_age_from_1_to_120(min_age):
    assert rules(min_age=min_age).min_age == min_age


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"min_age": 121}, "eligibility rules: min_age must be a whole number of years (1..120), got 121"),
        ({"min_age": "18"}, "eligibility rules: min_age must be a whole number of years (1..120), got '18'"),
        ({"states_served": ["XX", "TX", "YY"]},
         "eligibility rules: states_served has unknown state code(s) 'XX', 'YY'; use two-letter codes such as CA or TX"),
        ({"states_served": "TX"}, "eligibility rules: states_served must be a list of names, got 'TX'"),
        ({"review": ["under_min_age", "suicide_risk"]},
         "eligibility rules: review lists 'under_min_age', 'suicide_risk', a fixed rule that cannot be moved"),
        ({"exclude": ["pregnant", "cardio"]},
         "eligibility rules: exclude has unknown reason(s) 'pregnant', 'cardio'; known reasons: "
         "pregnant_or_breastfeeding, psychosis_history, cardiovascular, medications, medical_conditions, "
         "substance_use_current, substance_use_past, no_support_person, no_prior_treatment, screens_below_cutoff, "
         "unsure_answer"),
        ({"exclude": ["medications", "cardiovascular"], "review": ["cardiovascular", "medications"]},
         "eligibility rules: 'cardiovascular', 'medications' listed under both exclude and review"),
    ],
)
def test_the_whole_message_says_what_is_wrong(changes, message):
    with pytest.raises(ValueError) as info:
        rules(**changes)
    assert str(info.value) == message


def test_a_mapping_is_required_with_a_clear_message():
    with pytest.raises(ValueError) as info:
        Rules.from_dict(["min_age", 18])
    assert str(info.value) == "eligibility rules: expected a mapping"


@pytest.mark.parametrize("key", ["min_age", "states_served", "exclude", "review"])
def test_a_missing_key_is_refused(key):
    with pytest.raises(ValueError, match=f"missing '{key}'"):
        Rules.from_dict({k: v for k, v in RULES_DICT.items() if k != key})


def test_rules_must_be_a_mapping():
    with pytest.raises(ValueError):
        Rules.from_dict(["min_age", 18])

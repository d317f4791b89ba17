"""Free-text answers to the pre-screen: what is understood, and what is not."""

import pytest

from clinic.rules.answer_parsing import (
    detect_correction,
    parse_age,
    parse_concern,
    parse_conditions,
    parse_email,
    parse_frequency,
    parse_medications,
    parse_phone,
    parse_state,
    parse_substance_use,
    parse_suicide_answer,
    parse_treatments,
    parse_yes_no,
)
from clinic.rules.us_states import STATE_NAMES

# --- Age ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, age",
    [
        ("25", 25), ("I'm 25", 25), ("I\u2019m 25", 25), ("25 years old", 25), ("twenty five", 25),
        ("twenty-five", 25), ("Thirty", 30), ("I am 19 y/o", 19), ("25yo", 25), ("nineteen", 19),
        ("I'm twenty one years old", 21), ("age: 44", 44), ("one hundred and five", 105), ("120", 120),
        ("1", 1), ("one", 1), ("I have 2 kids and I'm 30", 30), ("twenty five years old, 2 kids", 25),
        ("born in 1990, so 34", 34), ("  42  ", 42),
    ],
)
def test_ages_understood(text, age):
    assert parse_age(text) == age


@pytest.mark.parametrize(
    "text",
    [
        "abc", "", "   ", "-3", "250", "121", "0", "25.5", "no one", "I'd rather not say", "in my thirties",
        "25 or 26", "1990", "18-25", "25 to 30", "jane25@example.com", "555-010-4477", None,
    ],
)
def test_ages_not_understood(text):
    assert parse_age(text) is None


# --- State ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, code",
    [
        ("texas", "TX"), ("Texas", "TX"), ("New York", "NY"), ("TX", "TX"), ("tx", "TX"), ("Tx", "TX"),
        ("Texs", "TX"), ("califonia", "CA"), ("Pennsylvannia", "PA"), ("Massachusets", "MA"),
        ("I live in Californa now", "CA"), ("I live in florida", "FL"), ("washington state", "WA"),
        ("washington", "WA"), ("dc", "DC"), ("DC", "DC"), ("washington dc", "DC"), ("Washington, D.C.", "DC"),
        ("District of Columbia", "DC"), ("I live in tx", "TX"), ("I'm in ny", "NY"), ("I'm from NY", "NY"),
        ("I'm in CA", "CA"), ("OK I'm in TX", "TX"), ("I'm in OK", "OK"), ("OK", "OK"), ("HI", "HI"),
        ("I LIVE IN TEXAS", "TX"), ("west virginia", "WV"), ("virginia", "VA"), ("arkansas", "AR"),
        ("kansas", "KS"), ("new york city", "NY"), ("I live in NYC", "NY"), ("north carolina", "NC"),
        ("the state of texas", "TX"), ("Texas, USA", "TX"), ("Puerto Rico", "PR"), ("Conneticut", "CT"),
        ("Tennesee", "TN"), ("new jersy", "NJ"), ("we live in Colorado", "CO"), ("co", "CO"),
    ],
)
def test_states_understood(text, code):
    assert parse_state(text) == code


@pytest.mark.parametrize(
    "text",
    [
        "", "abc", "in", "me", "or", "ok", "hi", "Ok", "oh", "Tell ME about it", "yes", "I don't know",
        "my main concern", "I'm Indian", "I live in mexico", "Carolina", "United States", "USA",
        "i moved from texas to florida", "I live in Kansas City, Missouri", "somewhere in the midwest",
        "thanks", "washing", None,
    ],
)
def test_states_not_understood(text):
    assert parse_state(text) is None


def test_every_state_name_and_code_is_understood():
    for code, name in STATE_NAMES.items():
        assert parse_state(name) == code
        assert parse_state(name.upper()) == code
        assert parse_state(code) == code


def test_entities_are_tried_first():
    assert parse_state("somewhere nice", ["Texas"]) == "TX"
    assert parse_state("I live in ohio", ["Ohio"]) == "OH"
    assert parse_state("I live in Kansas City, Missouri", ["Kansas City", "Missouri"]) == "MO"


def test_entities_that_name_no_state_fall_back_to_the_text():
    assert parse_state("I live in ohio", ["America"]) == "OH"
    assert parse_state("texas", []) == "TX"
    assert parse_state("hello", ["Paris"]) is None


def test_entities_naming_two_states_fall_back_to_the_text():
    assert parse_state("I'm in Texas now", ["Texas", "Ohio"]) == "TX"


# --- Yes / no / unsure ----------------------------------------------------


@pytest.mark.parametrize(
    "text, answer",
    [
        ("yes", "yes"), ("Yes!", "yes"), ("yeah", "yes"), ("yep", "yes"), ("y", "yes"), ("sure", "yes"),
        ("i have", "yes"), ("i am", "yes"), ("I'm pregnant", "yes"), ("correct", "yes"), ("true", "yes"),
        ("yes, I don't live alone", "yes"),
        ("no", "no"), ("NO.", "no"), ("nope", "no"), ("nah", "no"), ("n", "no"), ("never", "no"),
        ("not really", "no"), ("i don't", "no"), ("I don\u2019t", "no"), ("none", "no"), ("I have never", "no"),
        ("I'm not pregnant", "no"), ("no, I am fine", "no"), ("Not that I know of", "no"),
        ("not sure", "unsure"), ("unsure", "unsure"), ("don't know", "unsure"), ("I don\u2019t know", "unsure"),
        ("idk", "unsure"), ("maybe", "unsure"), ("possibly", "unsure"), ("prefer not to say", "unsure"),
        ("no, I'm not sure", "unsure"), ("I'm not sure", "unsure"), ("yes maybe", "unsure"),
    ],
)
def test_yes_no_unsure(text, answer):
    assert parse_yes_no(text) == answer


@pytest.mark.parametrize("text", ["", "   ", "hello", "yes and no", "banana", "what do you mean", "?", None])
def test_yes_no_not_understood(text):
    assert parse_yes_no(text) is None


# --- Frequency ------------------------------------------------------------


@pytest.mark.parametrize(
    "text, score",
    [
        ("Not at all", 0), ("not at all", 0), ("never", 0), ("no", 0), ("nope", 0), ("none", 0), ("nah", 0),
        ("not once", 0), ("Several days", 1), ("some days", 1), ("a few days", 1), ("few days", 1), ("sometimes", 1),
        ("occasionally", 1), ("a couple of days", 1), ("a couple days", 1), ("once in a while", 1), ("a little", 1),
        ("a bit", 1), ("now and then", 1),
        ("More than half the days", 2), ("more than half of the days", 2), ("more than half", 2),
        ("over half the days", 2), ("most days", 2), ("most of the time", 2), ("often", 2), ("frequently", 2),
        ("a lot", 2), ("usually", 2),
        ("Nearly every day", 3), ("almost every day", 3), ("nearly everyday", 3), ("almost everyday", 3),
        ("every day", 3), ("everyday", 3), ("daily", 3), ("always", 3), ("all the time", 3), ("constantly", 3),
        ("every single day", 3), ("3 - nearly every day", 3), ("every day for 2 weeks", 3), ("honestly, most days", 2),
    ],
)
def test_frequency(text, score):
    assert parse_frequency(text) == score


@pytest.mark.parametrize(
    "text, score",
    [
        # counts are days out of the last two weeks: 1-7 several, 8-11 more than half, 12-14 nearly every day
        ("0 days", 0), ("1 day", 1), ("one day", 1), ("2 days", 1), ("3 days", 1), ("three days", 1),
        ("7 days", 1), ("8 days", 2), ("eight days", 2), ("11 days", 2), ("12 days", 3), ("14 days", 3),
        ("fourteen days", 3), ("about 3 days", 1), ("2-3 days", 1), ("2 or 3 days", 1), ("4 times", 1),
        ("10 times", 2), ("5x", 1), ("9 x", 2), ("once", 1), ("twice", 1),
        ("3 days a week", 1), ("4 days a week", 2), ("5 days per week", 2), ("6 days each week", 3),
        ("once a week", 1), ("twice a week", 1), ("4 times a week", 2), ("twice a day", 3), ("3 times per day", 3),
        ("once every day", 3),
        ("3 out of 14 days", 1), ("9 of the last 14", 2), ("4 days of the past 14 days", 1),
        ("12 out of fourteen", 3), ("several days, like 3 days", 1), ("most days, maybe 9 days", 2),
    ],
)
def test_frequency_as_a_count_of_days(text, score):
    assert parse_frequency(text) == score


@pytest.mark.parametrize("text, score", [("0", 0), ("1", 1), ("2", 2), ("3", 3), ("zero", 0), ("one", 1), ("two", 2),
                                         ("three", 3), (" 2. ", 2)])
def test_a_bare_number_is_the_option_only_when_the_options_showed_their_numbers(text, score):
    assert parse_frequency(text, numbered_options=True) == score
    assert parse_frequency(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "", "hmm", "4", "5", "-1", "not every day", "not often", "not usually", "isn't daily", "sometimes, maybe most days",
        "no one knows", "yes", None, "15 days", "20 times", "3 days, no 9 days", "3 days or every day", "100 days",
        "every other week",
    ],
)
def test_frequency_not_understood(text):
    assert parse_frequency(text) is None
    assert parse_frequency(text, numbered_options=True) is None


# --- Thoughts of ending one's life: only a clear no is no --------------------


CLEAR_NOS = [
    "no", "No.", "NO!", "nope", "nah", "n", "never", "No, never.", "nope, never", "never ever", "no never ever",
    "not ever", "not at all", "no, not at all", "not once", "no, not once", "none", "no none", "no, I haven't",
    "No I have not", "I haven't", "i have not", "no i haven't had any", "no i don't", "no I do not", "no thank you",
    "no thanks", "no, I'm fine", "no i'm okay", "no im ok", "never have", "no never have", "i never have",
    "I've never thought about it", "never thought about it", "no, i've never thought about it", "no thoughts",
    "No, I haven't had any thoughts", "no i have not had any thoughts", "i haven't had any thoughts",
]


@pytest.mark.parametrize("text", CLEAR_NOS)
@pytest.mark.parametrize("question", ["suicidal_thoughts", "suicide_plan", "suicide_attempt"])
def test_a_clear_no_is_no(text, question):
    assert parse_suicide_answer(text, question) == "no"


@pytest.mark.parametrize(
    "text",
    [
        "sometimes", "some times", "passing thoughts", "I wouldn't act on them", "i don't have a plan",
        "not really, just thoughts", "no plan but yes", "on and off", "off and on", "now and then", "a couple of times",
        "couple of times", "couple times", "a few times", "few times", "several times", "many times", "once", "twice",
        "every day", "everyday", "daily", "only when things get bad", "when things get bad", "yes", "Yeah", "yep",
        "yup", "ya", "yea", "y", "occasionally", "a lot", "often", "all the time", "constantly", "always",
        "most days", "at times", "fleeting ones", "I had thoughts", "thought about it", "I think about it",
        "thinking about it lately", "i have", "i've had", "i had", "i do", "a little", "a bit", "no, but it crossed my mind",
        "i have a plan", "I'd never act on it", "wish i could disappear", "i want to die", "they'd be better off",
        "i want to end it", "NO PLAN BUT YES", "yes, but I'm safe",
    ],
)
def test_any_sign_of_thoughts_is_yes(text):
    assert parse_suicide_answer(text) == "yes"
    assert parse_suicide_answer(text, "suicidal_thoughts") == "yes"


@pytest.mark.parametrize(
    "text",
    [
        "not lately", "not recently", "not really", "i guess", "i think so", "I don't think so", "kind of",
        "sort of", "not exactly", "hard to say", "not sure", "unsure", "idk", "maybe", "prefer not to say",
        "no, not that I remember", "nothing serious", "not now", "it isn't something i'd say", "nah, dont think so",
    ],
)
def test_a_hedge_or_a_no_with_more_to_it_is_unsure(text):
    assert parse_suicide_answer(text) == "unsure"


@pytest.mark.parametrize("text", ["", "   ", "banana", "what do you mean?", "?", "how much is it", "hello", None])
def test_a_suicide_answer_not_understood(text):
    for question in ("suicidal_thoughts", "suicide_plan", "suicide_attempt"):
        assert parse_suicide_answer(text, question) is None


@pytest.mark.parametrize(
    "text",
    [
        "no plan", "No plans", "no plan, no intention", "no plan or intention", "no plan and no intention",
        "no intention", "no intentions", "I have no plan", "i have no plans", "no, i have no plan",
        "I don't have a plan", "no i don't have a plan", "i don't have any plans", "no, I don't have any plans",
        "no, just thoughts", "no just the thoughts", "no, only thoughts", "no i wouldn't", "i wouldn't",
        "I wouldn't act on them", "no I wouldn't act on them", "i would never act on them", "I won't act on them",
        "no i won't", "no, I'm safe", "i'm safe",
    ],
)
def test_a_no_that_names_the_plan_is_no_to_the_plan_question_only(text):
    assert parse_suicide_answer(text, "suicide_plan") == "no"
    assert parse_suicide_answer(text, "suicide_attempt") != "no"


@pytest.mark.parametrize(
    "text",
    [
        "no attempt", "no attempts", "I haven't tried", "no, i haven't tried", "never tried", "no never tried",
        "I have never tried", "i've never tried", "no, i've never tried", "no i have never tried",
    ],
)
def test_a_no_that_names_the_attempt_is_no_to_the_attempt_question_only(text):
    assert parse_suicide_answer(text, "suicide_attempt") == "no"
    assert parse_suicide_answer(text, "suicide_plan") != "no"


@pytest.mark.parametrize(
    "text, answer",
    [
        ("yes", "yes"), ("sometimes", "yes"), ("once", "yes"), ("i did", "yes"), ("i tried", "yes"),
        ("I tried last spring", "yes"), ("kind of", "unsure"), ("a little", "yes"), ("no but i think about how", "yes"),
        ("only when things get bad", "yes"), ("not really", "unsure"), ("not sure", "unsure"), ("i guess", "unsure"),
        ("passing thoughts", None), ("just thoughts", None), ("thinking about it", None), ("fleeting", None),
    ],
)
def test_the_follow_ups_read_a_yes_and_ignore_words_about_thoughts(text, answer):
    assert parse_suicide_answer(text, "suicide_plan") == answer
    assert parse_suicide_answer(text, "suicide_attempt") == answer


# --- Checklists: medicines and conditions ----------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "benzodiazepine", "benzodiazepines", "a benzo", "benzos", "Xanax", "alprazolam", "klonopin", "clonazepam",
        "ativan", "lorazepam", "valium", "diazepam", "temazepam", "lamotrigine", "Lamictal", "an MAOI", "maois",
        "mao inhibitor", "MAO inhibitors", "phenelzine", "nardil", "tranylcypromine", "parnate", "selegiline", "emsam",
        "isocarboxazid", "marplan", "a stimulant", "stimulants", "Adderall", "ritalin", "vyvanse", "concerta",
        "methylphenidate", "amphetamine", "amphetamines", "dexedrine", "focalin", "opioid", "opioids", "opiate",
        "opiates", "oxycodone", "oxycontin", "percocet", "hydrocodone", "vicodin", "norco", "tramadol", "morphine",
        "codeine", "fentanyl", "methadone", "buprenorphine", "suboxone", "a sedative", "sedatives", "sleeping pill",
        "sleeping pills", "sleep med", "sleep meds", "ambien", "zolpidem", "gabapentin", "pregabalin", "lyrica",
        "I take xanax at night", "adderall but not xanax", "no benzos, but I take Lamictal", "Yes, one or more", "yes",
    ],
)
def test_naming_a_medicine_of_the_list_is_yes(text):
    assert parse_medications(text) == "yes"


@pytest.mark.parametrize(
    "text, answer",
    [
        ("None of these", "no"), ("no", "no"), ("nope", "no"), ("I don't take any", "no"), ("no benzos", "no"),
        ("i don't take xanax", "no"), ("not adderall", "no"), ("never took opioids", "no"),
        ("without sleeping pills", "no"), ("neither xanax nor ambien", "no"), ("not sure", "unsure"),
        ("not sure if my xanax counts", "unsure"), ("Not sure", "unsure"), ("prozac", None), ("", None), ("hello", None),
    ],
)
def test_medicines_not_taken(text, answer):
    assert parse_medications(text) == answer


@pytest.mark.parametrize(
    "text",
    [
        "a brain injury", "brain injuries", "head injury", "head injuries", "TBI", "a concussion", "concussions",
        "brain bleed", "brain bleeds", "bleeding in the brain", "bleeding in my brain", "raised intracranial pressure",
        "pressure in my head", "pressure in the head", "glaucoma", "high eye pressure", "liver disease", "cirrhosis",
        "hepatitis", "seizures", "a seizure", "epilepsy", "I'm epileptic", "thyroid", "hyperthyroidism", "hyperthyroid",
        "bladder problems", "urinary issues", "cystitis", "hypomania", "hypomanic episodes", "bipolar ii",
        "bipolar 2", "bipolar two", "a bad reaction to ketamine", "i'm allergic to ketamine", "ketamine allergy",
        "my mom has schizophrenia", "schizophrenic brother", "my dad had psychosis", "Yes, one or more",
        "no seizures but glaucoma", "head-injury",
    ],
)
def test_naming_a_condition_of_the_list_is_yes(text):
    assert parse_conditions(text) == "yes"


@pytest.mark.parametrize(
    "text, answer",
    [
        ("None of these", "no"), ("no seizures", "no"), ("I don't have glaucoma", "no"), ("nope", "no"),
        ("not sure", "unsure"), ("asthma", None), ("", None), (None, None),
    ],
)
def test_conditions_not_had(text, answer):
    assert parse_conditions(text) == answer


# --- Alcohol and drugs --------------------------------------------------------


@pytest.mark.parametrize(
    "text, answer",
    [
        ("Yes, still now", "current"), ("still", "current"), ("yes now", "current"), ("right now", "current"),
        ("currently", "current"), ("at the moment", "current"), ("these days, yes", "current"), ("ongoing", "current"),
        ("at present", "current"),
        ("Yes, but not now", "past"), ("not now", "past"), ("not any more", "past"), ("not anymore", "past"),
        ("no longer", "past"), ("I used to drink too much", "past"), ("in the past", "past"), ("earlier this year", "past"),
        ("I stopped", "past"), ("quit in march", "past"), ("sober 8 months", "past"), ("in recovery", "past"),
        ("clean now", "past"), ("years ago", "past"), ("a while ago", "past"), ("not since spring", "past"),
        ("no, not any more", "past"),
        ("No", "no"), ("nope", "no"), ("never", "no"), ("no, never", "no"),
        ("Not sure", "unsure"), ("maybe", "unsure"), ("i don't know", "unsure"),
    ],
)
def test_substance_use(text, answer):
    assert parse_substance_use(text) == answer


@pytest.mark.parametrize(
    "text",
    ["yes", "Yes.", "i drink every day", "", None, "banana", "used to, and still now", "yes", "I quit but still use now"],
)
def test_substance_use_not_understood_asks_again(text):
    assert parse_substance_use(text) is None


# --- Main concern ---------------------------------------------------------


@pytest.mark.parametrize(
    "text, concern",
    [
        ("depression", "depression"), ("Depression", "depression"), ("depressed", "depression"),
        ("low mood", "depression"), ("sad all the time", "depression"), ("the pain of depression", "depression"),
        ("anxiety", "anxiety"), ("anxious", "anxiety"), ("panic attacks", "anxiety"), ("I worry a lot", "anxiety"),
        ("I'm not depressed, just anxious", "anxiety"), ("anxiety and depression", "anxiety"),
        ("ptsd", "ptsd"), ("PTSD", "ptsd"), ("trauma", "ptsd"), ("flashbacks", "ptsd"), ("post-traumatic stress", "ptsd"),
        ("C-PTSD", "ptsd"),
        ("other", "other"), ("something else", "other"), ("ocd", "other"), ("OCD", "other"), ("bipolar", "other"),
        ("chronic pain", "other"), ("bipolar depression", "other"),
    ],
)
def test_concern(text, concern):
    assert parse_concern(text) == concern


@pytest.mark.parametrize("text", ["", "hello", "what do you mean", "no worries", "my mother", "yes", None])
def test_concern_not_understood(text):
    assert parse_concern(text) is None


# --- Treatments tried -----------------------------------------------------


@pytest.mark.parametrize(
    "text, treatments",
    [
        ("antidepressants", "medication"), ("meds", "medication"), ("SSRIs", "medication"), ("ssri", "medication"),
        ("medication", "medication"), ("I was on Zoloft", "medication"), ("not therapy but meds", "medication"),
        ("I haven't tried therapy but I take meds", "medication"),
        ("therapy", "therapy"), ("counseling", "therapy"), ("talk therapy", "therapy"), ("CBT", "therapy"),
        ("psychotherapy", "therapy"), ("no meds, only therapy", "therapy"), ("I tried therapy, no meds", "therapy"),
        ("both", "both"), ("all of them", "both"), ("meds and therapy", "both"),
        ("I've been on Zoloft and seen a therapist", "both"),
        ("nothing", "none"), ("none", "none"), ("haven't tried anything", "none"), ("I haven't tried anything", "none"),
        ("neither meds nor therapy", "none"), ("no", "none"), ("nothing yet", "none"),
    ],
)
def test_treatments(text, treatments):
    assert parse_treatments(text) == treatments


@pytest.mark.parametrize("text", ["", "ketamine", "I'm not sure", "hello", "what counts?", None])
def test_treatments_not_understood(text):
    assert parse_treatments(text) is None


# --- Email ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, email",
    [
        ("jane@example.com", "jane@example.com"), ("Jane.Doe@Example.COM", "jane.doe@example.com"),
        ("my email is jane@example.com.", "jane@example.com"), ("<jane@example.com>", "jane@example.com"),
        ("email: jane@example.com", "jane@example.com"), ("You can reach me at jane@example.com", "jane@example.com"),
        ("jane+tag@sub.example.co.uk", "jane+tag@sub.example.co.uk"), ("mailto:JANE@EXAMPLE.COM", "jane@example.com"),
        ("  jane_d-1@mail-host.org  ", "jane_d-1@mail-host.org"),
    ],
)
def test_email(text, email):
    assert parse_email(text) == email


@pytest.mark.parametrize(
    "text",
    [
        "", "jane", "jane@example", "jane@localhost", "jane doe@example.com", "jane @example.com", "jane@ example.com",
        "jane @ example.com", "a@b@c.com", "jane@example..com", "jane@-example.com", "jane.@example.com",
        "a@b.com and c@d.com", "jane@example.c0m", "@example.com", "skip", None,
    ],
)
def test_email_not_understood(text):
    assert parse_email(text) is None


# --- Phone ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "555-010-4477", "(555) 010-4477", "555.010.4477", "+1 555 010 4477", "5550104477", "15550104477",
        "1-555-010-4477", "+1 (555) 010-4477", "call me at 555-010-4477 after 5pm", "my number is 555 010 4477.",
    ],
)
def test_phone(text):
    assert parse_phone(text) == "+1 555-010-4477"


@pytest.mark.parametrize(
    "text",
    [
        "", "skip", "no", "none", "25", "12345", "555-0104", "555-010-447", "555-010-44770", "+44 20 7946 0958",
        "+2 555 010 4477", "25550104477", "055-010-4477", "155-010-4477", "555 010 4477 or 555 010 4478", None,
    ],
)
def test_phone_not_understood(text):
    assert parse_phone(text) is None


# --- Corrections ----------------------------------------------------------


@pytest.mark.parametrize(
    "text, correction",
    [
        ("actually I'm 25", ("age", 25)),
        ("sorry, I meant 32", ("age", 32)),
        ("correction: I live in Texas", ("state", "TX")),
        ("wait i'm in CA not NY", ("state", "CA")),
        ("wait i'm in ca not ny", ("state", "CA")),
        ("i made a mistake, i'm 40", ("age", 40)),
        ("I'm 32 not 23", ("age", 32)),
        ("not NY, I'm in CA", ("state", "CA")),
        ("I'm in Texas, not Ohio", ("state", "TX")),
        ("actually I'm not in Texas, I'm in Ohio", ("state", "OH")),
        ("actually I'm 25, not 52", ("age", 25)),
        ("oops, twenty six", ("age", 26)),
        ("typo, I'm in florida", ("state", "FL")),
        ("Actually washington", ("state", "WA")),
        ("sorry, typo: jane@example.com", ("email", "jane@example.com")),
        ("actually my number is 555 010 4477", ("phone", "+1 555-010-4477")),
    ],
)
def test_corrections(text, correction):
    assert detect_correction(text) == correction


@pytest.mark.parametrize(
    "text",
    [
        "I'm 25",                          # no cue: an answer, not a correction
        "Texas",
        "not sure",
        "I'm not sure",
        "wait, what?",                     # cue, nothing to correct to
        "actually, yes",
        "I'm not 18",                      # only the old value
        "actually I'm 25 and in Texas",    # two slots: ask again
        "I can't wait",
        "",
        None,
    ],
)
def test_no_correction(text):
    assert detect_correction(text) is None


# --- Every word of the word lists, each where it decides ------------------------------------------
# (make mutation: a word dropped from a list must fail a test)


@pytest.mark.parametrize(
    "text",
    ["not sure", "unsure", "don't know", "dont know", "do not know", "idk", "maybe", "possibly", "prefer not to say",
     "rather not say", "prefer not to answer", "rather not answer", "not certain", "no idea", "dunno", "perhaps",
     "i'm not certain", "can't say", "cant say", "hard to say", "might be"],
)
def test_every_unsure_phrase(text):
    assert parse_yes_no(f"no, {text}") == "unsure"  # "not sure" wins over a leading no
    assert parse_suicide_answer(text) == "unsure"


@pytest.mark.parametrize("text", ["yes", "yeah", "yep", "yup", "y", "ya", "yea", "yes please"])
def test_every_strong_yes(text):
    assert parse_yes_no(text) == "yes"
    assert parse_yes_no(f"{text}, I don't live alone") == "yes"  # a leading strong yes decides


@pytest.mark.parametrize("text", ["sure", "i have", "i've", "i am", "i'm", "correct", "true", "i do", "absolutely",
                                  "definitely", "of course", "affirmative", "that's right"])
def test_every_weak_yes(text):
    assert parse_yes_no(f"well {text}") == "yes"


@pytest.mark.parametrize(
    "text",
    ["never", "not really", "i don't", "i dont", "i do not", "none", "i haven't", "i havent", "i have not", "i'm not",
     "im not", "i am not", "negative", "false", "not at all", "no way", "nothing", "not that i know", "i've not",
     "not me", "incorrect"],
)
def test_every_weak_no(text):
    assert parse_yes_no(f"well {text}") == "no"
    assert parse_yes_no(f"well {text}, i am") == "no"  # a negation wins over a weak yes


@pytest.mark.parametrize(
    "text, answer",
    [("no", "no"), ("nope", "no"), ("nah", "no"), ("n", "no"), ("yes", "yes"), ("no, yes", None),
     ("well no", "no"), ("well nope", "no"), ("well nah", "no"), ("well n", "no")],
)
def test_strong_no_anywhere(text, answer):
    assert parse_yes_no(text) == answer


@pytest.mark.parametrize(
    "text, concern",
    [
        ("depressive episodes", "depression"), ("low mood", "depression"), ("my mood is low", "depression"),
        ("feeling down", "depression"), ("feel so low", "depression"), ("feeling very empty", "depression"),
        ("feel really hopeless", "depression"), ("sadness", "depression"), ("sad", "depression"),
        ("hopelessness", "depression"), ("MDD", "depression"), ("unhappy", "depression"),
        ("no motivation", "depression"), ("postpartum", "depression"),
        ("anxious", "anxiety"), ("panicking", "anxiety"), ("worried", "anxiety"), ("worrying", "anxiety"),
        ("worries", "anxiety"), ("nervousness", "anxiety"), ("GAD", "anxiety"), ("on edge", "anxiety"),
        ("stress", "anxiety"), ("stressed", "anxiety"), ("phobias", "anxiety"),
        ("cptsd", "ptsd"), ("c ptsd", "ptsd"), ("posttraumatic", "ptsd"), ("traumatic memories", "ptsd"),
        ("flashback", "ptsd"), ("nightmares", "ptsd"), ("a nightmare", "ptsd"),
        ("other", "other"), ("obsessive thoughts", "other"), ("compulsive", "other"), ("chronic pain", "other"),
        ("addiction", "other"), ("an eating disorder", "other"), ("ADHD", "other"), ("insomnia", "other"),
        ("none of these", "other"), ("none of those", "other"), ("none of the above", "other"), ("burnout", "other"),
        ("burn out", "other"),
    ],
)
def test_every_concern_word(text, concern):
    assert parse_concern(text) == concern


@pytest.mark.parametrize("text", ["not depressed", "no anxiety", "never anxious", "without trauma",
                                  "isn't depression"])
def test_a_negated_concern_is_none(text):
    assert parse_concern(text) is None


@pytest.mark.parametrize(
    "text",
    ["medication", "medications", "meds", "medicine", "medicines", "antidepressant", "anti depressants", "ssri",
     "SNRIs", "snri", "pills", "a pill", "prescriptions", "prescription", "prozac", "zoloft", "lexapro", "wellbutrin",
     "celexa", "paxil", "cymbalta", "effexor", "sertraline", "fluoxetine", "escitalopram", "bupropion", "medicated"],
)
def test_every_medication_word(text):
    assert parse_treatments(text) == "medication"
    assert parse_treatments(f"therapy and {text}") == "both"


@pytest.mark.parametrize(
    "text",
    ["therapy", "psychotherapy", "therapist", "counseling", "counselling", "a counselor", "counsellors", "CBT", "DBT",
     "EMDR", "a psychologist", "psychologists", "talking to someone"],
)
def test_every_therapy_word(text):
    assert parse_treatments(text) == "therapy"


@pytest.mark.parametrize("text", ["both", "all of them", "all of the above", "all of those", "each of them"])
def test_every_both_word(text):
    assert parse_treatments(text) == "both"


@pytest.mark.parametrize(
    "text",
    ["nothing", "none", "neither", "no", "nope", "never", "not yet", "not really", "haven't tried anything",
     "havent tried anything", "have not tried anything", "nothing yet", "no treatment"],
)
def test_every_none_word(text):
    assert parse_treatments(text) == "none"


@pytest.mark.parametrize(
    "word",
    ["is", "email", "e-mail", "mail", "address", "at", "me", "use", "it's", "its", "try", "to", "meant", "mean",
     "actually", "sorry", "correction", "typo", "oops", "wait", "here", "yes", "sure", "ok", "okay", "please", "mine",
     "reach", "contact", "via", "be", "should"],
)
def test_every_word_an_address_may_follow_with_just_a_space(word):
    assert parse_email(f"{word} jane@example.com") == "jane@example.com"
    assert parse_email(f"{word.upper()} jane@example.com") == "jane@example.com"


@pytest.mark.parametrize(
    "text, age",
    [("two", 2), ("three", 3), ("four", 4), ("five", 5), ("six", 6), ("seven", 7), ("eight", 8), ("nine", 9),
     ("ten", 10), ("eleven", 11), ("twelve", 12), ("thirteen", 13), ("fourteen", 14), ("fifteen", 15),
     ("sixteen", 16), ("seventeen", 17), ("eighteen", 18), ("twenty", 20), ("forty", 40), ("fourty", 40),
     ("fifty", 50), ("sixty", 60), ("seventy", 70), ("eighty", 80), ("ninety", 90), ("thirty three", 33),
     ("ninety nine", 99), ("one hundred", 100)],
)
def test_every_number_word_of_an_age(text, age):
    assert parse_age(text) == age


@pytest.mark.parametrize("filler", ["i'm", "im", "i", "am", "age", "aged", "years", "year", "old", "yrs", "yo", "y/o",
                                    "just", "turned", "its", "it's"])
def test_a_lone_unit_counts_beside_every_filler_word(filler):
    assert parse_age(f"{filler} nine") == 9


@pytest.mark.parametrize("word", ["indian", "main", "mainly", "virgin", "georgian", "texan", "floridian",
                                  "californian", "washing", "alaskan", "hawaiian", "canada", "mexico", "oregano",
                                  "colored", "colorful"])
def test_words_that_look_like_a_state_are_none(word):
    assert parse_state(word) is None


@pytest.mark.parametrize(
    "text, code",
    [("washington d c", "DC"), ("washington d.c.", "DC"), ("d c", "DC"), ("nyc", "NY"), ("cali", "CA"),
     ("district of columbia", "DC"), ("washington state", "WA")],
)
def test_every_state_alias(text, code):
    assert parse_state(text) == code


@pytest.mark.parametrize("code", ["IN", "ME", "OR", "OK", "HI", "OH", "ID", "AL", "MA", "PA", "LA", "DE", "CO", "MI",
                                  "MO", "GA"])
def test_a_code_that_is_also_a_word_counts_only_after_in_or_from(code):
    assert parse_state(f"My home is Texas {code} whatever") == "TX"
    assert parse_state(f"we are in {code}") == code


@pytest.mark.parametrize(
    "text, question, answer",
    [
        ("no im ok", "suicidal_thoughts", "no"), ("ive never thought about it", "suicidal_thoughts", "no"),
        ("no i dont", "suicidal_thoughts", "no"), ("i havent", "suicidal_thoughts", "no"),
        ("i wouldnt", "suicide_plan", "no"), ("no i wont", "suicide_plan", "no"),
    ],
)
def test_answers_typed_without_their_apostrophes(text, question, answer):
    assert parse_suicide_answer(text, question) == answer


@pytest.mark.parametrize("text", ["no comment", "not now", "never mind", "nope nope nope", "nah mate", "none really",
                                  "nothing to say"])
def test_a_no_word_with_more_to_it_is_unsure(text):
    assert parse_suicide_answer(text) == "unsure"

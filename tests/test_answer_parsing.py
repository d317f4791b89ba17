"""Free-text answers to the pre-screen: what is understood, and what is not."""

import pytest

from clinic.answer_parsing import (
    detect_correction,
    parse_age,
    parse_concern,
    parse_email,
    parse_frequency,
    parse_phone,
    parse_state,
    parse_treatments,
    parse_yes_no,
)
from clinic.us_states import STATE_NAMES

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
        ("Not at all", 0), ("not at all", 0), ("never", 0), ("0", 0), ("no", 0), ("zero", 0),
        ("Several days", 1), ("some days", 1), ("a few days", 1), ("sometimes", 1), ("1", 1), ("one", 1),
        ("More than half the days", 2), ("most days", 2), ("often", 2), ("2", 2), ("more than half", 2),
        ("Nearly every day", 3), ("every day", 3), ("always", 3), ("all the time", 3), ("3", 3),
        ("3 - nearly every day", 3), ("every day for 2 weeks", 3), ("honestly, most days", 2),
    ],
)
def test_frequency(text, score):
    assert parse_frequency(text) == score


@pytest.mark.parametrize(
    "text",
    ["", "hmm", "4", "5", "-1", "not every day", "not often", "sometimes, maybe most days", "no one knows", "yes", None],
)
def test_frequency_not_understood(text):
    assert parse_frequency(text) is None


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

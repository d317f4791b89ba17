"""The answers against the review checklist (docs/CONTENT.md): length, no leading "Yes" or "No",
every topic's "Tell me more" present and reachable, the settings they quote (the DEA rule's end
date, the price, the privacy notice, the staffed hours from one place)."""

import asyncio
import datetime as dt
import re
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.faq import topic_titles
from actions.faq_more import ActionFaqMore
from clinic.rules import answers
from clinic.rules.answers import FAQ_PREFIX, MORE_BUTTON, MORE_PREFIX, Response, Variation
from clinic.settings import get_settings, load_clinic_info, public_facts, spoken_date
from clinic.rules.staffing import describe_hours, load_staffing, parse_staffing

ROOT = Path(__file__).resolve().parent.parent
TOPICS_FILE = ROOT.parent / "shared" / "faq_topics.yml"
ANSWER_WORDS = range(25, 61)
MOST_WORDS = 70

TOPICS = frozenset(topic_titles())  # settings/faq_titles.yml: the topics the actions know
FAQ = answers.faq_responses()
DOMAIN = answers.domain_responses()
FACTS = public_facts(get_settings())


def variations(names: List[str], source: Dict[str, Response]) -> List[Any]:
    return [pytest.param(source[n], i, v, id=f"{n}#{i}") for n in names for i, v in enumerate(source[n].variations)]


FAQ_ANSWERS = sorted(n for n in FAQ if n.startswith(FAQ_PREFIX))
MORE_ANSWERS = sorted(n for n in FAQ if n.startswith(MORE_PREFIX))


@pytest.fixture(scope="module")
def rasa_domain() -> Any:
    """The domain as Rasa trains it: domain/ with the FAQ files' responses merged in."""
    from rasa.shared.importers.importer import TrainingDataImporter

    return TrainingDataImporter.load_from_config(str(ROOT / "config.yml"), str(ROOT / "domain"), [str(ROOT / "data")]).get_domain()


def rasa_renders(domain: Any, name: str, slots: Dict[str, Any]) -> Dict[str, Any]:
    from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator

    return TemplatedNaturalLanguageGenerator(domain.responses).generate_from_slots(name, dict(slots), "rest")


# --- every topic: its answer and its detail, side by side ------------------------------------


def test_every_faq_file_holds_its_answer_and_its_tell_me_more_and_nothing_else():
    assert len(TOPICS) == 35
    for topic in TOPICS:
        doc = yaml.safe_load((ROOT / "data" / "faq" / f"{topic}.yml").read_text())
        assert set(doc["responses"]) == {FAQ_PREFIX + topic, MORE_PREFIX + topic}, topic


def test_the_topics_are_the_contract():
    if not TOPICS_FILE.exists():
        pytest.skip("../shared/faq_topics.yml is not beside this checkout")
    assert TOPICS == set(yaml.safe_load(TOPICS_FILE.read_text())["topics"])


# --- length -------------------------------------------------------------------------------


@pytest.mark.parametrize("response, index, variation", variations(FAQ_ANSWERS, FAQ))
def test_every_answer_is_25_to_60_words_with_the_settings_filled_in(response, index, variation):
    text = answers.rendered(variation, FACTS)
    assert "{" not in text and "}" not in text
    assert answers.word_count(text) in ANSWER_WORDS, f"{response.name}: {answers.word_count(text)} words: {text}"


@pytest.mark.parametrize("response, index, variation", variations(FAQ_ANSWERS + MORE_ANSWERS, FAQ))
def test_no_answer_is_over_70_words(response, index, variation):
    words = answers.word_count(answers.rendered(variation, FACTS))
    assert words <= MOST_WORDS, f"{response.name}: {words} words"


@pytest.mark.parametrize("response, index, variation", variations(MORE_ANSWERS, FAQ))
def test_every_tell_me_more_says_something(response, index, variation):
    assert answers.word_count(answers.rendered(variation, FACTS)) >= 25, response.name


def test_the_word_count_is_what_a_reader_sees():
    assert answers.word_count("Call **988** or see [our page](https://x.example/p).") == 6
    assert answers.word_count("Call (555) 010-4477 now.") == 4
    too_long = Variation(" ".join(["word"] * 71), (), ())
    assert answers.word_count(answers.rendered(too_long, {})) == 71 > MOST_WORDS


def test_a_placeholder_without_a_value_is_an_error_not_a_hole():
    with pytest.raises(KeyError, match="clinic_fax"):
        answers.fill("Fax us at {clinic_fax}.", FACTS)
    assert answers.fill('/faq_more{{"topic": "x"}} {clinic_name}', {"clinic_name": "C"}) == '/faq_more{"topic": "x"} C'


# --- never a leading yes or no ------------------------------------------------------------


ALL_RESPONSES = {**DOMAIN, **FAQ}


@pytest.mark.parametrize("response, index, variation", variations(sorted(ALL_RESPONSES), ALL_RESPONSES))
def test_no_response_opens_with_yes_or_no(response, index, variation):
    """A misrouted question must never read as a yes (or a no): FAQ answers, their details and
    every response of domain/."""
    assert answers.opening_word(variation.text).lower() not in {"yes", "no", "yeah", "yep", "nope"}, (
        f"{response.name} ({response.source.name}) opens with: {variation.text[:40]}"
    )


@pytest.mark.parametrize("text", ["Yes, it is.", "**No.** It isn't.", "  No problem: nothing was stored.", "Yes."])
def test_the_opening_check_catches_a_leading_yes_or_no(text):
    assert answers.opening_word(text).lower() in {"yes", "no"}


def test_the_opening_check_lets_other_words_through():
    assert answers.opening_word("Nobody checks you in person") == "Nobody"
    assert answers.opening_word("Yesterday's answer") == "Yesterday's"


# --- "Tell me more": a button on every answer, its payload, the action -------------------------


@pytest.mark.parametrize("response, index, variation", variations(FAQ_ANSWERS, FAQ))
def test_every_answer_carries_one_tell_me_more_button(response, index, variation):
    titles = [title for title, _ in variation.buttons]
    assert titles.count(MORE_BUTTON) == 1, response.name


def test_every_tell_me_more_button_parses_to_faq_more_with_its_topic(rasa_domain):
    """The button as Rasa renders it (the doubled braces of the YAML become the JSON payload),
    read back by Rasa's handler of /intent payloads with the domain: intent and topic."""
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
    from rasa.shared.nlu.training_data.message import Message

    for topic in sorted(TOPICS):
        for slots in ({**FACTS, "clinic_price": None}, {**FACTS, "clinic_price": "$250 a month"}):
            reply = rasa_renders(rasa_domain, FAQ_PREFIX + topic, slots)
            payload = next(b["payload"] for b in reply["buttons"] if b["title"] == MORE_BUTTON)
            assert payload == f'/faq_more{{"topic": "{topic}"}}'
            parsed = YAMLStoryReader.unpack_regex_message(Message(data={"text": payload}), rasa_domain)
            assert parsed.get("intent")["name"] == "faq_more"
            assert [(e["entity"], e["value"]) for e in parsed.get("entities")] == [("topic", topic)]
            assert MORE_PREFIX + topic in rasa_domain.responses


def tracker_with(entities: List[Dict[str, Any]], active_loop: str = "", slots: Dict[str, Any] = None) -> Tracker:
    return Tracker(
        sender_id="c0ffee" * 5 + "00",
        slots=slots or {},
        latest_message={"text": "/faq_more", "intent": {"name": "faq_more", "confidence": 1.0}, "entities": entities},
        events=[],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def run_more(tracker: Tracker) -> List[str]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionFaqMore().run(dispatcher, tracker, {}))
    assert events == []
    return [m["response"] for m in dispatcher.messages]


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_tell_me_more_answers_with_the_topics_detail(topic):
    assert run_more(tracker_with([{"entity": "topic", "value": topic}])) == [MORE_PREFIX + topic]


@pytest.mark.parametrize(
    "entities",
    [[], [{"entity": "topic", "value": "bitcoin"}], [{"entity": "topic", "value": None}],
     [{"entity": "topic", "value": ["safety"]}], [{"entity": "topic", "value": "../safety"}],
     [{"entity": "GPE", "value": "safety"}]],
)
def test_tell_me_more_without_a_known_topic_says_sorry_instead_of_nothing(entities):
    assert run_more(tracker_with(entities)) == ["utter_faq_more_unknown"]
    assert "utter_faq_more_unknown" in DOMAIN


def test_tell_me_more_pressed_during_the_pre_screen_is_answered_and_the_question_asked_again():
    """An FAQ answer given mid-form carries the button too: its detail is given, no miss counted."""
    from actions.prescreen_form import ValidatePrescreenForm

    tracker = tracker_with([{"entity": "topic", "value": "safety"}], active_loop="prescreen_form",
                           slots={"requested_slot": "age", "age": '/faq_more{"topic": "safety"}', "prescreen_misses": 1})
    dispatcher = CollectingDispatcher()
    result = ValidatePrescreenForm().validate_age('/faq_more{"topic": "safety"}', dispatcher, tracker, {})
    assert [m["response"] for m in dispatcher.messages] == ["utter_faq_more_safety"]
    assert result["age"] is None and result.get("prescreen_misses", 1) == 1


# --- the pricing answer: a figure when the clinic sets one ------------------------------------


def test_the_pricing_answer_gives_the_figure_only_when_the_clinic_sets_one(rasa_domain):
    without = rasa_renders(rasa_domain, "utter_faq/pricing", {**FACTS, "clinic_price": None})["text"]
    assert "$" not in without and "current price" in without
    with_price = rasa_renders(rasa_domain, "utter_faq/pricing", {**FACTS, "clinic_price": "$425 a month"})["text"]
    assert "$425 a month" in with_price and "current price" not in with_price


def test_the_price_setting_is_optional_and_said_as_a_monthly_figure(tmp_path):
    base = yaml.safe_load((ROOT / "settings" / "clinic.yml").read_text())
    base.pop("monthly_price_usd", None)
    for price, said in ((None, None), (399, "$399 a month"), (1250, "$1,250 a month"), (399.5, "$399.50 a month")):
        data = dict(base, **({} if price is None else {"monthly_price_usd": price}))
        (tmp_path / "clinic.yml").write_text(yaml.safe_dump(data))
        assert load_clinic_info(tmp_path).monthly_price == said
    for bad in ("cheap", -5, 0, True):
        (tmp_path / "clinic.yml").write_text(yaml.safe_dump(dict(base, monthly_price_usd=bad)))
        with pytest.raises(ValueError, match="monthly_price_usd"):
            load_clinic_info(tmp_path)


# --- the legal answer's dates --------------------------------------------------------------


def test_the_dea_telehealth_rule_the_legal_answer_relies_on_has_not_ended():
    """Fails once the temporary DEA telemedicine rules' end date (settings/clinic.yml) is past:
    the legal answer (utter_faq/legal_status) then says something that may no longer be true.
    Review it against the DEA's current rules (docs/CONTENT.md), then set both dates."""
    clinic = load_clinic_info(ROOT / "settings")
    today = dt.date.today()
    assert today <= clinic.dea_telehealth_rule_ends, (
        f"The DEA telehealth rule ended on {clinic.dea_telehealth_rule_ends}: review utter_faq/legal_status "
        "and utter_faq/at_home, then set dea_telehealth_rule_ends and legal_answer_reviewed in settings/clinic.yml"
    )
    assert clinic.legal_answer_reviewed <= today, "legal_answer_reviewed is a date in the future"


def test_the_legal_answer_quotes_both_dates_from_the_settings(rasa_domain):
    clinic = load_clinic_info(ROOT / "settings")
    text = rasa_renders(rasa_domain, "utter_faq/legal_status", FACTS)["text"]
    end, reviewed = clinic.dea_telehealth_rule_ends, clinic.legal_answer_reviewed
    assert f"{end.strftime('%B')} {end.day}, {end.year}" in text
    assert f"{reviewed.strftime('%B')} {reviewed.day}, {reviewed.year}" in text
    assert "temporary" in text and "can change" in text
    assert answers.opening_word(text) != "Yes"


def test_the_dates_must_be_dates(tmp_path):
    base = yaml.safe_load((ROOT / "settings" / "clinic.yml").read_text())
    for key in ("dea_telehealth_rule_ends", "legal_answer_reviewed"):
        (tmp_path / "clinic.yml").write_text(yaml.safe_dump(dict(base, **{key: "end of next year"})))
        with pytest.raises(ValueError, match=key):
            load_clinic_info(tmp_path)
        (tmp_path / "clinic.yml").write_text(yaml.safe_dump({k: v for k, v in base.items() if k != key}))
        with pytest.raises(ValueError, match=key):
            load_clinic_info(tmp_path)


# --- the facts the answers quote, set at session start ----------------------------------------


def test_session_start_sets_every_fact_the_answers_quote(clinic_env, monkeypatch):
    from actions.session import ActionSessionStart

    monkeypatch.setenv("RETENTION_DAYS", "90")
    get_settings.cache_clear()
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionSessionStart().run(dispatcher, tracker_with([]), {}))
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    clinic = load_clinic_info(ROOT / "settings")
    assert slots["retention_period"] == "90 days"
    assert slots["privacy_url"] == clinic.privacy_url
    assert slots["clinic_price"] == clinic.monthly_price
    assert slots["clinic_hours"] == describe_hours(load_staffing())
    assert slots["dea_rule_end"] == spoken_date(clinic.dea_telehealth_rule_ends)
    assert slots["legal_reviewed"] == spoken_date(clinic.legal_answer_reviewed)
    assert spoken_date(dt.date(2026, 12, 31)) == "December 31, 2026" and spoken_date(dt.date(2027, 1, 5)) == "January 5, 2027"
    declared = set(yaml.safe_load((ROOT / "domain" / "clinic_facts.yml").read_text())["slots"])
    assert set(slots) == declared  # every fact has its slot, every slot of the file is a fact
    quoted = {p for r in ALL_RESPONSES.values() for v in r.variations for p in answers.placeholders(v.text)}
    assert {p for p in quoted if p in declared} <= set(slots)


# --- privacy: said when the chat opens, from the settings -------------------------------------


def test_the_greeting_says_what_is_stored_for_how_long_who_reads_it_and_links_the_policy(rasa_domain):
    text = rasa_renders(rasa_domain, "utter_greet", {**FACTS, "retention_period": "365 days"})["text"]
    privacy = text.split("\n")[-1]
    assert "365 days" in privacy and "care team" in privacy and "flagged" in privacy and "safety" in privacy
    assert FACTS["privacy_url"] in privacy
    assert "{" not in text


# --- staffed hours: one place ----------------------------------------------------------------


def test_the_hours_the_assistant_quotes_are_the_live_chats_hours():
    clinic_yml = yaml.safe_load((ROOT / "settings" / "clinic.yml").read_text())
    assert "support_hours" not in clinic_yml  # no second copy to drift (it said 6 pm, the live chat closed at 5)
    staffing = load_staffing()
    assert FACTS["clinic_hours"] == get_settings().clinic.support_hours == describe_hours(staffing)
    assert FACTS["clinic_hours"] == "Monday to Friday, 9 am to 5 pm Eastern"


def test_support_hours_in_the_clinic_file_is_refused(tmp_path):
    base = yaml.safe_load((ROOT / "settings" / "clinic.yml").read_text())
    (tmp_path / "clinic.yml").write_text(yaml.safe_dump(dict(base, support_hours="9 to 6")))
    with pytest.raises(ValueError, match="staffing.yml"):
        load_clinic_info(tmp_path)


@pytest.mark.parametrize(
    "hours, zone, said",
    [
        ({d: ["09:00-17:00"] for d in ("monday", "tuesday", "wednesday", "thursday", "friday")}, "America/New_York",
         "Monday to Friday, 9 am to 5 pm Eastern"),
        ({"monday": ["08:30-12:00", "13:00-18:00"], "tuesday": ["08:30-12:00", "13:00-18:00"]}, "America/Chicago",
         "Monday and Tuesday, 8:30 am to noon and 1 pm to 6 pm Central"),
        ({"monday": ["09:00-17:00"], "wednesday": ["09:00-17:00"], "saturday": ["10:00-24:00"]}, "America/Los_Angeles",
         "Monday, 9 am to 5 pm, Wednesday, 9 am to 5 pm, and Saturday, 10 am to midnight Pacific"),
        ({}, "Europe/Dublin", "no staffed hours at the moment"),
        ({"sunday": ["12:00-13:00"]}, "Europe/Dublin", "Sunday, noon to 1 pm Europe/Dublin"),
    ],
)
def test_the_hours_in_words(hours, zone, said):
    assert describe_hours(parse_staffing({"time_zone": zone, "hours": hours})) == said


def test_a_change_of_the_staffing_file_changes_the_hours_quoted(tmp_path, monkeypatch):
    from actions import cached_settings

    path = tmp_path / "staffing.yml"
    path.write_text(yaml.safe_dump({"time_zone": "America/New_York", "hours": {"monday": ["09:00-17:00"]}}))
    monkeypatch.setenv("STAFFING_FILE", str(path))
    assert cached_settings.facts()["clinic_hours"] == "Monday, 9 am to 5 pm Eastern"
    path.write_text(yaml.safe_dump({"time_zone": "America/New_York", "hours": {"friday": ["10:00-14:00"]}}))
    import os

    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    assert cached_settings.facts()["clinic_hours"] == "Friday, 10 am to 2 pm Eastern"


# --- the content owner's guide ------------------------------------------------------------------


def test_the_content_guide_dates_the_review_of_every_topic():
    guide = (ROOT / "docs" / "CONTENT.md").read_text()
    for topic in TOPICS:
        row = re.search(rf"^\| `{topic}` \|.*\| (\d{{4}}-\d{{2}}-\d{{2}}) \|", guide, re.M)
        assert row, f"docs/CONTENT.md has no review row for {topic}"
        assert dt.date.fromisoformat(row.group(1)) <= dt.date.today()

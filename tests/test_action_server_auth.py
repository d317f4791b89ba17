"""The action server answers the Rasa server only (its secret on every call), and the referral
action makes a referral from the conversation the tracker store holds, never from slots posted to
it (issue 19, finding 3)."""

import os
from pathlib import Path
from typing import Any, Dict, List

import pytest
import requests
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from clinic.storage import db, referrals
from clinic.settings import get_settings
from tests import encrypted_db
from tests.stack import ROOT, conversation_id, say
from tests.stored_conversation import as_stored

ELIGIBLE = {
    "age": 30, "state": "TX", "concern": "depression", "treatments_tried": "medication",
    "phq2_interest": 2, "phq2_mood": 2, "gad2_nervous": 1, "gad2_worry": 1,
    "suicidal_thoughts": "no", "pregnant_or_breastfeeding": "no", "psychosis_history": "no",
    "cardiovascular": "no", "substance_misuse": "no", "support_person": "yes",
}
CONTACT = {"contact_name": "Mallory Forge", "contact_email": "mallory@example.com", "contact_phone": "+1 212-555-0100",
           "contact_time": "Mornings", "contact_consent": "yes"}


def call(sender: str, slots: Dict[str, Any], events: List[Dict[str, Any]]) -> Dict[str, Any]:
    """What the Rasa server posts to run ``action_submit_referral``."""
    return {
        "next_action": "action_submit_referral", "sender_id": sender, "version": "3.6.21", "domain": {},
        "tracker": {"sender_id": sender, "slots": slots, "latest_message": {"text": "yes", "intent": {"name": "affirm"}},
                    "events": events, "paused": False, "followup_action": None, "active_loop": {},
                    "latest_action_name": "action_listen"},
    }


def stack_referrals(stack: Any, sender: str) -> int:
    """The referrals the stack's clinic DB holds for a conversation (its file, its key)."""
    if not (stack.var_dir / "clinic.db").exists():
        return 0
    with encrypted_db.connect(stack.var_dir / "clinic.db") as conn:
        return conn.execute("SELECT count(*) FROM referrals WHERE conversation_id = ?", (sender,)).fetchone()[0]


def webhook(stack: Any) -> str:
    return f"http://127.0.0.1:{stack.actions_port}/webhook"


def test_the_rasa_endpoint_sends_the_secret_from_the_launcher() -> None:
    for name in ("endpoints.yml", "endpoints.scale.yml"):
        endpoint = yaml.safe_load((ROOT / name).read_text())["action_endpoint"]
        assert endpoint["headers"] == {"Authorization": "Bearer ${ACTION_SERVER_TOKEN}"}, name
        assert "token" not in endpoint  # never in a query string (access logs, proxies)


def test_a_call_without_the_secret_or_with_a_wrong_one_is_refused_and_runs_nothing(stack: Any) -> None:
    s = requests.Session()
    assert say(s, stack, "hello").status_code == 200
    sender = conversation_id(s, stack)
    body = call(sender, dict(ELIGIBLE, **CONTACT), [])
    wrong = "Bearer " + "0" * len(stack.action_token)
    for headers in ({}, {"Authorization": wrong}, {"Authorization": stack.action_token},
                    {"Authorization": "Bearer "}, {"Authorization": "Basic " + stack.action_token}):
        answer = requests.post(webhook(stack), json=body, headers=headers, timeout=10)
        assert answer.status_code == 401, headers
        assert "events" not in answer.json()
    assert requests.get(f"http://127.0.0.1:{stack.actions_port}/actions", timeout=10).status_code == 401
    assert requests.get(f"http://127.0.0.1:{stack.actions_port}/health", timeout=10).status_code == 200
    assert stack_referrals(stack, sender) == 0


def test_a_forged_tracker_with_the_secret_makes_no_referral(stack: Any) -> None:
    """Even a caller that has the secret cannot have a referral made from slots it posts: the action
    reads the conversation the tracker store holds (here a greeting, no pre-screen)."""
    s = requests.Session()
    assert say(s, stack, "hello").status_code == 200
    sender = conversation_id(s, stack)
    auth = {"Authorization": f"Bearer {stack.action_token}"}
    answer = requests.post(webhook(stack), json=call(sender, dict(ELIGIBLE, **CONTACT), []), headers=auth, timeout=10)
    assert answer.status_code == 200
    assert [r.get("response") for r in answer.json()["responses"]] == ["utter_referral_not_stored"]
    assert answer.json()["events"] == []
    assert stack_referrals(stack, sender) == 0


def test_the_secret_is_on_no_command_line(stack: Any) -> None:
    token = stack.action_token.encode()
    for name, proc in stack.procs.items():
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert token not in cmdline, name
    assert oct((stack.var_dir / "action_token").stat().st_mode & 0o777) == "0o600"


def run(tracker: Tracker) -> tuple:
    import asyncio

    from actions.referral import ActionSubmitReferral

    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionSubmitReferral().run(dispatcher, tracker, {}))
    return events, [m.get("response") for m in dispatcher.messages]


def posted(slots: Dict[str, Any], sender: str = "f0" * 16) -> Tracker:
    return Tracker(sender, slots, {"text": "yes", "intent": {"name": "affirm"}}, [], False, None, {}, "action_listen")


@pytest.fixture
def no_notices(monkeypatch: pytest.MonkeyPatch) -> None:
    import actions.referral as referral_actions

    monkeypatch.setattr(referral_actions.notifier, "notify_referral", lambda *_: True)


def test_the_referral_takes_the_stored_answers_not_the_posted_ones(clinic_env: Path, no_notices: None) -> None:
    """The stored pre-screen said pregnant (not eligible); the call says eligible: no referral."""
    stored = dict(ELIGIBLE, **CONTACT, pregnant_or_breastfeeding="yes")
    tracker = as_stored(posted(dict(ELIGIBLE, **CONTACT)), stored_slots=stored)
    events, responses = run(tracker)
    assert (events, responses) == ([], ["utter_referral_not_stored"])
    assert referrals.referral_for_conversation(db.get_engine(get_settings().clinic_db_url), tracker.sender_id) is None


def test_posted_events_that_differ_from_the_stored_ones_make_no_referral(clinic_env: Path, no_notices: None) -> None:
    tracker = as_stored(posted(dict(ELIGIBLE, **CONTACT)))
    slot = next(e for e in tracker.events if e.get("name") == "age")
    slot["value"] = 45  # an answer changed in what was posted
    assert run(tracker) == ([], ["utter_referral_not_stored"])
    assert referrals.referral_for_conversation(db.get_engine(get_settings().clinic_db_url), tracker.sender_id) is None


def test_the_stored_conversation_makes_the_referral_with_the_stored_contact(clinic_env: Path, no_notices: None) -> None:
    """The posted slots claim other contact details and a crisis flag: the stored ones are used."""
    tracker = as_stored(posted(dict(ELIGIBLE, **CONTACT)))
    tracker.slots.update(contact_email="someone.else@example.com", crisis_flagged=True, age=70)
    events, responses = run(tracker)
    assert responses == ["utter_referral_done"]
    settings = get_settings()
    row = referrals.referral_for_conversation(db.get_engine(settings.clinic_db_url), tracker.sender_id)
    plain = referrals.decrypt_referral(row, settings.encryption_key)
    assert plain["contact"]["email"] == "mallory@example.com"
    assert plain["answers"]["age"] == 30 and plain["urgent"] is False and plain["outcome"] == "eligible"


def test_the_secret_is_made_once_and_a_short_one_is_refused(clinic_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from clinic.settings import load_action_token

    monkeypatch.delenv("ACTION_SERVER_TOKEN", raising=False)
    var = clinic_env / "var"
    first = load_action_token(var)
    assert len(first) >= 32 and load_action_token(var) == first
    assert oct((var / "action_token").stat().st_mode & 0o777) == "0o600"
    monkeypatch.setenv("ACTION_SERVER_TOKEN", "short")
    with pytest.raises(ValueError, match="at least 16"):
        load_action_token(var)
    assert os.environ["ACTION_SERVER_TOKEN"] == "short"

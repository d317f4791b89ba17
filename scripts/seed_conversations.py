"""Generate conversations into a tracker store, the way Rasa 3.6's SQLTrackerStore stores them.

    python scripts/seed_conversations.py N --tracker-db sqlite:///var/tracker.db
        [--days 90] [--seed 1] [--clinic-db sqlite:///var/clinic.db]

Writes N conversations (table ``events``: id, sender_id, type_name, timestamp,
intent_name, action_name, data as JSON text) spread over the last ``--days``
days, with a realistic mix: FAQ questions, NLU fallbacks, handoff requests,
crises, and pre-screens ending in each outcome (referred, clinician review, not
eligible, out of area with the waitlist, crisis, stopped). Visitor questions and
bot answers come from the project's own training data and responses.

With ``--clinic-db`` the clinic DB gets what the actions would have written
beside those events: handoff requests, crisis flags, referrals and waitlist
entries (contact details made up, encrypted with the clinic's key).

Used by the console's tests and by ``scripts/bench_console.py``: ``generate()``
yields each conversation with a manifest of what it holds (kind, outcome, flags,
visitor text), so tests know the truth without reading the index.
"""

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, create_engine, event  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from clinic.rules import eligibility  # noqa: E402
from clinic.settings import get_settings, public_facts  # noqa: E402

MODEL_ID = "5e1d7c0e9a3b4f6d8c2a1b0e9f8d7c6b"
ASSISTANT_ID = "clinic-assistant"
META = {"model_id": MODEL_ID, "assistant_id": ASSISTANT_ID}
META_JSON = json.dumps(META)

# Rasa 3.6's SQLTrackerStore table, as it creates it.
tracker_metadata = MetaData()
events_table = Table(
    "events",
    tracker_metadata,
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255), nullable=False, index=True),
    Column("type_name", String(255), nullable=False),
    Column("timestamp", Float),
    Column("intent_name", String(255)),
    Column("action_name", String(255)),
    Column("data", Text),
)

INTENTS = (
    "faq", "greet", "goodbye", "affirm", "deny", "thank", "inform", "stop", "start_prescreen",
    "human_handoff", "crisis", "medical_advice", "bot_challenge", "out_of_scope",
)
# The answers' placeholders filled as action_session_start fills them, from settings/; the
# seeded sessions set the first seven as slots (as many events as before, the same timings).
FILLED = {name: value for name, value in public_facts(get_settings()).items() if value is not None}
FACTS = {
    name: FILLED[name]
    for name in ("clinic_name", "clinic_phone", "clinic_email", "clinic_website", "clinic_hours", "clinic_states", "min_age")
}
STATES_SERVED = ("CA", "CO", "FL", "NY", "TX", "WA")
STATES_NOT_SERVED = ("OR", "NV", "AZ", "GA", "OH", "MA", "IL", "MI")
FREQUENCY = (("Not at all", 0), ("Several days", 1), ("More than half the days", 2), ("Nearly every day", 3))
FIRST_NAMES = ("Jane", "Alex", "Sam", "Maria", "Chris", "Priya", "Tom", "Lena", "Omar", "Kate")
LAST_NAMES = ("Doe", "Rivera", "Smith", "Nguyen", "Patel", "Brown", "Garcia", "Kim", "Lopez", "Clark")
QUESTIONS = eligibility.QUESTIONS
CONTACT_SLOTS = ("contact_name", "contact_email", "contact_phone", "contact_time", "contact_consent")
WAITLIST_SLOTS = ("waitlist_email", "waitlist_consent")

# The mix of conversations (kind, weight).
MIX: Tuple[Tuple[str, float], ...] = (
    ("faq", 36),
    ("faq_fallback", 12),
    ("bounce", 8),
    ("handoff", 8),
    ("crisis", 3),
    ("prescreen_referred", 9),
    ("prescreen_review_referred", 5),
    ("prescreen_declined", 2),
    ("prescreen_not_eligible", 6),
    ("prescreen_out_of_area", 5),
    ("prescreen_crisis", 1),
    ("prescreen_stopped", 3),
    ("default_fallback", 2),
)


class _Text:
    """The project's training examples and responses (loaded once)."""

    def __init__(self) -> None:
        self.examples: Dict[str, List[str]] = {}
        self.responses: Dict[str, str] = {}
        self.buttons: Dict[str, Any] = {}
        for path in sorted((ROOT / "data").rglob("*.yml")) + sorted((ROOT / "domain").glob("*.yml")):
            try:
                doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError):
                continue
            for block in doc.get("nlu") or []:
                if isinstance(block, dict) and "intent" in block and isinstance(block.get("examples"), str):
                    lines = [ln.strip()[2:].strip() for ln in block["examples"].splitlines() if ln.strip().startswith("- ")]
                    self.examples.setdefault(block["intent"], []).extend(x for x in lines if "[" not in x)
            for name, variants in (doc.get("responses") or {}).items():
                if variants and isinstance(variants, list) and isinstance(variants[0], dict):
                    self.responses[name] = _fill(str(variants[0].get("text") or ""))
                    self.buttons[name] = variants[0].get("buttons")
        self.faq_topics = sorted(k.split("/", 1)[1] for k in self.examples if k.startswith("faq/"))
        if not self.faq_topics:  # the project's data is missing: a small stand-in
            self.faq_topics = ["pricing", "safety", "side_effects"]
            for topic in self.faq_topics:
                self.examples[f"faq/{topic}"] = [f"tell me about {topic.replace('_', ' ')}"]

    def example(self, rng: random.Random, intent: str, fallback: str) -> str:
        pool = self.examples.get(intent)
        return rng.choice(pool) if pool else fallback

    def response(self, name: str) -> str:
        return self.responses.get(name) or name.replace("utter_", "").replace("_", " ").capitalize() + "."


class _Defaults(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fill(text: str) -> str:
    return text.format_map(_Defaults(FILLED)) if "{" in text else text


_TEXT: Optional[_Text] = None


def project_text() -> _Text:
    global _TEXT
    if _TEXT is None:
        _TEXT = _Text()
    return _TEXT


# --- one conversation ------------------------------------------------------------


@dataclass
class Manifest:
    """What a generated conversation holds (the truth the console's tests check against)."""

    sender_id: str
    kind: str
    first_ts: float = 0.0
    last_ts: float = 0.0
    outcome: Optional[str] = None
    referral_reference: Optional[str] = None
    crisis: bool = False
    handoff: bool = False
    fallback: bool = False
    prescreen: bool = False
    visitor_texts: List[str] = field(default_factory=list)
    faq_topics: List[str] = field(default_factory=list)
    answers: Dict[str, Any] = field(default_factory=dict)
    contact: Dict[str, Any] = field(default_factory=dict)
    state: Optional[str] = None
    events: int = 0


Row = Tuple[str, str, float, Optional[str], Optional[str], str]  # sender, type, ts, intent, action, data


class Conversation:
    """Builds one conversation's events in Rasa's order (and its manifest)."""

    def __init__(self, sender_id: str, start_ts: float, rng: random.Random, kind: str = "custom") -> None:
        self.rng = rng
        self.ts = start_ts
        self.rows: List[Row] = []
        self.m = Manifest(sender_id=sender_id, kind=kind, first_ts=start_ts)
        self.form: Optional[str] = None

    # low level -----------------------------------------------------------------
    def _tick(self, lo: float = 0.0002, hi: float = 0.004) -> float:
        self.ts += self.rng.uniform(lo, hi)
        return self.ts

    def think(self, lo: float = 4.0, hi: float = 40.0) -> None:
        """The visitor reads and types."""
        self.ts += self.rng.uniform(lo, hi)

    def _add(self, type_name: str, ts: float, intent: Optional[str], action: Optional[str], data: str) -> None:
        if not self.rows:
            self.m.first_ts = ts
        self.rows.append((self.m.sender_id, type_name, ts, intent, action, data))
        self.m.last_ts = ts

    def _mid(self) -> str:
        return "%032x" % self.rng.getrandbits(128)

    def action(self, name: str, policy: Optional[str] = "RulePolicy", confidence: Optional[float] = 1.0) -> "Conversation":
        ts = self._tick()
        data = (
            f'{{"event": "action", "timestamp": {ts!r}, "metadata": {META_JSON}, "name": {json.dumps(name)}, '
            f'"policy": {json.dumps(policy)}, "confidence": {json.dumps(confidence)}, "action_text": null, '
            f'"hide_rule_turn": {"true" if policy == "RulePolicy" else "false"}}}'
        )
        self._add("action", ts, None, name, data)
        if name in ("action_human_handoff",):
            self.m.handoff = True
        if name in ("action_crisis_response",):
            self.m.crisis = True
        if name in ("utter_fallback", "action_default_fallback"):
            self.m.fallback = True
        return self

    def listen(self) -> "Conversation":
        return self.action("action_listen")

    def slot(self, name: str, value: Any) -> "Conversation":
        ts = self._tick(0.000002, 0.00002)
        data = f'{{"event": "slot", "timestamp": {ts!r}, "metadata": {META_JSON}, "name": {json.dumps(name)}, "value": {json.dumps(value)}}}'
        self._add("slot", ts, None, name, data)
        if name == "prescreen_outcome" and value is not None:
            self.m.outcome = value
            if value == "crisis":
                self.m.crisis = True
        if name == "referral_reference" and value:
            self.m.referral_reference = value
        if name == "crisis_flagged" and value:
            self.m.crisis = True
        return self

    def loop(self, name: Optional[str]) -> "Conversation":
        ts = self._tick(0.000002, 0.00002)
        data = f'{{"event": "active_loop", "timestamp": {ts!r}, "metadata": {META_JSON}, "name": {json.dumps(name)}}}'
        self._add("active_loop", ts, None, name, data)
        self.form = name
        if name == "prescreen_form":
            self.m.prescreen = True
        return self

    def bot(self, utter: str, text: Optional[str] = None, extra_meta: Optional[Dict[str, Any]] = None) -> "Conversation":
        ts = self._tick(0.000002, 0.00004)
        texts = project_text()
        meta = {"utter_action": utter, **(extra_meta or {}), **META}
        body = {
            "elements": None, "quick_replies": None, "buttons": texts.buttons.get(utter),
            "attachment": None, "image": None, "custom": None,
        }
        data = (
            f'{{"event": "bot", "timestamp": {ts!r}, "metadata": {json.dumps(meta)}, '
            f'"text": {json.dumps(text if text is not None else texts.response(utter))}, "data": {json.dumps(body)}}}'
        )
        self._add("bot", ts, None, None, data)
        return self

    def user(
        self,
        text: str,
        intent: str,
        confidence: float = 0.99,
        topic: Optional[str] = None,
        display: Optional[str] = None,
        raw_slot: Optional[str] = None,
    ) -> "Conversation":
        """A visitor message (``display``: the title of the button pressed, ``text`` its payload;
        ``raw_slot``: a form's slot that the text fills before validation, as Rasa sets it)."""
        self.think()
        ts = self.ts
        mid = self._mid()
        meta = dict(META)
        if display:
            meta = {"display": display, **META}
        if text.startswith("/"):
            parse = {
                "intent": {"name": intent, "confidence": 1.0}, "entities": [], "text": text, "message_id": mid,
                "metadata": {"display": display} if display else {}, "intent_ranking": [{"name": intent, "confidence": 1.0}],
            }
            parse_json = json.dumps(parse)
        else:
            parse_json = _parse_data_json(self.rng, text, intent, confidence, topic, mid)
        data = (
            f'{{"event": "user", "timestamp": {ts!r}, "metadata": {json.dumps(meta)}, "text": {json.dumps(text)}, '
            f'"parse_data": {parse_json}, "input_channel": "rest", "message_id": "{mid}"}}'
        )
        self._add("user", ts, intent, None, data)
        if not text.startswith("/"):
            self.m.visitor_texts.append(text)
        if intent == "nlu_fallback":
            self.m.fallback = True
        if topic:
            self.m.faq_topics.append(topic)
        if raw_slot:
            self.slot(raw_slot, display or text)
        uts = self._tick(0.01, 0.09)
        self._add(
            "user_featurization", uts, None, None,
            f'{{"event": "user_featurization", "timestamp": {uts!r}, "metadata": {META_JSON}, "use_text_for_featurization": false}}',
        )
        return self

    # turns ---------------------------------------------------------------------
    def session_start(self) -> "Conversation":
        self.action("action_session_start", policy=None, confidence=1.0)
        ts = self._tick(0.000002, 0.00002)
        self._add("session_started", ts, None, None, f'{{"event": "session_started", "timestamp": {ts!r}, "metadata": {META_JSON}}}')
        for name, value in FACTS.items():
            self.slot(name, value)
        self.action("action_listen", policy=None, confidence=None)
        return self

    def greet(self) -> "Conversation":
        text = project_text().example(self.rng, "greet", "hello")
        return self.user(text, "greet", 0.998).action("utter_greet").bot("utter_greet").listen()

    def faq(self, topic: Optional[str] = None, text: Optional[str] = None) -> "Conversation":
        texts = project_text()
        topic = topic or self.rng.choice(texts.faq_topics)
        text = text or texts.example(self.rng, f"faq/{topic}", f"tell me about {topic}")
        self.user(text, "faq", self.rng.uniform(0.82, 0.99999), topic=f"faq/{topic}")
        self.action("utter_faq", policy="RulePolicy").bot(f"utter_faq/{topic}", texts.response(f"utter_faq/{topic}"))
        return self.listen()

    def nlu_fallback(self, text: Optional[str] = None) -> "Conversation":
        texts = project_text()
        text = text or texts.example(self.rng, "out_of_scope", "qwzx plorf")
        self.user(text, "nlu_fallback", 0.45)
        return self.action("utter_fallback").bot("utter_fallback").listen()

    def default_fallback(self) -> "Conversation":
        self.user("hmm what about the other thing then", "inform", 0.41)
        self.action("action_default_fallback", policy="RulePolicy", confidence=0.3).bot("utter_default")
        return self.listen()

    def handoff(self, button: bool = False) -> "Conversation":
        if button:
            self.user("/human_handoff", "human_handoff", display="Talk to a person")
        else:
            self.user(project_text().example(self.rng, "human_handoff", "can i talk to a person"), "human_handoff", 0.99)
        return self.action("action_human_handoff").bot("utter_handoff_consent").listen()

    def crisis(self, wants_person: bool) -> "Conversation":
        self.user(project_text().example(self.rng, "crisis", "i can't go on"), "crisis", 0.999)
        self._crisis_response()
        self.listen()
        if wants_person:
            self.user("/affirm", "affirm", display="Yes, please")
            self.action("action_human_handoff").bot("utter_handoff_consent").listen()
        else:
            self.user("/deny", "deny", display="No, thanks")
            self.action("utter_crisis_declined").bot("utter_crisis_declined").listen()
        return self

    def _crisis_response(self) -> None:
        self.action("action_crisis_response")
        self.bot("utter_crisis_resources", extra_meta={"template": "utter_crisis_resources"})
        self.bot("utter_crisis_offer_person", extra_meta={"template": "utter_crisis_offer_person"})
        self.slot("crisis_flagged", True)
        if self.form:
            self.loop(None).slot("requested_slot", None)

    # the pre-screen ----------------------------------------------------------
    def start_prescreen(self) -> "Conversation":
        if self.rng.random() < 0.5:
            self.user("/start_prescreen", "start_prescreen", display="Am I eligible?")
        else:
            self.user(project_text().example(self.rng, "start_prescreen", "am i eligible"), "start_prescreen", 0.998)
        self.action("utter_prescreen_intro").bot("utter_prescreen_intro").listen()
        self.user("/affirm", "affirm", display="Yes, let's start")
        self.action("prescreen_form").loop("prescreen_form").slot("requested_slot", QUESTIONS[0])
        return self.bot(f"utter_ask_{QUESTIONS[0]}").listen()

    def answer(self, form: str, slot: str, typed: str, value: Any, next_slot: Optional[str], intent: str = "inform",
               display: Optional[str] = None) -> "Conversation":
        self.user(typed, intent, self.rng.uniform(0.9, 0.9999), display=display, raw_slot=slot)
        self.action(form).slot(slot, value).slot("prescreen_misses", 0)
        if slot in QUESTIONS:
            self.m.answers[slot] = value
        elif slot in CONTACT_SLOTS or slot in WAITLIST_SLOTS:
            self.m.contact[slot] = value
        if next_slot:
            self.slot("requested_slot", next_slot).bot(f"utter_ask_{next_slot}").listen()
        else:
            self.slot("requested_slot", None).slot("requested_slot", None).loop(None)
        return self

    def prescreen(self, kind: str) -> "Conversation":
        rng = self.rng
        self.start_prescreen()
        under_age = kind == "prescreen_not_eligible" and rng.random() < 0.4
        age = rng.randint(15, 17) if under_age else rng.randint(19, 72)
        plan: List[Tuple[str, str, Any, Optional[str]]] = []  # slot, typed, value, display
        plan.append(("age", rng.choice([str(age), f"i'm {age}", f"{age} years old"]), age, None))
        if under_age:
            return self._finish_answers(plan, "not_eligible")
        state = rng.choice(STATES_NOT_SERVED if kind == "prescreen_out_of_area" else STATES_SERVED)
        self.m.state = state
        plan.append(("state", state, state, None))
        if kind == "prescreen_out_of_area":
            return self._finish_answers(plan, "out_of_area")
        concern = rng.choice(["Depression", "Anxiety", "PTSD"])
        plan.append(("concern", concern, concern.lower(), concern))
        treatments = "None" if kind == "prescreen_review_referred" and rng.random() < 0.5 else rng.choice(["Medication", "Therapy", "Both"])
        plan.append(("treatments_tried", treatments, treatments.lower(), treatments))
        for item in ("phq2_interest", "phq2_mood", "gad2_nervous", "gad2_worry"):
            title, score = rng.choice(FREQUENCY[1:])
            plan.append((item, title, score, f"{score} · {title}"))  # the button shows the option's number
        if kind == "prescreen_stopped":
            cut = rng.randint(2, len(plan) - 1)
            self._answers(plan[:cut], last_next=plan[cut][0])
            self.user("stop", "stop", 0.99)
            self.action("action_prescreen_stop").bot("utter_prescreen_stopped")
            self.loop(None).slot("requested_slot", None).slot("prescreen_outcome", None)
            self._reset()
            return self.listen()
        # thoughts of ending one's life: a plan for a crisis; passive thoughts for some clinician reviews
        suicidal = "Yes" if kind == "prescreen_crisis" else ("Not sure" if kind == "prescreen_review_referred" and rng.random() < 0.5 else "No")
        plan.append(("suicidal_thoughts", suicidal, {"Yes": "yes", "No": "no", "Not sure": "unsure"}[suicidal], suicidal))
        if suicidal != "No":
            plan.append(("suicide_plan", "Yes" if kind == "prescreen_crisis" else "No",
                         "yes" if kind == "prescreen_crisis" else "no", None))
        if kind == "prescreen_crisis":
            return self._finish_answers(plan, "crisis")
        if suicidal != "No":
            plan.append(("suicide_attempt", "No", "no", None))
        exclude = kind == "prescreen_not_eligible"
        bad = rng.choice(["pregnant_or_breastfeeding", "psychosis_history", "substance_use"]) if exclude else None
        for item in ("pregnant_or_breastfeeding", "psychosis_history", "cardiovascular", "medications", "medical_conditions"):
            yes = item == bad
            plan.append((item, "Yes" if yes else "No", "yes" if yes else "no", "Yes" if yes else "No"))
        current = bad == "substance_use"
        plan.append(("substance_use", "Yes, still now" if current else "No", "current" if current else "no",
                     "Yes, still now" if current else "No"))
        plan.append(("support_person", "Yes", "yes", "Yes"))
        outcome = {
            "prescreen_referred": "eligible", "prescreen_declined": rng.choice(["eligible", "clinician_review"]),
            "prescreen_review_referred": "clinician_review", "prescreen_not_eligible": "not_eligible",
            "prescreen_crisis": "crisis",
        }[kind]
        return self._finish_answers(plan, outcome, consent=kind != "prescreen_declined")

    def _answers(self, plan: Sequence[Tuple[str, str, Any, Optional[str]]], last_next: Optional[str] = None) -> None:
        for i, (slot, typed, value, display) in enumerate(plan):
            next_slot = plan[i + 1][0] if i + 1 < len(plan) else last_next
            if display:
                self.answer("prescreen_form", slot, display, value, next_slot, intent="inform", display=None)
            else:
                self.answer("prescreen_form", slot, typed, value, next_slot)

    def _finish_answers(self, plan: List[Tuple[str, str, Any, Optional[str]]], outcome: str, consent: bool = True) -> "Conversation":
        self._answers(plan)
        self.action("action_prescreen_outcome", policy="RulePolicy")
        if outcome == "crisis":  # the answers stay: the pre-screen started again ends there again
            self.slot("prescreen_outcome", "crisis")
            self.bot("utter_prescreen_safety_first")
            self._crisis_response()
            return self.listen()
        self.bot(f"utter_prescreen_{outcome}")
        self.slot("prescreen_outcome", outcome)
        if outcome == "not_eligible":
            self._reset()
            return self.listen()
        if outcome == "out_of_area":
            self.action("waitlist_form").loop("waitlist_form").slot("requested_slot", "waitlist_email")
            self.bot("utter_ask_waitlist_email").listen()
            email = self._email()
            self.answer("waitlist_form", "waitlist_email", email, email, "waitlist_consent")
            self.answer("waitlist_form", "waitlist_consent", "Yes", "yes", None)
            self.action("action_join_waitlist").bot("utter_waitlist_joined")
            self._reset()
            return self.listen()
        self.action("contact_form").loop("contact_form").slot("requested_slot", "contact_name")
        self.bot("utter_ask_contact_name").listen()
        name = f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"
        email = self._email(name)
        phone = f"(555) {self.rng.randint(100, 999)}-{self.rng.randint(1000, 9999)}"
        self.answer("contact_form", "contact_name", name, name, "contact_email")
        self.answer("contact_form", "contact_email", email, email, "contact_phone")
        self.answer("contact_form", "contact_phone", phone, phone, "contact_time")
        self.answer("contact_form", "contact_time", "Mornings", "mornings", "contact_consent")
        self.answer("contact_form", "contact_consent", "Yes" if consent else "No", "yes" if consent else "no", None)
        if not consent:
            self.action("action_submit_referral").bot("utter_referral_no_consent")
            self._reset()
            return self.listen()
        self.action("action_submit_referral").bot("utter_referral_done")
        self.slot("referral_reference", self.reference)
        self._reset()
        return self.listen()

    reference: Optional[str] = None

    def _email(self, name: Optional[str] = None) -> str:
        local = (name or f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}").lower().replace(" ", ".")
        return f"{local}{self.rng.randint(1, 99)}@example.com"

    def _reset(self) -> None:
        for slot in QUESTIONS + CONTACT_SLOTS + WAITLIST_SLOTS:
            self.slot(slot, None)
        self.slot("prescreen_misses", 0)

    def done(self) -> Tuple[List[Row], Manifest]:
        self.m.events = len(self.rows)
        return self.rows, self.m


# parse_data: the parts that do not change from one message to the next are serialised once.
_RANKING_CACHE: Dict[Tuple[str, Optional[str]], Tuple[str, str]] = {}


def _parse_data_json(rng: random.Random, text: str, intent: str, confidence: float, topic: Optional[str], mid: str) -> str:
    key = (intent, topic)
    cached = _RANKING_CACHE.get(key)
    if cached is None:
        others = [i for i in INTENTS if i != intent][:9]
        rest = [{"name": name, "confidence": round((1 - confidence) / (n + 2), 12)} for n, name in enumerate(others)]
        texts = project_text()
        chosen = topic or f"faq/{texts.faq_topics[hash(intent) % len(texts.faq_topics)]}"
        ranking = [{"confidence": 0.9, "intent_response_key": chosen}] + [
            {"confidence": round(0.1 / (n + 2), 12), "intent_response_key": f"faq/{t}"}
            for n, t in enumerate([t for t in texts.faq_topics if f"faq/{t}" != chosen][:9])
        ]
        selector = {
            "all_retrieval_intents": ["faq"],
            "faq": {
                "response": {
                    "responses": [{"text": texts.responses.get(f"utter_{chosen}", "")}],
                    "confidence": 0.9, "intent_response_key": chosen, "utter_action": f"utter_{chosen}",
                },
                "ranking": ranking,
            },
        }
        cached = (json.dumps(rest), json.dumps(selector))
        _RANKING_CACHE[key] = cached
    rest_json, selector_json = cached
    intent_obj: Dict[str, Any] = {"name": intent, "confidence": confidence}
    if topic:
        intent_obj["full_retrieval_intent_name"] = topic
    intent_json = json.dumps(intent_obj)
    tokens, pos = [], 0
    for word in text.split(" "):
        if word:
            tokens.append([pos, pos + len(word)])
        pos += len(word) + 1
    return (
        f'{{"intent": {intent_json}, "entities": [], "text": {json.dumps(text)}, "message_id": "{mid}", "metadata": {{}}, '
        f'"text_tokens": {json.dumps(tokens)}, "intent_ranking": [{intent_json}, {rest_json[1:]}, '
        f'"response_selector": {selector_json}}}'
    )


def build(kind: str, sender_id: str, start_ts: float, rng: random.Random, reference: Optional[str] = None) -> Conversation:
    """One conversation of ``kind`` (see MIX) starting at ``start_ts``."""
    c = Conversation(sender_id, start_ts, rng, kind)
    c.reference = reference
    c.session_start()
    if kind != "bounce" and rng.random() < 0.6:
        c.greet()
    if kind == "bounce":
        c.greet() if rng.random() < 0.5 else c.faq()
    elif kind == "faq":
        for _ in range(rng.randint(1, 4)):
            c.faq()
    elif kind == "faq_fallback":
        c.faq()
        c.nlu_fallback()
        if rng.random() < 0.5:
            c.faq()
    elif kind == "default_fallback":
        c.faq()
        c.default_fallback()
    elif kind == "handoff":
        if rng.random() < 0.7:
            c.faq()
        c.handoff(button=rng.random() < 0.4)
    elif kind == "crisis":
        if rng.random() < 0.5:
            c.faq()
        c.crisis(wants_person=rng.random() < 0.5)
    elif kind.startswith("prescreen_"):
        if rng.random() < 0.4:
            c.faq()
        c.prescreen(kind)
    else:
        raise ValueError(kind)
    if rng.random() < 0.3 and kind not in ("crisis", "prescreen_crisis"):
        c.user(project_text().example(rng, "thank", "thanks"), "thank", 0.99).action("utter_anything_else")
        c.bot("utter_anything_else").listen()
    return c


def generate(
    n: int, seed: int = 1, days: float = 90.0, now: Optional[float] = None, kinds: Optional[Sequence[str]] = None,
) -> Iterator[Tuple[List[Row], Manifest]]:
    """``n`` conversations (rows, manifest), oldest first, starting within the last ``days`` days."""
    rng = random.Random(seed)
    now = time.time() if now is None else now
    names = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    starts = sorted(now - rng.uniform(600.0, days * 86400.0) for _ in range(n))
    taken: set = set()
    for i, start in enumerate(starts):
        kind = kinds[i % len(kinds)] if kinds else rng.choices(names, weights)[0]
        sender = "%032x" % rng.getrandbits(128)
        reference = None
        if kind in ("prescreen_referred", "prescreen_review_referred"):
            reference = _reference(rng, taken)
        yield build(kind, sender, start, rng, reference).done()


def _reference(rng: random.Random, taken: set) -> str:
    alphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
    while True:
        chars = "".join(rng.choice(alphabet) for _ in range(6))
        code = f"{chars[:3]}-{chars[3:]}"
        if code not in taken:
            taken.add(code)
            return code


# --- writing ------------------------------------------------------------------


def tracker_engine(url: str) -> Engine:
    """A writable engine on a tracker store (tables created as Rasa creates them)."""
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        from clinic.storage import encrypted_sqlite  # the project's SQLite files are SQLCipher files

        engine = encrypted_sqlite.create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=OFF")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
    else:
        engine = create_engine(url)
    tracker_metadata.create_all(engine)
    return engine


def write_events(engine: Engine, rows: Iterable[Row], batch: int = 20000) -> int:
    """Insert rows (in order: ids grow with them) in batches; returns how many."""
    count = 0
    chunk: List[Row] = []
    sql = "INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data) VALUES (?, ?, ?, ?, ?, ?)"

    def flush() -> None:
        if not chunk:
            return
        if engine.dialect.name == "sqlite":
            raw = engine.raw_connection()
            try:
                raw.cursor().executemany(sql, chunk)
                raw.commit()
            finally:
                raw.close()
        else:
            keys = ("sender_id", "type_name", "timestamp", "intent_name", "action_name", "data")
            with engine.begin() as conn:
                conn.execute(events_table.insert(), [dict(zip(keys, r)) for r in chunk])
        chunk.clear()

    for row in rows:
        chunk.append(row)
        count += 1
        if len(chunk) >= batch:
            flush()
    flush()
    return count


def write_clinic_rows(clinic_url: str, manifests: Sequence[Manifest]) -> Dict[str, int]:
    """What the actions write beside the events: handoff requests, flags, referrals, waitlist."""
    import datetime as dt

    from clinic.storage import db
    from clinic.storage.crypto import encrypt_json
    from clinic.settings import get_settings

    engine = db.get_engine(clinic_url)
    key = get_settings().encryption_key
    counts = {"handoff_requests": 0, "conversation_flags": 0, "referrals": 0, "waitlist": 0}

    def at(ts: float) -> dt.datetime:
        return dt.datetime.utcfromtimestamp(ts)

    handoffs, flags, refs, waits = [], [], [], []
    for m in manifests:
        when = at(m.last_ts)
        if m.crisis:
            flags.append({"conversation_id": m.sender_id, "flag": "crisis", "created_at": when, "reviewed": False})
        if m.handoff:
            handoffs.append({"conversation_id": m.sender_id, "reason": "crisis" if m.crisis else "visitor_request",
                             "urgent": m.crisis, "status": "new", "created_at": when})
        if m.referral_reference:
            contact = {k.replace("contact_", ""): v for k, v in m.contact.items()}
            refs.append({
                "reference": m.referral_reference, "conversation_id": m.sender_id, "outcome": m.outcome or "eligible",
                "urgent": False, "status": "new", "contact_encrypted": encrypt_json(key, contact),
                "answers_encrypted": encrypt_json(key, {"answers": m.answers, "reasons": []}),
                "created_at": when, "notified_at": None, "notify_attempts": 0, "last_notify_error": None,
            })
        if m.kind == "prescreen_out_of_area" and m.contact.get("waitlist_email"):
            waits.append({"conversation_id": m.sender_id, "state": m.state or "OR",
                          "contact_encrypted": encrypt_json(key, {"email": m.contact["waitlist_email"]}), "created_at": when})
    with engine.begin() as conn:
        for table, rows, name in (
            (db.handoff_requests, handoffs, "handoff_requests"), (db.conversation_flags, flags, "conversation_flags"),
            (db.referrals, refs, "referrals"), (db.waitlist, waits, "waitlist"),
        ):
            for i in range(0, len(rows), 5000):
                conn.execute(table.insert(), rows[i:i + 5000])
            counts[name] = len(rows)
    return counts


def seed(
    tracker_url: str, n: int, seed_value: int = 1, days: float = 90.0, clinic_url: Optional[str] = None,
    now: Optional[float] = None, kinds: Optional[Sequence[str]] = None,
) -> List[Manifest]:
    """Write ``n`` generated conversations; return their manifests (oldest first)."""
    engine = tracker_engine(tracker_url)
    manifests: List[Manifest] = []

    def rows() -> Iterator[Row]:
        for conv_rows, manifest in generate(n, seed_value, days, now, kinds):
            manifests.append(manifest)
            yield from conv_rows

    write_events(engine, rows())
    engine.dispose()
    if clinic_url:
        write_clinic_rows(clinic_url, manifests)
    return manifests


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, help="how many conversations")
    parser.add_argument("--tracker-db", required=True, help="tracker store URL, e.g. sqlite:///var/tracker.db")
    parser.add_argument("--clinic-db", default=None, help="also write handoff requests, flags, referrals, waitlist here")
    parser.add_argument("--days", type=float, default=90.0, help="spread over the last N days (90)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (1)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    manifests = seed(args.tracker_db, args.n, args.seed, args.days, args.clinic_db)
    kinds: Dict[str, int] = {}
    for m in manifests:
        kinds[m.kind] = kinds.get(m.kind, 0) + 1
    events = sum(m.events for m in manifests)
    print(f"wrote {len(manifests)} conversations, {events} events in {time.perf_counter() - started:.1f} s")
    for kind, count in sorted(kinds.items()):
        print(f"  {kind}: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Which of a visitor's messages are answers to a form: one definition for the forms and the console.

The forms (pre-screen, contact details, waitlist, callback request) are the domain's
(``domain/*.yml``, ``forms:``): their required slots are read from there, so a question added
to a form is covered without a list here to keep up. A visitor's message is a **form answer**
when the conversation's events say it filled a form slot: in the events that follow it, up to
the next message, a slot of a form is set from it (Rasa's slot extraction sets the requested
slot to the text as typed, ``from_text``; the form's validation then sets what it understood);
or when it was sent while a form was active and its intent is not one the form's slot mappings
leave out (``not_intent``: crisis, stop, asking for a person), which is what makes Rasa fill the
slot (so a transcript written without the extraction's events is read the same way). That
holds however the answer was typed (a button, "yes I'm pregnant, can I still take it", "PTSD
from the war"), and also for an answer the form did not understand.

Used by the staff console, which shows a support user no form answer (transcripts, search
results, exports) and keeps none in its search index, and by the referral action, which reads
the answers from the stored conversation (``clinic.storage.tracker_reader``).
"""

from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_DIR = ROOT / "domain"


@lru_cache(maxsize=None)
def forms(domain_dir: Path = DOMAIN_DIR) -> Dict[str, FrozenSet[str]]:
    """Each form of the domain and its required slots."""
    found: Dict[str, FrozenSet[str]] = {}
    for path in sorted(Path(domain_dir).rglob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for name, form in ((data.get("forms") or {}) if isinstance(data, dict) else {}).items():
            slots = (form or {}).get("required_slots") or []
            found[name] = frozenset(found.get(name, frozenset()) | frozenset(s for s in slots if isinstance(s, str)))
    return found


@lru_cache(maxsize=None)
def excluded_intents(domain_dir: Path = DOMAIN_DIR) -> Dict[str, FrozenSet[str]]:
    """Each form and the intents its slots' mappings all leave out (``not_intent``): a message
    with one of them, sent while the form is active, is not taken as an answer."""
    slots: Dict[str, Any] = {}
    for path in sorted(Path(domain_dir).rglob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        slots.update((data.get("slots") or {}) if isinstance(data, dict) else {})
    excluded: Dict[str, FrozenSet[str]] = {}
    for form, required in forms(domain_dir).items():
        sets = []
        for slot in required:
            for mapping in ((slots.get(slot) or {}).get("mappings") or []):
                sets.append(frozenset(mapping.get("not_intent") or []))
        excluded[form] = frozenset.intersection(*sets) if sets else frozenset()
    return excluded


def sent_during_form(active_form: Optional[str], intent: Optional[str], domain_dir: Path = DOMAIN_DIR) -> bool:
    """Whether a message with ``intent``, sent while ``active_form`` is active, is the form's answer."""
    return active_form in forms(domain_dir) and intent not in excluded_intents(domain_dir)[active_form]


@lru_cache(maxsize=None)
def form_slots(domain_dir: Path = DOMAIN_DIR) -> FrozenSet[str]:
    """Every slot a form of the domain asks for (the answers)."""
    return frozenset().union(*forms(domain_dir).values()) if forms(domain_dir) else frozenset()


@lru_cache(maxsize=None)
def responses_quoting_answers(domain_dir: Path = DOMAIN_DIR) -> FrozenSet[str]:
    """The domain's responses whose text quotes a form's answer (``{contact_name}``,
    ``{callback_name}``...): withheld where the answers are."""
    slots = form_slots(domain_dir)
    found = set()
    for path in sorted(Path(domain_dir).rglob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for name, variants in ((data.get("responses") or {}) if isinstance(data, dict) else {}).items():
            texts = " ".join(str(v.get("text") or "") for v in variants or [] if isinstance(v, dict))
            if any("{" + slot + "}" in texts for slot in slots):
                found.add(name)
    return frozenset(found)


def _slot_set(event: Mapping[str, Any]) -> Optional[str]:
    """The slot an event sets to a value (not to nothing), else None."""
    if event.get("event") == "slot" and event.get("value") is not None:
        name = event.get("name")
        return name if isinstance(name, str) else None
    return None


def answered_messages(events: Sequence[Mapping[str, Any]], slots: Optional[FrozenSet[str]] = None) -> List[bool]:
    """For each event of ``events`` (a conversation's, in order, as Rasa stores them): whether it is
    a visitor's message that filled a form slot (module docstring); False for every other event."""
    slots = form_slots() if slots is None else slots
    marks = [False] * len(events)
    last_user: Optional[int] = None
    active: Optional[str] = None
    for i, event in enumerate(events):
        kind = event.get("event")
        if kind == "user":
            last_user = i
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            marks[i] = sent_during_form(active, intent if isinstance(intent, str) else None)
        elif kind == "active_loop":
            active = event.get("name") if isinstance(event.get("name"), str) else None
        elif kind == "restart":
            active = None
        elif last_user is not None and _slot_set(event) in slots:
            marks[last_user] = True
    return marks


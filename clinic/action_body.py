"""The body of a call to the action server and its JSON, each event's part made once (README
"Performance").

Rasa 3.6 sends the action server, for each custom action, ``RemoteAction._action_call_format``:
the tracker's state with every event of the conversation as a dict (``current_state(ALL)``:
``as_dict()`` of each event, every call), and ``json.dumps`` writes all of it again (late in a
pre-screen ~150 events, a visitor's message ~2.8 kB with the response selector's text; with the
domain ~95 kB a call). Events are logged once and not changed after (Rasa sets an event's
timestamp and metadata before it appends it; the one change Rasa makes to an event in a tracker
that its dict shows is ``EntitiesAdded``, which adds entities to the tracker's latest message):
so here each event's dict and JSON are kept and used again while the event is unchanged.

- ``action_call_format``: ``RemoteAction._action_call_format`` (installed by ``install()``): the
  same dict (but the domain sent, below), an ``ActionCall``: Rasa's keys in Rasa's order, the tracker's state from
  ``current_state`` without events and the events' dicts put in, each the kept one of its event.
  An event's kept dict and JSON are used again only when it is the same object with the same
  attributes (each attribute the same object: an attribute set again, to anything, makes them
  again) and it is not the tracker's latest message (written afresh each call: ``EntitiesAdded``
  changes it in place). A change inside one of an event's dicts or lists (not by setting an
  attribute) of any other event would not be seen: Rasa makes none (its other in-place changes
  are to deep copies, or to parse data before the event is made). The dicts in the body are
  shared between calls, as read-only as the event's own parse data Rasa's dicts share: Rasa only
  sends them. The entries are weak references to their events, by ``id()`` (events compare by
  content): one goes when its event does; a copy of an event is a new object, written anew.
- the domain sent (``sent_domain``): Rasa's ``domain.as_dict()`` without its responses, for the
  actions that get the domain at all (endpoints.yml: the forms' validate actions). The responses
  are most of it (~37 of ~46 kB, a third of a late pre-screen's body) and the action server
  renders none: an action names a response (``utter_message(response=...)``) and Rasa renders
  it from its own domain; rasa_sdk reads the forms and slots (tests/test_actions.py checks that
  no action reads the responses). Made once per domain dict (a new model's domain is a new dict).
- ``body_json``: the JSON of a body (what ``ActionEndpoint`` sends, by its lean client or as
  aiohttp's ``json_serialize``):
  for an ``ActionCall`` whose events are still the dicts it was made with, the events' kept JSON
  joined, the rest by ``dumps``; the domain's JSON kept for the dict ``domain.as_dict()`` returns
  (the last one seen: a new model's domain is a new dict). Anything else by ``dumps``. The same
  data as ``json.dumps`` gives, once parsed.
"""

import json
import weakref
from operator import attrgetter, is_
from typing import Any, Dict, List, Optional, Text, Tuple

import rasa
import ujson
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity

_domain: List[Any] = [None, ""]  # the last domain dict seen and its JSON
_sent: List[Any] = [None, None]  # the last domain dict of Rasa's seen and the one sent for it
NOT_SENT = ("responses",)  # the domain's parts the action server is not sent (module docstring)


def dumps(value: Any) -> Text:
    """The JSON of ``value`` by ujson (3x faster than ``json.dumps`` on a tracker; the same
    data once parsed: no spaces, "/" written "\\/"); ``json.dumps`` when ujson fails, so that
    what json cannot write fails as before (ujson also writes Decimals and objects with a
    ``toDict`` or ``__json__`` method, which Rasa's tracker holds none of: its tracker store
    writes the same events with ``json.dumps``)."""
    try:
        return ujson.dumps(value)
    except Exception:  # noqa: BLE001 (json.dumps raises its own error, or writes it)
        return json.dumps(value)


# --- each event's dict and JSON, kept ---------------------------------------------------------


class _Kept(weakref.ref):
    """A weak reference to an event with its dict and JSON (None until written) and its
    attributes when they were made; it leaves the table when the event goes."""

    __slots__ = ("key", "values", "size", "data", "json")

    key: int
    values: Tuple[Any, ...]
    size: int
    data: Dict[Text, Any]
    json: Optional[Text]


def _made(event: Event, key: int) -> _Kept:
    """A new entry for the event (its dict made now, its JSON when first written)."""
    entry = _Kept(event, _forget)
    entry.key = key
    entry.values = values = tuple(event.__dict__.values())
    entry.size = len(values)
    entry.data = event.as_dict()
    entry.json = None
    return entry


# by ``id()`` of the event (events compare by content, so they are no dict keys)
_kept: Dict[int, _Kept] = {}


def _forget(entry: Any) -> None:
    if _kept.get(entry.key) is entry:
        del _kept[entry.key]


def entries(events: Any, latest: Optional[Event]) -> List[_Kept]:
    """The kept entry of each event, made again for an event that is not the one it was made
    of, has had an attribute set since, or is ``latest`` (the tracker's latest message)."""
    found = []
    get = _kept.get
    for event in events:
        key = id(event)
        entry = get(key)
        values = event.__dict__.values()
        if (
            entry is None
            or event is latest
            or entry() is not event
            or len(values) != entry.size
            or not all(map(is_, values, entry.values))
        ):
            entry = _kept[key] = _made(event, key)
        found.append(entry)
    return found


# --- the body ---------------------------------------------------------------------------------


class ActionCall(dict):
    """Rasa's body of a call (a dict, the same data), with the kept entries of its events."""

    __slots__ = ("events", "entries")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events: Optional[List[Dict[Text, Any]]] = None  # the list in the tracker's state
        self.entries: List[_Kept] = []  # the kept entry of each of its dicts

    def events_json(self, events: Any) -> Optional[List[Text]]:
        """The JSON of each of the tracker's events, from the kept entries, when ``events`` is
        still the list of their dicts; else None."""
        entries = self.entries
        if events is not self.events or type(events) is not list or len(events) != len(entries):
            return None
        if not all(map(is_, events, map(_DATA, entries))):
            return None
        parts = list(map(_JSON, entries))
        if None in parts:
            for i, entry in enumerate(entries):
                if entry.json is None:
                    parts[i] = entry.json = dumps(entry.data)
        return parts


_DATA = attrgetter("data")
_JSON = attrgetter("json")


def action_call_format(self: RemoteAction, tracker: DialogueStateTracker, domain: Domain) -> Dict[Text, Any]:
    """``RemoteAction._action_call_format``: the same dict (the domain ``sent_domain``), an
    ``ActionCall``."""
    tracker_state = tracker.current_state(EventVerbosity.NONE)  # all but the events
    kept = entries(tracker.events, tracker.latest_message)
    events = [entry.data for entry in kept]
    tracker_state["events"] = events  # (in its place: current_state writes the key, as None)
    result = ActionCall(
        {
            "next_action": self._name,
            "sender_id": tracker.sender_id,
            "tracker": tracker_state,
            "version": rasa.__version__,
        }
    )
    if not self._is_selective_domain_enabled() or domain.does_custom_action_explicitly_need_domain(self.name()):
        result["domain"] = sent_domain(domain.as_dict())
    result.events, result.entries = events, kept
    return result


def sent_domain(data: Dict[Text, Any]) -> Dict[Text, Any]:
    """The domain the action server gets for Rasa's ``data`` (``domain.as_dict()``): the same
    dict without the responses, kept while ``data`` is the same dict."""
    if data is not _sent[0]:
        _sent[:] = [data, {key: value for key, value in data.items() if key not in NOT_SENT}]
    return _sent[1]


def _string_keys(value: Dict[Any, Any]) -> bool:
    return all(type(key) is str for key in value)


def body_json(body: Any) -> Text:
    """The body's JSON (``dumps``), the events' and the domain's parts kept."""
    if type(body) not in (dict, ActionCall) or not _string_keys(body):
        return dumps(body)
    domain = body.get("domain")
    if domain is not None and domain is not _domain[0]:
        _domain[:] = [domain, dumps(domain)]
    state = body.get("tracker")
    events: Optional[List[Text]] = None
    if type(body) is ActionCall and type(state) is dict and _string_keys(state):
        events = body.events_json(state.get("events"))
    parts = ["{"]
    for key, value in body.items():
        parts += [dumps(key), ":"]
        if domain is not None and value is domain:
            parts.append(_domain[1])
        elif events is not None and value is state:
            parts.append("{")
            for name, item in state.items():
                parts += [dumps(name), ":"]
                if name == "events":
                    parts += ["[", ",".join(events), "]"]
                else:
                    parts.append(dumps(item))
                parts.append(",")
            parts[-1] = "}" if state else "{}"  # (the last comma, or the opening brace)
        else:
            parts.append(dumps(value))
        parts.append(",")
    parts[-1] = "}" if body else "{}"
    return "".join(parts)


_rasa_action_call_format = RemoteAction._action_call_format


def install() -> None:
    """``RemoteAction._action_call_format`` made here (again is harmless)."""
    RemoteAction._action_call_format = action_call_format  # type: ignore[assignment]


def uninstall() -> None:
    """Rasa's own again (the tests compare with it)."""
    RemoteAction._action_call_format = _rasa_action_call_format  # type: ignore[assignment]

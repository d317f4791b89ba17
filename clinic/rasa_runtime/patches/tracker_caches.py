"""Patch: Rasa 3.6's dialogue bookkeeping for each turn carried forward on the tracker, same
results (docs/PERFORMANCE.md).

Checked against Rasa 3.6.21. Gain when added, with rule_keys and debug_log_copies: the predictions
1.7 -> 0.34 ms a turn (micro-benchmark), and a replay of every event saved about once a turn in the
forms (docs/PERFORMANCE.md). Measured on 2026-12-06 with every patch on and off (`make bench`,
Rasa's CPU a turn at c=10: 14.3-17.1 ms with them, 26.5-26.7 without, a busy shared machine, two
runs each way) and this one left out alone (`scripts/bench_profile.py --without tracker_caches`: not
distinguishable from that machine's noise of ~3 ms); docs/PERFORMANCE.md.

Rasa works out a conversation's state again from
all of its events many times a turn; here what was worked out is kept on the tracker and carried
forward while events are only appended to it, and worked out again from the start otherwise.

- **A tracker's events** are kept in ``Events``, a ``deque`` that counts every change other than
  appending at the end (``pop``, ``remove``, ``insert``, assigning or deleting an item, ...).
- ``DialogueStateTracker.applied_events`` (the events still in force: without those reverted,
  undone by a restart or a new session, or repeated by a form) walks every event of the
  conversation each call, about four times a turn (the session check, each prediction). Here the
  tracker keeps the applied events it found and, when events were only appended since, runs Rasa's
  own rules on the new ones. The rules for a form's steps depend on the names of all the forms the
  conversation ever activated: when a new one appears, everything is worked out again. A tracker
  whose events list is not an ``Events``, or has a maximum length (old events dropped), gets
  Rasa's own walk; each call returns a new list, as Rasa's does.
- ``DialogueStateTracker.past_states`` (the state before each action and now, what RulePolicy
  matches its rules against, each prediction) replays the applied events into a new tracker and
  takes its state before each action. Here the tracker keeps the states and the replayed tracker,
  and the next call carries on from the longest start of the applied events that is unchanged
  (the same event objects in the same order); a form's step that removes earlier events from the
  applied ones rewinds to where they differ. Only for Rasa's own tracker and domain classes
  (``TrackerWithCachedStates``, used in training, has its own cache) and without
  ``ignore_rule_only_turns`` (which only TED and Memoization policies ask for); otherwise Rasa's.
  Each call returns new state dicts (callers edit them), equal to Rasa's.
- ``DialogueStateTracker.copy`` (before each action, 2.2 a turn) replays every event into a new
  tracker. Here the replayed tracker is kept and carried forward over appended events, and each
  copy is made of it: the same event objects and slot values, new slot objects, last action and
  loop, and new placeholder messages where a reset made them (as a replay does). Only for Rasa's
  own tracker class with the domain's slots, when every event is of a kind whose replay only sets
  the tracker's attributes (no file written: not ``StoryExported``, ``EntitiesAdded``, nor classes
  Rasa does not have; ``DefinePrevUserUtteredFeaturization`` sets the same value on the same user
  message each replay) and the placeholders are as made; otherwise Rasa's copy. A copy of a copy
  (the processor copies the tracker for each action, a form activating copies that copy) and a
  replay for a copy whose events were only appended to since start from a copy of the source's
  kept replay.
- ``FormAction._temporary_tracker`` (each step of a form, once or twice: a new tracker of the
  events since the last restart, then a ``SlotSet`` of the requested slot, the form's step and the
  events so far) is made as a copy of the kept replay of the conversation's events, then those
  events added as Rasa adds them: when the conversation has no restart, the replay's slots are
  the domain's (same names, classes and settings) and it is not a rule tracker; otherwise Rasa's.

Events are not changed in place once in a tracker (Rasa sets an event's timestamp and metadata
before appending it), but for the featurization ``DefinePrevUserUtteredFeaturization`` sets on the
user message before it, which Rasa logs before the next action (the states before that action
are taken after it); another change of an event object already in a tracker would not be seen.
"""

import copy
import itertools
from collections import deque
from typing import Any, Dict, Iterator, List, Optional, Set, Text

from rasa.core.actions.forms import FormAction
from rasa.shared.core.constants import REQUESTED_SLOT
from rasa.shared.core.domain import Domain, State
from rasa.shared.core.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActionReverted,
    ActiveLoop,
    AllSlotsReset,
    BotUttered,
    ConversationPaused,
    ConversationResumed,
    DefinePrevUserUtteredFeaturization,
    Event,
    FollowupAction,
    LoopInterrupted,
    ReminderCancelled,
    ReminderScheduled,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
    UserUtteranceReverted,
)
from rasa.shared.core.slots import Slot
from rasa.shared.core.trackers import DialogueStateTracker

from clinic.rasa_runtime.patches.patching import Patch

_rasa_applied_events = DialogueStateTracker.applied_events
_rasa_past_states = DialogueStateTracker.past_states
_rasa_create_events = DialogueStateTracker._create_events
_rasa_generate_all_prior_trackers = DialogueStateTracker.generate_all_prior_trackers
_rasa_init_copy = DialogueStateTracker.init_copy
_rasa_update = DialogueStateTracker.update
_rasa_states_for_tracker_history = Domain.states_for_tracker_history
_rasa_get_active_state = Domain.get_active_state
_rasa_copy = DialogueStateTracker.copy
_rasa_temporary_tracker = FormAction._temporary_tracker

_APPLIED = "_clinic_applied_events"  # the tracker attributes holding what was worked out
_STATES = "_clinic_past_states"
_REPLAYED = "_clinic_replayed"


class Events(deque):
    """A tracker's events: a deque counting each change other than appending at the end."""

    changes = 0

    def _changed(self) -> None:
        self.changes += 1

    def appendleft(self, x: Any) -> None:
        self._changed()
        super().appendleft(x)

    def extendleft(self, iterable: Any) -> None:
        self._changed()
        super().extendleft(iterable)

    def pop(self) -> Any:
        self._changed()
        return super().pop()

    def popleft(self) -> Any:
        self._changed()
        return super().popleft()

    def remove(self, value: Any) -> None:
        self._changed()
        super().remove(value)

    def insert(self, i: int, x: Any) -> None:
        self._changed()
        super().insert(i, x)

    def clear(self) -> None:
        self._changed()
        super().clear()

    def rotate(self, n: int = 1) -> None:
        self._changed()
        super().rotate(n)

    def reverse(self) -> None:
        self._changed()
        super().reverse()

    def __setitem__(self, i: Any, x: Any) -> None:
        self._changed()
        super().__setitem__(i, x)

    def __delitem__(self, i: Any) -> None:
        self._changed()
        super().__delitem__(i)

    def __imul__(self, n: int) -> "Events":
        self._changed()
        return super().__imul__(n)


def create_events(self: DialogueStateTracker, evts: List[Event]) -> deque:
    """``DialogueStateTracker._create_events``, giving an ``Events``."""
    if evts and not isinstance(evts[0], Event):  # pragma: no cover  (as Rasa)
        raise ValueError("events, if given, must be a list of events")
    return Events(evts, self._max_event_history)


# --- applied events -------------------------------------------------------------------------


class _Applied:
    """What ``applied_events`` found for the first ``count`` events of ``events``."""

    __slots__ = ("events", "changes", "count", "applied", "loop_names")

    def __init__(self, events: Events) -> None:
        self.events = events
        self.changes = events.changes
        self.count = 0
        self.applied: List[Event] = []
        self.loop_names: Set[Text] = set()


def _apply(tracker: DialogueStateTracker, new: Iterator[Event], memo: _Applied) -> None:
    """Rasa's ``applied_events`` loop, on the events after those already in ``memo``."""
    applied_events = memo.applied
    loop_names = memo.loop_names
    for event in new:
        if isinstance(event, (Restarted, SessionStarted)):
            applied_events.clear()
        elif isinstance(event, ActionReverted):
            tracker._undo_till_previous(ActionExecuted, applied_events)
        elif isinstance(event, UserUtteranceReverted):
            tracker._undo_till_previous(UserUttered, applied_events)
            tracker._undo_till_previous(ActionExecuted, applied_events)
        elif (
            isinstance(event, ActionExecuted)
            and event.action_name in loop_names
            and not tracker._first_loop_execution_or_unhappy_path(event.action_name, applied_events)
        ):
            tracker._undo_till_previous_loop_execution(event.action_name, applied_events)
        else:
            applied_events.append(event)


def applied_events(self: DialogueStateTracker) -> List[Event]:
    """``DialogueStateTracker.applied_events``, carried forward over appended events."""
    events = self.events
    if type(events) is not Events or events.maxlen is not None:
        return _rasa_applied_events(self)
    memo = self.__dict__.get(_APPLIED)
    count = len(events)
    if memo is None or memo.events is not events or memo.changes != events.changes or count < memo.count:
        memo = _Applied(events)
        self.__dict__[_APPLIED] = memo
    if count > memo.count:
        new = list(itertools.islice(events, memo.count, count))
        names = {event.name for event in new if isinstance(event, ActiveLoop) and event.name}
        if names - memo.loop_names:  # earlier form steps may read differently: from the start
            memo.loop_names |= names
            memo.applied.clear()
            new = list(events)
        _apply(self, iter(new), memo)
        memo.count = count
    return list(memo.applied)


# --- past states ----------------------------------------------------------------------------


class _States:
    """The states ``past_states`` found for the applied events ``applied``."""

    __slots__ = ("domain", "omit_unset_slots", "slots", "applied", "states", "tracker")

    def __init__(self, domain: Domain, omit_unset_slots: bool, slots: Any) -> None:
        self.domain = domain
        self.omit_unset_slots = omit_unset_slots
        self.slots = slots
        self.applied: List[Event] = []
        self.states: List[State] = []  # the state before each ActionExecuted of ``applied``
        self.tracker: Optional[DialogueStateTracker] = None  # ``applied`` replayed


def _clean_copy(state: State) -> State:
    """``Domain._clean_state`` (sub-states that are empty left out), each sub-state a new dict."""
    return {key: dict(sub_state) for key, sub_state in state.items() if sub_state}


def _slots_signature(tracker: DialogueStateTracker) -> Any:
    slots = tracker.slots
    return type(slots), tuple((name, type(slot)) for name, slot in slots.items())


def _rasa_classes(tracker: DialogueStateTracker, domain: Domain) -> bool:
    cls, domain_cls = type(tracker), type(domain)
    return (
        cls.generate_all_prior_trackers is _rasa_generate_all_prior_trackers
        and cls.init_copy is _rasa_init_copy
        and cls.update is _rasa_update
        and domain_cls.states_for_tracker_history is _rasa_states_for_tracker_history
        and domain_cls.get_active_state is _rasa_get_active_state
    )


def past_states(
    self: DialogueStateTracker,
    domain: Domain,
    omit_unset_slots: bool = False,
    ignore_rule_only_turns: bool = False,
    rule_only_data: Optional[Dict[Text, Any]] = None,
) -> List[State]:
    """``DialogueStateTracker.past_states``, carried forward from the previous call's."""
    if ignore_rule_only_turns or not _rasa_classes(self, domain):
        return _rasa_past_states(self, domain, omit_unset_slots, ignore_rule_only_turns, rule_only_data)
    applied = self.applied_events()
    slots = _slots_signature(self)
    memo = self.__dict__.get(_STATES)
    if memo is None or memo.domain is not domain or memo.omit_unset_slots != omit_unset_slots or memo.slots != slots:
        memo = _States(domain, omit_unset_slots, slots)
        self.__dict__[_STATES] = memo
    kept = 0  # how many applied events are the same as last time
    for before, now in zip(memo.applied, applied):
        if before is not now:
            break
        kept += 1
    tracker = memo.tracker
    states = memo.states
    if tracker is None or kept < len(memo.applied):  # replay the unchanged start into a new tracker
        actions = sum(1 for event in itertools.islice(memo.applied, kept) if isinstance(event, ActionExecuted))
        del states[actions:]
        tracker = self.init_copy()
        for event in itertools.islice(applied, kept):
            tracker.update(event)
    for event in itertools.islice(applied, kept, None):  # Rasa's generate_all_prior_trackers
        if isinstance(event, ActionExecuted):
            states.append(_clean_copy(domain.get_active_state(tracker, omit_unset_slots=omit_unset_slots)))
        tracker.update(event)
    memo.applied = applied
    memo.tracker = tracker
    result = [_clean_copy(state) for state in states]
    result.append(_clean_copy(domain.get_active_state(tracker, omit_unset_slots=omit_unset_slots)))
    return result


# --- copies of a tracker --------------------------------------------------------------------

# Events whose ``apply_to`` only sets the tracker's own attributes (no file written) or, for
# DefinePrevUserUtteredFeaturization, sets its value on the user message before it, the same
# each time: replaying them again gives the same tracker. Others: Rasa's copy.
_REPLAYABLE = {
    UserUttered, BotUttered, SlotSet, ActionExecuted, ActiveLoop, LoopInterrupted, ActionExecutionRejected,
    SessionStarted, Restarted, FollowupAction, ConversationPaused, ConversationResumed, AllSlotsReset,
    ReminderScheduled, ReminderCancelled, ActionReverted, UserUtteranceReverted, DefinePrevUserUtteredFeaturization,
}
# a tracker's attributes (Rasa 3.6), and those of the speed-ups (not copied)
_ATTRIBUTES = {
    "_max_event_history", "events", "sender_id", "slots", "sender_source", "is_rule_tracker", "_paused",
    "followup_action", "latest_action", "latest_message", "latest_bot_utterance", "active_loop", "model_id",
    "assistant_id",
}
_COPIED_FROM = "_clinic_copied_from"  # on a copy: the kept replay it was made of
_OURS = {_APPLIED, _STATES, _REPLAYED, _COPIED_FROM}
_INFINITY = float("inf")


class _Replayed:
    """The tracker's events replayed into a new tracker, as ``copy`` does, up to ``count``
    (``restarted``: a ``Restarted`` among them; ``made_of``: the domain's slots its slots were
    found to be made of, for the forms' temporary trackers)."""

    __slots__ = ("events", "changes", "count", "origin", "tracker", "restarted", "made_of")

    def __init__(self, source: DialogueStateTracker) -> None:
        self.events = source.events
        self.changes = source.events.changes
        self.count = 0
        self.origin = _origin(source)
        self.tracker = source.init_copy()
        self.restarted = False
        self.made_of: Optional[tuple] = None


def _origin(tracker: DialogueStateTracker) -> Any:
    """What ``init_copy`` takes from the tracker (its slot objects themselves)."""
    return (tracker.sender_id, tracker._max_event_history, tracker.is_rule_tracker, type(tracker.slots),
            tuple(tracker.slots.items()))


def _same_origin(before: Any, now: Any) -> bool:
    return before[:4] == now[:4] and len(before[4]) == len(now[4]) and all(
        a[0] == b[0] and a[1] is b[1] for a, b in zip(before[4], now[4]))


def _is_one_of(item: Any, events: deque) -> bool:
    return any(event is item for event in reversed(events))


def _as_made(placeholder: Event, fresh: Event) -> bool:
    """Whether a reset's placeholder message is still as a new one is (but its timestamp)."""
    return {**vars(placeholder), "timestamp": None} == {**vars(fresh), "timestamp": None}


def _clone(replayed: DialogueStateTracker) -> Optional[DialogueStateTracker]:
    """A new tracker in the state of ``replayed`` (a tracker made by replaying events), sharing with
    it what a replay shares (event objects, slot values set by events, slot settings) and nothing
    else; None when it holds something this does not know how to copy."""
    state = replayed.__dict__
    if not set(state) <= _ATTRIBUTES | _OURS:
        return None
    events = replayed.events
    clone = DialogueStateTracker.__new__(DialogueStateTracker)
    new = clone.__dict__
    for key, value in state.items():
        if key not in _OURS:
            new[key] = value
    new["events"] = Events(events, replayed._max_event_history)
    new["slots"] = {name: copy.copy(slot) for name, slot in replayed.slots.items()}
    if replayed.latest_action is not None:
        new["latest_action"] = dict(replayed.latest_action)
    message = replayed.latest_message
    placeholder = message is not None and not _is_one_of(message, events)
    if placeholder:  # made by a reset: a new one, as a replay makes
        new["latest_message"] = UserUttered.empty()
        if not _as_made(message, new["latest_message"]):  # changed since (a featurization set on it)
            return None
    utterance = replayed.latest_bot_utterance
    if utterance is not None and not _is_one_of(utterance, events):
        new["latest_bot_utterance"] = BotUttered.empty()
        if not _as_made(utterance, new["latest_bot_utterance"]):
            return None
    loop = replayed.active_loop
    if loop is not None:
        loop = new["active_loop"] = copy.copy(loop)
        trigger = loop.trigger_message
        if trigger is not None:
            if placeholder and trigger is message.parse_data:
                loop.trigger_message = new["latest_message"].parse_data
            elif not any(isinstance(e, UserUttered) and e.parse_data is trigger for e in events):
                loop.trigger_message = copy.deepcopy(trigger)  # an older reset's message
    return clone


def _kept_replay(self: DialogueStateTracker) -> Optional[_Replayed]:
    """The kept replay of the tracker's events, carried forward over the events appended since it
    was made; for a copy made by ``copy_tracker`` (events only appended since), made of a copy of
    its source's replay. None when Rasa's own copy is needed (other tracker classes, events not
    known to replay alike)."""
    events = self.events
    if (type(self) is not DialogueStateTracker or type(events) is not Events or events.maxlen is not None
            or type(self.slots) is not dict
            or any(type(slot).value is not Slot.value for slot in self.slots.values())):
        return None
    memo = self.__dict__.get(_REPLAYED)
    count = len(events)
    if (memo is None or memo.events is not events or memo.changes != events.changes or count < memo.count
            or not _same_origin(memo.origin, _origin(self))):
        memo = _of_source(self) or _Replayed(self)
        self.__dict__[_REPLAYED] = memo
    new = list(itertools.islice(events, memo.count, count))
    if any(type(event) not in _REPLAYABLE or not event.timestamp <= _INFINITY for event in new):
        del self.__dict__[_REPLAYED]
        return None
    replayed = memo.tracker
    for event in new:
        replayed.update(event)
        if type(event) is Restarted:
            memo.restarted = True
    memo.count = count
    return memo


def _of_source(copied: DialogueStateTracker) -> Optional[_Replayed]:
    """For a copy made by ``copy_tracker`` whose events were only appended to since: a replay of
    its first events, a copy of its source's replay (while that has not gone further)."""
    link = copied.__dict__.get(_COPIED_FROM)
    if link is None:
        return None
    source, events, count = link
    if events is not copied.events or events.changes or len(events) < count or source.count != count:
        return None
    tracker = _clone(source.tracker)
    if tracker is None:
        return None
    memo = _Replayed.__new__(_Replayed)
    memo.events, memo.changes, memo.count, memo.origin = events, 0, count, _origin(copied)
    memo.tracker, memo.restarted, memo.made_of = tracker, source.restarted, source.made_of  # same settings
    return memo


def copy_tracker(self: DialogueStateTracker) -> DialogueStateTracker:
    """``DialogueStateTracker.copy``: the tracker's events replayed into a new tracker, here kept and
    carried forward over appended events, and the copy made of it (Rasa's for other trackers)."""
    memo = _kept_replay(self)
    clone = None if memo is None else _clone(memo.tracker)
    if clone is None:
        self.__dict__.pop(_REPLAYED, None)
        return _rasa_copy(self)
    clone.__dict__[_COPIED_FROM] = (memo, clone.events, memo.count)
    return clone


# --- a form's temporary tracker -------------------------------------------------------------

_SET_BY_EVENTS = {"_value", "_has_been_set"}  # what events and resets change on a slot


def _same_slots_as_made(memo: _Replayed, domain_slots: List[Slot]) -> bool:
    """Whether the replayed tracker's slots are what a new tracker with ``domain_slots`` would have
    after the same events: the same names, classes and settings (the same objects), only the
    values that events and resets set may differ. Remembered on the replay (and the copies of it
    a copy's replay starts from) for the same slot objects of the domain: events change only
    the values of a replay's slots; the domain's slots are not changed once loaded."""
    made_of = memo.made_of
    if made_of is not None and len(made_of) == len(domain_slots) and all(
            a is b for a, b in zip(made_of, domain_slots)):
        return True
    slots = memo.tracker.slots
    if type(slots) is not dict or len(slots) != len(domain_slots):
        return False
    for (name, slot), made in zip(slots.items(), domain_slots):
        if name != made.name or type(slot) is not type(made):
            return False
        mine, theirs = vars(slot), vars(made)
        if mine.keys() != theirs.keys():
            return False
        if any(mine[key] is not value for key, value in theirs.items() if key not in _SET_BY_EVENTS):
            return False
    memo.made_of = tuple(domain_slots)
    return True


def _replay_and_rest(tracker: DialogueStateTracker) -> Any:
    """A kept replay of the tracker's first events (not to be changed) and the events after them:
    for a copy made by ``copy_tracker`` and only appended to since, its source's replay (while that
    has not gone further) and the events appended; otherwise ``_kept_replay``'s, and none."""
    link = tracker.__dict__.get(_COPIED_FROM)
    if link is not None and _REPLAYED not in tracker.__dict__:
        source, events, count = link
        if events is tracker.events and not events.changes and len(events) >= count and source.count == count:
            return source, list(itertools.islice(events, count, None))
    return _kept_replay(tracker), []


def temporary_tracker(self: Any, current_tracker: DialogueStateTracker, additional_events: List[Event],
                      domain: Domain) -> DialogueStateTracker:
    """``FormAction._temporary_tracker`` (a new tracker of the conversation's events since the last
    restart, then the form's step and the events so far): made as a copy of the kept replay of the
    conversation's events (``copy_tracker``'s) when it is what ``from_events`` would replay (no
    restart, slots from the domain's, not a rule tracker), then the new events added as Rasa does;
    otherwise Rasa's."""
    memo, rest = _replay_and_rest(current_tracker)
    clone = None
    if memo is not None and not memo.restarted and not any(isinstance(event, Restarted) for event in rest):
        replayed = memo.tracker
        if (type(replayed) is DialogueStateTracker and replayed.sender_id == current_tracker.sender_id
                and not replayed.is_rule_tracker and replayed._max_event_history is None
                and _same_slots_as_made(memo, domain.slots)):
            clone = _clone(replayed)
    if clone is None:
        return _rasa_temporary_tracker(self, current_tracker, additional_events, domain)
    for event in [*rest, SlotSet(REQUESTED_SLOT, self.get_slot_to_fill(current_tracker)),
                  ActionExecuted(self.name()), *additional_events]:
        clone.update(event)  # as from_events does
    return clone


PATCH = Patch(
    "tracker_caches",
    (DialogueStateTracker, "_create_events", create_events),
    (DialogueStateTracker, "applied_events", applied_events),
    (DialogueStateTracker, "past_states", past_states),
    (DialogueStateTracker, "copy", copy_tracker),
    (FormAction, "_temporary_tracker", temporary_tracker),
)

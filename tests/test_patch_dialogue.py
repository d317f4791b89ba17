"""clinic/rasa_runtime/patches/ (tracker_caches, rule_keys, debug_log_copies, slot_copy): applied events and past states carried forward on a tracker, and
copies of slots, give what Rasa's own functions give: on made-up event sequences (reverts,
restarts, sessions, forms, a form named only later, events changed other than by appending), on
the trackers of the test stories and rules, and on conversations of the bench's visitors played
through the model and the action server (every applied event, every past state, every prediction
of the model's policies)."""

import asyncio
import copy
import uuid
from collections import deque
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest
from rasa.core.policies.rule_policy import RulePolicy
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    DefinePrevUserUtteredFeaturization,
    ActionExecutionRejected,
    ActionReverted,
    ActiveLoop,
    BotUttered,
    Event,
    FollowupAction,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
    UserUtteranceReverted,
)
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.slots import Slot, TextSlot
from rasa.shared.core.trackers import DialogueStateTracker

from clinic.rasa_runtime import patches
from clinic.rasa_runtime.patches import debug_log_copies, rule_keys, slot_copy, tracker_caches
from clinic.rasa_runtime.patches import rasa_own
from clinic.rasa_runtime.patches import applied as patches_applied


@pytest.fixture(autouse=True, scope="module")
def _patches_under_test():
    """The patches these tests test, in place whatever CLINIC_RASA_PATCHES says."""
    with patches_applied():
        yield


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(ROOT / "domain"))


def rasa_tracker(events: List[Event], slots: Any, **kwargs: Any) -> DialogueStateTracker:
    """A new tracker of these events, as Rasa's own code makes it (a plain deque, no speed-ups)."""
    with rasa_own():
        tracker = DialogueStateTracker("c", slots, **kwargs)
        for event in events:
            tracker.update(event)
        return tracker


def rasa_applied(events: List[Event], slots: Any, **kwargs: Any) -> List[Event]:
    with rasa_own():
        return rasa_tracker(events, slots, **kwargs).applied_events()


def rasa_states(events: List[Event], slots: Any, domain: Domain, **options: Any) -> List[Dict]:
    with rasa_own():
        return rasa_tracker(events, slots).past_states(domain, **options)


def same_events(ours: List[Event], theirs: List[Event]) -> bool:
    return len(ours) == len(theirs) and all(a is b for a, b in zip(ours, theirs))


def same_tracker(ours: DialogueStateTracker, theirs: DialogueStateTracker, made: range = range(0)) -> None:
    """``ours`` (a copy by the speed-ups) is what Rasa's copy ``theirs`` is: the same event objects
    (but those at ``made``, made anew by each: equal) and slot values, equal placeholders and loop,
    nothing of its own shared with other copies."""
    assert type(ours) is type(theirs)
    mine = {k: v for k, v in vars(ours).items() if not k.startswith("_clinic")}
    assert set(mine) == set(vars(theirs))
    assert type(ours.events) is tracker_caches.Events and len(ours.events) == len(theirs.events)
    for n, (a, b) in enumerate(zip(ours.events, theirs.events)):
        if n - len(ours.events) in made:
            assert type(a) is type(b) and {**vars(a), "timestamp": 0} == {**vars(b), "timestamp": 0}, n
        else:
            assert a is b, n
    assert list(ours.slots) == list(theirs.slots)
    for name, slot in ours.slots.items():
        other = theirs.slots[name]
        assert type(slot) is type(other) and set(vars(slot)) == set(vars(other))
        assert all(vars(slot)[k] is vars(other)[k] or vars(slot)[k] == vars(other)[k] and
                   isinstance(vars(slot)[k], (bool, int, float)) for k in vars(slot)), name
    for key in ("latest_message", "latest_bot_utterance"):
        a, b = getattr(ours, key), getattr(theirs, key)
        if any(e is b for e in theirs.events):
            assert a is b, key
        else:  # a placeholder made by a reset, as the copy is made (its timestamp then)
            assert a == b and not any(e is a for e in ours.events), key
            assert {**a.as_dict(), "timestamp": 0} == {**b.as_dict(), "timestamp": 0}, key
            assert {**vars(a), "timestamp": 0} == {**vars(b), "timestamp": 0}, key
    assert ours.latest_action == theirs.latest_action
    assert ours.active_loop == theirs.active_loop
    if theirs.active_loop is not None:
        trigger = theirs.active_loop.trigger_message
        assert (ours.active_loop.trigger_message is ours.latest_message.parse_data) == \
            (trigger is theirs.latest_message.parse_data)
    for key in ("sender_id", "followup_action", "_paused", "model_id", "assistant_id", "sender_source",
                "is_rule_tracker", "_max_event_history"):
        assert mine[key] == vars(theirs)[key], key


def same_value(ours: Any, theirs: Any, originals: Any = ()) -> None:
    """The same classes and values all the way down, no dict or list shared with ``theirs`` nor
    with the ``originals`` (the objects copied)."""
    assert type(ours) is type(theirs)
    if isinstance(ours, (dict, list, tuple)):
        assert ours is not theirs and all(ours is not o for o in originals)
        assert len(ours) == len(theirs)
        if isinstance(ours, dict):
            assert list(ours) == list(theirs)
            for key in ours:
                same_value(ours[key], theirs[key], [o[key] for o in originals if isinstance(o, dict) and key in o])
        else:
            for n, (a, b) in enumerate(zip(ours, theirs)):
                same_value(a, b, [o[n] for o in originals if isinstance(o, (list, tuple)) and len(o) > n])
    else:
        assert ours == theirs or ours != ours and theirs != theirs  # NaN


def same_current_state(tracker: DialogueStateTracker) -> None:
    """The tracker's current state (what the action server gets) is Rasa's; the active loop's
    parts copied, not shared with the tracker."""
    ours = tracker.current_state()
    with rasa_own():
        theirs = tracker.current_state()
    assert ours == theirs
    loop = tracker.active_loop
    same_value(ours["active_loop"], theirs["active_loop"],
               [vars(loop)] if loop is not None else [])


def check_growing(events: List[Event], domain: Domain, slots: Any = None,
                  predict: Callable[[DialogueStateTracker], Any] = None) -> int:
    """Appends the events one by one to a tracker with the speed-ups and, after each, compares
    its applied events and past states (and prediction, before each action) with Rasa's on a new
    tracker of the same events. Returns how many predictions were compared."""
    slots = domain.slots if slots is None else slots
    tracker = DialogueStateTracker("c", slots)
    assert type(tracker.events) is tracker_caches.Events
    predictions = 0
    for n, event in enumerate(events, start=1):
        if predict is not None and isinstance(event, ActionExecuted):
            ours = predict(tracker)
            with rasa_own():
                theirs = predict(rasa_tracker(events[:n - 1], slots))
            assert ours == theirs, f"prediction before event {n}"
            predictions += 1
        tracker.update(event)
        assert same_events(tracker.applied_events(), rasa_applied(events[:n], slots)), f"applied events at {n}"
        ours = tracker.copy()
        with rasa_own():
            theirs = rasa_tracker(events[:n], slots).copy()
        same_tracker(ours, theirs)
        again = tracker.copy()
        assert again.events is not ours.events and again.latest_action is not ours.latest_action
        assert not any(again.slots[name] is slot for name, slot in ours.slots.items())
        assert again.active_loop is None or again.active_loop is not ours.active_loop
        if again.active_loop is not None and again.active_loop.trigger_message is not None:
            trigger = again.active_loop.trigger_message
            assert trigger is not ours.active_loop.trigger_message or any(
                getattr(e, "parse_data", None) is trigger for e in events)
        for key in ("latest_message", "latest_bot_utterance"):  # placeholders: each copy its own
            assert getattr(again, key) is not getattr(ours, key) or any(e is getattr(ours, key) for e in events)
        if ours.slots and ours.active_loop is not None:  # what an action may do to its copy
            next(iter(ours.slots.values())).value = "changed"
            ours.active_loop.rejected = not ours.active_loop.rejected
            ours.latest_action["x"] = "y"
            same_tracker(tracker.copy(), theirs)
        same_current_state(tracker)
        for omit in (False, True):
            assert tracker.past_states(domain, omit_unset_slots=omit) == \
                rasa_states(events[:n], slots, domain, omit_unset_slots=omit), f"past states at {n}"
    return predictions


# --- made-up conversations ------------------------------------------------------------------

def user(intent: str, text: str = "") -> UserUttered:
    return UserUttered(text or intent, {"name": intent, "confidence": 1.0})


def act(name: str) -> ActionExecuted:
    return ActionExecuted(name)


LISTEN = "action_listen"


def form_turns(form: str, answers: List[Tuple[str, str]]) -> List[Event]:
    events: List[Event] = [act(form), ActiveLoop(form), SlotSet("requested_slot", answers[0][0]), act(LISTEN)]
    for slot, value in answers:
        events += [user("inform", value), act("action_extract_slots"), act(form), SlotSet(slot, value), act(LISTEN)]
    return events


SEQUENCES = {
    "session and faq": [
        act("action_session_start"), SessionStarted(), act(LISTEN), user("greet"), act("utter_greet"),
        BotUttered("hi"), act(LISTEN), user("faq", "what does it cost"),
        DefinePrevUserUtteredFeaturization(False), act("utter_faq"), act(LISTEN),
        user("faq", "is it safe"), DefinePrevUserUtteredFeaturization(True), act("utter_faq"), act(LISTEN),
    ],
    "a form, rejected, interrupted, back": [
        act(LISTEN), user("start_prescreen"), *form_turns("prescreen_form", [("age", "34"), ("state", "TX")]),
        user("faq"), act("prescreen_form"), ActionExecutionRejected("prescreen_form"), act("utter_faq"),
        act("prescreen_form"), act(LISTEN), user("inform", "no"), act("prescreen_form"),
        ActiveLoop(None), SlotSet("requested_slot", None), act("action_prescreen_outcome"), act(LISTEN),
    ],
    "reverts": [
        act(LISTEN), user("greet"), act("utter_greet"), act(LISTEN), user("faq"), UserUtteranceReverted(),
        user("faq"), act("utter_faq"), ActionReverted(), act("utter_greet"), act(LISTEN),
        user("deny"), act("utter_greet"), ActionReverted(), UserUtteranceReverted(), act(LISTEN),
    ],
    "restart and new session in the middle": [
        act(LISTEN), user("greet"), act("utter_greet"), SlotSet("age", "34"), Restarted(), act(LISTEN),
        user("greet"), act("utter_greet"), act("action_session_start"), SessionStarted(), act(LISTEN),
        FollowupAction("utter_greet"), act("utter_greet"), act(LISTEN),
    ],
    # a form activated before any message: its trigger is the placeholder message of the reset
    "a form before any message": [
        act("action_session_start"), SessionStarted(), act("prescreen_form"), ActiveLoop("prescreen_form"),
        SlotSet("requested_slot", "age"), act(LISTEN), user("inform", "34"), act("prescreen_form"),
        SlotSet("age", "34"), act(LISTEN), ActiveLoop(None), act(LISTEN),
    ],
    # the form's earlier steps count as form steps only once the conversation activates it:
    # everything is worked out again when a new form name appears
    "a form named only later": [
        act(LISTEN), user("start_prescreen"), act("prescreen_form"), act(LISTEN), user("inform", "34"),
        act("prescreen_form"), act(LISTEN), user("inform", "TX"), act("prescreen_form"),
        ActiveLoop("prescreen_form"), act(LISTEN), user("inform", "no"), act("prescreen_form"),
        ActiveLoop("contact_form"), act("contact_form"), act(LISTEN), user("inform", "Jane"), act("contact_form"),
        ActiveLoop(None), act(LISTEN),
    ],
}


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_made_up_conversations_give_rasas_applied_events_and_states(name, domain):
    check_growing(SEQUENCES[name], domain)


def test_a_tracker_without_domain_slots_gives_rasas(domain):
    events = SEQUENCES["a form, rejected, interrupted, back"] + [SlotSet("not_in_domain", "x"), act(LISTEN)]
    check_growing(events, domain, slots=[])  # no slots at all
    tracker = DialogueStateTracker("c", None)  # AnySlotDict: slots made when set
    for n, event in enumerate(events, start=1):
        tracker.update(event)
        assert tracker.past_states(domain) == rasa_states(events[:n], None, domain)


CHANGES = {
    "pop": lambda d: d.pop(),
    "popleft": lambda d: d.popleft(),
    "remove": lambda d: d.remove(d[3]),
    "insert": lambda d: d.insert(2, Restarted()),
    "appendleft": lambda d: d.appendleft(act(LISTEN)),
    "extendleft": lambda d: d.extendleft([SessionStarted()]),
    "setitem": lambda d: d.__setitem__(4, Restarted()),
    "delitem": lambda d: d.__delitem__(4),
    "rotate": lambda d: d.rotate(2),
    "reverse": lambda d: d.reverse(),
    "clear": lambda d: d.clear(),
    "imul": lambda d: d.__imul__(2),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_events_changed_other_than_by_appending_are_worked_out_again(change, domain):
    events = SEQUENCES["reverts"]
    tracker = DialogueStateTracker("c", domain.slots)
    for event in events:
        tracker.update(event)
    tracker.applied_events(), tracker.past_states(domain)  # remembered
    CHANGES[change](tracker.events)
    tracker.update(act(LISTEN))  # the same count of events again for some changes: not enough to tell
    now = list(tracker.events)
    assert same_events(tracker.applied_events(), rasa_applied(now, domain.slots))
    assert tracker.past_states(domain) == rasa_states(now, domain.slots, domain)


def test_events_replaced_or_limited_are_rasas(domain):
    events = SEQUENCES["session and faq"]
    tracker = DialogueStateTracker("c", domain.slots)
    for event in events:
        tracker.update(event)
    tracker.applied_events()
    tracker.events = deque(events[:4])  # a plain deque: Rasa's walk
    assert same_events(tracker.applied_events(), rasa_applied(events[:4], domain.slots))
    tracker.events = tracker_caches.Events(events[:6])  # another one: from the start
    assert same_events(tracker.applied_events(), rasa_applied(events[:6], domain.slots))
    limited = DialogueStateTracker("c", domain.slots, max_event_history=4)  # old events dropped
    for n, event in enumerate(events, start=1):
        limited.update(event)
        assert same_events(limited.applied_events(), rasa_applied(events[:n], domain.slots, max_event_history=4))
        with rasa_own():
            expected = rasa_tracker(events[:n], domain.slots, max_event_history=4).past_states(domain)
        assert limited.past_states(domain) == expected


def test_each_call_gives_new_lists_and_states(domain):
    tracker = DialogueStateTracker("c", domain.slots)
    for event in SEQUENCES["a form, rejected, interrupted, back"]:
        tracker.update(event)
    applied = tracker.applied_events()
    states = tracker.past_states(domain)
    expected = copy.deepcopy(states)
    applied.clear()
    for state in states:  # what Rasa's featurizers do to the states they get
        state.get("user", {}).pop("intent", None)
        state.get("prev_action", {}).clear()
        state.pop("slots", None)
    assert same_events(tracker.applied_events(), rasa_applied(list(tracker.events), domain.slots))
    assert tracker.past_states(domain) == expected


def test_copies_after_events_not_known_to_replay_alike_are_rasas(domain):
    from rasa.shared.core.events import EntitiesAdded

    events = SEQUENCES["session and faq"] + [
        user("inform"), DefinePrevUserUtteredFeaturization(True), EntitiesAdded([{"entity": "GPE", "value": "x"}]),
        act("utter_faq"), act(LISTEN)]
    with_featurization = [act("action_session_start"), SessionStarted(), act(LISTEN),
                          DefinePrevUserUtteredFeaturization(True), act("utter_greet")]  # on the placeholder
    tracker = DialogueStateTracker("c", domain.slots)
    for n, event in enumerate(with_featurization, start=1):
        tracker.update(event)
        with rasa_own():
            theirs = rasa_tracker(with_featurization[:n], domain.slots).copy()
        same_tracker(tracker.copy(), theirs)
        assert tracker.copy().latest_message.use_text_for_featurization == \
            theirs.latest_message.use_text_for_featurization
    tracker = DialogueStateTracker("c", domain.slots)
    for n, event in enumerate(events, start=1):
        tracker.update(event)
        with rasa_own():
            theirs = rasa_tracker(events[:n], domain.slots).copy()
        same_tracker(tracker.copy(), theirs)
    assert tracker_caches._REPLAYED not in vars(tracker)  # Rasa's copies since the first of them
    without_slots = DialogueStateTracker("c", None)  # AnySlotDict: Rasa's copy
    for event in events[:5]:
        without_slots.update(event)
    with rasa_own():
        theirs = rasa_tracker(events[:5], None).copy()
    same_tracker(without_slots.copy(), theirs)
    assert tracker_caches._REPLAYED not in vars(without_slots)


def test_other_options_and_tracker_classes_get_rasas_own(domain):
    events = SEQUENCES["a form, rejected, interrupted, back"]
    tracker = DialogueStateTracker("c", domain.slots)
    for event in events:
        tracker.update(event)
    rule_only = {"rule_only_slots": ["age"], "rule_only_loops": ["prescreen_form"]}
    assert tracker.past_states(domain, ignore_rule_only_turns=True, rule_only_data=rule_only) == \
        rasa_states(events, domain.slots, domain, ignore_rule_only_turns=True, rule_only_data=rule_only)
    assert tracker_caches._STATES not in vars(tracker)  # Rasa's own did it
    assert TrackerWithCachedStates.past_states is not tracker_caches.past_states  # its own cache
    ours = TrackerWithCachedStates.from_events("c", events, domain.slots, domain=domain)
    with rasa_own():
        theirs = TrackerWithCachedStates.from_events("c", events, domain.slots, domain=domain)
        expected = theirs.past_states(domain), theirs.applied_events()
    assert ours.past_states(domain) == expected[0]
    assert same_events(ours.applied_events(), expected[1])


# --- a form's temporary tracker -------------------------------------------------------------

def rasa_temporary(form: Any, tracker: DialogueStateTracker, extra: List[Event], domain: Domain) -> Any:
    with rasa_own():
        return tracker_caches._rasa_temporary_tracker(form, tracker, extra, domain)


def check_temporary(form: Any, tracker: DialogueStateTracker, extra: List[Event], domain: Domain) -> bool:
    """The form's temporary tracker for ``tracker`` is Rasa's (same events, slots, loop, latest
    message and action); True when it was made of the kept replay."""
    theirs = rasa_temporary(form, tracker, extra, domain)
    rasas, fallbacks = tracker_caches._rasa_temporary_tracker, []
    tracker_caches._rasa_temporary_tracker = lambda *args: fallbacks.append(args) or rasas(*args)
    try:
        ours = tracker_caches.temporary_tracker(form, tracker, extra, domain)
    finally:
        tracker_caches._rasa_temporary_tracker = rasas
    same_tracker(ours, theirs, made=range(-2 - len(extra), -len(extra)))  # the form's SlotSet and step
    assert ours.past_states(domain) == rasa_states(list(theirs.events), domain.slots, domain)
    return not fallbacks


def a_form(domain: Domain) -> Any:
    from rasa.core.actions.forms import FormAction

    return FormAction("prescreen_form", None)


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_form_temporary_trackers_are_rasas(name, domain):
    form, events = a_form(domain), SEQUENCES[name]
    tracker = DialogueStateTracker("c", domain.slots)
    made = 0
    for n, event in enumerate(events, start=1):
        tracker.update(event)
        extra = [SlotSet("age", "34"), BotUttered("next?")] if n % 2 else []
        copied = tracker.copy()  # the processor hands the action a copy
        made += check_temporary(form, copied, extra, domain)
        made += check_temporary(form, tracker, extra, domain)  # the tracker itself (its kept replay)
    if not any(isinstance(e, Restarted) for e in events):
        assert made == 2 * len(events)  # every one made of the kept replay


def test_form_temporary_trackers_that_cannot_come_from_the_kept_replay_are_rasas(domain):
    form, events = a_form(domain), SEQUENCES["a form, rejected, interrupted, back"]
    tracker = DialogueStateTracker("c", domain.slots)
    for event in events:
        tracker.update(event)
    copied = tracker.copy()
    assert check_temporary(form, copied, [], domain)
    source = vars(copied)["_clinic_copied_from"][0]
    copied.update_with_events([act(LISTEN), user("deny")], domain)  # as the processor and forms do
    assert check_temporary(form, copied, [], domain)  # its source's replay copied, the new events added
    assert source.count == len(tracker.events) and tracker_caches._REPLAYED not in vars(copied)
    with rasa_own():
        theirs = rasa_tracker(list(copied.events), domain.slots).copy()
    same_tracker(copied.copy(), theirs)  # a copy of the copy (a form activating): from a copy of the source's
    assert vars(copied)[tracker_caches._REPLAYED].tracker is not source.tracker
    assert check_temporary(form, copied, [], domain)  # now from the copy's own replay
    assert source.count == len(tracker.events)  # the source's left as it was
    same_tracker(tracker.copy(), rasa_tracker(events, domain.slots).copy())
    other = tracker.copy()
    tracker.update(user("greet"))
    tracker.copy()  # the source went further: the copy's events replayed anew
    assert check_temporary(form, other, [], domain)
    popped = tracker.copy()
    popped.events.pop()  # changed other than by appending: replayed anew
    popped.events.append(user("deny"))
    assert check_temporary(form, popped, [], domain)
    restarted_copy = tracker.copy()
    restarted_copy.update_with_events([Restarted(), act(LISTEN)], domain)  # a restart after the source's
    assert not check_temporary(form, restarted_copy, [], domain)
    restarted = DialogueStateTracker("c", domain.slots)  # events since the restart only: Rasa's
    for event in SEQUENCES["restart and new session in the middle"]:
        restarted.update(event)
    assert not check_temporary(form, restarted.copy(), [SlotSet("age", "1")], domain)
    changed = Domain.from_dict({**domain.as_dict(), "slots": {**domain.as_dict()["slots"],
                                "age": {"type": "text", "initial_value": "9", "mappings": []}}})
    assert not check_temporary(form, tracker.copy(), [], changed)  # slots not the domain's
    fewer = DialogueStateTracker("c", domain.slots[:3])
    for event in events[:6]:
        fewer.update(event)
    assert not check_temporary(form, fewer.copy(), [], domain)
    rules = DialogueStateTracker("c", domain.slots, is_rule_tracker=True)
    for event in events[:6]:
        rules.update(event)
    assert not check_temporary(form, rules.copy(), [], domain)
    plain = rasa_tracker(events, domain.slots)  # a plain deque: no kept replay
    assert not check_temporary(form, plain, [], domain)


def test_form_temporary_trackers_share_nothing_an_action_changes(domain):
    form, events = a_form(domain), SEQUENCES["a form before any message"]
    tracker = DialogueStateTracker("c", domain.slots)
    for event in events[:8]:
        tracker.update(event)
    copied = tracker.copy()
    first = form._temporary_tracker(copied, [SlotSet("age", "34")], domain)
    first.slots["age"].value = "changed"
    first.active_loop.rejected = True
    first.latest_action["x"] = "y"
    first.update(act(LISTEN))
    extra = [SlotSet("age", "34")]
    same_tracker(form._temporary_tracker(copied, extra, domain), rasa_temporary(form, copied, extra, domain),
                 made=range(-3, -1))
    same_tracker(tracker.copy(), rasa_tracker(events[:8], domain.slots).copy())


# --- copies of slots ------------------------------------------------------------------------

def test_slot_copies_are_rasas(domain):
    values = {"text": "x", "float": 3.0, "bool": True, "list": ["a"], "categorical": None, "any": {"a": 1}}
    for slot in domain.slots:
        slot.value = values.get(slot.type_name)
        ours = copy.copy(slot)
        with rasa_own():
            theirs = copy.copy(slot)
        assert type(ours) is type(theirs) is type(slot) and ours is not slot
        assert vars(ours) == vars(theirs) == vars(slot)
        assert all(vars(ours)[k] is vars(slot)[k] for k in vars(slot))  # shallow, as copy.copy
        slot.reset()


class PickledOwnWay(TextSlot):
    def __getstate__(self) -> Dict[str, Any]:
        return {**self.__dict__, "_value": "from getstate"}


class WithSlots(TextSlot):
    __slots__ = ("extra",)


def test_slot_classes_copied_their_own_way_are_copied_as_rasa_does():
    slot = PickledOwnWay("s", mappings=[], initial_value="x")
    assert copy.copy(slot).value == "from getstate"
    with_slots = WithSlots("t", mappings=[])
    with_slots.extra = 7
    assert copy.copy(with_slots).extra == 7
    assert slot_copy._copied_like_object(TextSlot)
    assert not slot_copy._copied_like_object(PickledOwnWay)
    assert not slot_copy._copied_like_object(WithSlots)


def test_install_and_rasa_own():
    assert DialogueStateTracker.applied_events is tracker_caches.applied_events
    assert DialogueStateTracker.past_states is tracker_caches.past_states
    with rasa_own():
        assert DialogueStateTracker.applied_events is tracker_caches._rasa_applied_events
        assert "__copy__" not in vars(Slot)
        assert type(DialogueStateTracker("c", []).events) is deque
    assert Slot.__copy__ is slot_copy.copy_slot
    patches.install()  # again: harmless
    assert DialogueStateTracker.applied_events is tracker_caches.applied_events


# --- real conversations: the model's predictions --------------------------------------------

@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    """The trained model, with the action server of a temporary stack."""
    from tests.stack import agent_with_actions

    loop = asyncio.new_event_loop()
    try:
        with agent_with_actions(tmp_path_factory.mktemp("dialogue-speedups"), loop) as loaded:
            yield loaded
    finally:
        loop.close()


@pytest.fixture
def rule_keys_checked(monkeypatch):
    """Each rule lookup RulePolicy makes (remembered or not) also made by Rasa's own function on
    a copy of the same states, and compared; yields the policy of each lookup compared."""
    compared: List[Any] = []

    def checked(self, lookup, states):
        theirs = rule_keys._rasa_get_possible_keys(self, lookup, copy.deepcopy(states))
        ours = rule_keys.get_possible_keys(self, lookup, states)
        assert ours == theirs
        compared.append(self)
        return ours

    monkeypatch.setattr(RulePolicy, "_get_possible_keys", checked)
    yield compared
    monkeypatch.undo()
    assert RulePolicy._get_possible_keys is rule_keys.get_possible_keys


@pytest.fixture
def temporary_checked(monkeypatch):
    """Each temporary tracker the model's forms make also made by Rasa's own function, and compared;
    yields, for each, whether it was made of the kept replay."""
    from rasa.core.actions.forms import FormAction

    made: List[bool] = []

    def checked(self, tracker, extra, domain):
        made.append(check_temporary(self, tracker, extra, domain))
        return tracker_caches.temporary_tracker(self, tracker, extra, domain)

    monkeypatch.setattr(FormAction, "_temporary_tracker", checked)
    yield made
    monkeypatch.undo()
    assert FormAction._temporary_tracker is tracker_caches.temporary_tracker


def predictor(agent) -> Callable[[DialogueStateTracker], Any]:
    """The model's policies (RulePolicy and the ensemble's choice) on a tracker, as each turn."""
    processor = agent.processor

    def predict(tracker: DialogueStateTracker) -> Any:
        followup = tracker.followup_action
        prediction = processor._predict_next_with_tracker(tracker)
        tracker.followup_action = followup  # the prediction clears it; the action after does too
        return (prediction, prediction.max_confidence_index, prediction.action_metadata,
                prediction.diagnostic_data)

    return predict


def story_events(domain: Domain, paths: List[str]) -> List[List[Event]]:
    from rasa.shared.core.generator import TrainingDataGenerator
    from rasa.shared.core.training_data.structures import StoryGraph
    from rasa.shared.core.training_data.loading import load_data_from_resource

    steps = []
    for path in paths:
        steps += load_data_from_resource(str(ROOT / path), domain)
    generator = TrainingDataGenerator(StoryGraph(steps), domain, remove_duplicates=False,
                                      augmentation_factor=0, use_story_concatenation=False)
    return [list(tracker.events) for tracker in generator.generate()]


def test_test_stories_give_rasas_states_and_predictions(agent, rule_keys_checked):
    domain = agent.processor.domain
    conversations = story_events(domain, ["tests/stories"])
    assert len(conversations) >= 20
    predictions = sum(check_growing(events, domain, predict=predictor(agent)) for events in conversations)
    assert predictions > 300
    assert len(rule_keys_checked) > predictions  # rules and loop rules, remembered and not


def test_rules_give_rasas_states(agent):
    domain = agent.processor.domain
    conversations = story_events(domain, ["data/rules"])
    assert len(conversations) >= 40
    for events in conversations:
        check_growing(events, domain)


async def play_visitors(agent, count: int, seed: int) -> List[str]:
    """The bench's visitors (scripts/bench_profile.py's way): their conversation ids."""
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

    from scripts.bench_visitors import Visitors, rasa_message

    visitors, senders = Visitors(seed=seed), []
    for _ in range(count):
        script, sender, last = visitors.next(), uuid.uuid4().hex, []
        for kind, value in script.steps:
            text, metadata = rasa_message(kind, value, last)
            out = CollectingOutputChannel()
            await agent.handle_message(UserMessage(text, out, sender, input_channel="rest", metadata=metadata))
            last = out.messages
        senders.append(sender)
    return senders


def test_bench_visitors_give_rasas_states_and_predictions(agent, rule_keys_checked, temporary_checked):
    domain = agent.processor.domain

    async def conversations() -> List[List[Event]]:
        from clinic.rasa_runtime.patches.kept_action_session import close_sessions

        try:
            senders = await play_visitors(agent, 14, seed=11)
        finally:
            await close_sessions()  # this loop's kept session to the action server
        found = []
        for sender in senders:
            tracker = await agent.tracker_store.retrieve_full_tracker(sender)
            found.append([Event.from_parameters(e.as_dict()) for e in tracker.events])  # as stored
        return found

    played = asyncio.run(conversations())
    assert sum(len(events) for events in played) > 1000
    assert len(temporary_checked) > 20 and all(temporary_checked)  # the forms' steps, from the kept replays
    assert any(isinstance(e, ActiveLoop) and e.name for events in played for e in events)  # pre-screens
    predictions = sum(check_growing(events, domain, predict=predictor(agent)) for events in played)
    assert predictions > 300
    assert len(rule_keys_checked) > predictions
    # the rules read no text: what visitors typed stands as "some text" in what is remembered
    texts = {e.text for events in played for e in events if isinstance(e, UserUttered) and e.text}
    remembered = [memo for policy in set(map(id, rule_keys_checked)) for memo in
                  next(p for p in rule_keys_checked if id(p) == policy).__dict__["_clinic_rule_keys"].values()]
    assert remembered and any(memo.found for memo in remembered)
    kept = repr([list(memo.found) for memo in remembered])
    assert "'text'" in kept and not [text for text in texts if repr(text) in kept]


def test_rules_that_read_a_text_are_not_remembered_for_texts(agent):
    nodes = agent.processor.graph_runner._instantiated_nodes.values()
    policy = next(n._component for n in nodes if isinstance(n._component, RulePolicy))  # the model's
    listen = {"prev_action": {"action_name": "action_listen"}}
    lookup = {'[{"prev_action": {"action_name": "action_listen"}, "user": {"text": "hi"}}]': "utter_greet",
              '[{"prev_action": {"action_name": "action_listen"}, "user": {"intent": "greet"}}]': "utter_greet"}
    for text in ("hi", "ho", "hi"):
        states = [{}, {**listen, "user": {"text": text}}]
        assert rule_keys.get_possible_keys(policy, lookup, states) == \
            rule_keys._rasa_get_possible_keys(policy, lookup, states)
        assert rule_keys.get_possible_keys(policy, lookup, [{}, {**listen, "user": {"intent": "greet"}}]) \
            == {list(lookup)[1]}
    memo = policy.__dict__["_clinic_rule_keys"][id(lookup)]
    assert memo.reads_text and len(memo.found) == 1  # the intent's states only


# --- copies for debug log lines -------------------------------------------------------------

def test_the_modules_copy_only_for_their_debug_log_lines():
    import ast
    import inspect

    for module in debug_log_copies._LOGGING_MODULES:
        tree = ast.parse(inspect.getsource(module))
        logged = {id(node) for call in ast.walk(tree) if isinstance(call, ast.Call)
                  and isinstance(call.func, ast.Attribute) and call.func.attr == "debug"
                  and isinstance(call.func.value, ast.Name) and call.func.value.id == "structlogger"
                  for node in ast.walk(call)}
        uses = [node for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id == "copy"]
        assert uses, module.__name__
        assert all(id(node) in logged for node in uses), module.__name__
        assert module.copy is debug_log_copies.LOG_ARGUMENT_COPIES


def test_log_arguments_are_copied_only_when_debug_events_are_written():
    import logging

    import structlog
    from rasa.utils.log_utils import configure_structlog

    saved = dict(structlog.get_config())
    events = [SlotSet("age", ["34"]), user("greet")]
    processor_copy = debug_log_copies._LOGGING_MODULES[0].copy
    try:
        configure_structlog(logging.INFO)
        assert debug_log_copies.debug_dropped()
        assert processor_copy.deepcopy(events) is events
        configure_structlog(logging.DEBUG)
        assert not debug_log_copies.debug_dropped()
        copied = processor_copy.deepcopy(events)
        assert copied == events and copied is not events and copied[0].value is not events[0].value
        assert processor_copy.copy is copy.copy  # the rest of the module as it is
    finally:
        structlog.configure(**saved)

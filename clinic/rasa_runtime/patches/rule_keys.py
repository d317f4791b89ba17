"""Patch: ``RulePolicy._get_possible_keys`` remembered by the last states.

``RulePolicy._get_possible_keys`` (which rules apply to the states; two lookups a prediction,
each checking ~100 rules against the last states) is remembered by the last states, as many as
its longest rule, and only what the rules read of them: what a visitor typed is never kept (it
stands as "some text" unless a rule reads a text: then not remembered). At most
``RULE_KEYS_KEPT`` answers a lookup, then forgotten.

Checked against Rasa 3.6.21. Gain when added: part of tracker_caches' (docs/PERFORMANCE.md:
"Dialogue bookkeeping"). Measured on 2026-12-06 with every patch on and off (`make bench`, Rasa's
CPU a turn at c=10: 14.3-17.1 ms with them, 26.5-26.7 without, a busy shared machine, two runs each
way) and this one left out alone (`scripts/bench_profile.py --without rule_keys`: not
distinguishable from that machine's noise of ~3 ms); docs/PERFORMANCE.md.
"""

from typing import Any, Dict, List, Set, Text

from rasa.core.policies.rule_policy import RulePolicy
from rasa.shared.core.constants import USER
from rasa.shared.core.domain import State
from rasa.shared.nlu.constants import TEXT

from clinic.rasa_runtime.patches.patching import Patch

_rasa_get_possible_keys = RulePolicy._get_possible_keys

RULE_KEYS_KEPT = 4096  # distinct ends of conversations remembered per rule lookup (then forgotten)


class _RuleKeys:
    """``_get_possible_keys``'s answers for one lookup of a RulePolicy, by the end of the states."""

    __slots__ = ("lookup", "size", "longest", "reads_text", "found")

    def __init__(self, lookup: Dict[Text, Text]) -> None:
        self.lookup = lookup
        self.size = len(lookup)
        rules = [RulePolicy._rule_key_to_state(key) for key in lookup]
        self.longest = max((len(states) for states in rules), default=0)
        self.reads_text = any(TEXT in (state.get(USER) or {}) for states in rules for state in states)
        self.found: Dict[Any, frozenset] = {}


_TEXT = object()  # what stands for a user's text in the remembered states


def _frozen(states: List[State], reads_text: bool) -> Any:
    """The states as a hashable value, equal when the states are equal for the rules; None when
    the rules read a user's text and a state has one (not remembered)."""
    frozen = []
    for state in states:
        items = []
        for key, sub_state in state.items():
            if key == USER and TEXT in sub_state:
                if reads_text:
                    return None
                sub_state = {**sub_state, TEXT: _TEXT}
            items.append((key, frozenset(sub_state.items())))
        frozen.append(frozenset(items))
    return tuple(frozen)


def get_possible_keys(self: RulePolicy, lookup: Dict[Text, Text], states: List[State]) -> Set[Text]:
    """``RulePolicy._get_possible_keys``, remembered by the last states (as many as the longest rule).

    A rule of n states is checked against the last n states only (older ones pass every rule), so
    the answer depends on the last states up to the longest rule's length, and only on the values
    the rules name (a user's text only if a rule has one: the text typed by a visitor is not
    kept, it stands as "some text").
    """
    memos = self.__dict__.setdefault("_clinic_rule_keys", {})
    memo = memos.get(id(lookup))
    if memo is None or memo.lookup is not lookup or memo.size != len(lookup):
        memo = memos[id(lookup)] = _RuleKeys(lookup)
    try:
        key = _frozen(states[-memo.longest:] if memo.longest else [], memo.reads_text)
    except TypeError:  # a value that cannot be hashed: not remembered
        key = None
    if key is None:
        return _rasa_get_possible_keys(self, lookup, states)
    found = memo.found.get(key)
    if found is None:
        found = frozenset(_rasa_get_possible_keys(self, lookup, states))
        if len(memo.found) >= RULE_KEYS_KEPT:
            memo.found.clear()
        memo.found[key] = found
    return set(found)


PATCH = Patch("rule_keys", (RulePolicy, "_get_possible_keys", get_possible_keys))

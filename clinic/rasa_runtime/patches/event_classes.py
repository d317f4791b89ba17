"""Patch: ``Event.resolve_by_type`` (the class of an event from its type name) from a table.

Rasa calls it for each event of a conversation each time it reads the conversation from the
tracker store, and it walks every subclass of ``Event`` each call: 14% of the Rasa server's CPU
in the profile (docs/PERFORMANCE.md). Here the first class found for each type name is kept,
in the order Rasa walks them, so the answer is the same; the table is made again when a new
subclass of ``Event`` is defined (``Event.__init_subclass__``), and names it does not hold go to
Rasa's own lookup (the old "topic" events, a default, or its ValueError).

Checked against Rasa 3.6.21. Gain when added: 14% of the Rasa server's CPU in the profile
(docs/PERFORMANCE.md). Measured on 2026-12-06 with every patch on and off (`make bench`, Rasa's CPU
a turn at c=10: 14.3-17.1 ms with them, 26.5-26.7 without, a busy shared machine, two runs each way)
and this one left out alone (`scripts/bench_profile.py --without event_classes`: not distinguishable
from that machine's noise of ~3 ms); docs/PERFORMANCE.md.
"""

from typing import Dict, Optional, Text, Type

from rasa.shared.core import events
from rasa.shared.utils.common import all_subclasses

from clinic.rasa_runtime.patches.patching import Patch

_rasa_resolve_by_type = events.Event.resolve_by_type
_event_classes: Optional[Dict[Text, Type[events.Event]]] = None


def _classes() -> Dict[Text, Type[events.Event]]:
    global _event_classes
    table = _event_classes
    if table is None:
        table = {}
        for cls in all_subclasses(events.Event):  # Rasa's order: the first match wins, as in its loop
            table.setdefault(cls.type_name, cls)
        _event_classes = table
    return table


def resolve_by_type(
    type_name: Text, default: Optional[Type[events.Event]] = None
) -> Optional[Type[events.Event]]:
    """``Event.resolve_by_type``, from a table."""
    found = _classes().get(type_name)
    if found is not None:
        return found
    return _rasa_resolve_by_type(type_name, default)


def _forget_event_classes(cls: type, **kwargs: object) -> None:
    """A new subclass of Event: the table is made again on the next lookup."""
    global _event_classes
    _event_classes = None
    super(events.Event, cls).__init_subclass__(**kwargs)


PATCH = Patch(
    "event_classes",
    (events.Event, "__init_subclass__", classmethod(_forget_event_classes)),
    (events.Event, "resolve_by_type", staticmethod(resolve_by_type)),
)

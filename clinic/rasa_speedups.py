"""Speed-ups of Rasa 3.6's own code for each turn, same results (README "Performance").

``install()`` puts them in place; clinic/tracker_store.py calls it when Rasa loads the tracker
store named in the endpoints, so they are in the Rasa server whatever the model's config.

- ``Event.resolve_by_type`` (the class of an event from its type name, used for each event of a
  conversation each time Rasa reads it from the tracker store) walks every subclass of ``Event``
  each call: 14% of the Rasa server's CPU in the profile. Here the first class found for each
  type name is kept, in the order Rasa walks them, so the answer is the same; the table is made
  again when a new subclass of ``Event`` is defined, and names it does not hold go to Rasa's own
  lookup (the old "topic" events, a default, or its ValueError).
- ``RemoteAction._validate_action_result`` (each answer of the action server checked against
  Rasa's JSON schema) calls ``jsonschema.validate``, which first checks the schema itself
  against its meta-schema, every call: three quarters of the check's time. Here the schema is
  checked once and its validator kept; answers are checked, and fail, as before.
"""

from typing import Any, Callable, Dict, Optional, Text, Type

import jsonschema
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL
from rasa.shared.core import events
from rasa.shared.utils.common import all_subclasses

from clinic import dialogue_speedups

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


_rasa_validate_action_result = RemoteAction._validate_action_result
_validators: Dict[Callable[[], Dict[Text, Any]], Any] = {}  # by the class's schema function


def validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
    """``RemoteAction._validate_action_result``, with the schema checked once."""
    spec = type(self).action_response_format_spec
    validator = _validators.get(spec)
    if validator is None:
        schema = spec()
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        validator = _validators[spec] = cls(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(result))
    if error is not None:  # what jsonschema.validate raises, with Rasa's words added
        error.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error
    return True


def install() -> None:
    """Put the speed-ups in place (once; again is harmless)."""
    if events.Event.resolve_by_type is not resolve_by_type:
        events.Event.__init_subclass__ = classmethod(_forget_event_classes)  # type: ignore[assignment]
        events.Event.resolve_by_type = staticmethod(resolve_by_type)  # type: ignore[assignment]
    RemoteAction._validate_action_result = validate_action_result  # type: ignore[assignment]
    dialogue_speedups.install()

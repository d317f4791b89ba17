"""Patch: ``RemoteAction._validate_action_result``, the schema checked once, each event against
its own type's part of it.

``RemoteAction._validate_action_result`` (each answer of the action server checked against
Rasa's JSON schema) calls ``jsonschema.validate``, which first checks the schema itself
against its meta-schema, every call: three quarters of the check's time. Here the schema is
checked once and its validator kept; answers are checked, and fail, as before. Most of what is
left is the events' ``oneOf`` over the 23 event types: jsonschema tries every alternative for
every event (and builds an error for each one that fails). Each alternative of Rasa's schema
names its event type (``"event": {"const": name}``, one alternative per name), so an event
whose ``event`` is a name of the table can only match that alternative: an answer is first
checked as an object with its ``events`` an array (``events`` items not checked), then each
event against the common part of the event schema and its own type's alternative. When all
of that passes, the whole schema does; when anything fails, is not an object with a known
type name, or the schema is not shaped so, the whole check runs as before (same verdict,
same error).

Checked against Rasa 3.6.21. Gain when added: the check 3.9 -> 0.1 ms a turn (docs/PERFORMANCE.md).
Measured on 2026-12-06 with every patch on and off (`make bench`, Rasa's CPU a turn at c=10:
14.3-17.1 ms with them, 26.5-26.7 without, a busy shared machine, two runs each way) and this one
left out alone (`scripts/bench_profile.py --without action_result_check`: not distinguishable from
that machine's noise of ~3 ms); docs/PERFORMANCE.md.
"""

from typing import Any, Callable, Dict, List, Optional, Text, Tuple

import jsonschema
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL

from clinic.rasa_runtime.patches.patching import Patch

_rasa_validate_action_result = RemoteAction._validate_action_result
_validators: Dict[Callable[[], Dict[Text, Any]], "_Validators"] = {}  # by the class's schema function


class _Validators:
    """The validator of an answer's schema, and of each event type's part of it when the schema
    is shaped so (``by_type`` empty otherwise: every answer gets the whole check)."""

    def __init__(self, schema: Dict[Text, Any]) -> None:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        self.whole = cls(schema)
        self.answer: Optional[Any] = None  # the answer with its events only an array
        self.by_type: Dict[Text, Any] = {}
        shape = _events_by_type(schema)
        if shape is not None:
            answer_schema, event_schemas = shape
            self.answer = cls(answer_schema)
            self.by_type = {name: cls(part) for name, part in event_schemas.items()}

    def passes(self, result: Any) -> bool:
        """True only when ``result`` passes the whole schema (False: unsure, check it whole)."""
        if self.answer is None or type(result) is not dict or not self.answer.is_valid(result):
            return False
        for event in result.get("events") or ():
            name = event.get("event") if type(event) is dict else None
            validator = self.by_type.get(name) if type(name) is str else None
            if validator is None or not validator.is_valid(event):
                return False
        return True


def _events_by_type(schema: Dict[Text, Any]) -> Optional[Tuple[Dict[Text, Any], Dict[Text, Dict[Text, Any]]]]:
    """The answer's schema with ``events`` only an array, and each event type's schema (the
    common part and its alternative), when every alternative of the events' ``oneOf`` names
    one event type of its own; else None."""
    try:
        events_schema = schema["properties"]["events"]
        event_schema = events_schema["items"]
        alternatives: List[Dict[Text, Any]] = event_schema["oneOf"]
    except (KeyError, TypeError):
        return None
    if set(events_schema) != {"type", "items"} or events_schema["type"] != "array":
        return None
    if event_schema.get("type") != "object" or "event" not in event_schema.get("required", ()):
        return None
    common = {key: value for key, value in event_schema.items() if key != "oneOf"}
    by_type: Dict[Text, Dict[Text, Any]] = {}
    for alternative in alternatives:
        try:
            name = alternative["properties"]["event"]["const"]
        except (KeyError, TypeError):
            return None
        if type(name) is not str or alternative["properties"]["event"] != {"const": name} or name in by_type:
            return None
        by_type[name] = {"allOf": [common, alternative]}
    answer = dict(schema, properties=dict(schema["properties"], events={"type": "array"}))
    return answer, by_type


def validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
    """``RemoteAction._validate_action_result``, with the schema checked once."""
    spec = type(self).action_response_format_spec
    validators = _validators.get(spec)
    if validators is None:
        validators = _validators[spec] = _Validators(spec())
    if validators.passes(result):
        return True
    error = jsonschema.exceptions.best_match(validators.whole.iter_errors(result))
    if error is not None:  # what jsonschema.validate raises, with Rasa's words added
        error.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error
    return True


PATCH = Patch("action_result_check", (RemoteAction, "_validate_action_result", validate_action_result))

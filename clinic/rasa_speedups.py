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
- ``RemoteAction``'s endpoint (``self.action_endpoint``) becomes a clinic.action_endpoint
  ``ActionEndpoint`` (one per endpoint configuration): its HTTP session kept, the body written
  by ujson; the sessions are closed when the Rasa server stops (after Sanic's
  ``server.shutdown.after`` event, where Rasa closes its own resources).
"""

from typing import Any, Callable, Dict, List, Optional, Text, Tuple, Type

import jsonschema
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL
from rasa.shared.core import events
from rasa.shared.utils.common import all_subclasses
from rasa.utils.endpoints import EndpointConfig
from sanic import Sanic

from clinic import action_endpoint, dialogue_speedups, graph_runner

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


_rasa_remote_action_init = RemoteAction.__init__
_action_endpoints: List[Tuple[EndpointConfig, action_endpoint.ActionEndpoint]] = []  # Rasa's, ours


def kept_endpoint(endpoint: Optional[EndpointConfig]) -> Optional[EndpointConfig]:
    """The ``ActionEndpoint`` of Rasa's endpoint configuration (the same one each time)."""
    if endpoint is None or isinstance(endpoint, action_endpoint.ActionEndpoint):
        return endpoint
    for rasa_endpoint, ours in _action_endpoints:
        if rasa_endpoint is endpoint:
            return ours
    ours = action_endpoint.ActionEndpoint.of(endpoint)
    _action_endpoints.append((endpoint, ours))
    return ours


def remote_action_init(self: RemoteAction, name: Text, endpoint: Optional[EndpointConfig]) -> None:
    """``RemoteAction.__init__``, with the endpoint whose session is kept."""
    _rasa_remote_action_init(self, name, kept_endpoint(endpoint))


_sanic_server_event = Sanic._server_event


async def _server_event(self: Sanic, concern: str, action: str, *args: Any, **kwargs: Any) -> None:
    """Sanic's server events; after the last one (``server.shutdown.after``) the action
    server's kept sessions are closed."""
    try:
        await _sanic_server_event(self, concern, action, *args, **kwargs)
    finally:
        if (concern, action) == ("shutdown", "after"):
            await action_endpoint.close_sessions()


def install() -> None:
    """Put the speed-ups in place (once; again is harmless)."""
    if events.Event.resolve_by_type is not resolve_by_type:
        events.Event.__init_subclass__ = classmethod(_forget_event_classes)  # type: ignore[assignment]
        events.Event.resolve_by_type = staticmethod(resolve_by_type)  # type: ignore[assignment]
    RemoteAction._validate_action_result = validate_action_result  # type: ignore[assignment]
    if RemoteAction.__init__ is not remote_action_init:
        RemoteAction.__init__ = remote_action_init  # type: ignore[assignment]
        Sanic._server_event = _server_event  # type: ignore[assignment]
    graph_runner.install()
    dialogue_speedups.install()

"""The REST channel the web app talks to, keeping the parse of a button's payload.

credentials.yml names this class (a custom connector, Rasa's supported way to add a channel);
it is Rasa's own ``RestInput`` under the same name (``rest``: the URL stays
``/webhooks/rest/webhook`` and the events' ``input_channel`` stays ``rest``) with one
difference: a message whose text is exactly the payload of one of the domain's buttons ("Yes",
"Mornings", "/human_handoff") is parsed once per loaded model, and each later message with that
text carries that parse (``UserMessage.parse_data``, which Rasa's processor uses instead of
running the NLU graph again). A parse depends on the text and the model only (no NLU component
of config.yml reads the tracker or the message's metadata), so the events are the ones the graph
would give; ``tests/test_rest_channel.py`` compares them on whole conversations.

What it saves: about a third of the bench's turns are button presses, and the NLU graph costs
2-4 ms a parse of such a short text (spaCy's NER, the sentence embedder's kept vector, the
intent classifier, the safety layer); docs/PERFORMANCE.md has the measured figures.

Only payloads written out in the domain are kept: a payload with ``{`` is a template Rasa
fills in (``/faq_more{{"topic": ...}}``) and buttons made by the action server (did you mean)
are not in the domain; both are parsed by the graph every time, as is any typed text. The
kept parse of a model goes when the model does (a new model is a new processor).
"""

import copy
import weakref
from typing import Any, Awaitable, Callable, Dict, FrozenSet, Optional

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint

# A loaded model's processor -> {button payload: its parse}; gone with the processor.
_KEPT: "weakref.WeakKeyDictionary[Any, Dict[str, Dict[str, Any]]]" = weakref.WeakKeyDictionary()


def button_payloads(domain: Any) -> FrozenSet[str]:
    """The payloads of the domain's buttons that are sent as they are written (no template)."""
    found = set()
    for variations in (getattr(domain, "responses", None) or {}).values():
        for variation in variations or []:
            for button in (variation or {}).get("buttons") or []:
                payload = button.get("payload") if isinstance(button, dict) else None
                if isinstance(payload, str) and payload.strip() and "{" not in payload:
                    found.add(payload)
    return frozenset(found)


async def kept_parse(processor: Any, text: str) -> Optional[Dict[str, Any]]:
    """A copy of the parse of ``text`` by ``processor``'s model when ``text`` is a button's
    payload (parsed the first time, then kept); None for any other text."""
    kept = _KEPT.get(processor)
    if kept is None:
        kept = _KEPT[processor] = {payload: {} for payload in button_payloads(processor.domain)}
    if text not in kept:
        return None
    if not kept[text]:
        kept[text] = await processor.parse_message(UserMessage(text))
    return copy.deepcopy(kept[text])


class ClinicRestInput(RestInput):
    """Rasa's REST channel, with a button payload's parse kept (module docstring)."""

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        app_of_server: Dict[str, Any] = {}

        async def with_kept_parse(message: UserMessage) -> Any:
            agent = getattr(getattr(app_of_server.get("app"), "ctx", None), "agent", None)
            processor = getattr(agent, "processor", None)
            if processor is not None and message.parse_data is None and isinstance(message.text, str):
                message.parse_data = await kept_parse(processor, message.text)
            return await on_new_message(message)

        blueprint = super().blueprint(with_kept_parse)

        @blueprint.listener("before_server_start")
        async def remember_app(app: Any, _loop: Any) -> None:
            app_of_server["app"] = app

        return blueprint

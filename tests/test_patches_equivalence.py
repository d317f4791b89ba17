"""Whole conversations give the same events with the clinic's patches of Rasa and without them
(clinic/rasa_runtime/patches/, issue 21): the user turns of the test stories (tests/stories, what
`make test-core` plays) and the bench's simulated visitors (FAQ, pre-screen to a referral,
handoff, crisis: the end-to-end conversations), each played through the trained model as the
REST channel plays them (``Agent.handle_message``, the custom actions on a real action server),
once with every patch in place and once on Rasa's own code; the event lists, read back from the
tracker store, are compared without their timestamps (and without what is drawn at random: the
message ids Rasa gives, a referral's reference code, the place in the queue for a person, which the conversations before
count).
"""

import asyncio
import uuid
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import yaml

from clinic.rasa_runtime.patches import applied as patches_applied
from clinic.rasa_runtime.patches import rasa_own
from tests.conversation_events import comparable, first_difference

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    """The trained model with every patch in place, the action server of a temporary stack."""
    from tests.stack import agent_with_actions

    with patches_applied():
        loop = asyncio.new_event_loop()
        try:
            with agent_with_actions(tmp_path_factory.mktemp("patches-equivalence"), loop) as loaded:
                yield loaded, loop
                from clinic.rasa_runtime.patches.kept_action_session import close_sessions

                loop.run_until_complete(close_sessions())
        finally:
            loop.close()


def story_turns() -> List[Tuple[str, List[str]]]:
    """Each test story's name and the texts of its user turns, in order."""
    found = []
    for path in sorted((ROOT / "tests" / "stories").glob("*.yml")):
        for story in yaml.safe_load(path.read_text(encoding="utf-8")).get("stories", []):
            texts = [str(step["user"]).strip() for step in story["steps"] if "user" in step]
            if texts:
                found.append((story["story"], texts))
    return found


async def play(agent: Any, messages: List[Tuple[str, Dict[str, Any]]]) -> List[Dict[str, Any]]:
    """One new conversation of these messages (text, metadata); its events as stored."""
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

    sender = uuid.uuid4().hex
    for text, metadata in messages:
        await agent.handle_message(UserMessage(text, CollectingOutputChannel(), sender, input_channel="rest",
                                               metadata=metadata))
    tracker = await agent.tracker_store.retrieve_full_tracker(sender)
    return [event.as_dict() for event in tracker.events]


def both_ways(agent: Any, loop: asyncio.AbstractEventLoop, messages: List[Tuple[str, Dict[str, Any]]]) -> Any:
    patched = loop.run_until_complete(play(agent, messages))
    with rasa_own():
        own = loop.run_until_complete(play(agent, messages))
    return comparable(patched), comparable(own)


def test_the_test_stories_give_the_same_events_with_and_without_the_patches(agent):
    agent, loop = agent
    stories = story_turns()
    assert len(stories) >= 20
    for name, texts in stories:
        patched, own = both_ways(agent, loop, [(text, {}) for text in texts])
        assert len(patched) > 2 * len(texts), name  # session start, and the turns' events
        assert patched == own, (name, first_difference(patched, own))


def test_the_bench_visitors_give_the_same_events_with_and_without_the_patches(agent):
    """Simulated visitors answer what the bot asks (buttons included): each is played once with
    the patches, its messages as sent recorded, then the same messages on Rasa's own code."""
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

    from scripts.bench_visitors import Visitors, rasa_message

    agent, loop = agent
    visitors = Visitors(seed=11)
    kinds = set()
    for _ in range(12):
        script = visitors.next()
        sender, last, sent = uuid.uuid4().hex, [], []
        for kind, value in script.steps:
            text, metadata = rasa_message(kind, value, last)
            out = CollectingOutputChannel()
            loop.run_until_complete(agent.handle_message(
                UserMessage(text, out, sender, input_channel="rest", metadata=metadata)))
            sent.append((text, metadata))
            last = out.messages
            kinds.add(kind)
        patched = comparable([e.as_dict() for e in
                              loop.run_until_complete(agent.tracker_store.retrieve_full_tracker(sender)).events])
        with rasa_own():
            own = comparable(loop.run_until_complete(play(agent, sent)))
        assert patched == own, (sent, first_difference(patched, own))
    assert len(kinds) > 1

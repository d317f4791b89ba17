"""clinic/rasa_launch.py's garbage-collection set-up: what the first model load leaves is frozen
(the collector stops walking it), a later load gives it back, a failed load freezes nothing."""

import asyncio
import gc
import weakref

import pytest
import rasa.core.agent
import rasa.core.run
import rasa.server

from clinic import rasa_launch


class Agent:
    def __init__(self, ready: bool) -> None:
        self.ready = ready

    def is_ready(self) -> bool:
        return self.ready


class Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def loads(monkeypatch):
    """Rasa's load_agent replaced by one recording how many objects were frozen at each call and
    answering the agents queued in ``answers``; the launcher's wrapper installed around it."""
    seen, answers = [], []

    async def load_agent(*args, **kwargs):
        seen.append(gc.get_freeze_count())
        return answers.pop(0)

    monkeypatch.setattr(rasa.core.agent, "load_agent", load_agent)
    rasa_launch.freeze_after_first_model_load()
    rasa_launch.freeze_after_first_model_load()  # installed once, whoever calls it again
    assert rasa.core.agent.load_agent.__wrapped__ is load_agent
    try:
        yield seen, answers
    finally:
        gc.unfreeze()


def load(**kwargs):
    return asyncio.new_event_loop().run_until_complete(rasa.core.agent.load_agent(model_path="m", **kwargs))


def test_the_first_load_freezes_what_is_alive_and_a_later_load_gives_it_back(loads):
    seen, answers = loads
    gc.unfreeze()
    before = Cycle()
    answers.extend([Agent(True), Agent(True)])
    load()
    assert seen == [0] and gc.get_freeze_count() > 0
    assert not any(obj is before for gen in range(3) for obj in gc.get_objects(gen))  # in the frozen generation
    made_after = weakref.ref(Cycle())  # garbage made by a turn: collected as before
    gc.collect()
    assert made_after() is None
    load()  # a model replaced through the HTTP API
    assert seen[1] == 0 and gc.get_freeze_count() == 0


def test_a_failed_first_load_freezes_nothing(loads):
    seen, answers = loads
    gc.unfreeze()
    answers.extend([None, Agent(False)])
    load()
    load()
    assert seen == [0, 0] and gc.get_freeze_count() == 0


def test_the_start_and_the_http_api_load_through_the_wrapper(loads):
    # both call it through the module (rasa/core/run.py: agent.load_agent, rasa/server.py:
    # rasa.core.agent.load_agent), so the wrapper installed there is what they call
    assert rasa.core.run.agent is rasa.core.agent and rasa.server.rasa.core.agent is rasa.core.agent

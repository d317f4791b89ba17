"""The garbage-collection set-up. clinic/rasa_runtime/patches/freeze_after_model_load.py (the Rasa
server): what the first model load leaves is frozen (the collector stops walking it), a later
load gives it back, a failed load freezes nothing. clinic/rasa_runtime/action_launch.py: frozen once the
action server's app is made; every way of starting the action server goes through it."""

import asyncio
import gc
import weakref

import pytest
import rasa.core.agent
import rasa_sdk.endpoint
import rasa.core.run
import rasa.server

from clinic.rasa_runtime import action_launch
from clinic.rasa_runtime.patches import freeze_after_model_load
from tests.scale_stack import ScaleStack
from tests.stack import Stack


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
    answering the agents queued in ``answers``; the patch's wrapper installed around it."""
    seen, answers = [], []

    async def load_agent(*args, **kwargs):
        seen.append(gc.get_freeze_count())
        return answers.pop(0)

    monkeypatch.setattr(freeze_after_model_load, "_rasa_load_agent", load_agent)
    monkeypatch.setattr(freeze_after_model_load, "_loads", [0])
    patch = freeze_after_model_load.PATCH
    was = patch.installed()
    patch.install()
    patch.install()  # again: harmless
    assert rasa.core.agent.load_agent is freeze_after_model_load.load_agent_then_freeze
    try:
        yield seen, answers
    finally:
        gc.unfreeze()
        if not was:
            patch.uninstall()


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


class MadeApp:
    """What rasa_sdk's create_app returns, as far as the launcher uses it (its middleware)."""

    def __init__(self) -> None:
        self.middleware = []

    def register_middleware(self, handler, attach_to):
        self.middleware.append((handler, attach_to))


@pytest.mark.parametrize("auto_reload", [False, True])
def test_the_action_server_freezes_what_is_alive_once_its_app_is_made(monkeypatch, auto_reload):
    made = []
    app = MadeApp()
    monkeypatch.setattr(rasa_sdk.endpoint, "create_app", lambda *a, **k: made.append(gc.get_freeze_count()) or app)
    args = rasa_sdk.endpoint.create_argument_parser().parse_args(["--actions", "actions"] + ["--auto-reload"] * auto_reload)
    try:
        gc.unfreeze()
        assert action_launch.make_app(args, "s3cret") is app
        assert made == [0]
        assert [attach for _, attach in app.middleware] == ["request"]  # the secret is checked on every request
        # with --auto-reload rasa_sdk imports the actions again and again: nothing is frozen
        assert (gc.get_freeze_count() > 0) is not auto_reload
    finally:
        gc.unfreeze()


def test_every_way_of_starting_the_action_server_goes_through_the_launcher(tmp_path):
    """`make run` (the Procfile), the test stack, the scale stack (and so `make scale-up`, bench.py)."""
    procfile = next(line for line in open("Procfile") if line.startswith("actions:")).split()
    assert procfile[1] == "SANIC_HOST=127.0.0.1" and procfile[2:6] == [".venv/bin/python", "-m", "clinic.rasa_runtime.action_launch", "--actions"]
    (tmp_path / "one").mkdir()
    stack = Stack(tmp_path / "one").commands()["actions"]
    scale = ScaleStack(tmp_path / "scale").commands()
    for command in (stack, scale["actions1"], scale["actions2"]):
        assert command[1:4] == ["-m", "clinic.rasa_runtime.action_launch", "--actions"]


def test_the_action_launcher_takes_the_arguments_as_rasa_run_actions_spells_them():
    from rasa_sdk.endpoint import create_argument_parser

    given = ["--actions", "actions", "--port", "5055", "--logging-config-file", "settings/logging.yml", "-v"]
    args = create_argument_parser().parse_args(action_launch.sdk_argv(given))
    assert (args.actions, args.port, args.logging_config_file) == ("actions", 5055, "settings/logging.yml")
    args = create_argument_parser().parse_args(action_launch.sdk_argv(["--logging-config-file=x.yml"]))
    assert args.logging_config_file == "x.yml"

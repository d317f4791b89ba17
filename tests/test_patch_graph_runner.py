"""clinic/rasa_runtime/patches/graph_runner.py: the trained model's graph run without dask gives what dask gives."""

import copy
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest
from rasa.engine.exceptions import GraphRunError
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.core.channels.channel import UserMessage

from clinic.rasa_runtime.patches import graph_runner
from clinic.nlu.evaluation import load_examples
from clinic.rasa_runtime import patches
from clinic.rasa_runtime.patches import applied as patches_applied


@pytest.fixture(autouse=True, scope="module")
def _patches_under_test():
    """The patches these tests test, in place whatever CLINIC_RASA_PATCHES says."""
    with patches_applied():
        yield


ROOT = Path(__file__).resolve().parent.parent
TEXTS = [text for text, _ in load_examples(ROOT / "tests" / "nlu" / "heldout.yml")][::4] + [
    "hi", "am i eligible?", "can i talk to a real person", "thanks, bye", "/affirm", "I'm 34 and live in Texas", "i want to kill myself", "x" * 2000,
]


def _plain(key: str, value: Any) -> Any:
    """spaCy docs (equal only to themselves) as their tokens, embeddings (NumPy) as lists."""
    if key.endswith("spacy_doc"):
        return [t.text for t in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if key == "sentence_parts":
        return [(text, vector.tolist()) for text, vector in value]
    return value


def comparable(message: Any) -> Dict[str, Any]:
    """A parsed message's data, in values that compare."""
    return {key: _plain(key, value) for key, value in message.as_dict().items()}


@pytest.fixture
def both_runners():
    """Calls ``runner.run`` with dask (Rasa's own) and with the patch, in turn."""
    installed = DaskGraphRunner.run

    def run_both(runner: Any, make_inputs: Any, targets: List[str]) -> List[Dict[str, Any]]:
        outputs = []
        for own in (graph_runner.PATCH.uninstall, graph_runner.PATCH.install):
            own()
            outputs.append(runner.run(inputs=make_inputs(), targets=targets))
        return outputs
    yield run_both
    DaskGraphRunner.run = installed


def test_the_run_order_puts_each_node_after_what_it_needs(agent):
    runner = agent.processor.graph_runner
    for targets in ([agent.processor.model_metadata.nlu_target], [agent.processor.model_metadata.core_target]):
        order = graph_runner.run_order(runner, targets)
        names = [name for name, _, _ in order]
        assert len(names) == len(set(names))
        expected = set(runner._graph_schema.minimal_graph_schema(targets).nodes)
        assert set(names) == expected
        for position, (name, _, needs) in enumerate(order):
            assert [p for p in needs if p in expected and p not in names[:position]] == [], name
        assert names[-1] == targets[0]
        assert graph_runner.run_order(runner, targets) is order  # kept


def test_messages_parse_as_with_dask(agent, both_runners):
    runner, target = agent.processor.graph_runner, agent.processor.model_metadata.nlu_target
    for text in TEXTS:
        tracker = DialogueStateTracker("graph-runner-test", agent.domain.slots)
        dask_out, ours = both_runners(
            runner, lambda: {"__message__": [UserMessage(text, sender_id="graph-runner-test", message_id="m1")], "__tracker__": tracker}, [target])
        assert list(ours) == list(dask_out) == [target]
        assert [comparable(m) for m in ours[target]] == [comparable(m) for m in dask_out[target]], text
        assert ours[target][0].get("intent") is not None


def test_predictions_are_dasks(agent, both_runners, parse):
    runner, target = agent.processor.graph_runner, agent.processor.model_metadata.core_target
    predicted = set()
    for text in TEXTS[:40] + TEXTS[-9:]:
        tracker = DialogueStateTracker("graph-runner-test", agent.domain.slots)
        tracker.update(ActionExecuted("action_listen"))
        parsed = parse(text)
        tracker.update(UserUttered(text, intent=parsed["intent"], entities=parsed["entities"], parse_data=parsed))
        for _ in range(2):  # the prediction after the message, then after the action predicted
            dask_out, ours = both_runners(runner, lambda: {"__tracker__": copy.deepcopy(tracker)}, [target])
            assert list(ours) == list(dask_out) == [target]
            assert ours[target] == dask_out[target], text
            action = agent.domain.action_names_or_texts[ours[target].max_confidence_index]
            predicted.add(action)
            tracker.update(ActionExecuted(action))
    assert len(predicted) > 5  # many paths of the graph, not one


def test_an_input_named_like_a_node_is_refused_as_by_rasa(agent, both_runners):
    runner, target = agent.processor.graph_runner, agent.processor.model_metadata.core_target
    node = graph_runner.run_order(runner, [target])[0][0]
    for own in (graph_runner.PATCH.uninstall, graph_runner.PATCH.install):
        own()
        with pytest.raises(GraphRunError, match="clashes with a node name"):
            runner.run(inputs={"__tracker__": node}, targets=[target])
    graph_runner.PATCH.install()


def test_a_node_failing_fails_the_run_as_with_dask(agent, both_runners, monkeypatch):
    from rasa.shared.exceptions import RasaException

    runner, target = agent.processor.graph_runner, agent.processor.model_metadata.nlu_target
    node = runner._instantiated_nodes[graph_runner.run_order(runner, [target])[-1][0]]
    for error in (RuntimeError("boom"), ValueError("boom"), RasaException("boom")):
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise error
        monkeypatch.setattr(node, "_fn", fail)
        raised = []
        for own in (graph_runner.PATCH.uninstall, graph_runner.PATCH.install):
            own()
            with pytest.raises(Exception) as caught:
                runner.run(inputs={"__message__": [UserMessage("hi")], "__tracker__": None}, targets=[target])
            raised.append((type(caught.value), str(caught.value), type(caught.value.__cause__)))
        assert raised[0] == raised[1], error


def test_installed_by_the_patch_package():
    assert DaskGraphRunner.run is graph_runner.run
    assert "graph_runner" in patches.installed()

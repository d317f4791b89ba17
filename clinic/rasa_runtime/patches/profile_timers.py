"""Not installed by ``install()``: timers wrapped around Rasa's methods for
scripts/bench_profile.py (where a turn spends its time) and around a loaded model's graph
components for scripts/bench_parse.py (what a parse costs), measuring tools, never in a server.

``install_timers(store)`` replaces each timed method with a wrapper adding its wall time and this
thread's CPU time to ``TIMES`` and ``CPU`` (and a call to ``COUNTS``) under its label; the
timers stay until the process ends. They are patches of Rasa's classes, so they live here.
"""

import asyncio
import functools
import time
from collections import defaultdict
from typing import Any, Callable, Dict, List

TIMES: Dict[str, float] = defaultdict(float)
CPU: Dict[str, float] = defaultdict(float)  # this thread's CPU time (no waiting on disk or other processes)
COUNTS: Dict[str, int] = defaultdict(int)


def timed(owner: Any, method: str, label: Callable[..., str]) -> None:
    """Replace owner.method with a wrapper adding its wall time to TIMES[label(self, ...)]."""
    original = getattr(owner, method)
    if asyncio.iscoroutinefunction(original):
        @functools.wraps(original)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return await original(*args, **kwargs)
            finally:
                key = label(*args)
                TIMES[key] += time.perf_counter() - started
                CPU[key] += time.thread_time() - cpu
                COUNTS[key] += 1
    else:
        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                key = label(*args)
                TIMES[key] += time.perf_counter() - started
                CPU[key] += time.thread_time() - cpu
                COUNTS[key] += 1
    setattr(owner, method, wrapper)


def install_timers(store: type) -> None:
    """``store``: the class of the agent's tracker store (Rasa's SQLTrackerStore or the clinic's)."""
    from rasa.core.actions.action import RemoteAction
    from rasa.core.processor import MessageProcessor
    from rasa.engine.graph import GraphNode
    from rasa.shared.core.trackers import DialogueStateTracker

    timed(MessageProcessor, "handle_message", lambda *a: "turn (handle_message)")
    timed(MessageProcessor, "parse_message", lambda *a: "NLU (parse_message)")
    timed(MessageProcessor, "_predict_next_with_tracker", lambda *a: "policies (_predict_next_with_tracker)")
    timed(store, "_retrieve", lambda *a: "tracker store: read")
    timed(store, "save", lambda *a: "tracker store: save")
    timed(DialogueStateTracker, "from_dict", lambda *a: "  of which replaying events (from_dict)")
    timed(RemoteAction, "run", lambda self, *a: "custom actions (action server)")
    timed(RemoteAction, "run", lambda self, *a: f"  action {self.name()}")
    timed(GraphNode, "__call__", lambda self, *a: f"  node {self._node_name}")


def time_components(agent: Any, timings: Dict[str, List[float]]) -> None:
    """Each NLU component of ``agent``'s loaded model timed on its own: the wall time of each of
    its calls, in ms, appended to ``timings[<its class name>]`` (the graph's nodes' functions
    wrapped: a patch of that model's objects, for the measuring script only)."""
    for name, node in agent.processor.graph_runner._instantiated_nodes.items():
        component = node._component
        if not name.startswith("run_") or not hasattr(component, "process"):
            continue

        def timed(self: Any, _fn: Callable = node._fn, _label: str = type(component).__name__, **kwargs: Any) -> Any:
            started = time.perf_counter()  # GraphNode calls its class's function with itself
            result = _fn(self, **kwargs)
            timings[_label].append((time.perf_counter() - started) * 1000)
            return result

        node._fn = timed

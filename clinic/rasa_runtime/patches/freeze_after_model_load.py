"""Patch: Rasa's ``load_agent`` (the start's and the HTTP API's) wrapped so that, after the first
model load, everything then alive is frozen out of Python's cyclic garbage collector.

Once the model is loaded the server holds ~600,000 objects (Rasa, TensorFlow, spaCy, the model),
and each full collection of Python's cyclic garbage collector walked them all: ~180 ms of CPU,
about every 5 s under load (a tenth of the server's CPU at `make bench`'s concurrency 10, as
measured when it was added). After that first load, ``gc.freeze()`` moves everything then alive
to a permanent generation the collector no longer walks; what turns make is collected as
before. Frozen objects are never collected as cyclic garbage, so a model loaded later through
Rasa's HTTP API (``PUT /model``, or an evaluation's: the clinic restarts the server for a new
model) first gives them back to the collector (``gc.unfreeze()``) and nothing is frozen again.

Checked against Rasa 3.6.21. Gain when added: a tenth of the Rasa server's CPU at c=10
(docs/PERFORMANCE.md: "Garbage collection"). Measured on 2026-12-06 with every patch on and off
(`make bench`, Rasa's CPU a turn at c=10: 14.3-17.1 ms with them, 26.5-26.7 without, a busy shared
machine, two runs each way) and this one left out alone (`scripts/bench_profile.py --without
freeze_after_model_load`: not distinguishable from that machine's noise of ~3 ms); docs/PERFORMANCE.md."""

import functools
import gc
from typing import Any

import rasa.core.agent

from clinic.rasa_runtime.patches.patching import Patch

_rasa_load_agent = rasa.core.agent.load_agent
_loads = [0]


@functools.wraps(_rasa_load_agent)
async def load_agent_then_freeze(*args: Any, **kwargs: Any) -> Any:
    """Rasa's ``load_agent``; after the first load that gives a ready agent, ``gc.freeze()``."""
    _loads[0] += 1
    if _loads[0] > 1:
        gc.unfreeze()
    agent = await _rasa_load_agent(*args, **kwargs)
    if _loads[0] == 1 and agent is not None and agent.is_ready():
        gc.collect()
        gc.freeze()
    return agent


PATCH = Patch("freeze_after_model_load", (rasa.core.agent, "load_agent", load_agent_then_freeze))

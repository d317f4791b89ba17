"""Starts the Rasa server (``rasa run``) with its HTTP API behind the token of the settings.

    python -m clinic.rasa_launch --model models/clinic.tar.gz --enable-api --interface 127.0.0.1 ...

Every argument is one of ``rasa run``'s, except the token: this adds ``--auth-token`` with
``RASA_TOKEN``, else the token generated once into ``var/rasa_token`` (``clinic.settings``),
which the web app and the console send. Rasa 3.6 reads the token from its command line only
(no environment variable, nothing in endpoints.yml or credentials.yml), and a command line is
visible to every user of the machine (``ps``, ``/proc/<pid>/cmdline``); so the token is added
to ``sys.argv`` inside this process, which ``/proc`` never shows, and Rasa's own command-line
entry point runs in this process. A token given on the command line is refused.

**The action server's secret.** endpoints.yml has Rasa send ``Authorization: Bearer
${ACTION_SERVER_TOKEN}`` with every action call (``headers`` of the action endpoint, Rasa 3.6's
``EndpointConfig``; Rasa fills ``${...}`` from the environment and refuses to start when it is
unset). The launcher sets ``ACTION_SERVER_TOKEN`` in its own environment, when it is not set
already, from the secret generated once into ``var/action_token`` (``clinic.settings``): set
inside the process, it is in neither its command line nor ``/proc/<pid>/environ``.

**Garbage collection.** Once the model is loaded the server holds ~600,000 objects (Rasa,
TensorFlow, spaCy, the model), and each full collection of Python's cyclic garbage collector
walked them all: ~180 ms of CPU, about every 5 s under load (a tenth of the server's CPU at
`make bench`'s concurrency 10). After that first load, ``gc.freeze()`` moves everything then
alive to a permanent generation the collector no longer walks; what turns make is collected as
before. Frozen objects are never collected as cyclic garbage, so a model loaded later through
Rasa's HTTP API (``PUT /model``, or an evaluation's: the clinic restarts the server for a new
model) first gives them back to the collector (``gc.unfreeze()``) and nothing is frozen again.

**Threads.** One Rasa server runs on one core (``make run`` starts one per core), and the
sentence embedder's TensorFlow would otherwise start a pool of threads per core in each
server, fighting the other server for the same cores: TensorFlow gets one thread for an
operation and one for the graph (``TF_INTRA_OP_PARALLELISM_THREADS``,
``TF_INTER_OP_PARALLELISM_THREADS``, which Rasa reads at start; the environment can say
otherwise).
"""

import functools
import os
import gc
import os
import sys
from typing import Any, List, Optional


def rasa_argv(args: List[str], token: str) -> List[str]:
    """The ``sys.argv`` Rasa's entry point reads: ``rasa run`` with ``args`` and the token."""
    from rasa.__main__ import create_argument_parser

    given, _ = create_argument_parser().parse_known_args(["run", *args])
    if getattr(given, "auth_token", None) is not None:
        raise SystemExit("clinic.rasa_launch: no --auth-token on the command line (every user of the "
                         "machine can read it there): set RASA_TOKEN, or let var/rasa_token be made")
    return ["rasa", "run", *args, "--auth-token", token]


def freeze_after_first_model_load() -> None:
    """Wraps Rasa's ``load_agent`` (the start's and the HTTP API's) as the module docstring says."""
    import rasa.core.agent

    load_agent = rasa.core.agent.load_agent
    if getattr(load_agent, "clinic_freezes", False):
        return
    loads = 0

    @functools.wraps(load_agent)
    async def load_agent_then_freeze(*args: Any, **kwargs: Any) -> Any:
        nonlocal loads
        loads += 1
        if loads > 1:
            gc.unfreeze()
        agent = await load_agent(*args, **kwargs)
        if loads == 1 and agent is not None and agent.is_ready():
            gc.collect()
            gc.freeze()
        return agent

    load_agent_then_freeze.clinic_freezes = True  # type: ignore[attr-defined]
    rasa.core.agent.load_agent = load_agent_then_freeze


def export_action_token() -> None:
    """``ACTION_SERVER_TOKEN`` in this process's environment (for endpoints.yml), as the module
    docstring says."""
    from clinic.settings import get_settings

    os.environ["ACTION_SERVER_TOKEN"] = get_settings().action_token


def main(args: Optional[List[str]] = None) -> None:
    from clinic.settings import get_settings

    os.environ.setdefault("TF_INTRA_OP_PARALLELISM_THREADS", "1")
    os.environ.setdefault("TF_INTER_OP_PARALLELISM_THREADS", "1")
    sys.argv = rasa_argv(sys.argv[1:] if args is None else args, get_settings().rasa_token)
    export_action_token()
    freeze_after_first_model_load()
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()

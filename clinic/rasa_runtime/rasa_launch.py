"""Starts the Rasa server (``rasa run``) with its HTTP API behind the token of the settings.

    python -m clinic.rasa_runtime.rasa_launch --model models/clinic.tar.gz --enable-api --interface 127.0.0.1 ...

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

**Patches.** Before Rasa starts, ``clinic.rasa_runtime.patches.install()`` puts the clinic's
patches of Rasa's internals in place (each one's gain: docs/PERFORMANCE.md), unless
``CLINIC_RASA_PATCHES=0``: then Rasa runs its own code throughout.

**Threads.** One Rasa server runs on one core (``make run`` starts one per core), and the
sentence embedder's TensorFlow would otherwise start a pool of threads per core in each
server, fighting the other server for the same cores: TensorFlow gets one thread for an
operation and one for the graph (``TF_INTRA_OP_PARALLELISM_THREADS``,
``TF_INTER_OP_PARALLELISM_THREADS``, which Rasa reads at start; the environment can say
otherwise). NumPy's OpenBLAS likewise gets one thread (``OPENBLAS_NUM_THREADS``, read when NumPy
is first imported): its pool's worker waits for work by spinning on ``sched_yield``, and in a
server between small matrix products that spin took a third of a core (``perf`` on the thread, 2026-12-07).
"""

import os
import sys
from typing import List, Optional


def rasa_argv(args: List[str], token: str) -> List[str]:
    """The ``sys.argv`` Rasa's entry point reads: ``rasa run`` with ``args`` and the token."""
    from rasa.__main__ import create_argument_parser

    given, _ = create_argument_parser().parse_known_args(["run", *args])
    if getattr(given, "auth_token", None) is not None:
        raise SystemExit("clinic.rasa_runtime.rasa_launch: no --auth-token on the command line (every user of the "
                         "machine can read it there): set RASA_TOKEN, or let var/rasa_token be made")
    return ["rasa", "run", *args, "--auth-token", token]


def export_action_token() -> None:
    """``ACTION_SERVER_TOKEN`` in this process's environment (for endpoints.yml), as the module
    docstring says."""
    from clinic.settings import get_settings

    os.environ["ACTION_SERVER_TOKEN"] = get_settings().action_token


def one_thread_each() -> None:
    """TensorFlow's and OpenBLAS's thread pools at one thread, as the module docstring says, unless
    the environment says otherwise; before NumPy and TensorFlow are first imported."""
    for name in ("TF_INTRA_OP_PARALLELISM_THREADS", "TF_INTER_OP_PARALLELISM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(name, "1")


def main(args: Optional[List[str]] = None) -> None:
    from clinic.settings import get_settings

    one_thread_each()
    sys.argv = rasa_argv(sys.argv[1:] if args is None else args, get_settings().rasa_token)
    export_action_token()
    from clinic.rasa_runtime import patches

    patches.install()
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()

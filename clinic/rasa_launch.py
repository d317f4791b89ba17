"""Starts the Rasa server (``rasa run``) with its HTTP API behind the token of the settings.

    python -m clinic.rasa_launch --model models/clinic.tar.gz --enable-api --interface 127.0.0.1 ...

Every argument is one of ``rasa run``'s, except the token: this adds ``--auth-token`` with
``RASA_TOKEN``, else the token generated once into ``var/rasa_token`` (``clinic.settings``),
which the web app and the console send. Rasa 3.6 reads the token from its command line only
(no environment variable, nothing in endpoints.yml or credentials.yml), and a command line is
visible to every user of the machine (``ps``, ``/proc/<pid>/cmdline``); so the token is added
to ``sys.argv`` inside this process, which ``/proc`` never shows, and Rasa's own command-line
entry point runs in this process. A token given on the command line is refused.
"""

import sys
from typing import List, Optional


def rasa_argv(args: List[str], token: str) -> List[str]:
    """The ``sys.argv`` Rasa's entry point reads: ``rasa run`` with ``args`` and the token."""
    from rasa.__main__ import create_argument_parser

    given, _ = create_argument_parser().parse_known_args(["run", *args])
    if getattr(given, "auth_token", None) is not None:
        raise SystemExit("clinic.rasa_launch: no --auth-token on the command line (every user of the "
                         "machine can read it there): set RASA_TOKEN, or let var/rasa_token be made")
    return ["rasa", "run", *args, "--auth-token", token]


def main(args: Optional[List[str]] = None) -> None:
    from clinic.settings import get_settings

    sys.argv = rasa_argv(sys.argv[1:] if args is None else args, get_settings().rasa_token)
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()

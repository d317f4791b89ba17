"""Starts the action server: rasa_sdk's, with the arguments ``rasa run actions`` takes.

    python -m clinic.action_launch --actions actions --port 5055 --logging-config-file settings/logging.yml

``rasa run actions`` runs this same server (``rasa_sdk.__main__``) from Rasa's command line,
which first imports Rasa itself: 80,000 more objects in the process and a slower start, for
nothing the actions use. Here rasa_sdk's own entry point runs directly (``SANIC_HOST`` in the
environment still sets the interface), given the arguments as Rasa's command line spells them
(rasa_sdk's own parser calls one ``--logging-config_file``).

Each call of an action carries the whole conversation (Rasa's tracker, with the domain for the
forms' validation: ~100 kB of JSON, parsed into thousands of objects), so Python's cyclic garbage
collector runs often, and each full collection walked every object the process holds. Once the
actions are registered and the app is made, ``gc.freeze()`` moves what is alive to a permanent
generation the collector no longer walks; what calls make is collected as before (the actions
are loaded once: no reload here).
"""

import functools
import gc
import sys
from typing import Any, List

# Rasa's spelling of rasa_sdk's arguments, where they differ
RASA_SPELLING = {"--logging-config-file": "--logging-config_file"}


def freeze_after_app_made() -> None:
    """Wraps rasa_sdk's ``create_app`` (called once by its ``run``) as the module docstring says."""
    import rasa_sdk.endpoint

    create_app = rasa_sdk.endpoint.create_app
    if getattr(create_app, "clinic_freezes", False):
        return

    @functools.wraps(create_app)
    def create_app_then_freeze(*args: Any, **kwargs: Any) -> Any:
        app = create_app(*args, **kwargs)
        if not kwargs.get("auto_reload"):
            gc.collect()
            gc.freeze()
        return app

    create_app_then_freeze.clinic_freezes = True  # type: ignore[attr-defined]
    rasa_sdk.endpoint.create_app = create_app_then_freeze


def sdk_argv(args: List[str]) -> List[str]:
    """``args`` as rasa_sdk's parser takes them (``--name value`` or ``--name=value``)."""
    spelled = []
    for arg in args:
        name, equals, value = arg.partition("=")
        spelled.append(RASA_SPELLING.get(name, name) + equals + value if name.startswith("--") else arg)
    return spelled


def main() -> None:
    freeze_after_app_made()
    sys.argv = [sys.argv[0], *sdk_argv(sys.argv[1:])]
    from rasa_sdk.__main__ import main as sdk_main

    sdk_main()


if __name__ == "__main__":
    main()

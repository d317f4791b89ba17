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

**Only the Rasa server may call it.** Every request but ``/health`` must carry the secret of
``ACTION_SERVER_TOKEN`` / ``var/action_token`` (``clinic.settings.load_action_token``) as
``Authorization: Bearer <secret>``, which endpoints.yml has Rasa send (``clinic.rasa_launch``);
without it, or with another, the answer is 401 and no action runs (compared in constant time).
A process on the machine, or a pod of the cluster, can no longer make up a conversation and
have an action store a referral from it. The check is a request middleware added to the app
rasa_sdk makes (its ``create_app``, wrapped here like the garbage collector's set-up).
"""

import functools
import gc
import hmac
import sys
from typing import Any, List, Optional

from sanic import Request, response
from sanic.response import HTTPResponse

# Rasa's spelling of rasa_sdk's arguments, where they differ
RASA_SPELLING = {"--logging-config-file": "--logging-config_file"}


def require_secret(app: Any, secret: str) -> None:
    """Every request to ``app`` but ``/health`` answered 401 unless it carries
    ``Authorization: Bearer <secret>``."""
    expected = f"Bearer {secret}".encode()

    async def check_secret(request: Request) -> Optional[HTTPResponse]:
        if request.path == "/health":
            return None
        given = (request.headers.get("authorization") or "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, expected):
            return response.json({"error": "the action server answers the Rasa server only"}, status=401)
        return None

    app.register_middleware(check_secret, "request")


def freeze_after_app_made() -> None:
    """Wraps rasa_sdk's ``create_app`` (called once by its ``run``) as the module docstring says:
    the secret required, then what is alive frozen."""
    import rasa_sdk.endpoint

    from clinic.settings import get_settings

    create_app = rasa_sdk.endpoint.create_app
    if getattr(create_app, "clinic_freezes", False):
        return
    secret = get_settings().action_token

    @functools.wraps(create_app)
    def create_app_then_freeze(*args: Any, **kwargs: Any) -> Any:
        app = create_app(*args, **kwargs)
        require_secret(app, secret)
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

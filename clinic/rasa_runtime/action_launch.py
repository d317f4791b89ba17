"""Starts the action server: rasa_sdk's, with the arguments ``rasa run actions`` takes.

    python -m clinic.rasa_runtime.action_launch --actions actions --port 5055 --logging-config-file settings/logging.yml

``rasa run actions`` runs this same server (``rasa_sdk.__main__``) from Rasa's command line,
which first imports Rasa itself: 80,000 more objects in the process and a slower start, for
nothing the actions use. Here rasa_sdk's own entry point runs directly (``SANIC_HOST`` in the
environment still sets the interface), given the arguments as Rasa's command line spells them
(rasa_sdk's own parser calls one ``--logging-config_file``).

rasa_sdk's ``run`` is done here step by step with rasa_sdk's own functions (its argument parser
and logging set-up, ``create_app``, its plugins' hook, ``create_ssl_context``, Sanic's
``app.run``), so that the app it makes gets the secret check below and the garbage collector's
set-up before it serves, with nothing of rasa_sdk's replaced.

Each call of an action carries the whole conversation (Rasa's tracker, with the domain for the
forms' validation: ~100 kB of JSON, parsed into thousands of objects), so Python's cyclic garbage
collector runs often, and each full collection walked every object the process holds. Once the
actions are registered and the app is made, ``gc.freeze()`` moves what is alive to a permanent
generation the collector no longer walks; what calls make is collected as before (the actions
are loaded once: no reload here).

**Only the Rasa server may call it.** Every request but ``/health`` must carry the secret of
``ACTION_SERVER_TOKEN`` / ``var/action_token`` (``clinic.settings.load_action_token``) as
``Authorization: Bearer <secret>``, which endpoints.yml has Rasa send (``clinic.rasa_runtime.rasa_launch``);
without it, or with another, the answer is 401 and no action runs (compared in constant time).
A process on the machine, or a pod of the cluster, can no longer make up a conversation and
have an action store a referral from it. The check is a request middleware added to the app
rasa_sdk makes (``make_app``).
"""

import gc
import hmac
import logging
import os
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


def make_app(args: Any, secret: str) -> Any:
    """rasa_sdk's app for ``args`` (its parsed arguments), as its ``run`` makes it, with the
    secret required; then what is alive frozen (not with ``--auto-reload``: rasa_sdk then imports
    the actions again and again)."""
    from rasa_sdk.endpoint import create_app
    from rasa_sdk.plugin import plugin_manager

    app = create_app(args.actions, cors_origins=args.cors, auto_reload=args.auto_reload)
    require_secret(app, secret)
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    if not args.auto_reload:
        gc.collect()
        gc.freeze()
    return app


def sdk_argv(args: List[str]) -> List[str]:
    """``args`` as rasa_sdk's parser takes them (``--name value`` or ``--name=value``)."""
    spelled = []
    for arg in args:
        name, equals, value = arg.partition("=")
        spelled.append(RASA_SPELLING.get(name, name) + equals + value if name.startswith("--") else arg)
    return spelled


def main(argv: Optional[List[str]] = None) -> None:
    """What ``python -m rasa_sdk`` does (its ``main_from_args`` and ``run``), the app made by
    ``make_app``."""
    from rasa_sdk import utils
    from rasa_sdk.__main__ import APPLICATION_ROOT_LOGGER_NAME
    from rasa_sdk.endpoint import create_argument_parser, create_ssl_context

    from clinic.settings import get_settings

    args = create_argument_parser().parse_args(sdk_argv(sys.argv[1:] if argv is None else argv))
    logging.getLogger("matplotlib").setLevel(logging.WARN)
    utils.configure_colored_logging(args.loglevel)
    utils.configure_file_logging(logging.getLogger(APPLICATION_ROOT_LOGGER_NAME), args.log_file, args.loglevel,
                                 args.logging_config_file)
    utils.update_sanic_log_level()
    app = make_app(args, get_settings().action_token)
    ssl_context = create_ssl_context(args.ssl_certificate, args.ssl_keyfile, args.ssl_password)
    host = os.environ.get("SANIC_HOST", "0.0.0.0")
    logging.getLogger(__name__).info("Action endpoint is up and running on %s://%s:%s",
                                     "https" if ssl_context else "http", host, args.port)
    app.run(host, args.port, ssl=ssl_context, workers=utils.number_of_sanic_workers())


if __name__ == "__main__":
    main()

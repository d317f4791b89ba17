"""Every run-time patch of a third-party library's internals (Rasa 3.6.21, Sanic 21.12), in one
place, installed by the launchers, never as an import side effect (DESIGN.md: a patch of Rasa's
code is the last resort).

One module per patch, each with what it changes, the Rasa version it was checked against and
where its measured gain is (docs/PERFORMANCE.md, the patches' table). Only patches without
which `make bench` misses its targets stay.

``install()`` puts them all in place unless ``CLINIC_RASA_PATCHES=0`` (then none: Rasa's own
code throughout); ``clinic.rasa_runtime.rasa_launch`` calls it before Rasa starts, ``python -m
clinic.rasa_runtime.patches <rasa arguments>`` runs Rasa's command line with them (`make
test-core`), and the tests' in-process Rasa installs them the same way (tests/conftest.py).
``CLINIC_RASA_PATCHES=0`` is how the dialogue and end-to-end tests run a second time on Rasa's
own code (`make test-unpatched`).

Nothing outside this package may change a third-party module's or class's attributes:
tests/test_no_patches_outside.py scans the source for it.
"""

import contextlib
import logging
import os
from typing import Iterator, List

from clinic.rasa_runtime.patches import (
    action_result_check,
    debug_log_copies,
    event_classes,
    freeze_after_model_load,
    graph_runner,
    kept_action_session,
    rule_keys,
    slot_copy,
    tracker_caches,
)
from clinic.rasa_runtime.patches.patching import Patch

logger = logging.getLogger(__name__)

SWITCH = "CLINIC_RASA_PATCHES"  # "0": no patch at all
PATCHES: List[Patch] = [
    event_classes.PATCH,
    action_result_check.PATCH,
    kept_action_session.PATCH,
    graph_runner.PATCH,
    tracker_caches.PATCH,
    rule_keys.PATCH,
    debug_log_copies.PATCH,
    slot_copy.PATCH,
    freeze_after_model_load.PATCH,
]


def enabled() -> bool:
    """Whether the patches are to be installed: ``CLINIC_RASA_PATCHES`` unset or ``1``/``true``/``on``/``yes``;
    ``0``/``false``/``off``/``no`` switch them off; any other value is refused (a typo must not leave
    them silently on or off)."""
    value = os.environ.get(SWITCH, "1").strip().lower()
    if value in ("1", "true", "on", "yes", ""):
        return True
    if value in ("0", "false", "off", "no"):
        return False
    raise ValueError(f"{SWITCH}={value!r}: use 1 (the patches on) or 0 (Rasa's own code)")


def install() -> bool:
    """Every patch in place, unless switched off; True if installed (again is harmless)."""
    if not enabled():
        logger.info("%s=0: Rasa runs without the clinic's patches", SWITCH)
        return False
    for patch in PATCHES:
        patch.install()
    return True


def uninstall() -> None:
    """The libraries' own code again."""
    for patch in PATCHES:
        patch.uninstall()


def installed() -> List[str]:
    """The names of the patches in place."""
    return [patch.name for patch in PATCHES if patch.installed()]


@contextlib.contextmanager
def rasa_own() -> Iterator[None]:
    """Within: the libraries' own code; after: what was in place before, again (the patches, or
    anything else: a test's wrapper)."""
    before = [(patch, patch.current()) for patch in PATCHES]
    uninstall()
    try:
        yield
    finally:
        for patch, values in before:
            patch.restore(values)


@contextlib.contextmanager
def applied() -> Iterator[None]:
    """Within: every patch, whatever ``CLINIC_RASA_PATCHES`` says (the patches' own tests); after:
    what was in place before, again."""
    before = [(patch, patch.current()) for patch in PATCHES]
    for patch in PATCHES:
        patch.install()
    try:
        yield
    finally:
        for patch, values in before:
            patch.restore(values)

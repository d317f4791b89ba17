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

Nothing outside this package may change a third-party module's or class's attributes, nor a
private attribute of a library's object: tests/test_no_patches_outside.py scans the source for
it. One exception, named there: spaCy's NER in the clinic's own loaded model computes its token
vectors with the clinic's forward function (``clinic/nlu/ner_tok2vec.py``: an attribute of that
model's object, set by the NLU layer, which may not import this package); it follows the same
switch (``clinic.settings.patches_enabled``), read when spaCy is loaded: ``rasa_own()`` leaves an
NER already loaded as it is (its vectors are thinc's to the bit either way).
"""

import contextlib
import logging
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
from clinic.settings import PATCHES_SWITCH, patches_enabled

logger = logging.getLogger(__name__)

SWITCH = PATCHES_SWITCH  # "0": no patch at all
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
    """Whether the patches are to be installed (``clinic.settings.patches_enabled``: ``CLINIC_RASA_PATCHES``
    unset or 1/true/on/yes; 0/false/off/no switch them off; any other value is refused)."""
    return patches_enabled()


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

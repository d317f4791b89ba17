"""Patch: the ``copy`` module as Rasa's processor, RulePolicy and forms see it.

Rasa's processor, RulePolicy and forms deep-copy events, slots and states for their structlog
debug events, several times an action, whether debug events are written or not. There, while
structlog drops debug events (``rasa run`` at info, as deployed), the value is handed to the
dropped event as it is (``LogArgumentCopies``); at debug, copied as by Rasa.

Checked against Rasa 3.6.21. Gain when added: part of tracker_caches' (docs/PERFORMANCE.md:
"Dialogue bookkeeping"). Measured on 2026-12-06 with every patch on and off (`make bench`, Rasa's
CPU a turn at c=10: 14.3-17.1 ms with them, 26.5-26.7 without, a busy shared machine, two runs each
way) and this one left out alone (`scripts/bench_profile.py --without debug_log_copies`: not
distinguishable from that machine's noise of ~3 ms); docs/PERFORMANCE.md.
"""

import copy
import logging
from typing import Any, Dict, Optional

import rasa.core.actions.forms
import rasa.core.policies.rule_policy
import rasa.core.processor
import structlog

from clinic.rasa_runtime.patches.patching import Patch


_DROPPED = structlog.make_filtering_bound_logger(logging.CRITICAL).debug  # what a dropped level does


def debug_dropped() -> bool:
    """Whether structlog drops debug events (``rasa run`` below debug: its configure_structlog)."""
    return getattr(structlog.get_config()["wrapper_class"], "debug", None) is _DROPPED


class LogArgumentCopies:
    """The ``copy`` module as Rasa's processor, RulePolicy and forms see it: there it only copies
    the arguments of structlog debug events (several deep copies of events and states each
    action), and ``deepcopy`` hands the value back as it is when structlog drops debug events
    (the event, and its arguments, are thrown away unread). Logging at debug: copies, as Rasa."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(x: Any, memo: Optional[Dict[int, Any]] = None, _nil: Any = ()) -> Any:
        if debug_dropped():
            return x
        return copy.deepcopy(x, memo)


LOG_ARGUMENT_COPIES = LogArgumentCopies()
_LOGGING_MODULES = [rasa.core.processor, rasa.core.policies.rule_policy, rasa.core.actions.forms]


PATCH = Patch("debug_log_copies", *[(module, "copy", LOG_ARGUMENT_COPIES) for module in _LOGGING_MODULES])

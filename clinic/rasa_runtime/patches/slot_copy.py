"""Patch: ``Slot.__copy__``, a slot's shallow copy made directly.

``copy.copy`` of a slot (each new tracker copies the domain's slots) goes through pickle's
generic ``__reduce_ex__``; ``Slot.__copy__`` here makes the same shallow copy directly (a new
object of the class with the same ``__dict__``) for slot classes that do not change how they
are pickled or copied, and Rasa's way for the others.

Checked against Rasa 3.6.21. Gain when added: part of the dialogue bookkeeping's
(docs/PERFORMANCE.md); not measured alone then. Measured on 2026-12-06 with every patch on and off
(`make bench`, Rasa's CPU a turn at c=10: 14.3-17.1 ms with them, 26.5-26.7 without, a busy shared
machine, two runs each way) and this one left out alone (`scripts/bench_profile.py --without
slot_copy`: not distinguishable from that machine's noise of ~3 ms); docs/PERFORMANCE.md.
"""

import copy
import copyreg
from typing import Dict

from rasa.shared.core.slots import Slot

from clinic.rasa_runtime.patches.patching import Patch


_plain_slot_classes: Dict[type, bool] = {}


def _copied_like_object(cls: type) -> bool:
    """Whether ``copy.copy`` of an instance of ``cls`` is object's own shallow copy (pickle's way)."""
    plain = _plain_slot_classes.get(cls)
    if plain is None:
        plain = (
            cls not in copy._copy_dispatch  # type: ignore[attr-defined]
            and cls not in copyreg.dispatch_table
            and cls.__reduce_ex__ is object.__reduce_ex__
            and cls.__reduce__ is object.__reduce__
            and getattr(cls, "__getstate__", None) is None
            and getattr(cls, "__setstate__", None) is None
            and not copyreg._slotnames(cls)  # type: ignore[attr-defined]  (no state kept in __slots__)
        )
        _plain_slot_classes[cls] = plain
    return plain


def copy_slot(self: Slot) -> Slot:
    """``copy.copy(slot)``: a new object of the slot's class with the same attributes."""
    cls = type(self)
    if not _copied_like_object(cls):
        rv = self.__reduce_ex__(4)
        return copy._reconstruct(self, None, *rv)  # type: ignore[attr-defined]  (copy.copy's own way)
    new = cls.__new__(cls)
    new.__dict__.update(self.__dict__)
    return new


PATCH = Patch("slot_copy", (Slot, "__copy__", copy_slot))

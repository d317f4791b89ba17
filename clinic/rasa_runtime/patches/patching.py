"""A patch: attributes of third-party classes or modules replaced by the clinic's, and put back.

Each module of ``clinic.rasa_runtime.patches`` defines one ``Patch`` (``PATCH``); Rasa's (or
spaCy's, Sanic's) own values are taken when the module is imported, before anything is
replaced, so ``uninstall`` always puts back the library's own.
"""

from typing import Any, List, Text, Tuple

_MISSING = object()  # an attribute the owner did not have itself (inherited, or none)


class Patch:
    """``replacements``: (owner, attribute name, the clinic's value)."""

    def __init__(self, name: Text, *replacements: Tuple[Any, Text, Any]) -> None:
        self.name = name
        self.replacements: List[Tuple[Any, Text, Any, Any]] = [
            (owner, attribute, ours, vars(owner).get(attribute, _MISSING)) for owner, attribute, ours in replacements
        ]

    def install(self) -> None:
        """The clinic's values in place (again is harmless)."""
        for owner, attribute, ours, _ in self.replacements:
            setattr(owner, attribute, ours)

    def uninstall(self) -> None:
        """The library's own values again."""
        for owner, attribute, _, theirs in self.replacements:
            if theirs is _MISSING:
                if attribute in vars(owner):
                    delattr(owner, attribute)
            else:
                setattr(owner, attribute, theirs)

    def installed(self) -> bool:
        """Whether every one of the clinic's values is in place."""
        return all(vars(owner).get(attribute, _MISSING) is ours for owner, attribute, ours, _ in self.replacements)

    def current(self) -> List[Any]:
        """What is in place now of each replaced attribute (the clinic's, the library's, or
        another, e.g. a test's wrapper)."""
        return [vars(owner).get(attribute, _MISSING) for owner, attribute, _, _ in self.replacements]

    def restore(self, values: List[Any]) -> None:
        """Each replaced attribute set back to ``values`` (what ``current`` gave)."""
        for (owner, attribute, _, _), value in zip(self.replacements, values):
            if value is _MISSING:
                if attribute in vars(owner):
                    delattr(owner, attribute)
            else:
                setattr(owner, attribute, value)

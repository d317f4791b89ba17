"""The folders show the architecture, and imports run one way: the apps use the layers below them,
never the reverse (README, "Where things are")."""

import ast
import sys
from pathlib import Path
from typing import List, Set

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLINIC = ROOT / "clinic"

# Each layer and the packages it must never import (directly or inside a function).
APPS = ("clinic.web", "clinic.console", "actions")
FORBIDDEN = {
    "clinic/rules": APPS + ("clinic.rasa_runtime", "clinic.mail", "clinic.nlu", "clinic.safety"),
    "clinic/storage": APPS + ("clinic.rasa_runtime", "clinic.rules", "clinic.nlu", "clinic.safety"),
    "clinic/nlu": APPS + ("clinic.rasa_runtime", "clinic.storage", "clinic.mail"),
    "clinic/safety": APPS + ("clinic.rasa_runtime", "clinic.storage", "clinic.mail"),
    "clinic/mail": APPS,
    "clinic/http": APPS + ("clinic.storage", "clinic.rules", "clinic.nlu", "clinic.safety"),
    "clinic/rasa_runtime": APPS,
    "clinic/web": ("clinic.console", "actions"),
    "clinic/console": ("clinic.web", "actions"),
}
# What may sit directly in clinic/: settings and what every layer shares.
TOP_LEVEL = {"__init__.py", "settings.py", "log_privacy.py"}


def imported_modules(path: Path) -> Set[str]:
    """Every module a file imports, at its top or inside a function, as dotted names."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def violations(folder: str, forbidden: tuple) -> List[str]:
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for module in sorted(imported_modules(path)):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(ROOT)} imports {module}")
    return bad


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_a_layer_never_imports_the_layers_above_it(folder):
    assert (ROOT / folder).is_dir()
    assert violations(folder, FORBIDDEN[folder]) == []


def test_the_check_finds_an_import_against_the_direction(tmp_path, monkeypatch):
    (tmp_path / "clinic" / "rules").mkdir(parents=True)
    (tmp_path / "clinic" / "rules" / "x.py").write_text(
        "def f():\n    from clinic.console import app\n    import actions.faq\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert violations("clinic/rules", FORBIDDEN["clinic/rules"]) == [
        "clinic/rules/x.py imports actions.faq", "clinic/rules/x.py imports clinic.console",
        "clinic/rules/x.py imports clinic.console.app"]


def test_clinic_holds_layers_not_modules_side_by_side():
    assert {p.name for p in CLINIC.glob("*.py")} == TOP_LEVEL
    assert {p.name for p in CLINIC.iterdir() if p.is_dir() and p.name != "__pycache__"} == {
        "console", "http", "mail", "nlu", "rasa_runtime", "rules", "safety", "storage", "web"}

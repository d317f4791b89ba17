"""No file outside clinic/rasa_runtime/patches/ changes a third-party library's modules or classes
at run time (issue 21; DESIGN.md: a patch of Rasa's code is the last resort, in one package).

The source of clinic/, actions/ and scripts/ is read (AST), and these are refused:

- an assignment to (or ``del`` of) an attribute whose root name is a third-party module or
  anything imported from one (``rasa.core.agent.load_agent = ...``, ``RemoteAction.run = ...``,
  ``Event.resolve_by_type = ...``), or a local name bound to such a thing (``x = rasa.core.agent``);
- ``setattr(...)`` or ``delattr(...)`` on such a name, or on a function's parameter or a loop's
  variable (what they change cannot be told from the source: a list of (class, name) pairs
  patched in a loop, a helper given the class to patch);
- an assignment to an object's ``__class__`` (a class swapped under a library's object);
- an assignment to (or ``del`` of) a private attribute (``x._name``) of anything but ``self``,
  ``cls`` or an object the same function made by calling its own class by name (``a = A()``),
  also through ``setattr``, ``delattr`` or ``object.__setattr__`` with the name written out, and any
  write into an object's ``__dict__`` or ``vars()``: a library's object's internals (a thinc
  model's forward, a Rasa graph node's function).

One file is let through, by name and for its one kind of change: ``clinic/nlu/ner_tok2vec.py``
gives the NER's tok2vec model of the clinic's loaded spaCy its forward function (the NLU layer
may not import the patch package; it follows the same switch, ``CLINIC_RASA_PATCHES``).

Third-party: neither the standard library nor the project's own packages. The scanner is
checked on small made-up sources, today's patches among them.
"""

import ast
import sys
from pathlib import Path
from typing import Iterator, List, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("clinic", "actions", "scripts")
PATCH_PACKAGE = ROOT / "clinic" / "rasa_runtime" / "patches"
PROJECT = {"clinic", "actions", "scripts", "tests"}


def third_party(module: str) -> bool:
    root = module.split(".")[0]
    return bool(root) and root not in sys.stdlib_module_names and root not in PROJECT


def _root(node: ast.AST) -> str:
    """The name an attribute chain starts from (``a`` of ``a.b.c``), or ""."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""


def _targets(node: ast.AST) -> Iterator[ast.AST]:
    """What an assignment or ``del`` writes, tuples unpacked."""
    if isinstance(node, ast.Assign):
        found = list(node.targets)
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        found = [node.target]
    elif isinstance(node, ast.Delete):
        found = list(node.targets)
    else:
        return
    while found:
        target = found.pop()
        if isinstance(target, (ast.Tuple, ast.List)):
            found.extend(target.elts)
        else:
            yield target


def patches_in(source: str) -> List[Tuple[int, str]]:
    """(line, what) of every change of a third-party module's or class's attributes in ``source``."""
    tree = ast.parse(source)
    foreign: Set[str] = set()  # names bound to third-party modules or to what they hold
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if third_party(alias.name):
                    foreign.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and third_party(node.module):
            foreign.update(alias.asname or alias.name for alias in node.names)
    changed = True
    while changed:  # local names bound to them: x = rasa.core.agent, y = x.load_agent
        changed = False
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Name, ast.Attribute)) \
                    and _root(node.value) in foreign:
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id not in foreign:
                        foreign.add(target.id)
                        changed = True
    found = []
    for node in ast.walk(tree):
        for target in _targets(node):
            if not isinstance(target, ast.Attribute):
                continue
            if target.attr == "__class__":
                found.append((node.lineno, f"{ast.unparse(target)}: a class swapped"))
            elif _root(target) in foreign:
                found.append((node.lineno, f"{ast.unparse(target)}: an attribute of a third-party module or class"))
    for scope in [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))]:
        own = {"self", "cls"} | _made_in(scope, foreign)
        for node in _own_nodes(scope):
            for target in _targets(node):
                owner = target.value if isinstance(target, (ast.Attribute, ast.Subscript)) else None
                mine = isinstance(owner, ast.Name) and owner.id in own
                if isinstance(target, ast.Attribute) and target.attr.startswith("_") and not target.attr.endswith("__") \
                        and not mine:
                    found.append((node.lineno, f"{ast.unparse(target)}: a private attribute of another's object"))
                elif isinstance(target, ast.Subscript) and _is_attribute_dict(target.value) \
                        and _owner_name(target.value) not in own:
                    found.append((node.lineno, f"{ast.unparse(target)}: an object's attributes written through its __dict__"))
            if isinstance(node, ast.Call) and _sets_private(node) and _owner_name(node.args[0]) not in own:
                found.append((node.lineno, f"{ast.unparse(node)[:80]}: a private attribute of another's object"))
    for scope in [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))]:
        unknown = _unknown_in(scope)
        for node in ast.walk(scope):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr"):
                root = _root(node.args[0]) if node.args else ""
                if root in foreign or (root in unknown and root not in ("self", "cls")):
                    found.append((node.lineno, f"{ast.unparse(node)[:80]}: {node.func.id} on what the source cannot tell"))
    return sorted(set(found))


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a module or function, less those of the functions and classes inside it."""
    todo = list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))


def _made_in(scope: ast.AST, foreign: Set[str]) -> Set[str]:
    """The names a module or function binds to an object it makes by calling a class or function
    of its own by name (``a = A()``, not ``pipe = nlp.get_pipe(...)`` nor ``a = Agent()`` of a
    library) and never to anything else."""
    made: Set[str] = set()
    other: Set[str] = set()
    for node in _own_nodes(scope):
        if isinstance(node, ast.Assign):
            ours = isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name) \
                and node.value.func.id not in foreign
            for target in node.targets:
                if isinstance(target, ast.Name):
                    (made if ours else other).add(target.id)
    return made - other


def _owner_name(node: ast.AST) -> str:
    """The name of the object whose attributes ``node`` stands for (``x`` of ``x``, ``x.__dict__``,
    ``vars(x)``), or "" when it is not a plain name."""
    if isinstance(node, ast.Attribute) and node.attr == "__dict__":
        node = node.value
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "vars" and node.args:
        node = node.args[0]
    return node.id if isinstance(node, ast.Name) else ""


def _is_attribute_dict(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "__dict__") or (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "vars")


def _sets_private(node: ast.Call) -> bool:
    """``setattr(x, "_y", ...)``, ``delattr(x, "_y")``, ``object.__setattr__(x, "_y", ...)``."""
    func = node.func
    named = (isinstance(func, ast.Name) and func.id in ("setattr", "delattr")) or (
        isinstance(func, ast.Attribute) and func.attr in ("__setattr__", "__delattr__"))
    return named and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) \
        and isinstance(node.args[1].value, str) and node.args[1].value.startswith("_")


def _unknown_in(scope: ast.AST) -> Set[str]:
    """A function's parameters and the variables of its loops (of a module: its loops'), less
    the names it binds to something made there (``a = A()``)."""
    unknown: Set[str] = set()
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        unknown.update(arg.arg for arg in ast.walk(scope.args) if isinstance(arg, ast.arg))
    made: Set[str] = set()
    for node in ast.walk(scope):
        if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            unknown.update(n.id for n in ast.walk(node.target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            made.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return unknown - made


def scanned_files() -> List[Path]:
    return sorted(path for folder in SCANNED for path in (ROOT / folder).rglob("*.py")
                  if PATCH_PACKAGE not in path.parents)


# The one file let through (module docstring), and the only change it may make.
LET_THROUGH = {"clinic/nlu/ner_tok2vec.py": "model._func: a private attribute of another's object"}


def test_no_file_outside_the_patch_package_changes_a_third_party_library():
    files = scanned_files()
    assert len(files) > 50 and ROOT / "clinic" / "rasa_runtime" / "rasa_launch.py" in files
    found, let_through = [], []
    for path in files:
        name = path.relative_to(ROOT).as_posix()
        for line, what in patches_in(path.read_text(encoding="utf-8")):
            (let_through if LET_THROUGH.get(name) == what else found).append(f"{name}:{line}: {what}")
    assert found == [], "patches outside clinic/rasa_runtime/patches/:\n" + "\n".join(found)
    assert len(let_through) == 2  # installed, and thinc's own put back


def test_the_patch_package_is_where_the_patches_are():
    """The scanner finds the package's own patches (so it would find them anywhere else)."""
    found = {path.name: patches_in(path.read_text(encoding="utf-8")) for path in PATCH_PACKAGE.glob("*.py")}
    assert found["patching.py"]  # setattr(owner, ...) of every patch
    for name in ("freeze_after_model_load.py", "kept_action_session.py", "graph_runner.py"):
        assert not found[name]  # their changes go through patching.Patch: nothing of their own
    # tracker_caches also writes what it keeps into a tracker copy's __dict__ (its own work, here)
    assert {what.split(":")[-1].strip() for _, what in found["tracker_caches.py"]} == {
        "an object's attributes written through its __dict__"}


# today's patches before issue 21, as they were written, and ways around a first scanner
CAUGHT = {
    "a method of a Rasa class": (
        "from rasa.core.actions.action import RemoteAction\n"
        "def validate(self, result): return True\n"
        "RemoteAction._validate_action_result = validate\n"),
    "a function of a Rasa module, through the module": (
        "import rasa.core.agent\n"
        "def load_agent_then_freeze(*a): pass\n"
        "def install():\n"
        "    rasa.core.agent.load_agent = load_agent_then_freeze\n"),
    "a module of Rasa's, given another module": (
        "import rasa.shared.core.trackers\n"
        "rasa.shared.core.trackers.dataclasses = object()\n"),
    "a static method of a class imported from a submodule": (
        "from rasa.shared.core import events\n"
        "events.Event.resolve_by_type = staticmethod(lambda n, d=None: None)\n"),
    "a Sanic method": (
        "from sanic import Sanic\n"
        "async def ev(*a): pass\n"
        "Sanic._server_event = ev\n"),
    "an import alias": (
        "import rasa_sdk.endpoint as sdk\n"
        "sdk.create_app = lambda *a: None\n"),
    "a local name bound to a module": (
        "import rasa.core.agent\n"
        "agent = rasa.core.agent\n"
        "agent.load_agent = None\n"),
    "an augmented assignment": (
        "from rasa.core.policies.rule_policy import RulePolicy\n"
        "RulePolicy.priority += 1\n"),
    "a tuple of targets": (
        "from rasa.shared.core.slots import Slot\n"
        "a, Slot.__copy__ = 1, lambda self: self\n"),
    "a deletion": (
        "from rasa.shared.core.slots import Slot\n"
        "del Slot.__copy__\n"),
    "patches set in a loop": (
        "from rasa.shared.core.trackers import DialogueStateTracker\n"
        "PATCHES = [(DialogueStateTracker, 'copy', None)]\n"
        "for owner, name, ours in PATCHES:\n"
        "    setattr(owner, name, ours)\n"),
    "a helper given the class to patch (bench_profile's timers)": (
        "def timed(owner, method, wrapper):\n"
        "    setattr(owner, method, wrapper)\n"),
    "a Sanic class attribute": (
        "from sanic import Sanic\n"
        "Sanic.test_mode = True\n"),
    "a class swapped (model_walk)": (
        "def list_walk(model):\n"
        "    model.__class__ = object\n"),
    "a thinc model's forward (ner_tok2vec)": (
        "def install(nlp):\n"
        "    model = nlp.get_pipe('ner').model.layers[0]\n"
        "    model._func = lambda *a: None\n"),
    "a Rasa graph node's function, in a loop (bench_parse's timers)": (
        "def measure(agent):\n"
        "    for name, node in agent.processor.graph_runner._instantiated_nodes.items():\n"
        "        node._fn = None\n"),
    "an engine's private attribute, given (conversation_index)": (
        "def ensure_schema(engine):\n"
        "    engine._conversation_fts = True\n"),
    "a private attribute of a library object got from a call": (
        "def install(nlp):\n"
        "    pipe = nlp.get_pipe('ner')\n"
        "    pipe._func = None\n"),
    "a private attribute of an object a library made": (
        "from rasa.core.agent import Agent\n"
        "def load(p):\n"
        "    a = Agent.load(p)\n"
        "    a.processor._x = 1\n"),
    "a private attribute under self": (
        "class A:\n    def f(self):\n        self.model._func = None\n"),
    "setattr of a private attribute by name": (
        "def f(m):\n    setattr(m, '_func', None)\n"),
    "object.__setattr__ of a private attribute": (
        "def f(m):\n    object.__setattr__(m, '_func', None)\n"),
    "an object's __dict__ written": (
        "def f(m):\n    m.__dict__['_func'] = None\n"),
    "vars() of an object written": (
        "def f(m):\n    vars(m)['forward'] = None\n"),
    "a private attribute deleted": (
        "def unload(nlp):\n"
        "    del nlp._meta\n"),
}
NOT_CAUGHT = {
    "the standard library": "import sys\nsys.argv = ['rasa', 'run']\n",
    "an object of one's own": "class A: pass\na = A()\na.x = 1\n",
    "a Sanic app's configuration": "from sanic import Sanic\napp = Sanic('x')\napp.config.ACCESS_LOG = False\n",
    "self": "class A:\n    def __init__(self):\n        self.x = 1\n        setattr(self, 'y', 2)\n",
    "setattr on an object made here": "class A: pass\ndef f():\n    a = A()\n    setattr(a, 'x', 1)\n",
    "a project module": "from clinic import settings\nsettings.x = 1\n",
    "a local name shadowing nothing": "import rasa\nx = 1\nx = 2\n",
    "a private attribute of an object made here": "class A: pass\ndef f():\n    a = A()\n    a._x = 1\n",
    "a private attribute of self, in a nested function": (
        "class A:\n    def f(self):\n        def g():\n            self._x = 1\n        g()\n"),
}


@pytest.mark.parametrize("name", CAUGHT)
def test_the_scanner_catches_a_patch(name):
    assert patches_in(CAUGHT[name]), name


@pytest.mark.parametrize("name", NOT_CAUGHT)
def test_the_scanner_leaves_what_is_no_patch(name):
    assert patches_in(NOT_CAUGHT[name]) == [], name


def test_the_scanner_catches_the_patches_main_had_before_issue_21():
    """The modules as they were on main (git), where git has them: each one's patches are found."""
    import subprocess

    shown = {}
    for path in ("clinic/rasa_speedups.py", "clinic/dialogue_speedups.py", "clinic/graph_runner.py",
                 "clinic/action_body.py", "clinic/nlu/model_walk.py", "clinic/rasa_launch.py", "clinic/action_launch.py"):
        run = subprocess.run(["git", "show", f"6146d2c60dedccd6b47da9b6180ef32a5c995633:{path}"], cwd=ROOT, capture_output=True, text=True)
        if run.returncode != 0:
            pytest.skip("not a git clone with main's history")
        shown[path] = patches_in(run.stdout)
    assert all(shown.values()), {path: found for path, found in shown.items() if not found}
    assert len(shown["clinic/rasa_speedups.py"]) >= 4 and len(shown["clinic/dialogue_speedups.py"]) >= 3


@pytest.mark.parametrize("value, on", [
    (None, True), ("1", True), ("true", True), ("ON", True), ("yes", True),
    ("0", False), ("false", False), (" off ", False), ("No", False)])
def test_the_switch_reads_the_usual_spellings_of_on_and_off(monkeypatch, value, on):
    from clinic.rasa_runtime import patches

    if value is None:
        monkeypatch.delenv(patches.SWITCH, raising=False)
    else:
        monkeypatch.setenv(patches.SWITCH, value)
    assert patches.enabled() is on


@pytest.mark.parametrize("value", ["2", "disable", "of"])
def test_a_value_of_the_switch_that_is_neither_on_nor_off_is_refused(monkeypatch, value):
    from clinic.rasa_runtime import patches

    monkeypatch.setenv(patches.SWITCH, value)
    with pytest.raises(ValueError, match="CLINIC_RASA_PATCHES"):
        patches.enabled()

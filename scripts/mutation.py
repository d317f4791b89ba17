"""Mutation testing of the pure modules: how many small changes to each one its own tests notice.

    python scripts/mutation.py clinic/rules/eligibility.py clinic/rules/answer_parsing.py [--min 85] [--workers 2]
    make mutation                       # the modules of MUTATION_MODULES in the Makefile

Each module is changed one small step at a time by poodle (pinned in requirements.txt): operators,
comparisons, numbers, keywords, calls, return values, and every string, module-level word lists and
patterns included (mutmut 3 leaves module-level code alone, and the words and patterns are where
these modules' tests were weakest: ../shared/reviews/test-strength.md). After each change only the
module's own tests run: ``tests/test_<module>.py``, or the files named after ``=``
(``clinic/safety/patterns.py=tests/test_crisis_patterns.py+tests/test_safety.py``). A change the
tests notice is killed; one they do not notice survived; a change that makes the tests loop is
stopped (poodle's time limit) and counted as killed, as pytest-timeout would fail the suite.

The score printed per module is killed / mutants; the survivors, with their diffs, are written to
``results/mutation/<module>-survivors.txt``. The exit status is 1 when a module scores under --min.

Speed: poodle runs each trial through a runner, a supported extension point; this one
(``fork_runner``) forks a process that already imported pytest and runs the tests in it, instead of
starting Python and pytest afresh for every change. The modules under test are never imported
before the fork, so each trial imports its own mutated copy. And a change inside a function runs
only the tests that execute its lines (mapped once, on the unchanged module, by ``LineMap``); a
change to a line no test executes while it runs (module-level word lists and patterns, run at
import) runs them all, after the tests whose ids name the changed string's words (``tests_naming``:
only an order, never a verdict: a change they miss is tried on all the tests).
"""

import argparse
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "results" / "mutation"
IGNORED = shutil.ignore_patterns("__pycache__", ".pytest_cache")
# pytest's options for each trial: stop at the first failure, no cache written into the copy, none of
# the plugins these tests do not use (poodle's own time limit stops a trial that loops).
PYTEST_ARGS = [
    "-x", "-q", "-p", "no:cacheprovider", "--assert=plain", "--no-header", "-p", "no:hypothesispytest",
    "-p", "no:anyio", "-p", "no:platformdirs", "-p", "no:timeout",
]


def _python_files_only(folder: str, names: List[str]) -> List[str]:
    """What a trial's copy of the package leaves out: all but Python files and folders."""
    return [n for n in IGNORED(folder, names)] + [
        n for n in names if not n.endswith(".py") and not os.path.isdir(os.path.join(folder, n))
    ]


def modules_and_tests(specs: List[str]) -> List[Tuple[str, List[str]]]:
    """``module[=test+test]`` -> (module, its test files); the default test file is tests/test_<stem>.py."""
    found = []
    for spec in specs:
        module, _, tests = spec.partition("=")
        names = tests.split("+") if tests else [f"tests/test_{Path(module).stem}.py"]
        for path in [module] + names:
            if not (ROOT / path).is_file():
                raise SystemExit(f"mutation: {path} not found")
        found.append((module, names))
    return found


def lay_out(module: str, tests: List[str]) -> Path:
    """A folder for one module's trials: src/ (the package and the settings, which poodle copies
    for each trial) and, beside it, the tests and pytest.ini."""
    folder = WORK / Path(module).stem
    shutil.rmtree(folder, ignore_errors=True)
    package = Path(module).parts[0]
    shutil.copytree(ROOT / package, folder / "src" / package, ignore=_python_files_only)
    shutil.copytree(ROOT / "settings", folder / "src" / "settings", ignore=IGNORED)
    (folder / "tests").mkdir()
    for helper in ("__init__.py", "conftest.py"):
        shutil.copy2(ROOT / "tests" / helper, folder / "tests" / helper)
    for test in tests:
        shutil.copy2(ROOT / test, folder / test)
    shutil.copy2(ROOT / "pytest.ini", folder / "pytest.ini")
    # what the tests read and never change, linked: the training data, the evaluation banks and
    # the golden phrases, the domain, the pipeline's configuration (the thresholds' defaults are
    # tested against it), the venv's spaCy model, and the custom actions (which the safety
    # actions' tests run against the changed module)
    for name in ("data", "domain", "config.yml", ".venv"):
        (folder / name).symlink_to(ROOT / name)
    for name in ("safety", "nlu"):
        (folder / "tests" / name).symlink_to(ROOT / "tests" / name)
    if package != "actions":
        (folder / "src" / "actions").symlink_to(ROOT / "actions")
    return folder


class LineMap:
    """A pytest plugin: which tests execute which lines of one file (the module under test)."""

    def __init__(self, filename: str, out: Path) -> None:
        self.filename, self.out = filename, out
        self.tests_by_line: Dict[int, List[str]] = {}
        self.lines: set = set()

    def _trace(self, frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != self.filename:
            return None
        if event == "line":
            self.lines.add(frame.f_lineno)
        return self._trace

    def pytest_runtest_call(self, item: Any) -> Any:
        self.lines = set()
        sys.settrace(self._trace)

    def pytest_runtest_teardown(self, item: Any) -> None:
        sys.settrace(None)
        for line in self.lines:
            self.tests_by_line.setdefault(line, []).append(item.nodeid)
        self.lines = set()

    def pytest_sessionfinish(self) -> None:
        self.out.write_text(json.dumps(self.tests_by_line))


def map_lines(folder: Path, module: str, tests: List[str]) -> Path:
    """The tests of each line of ``module`` (a JSON file), from one run of its tests on the copy in
    ``folder``, in a forked process (this one must not import the module)."""
    import pytest

    out = folder / "lines.json"
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            os.chdir(folder)
            sys.path.insert(0, str(folder / "src"))
            target = str((folder / "src" / module).resolve())
            code = pytest.main(PYTEST_ARGS[1:] + tests, plugins=[LineMap(target, out)])
        finally:
            os._exit(int(code))
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not out.exists():
        raise SystemExit(f"mutation: the tests of {module} do not pass unchanged")
    return out


_TESTS_BY_LINE: Dict[str, Dict[int, List[str]]] = {}


def tests_for(config: Any, mutant: Any) -> List[str]:
    """The tests that execute the changed lines; all of the module's tests when none does while running."""
    path = config.runner_opts["lines"]
    if path not in _TESTS_BY_LINE:
        _TESTS_BY_LINE[path] = {int(k): v for k, v in json.loads(Path(path).read_text()).items()}
    by_line = _TESTS_BY_LINE[path]
    lines = range(mutant.lineno, (mutant.end_lineno or mutant.lineno) + 1)
    chosen: Dict[str, None] = {}
    for line in lines:
        chosen.update(dict.fromkeys(by_line.get(line, [])))
    if not mutant.source_file or not chosen:
        return list(config.runner_opts["tests"])
    return list(chosen)


_NODE_IDS: Dict[str, List[str]] = {}


def tests_naming(config: Any, mutant: Any) -> List[str]:
    """For a changed string that no running test executes (a word of a module-level list), the
    tests whose ids name one of its words: tried first, as they most often notice the change."""
    import re

    text = mutant.text or ""
    if not (mutant.source_file and text[:1] in "'\"" and text[1:3] == "XX"):
        return []
    path = config.runner_opts["lines"]
    if path not in _NODE_IDS:
        _NODE_IDS[path] = sorted({t for ts in json.loads(Path(path).read_text()).values() for t in ts})
    words = {w.lower() for w in re.findall(r"[A-Za-z']{3,}", text[3:-3])}
    named = [t for t in _NODE_IDS[path] if any(w in t.lower() for w in words)]
    return named if 0 < len(named) <= 200 else []


def fork_runner(config: Any, run_folder: Path, mutant: Any, timeout: Any, *_: Any, **__: Any) -> Any:
    """poodle's runner interface: the tests of the changed lines (``tests_for``) against the copy in
    ``run_folder``, in a forked process; found when they fail, a timeout when they outlast ``timeout``.
    A changed module-level string tries the tests that name its words first, then all of them."""
    from poodle.data_types import MutantTrialResult

    first = tests_naming(config, mutant)
    if first:
        result = _trial(run_folder, mutant, timeout, first)
        if result.found or result.reason_code == MutantTrialResult.RC_TIMEOUT:
            return result
    return _trial(run_folder, mutant, timeout, tests_for(config, mutant))


def _trial(run_folder: Path, mutant: Any, timeout: Any, tests: List[str]) -> Any:
    import pytest
    from poodle.data_types import MutantTrialResult

    source = (run_folder / mutant.source_folder).resolve()
    pid = os.fork()
    if pid == 0:  # the trial: the mutated copy first on the path, output thrown away
        code = 3
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            sys.path.insert(0, str(source))
            code = pytest.main(PYTEST_ARGS + tests)
        finally:
            os._exit(int(code))
    deadline = time.monotonic() + (timeout or 600)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return MutantTrialResult(found=False, reason_code=MutantTrialResult.RC_TIMEOUT, reason_desc="timeout")
        time.sleep(0.01)
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return MutantTrialResult(found=False, reason_code=MutantTrialResult.RC_NOT_FOUND)
    if code == 1:
        return MutantTrialResult(found=True, reason_code=MutantTrialResult.RC_FOUND)
    return MutantTrialResult(found=True, reason_code=MutantTrialResult.RC_OTHER, reason_desc=f"exit status {code}")


def run_poodle(folder: Path, module: str, tests: List[str], workers: int) -> Dict[str, Any]:
    """poodle over one module in ``folder``; its JSON report."""
    from poodle import core
    from poodle.config import build_config

    lines = map_lines(folder, module, tests)
    report = folder / "report.json"
    config_file = folder / "poodle.toml"
    config_file.write_text(
        "[poodle]\n"
        'source_folders = ["src"]\n'
        f'only_files = ["{Path(module).as_posix()}"]\n'
        'runner = "scripts.mutation.fork_runner"\n'
        f"runner_opts = {{tests = {json.dumps(tests)}, lines = \"{lines.as_posix()}\"}}\n"
        'reporters = ["json"]\n'
        f'reporter_opts = {{json_report_file = "{report.as_posix()}", json_report_found = true}}\n'
    )
    here = Path.cwd()
    os.chdir(folder)
    try:
        config = build_config(
            cmd_sources=(), cmd_config_file=config_file, cmd_quiet=2, cmd_verbose=0, cmd_max_workers=workers,
            cmd_excludes=(), cmd_only_files=(), cmd_report=(), cmd_html=None, cmd_json=None, cmd_fail_under=None,
        )
        core.main_process(config)
    finally:
        os.chdir(here)
    return json.loads(report.read_text())


def summarise(module: str, report: Dict[str, Any]) -> Dict[str, Any]:
    from poodle.data_types import MutantTrialResult as Result

    trials = report["mutant_trials"]
    codes = [t["result"]["reason_code"] for t in trials]
    survivors = [t for t in trials if not t["result"]["found"] and t["result"]["reason_code"] != Result.RC_TIMEOUT]
    timeouts = codes.count(Result.RC_TIMEOUT)
    killed = len(trials) - len(survivors)
    out = WORK / f"{Path(module).stem}-survivors.txt"
    out.write_text("".join(f"--- {t['mutant']['mutator_name']}\n{t['mutant']['unified_diff']}\n" for t in survivors))
    return {
        "module": module, "mutants": len(trials), "killed": killed, "timeouts": timeouts,
        "errors": codes.count(Result.RC_OTHER),
        "survived": len(survivors), "score": 100.0 * killed / len(trials) if trials else 0.0, "survivors": out,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="+", help="module paths, each optionally =test+test")
    parser.add_argument("--min", type=float, default=85.0, help="the lowest score that passes (percent)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    results = []
    for module, tests in modules_and_tests(args.modules):
        started = time.monotonic()
        folder = lay_out(module, tests)
        print(f"{module}: mutating, tests {' '.join(tests)} ...", flush=True)
        result = summarise(module, run_poodle(folder, module, tests, args.workers))
        result["minutes"] = (time.monotonic() - started) / 60
        results.append(result)
    print()
    print(f"{'module':36} {'mutants':>7} {'killed':>7} {'(hangs)':>7} {'(errors)':>8} {'survived':>8} {'score':>7}")
    for r in results:
        print(f"{r['module']:36} {r['mutants']:7} {r['killed']:7} {r['timeouts']:7} {r['errors']:8} "
              f"{r['survived']:8} {r['score']:6.1f}%   ({r['minutes']:.1f} min; survivors: "
              f"{r['survivors'].relative_to(ROOT)})")
    low = [r["module"] for r in results if r["score"] < args.min]
    if low:
        print(f"under {args.min:.0f}%: {', '.join(low)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

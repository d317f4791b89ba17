"""`make mutation` (scripts/mutation.py): which tests each module gets, and which of them a change runs."""

import json
from types import SimpleNamespace

import pytest

from scripts import mutation


def test_each_module_is_tested_by_its_own_test_file_unless_named():
    assert mutation.modules_and_tests(["clinic/rules/eligibility.py", "clinic/rules/answer_parsing.py"]) == [
        ("clinic/rules/eligibility.py", ["tests/test_eligibility.py"]),
        ("clinic/rules/answer_parsing.py", ["tests/test_answer_parsing.py"]),
    ]
    assert mutation.modules_and_tests(["clinic/rules/eligibility.py=tests/test_eligibility.py+tests/test_bad_input.py"]) == [
        ("clinic/rules/eligibility.py", ["tests/test_eligibility.py", "tests/test_bad_input.py"]),
    ]


@pytest.mark.parametrize("spec", ["clinic/nothing_here.py", "clinic/rules/eligibility.py=tests/test_nothing_here.py"])
def test_a_module_or_test_file_that_does_not_exist_stops_the_run(spec):
    with pytest.raises(SystemExit, match="not found"):
        mutation.modules_and_tests([spec])


@pytest.fixture
def config(tmp_path):
    lines = tmp_path / "lines.json"
    lines.write_text(json.dumps({"10": ["t::a", "t::b"], "11": ["t::b", "t::c"], "20": ["t::d"]}))
    mutation._TESTS_BY_LINE.clear()
    return SimpleNamespace(runner_opts={"tests": ["tests/test_x.py"], "lines": str(lines)})


def mutant(first, last=None, source_file="src/clinic/x.py"):
    return SimpleNamespace(lineno=first, end_lineno=last, source_file=source_file)


@pytest.mark.parametrize(
    "changed, tests",
    [
        (mutant(10), ["t::a", "t::b"]),
        (mutant(10, 11), ["t::a", "t::b", "t::c"]),  # every test of every changed line, once
        (mutant(19, 20), ["t::d"]),  # a line no test runs beside one that some test runs
        (mutant(3), ["tests/test_x.py"]),  # no test runs it while running (module-level data): all of them
        (mutant(10, source_file=None), ["tests/test_x.py"]),  # the clean run
    ],
)
def test_a_change_runs_the_tests_that_execute_its_lines(config, changed, tests):
    assert mutation.tests_for(config, changed) == tests

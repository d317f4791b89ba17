"""A looping bug fails the suite instead of hanging it: pytest-timeout is on for every test."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_has_a_time_limit(pytestconfig):
    limit = float(pytestconfig.getini("timeout"))
    assert 300 <= limit <= 1800  # generous for the stack's first test, still far under CI's 90 minutes


@pytest.mark.timeout(120)
def test_a_test_that_loops_fails_once_its_time_is_up(tmp_path):
    (tmp_path / "test_loop.py").write_text("def test_loop():\n    while True:\n        pass\n")
    (tmp_path / "pytest.ini").write_text((ROOT / "pytest.ini").read_text().replace("testpaths = tests\n", ""))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "timeout=2", "test_loop.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=100,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Timeout" in done.stdout and "1 failed" in done.stdout
    assert time.monotonic() - started < 60

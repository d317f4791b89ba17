"""The dependency audit (scripts/audit_deps.py, `make audit`) and the claims its explanations make.

The audit itself asks PyPI (CI runs it after the tests); here its reading of PyPI's answers is
tested on fixed data, and the explanation in security/known_vulnerabilities.yml is checked against
the running stack.
"""
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import requests

from scripts import audit_deps
from scripts.audit_deps import Finding, affects_pin, findings_of

ROOT = Path(__file__).resolve().parents[1]


def vuln(id_: str, fixed_in: List[str], aliases: Optional[List[str]] = None, withdrawn: Any = None) -> Dict[str, Any]:
    return {"id": id_, "aliases": aliases or [], "fixed_in": fixed_in, "link": f"https://osv.dev/{id_}", "withdrawn": withdrawn}


@pytest.mark.parametrize(
    "pin, fixed_in, affected",
    [
        ("2.0.1", [], True),  # no fix anywhere
        ("1.26.18", ["1.26.19", "2.2.2"], True),  # the fix of our line is newer than our pin
        ("1.26.20", ["1.26.19", "2.2.2"], False),  # our line has the fix at or below our pin
        ("1.26.19", ["1.26.19"], False),
        ("1.25.11", ["1.26.19"], True),  # another line's fix says nothing of ours
        ("3.9.5", ["3.10.11"], True),
        ("not-a-version", ["1.0"], True),
    ],
)
def test_a_vulnerability_of_the_latest_release_is_read_against_our_pin(pin: str, fixed_in: List[str], affected: bool) -> None:
    assert affects_pin(pin, fixed_in) is affected


def test_findings_of_our_release_are_all_ours_and_withdrawn_ones_are_dropped() -> None:
    data = {"vulnerabilities": [vuln("A", ["9.9"]), vuln("B", [], ["CVE-1"]), vuln("C", [], withdrawn="2026-01-01")]}
    found = findings_of("pkg", "1.0", data, "release")
    assert [(f.id, f.aliases, f.source) for f in found] == [("A", [], "release"), ("B", ["CVE-1"], "release")]


def test_findings_of_the_latest_release_skip_those_fixed_in_our_line() -> None:
    data = {"vulnerabilities": [vuln("FIXED-FOR-US", ["1.26.19"]), vuln("OPEN", [])]}
    assert [f.id for f in findings_of("urllib3", "1.26.20", data, "latest")] == ["OPEN"]


def _audit_with(monkeypatch: pytest.MonkeyPatch, answers: Dict[str, Optional[dict]], per_release: bool) -> audit_deps.Report:
    def fake_fetch(url: str, attempts: int = 3) -> Optional[dict]:
        if url not in answers:
            raise ConnectionError(url)
        return answers[url]

    monkeypatch.setattr(audit_deps, "fetch_json", fake_fetch)
    monkeypatch.setattr(audit_deps, "per_release_available", lambda: per_release)
    explanations = {
        "CVE-2": {"id": "CVE-2", "package": "b", "why": "not used here"},
        "GONE-1": {"id": "GONE-1", "package": "a", "why": "was fixed"},
        "X-1": {"id": "X-1", "package": "other", "why": "applies to another package only"},
    }
    pins = [("a", "1.0"), ("b", "2.0"), ("c", "3.0")]
    return audit_deps.audit(pins, explanations)


def test_an_unexplained_finding_or_an_unaudited_package_fails_the_audit(monkeypatch: pytest.MonkeyPatch) -> None:
    pypi = audit_deps.PYPI
    answers = {
        f"{pypi}/a/json": {"vulnerabilities": [vuln("X-1", [])]},  # explained, but for another package
        f"{pypi}/b/json": {"vulnerabilities": [vuln("B-1", [], ["CVE-2"])]},  # explained by its alias
        # c cannot be reached at all
    }
    report = _audit_with(monkeypatch, answers, per_release=False)
    assert report.mode == "partial"
    assert report.stale_explanations == []  # a partial audit cannot tell
    by_id = {f.id: f for f in report.findings}
    assert by_id["B-1"].explanation == "not used here"
    assert by_id["X-1"].explanation is None
    assert [f.id for f in report.unexplained] == ["X-1"]
    assert len(report.unreachable) == 1 and report.unreachable[0].startswith("c==3.0")


def test_the_per_release_pages_are_used_when_they_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    pypi = audit_deps.PYPI
    answers = {
        f"{pypi}/a/1.0/json": {"vulnerabilities": [vuln("OLD-FIX", ["1.1"])]},  # invisible on the latest page
        f"{pypi}/a/json": {"vulnerabilities": []},
        f"{pypi}/b/2.0/json": {"vulnerabilities": []},
        f"{pypi}/c/3.0/json": None,  # 404: this release's page is missing, the project's page is read
        f"{pypi}/c/json": {"vulnerabilities": []},
    }
    report = _audit_with(monkeypatch, answers, per_release=True)
    assert report.mode == "complete"
    assert [(f.package, f.id, f.source) for f in report.findings] == [("a", "OLD-FIX", "release")]
    assert report.unreachable == []
    assert report.stale_explanations == ["CVE-2", "GONE-1", "X-1"]  # none of them reported any more


def test_pip_setuptools_and_wheel_of_the_venv_are_audited_too() -> None:
    import importlib.metadata

    pins = audit_deps.with_venv_tools([("rasa", "3.6.21"), ("wheel", "0.1")])
    assert ("rasa", "3.6.21") in pins and ("wheel", "0.1") in pins  # a pin wins over what is installed
    assert ("pip", importlib.metadata.version("pip")) in pins
    assert ("setuptools", importlib.metadata.version("setuptools")) in pins
    assert len([name for name, _ in pins if name == "wheel"]) == 1


def test_main_exits_1_on_an_unexplained_vulnerability(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# pins\na==1.0\n")
    explanations = tmp_path / "known.yml"
    explanations.write_text("[]\n")
    report = audit_deps.Report("partial", 1, [Finding("a", "1.0", "A-1", [], [], "latest")])
    monkeypatch.setattr(audit_deps, "audit", lambda pins, explained: report)
    assert audit_deps.main(["--requirements", str(requirements), "--explanations", str(explanations)]) == 1
    out = capsys.readouterr().out
    assert "PARTIAL AUDIT" in out and "a==1.0 A-1" in out and "NOT EXPLAINED" in out


def test_pins_must_be_exact(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("a==1.0\nb>=2\n")
    with pytest.raises(SystemExit, match="not an exact pin"):
        audit_deps.read_pins(requirements)


def test_every_explanation_names_a_pinned_package() -> None:
    pinned = {name.lower() for name, _ in audit_deps.read_pins(ROOT / "requirements.txt")}
    explained = audit_deps.load_explanations(ROOT / "security" / "known_vulnerabilities.yml")
    assert explained, "the file is read"
    for key, entry in explained.items():
        assert entry["package"].lower() in pinned, key


LOOKALIKE = "http://127.0.0.1.evil.example"


def _cors_header(url: str, origin: str) -> Optional[str]:
    answer = requests.options(url, headers={"Origin": origin, "Access-Control-Request-Method": "POST"}, timeout=10)
    return answer.headers.get("Access-Control-Allow-Origin")


def test_sanic_cors_allows_no_origin_on_rasa_or_the_action_server(stack: Any, embed_port: int) -> None:
    """The claim behind the Sanic-Cors entry (CVE-2026-37737): no origin, lookalike or not, is allowed
    by Rasa or the action server, while the visitor API allows its configured site, exactly."""
    allowed = f"http://127.0.0.1:{embed_port}"
    assert _cors_header(f"{stack.web_url}/api/chat", allowed) == allowed  # the check can see a header
    assert _cors_header(f"{stack.web_url}/api/chat", allowed + ".evil.example") is None
    for url in (f"{stack.rasa_url}/webhooks/rest/webhook", f"{stack.rasa_url}/model/parse", f"http://127.0.0.1:{stack.actions_port}/webhook"):
        for origin in (LOOKALIKE, allowed, "null"):
            assert _cors_header(url, origin) is None, (url, origin)

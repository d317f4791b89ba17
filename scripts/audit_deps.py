#!/usr/bin/env python
"""Audit the pinned dependencies (requirements.txt, and pip, setuptools and wheel as installed in the
venv) against PyPI's vulnerability data.

PyPI publishes, for each release, the known vulnerabilities from the OSV database (the data
``pip-audit`` reads). Two ways to ask it:

- per release: ``https://pypi.org/pypi/<name>/<version>/json``, what pip-audit asks. Complete: every
  known vulnerability of the pinned version. Some machines (this project's CI among them) reach the
  registry through a proxy that answers 404 to these addresses.
- per project: ``https://pypi.org/pypi/<name>/json``: the vulnerabilities of the *latest* release.
  One that has no fix, or whose fix is newer than our pin, is taken to affect our pin as well.
  Partial: it cannot see a vulnerability fixed in a release between our pin and the latest.

The audit uses the first when it answers and says loudly when it had to fall back to the second.
Every finding must be explained in ``security/known_vulnerabilities.yml`` (why it does not apply
here, or why the pin cannot move yet); an unexplained one fails the audit (exit 1). An explanation
whose vulnerability is no longer reported is listed too, so the file does not rot.

    python scripts/audit_deps.py [--requirements requirements.txt] [--json out.json]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import importlib.metadata
import json
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import yaml
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[1]
PYPI = "https://pypi.org/pypi"
# a release that certainly exists: if its per-release page does not answer, none will
PROBE = ("requests", "2.31.0")
# installed in the venv beside the pins, though `pip freeze` (and so requirements.txt) leaves them out
VENV_TOOLS = ("pip", "setuptools", "wheel")


@dataclass
class Finding:
    package: str
    version: str
    id: str
    aliases: List[str]
    fixed_in: List[str]
    source: str  # "release" (our pinned release) or "latest" (the latest release, inferred)
    link: str = ""
    explanation: Optional[str] = None


@dataclass
class Report:
    mode: str  # "complete" or "partial"
    packages: int
    findings: List[Finding] = field(default_factory=list)
    unreachable: List[str] = field(default_factory=list)
    stale_explanations: List[str] = field(default_factory=list)

    @property
    def unexplained(self) -> List[Finding]:
        return [f for f in self.findings if f.explanation is None]


def read_pins(path: Path) -> List[Tuple[str, str]]:
    pins = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "==" not in line:
            raise SystemExit(f"{path}: not an exact pin: {line!r}")
        name, version = line.split("==", 1)
        pins.append((name.strip(), version.split(";", 1)[0].strip()))
    return pins


def with_venv_tools(pins: List[Tuple[str, str]]) -> List[Tuple[str, str]]:
    """The pins plus the versions of pip, setuptools and wheel installed where this runs (the venv)."""
    named = {name.lower() for name, _ in pins}
    tools = []
    for tool in VENV_TOOLS:
        if tool in named:
            continue
        try:
            tools.append((tool, importlib.metadata.version(tool)))
        except importlib.metadata.PackageNotFoundError:
            pass
    return pins + tools


def fetch_json(url: str, attempts: int = 3) -> Optional[dict]:
    """The JSON at url; None when it answers 404; raises when it cannot be reached at all."""
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=30) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            error: Exception = exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            error = exc
        time.sleep(1 + attempt)
    raise ConnectionError(f"{url}: {error}")


def per_release_available() -> bool:
    try:
        return fetch_json(f"{PYPI}/{PROBE[0]}/{PROBE[1]}/json") is not None
    except ConnectionError:
        return False


def _version(text: str) -> Optional[Version]:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def affects_pin(pinned: str, fixed_in: Iterable[str]) -> bool:
    """A vulnerability of the latest release, read against our older pin: it affects the pin unless
    one of its fixes is in our pin's own release line at or below it (e.g. fixed in 1.26.19 on the
    1.x line while the latest, 2.x, is affected again: a pin of 1.26.20 is safe)."""
    pin = _version(pinned)
    fixes = [v for v in (_version(f) for f in fixed_in) if v is not None]
    if pin is None or not fixes:
        return True
    return not any(fix.release[:2] == pin.release[:2] and fix <= pin for fix in fixes)


def findings_of(package: str, version: str, data: dict, source: str) -> List[Finding]:
    found = []
    for vuln in data.get("vulnerabilities") or []:
        if vuln.get("withdrawn"):
            continue
        fixed_in = list(vuln.get("fixed_in") or [])
        if source == "latest" and not affects_pin(version, fixed_in):
            continue
        found.append(
            Finding(package, version, vuln["id"], list(vuln.get("aliases") or []), fixed_in, source, vuln.get("link") or "")
        )
    return found


def audit_one(pin: Tuple[str, str], complete: bool) -> Tuple[List[Finding], Optional[str]]:
    name, version = pin
    try:
        if complete:
            data = fetch_json(f"{PYPI}/{name}/{version}/json")
            if data is not None:
                return findings_of(name, version, data, "release"), None
        data = fetch_json(f"{PYPI}/{name}/json")
    except ConnectionError as exc:
        return [], f"{name}=={version}: {exc}"
    if data is None:
        return [], f"{name}=={version}: not on PyPI"
    return findings_of(name, version, data, "latest"), None


def load_explanations(path: Path) -> Dict[str, Dict[str, str]]:
    if not path.exists():
        return {}
    entries = yaml.safe_load(path.read_text()) or []
    explained = {}
    for entry in entries:
        for key in ("id", "package", "why"):
            if not entry.get(key):
                raise SystemExit(f"{path}: an entry lacks {key!r}: {entry}")
        explained[entry["id"]] = entry
    return explained


def audit(pins: List[Tuple[str, str]], explanations: Dict[str, Dict[str, str]]) -> Report:
    complete = per_release_available()
    report = Report("complete" if complete else "partial", len(pins))
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        for found, problem in pool.map(lambda pin: audit_one(pin, complete), pins):
            report.findings.extend(found)
            if problem:
                report.unreachable.append(problem)
    seen = set()
    for finding in report.findings:
        for key in [finding.id, *finding.aliases]:
            entry = explanations.get(key)
            if entry and entry["package"].lower() == finding.package.lower():
                finding.explanation = entry["why"].strip()
                seen.add(key)
    if complete:  # a partial audit cannot tell a fixed vulnerability from one it does not see
        report.stale_explanations = sorted(set(explanations) - seen)
    report.findings.sort(key=lambda f: (f.package.lower(), f.id))
    return report


def print_report(report: Report) -> None:
    if report.mode == "complete":
        print(f"audit of {report.packages} pinned packages: every pinned release asked (complete)")
    else:
        print(f"PARTIAL AUDIT of {report.packages} pinned packages: PyPI's per-release vulnerability pages do not")
        print("answer from this machine, so only the vulnerabilities of each project's latest release were read")
        print("(those without a fix at or below our pin count as ours). A vulnerability fixed between our pin and")
        print("the latest release is not seen: run this on a machine with full access for a complete audit.")
    for finding in report.findings:
        fixed = ", ".join(finding.fixed_in) or "no fixed release"
        state = "explained" if finding.explanation else "NOT EXPLAINED"
        print(f"  {finding.package}=={finding.version} {finding.id} ({', '.join(finding.aliases)}; fixed in: {fixed}): {state}")
        if finding.explanation:
            print(f"      {finding.explanation}")
    for problem in report.unreachable:
        print(f"  could not audit {problem}")
    for key in report.stale_explanations:
        print(f"  security/known_vulnerabilities.yml: {key} is no longer reported (remove it?)")
    print(
        f"{len(report.findings)} known vulnerabilities, {len(report.unexplained)} not explained, "
        f"{len(report.unreachable)} packages not audited"
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requirements", type=Path, default=ROOT / "requirements.txt")
    parser.add_argument("--explanations", type=Path, default=ROOT / "security" / "known_vulnerabilities.yml")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    report = audit(with_venv_tools(read_pins(args.requirements)), load_explanations(args.explanations))
    print_report(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = asdict(report)
        args.json.write_text(json.dumps(payload, indent=2))
    return 1 if report.unexplained or report.unreachable else 0


if __name__ == "__main__":
    sys.exit(main())

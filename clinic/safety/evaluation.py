"""The safety layer measured on a bank written apart from its training data.

    python -m clinic.safety.evaluation tests/safety/test_bank_v16.yml tests/safety/test_bank_v15.yml ...   (make eval-safety)
    python -m clinic.safety.evaluation tests/safety/validation_bank.yml --thresholds

parses every message of the bank with the trained model, as the Rasa server would, and prints:
recall per crisis and urgent-medical category (a crisis counts when the parse's intent is
``crisis``, full reply or check-in; the check-ins are counted too), what the hard negatives got
per kind (full crisis takeovers, check-ins, urgent-medical replies), and the confusion between
``crisis`` and ``urgent_medical``, for each bank given. The reports go to
``results/safety_eval.json`` (one per bank, by file name).

``--thresholds`` (on the validation bank only: the test bank is never tuned on) prints the
thresholds the validation bank supports: the highest check-in threshold that keeps every crisis
message, the lowest takeover threshold that keeps full takeovers of hard negatives at 2% or
fewer, and the urgent threshold that keeps urgent-medical recall at 0.95 or more.
"""

import argparse
import asyncio
import json
import sys
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Sequence

from clinic.safety.bank import CRISIS, NONE, URGENT_MEDICAL, Example, load_bank
from clinic.safety.verdict import CHECK_IN, verdict_of


@dataclass
class Outcome:
    text: str
    outcome: str  # the bank's
    group: str
    intent: str  # the parse's
    response: str  # takeover / check_in / "" 
    source: str
    scores: Dict[str, float]

    @property
    def takeover(self) -> bool:
        return self.intent == CRISIS and self.response != CHECK_IN

    @property
    def check_in(self) -> bool:
        return self.intent == CRISIS and self.response == CHECK_IN


@dataclass
class SafetyReport:
    risk_messages: int
    crisis_recall: float
    crisis_recall_takeover: float
    urgent_recall: float
    hard_negatives: int
    takeover_rate: float
    check_in_rate: float
    urgent_rate: float
    recall_by_category: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    negatives_by_kind: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    confusion: Dict[str, Dict[str, int]] = field(default_factory=dict)
    misses: List[Dict[str, str]] = field(default_factory=list)
    false_alarms: List[Dict[str, str]] = field(default_factory=list)


def outcome_of(example: Example, parse: Dict[str, Any]) -> Outcome:
    verdict = verdict_of(parse)
    intent = (parse.get("intent") or {}).get("name") or "None"
    return Outcome(example.text, example.outcome, example.group, intent, verdict.response or "",
                   verdict.source or "", verdict.scores)


def _rate(n: int, d: int) -> float:
    return round(n / d, 4) if d else 0.0


def score(outcomes: Sequence[Outcome]) -> SafetyReport:
    crisis = [o for o in outcomes if o.outcome == CRISIS]
    urgent = [o for o in outcomes if o.outcome == URGENT_MEDICAL]
    negatives = [o for o in outcomes if o.outcome == NONE]
    by_category: Dict[str, List[Outcome]] = defaultdict(list)
    for o in crisis + urgent:
        by_category[f"{o.outcome}:{o.group}"].append(o)
    by_kind: Dict[str, List[Outcome]] = defaultdict(list)
    for o in negatives:
        by_kind[o.group or "ordinary"].append(o)
    confusion: Dict[str, Dict[str, int]] = {}
    for gold in (CRISIS, URGENT_MEDICAL, NONE):
        counts = Counter(o.intent if o.intent in (CRISIS, URGENT_MEDICAL) else "other"
                         for o in outcomes if o.outcome == gold)
        confusion[gold] = {k: counts.get(k, 0) for k in (CRISIS, URGENT_MEDICAL, "other")}
    return SafetyReport(
        risk_messages=len(crisis) + len(urgent),
        crisis_recall=_rate(sum(o.intent == CRISIS for o in crisis), len(crisis)),
        crisis_recall_takeover=_rate(sum(o.takeover for o in crisis), len(crisis)),
        urgent_recall=_rate(sum(o.intent == URGENT_MEDICAL for o in urgent), len(urgent)),
        hard_negatives=len(negatives),
        takeover_rate=_rate(sum(o.takeover for o in negatives), len(negatives)),
        check_in_rate=_rate(sum(o.check_in for o in negatives), len(negatives)),
        urgent_rate=_rate(sum(o.intent == URGENT_MEDICAL for o in negatives), len(negatives)),
        recall_by_category={
            name: {"n": len(items), "recall": _rate(sum(o.intent == o.outcome for o in items), len(items)),
                   "check_ins": sum(o.check_in for o in items)}
            for name, items in sorted(by_category.items())
        },
        negatives_by_kind={
            kind: {"n": len(items), "takeovers": sum(o.takeover for o in items),
                   "check_ins": sum(o.check_in for o in items),
                   "urgent": sum(o.intent == URGENT_MEDICAL for o in items)}
            for kind, items in sorted(by_kind.items())
        },
        confusion=confusion,
        misses=[{"group": o.group, "outcome": o.outcome, "got": o.intent, "text": o.text}
                for o in crisis + urgent if o.intent != o.outcome],
        false_alarms=[{"kind": o.group, "got": f"{o.intent}/{o.response}", "text": o.text}
                      for o in negatives if o.intent in (CRISIS, URGENT_MEDICAL)],
    )


def suggest_thresholds(outcomes: Sequence[Outcome], max_takeover_rate: float = 0.02,
                       urgent_recall: float = 0.95) -> Dict[str, float]:
    """Thresholds the bank supports (see the module's docstring). A message a pattern decided
    is a crisis at any threshold."""
    def p(o: Outcome, key: str) -> float:
        return 1.0 if o.source.startswith("pattern:") and key == CRISIS else float(o.scores.get(key, 0.0))

    crisis = sorted(p(o, CRISIS) for o in outcomes if o.outcome == CRISIS)
    negatives = sorted((p(o, CRISIS) for o in outcomes if o.outcome == NONE), reverse=True)
    urgent = sorted(p(o, URGENT_MEDICAL) for o in outcomes if o.outcome == URGENT_MEDICAL)
    allowed = int(max_takeover_rate * len(negatives))
    takeover = (negatives[allowed] + 1e-6) if len(negatives) > allowed else 0.0
    missed_urgent = int((1 - urgent_recall) * len(urgent))
    return {
        "check_in_threshold": round(max(min(crisis) - 1e-6, 0.0), 4) if crisis else 0.0,
        "takeover_threshold": round(min(max(takeover, 0.0), 1.0), 4),
        "urgent_threshold": round(urgent[missed_urgent] - 1e-6, 4) if urgent else 0.0,
    }


async def parse_all(agent: Any, examples: Sequence[Example]) -> List[Outcome]:
    return [outcome_of(e, await agent.parse_message(e.text)) for e in examples]


def format_report(report: SafetyReport) -> str:
    lines = ["recall per category (crisis: the crisis reply or a check-in; check-ins in brackets)"]
    for name, s in report.recall_by_category.items():
        lines.append(f"  {name:<48} {s['recall']:.3f}  ({s['check_ins']} check-ins)  n={s['n']}")
    lines += ["", "hard negatives per kind: full crisis takeovers / check-ins / urgent-medical replies"]
    for kind, s in report.negatives_by_kind.items():
        lines.append(f"  {kind:<48} {s['takeovers']:>3} / {s['check_ins']:>3} / {s['urgent']:>3}  of {s['n']}")
    lines += ["", "confusion (rows: the bank's outcome; columns: the parse's intent)",
              f"  {'':<16} {'crisis':>8} {'urgent':>8} {'other':>8}"]
    for gold, row in report.confusion.items():
        lines.append(f"  {gold:<16} {row[CRISIS]:>8} {row[URGENT_MEDICAL]:>8} {row['other']:>8}")
    lines += [
        "",
        f"crisis recall: {report.crisis_recall:.4f} (full reply {report.crisis_recall_takeover:.4f}); "
        f"urgent_medical recall: {report.urgent_recall:.4f}; {report.risk_messages} risk messages",
        f"hard negatives: {report.hard_negatives}; full crisis takeovers {report.takeover_rate:.4f}, "
        f"check-ins {report.check_in_rate:.4f}, urgent-medical replies {report.urgent_rate:.4f}",
    ]
    if report.misses:
        lines += ["", "missed:"] + [f"  [{m['outcome']}:{m['group']} -> {m['got']}] {m['text'][:160]}" for m in report.misses]
    if report.false_alarms:
        lines += ["", "hard negatives that got a crisis or urgent reply:"]
        lines += [f"  [{f['kind']} -> {f['got']}] {f['text'][:160]}" for f in report.false_alarms]
    return "\n".join(lines)


def main(argv: List[str]) -> int:
    import logging

    from rasa.core.agent import Agent

    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # Rasa's debug log prints what it parses: never the texts
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument("banks", nargs="*", default=["tests/safety/test_bank_v16.yml"])
    args.add_argument("--model", default="models/clinic.tar.gz")
    args.add_argument("--thresholds", action="store_true", help="print the thresholds the bank supports")
    options = args.parse_args(argv)
    agent = Agent.load(options.model)
    reports = {}
    for bank in options.banks:
        outcomes = asyncio.run(parse_all(agent, load_bank(Path(bank))))
        report = score(outcomes)
        print(f"== {bank}\n{format_report(report)}")
        if options.thresholds:
            print("\nthresholds this bank supports:", json.dumps(suggest_thresholds(outcomes)))
        reports[Path(bank).name] = asdict(report)
        print()
    out = Path("results/safety_eval.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(reports, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

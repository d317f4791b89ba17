"""NLU evaluation on held-out sets: accuracy, top-3, calibration, and what the visitor got.

``python -m clinic.nlu.evaluation tests/nlu/heldout.yml tests/nlu/heldout_faq_pages.yml`` (``make
eval-nlu``) loads the trained model, parses every example as the Rasa server would, prints one
report per set and writes them to ``results/nlu_eval.json``. The tests use the same functions
with the model they load once per session.

A label is the intent, or ``faq/<key>`` for FAQ questions (the response selector's
``intent_response_key``). For each set:

- per-label precision and recall, overall accuracy and FAQ topic accuracy (top-1): the parse's
  label must be exactly the gold one; a fallback counts as a miss;
- top-3: the gold label is among the classifier's three likeliest labels (the FAQ topics'
  ranking and the other intents' ranking merged by confidence);
- calibration: the classifier's top label and its confidence (before the fallback), the
  expected calibration error over ten bins of confidence (ECE: the gap between confidence and
  accuracy, weighted by the bin's share) and a reliability table;
- what the visitor got: the right answer, a "did you mean" that offered the right topic, one
  that did not, a plain fallback, or a wrong answer given with confidence.

The report opens with the number of reviewed examples in the training data (the corrections
staff accepted in the console: ``clinic.nlu.reviewed_data``; ``make eval-nlu`` retrains the model
first when they changed, so the model evaluated was trained with them).
``--compare-reviewed`` (``make eval-reviewed``) gives the figures before and after them: it
trains an NLU-only model on a copy of the training data without the reviewed files
(``clinic.nlu.training``) and prints both models' figures on each set side by side.
"""

import asyncio
import json
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from clinic.safety.bank import read_yaml

Example = Tuple[str, str]  # (text, gold label)
FALLBACK = "nlu_fallback"
BINS = 10


def load_examples(path: Path) -> List[Example]:
    data = read_yaml(path)
    examples: List[Example] = []
    for block in data.get("nlu", []):
        label = block["intent"]
        for line in str(block.get("examples", "")).splitlines():
            line = line.strip()
            if line.startswith("- "):
                examples.append((line[2:].strip(), label))
    return examples


def label_of(parse: Dict[str, Any]) -> str:
    intent = (parse.get("intent") or {}).get("name") or "None"
    if intent == "faq":
        selector = parse.get("response_selector", {}).get("faq", {})
        key = selector.get("response", {}).get("intent_response_key")
        return key or "faq"
    return intent


def ranked_labels(parse: Dict[str, Any]) -> List[Tuple[str, float]]:
    """The classifier's labels, likeliest first: FAQ topics and other intents merged (the
    fallback and the safety layer's overrides left out: they are not the classifier's)."""
    ranked = [(r["intent_response_key"], float(r["confidence"]))
              for r in (parse.get("response_selector", {}).get("faq", {}).get("ranking") or [])]
    ranked += [(r["name"], float(r["confidence"])) for r in parse.get("intent_ranking") or []
               if r.get("name") not in ("faq", FALLBACK, "crisis", "urgent_medical")]
    return sorted(ranked, key=lambda item: -item[1])


@dataclass
class LabelScore:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Report:
    examples: int
    accuracy: float
    topic_accuracy: float
    faq_examples: int
    fallbacks: int
    top3_accuracy: float = 0.0
    topic_top3_accuracy: float = 0.0
    ece: float = 0.0
    reliability: List[Dict[str, float]] = field(default_factory=list)
    outcomes: Dict[str, int] = field(default_factory=dict)
    per_label: Dict[str, LabelScore] = field(default_factory=dict)
    errors: List[Dict[str, str]] = field(default_factory=list)


@dataclass
class Parsed:
    text: str
    gold: str
    predicted: str  # the parse's label (fallback included)
    ranked: List[Tuple[str, float]]
    offered: List[str]  # "did you mean" topics, as faq/<key>


def parsed(text: str, gold: str, parse: Dict[str, Any]) -> Parsed:
    offered = [f"faq/{c['topic']}" for c in parse.get("did_you_mean") or []]
    return Parsed(text, gold, label_of(parse), ranked_labels(parse), offered)


def calibration(items: Sequence[Parsed]) -> Tuple[float, List[Dict[str, float]]]:
    """The expected calibration error of the classifier's top label, and the reliability table."""
    bins: List[List[Tuple[float, bool]]] = [[] for _ in range(BINS)]
    for p in items:
        if not p.ranked:
            continue
        label, confidence = p.ranked[0]
        bins[min(int(confidence * BINS), BINS - 1)].append((confidence, label == p.gold))
    total = sum(len(b) for b in bins) or 1
    ece, table = 0.0, []
    for i, b in enumerate(bins):
        if not b:
            continue
        mean_conf = sum(c for c, _ in b) / len(b)
        accuracy = sum(ok for _, ok in b) / len(b)
        ece += len(b) / total * abs(mean_conf - accuracy)
        table.append({"from": i / BINS, "to": (i + 1) / BINS, "n": len(b),
                      "confidence": round(mean_conf, 3), "accuracy": round(accuracy, 3)})
    return round(ece, 4), table


def what_the_visitor_got(p: Parsed) -> str:
    if p.predicted == p.gold:
        return "answered right"
    if p.predicted == FALLBACK:
        if p.offered:
            return "did you mean, right topic offered" if p.gold in p.offered else "did you mean, right topic not offered"
        return "plain fallback"
    return "wrong answer"


def score_parsed(items: Sequence[Parsed]) -> Report:
    golds = [p.gold for p in items]
    predictions = [p.predicted for p in items]
    report = score(golds, predictions, [p.text for p in items])
    top3 = [p.gold in [label for label, _ in p.ranked[:3]] for p in items]
    faq = [ok for ok, p in zip(top3, items) if p.gold.startswith("faq/")]
    report.top3_accuracy = round(sum(top3) / len(top3), 4) if top3 else 0.0
    report.topic_top3_accuracy = round(sum(faq) / len(faq), 4) if faq else 0.0
    report.ece, report.reliability = calibration(items)
    report.outcomes = dict(Counter(what_the_visitor_got(p) for p in items))
    return report


def score(golds: Sequence[str], predictions: Sequence[str], texts: Sequence[str]) -> Report:
    labels = sorted(set(golds))
    true_pos: Counter = Counter()
    predicted: Counter = Counter(predictions)
    support: Counter = Counter(golds)
    errors = []
    for text, gold, pred in zip(texts, golds, predictions):
        if gold == pred:
            true_pos[gold] += 1
        else:
            errors.append({"text": text, "gold": gold, "predicted": pred})
    per_label = {}
    for label in labels:
        p = true_pos[label] / predicted[label] if predicted[label] else 0.0
        r = true_pos[label] / support[label] if support[label] else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        per_label[label] = LabelScore(round(p, 3), round(r, 3), round(f1, 3), support[label])
    faq = [(g, p) for g, p in zip(golds, predictions) if g.startswith("faq/")]
    return Report(
        examples=len(golds),
        accuracy=round(sum(true_pos.values()) / len(golds), 4) if golds else 0.0,
        topic_accuracy=round(sum(g == p for g, p in faq) / len(faq), 4) if faq else 0.0,
        faq_examples=len(faq),
        fallbacks=predicted[FALLBACK],
        per_label=per_label,
        errors=errors,
    )


async def parse_all(agent: Any, examples: Sequence[Example]) -> List[Parsed]:
    return [parsed(text, gold, await agent.parse_message(text)) for text, gold in examples]


async def evaluate(agent: Any, examples: Sequence[Example]) -> Report:
    return score_parsed(await parse_all(agent, examples))


def format_report(report: Report, name: Optional[str] = None) -> str:
    lines = [f"== {name}" if name else ""]
    lines.append(f"{'label':<36} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>4}")
    for label, s in report.per_label.items():
        lines.append(f"{label:<36} {s.precision:>9.3f} {s.recall:>7.3f} {s.f1:>6.3f} {s.support:>4}")
    lines += ["", "reliability (the classifier's top label, before the fallback):",
              f"  {'confidence':<12} {'n':>5} {'mean conf':>10} {'accuracy':>9}"]
    for row in report.reliability:
        lines.append(f"  {row['from']:.1f}-{row['to']:.1f}     {row['n']:>5} {row['confidence']:>10.3f} {row['accuracy']:>9.3f}")
    lines += ["", "what the visitor got: " + ", ".join(f"{k} {v}" for k, v in sorted(report.outcomes.items()))]
    lines += [
        "",
        f"examples: {report.examples}   overall accuracy: {report.accuracy:.4f}   top-3: {report.top3_accuracy:.4f}   "
        f"fallbacks: {report.fallbacks}",
        f"FAQ topic accuracy: top-1 {report.topic_accuracy:.4f}, top-3 {report.topic_top3_accuracy:.4f} "
        f"on {report.faq_examples} FAQ examples",
        f"expected calibration error: {report.ece:.4f}",
    ]
    if report.errors:
        lines += ["", "misclassified:"]
        lines += [f"  [{e['gold']} -> {e['predicted']}] {e['text'][:160]}" for e in report.errors]
    return "\n".join(lines)


def reviewed_summary(data: Path = Path("data")) -> str:
    """How many reviewed examples (corrections accepted in the console) the training data holds."""
    from clinic.nlu.reviewed_data import ReviewedData

    counts = ReviewedData(data).count()
    detail = ", ".join(f"{data / path} {n}" for path, n in counts.items())
    return f"reviewed examples in the training data: {sum(counts.values())}" + (f" ({detail})" if detail else "")


def comparison_table(reports: Dict[str, Dict[str, Report]]) -> str:
    """Figures per set of the model without the reviewed examples and the model with them."""
    lines = [f"{'set':<34} {'model':<18} {'FAQ top-1':>9} {'FAQ top-3':>9} {'ECE':>7} {'accuracy':>8} {'fallbacks':>9}"]
    for path, by_model in reports.items():
        for name, r in by_model.items():
            lines.append(f"{path:<34} {name:<18} {r.topic_accuracy:>9.3f} {r.topic_top3_accuracy:>9.3f} {r.ece:>7.3f} "
                         f"{r.accuracy:>8.3f} {r.fallbacks:>9}")
    return "\n".join(lines)


def compare_reviewed(paths: Sequence[Path], model: str) -> int:
    import tempfile

    from rasa.core.agent import Agent

    from clinic.nlu.training import copy_data, reviewed_paths, train_nlu

    reviewed = reviewed_paths(Path("data"))
    if not reviewed:
        print("no reviewed examples in data/: nothing to compare")
        return 0
    with tempfile.TemporaryDirectory(prefix="clinic-eval-") as tmp:
        data = copy_data(Path(tmp) / "data", Path("data"), without=reviewed)
        print(f"training an NLU model without {len(reviewed)} reviewed files ...", flush=True)
        without = train_nlu(data, Path(tmp) / "models", "without-reviewed")
        agents = {"without reviewed": Agent.load(str(without)), "with reviewed": Agent.load(model)}
        reports = {str(p): {name: asyncio.run(evaluate(agent, load_examples(p))) for name, agent in agents.items()}
                   for p in paths}
    print(comparison_table(reports))
    return 0


def main(argv: List[str]) -> int:
    import logging

    from rasa.core.agent import Agent

    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # Rasa's debug log prints what it parses: never the texts
    paths = [Path(a) for a in argv if a.endswith(".yml")] or [Path("tests/nlu/heldout.yml")]
    model = next((a for a in argv if a.endswith(".tar.gz")), "models/clinic.tar.gz")
    print(reviewed_summary())
    if "--compare-reviewed" in argv:
        return compare_reviewed(paths, model)
    agent = Agent.load(model)
    reports = {}
    for path in paths:
        report = asyncio.run(evaluate(agent, load_examples(path)))
        print(format_report(report, str(path)))
        print()
        reports[str(path)] = asdict(report)
    out = Path("results/nlu_eval.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(reports, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""NLU evaluation on a held-out set: per-intent precision/recall, FAQ topic accuracy.

``python -m clinic.nlu_eval tests/nlu/heldout.yml`` (``make eval-nlu``) loads the
trained model, parses every example as the Rasa server would, prints the
report and writes it to ``results/nlu_eval.json``. The tests use the same
functions with the model they load once per session.

A label is the intent, or ``faq/<key>`` for FAQ questions (the response
selector's ``intent_response_key``). Topic accuracy counts the FAQ examples
whose predicted label is exactly their topic; a fallback counts as a miss.
"""

import asyncio
import json
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import yaml

Example = Tuple[str, str]  # (text, gold label)


def load_examples(path: Path) -> List[Example]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
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
    per_label: Dict[str, LabelScore] = field(default_factory=dict)
    errors: List[Dict[str, str]] = field(default_factory=list)


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
        fallbacks=predicted["nlu_fallback"],
        per_label=per_label,
        errors=errors,
    )


async def evaluate(agent: Any, examples: Sequence[Example]) -> Report:
    predictions = []
    for text, _ in examples:
        parse = await agent.parse_message(text)
        predictions.append(label_of(parse))
    return score([g for _, g in examples], predictions, [t for t, _ in examples])


def format_report(report: Report) -> str:
    lines = [f"{'label':<36} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>4}"]
    for label, s in report.per_label.items():
        lines.append(f"{label:<36} {s.precision:>9.3f} {s.recall:>7.3f} {s.f1:>6.3f} {s.support:>4}")
    lines += [
        "",
        f"examples: {report.examples}   overall accuracy: {report.accuracy:.4f}   fallbacks: {report.fallbacks}",
        f"FAQ topic accuracy: {report.topic_accuracy:.4f} on {report.faq_examples} FAQ examples",
    ]
    if report.errors:
        lines += ["", "misclassified:"]
        lines += [f"  [{e['gold']} -> {e['predicted']}] {e['text']}" for e in report.errors]
    return "\n".join(lines)


def main(argv: List[str]) -> int:
    from rasa.core.agent import Agent

    path = Path(argv[0] if argv else "tests/nlu/heldout.yml")
    model = argv[1] if len(argv) > 1 else "models/clinic.tar.gz"
    agent = Agent.load(model)
    report = asyncio.run(evaluate(agent, load_examples(path)))
    print(format_report(report))
    out = Path("results/nlu_eval.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(asdict(report), indent=2))
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The safety banks: messages with the outcome the safety layer must give them.

Three outcomes: ``crisis``, ``urgent_medical`` and ``none``. Every risk message has a
category (``passive_death_wish``, ``chest_pain``, ...) and every hard negative a kind
(``death_idioms``, ``grief_and_loss``, ...): the evaluation reports recall per category and
false alarms per kind.

Where they live:

- training: ``data/safety/crisis.yml`` and ``data/safety/urgent_medical.yml`` are Rasa NLU
  data (the ``crisis`` and ``urgent_medical`` intents, one block per category, the category
  in the block's metadata), so Rasa validates and fingerprints them with the rest;
  ``data/safety/hard_negatives*.yml`` hold the hard negatives (``safety_negatives:``, one
  block per kind), which are no intent's examples and which Rasa's loader passes over;
- evaluation: ``tests/safety/*.yml`` hold all three outcomes in one format
  (``safety_bank:``, one block per category or kind), written apart from the training banks.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, List, Sequence

import yaml

CRISIS = "crisis"
URGENT_MEDICAL = "urgent_medical"
NONE = "none"
OUTCOMES = (CRISIS, URGENT_MEDICAL, NONE)
RISK_INTENTS = (CRISIS, URGENT_MEDICAL)
# Hard negatives that are someone struggling without risk: in the safety mode that follows a
# crisis reply they get support, not an FAQ.
DISTRESS_KINDS = frozenset({"treatment_frustration", "low_mood_without_risk", "grief_and_loss"})


@dataclass(frozen=True)
class Example:
    text: str
    outcome: str
    group: str  # the category (risk) or kind (hard negative); "" for ordinary messages


# libyaml's loader (PyYAML's wheels are built with it): the same documents as ``yaml.safe_load``,
# ~25 times faster (the 129 training and evaluation files: 0.15 s against 3.7 s on 2026-12-07's
# slower machine). The staff console's review reads them all at each accept.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> Any:
    """A YAML file of the project's data or evaluation sets, as ``yaml.safe_load`` reads it
    (``{}`` when it is empty)."""
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_LOADER) or {}


def _lines(block: str) -> List[str]:
    return [line.strip()[2:].strip() for line in str(block or "").splitlines() if line.strip().startswith("- ")]


def load_risk_examples(path: Path) -> List[Example]:
    """A training file of risk messages in Rasa's NLU format (``- intent: crisis``, metadata
    ``category``)."""
    doc = read_yaml(path)
    examples = []
    for block in doc.get("nlu", []):
        outcome = block["intent"]
        if outcome not in RISK_INTENTS:
            raise ValueError(f"{path}: intent {outcome!r} is not one of {RISK_INTENTS}")
        category = (block.get("metadata") or {}).get("category") or ""
        examples += [Example(text, outcome, category) for text in _lines(block.get("examples"))]
    return examples


def load_negatives(path: Path) -> List[Example]:
    """A training file of hard negatives (``safety_negatives:``, one block per kind)."""
    doc = read_yaml(path)
    return [
        Example(text, NONE, block["kind"])
        for block in doc.get("safety_negatives", [])
        for text in _lines(block.get("examples"))
    ]


def load_bank(path: Path) -> List[Example]:
    """An evaluation bank (``safety_bank:``): every outcome, a category or kind per block."""
    doc = read_yaml(path)
    examples = []
    for block in doc.get("safety_bank", []):
        outcome = block["outcome"]
        if outcome not in OUTCOMES:
            raise ValueError(f"{path}: outcome {outcome!r} is not one of {OUTCOMES}")
        group = block.get("category") or block.get("kind") or ""
        examples += [Example(text, outcome, group) for text in _lines(block.get("examples"))]
    return examples


def negative_files(folder: Path) -> List[Path]:
    return sorted(Path(folder).glob("hard_negatives*.yml"))


def load_training_negatives(folder: Path) -> List[Example]:
    return [e for f in negative_files(folder) for e in load_negatives(f)]


def fingerprint(paths: Iterable[Path]) -> str:
    """A hash of the files' contents (Rasa retrains the safety layer when it changes)."""
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        digest.update(str(path.name).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def normalised(text: str) -> str:
    """The text as the overlap check compares it: lower case, letters and digits only."""
    return " ".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def file_examples(path: Path) -> List[str]:
    """Every example of a file in any of the project's formats (Rasa NLU, hard negatives, banks)."""
    doc = read_yaml(path)
    if not isinstance(doc, dict):
        return []
    return [text for key in ("nlu", "safety_negatives", "safety_bank") for block in doc.get(key) or []
            if isinstance(block, dict) for text in _lines(block.get("examples"))]


def overlap(first: Sequence[str], second: Sequence[str]) -> List[str]:
    """The texts of ``second`` that are, normalised, also in ``first``."""
    seen = {normalised(t) for t in first}
    return [t for t in second if normalised(t) in seen]

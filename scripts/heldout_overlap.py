"""Lists the evaluation sets' messages that also stand in the training data.

    python scripts/heldout_overlap.py [--drop]

The evaluation sets: the NLU held-out sets and validation set (tests/nlu/*.yml) and the safety
layer's validation and test banks (tests/safety/*.yml). The training data: everything under
data/ (NLU examples, FAQ examples, the safety banks). Texts are compared lower-cased, letters
and digits only (clinic.safety.bank.normalised). With --drop, the overlapping messages are
removed from the evaluation sets (never from the training data), so that they stay unseen.
Exit status 1 when there is an overlap and --drop is not given.
"""

import sys
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clinic.nlu.reviewed_data import evaluation_files  # noqa: E402
from clinic.safety.bank import file_examples as messages, normalised  # noqa: E402

EVALUATION = evaluation_files(ROOT)


def training_texts() -> Dict[str, Path]:
    return {normalised(t): f for f in sorted((ROOT / "data").rglob("*.yml")) for t in messages(f)}


def overlaps() -> List[Tuple[Path, str, Path]]:
    seen = training_texts()
    return [(f, t, seen[normalised(t)]) for f in EVALUATION for t in messages(f) if normalised(t) in seen]


def drop(found: List[Tuple[Path, str, Path]]) -> None:
    by_file: Dict[Path, set] = {}
    for f, t, _ in found:
        by_file.setdefault(f, set()).add(normalised(t))
    for f, texts in by_file.items():
        lines = f.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [l for l in lines if not (l.strip().startswith("- ") and normalised(l.strip()[2:]) in texts)]
        f.write_text("".join(kept), encoding="utf-8")


def main() -> int:
    found = overlaps()
    for f, text, source in found:
        print(f"{f.relative_to(ROOT)}: {text[:100]}  (in {source.relative_to(ROOT)})")
    print(f"{len(found)} evaluation messages also in the training data", file=sys.stderr)
    if "--drop" in sys.argv and found:
        drop(found)
        return 0
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

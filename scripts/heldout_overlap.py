"""Lists held-out NLU examples that also stand in the training data.

    python scripts/heldout_overlap.py [--drop]

Compares lower-cased text without punctuation. With --drop, removes them from
tests/nlu/heldout.yml, so that the held-out set stays unseen.
"""

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "tests" / "nlu" / "heldout.yml"


def norm(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).strip()


def examples(path: Path):
    for block in yaml.safe_load(path.read_text()).get("nlu", []):
        for line in str(block.get("examples", "")).splitlines():
            if line.strip().startswith("- "):
                yield line.strip()[2:].strip(), block["intent"]


def main() -> int:
    seen = {norm(t) for f in (ROOT / "data").rglob("*.yml") for t, _ in examples(f)}
    overlap = [(t, i) for t, i in examples(HELDOUT) if norm(t) in seen]
    for text, intent in overlap:
        print(f"{intent}: {text}")
    print(f"{len(overlap)} held-out examples also in training data", file=sys.stderr)
    if "--drop" in sys.argv and overlap:
        drop = {norm(t) for t, _ in overlap}
        lines = HELDOUT.read_text().splitlines(keepends=True)
        kept = [l for l in lines if not (l.strip().startswith("- ") and norm(l.strip()[2:]) in drop)]
        HELDOUT.write_text("".join(kept))
    return 1 if overlap and "--drop" not in sys.argv else 0


if __name__ == "__main__":
    sys.exit(main())

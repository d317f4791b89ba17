#!/usr/bin/env python3
"""Print every FAQ answer and its "Tell me more", as a visitor reads them, with word counts.

    make answers                 # placeholders filled from settings/ (and RETENTION_DAYS)
    python scripts/answers.py --domain    # the other responses of domain/ too

Each answer shows its words and an approximate reading grade (Flesch-Kincaid; drug names
raise it). A variation that does not apply with the current settings (the pricing answer's
other case) is shown too, marked, with the example value it is read with. The limits the tests
hold the answers to are in docs/CONTENT.md: 25-60 words for an answer, at most 70 for anything.
"""

import argparse
import statistics
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clinic.rules.answers import (  # noqa: E402
    EXAMPLE_FACTS,
    FAQ_PREFIX,
    MORE_PREFIX,
    Response,
    chosen,
    domain_responses,
    faq_responses,
    reading_grade,
    rendered,
    word_count,
)
from clinic.settings import get_settings, public_facts  # noqa: E402

ANSWER_WORDS = (25, 60)
MOST_WORDS = 70


def show(response: Response, facts: Dict[str, Optional[str]], limits: Optional[tuple], counts: List[int]) -> None:
    applying = chosen(response, facts)
    for variation in response.variations:
        text = rendered(variation, facts)
        words = word_count(text)
        counts.append(words)
        low, high = limits or (0, MOST_WORDS)
        flag = "" if low <= words <= high else f"  <-- outside {low}-{high}"
        note = ""
        if len(response.variations) > 1 or variation.condition:
            condition = ", ".join(f"{slot} = {value if value is not None else 'not set'}" for slot, value in variation.condition)
            note = f"  [{condition or 'default'}]"
            if variation not in applying:
                used = [k for k in EXAMPLE_FACTS if "{" + k + "}" in variation.text and facts.get(k) is None]
                note += "  (not what settings give now" + (f"; read with {', '.join(f'{k} = {EXAMPLE_FACTS[k]}' for k in used)}" if used else "") + ")"
        print(f"{response.name}{note}: {words} words, grade {reading_grade(text):.1f}{flag}")
        print(textwrap.indent(textwrap.fill(text, 100), "    "))
        buttons = [title for title, _ in variation.buttons]
        if buttons:
            print(f"    buttons: {' | '.join(buttons)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domain", action="store_true", help="also print the other responses of domain/")
    args = parser.parse_args()
    facts = public_facts(get_settings())
    responses = faq_responses()
    answer_counts: List[int] = []
    more_counts: List[int] = []
    topics = sorted({r.topic for r in responses.values() if r.topic})
    for topic in topics:
        print(f"== {topic}")
        for name, limits, counts in ((FAQ_PREFIX + topic, ANSWER_WORDS, answer_counts), (MORE_PREFIX + topic, None, more_counts)):
            if name in responses:
                show(responses[name], facts, limits, counts)
            else:
                print(f"{name}: MISSING")
        print()
    if args.domain:
        print("== domain/")
        for response in domain_responses().values():
            show(response, facts, None, [])
        print()
    for label, counts in (("answers", answer_counts), ('"Tell me more"', more_counts)):
        if counts:
            print(f"{len(counts)} {label}: {min(counts)}-{max(counts)} words, median {statistics.median(counts):g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The assistant's answers as a reader sees them: read from the YAML, filled from the settings.

    faq_responses()              # data/faq/*.yml: utter_faq/<topic> and utter_faq_more_<topic>
    domain_responses()           # domain/*.yml: every other response
    rendered(variation, facts)   # the text with {placeholders} filled as Rasa fills them
    applies(variation, facts)    # whether Rasa would pick this variation with these slot values
    word_count(text), reading_grade(text)

Used by ``make answers`` (scripts/answers.py), which prints every answer for the content owner
(docs/CONTENT.md), and by the tests that hold every answer to the review checklist (length, no
leading "Yes" or "No", every topic's "Tell me more").
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import yaml

ROOT = Path(__file__).resolve().parents[2]
FAQ_DIR = ROOT / "data" / "faq"
DOMAIN_DIR = ROOT / "domain"
FAQ_PREFIX = "utter_faq/"
MORE_PREFIX = "utter_faq_more_"
MORE_BUTTON = "Tell me more"
# What an optional fact reads as where a variation needs it and the settings leave it out
# (the pricing answer's figure): so that every variation can be read and counted.
EXAMPLE_FACTS = {"clinic_price": "$399 a month"}

# {slot} as Rasa's templating reads it; "{{" and "}}" are a literal brace (a button's JSON payload).
_PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")


@dataclass(frozen=True)
class Variation:
    text: str
    condition: Tuple[Tuple[str, Any], ...]  # (slot, value) pairs that must all hold; () = none
    buttons: Tuple[Tuple[str, str], ...]  # (title, payload as written, braces doubled)


@dataclass(frozen=True)
class Response:
    name: str
    source: Path
    variations: Tuple[Variation, ...]

    @property
    def topic(self) -> Optional[str]:
        """The FAQ topic of utter_faq/<topic> and utter_faq_more_<topic>; None for others."""
        if self.name.startswith(FAQ_PREFIX):
            return self.name[len(FAQ_PREFIX):]
        if self.name.startswith(MORE_PREFIX) and self.source.parent == FAQ_DIR:
            return self.name[len(MORE_PREFIX):]
        return None


def _read(path: Path) -> Dict[str, Response]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    found = {}
    for name, variations in (doc.get("responses") or {}).items():
        found[name] = Response(name, path, tuple(
            Variation(
                text=str(v.get("text", "")),
                condition=tuple((c["name"], c.get("value")) for c in v.get("condition") or ()),
                buttons=tuple((str(b.get("title", "")), str(b.get("payload", ""))) for b in v.get("buttons") or ()),
            )
            for v in variations
        ))
    return found


def faq_responses(faq_dir: Path = FAQ_DIR) -> Dict[str, Response]:
    """Every response of the FAQ files, by name, in the files' order (sorted by topic)."""
    found: Dict[str, Response] = {}
    for path in sorted(faq_dir.glob("*.yml")):
        found.update(_read(path))
    return found


def domain_responses(domain_dir: Path = DOMAIN_DIR) -> Dict[str, Response]:
    found: Dict[str, Response] = {}
    for path in sorted(domain_dir.glob("*.yml")):
        found.update(_read(path))
    return found


def placeholders(text: str) -> Tuple[str, ...]:
    return tuple(_PLACEHOLDER.findall(text))


def fill(text: str, facts: Mapping[str, Optional[str]]) -> str:
    """``text`` with each {slot} replaced by its value, and "{{" / "}}" read as one brace.
    Raises KeyError naming a placeholder that has no value."""
    missing = [name for name in placeholders(text) if facts.get(name) is None]
    if missing:
        raise KeyError(f"no value for {', '.join(sorted(set(missing)))}")
    filled = _PLACEHOLDER.sub(lambda m: str(facts[m.group(1)]), text)
    return filled.replace("{{", "{").replace("}}", "}")


def applies(variation: Variation, facts: Mapping[str, Any]) -> bool:
    """Whether the variation's condition holds for these slot values (as Rasa's
    ResponseVariationFilter compares them: text without regard to case)."""
    for slot, value in variation.condition:
        actual = facts.get(slot)
        if isinstance(actual, str) and isinstance(value, str):
            if actual.casefold() != value.casefold():
                return False
        elif actual != value:
            return False
    return True


def chosen(response: Response, facts: Mapping[str, Any]) -> Tuple[Variation, ...]:
    """The variations Rasa picks from with these slot values: the conditional ones that hold,
    else those without a condition."""
    conditional = tuple(v for v in response.variations if v.condition and applies(v, facts))
    return conditional or tuple(v for v in response.variations if not v.condition)


def rendered(variation: Variation, facts: Mapping[str, Optional[str]]) -> str:
    """The variation's text filled from ``facts``; an optional fact the settings leave out
    reads as its example (EXAMPLE_FACTS) where a variation that needs it is read anyway."""
    values = {**EXAMPLE_FACTS, **{k: v for k, v in facts.items() if v is not None}}
    return fill(variation.text, values)


def plain(text: str) -> str:
    """The text as a reader sees it: **bold** marks and [label](link) reduced to their words."""
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)
    return text.replace("**", "")


def word_count(text: str) -> int:
    """Words as a reader counts them: runs of characters between spaces ("(555) 010-4477" is two)."""
    return len(plain(text).split())


def opening_word(text: str) -> str:
    """The first word, without punctuation or bold marks: "Yes" for "**Yes**, ..."."""
    match = re.match(r"[\W_]*([A-Za-z']+)", plain(text))
    return match.group(1) if match else ""


def _syllables(word: str) -> int:
    """Vowel groups, less a silent final e: the usual estimate (about right for plain words)."""
    word = word.lower()
    groups = re.findall(r"[aeiouy]+", word)
    count = len(groups)
    if word.endswith("e") and not word.endswith(("le", "ee", "ye")) and count > 1:
        count -= 1
    return max(count, 1)


def reading_grade(text: str) -> float:
    """An approximate Flesch-Kincaid grade (0.39 words per sentence + 11.8 syllables per word
    - 15.59). Drug names count like any word, so an answer naming several reads harder."""
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", plain(text))
    if not words:
        return 0.0
    sentences = max(1, len(re.findall(r"[.!?]+(?:\s|$)", plain(text).strip() + " ")))
    syllables = sum(_syllables(part) for w in words for part in w.split("-") if part)
    return 0.39 * len(words) / sentences + 11.8 * syllables / len(words) - 15.59

"""Whether a spaCy ``Matcher`` may find anything in a doc, told from the words its patterns require.

The crisis net (``clinic.safety.crisis_patterns``) runs on every message, and most messages
contain none of the words its patterns need: this check tells those apart in about a fifth of
the matcher's time, and only ever skips a search that would find nothing.
"""

from typing import Any, Dict, FrozenSet, List, Optional, Tuple

_REGEX_META = frozenset(".^$*+?{}[]\\|()")
Requirement = FrozenSet[str]  # the words one required token may be


def _words(spec: Dict[str, Any]) -> Optional[Requirement]:
    """The words a required token of a matcher pattern may be, if the spec says so plainly:
    ``{"LOWER": {"REGEX": "^(?:a|b)$"}}`` (or ``^(?:(a|b))$``), nothing else in it."""
    if set(spec) != {"LOWER"} or not isinstance(spec["LOWER"], dict) or set(spec["LOWER"]) != {"REGEX"}:
        return None
    regex = spec["LOWER"]["REGEX"]
    if not (isinstance(regex, str) and regex.startswith("^(?:") and regex.endswith(")$")):
        return None
    body = regex[4:-2]
    if body.startswith("(") and body.endswith(")") and body.count("(") == 1 and body.count(")") == 1:
        body = body[1:-1]
    words = body.split("|")
    if any(not w or _REGEX_META.intersection(w) for w in words):
        return None
    return frozenset(words)


class MatcherPrecheck:
    """Whether a spaCy ``Matcher`` may find anything in a doc, from the words its patterns require.

    Most messages contain none of the words a pattern needs, and the matcher costs about 0.25 ms
    a message to find that out (each of its regular expressions tried on each token). A pattern
    can match only when every token it requires (not optional) is in the message, and those
    tokens are written as lists of words (``^(?:kill|kil|...)$`` on the lower-cased token), so a
    message lacking one of them for every pattern has no match: the check tells those messages
    apart in about a fifth of the time. Anything it cannot read as a list of words counts as
    present, so it only ever skips a search that finds nothing (tests/test_matcher_precheck.py;
    tests/test_crisis_patterns.py and tests/test_nlu_equivalence.py compare it with the crisis
    net's matcher on all the project's texts).
    """

    def __init__(self, matcher: Any, rules: Any) -> None:
        patterns: List[Tuple[Requirement, ...]] = []
        for rule in rules:
            for pattern in matcher.get(rule)[1]:
                required = [_words(spec) for spec in pattern if "OP" not in spec]
                # a required token the check cannot read may be any word: no requirement
                known = [words for words in required if words is not None]
                # the rarer words first (longer: "kill" before "my"), to rule a pattern out early
                patterns.append(tuple(sorted(known, key=lambda ws: (min(map(len, ws)), -len(ws)), reverse=True)))
        self.patterns = patterns

    def may_match(self, doc: Any) -> bool:
        words = {token.lower_ for token in doc}
        if any(word.endswith("\n") for word in words):  # `$` also matches before a final newline
            return True
        return any(all(not required.isdisjoint(words) for required in pattern) for pattern in self.patterns)

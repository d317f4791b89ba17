"""The matcher precheck skips a message only when no pattern can match it, and it does skip
ordinary messages (it is there to save the crisis net's time on them)."""

import pytest
from spacy.matcher import Matcher

from clinic.safety.matcher_precheck import MatcherPrecheck, _words


def _spec(regex, **extra):
    return {"LOWER": {"REGEX": regex}, **extra}


@pytest.mark.parametrize(
    "spec, words",
    [
        (_spec("^(?:kill|kil)$"), {"kill", "kil"}),
        (_spec("^(?:(end|ending))$"), {"end", "ending"}),       # the group the patterns' `(a|b)` make
        (_spec("^(?:it)$"), {"it"}),
        (_spec("^(?:don't|n't)$"), {"don't", "n't"}),            # an apostrophe is a plain letter
    ],
)
def test_a_plain_list_of_words_is_read(spec, words):
    assert _words(spec) == frozenset(words)


@pytest.mark.parametrize(
    "spec",
    [
        _spec("^kil+$"),                               # not the patterns' ^(?:...)$ frame
        _spec("^(?:kil+)$"),                           # a quantifier
        _spec("^(?:k.ll)$"),                           # a wildcard
        _spec("^(?:\\?)$"),                            # an escaped mark
        _spec("^(?:(a|b) (c|d))$"),                    # two groups
        _spec("^(?:(a|b)c)$"),                         # a group and more
        _spec("^(?:a||b)$"),                           # an empty alternative matches an empty token
        _spec("^(?:a|b)"),                             # no end anchor
        _spec("(?:a|b)$"),                             # no start anchor
        {"LOWER": "kill"},                             # a plain string, not a regex
        {"LOWER": {"REGEX": "^(?:a)$", "NOT_IN": ["b"]}},
        {"LOWER": {"IN": ["a", "b"]}},
        {"ORTH": {"REGEX": "^(?:a|b)$"}},              # another attribute
        {"LOWER": {"REGEX": "^(?:a|b)$"}, "LENGTH": 1},
        {"LOWER": {"REGEX": 5}},
    ],
)
def test_anything_else_is_not_read(spec):
    assert _words(spec) is None


@pytest.fixture
def vocab(nlp):
    return nlp.vocab


def _precheck(vocab, **rules):
    matcher = Matcher(vocab)
    for name, patterns in rules.items():
        matcher.add(name, patterns)
    return matcher, MatcherPrecheck(matcher, list(rules))


def test_a_pattern_needs_each_of_its_required_tokens_and_none_of_its_optional_ones(nlp, vocab):
    _, precheck = _precheck(vocab, plain=[[_spec("^(?:(end|ending))$"), _spec("^(?:it)$", OP="?"),
                                            _spec("^(?:all|everything)$")]])
    assert [set(pattern) for pattern in precheck.patterns] == [{frozenset({"all", "everything"}),
                                                                 frozenset({"end", "ending"})}]
    assert precheck.may_match(nlp.make_doc("i want to end everything"))
    assert precheck.may_match(nlp.make_doc("ending it all"))
    assert not precheck.may_match(nlp.make_doc("i want to end this call"))      # "all" missing
    assert not precheck.may_match(nlp.make_doc("everything is fine"))           # "end" missing
    assert not precheck.may_match(nlp.make_doc("hello there"))


def test_the_rarer_longer_words_are_tried_first(vocab):
    _, precheck = _precheck(vocab, plain=[[_spec("^(?:i|me)$"), _spec("^(?:myself|meself|mys3lf)$"),
                                            _spec("^(?:kill|murder)$")]])
    # by the shortest word, longest first; at a tie, the list with fewer words first
    assert precheck.patterns[0] == (frozenset({"myself", "meself", "mys3lf"}), frozenset({"kill", "murder"}),
                                    frozenset({"i", "me"}))
    _, tie = _precheck(vocab, plain=[[_spec("^(?:ab|cd|ef)$"), _spec("^(?:gh)$")]])
    assert tie.patterns[0] == (frozenset({"gh"}), frozenset({"ab", "cd", "ef"}))


def test_a_token_it_cannot_read_may_be_any_word(nlp, vocab):
    matcher, _ = _precheck(vocab, plain=[[_spec("^(?:end)$"), _spec("^(?:all)$")]])
    matcher.add("regex", [[_spec("^kil+$"), {"LOWER": "myself"}]])
    both = MatcherPrecheck(matcher, ["plain", "regex"])
    assert both.patterns == [(frozenset({"end"}), frozenset({"all"})), ()]  # a tie keeps the order
    assert both.may_match(nlp.make_doc("hello there"))          # nothing it can read: may always match
    only_plain = MatcherPrecheck(matcher, ["plain"])
    assert not only_plain.may_match(nlp.make_doc("hello there"))


def test_a_pattern_with_one_readable_token_needs_only_that_one(nlp, vocab):
    _, precheck = _precheck(vocab, mixed=[[_spec("^(?:overdose|od)$"), _spec("^ed$")]])
    assert precheck.patterns == [(frozenset({"overdose", "od"}),)]
    assert precheck.may_match(nlp.make_doc("i think i od"))
    assert not precheck.may_match(nlp.make_doc("how much is it"))


def test_a_word_before_a_final_newline_leaves_the_decision_to_the_matcher(nlp, vocab):
    # `$` also matches before a final newline, so "end\n" may match ^(?:end)$
    matcher, precheck = _precheck(vocab, plain=[[_spec("^(?:end)$"), _spec("^(?:all)$")]])
    assert precheck.may_match(nlp.make_doc("the end\nof the call"))
    assert not precheck.may_match(nlp.make_doc("the end of the call"))


def test_it_agrees_with_the_matcher_on_every_doc(nlp, vocab):
    matcher, precheck = _precheck(vocab, a=[[_spec("^(?:kill|kil)$"), _spec("^(?:myself)$")]],
                                  b=[[_spec("^(?:end)$"), _spec("^(?:it)$", OP="?"), _spec("^(?:all)$")]])
    for text in ["kill myself", "kil myself", "end it all", "end all", "i kill time", "myself", "it all ends",
                 "hello", "", "KILL MYSELF"]:
        doc = nlp.make_doc(text)
        assert precheck.may_match(doc) == bool(matcher(doc)), text
    # the words without their order: the matcher decides
    assert precheck.may_match(nlp.make_doc("all end")) and not matcher(nlp.make_doc("all end"))

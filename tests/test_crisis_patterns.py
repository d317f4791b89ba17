"""The crisis safety net recognises crisis language, indirect phrasings and typos
included, and leaves negations, resolved past and general questions alone."""

from pathlib import Path

import pytest
import yaml

from spacy.matcher import Matcher

from clinic.safety.crisis_patterns import (
    AGE_WORDS, CLAUSE_BREAKS, CONDITIONS, COUNTED_LIVES, FIRST_PERSON, IDIOM_SUBJECTS, MEANS_WORDS, NEGATIONS,
    NOT_NEGATING_NEXT, PATTERNS, PEOPLE, QUESTION_PAIRS, QUESTION_STARTS, SKIPPING, SUBJECTS, CrisisDetector,
    _token_specs, plain_apostrophes,
)
from clinic.safety.matcher_precheck import _words

PHRASES = yaml.safe_load((Path(__file__).parent / "nlu" / "crisis_phrases.yml").read_text())


@pytest.fixture(scope="module")
def detector(nlp):
    return CrisisDetector(nlp.vocab)


@pytest.mark.parametrize("text", PHRASES["positives"])
def test_crisis_language_is_caught(detector, nlp, text):
    assert detector.find(nlp(text)) is not None, text


@pytest.mark.parametrize("text", PHRASES["negatives"])
def test_non_crisis_language_is_left_alone(detector, nlp, text):
    assert detector.find(nlp(text)) is None, text


@pytest.mark.parametrize(
    "text, rule",
    [
        ("i dont want to live anymore", "want_to_die"),       # the negation is the crisis
        ("i don't want to continue living like this", "want_to_die"),
        ("not gonna lie, i want to die", "want_to_die"),      # an idiom does not negate
        ("i'm not okay, i want to die", "want_to_die"),       # a clause break ends the negation
        ("gonna kill myself tonight", "kill_self"),
        ("i swallowed a whole bottle of sleeping pills", "overdose"),
        ("my boyfriend is hitting me right now", "danger_now"),
        ("can ketamine help my suicidal thoughts?", "suicide_mention"),  # about the visitor
    ],
)
def test_rule_that_fires(detector, nlp, text, rule):
    match = detector.find(nlp(text))
    assert match is not None and match.rule == rule


@pytest.mark.parametrize(
    "text",
    [
        "i would never kill myself",
        "i'm not suicidal, just curious about the troches",
        "does ketamine help with suicidal thoughts?",
        "this paperwork is killing me",
        "can i take tylenol with my troche",
        "i don't want to be handed a prescription and forgotten",
        "i dont wanna continue the screening",
    ],
)
def test_negations_idioms_and_general_questions(detector, nlp, text):
    assert detector.find(nlp(text)) is None


# --- the floor under the classifier: slang, the clinic's products, Spanish; no lookalikes ------

@pytest.mark.parametrize(
    "text, rule",
    [
        ("no one knows i want to die", "want_to_die"),            # a negation of another clause
        ("i'm not going to lie i want to die", "want_to_die"),
        ("no matter what i do i want to die", "want_to_die"),
        ("i'm not okay i want to end it", "kill_self"),
        ("kms", "kill_self"),
        ("k1ll mys3lf", "kill_self"),
        ("thinking about sewer slide", "kill_self"),
        ("im gonna unalive myself", "kill_self"),
        ("me quiero morir", "want_to_die"),
        ("quiero morir", "kill_self"),
        ("ya no quiero vivir", "want_to_die"),
        ("ya no tengo ganas de vivir, ¿cuánto cuesta la consulta?", "want_to_die"),
        ("I have nothing to live for since the divorce. how much is the first session?", "want_to_die"),
        ("honestly i don't have anything left to live for", "want_to_die"),
        ("lethel dose ketamine mg/kg", "lethal_amount"),
        ("why keep breathing when every day is the same grey nothing", "want_to_die"),
        ("tengo ganas de no despertar", "want_to_die"),
        ("quiero quitarme la vida", "kill_self"),
        ("eu quero morrer", "want_to_die"),
        ("não quero mais viver", "want_to_die"),
        ("vou me matar hoje", "kill_self"),
        ("je veux mourir", "want_to_die"),
        ("j'ai envie de mourir", "want_to_die"),
        ("je vais me suicider", "kill_self"),
        ("ich will nicht mehr leben", "want_to_die"),
        ("ich möchte sterben", "want_to_die"),
        ("ich will mich umbringen", "kill_self"),
        ("voglio morire", "want_to_die"),
        ("non voglio più vivere", "want_to_die"),
        ("penso di uccidermi", "kill_self"),
        ("me hago daño cuando estoy sola", "self_harm"),
        ("i took all my troches at once", "overdose"),
        ("im going to take all my lozenges tonight", "overdose"),
        ("i've been saving up my doses", "overdose"),
        ("i think i od'd", "overdose"),
        ("what's the lethal dose of ketamine", "lethal_amount"),
        ("how many troches would it take to kill me", "lethal_amount"),
        ("how many troches would it take to make my heart stop", "overdose"),
        ("enough to never wake up", "lethal_amount"),
        ("my husband choked me last night", "danger_now"),
        ("i'm scared for my life", "danger_now"),
        ("i'm tired of being alive", "want_to_die"),
        ("does insurance cover this? also fyi im actively suicidal so sooner is better", "suicidal_now"),
        ("I am feeling kinda suicidal again", "suicidal_now"),
        ("honestly i feel suicidal most nights", "suicidal_now"),
        ("does insurance cover this? also fyi i\u2019m actively suicidal", "suicidal_now"),  # a phone's apostrophe
        ("i\u2019d be better off if i\u2019m gone", "want_to_die"),
        ("in college i was doing fine. now i'm actively suicidal", "suicidal_now"),  # a resolved past elsewhere
        ("nobody knows im suicidal", "suicidal_now"),
        ("no one knows i'm suicidal", "suicidal_now"),  # the negation is another clause's
        ("never told anyone but i feel suicidal", "suicidal_now"),
        # a review of the treatment routine, the denial after a match and the narrowed lines
        ("i started cutting myself at 14 and haven't stopped since", "self_harm"),
        ("i took all my pills at 10 tonight and haven't eaten since", "overdose"),
        ("i've been stockpiling my meds from every refill", "overdose"),
        ("i'm saving up my troches, by next month i'll have enough", "overdose"),
        ("i took all my pills even though i'm not supposed to", "overdose"),
        ("i just swallowed all the pills i got from the pharmacy", "overdose"),
        ("i took all my pills to sleep forever, sorry i ran out of time", "overdose"),
        ("i'm going to take all my pills on my trip so nobody finds me in time", "overdose"),
        ("mi esposo me va a matar, tengo miedo por mi vida", "danger_now"),
        ("meu marido vai me matar", "danger_now"),
        ("how many xanax does it take to end it", "overdose"),
        ("how many tylenol would be fatal", "overdose"),
        ("consider this my last message", "want_to_die"),
        ("writing my last note to my kids", "want_to_die"),
        ("killing myself isn't off the table anymore", "kill_self"),
        ("cutting myself isn't helping anymore", "self_harm"),
        ("ya no aguanto, me voy a morir", "kill_self"),
    ],
)
def test_statements_the_floor_catches(detector, nlp, text, rule):
    match = detector.find(nlp(text.lower()))
    assert match is not None and (match.rule, match.kind) == (rule, "statement"), text


@pytest.mark.parametrize(
    "text",
    [
        "that's odd, the page won't load",
        "i want to dye my hair before my first session",
        "is it possible to od on the nasal spray",
        "should i take the whole troche or half",
        "i'm tired of being a guinea pig for drug companies",
        "I do not wish to continue with these questions.",
        "I'm in danger of over-scheduling myself",
        "i don't want to die, i just want to feel better",
        "i'm not going to hurt myself",
        "estoy triste pero no quiero hacerme daño",
        "my daughter wrote an ode to our dog",
        "je vais mourir de rire",
        "eu não quero morrer, quero melhorar",
        "je n'ai pas envie de mourir",
        "no, nunca he intentado quitarme la vida",
        "non ho mai voluto uccidermi",
        "ich sterbe vor lachen",
        "o quero saber quanto custa",
        "voglio sapere il prezzo",
        "i'm not suicidal, i just can't sleep",
        "I am not actively suicidal",
        "what happens if i'm suicidal during treatment?",
        "will you call the police when i'm feeling suicidal?",
        "i was suicidal in college, i'm doing much better now",
        "my son is suicidal and i am so scared for him",
        "i don\u2019t want to die, i just want to feel better",  # a phone's apostrophe negates too
        "i\u2019m not suicidal, just tired",
        "i don't think i'm suicidal, just exhausted",
        "my therapist thinks i'm suicidal but i'm not",
        "whenever i'm suicidal i call my therapist",
        "every time i feel suicidal i call the line",
        "in case i'm suicidal after the session who do i call",
        "why keep going to a therapist who doesn't help, is ketamine different?",
        "why go on the waitlist if the evaluation is free",
        "no tengo ganas de seguir con las pastillas, ¿qué otra opción hay?",  # "carry on with the pills"
    ],
)
def test_lookalikes_and_negations_are_no_statement(detector, nlp, text):
    match = detector.find(nlp(text.lower()))
    assert match is None or match.kind == "mention", text


@pytest.mark.parametrize(
    "text",
    [
        "why does the form ask about thoughts of ending my life?",
        "i'm a therapist with a client with suicidal ideation",
        "my brother died by suicide last year",
        "what are the signs of an overdose",
        "a history of self-harm, does that rule me out",
    ],
)
def test_mentions_are_mentions_for_the_classifier_to_weigh(detector, nlp, text):
    doc = nlp(text.lower())
    match = detector.find(doc)
    assert detector.mentions(doc)
    assert match is None or match.kind == "mention", text


def test_a_statement_after_a_negated_one_is_found(detector, nlp):
    match = detector.find(nlp("i don't want to hurt myself, i want to die"))
    assert match is not None and match.rule == "want_to_die"


def test_a_statement_comes_before_an_earlier_mention(detector, nlp):
    match = detector.find(nlp("i read about suicide and i want to kill myself"))
    assert (match.rule, match.kind) == ("kill_self", "statement")


def test_a_clause_break_ends_a_negation(detector, nlp):
    assert detector.find(nlp("i can't sleep and i want to die")).rule == "want_to_die"
    assert detector.find(nlp("i don't know if i can go on")) is not None  # "know" does not negate


def test_past_and_resolved_clears_a_mention_not_a_statement(detector, nlp):
    assert detector.find(nlp("i used to self harm as a teen but i'm doing well now")) is None
    assert detector.find(nlp("i used to be happy, now i feel suicidal")) is not None
    match = detector.find(nlp("years ago i was fine and now i want to kill myself"))
    assert match is not None and match.kind == "statement"


def test_a_general_question_clears_a_mention_but_a_question_about_me_does_not(detector, nlp):
    assert detector.find(nlp("does ketamine help with suicidal thoughts?")) is None
    assert detector.find(nlp("can ketamine help me with suicidal thoughts?")) is not None


def test_the_precheck_agrees_with_the_matcher(detector, nlp):
    texts = PHRASES["positives"] + PHRASES["negatives"] + ["hello", "what does it cost", "kms", "the end\nof it"]
    for text in texts:
        doc = nlp(text.lower())
        if not detector.precheck.may_match(doc):
            assert detector.matcher(doc) == [], text


CASES = yaml.safe_load((Path(__file__).parent / "nlu" / "crisis_pattern_cases.yml").read_text())["cases"]


def test_every_alternative_of_every_pattern_is_caught_by_its_rule(detector, nlp):
    """A phrase for each word of each pattern's lists (tests/nlu/crisis_pattern_cases.yml)."""
    missed = [(c["text"], c["rule"]) for c in CASES if (m := detector.find(nlp(c["text"]))) is None or m.rule != c["rule"]]
    assert not missed, f"{len(missed)} of {len(CASES)}: {missed[:5]}"
    assert len(CASES) > 900


def test_every_word_of_every_line_is_reached_by_a_case_that_line_alone_catches(nlp):
    """Each line of each rule, on its own, catches a case with each word of each of its lists in
    its place: a line that no longer matches anything (a typo in its regex), a word the tokenizer
    never yields ("gonna" is "gon na") or a word lost from a shared list (KILL, SELF, SUPPLY...) fails
    here even when another line of the rule still catches the case."""
    docs = [nlp(case["text"]) for case in CASES]
    unreached = []
    for rule, (_kind, lines) in PATTERNS.items():
        for line in lines:
            specs = _token_specs(line)
            matcher = Matcher(nlp.vocab)
            matcher.add(rule, [specs])
            seen: dict = {}
            for doc in docs:
                for _id, start, end, where in matcher(doc, with_alignments=True):
                    for token, index in zip(doc[start:end], where):
                        seen.setdefault(index, set()).add(token.lower_)
            if not seen:
                unreached.append((rule, line, "no case"))
                continue
            for index, spec in enumerate(specs):
                words = _words(spec) if "LOWER" in spec else None
                if words and words - seen.get(index, set()):
                    unreached.append((rule, line, sorted(words - seen.get(index, set()))))
    assert not unreached, f"{len(unreached)} lines: {unreached[:5]}"


@pytest.mark.parametrize(
    "text",
    [
        "years ago i overdosed on purpose, thats behind me and i have a good therapist now",
        "used to wish i wasn't here when i was 19. haven't felt that way in a decade.",
        "quit self harming 8 years ago, still proud of that",
        "in college i took a bunch of pills, i've been stable since",
        "in middle school i wished i was dead most days, that's all gone now that i'm grown",
        "my phone's about to die, can you email me",
        "i'm about to die laughing at this",
        "does the question about being better off dead count against me",
        # dosing and adherence
        "how many troches do i take per session",
        "how many doses would i need for a month",
        "how many sprays will it take to feel better",
        "i've been skipping my meds lately",
        "keeping my pills in the car is fine?",
        # idioms the classifier reads, and an earlier message
        "mi jefe me va a matar si falto otra vez",
        "me voy a morir de risa con este video",
        "voy a morir de hambre antes de la cita",
        "in my last message i asked about refills",
        "see my last note about the shipment",
        # counts asked about what a dose does, not what would kill
        "how many sprays would raise my heart rate",
        "how many troches would i need to survive a two week trip",
        "how many doses would it take to wake up feeling better",
        "that's the last message i sent you about my appointment",
    ],
)
def test_a_resolved_past_quoted_question_or_idiom_is_no_statement(detector, nlp, text):
    match = detector.find(nlp(text))
    assert match is None or match.kind == "mention", (text, match)


def test_gone_is_a_resolved_past_only_when_the_past_is_what_is_gone(detector, nlp):
    assert detector.find(nlp("used to be happy, my hope is all gone, i want to die")) is not None
    assert detector.find(nlp("i used to wish i were dead, that is long gone")) is None


@pytest.mark.parametrize(
    "text, rule",
    [
        ("years ago i was fine, it's behind me, but now i want to kill myself", "kill_self"),
        ("i used to be okay, that's behind me, but what's the lethal dose of ketamine", "lethal_amount"),
        ("i was in danger years ago and it's behind me, but my ex is threatening to kill me", "danger_now"),
        ("years ago i cut myself and now i'm cutting myself again", "self_harm"),
    ],
)
def test_a_past_does_not_clear_these(detector, nlp, text, rule):
    match = detector.find(nlp(text))
    assert match is not None and match.rule == rule, (text, match)


def test_a_condition_makes_the_visitor_s_suicidal_state_a_mention(detector, nlp):
    """"if i'm suicidal" asks about the service: the classifier weighs it (and the footer is
    given); the same words without the condition are the visitor's state now."""
    for word in ("if", "whether", "when", "whenever", "once", "unless", "in case", "every time", "think", "says"):
        match = detector.find(nlp(f"what do you do {word} i'm suicidal"))
        assert match is not None and match.kind == "mention", word
    match = detector.find(nlp("what do you do, i'm suicidal"))
    assert match is not None and (match.rule, match.kind) == ("suicidal_now", "statement")
    match = detector.find(nlp("if the troches don't work i'll kill myself"))  # only that rule is conditional
    assert match is not None and (match.rule, match.kind) == ("kill_self", "statement")


def test_a_curly_apostrophe_is_read_as_a_straight_one(detector, nlp):
    doc = nlp("i\u2019m done, i don\u2018t care \u02bcanymore")
    plain = plain_apostrophes(doc, detector.tokenizer)
    assert plain.text == "i'm done, i don't care 'anymore"
    assert [t.text for t in plain][:5] == ["i", "'m", "done", ",", "i"] and [t.text for t in plain][5:7] == ["do", "n't"]
    straight = nlp("i'm fine")
    assert plain_apostrophes(straight, detector.tokenizer) is straight
    assert detector.mentions(nlp("thoughts of suicide, i\u2019m asking for a friend"))


@pytest.mark.parametrize("mark", ["\u2019", "\u2018", "\u02bc", "`"])
def test_every_apostrophe_a_keyboard_types_reads_as_the_straight_one(detector, nlp, mark):
    # the tokenizer splits "don’t" but not "don‘t", "donʼt" or "don`t": read as "don't", all of them
    crisis = nlp(f"i don{mark}t want to live anymore")
    assert detector.find(crisis) is not None and detector.find(crisis).rule == "want_to_die"
    assert detector.find(nlp(f"i wouldn{mark}t kill myself")) is None
    assert detector.find(nlp(f"i{mark}m not okay i want to die")) is not None


@pytest.mark.parametrize("text", ["honestly not even kidding want to die", "not even joking wanna die tonight",
                                  "not sure why just want to die"])
def test_a_negation_the_next_word_undoes_is_no_negation(detector, nlp, text):
    """"not even kidding", "not sure": the word right after the negation says it negates nothing."""
    match = detector.find(nlp(text))
    assert match is not None and (match.rule, match.kind) == ("want_to_die", "statement"), text


# --- each word of the negation and clause rules, shown by a pair of sentences -------------------
# The first of each pair has the word and the second has not; the word decides between them.

NEGATION_PAIRS = {
    "not": ("i would not kill myself", "i would kill myself"),
    "n't": ("i wouldn't kill myself", "i would kill myself"),
    "nt": ("i wouldnt kill myself", "i would kill myself"),
    "never": ("i would never kill myself", "i would kill myself"),
    "no": ("no plans to kill myself", "plans to kill myself"),
    "nor": ("i am neither drinking nor cutting myself", "i am neither drinking cutting myself"),
    "without": ("a whole month without hurting myself", "a whole month hurting myself"),
    "none": ("none of us want to die", "of us want to die"),
    "nunca": ("nunca me voy a matar", "me voy a matar"),
    "jamás": ("jamás me voy a matar", "me voy a matar"),
    "jamas": ("jamas me voy a matar", "me voy a matar"),
    "não": ("eu não vou me matar", "eu vou me matar"),
    "nao": ("eu nao vou me matar", "eu vou me matar"),
    "pas": ("je n'ai pas envie de mourir", "je n'ai envie de mourir"),
    "jamais": ("je n'ai jamais envie de mourir", "je n'ai envie de mourir"),
    "mai": ("io mai voglio morire", "io voglio morire"),
    "nie": ("ich nie will sterben", "ich will sterben"),      # the word order the rule reads
    "niemals": ("ich niemals will sterben", "ich will sterben"),
}


@pytest.mark.parametrize("word", sorted(NEGATION_PAIRS))
def test_each_negation_word_negates_what_follows_it_in_its_clause(detector, nlp, word):
    negated, plain = NEGATION_PAIRS[word]
    assert word in [t.lower_ for t in nlp(negated)]
    assert detector.find(nlp(negated)) is None, negated
    assert detector.find(nlp(plain)) is not None, plain


def test_every_negation_word_has_its_pair():
    assert set(NEGATION_PAIRS) == NEGATIONS


@pytest.mark.parametrize("word", sorted(NOT_NEGATING_NEXT))
def test_a_negation_followed_by_these_words_does_not_negate(detector, nlp, word):
    # "not sure ...", "not gonna lie ...", "not even kidding ...": the risk after them stands
    assert detector.find(nlp(f"honestly not {word} want to die")) is not None
    assert detector.find(nlp("honestly not want to die")) is None


@pytest.mark.parametrize("word", sorted(CLAUSE_BREAKS))
def test_a_clause_break_ends_the_negation_before_it(detector, nlp, word):
    text = f"not happy {word} want to die"
    assert word in [t.lower_ for t in nlp(text)]
    assert detector.find(nlp(text)) is not None, text
    assert detector.find(nlp("not happy want to die")) is None


def test_a_negation_reaches_five_words_back_and_no_further(detector, nlp):
    assert detector.find(nlp("never thought about how to kill myself")) is None       # five words back
    assert detector.find(nlp("no idea what else to do kill myself")) is not None     # six words back


def test_one_non_negating_negation_does_not_hide_a_later_one(detector, nlp):
    assert detector.find(nlp("not sure i would never kill myself")) is None
    assert detector.find(nlp("no i would never kill myself")) is None
    assert detector.find(nlp("no i would kill myself")) is not None       # "i" starts another clause


@pytest.mark.parametrize("subject", sorted(SUBJECTS))
def test_a_subject_between_a_negation_and_the_risk_starts_another_clause(detector, nlp, subject):
    text = f"no one knows {subject} want to die"
    assert subject in [t.lower_ for t in nlp(text)] or subject.replace("'", "") == "".join(
        t.lower_ for t in nlp(text)[3:5]).replace("'", "")
    assert detector.find(nlp(text)) is not None, text
    assert detector.find(nlp("no one knows want to die")) is None


# --- a general question clears a mention; a question about the visitor does not ------------------

@pytest.mark.parametrize("word", sorted(QUESTION_STARTS))
def test_a_question_word_first_makes_a_general_question(detector, nlp, word):
    assert detector.find(nlp(f"{word} ketamine treat suicidal thoughts")) is None
    assert detector.find(nlp("ketamine treat suicidal thoughts")) is not None


@pytest.mark.parametrize("pair", sorted(QUESTION_PAIRS))
def test_a_question_pair_anywhere_makes_a_general_question(detector, nlp, pair):
    first, second = pair
    assert detector.find(nlp(f"so {first} {second} ketamine treat suicidal thoughts")) is None
    assert detector.find(nlp(f"so {first} ketamine treat suicidal thoughts")) is not None


def test_a_question_mark_alone_makes_a_general_question(detector, nlp):
    assert detector.find(nlp("ketamine for suicidal thoughts?")) is None
    assert detector.find(nlp("ketamine for suicidal thoughts")) is not None
    assert detector.find(nlp("?!")) is None


FIRST_PERSON_QUESTIONS = {
    "i": "can ketamine help if i have suicidal thoughts",
    "me": "can ketamine help me with suicidal thoughts",
    "my": "can ketamine help my suicidal thoughts",
    "myself": "can ketamine help myself with suicidal thoughts",
    "mine": "can ketamine help suicidal thoughts like mine",
}


@pytest.mark.parametrize("word", sorted(FIRST_PERSON_QUESTIONS))
def test_a_question_about_the_visitor_keeps_its_mention(detector, nlp, word):
    assert detector.find(nlp(FIRST_PERSON_QUESTIONS[word])) is not None
    assert detector.find(nlp("can ketamine help with suicidal thoughts")) is None


def test_every_first_person_word_has_its_question():
    assert set(FIRST_PERSON_QUESTIONS) == FIRST_PERSON


@pytest.mark.parametrize("word", sorted(CONDITIONS))
def test_a_condition_or_report_before_i_am_suicidal_makes_it_a_mention(detector, nlp, word):
    match = detector.find(nlp(f"{word} i am suicidal"))
    assert match is not None and (match.rule, match.kind) == ("suicidal_now", "mention")
    assert detector.find(nlp("i am suicidal")).kind == "statement"


def test_a_match_is_a_value_that_cannot_be_changed(detector, nlp):
    from dataclasses import FrozenInstanceError

    match = detector.find(nlp("i want to die"))
    with pytest.raises(FrozenInstanceError):
        match.kind = "mention"


def test_a_statement_after_a_cleared_mention_or_a_cleared_past_is_found(detector, nlp):
    # a mention cleared by a general question, then a statement
    match = detector.find(nlp("does ketamine help suicidal people? kms"))
    assert match is not None and match.rule == "kill_self"
    # a past statement the visitor says is resolved, then one that never is
    match = detector.find(nlp("years ago i was self harming, that's behind me, but now i want to kill myself"))
    assert match is not None and match.rule == "kill_self"


def test_a_pattern_line_becomes_token_specs():
    assert _token_specs("(end|ending) it") == [{"LOWER": {"REGEX": "^(?:(end|ending))$"}}, {"LOWER": {"REGEX": "^(?:it)$"}}]
    # `x?` is optional, a one-letter word too; `\?` is a question mark; `*` is up to two other tokens
    assert _token_specs("a? (to|na)?") == [{"LOWER": {"REGEX": "^(?:a)$"}, "OP": "?"},
                                            {"LOWER": {"REGEX": "^(?:(to|na))$"}, "OP": "?"}]
    assert _token_specs("why \\?") == [{"LOWER": {"REGEX": "^(?:why)$"}}, {"LOWER": {"REGEX": "^(?:\\?)$"}}]
    assert _token_specs("end * it") == [{"LOWER": {"REGEX": "^(?:end)$"}}, {"OP": "?"}, {"OP": "?"},
                                        {"LOWER": {"REGEX": "^(?:it)$"}}]


def test_up_to_two_words_stand_where_a_line_has_a_star(detector, nlp):
    for text in ["took a whole bunch of my troches", "took the entire rest of the pills", "swallowed all of the pills"]:
        match = detector.find(nlp(text))
        assert match is not None and match.rule == "overdose", text


# Each way ROUTINE has of saying a treatment's routine, in a sentence the overdose rule would read
# as a statement without it.
ROUTINE_SENTENCES = [
    ("i took all my meds this morning as prescribed", "i took all my meds this morning"),
    ("took the whole box of troches as directed by the nurse", "took the whole box of troches"),
    ("i took all my doses as instructed", "i took all my doses"),
    ("took all my doses as scheduled this week", "took all my doses this week"),
    ("i took all my meds today like i'm supposed to", "i took all my meds today"),
    ("i took all my meds this morning like usual", "i took all my meds this morning like candy"),
    ("took all my pills as always, then the troche", "took all my pills, then the troche"),
    ("took all my meds as normal", "took all my meds at once"),
    ("took all my doses on schedule", "took all my doses"),
    ("used the whole supply, do i need a refill", "used the whole supply, do i need help"),
    ("used the whole supply, when do refills come", "used the whole supply, when do they come"),
    ("i've used all my troches, how do i reorder", "i've used all my troches, how do i go on"),
    ("used all my troches, can i re-order", "used all my troches, can i stop"),
    ("used the whole supply already, when does the next shipment come", "used the whole supply already"),
    ("used the whole supply, are shipments weekly", "used the whole supply, weekly"),
    ("took all my doses, when is the delivery", "took all my doses, when is it"),
    ("took the rest of my troches, are deliveries on monday", "took the rest of my troches on monday"),
    ("took all my doses, when does the next box ship", "took all my doses, when does it ship"),
    ("took all my sprays, is the next order ready", "took all my sprays, i am ready"),
    ("took all my troches, the next batch is late", "took all my troches, it is late"),
    ("took all my doses, where is my next package", "took all my doses, where is my family"),
    ("took all my doses, can i get the same next month", "took all my doses, can i get help"),
    ("how many doses do i take per day before it turns fatal", "how many doses do i take before it turns fatal"),
    ("took all my doses, is it two per week", "took all my doses, is it two"),
    ("took all my troches, is it one per month", "took all my troches, is it one"),
    ("took all my doses, is it one per session", "took all my doses, is it one"),
    ("took all my meds on the vacation", "took all my meds on the bed"),
    ("took all my pills on a holiday", "took all my pills on a whim"),
    ("took the rest of my troches on vacation", "took the rest of my troches on purpose"),
    ("i took the rest of my lozenges in my suitcase", "i took the rest of my lozenges at home"),
    ("i am saving my doses for the weekend session", "i am saving my doses for the weekend"),
    ("saving up my troches for my appointment", "saving up my troches for the end"),
    ("took all my troches on the flight home", "took all my troches on the floor"),
    ("took the whole bottle of my meds in my bag", "took the whole bottle of my meds in my room"),
    ("took all my doses in my luggage", "took all my doses in my car"),
    ("took all my doses in my suitcase", "took all my doses in my kitchen"),
    ("took all my troches and ran out", "took all my troches and left"),
    ("took all my troches, will i run out", "took all my troches, will i die"),
    ("took all my troches, running out soon", "took all my troches, leaving soon"),
    ("took all my troches, can i order more", "took all my troches, can i go"),
]


@pytest.mark.parametrize("routine,bare", ROUTINE_SENTENCES)
def test_an_overdose_rule_in_a_sentence_about_the_routine_of_a_treatment_is_a_mention(detector, nlp, routine, bare):
    statement = detector.find(nlp(bare))
    assert statement is not None and (statement.rule, statement.kind) == ("overdose", "statement"), bare
    cleared = detector.find(nlp(routine))
    assert cleared is not None and cleared.kind == "mention", (routine, cleared)


@pytest.mark.parametrize(
    "text",
    [
        "i swallowed the whole bottle of my meds. the pharmacy can't help now",
        "i swallowed the whole bottle of my meds! the pharmacy can't help now",
        "i swallowed the whole bottle of my meds? the pharmacy can't help now",
        "i swallowed the whole bottle of my meds\nthe pharmacy can't help now",
        "the pharmacy is closed. i swallowed the whole bottle of my meds",
    ],
)
def test_the_routine_of_a_treatment_in_another_sentence_does_not_clear_an_overdose(detector, nlp, text):
    match = detector.find(nlp(text))
    assert match is not None and (match.rule, match.kind) == ("overdose", "statement"), text


def test_the_routine_clears_only_the_overdose_rule(detector, nlp):
    match = detector.find(nlp("i want to kill myself, i took my meds as prescribed"))
    assert match is not None and (match.rule, match.kind) == ("kill_self", "statement")


@pytest.mark.parametrize("verb", ["is", "'s", "has", "was", "are"])
def test_a_match_its_clause_denies_after_it_is_a_mention(detector, nlp, verb):
    spaced = "killing myself's" if verb == "'s" else f"killing myself {verb}"
    match = detector.find(nlp(f"{spaced} not an option for me"))
    assert match is not None and (match.rule, match.kind) == ("kill_self", "mention"), verb


@pytest.mark.parametrize(
    "text",
    [
        "hurting myself has never been on the table for me",
        "cutting myself was never my thing",
        "killing myself isn't something i'd do",
    ],
)
def test_denied_after_the_match_is_a_mention(detector, nlp, text):
    match = detector.find(nlp(text))
    assert match is not None and match.kind == "mention", (text, match)


@pytest.mark.parametrize(
    "text",
    [
        "i said killing myself is not the answer, but i want to",  # a subject before it: its own clause
        "killing myself would not be hard",  # "would" does not deny
        "killing myself is the only way out",  # no negation after the verb
        "killing myself, not an option? it is",  # no verb between
    ],
)
def test_a_match_not_denied_after_it_stays_a_statement(detector, nlp, text):
    match = detector.find(nlp(text))
    assert match is not None and match.kind == "statement", (text, match)


@pytest.mark.parametrize("text", ["how to kill time before my appointment", "best way to kill weeds", "ways to kill people in a novel"])
def test_how_to_kill_something_else_is_no_method_search(detector, nlp, text):
    assert detector.find(nlp(text)) is None, text


@pytest.mark.parametrize(
    "text",
    [
        "at 16 i cut my arms, i haven't self-harmed in almost twenty years",
        "from 15 to 19 i cut myself, haven't had a suicidal thought since my early twenties",
        "at age 17 i cut myself. i haven't cut in over ten years",
    ],
)
def test_an_age_in_the_past_and_years_without_it_clear_a_statement(detector, nlp, text):
    assert detector.find(nlp(text)) is None, text


@pytest.mark.parametrize(
    "text",
    [
        "i cut myself at 9pm, i haven't done it since",  # a time, not an age
        "i cut myself at 10:30, haven't stopped shaking since",
        "at 16 i cut my arms and i cut myself again tonight",  # no years without it
        "at 16 i cut my arms, i haven't told anyone",  # not a time without it
    ],
)
def test_a_time_of_day_or_a_past_not_left_behind_keeps_the_statement(detector, nlp, text):
    match = detector.find(nlp(text))
    assert match is not None and match.kind == "statement", text


@pytest.mark.parametrize("meant", ["at once", "at the same time", "together", "in one go", "on purpose", "intentionally",
                                   "deliberately", "to die", "so i do not wake up", "so i never wake up"])
def test_an_overdose_said_to_be_meant_is_a_statement_even_in_a_sentence_about_the_routine(detector, nlp, meant):
    text = f"took all my pills {meant}, i need more"
    match = detector.find(nlp(text))
    assert match is not None and (match.rule, match.kind) == ("overdose", "statement"), text


# Round 12's review of the net's full takeovers (2026-12-07): words that name no risk where they stand.

def rule_and_kind(detector, nlp, text):
    """What the net found in a text: (rule, kind), or None."""
    match = detector.find(nlp(text))
    return None if match is None else (match.rule, match.kind)


@pytest.mark.parametrize("word", sorted(SKIPPING))
def test_a_skipping_rope_is_no_means(detector, nlp, word):
    assert detector.find(nlp(f"{word} rope is my workout, is that okay on session days")) is None, word


@pytest.mark.parametrize(
    "text",
    [
        "i'd rather die than fill out another prior authorization form",
        "she'd rather die than go to her grandma's for christmas",
        "i'd rather be dead than sit through that video again",
        "i would rather be gone than do another icebreaker",
    ],
)
def test_rather_die_than_do_a_chore_is_a_hyperbole_the_classifier_reads(detector, nlp, text):
    assert rule_and_kind(detector, nlp, text) == ("want_to_die", "mention"), text


@pytest.mark.parametrize(
    "text",
    [
        "i'd rather die", "i'd rather be dead",
        "i'd rather be dead than keep doing this to him", "i'd rather die than go on like this",
        "i'd rather die than going on like this", "i'd rather die than to live like this",
        "i'd rather die than living like this", "i'd rather die than continue", "i'd rather die than feel this",
        "i'd rather die than feeling this way", "i'd rather be dead than be like this",
        "i'd rather be dead than be a burden", "i'd rather die than be alive", "i'd rather die than be here",
        "i'd rather die than spend another year like this", "i'd rather die than wake up tomorrow",
        "i'd rather die than face another day", "i'd rather die than face this", "i'd rather die than deal with this",
        "i'd rather die than deal with it", "i'd rather die than exist like this", "i'd rather die than stay",
        "i'd rather die than put them through this", "i'd rather die than put him through it",
        "i'd rather die than put her through it", "i'd rather die than put my kids through it",
        "i'd rather die than do this to them", "i'd rather die than do that to her",
    ],
)
def test_rather_die_than_go_on_living_so_stays_a_statement(detector, nlp, text):
    assert rule_and_kind(detector, nlp, text) == ("want_to_die", "statement"), text


@pytest.mark.parametrize("word", sorted(MEANS_WORDS))
def test_means_at_hand_stay_a_statement(detector, nlp, word):
    assert rule_and_kind(detector, nlp, f"the {word} is ready and i'm alone tonight") == ("kill_self", "statement"), word


@pytest.mark.parametrize("text", ["i'm safe for now, though the gun is loaded and sitting next to me",
                                  "the door is locked and the gun is on my lap", "the rope is in the garage, safe from the kids"])
def test_safe_or_locked_said_of_something_else_keeps_means_at_hand_a_statement(detector, nlp, text):
    assert rule_and_kind(detector, nlp, text) == ("kill_self", "statement"), text


@pytest.mark.parametrize("put_away", ["locked up", "locked away", "locked in a cabinet", "locked inside a case",
                                      "in a lockbox", "in a lock box", "in the gun safe", "in a safe", "into his safe",
                                      "inside her safe", "kept in my safe", "in our safe", "in their safe", "unloaded",
                                      "under a trigger lock", "under a cable lock", "in storage",
                                      "not here, we got rid of it", "not here, i gave it away", "gone, i gave them away"])
def test_a_gun_said_to_be_put_away_is_a_mention_for_the_classifier(detector, nlp, put_away):
    assert rule_and_kind(detector, nlp, f"my husband's gun is {put_away}") == ("kill_self", "mention"), put_away
    bare = detector.find(nlp("my husband's gun is on the table"))
    assert bare is not None and bare.kind == "statement"


@pytest.mark.parametrize("answer", [": not at all", ": no", ": never.", " - 0", " = 0", " \u2014 none", ": nope!", ": zero",
                                    " -- no", ":no"])
def test_a_questionnaire_item_answered_no_is_a_mention_for_the_classifier(detector, nlp, answer):
    item = "thoughts that you would be better off dead"
    assert rule_and_kind(detector, nlp, f"Q9 {item}{answer}") == ("want_to_die", "mention"), answer
    assert rule_and_kind(detector, nlp, f"{item} or of hurting yourself{answer}") == ("want_to_die", "mention"), answer


@pytest.mark.parametrize("text", [
    "better off dead: nearly every day",  # an answer that is not no
    "I'd be better off dead: no one would miss me",  # the words after the colon go on
    "i'd be better off dead and my answer on the form is - no",  # the visitor's own words between
    "better off dead - not at all sure i want to stay",
    "better off dead. no",  # the answer in a sentence of its own
])
def test_an_item_not_answered_no_stays_a_statement(detector, nlp, text):
    assert rule_and_kind(detector, nlp, text) == ("want_to_die", "statement"), text


@pytest.mark.parametrize("word", sorted(COUNTED_LIVES))
def test_a_count_of_lives_or_cells_is_no_lethal_amount_question(detector, nlp, word):
    assert detector.find(nlp(f"how many {word} does he kill in that movie")) is None, word


def test_a_count_of_doses_is_still_a_lethal_amount_question(detector, nlp):
    assert rule_and_kind(detector, nlp, "how many troches does it take to kill me") == ("lethal_amount", "statement")


@pytest.mark.parametrize("word", sorted(IDIOM_SUBJECTS))
def test_a_thing_trying_to_kill_me_is_an_idiom(detector, nlp, word):
    assert detector.find(nlp(f"honestly this {word} has been trying to kill me")) is None, word


@pytest.mark.parametrize("person", sorted(PEOPLE - {"i"}))
def test_a_person_trying_to_kill_me_is_danger_even_in_an_idiom_s_clause(detector, nlp, person):
    assert rule_and_kind(detector, nlp, f"this week {person} has been trying to kill me") == ("danger_now", "statement"), person


def test_i_in_the_clause_keeps_a_threat_a_threat(detector, nlp):
    match = detector.find(nlp("all week i know he's threatening to kill me"))
    assert match is not None and match.rule == "danger_now"


@pytest.mark.parametrize(
    "text",
    [
        "tried to hurt myself as a teen, not since",
        "cut myself as a teen, nothing since.",
        "burned myself as a kid; none since",
        "i also self-harmed, cutting mostly, from about fifteen to twenty. that's all a long time ago.",
        "i cut myself years ago, that is a long time ago",
        "i cut myself years ago. it was a long time ago",
        "i cut myself years ago. that was all a long time ago",
        "i cut myself years ago. it is a long time ago",
        "i cut myself years ago, it's a long time ago",
        "i attempted suicide in 2006 by overdose. i have not had any suicidal thoughts or urges to self-harm in well over a decade",
        "i cut myself years ago and haven't done it in more than a year",
        "i cut myself years ago and haven't done it in almost a decade",
    ],
)
def test_more_ways_of_saying_a_past_is_over(detector, nlp, text):
    assert detector.find(nlp(text)) is None, text


@pytest.mark.parametrize("text", ["cut myself as a teen, not since last night", "i cut myself as a teen, not since then it started again"])
def test_not_since_with_a_time_after_it_is_no_resolved_past(detector, nlp, text):
    assert rule_and_kind(detector, nlp, text) == ("self_harm", "statement"), text


@pytest.mark.parametrize("age", AGE_WORDS.split("|"))
def test_an_age_in_words_is_a_past(detector, nlp, age):
    assert detector.find(nlp(f"when i was {age} i cut myself, haven't done it in years")) is None, age
    assert detector.find(nlp(f"from {age} to {age} i cut myself, haven't done it in years")) is None, age
    assert detector.find(nlp("i cut myself, haven't done it in years")) is not None  # no past, no clearing


@pytest.mark.parametrize("kind", ["regular", "usual", "normal", "daily", "morning", "evening", "nightly", "bedtime",
                                  "everyday", "other"])
@pytest.mark.parametrize("what", ["meds", "medications", "pills", "tablets"])
def test_taking_all_of_one_s_ordinary_medicines_is_routine(detector, nlp, kind, what):
    assert rule_and_kind(detector, nlp, f"i took all my {kind} {what} this morning") == ("overdose", "mention"), (kind, what)
    assert rule_and_kind(detector, nlp, f"i took all my {kind} {what} at once") == ("overdose", "statement"), (kind, what)


@pytest.mark.parametrize("mistake", ["by mistake", "by accident", "accidentally", "mistakenly", "because i misread the label",
                                     "misreading the label", "because i mixed up the boxes", "in a mix-up",
                                     "because i forgot i already had", "because i forgot that i had"])
def test_an_overdose_said_to_be_a_mistake_is_a_mention_for_the_classifier(detector, nlp, mistake):
    assert rule_and_kind(detector, nlp, f"i took 2 whole tablets {mistake}") == ("overdose", "mention"), mistake


@pytest.mark.parametrize("meant", ["on purpose", "intentionally", "deliberately", "to die", "so i would not wake",
                                   "so i never wake", "and i meant it", "and i meant to", "not by accident",
                                   "and it was not a mistake", "it wasn't an accident", "no accident", "it isn't a mistake",
                                   "it wasnt a mistake"])
def test_a_mistake_word_with_the_intent_said_keeps_the_overdose_a_statement(detector, nlp, meant):
    assert rule_and_kind(detector, nlp, f"i took the whole bottle instead of waiting, {meant}") == ("overdose", "statement"), meant


@pytest.mark.parametrize("text", ["i've been saving my troches instead of taking them",
                                  "i'm going to take all the troches instead of one",
                                  "i took the whole bottle, i didn't realize how bad i felt"])
def test_instead_of_or_not_realizing_is_no_mistake(detector, nlp, text):
    assert rule_and_kind(detector, nlp, text) == ("overdose", "statement"), text


@pytest.mark.parametrize("text", ["took a full week of vacation", "i took the whole month off work", "took a whole week of leave"])
def test_a_week_or_a_month_taken_off_is_no_overdose(detector, nlp, text):
    assert detector.find(nlp(text)) is None, text

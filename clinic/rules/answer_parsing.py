"""Free-text answers to the pre-screen questions, understood.

Each ``parse_*`` function is a pure function of the visitor's text that
returns the answer in the domain ``clinic.rules.eligibility`` expects, or ``None``
when the text is not understood (the caller then asks again, with buttons).
When a text could mean two different answers the parsers return ``None``
rather than guess. Nothing here logs or stores the text.
"""

import difflib
import re
from typing import Any, Iterable, List, Optional, Sequence, Set, Tuple

from clinic.rules.us_states import STATE_NAMES
from clinic.rules.visible_text import STRAIGHT_APOSTROPHES

# --- Shared helpers -------------------------------------------------------


def _norm(text: str) -> str:
    """Lowercase words separated by single spaces; apostrophes kept."""
    text = (text or "").translate(STRAIGHT_APOSTROPHES).lower()
    text = re.sub(r"[^\w'/]+", " ", text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
    return " ".join(text.split())


def _has(text: str, phrase: str) -> bool:
    """True if the normalised phrase occurs in normalised text as whole words."""
    return re.search(r"(?<![\w'])" + re.escape(phrase) + r"(?![\w'])", text) is not None


def _find(text: str, phrase: str) -> List[Tuple[int, int]]:
    return [m.span() for m in re.finditer(r"(?<![\w'])" + re.escape(phrase) + r"(?![\w'])", text)]


# --- Age ------------------------------------------------------------------

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}
_AGE_CUE_AFTER = re.compile(r"\s*(?:years?|yrs?|y/o|y\.o\.?|yo)\b")
_AGE_CUE_BEFORE = re.compile(r"\b(?:i'm|im|i am|age|aged|turned|turning)\s*$")
_AGE_NUMBER = re.compile(r"(?<![\w.,+\-])(\d{1,3})(?=(?:years?|yrs?|y/o|yo)\b|[^\w]|$)(?![.,]\d)")
_FILLER = {"i'm", "im", "i", "am", "age", "aged", "years", "year", "old", "yrs", "yo", "y/o", "just", "turned", "its", "it's"}


def _word_numbers(words: Sequence[str]) -> List[Tuple[int, int, int, bool]]:
    """(value, first word, word after the run, is a lone "one".."nine") per run of number words."""
    runs: List[Tuple[int, int, int, bool]] = []
    i, n = 0, len(words)
    while i < n:
        start, value, count = i, None, 0
        while i < n:
            w = words[i]
            low = None if value is None else value % 100
            if w in _TENS and (value is None or (value >= 100 and low == 0)):
                value = (value or 0) + _TENS[w]
            elif w in _UNITS and (value is None or (value >= 100 and low == 0)):
                value = (value or 0) + _UNITS[w]
            elif w in _UNITS and low is not None and low >= 20 and low % 10 == 0 and 0 < _UNITS[w] < 10:
                value += _UNITS[w]
            elif w == "hundred" and (value is None or 1 <= value <= 9):
                value = (value or 1) * 100
            elif w == "and" and value is not None and value >= 100 and low == 0 and i + 1 < n \
                    and (words[i + 1] in _UNITS or words[i + 1] in _TENS):
                pass
            else:
                break
            count += 1
            i += 1
        if count and value is not None:
            runs.append((value, start, i, count == 1 and words[start] in _UNITS and value < 10))
        else:
            i += 1
    return runs


def parse_age(text: str) -> Optional[int]:
    """An age in whole years, 1..120: "25", "I'm 25", "twenty-five", "19 y/o".

    Several different numbers ("I have 2 kids and I'm 30") are resolved only
    when exactly one sits next to an age cue ("I'm", "years old"); otherwise
    None. A lone "one".."nine" counts only as the whole answer ("no one" is
    not an age).
    """
    raw = (text or "").translate(STRAIGHT_APOSTROPHES).lower().strip()
    if not raw:
        return None
    candidates: List[Tuple[int, bool]] = []  # (value, has an age cue)
    for m in _AGE_NUMBER.finditer(raw):
        before, after = raw[: m.start()], raw[m.end():]
        cue = bool(_AGE_CUE_BEFORE.search(before) or _AGE_CUE_AFTER.match(after))
        candidates.append((int(m.group(1)), cue))
    if re.search(r"(?<![\w.])-\s*\d|\d[.,]\d|\d\s*(?:-|to)\s*\d", raw):
        return None  # negative or decimal numbers and ranges are not ages
    words = [w.strip("'") for w in re.split(r"[^\w'/]+|-", raw) if w.strip("'")]
    only_number_words = all(w in _UNITS or w in _TENS or w in ("hundred", "and") or w in _FILLER for w in words)
    for value, start, end, single_unit in _word_numbers(words):
        if single_unit and not only_number_words:
            continue
        before = " ".join(words[:start])
        after = " " + " ".join(words[end:])
        cue = bool(_AGE_CUE_BEFORE.search(before) or _AGE_CUE_AFTER.match(after))
        candidates.append((value, cue))
    values = {v for v, _ in candidates}
    if len(values) > 1:
        values = {v for v, cue in candidates if cue}
    if len(values) != 1:
        return None
    age = values.pop()
    return age if 1 <= age <= 120 else None


# --- State ----------------------------------------------------------------

_NAME_TO_CODE = {name.lower(): code for code, name in STATE_NAMES.items()}
_ALIASES = {
    "washington dc": "DC", "washington d c": "DC", "dc": "DC", "d c": "DC",
    "district of columbia": "DC", "washington state": "WA", "nyc": "NY", "cali": "CA",
}
_ALL_NAMES = dict(_NAME_TO_CODE, **_ALIASES)
# Codes that are also English words (or common abbreviations): inside a
# sentence only right after "in"/"from", never from a lowercase word alone.
_WORD_CODES = {"IN", "ME", "OR", "OK", "HI", "OH", "ID", "AL", "MA", "PA", "LA", "DE", "CO", "MI", "MO", "GA", "AS"}
# Codes that are everyday words even as a whole answer ("ok", "hi"): uppercase only.
_WORD_ANSWERS = {"IN", "ME", "OR", "OK", "HI", "OH"}
_STATE_PREFIX = re.compile(
    r"^(?:(?:i|we)\s+(?:currently\s+)?(?:live|reside|stay)\s+(?:in\s+)?|"
    r"(?:i'?m|i\s+am|we\s+are|we're)\s+(?:currently\s+)?(?:in|from|based\s+in|located\s+in|living\s+in)\s+|"
    r"based\s+in\s+|living\s+in\s+|located\s+in\s+|from\s+|in\s+|the\s+state\s+of\s+|"
    r"it'?s\s+|its\s+|my\s+state\s+is\s+|state\s+is\s+|state\s+)+"
)
_STATE_SUFFIX = re.compile(r"(?:\s+(?:state|usa|us|u s|u s a|united states|right now|now|currently))+$")
_FUZZY_STOPWORDS = {
    "i", "im", "i'm", "am", "live", "living", "in", "from", "the", "state", "of", "at", "my", "is", "it",
    "its", "it's", "a", "and", "now", "currently", "based", "near", "we", "reside", "usa", "us",
}
# Ordinary words that fuzzy-match a state name.
_FUZZY_NEVER = {"indian", "main", "mainly", "virgin", "georgian", "texan", "floridian", "californian", "washing",
                "alaskan", "hawaiian", "canada", "mexico", "oregano", "colored", "colorful"}


def _normalise_place(text: str) -> str:
    text = (text or "").translate(STRAIGHT_APOSTROPHES)
    text = re.sub(r"\b([dD])\.\s?([cC])\b\.?", r"\1c", text)
    return _norm(text)


def _exact_place(phrase: str, original: str) -> Optional[str]:
    """A state from a whole phrase: name, alias or code, with filler words removed.

    ``phrase`` is normalised; ``original`` is the text as typed, which must
    show "OK", "HI", "IN", "ME", "OR", "OH" in uppercase to count.
    """
    rest = _STATE_SUFFIX.sub("", _STATE_PREFIX.sub("", phrase)).strip()
    if rest in _ALL_NAMES:
        return _ALL_NAMES[rest]
    code = rest.replace(" ", "").upper()
    if len(code) == 2 and code in STATE_NAMES and len(rest) <= 3:
        if code in _WORD_ANSWERS and not re.search(r"(?<![A-Za-z])" + code + r"(?![A-Za-z])", original):
            return None
        return code
    return None


def _fuzzy_place(phrase: str, cutoff: float) -> Optional[str]:
    if len(phrase) < 4 or phrase in _FUZZY_NEVER:
        return None
    match = difflib.get_close_matches(phrase, list(_ALL_NAMES), n=1, cutoff=cutoff)
    return _ALL_NAMES[match[0]] if match else None


def _places_in_sentence(original: str, text: str) -> Set[str]:
    """States named in a sentence: full names, and codes where unambiguous."""
    found: Set[str] = set()
    taken = [False] * len(text)
    for name in sorted(_ALL_NAMES, key=len, reverse=True):
        if len(name) <= 3 and name != "nyc":
            continue  # "dc", "d c" and codes are handled below
        for start, end in _find(text, name):
            if not any(taken[start:end]):
                found.add(_ALL_NAMES[name])
                for k in range(start, end):
                    taken[k] = True
    shouting = not re.search(r"[a-z]", original)
    original = re.sub(r"\b([dD])\.\s?([cC])\b\.?", r"\1C", original.translate(STRAIGHT_APOSTROPHES))
    for m in re.finditer(r"(?<![\w'])([A-Za-z]{2})(?![\w'])", original):
        token = m.group(1)
        code = token.upper()
        if code not in STATE_NAMES:
            continue
        after_in = re.search(r"\b(?:in|from|to)\s+$", original[: m.start()], re.IGNORECASE) is not None
        if code == "DC" or (token.isupper() and not shouting and code not in _WORD_CODES):
            found.add(code)
        elif after_in and (token.isupper() or code not in _WORD_CODES):
            found.add(code)
    return found


def parse_state(text: str, entities: Iterable[str] = ()) -> Optional[str]:
    """The two-letter code of the US state (or DC, PR) the text names, or None.

    ``entities`` are spaCy GPE entity texts the caller may pass: tried first.
    Two-letter codes count as the whole answer ("tx"), after "in"/"from"
    ("I live in tx"), or in uppercase inside a sentence, except those that
    are also words ("in", "me", "or", "ok", "hi", ...), which count only
    after "in"/"from". Misspelt names are matched with difflib. A text naming
    two different states gives None.
    """
    codes = {c for c in (_place_from_phrase(e) for e in entities or ()) if c}
    if len(codes) == 1:
        return codes.pop()
    original = (text or "").strip()
    normal = _normalise_place(original)
    if not normal:
        return None
    whole = _exact_place(normal, original)
    if whole:
        return whole
    found = _places_in_sentence(original, normal)
    if found:
        return found.pop() if len(found) == 1 else None
    rest = _STATE_SUFFIX.sub("", _STATE_PREFIX.sub("", normal)).strip()
    fuzzy = _fuzzy_place(rest, 0.8)
    if fuzzy:
        return fuzzy
    words = [w for w in normal.split() if w not in _FUZZY_STOPWORDS]
    guesses = set()
    for n in (3, 2, 1):
        for i in range(len(words) - n + 1):
            gram = " ".join(words[i:i + n])
            if len(gram) >= 5:
                guess = _fuzzy_place(gram, 0.85)
                if guess:
                    guesses.add(guess)
    return guesses.pop() if len(guesses) == 1 else None


def _place_from_phrase(phrase: str) -> Optional[str]:
    normal = _normalise_place(phrase)
    return _exact_place(normal, phrase) or _fuzzy_place(normal, 0.8) if normal else None


# --- Yes / no / unsure ----------------------------------------------------

_UNSURE = (
    "not sure", "unsure", "don't know", "dont know", "do not know", "idk", "maybe", "possibly",
    "prefer not to say", "rather not say", "prefer not to answer", "rather not answer", "not certain",
    "no idea", "dunno", "perhaps", "i'm not certain", "can't say", "cant say", "hard to say", "might be",
)
_STRONG_YES = ("yes", "yeah", "yep", "yup", "y", "ya", "yea", "yes please")
_STRONG_NO = ("no", "nope", "nah", "n")
_WEAK_YES = ("sure", "i have", "i've", "i am", "i'm", "correct", "true", "i do", "absolutely",
             "definitely", "of course", "affirmative", "that's right")
_WEAK_NO = ("never", "not really", "i don't", "i dont", "i do not", "none", "i haven't", "i havent",
            "i have not", "i'm not", "im not", "i am not", "negative", "false", "not at all", "no way",
            "nothing", "not that i know", "i've not", "not me", "incorrect")


def parse_yes_no(text: str) -> Optional[str]:
    """ "yes", "no" or "unsure" for a yes/no question, or None.

    "Not sure" wins over anything ("no, I'm not sure" is unsure). A leading
    "yes"/"no" word decides ("yes, I don't live alone"); otherwise a negation
    ("I have never", "I'm not") wins over a weak yes ("I have", "I'm").
    Both "yes" and "no" as words gives None.
    """
    t = _norm(text)
    if not t:
        return None
    if any(_has(t, p) for p in _UNSURE):
        return "unsure"
    strong_yes = any(_has(t, p) for p in _STRONG_YES)
    strong_no = any(_has(t, p) for p in _STRONG_NO)
    if strong_yes and strong_no:
        return None
    first = t.split()[0]
    if first in _STRONG_YES:
        return "yes"
    if first in _STRONG_NO:
        return "no"
    weak_no = any(_has(t, p) for p in _WEAK_NO)
    if strong_no or weak_no:
        return "no"
    if strong_yes or any(_has(t, p) for p in _WEAK_YES):
        return "yes"
    return None


# --- Thoughts of ending one's life ---------------------------------------------

# For these three questions only a clear no is no: the whole answer must be one of these.
_CLEAR_NO = frozenset({
    "no", "nope", "nah", "n", "never", "no never", "nope never", "never ever", "no never ever", "not ever",
    "not at all", "no not at all", "not once", "no not once", "none", "no none", "no i haven't", "no i have not",
    "i haven't", "i have not", "no i haven't had any", "no i don't", "no i do not", "no thank you", "no thanks",
    "no i'm fine", "no i'm okay", "no i'm ok", "never have", "no never have", "i never have",
    "i've never thought about it", "never thought about it", "no i've never thought about it", "no thoughts",
    "no i haven't had any thoughts", "no i have not had any thoughts", "i haven't had any thoughts",
})
# ...and, to the follow-up questions, a no that names what it denies.
_CLEAR_NO_TO = {
    "suicide_plan": frozenset({
        "no plan", "no plans", "no plan no intention", "no plan or intention", "no plan and no intention",
        "no intention", "no intentions", "i have no plan", "i have no plans", "no i have no plan",
        "i don't have a plan", "no i don't have a plan", "i don't have any plans", "no i don't have any plans",
        "no just thoughts", "no just the thoughts", "no only thoughts", "no i wouldn't", "i wouldn't",
        "i wouldn't act on them", "no i wouldn't act on them", "i would never act on them", "i won't act on them",
        "no i won't", "no i'm safe", "i'm safe",
    }),
    "suicide_attempt": frozenset({
        "no attempt", "no attempts", "i haven't tried", "no i haven't tried", "never tried", "no never tried",
        "i have never tried", "i've never tried", "no i've never tried", "no i have never tried",
    }),
}
# To the thoughts question, any sign of them is a yes: frequency, "but", "just thoughts", a plan.
_THOUGHTS_SIGNS = (
    "yes", "yeah", "yep", "yup", "ya", "yea", "y", "sometimes", "some times", "occasionally", "on and off",
    "off and on", "now and then", "once", "twice", "a few times", "a couple of times", "couple of times",
    "couple times", "few times", "several times", "many times", "a lot", "often", "all the time", "every day",
    "everyday", "daily", "constantly", "always", "most days", "at times", "passing", "fleeting", "thoughts",
    "thought about it", "think about it", "thinking about it", "i have", "i've had", "i had", "i do", "a little",
    "a bit", "only when", "when things get bad", "but", "plan", "act on", "wish", "want to die", "better off",
    "end it",
)
# To the follow-ups the same, less the words that only say thoughts are there.
_THOUGHTS_ONLY = ("thoughts", "thought about it", "think about it", "thinking about it", "passing", "fleeting")
_FOLLOW_UP_SIGNS = tuple(p for p in _THOUGHTS_SIGNS if p not in _THOUGHTS_ONLY) + ("i did", "i tried")
_HEDGES = ("not really", "not lately", "not recently", "i guess", "i think so", "i don't think so", "kind of",
           "sort of", "not exactly", "hard to say")
_NEGATION_WORDS = ("no", "not", "never", "nope", "nah", "none", "nothing")
# Words typed without their apostrophe, as the lists above spell them.
_APOSTROPHE_LESS = {"im": "i'm", "ive": "i've", "dont": "don't", "havent": "haven't", "wouldnt": "wouldn't",
                    "wont": "won't"}


def parse_suicide_answer(text: str, question: str = "suicidal_thoughts") -> Optional[str]:
    """ "yes", "no" or "unsure" to ``suicidal_thoughts``, ``suicide_plan`` or ``suicide_attempt``, or None.

    Strict, for safety: only a clear no ("no", "never", "nope", "no never"; to
    the follow-ups also "no plan", "never tried"...) is "no". To the thoughts
    question any sign of them ("sometimes", "passing thoughts", "i don't have
    a plan", "no plan but yes") is "yes"; to every one of the three a hedge or
    a no with more to it ("not really", "not lately") is "unsure", which
    counts as yes. Only a text with none of these (gibberish, a question) is None.
    """
    t = " ".join(_APOSTROPHE_LESS.get(w, w) for w in _norm(text).split())
    if not t:
        return None
    if t in _CLEAR_NO or t in _CLEAR_NO_TO.get(question, ()):
        return "no"
    signs = _THOUGHTS_SIGNS if question == "suicidal_thoughts" else _FOLLOW_UP_SIGNS
    if any(_has(t, p) for p in signs):
        return "yes"
    if any(_has(t, p) for p in _UNSURE + _HEDGES):
        return "unsure"
    if any(_has(t, w) for w in _NEGATION_WORDS) or "n't" in t:
        return "unsure"  # a no, but not a clear one
    return None


# --- Checklists: medicines and conditions --------------------------------------

MEDICINES = (
    r"benzodiazepines?", r"benzos?", r"xanax", r"alprazolam", r"klonopin", r"clonazepam", r"ativan", r"lorazepam",
    r"valium", r"diazepam", r"temazepam", r"lamotrigine", r"lamictal", r"maois?", r"mao inhibitors?", r"phenelzine",
    r"nardil", r"tranylcypromine", r"parnate", r"selegiline", r"emsam", r"isocarboxazid", r"marplan", r"stimulants?",
    r"adderall", r"ritalin", r"vyvanse", r"concerta", r"methylphenidate", r"amphetamines?", r"dexedrine", r"focalin",
    r"opioids?", r"opiates?", r"oxycodone", r"oxycontin", r"percocet", r"hydrocodone", r"vicodin", r"norco",
    r"tramadol", r"morphine", r"codeine", r"fentanyl", r"methadone", r"buprenorphine", r"suboxone", r"sedatives?",
    r"sleeping pills?", r"sleep meds?", r"ambien", r"zolpidem", r"gabapentin", r"pregabalin", r"lyrica",
)
CONDITIONS = (
    r"brain injur(?:y|ies)", r"head injur(?:y|ies)", r"tbi", r"concussions?", r"brain bleeds?",
    r"bleeding in (?:the|my) brain", r"intracranial pressure", r"pressure in (?:the|my) head", r"glaucoma",
    r"eye pressure", r"liver", r"cirrhosis", r"hepatitis", r"seizures?", r"epilepsy", r"epileptic", r"thyroid",
    r"hyperthyroid\w*", r"bladder", r"urinary", r"cystitis", r"hypomania", r"hypomanic", r"bipolar (?:ii|2|two)",
    r"reaction to ketamine", r"allergic to ketamine", r"ketamine allergy", r"schizophreni\w*", r"psychosis",
)
# A negation up to two words before an item ("no seizures", "i don't have glaucoma"), not across "but".
_ITEM_NEGATED = re.compile(
    r"(?:\bno|\bnot|\bnever|n't|\bwithout|\bneither|\bnor)\s+(?:(?!but\b|and\b)\w+\s+){0,2}$"
)


def _checklist(text: str, items: Sequence[str]) -> Optional[str]:
    """ "yes" when the text names an item of the list (not negated); "no" when it names items
    only under negation ("no benzos"); else as ``parse_yes_no``."""
    t = _norm(text).replace("-", " ")
    if not t:
        return None
    if any(_has(t, p) for p in _UNSURE):
        return "unsure"
    negated = False
    for item in items:
        for m in re.finditer(r"(?<![\w'])" + item + r"(?![\w'])", t):
            if not _ITEM_NEGATED.search(t[: m.start()]):
                return "yes"
            negated = True
    return "no" if negated else parse_yes_no(text)


def parse_medications(text: str) -> Optional[str]:
    """ "yes", "no" or "unsure" to "do you take any of these?"; naming one ("xanax") is a yes."""
    return _checklist(text, MEDICINES)


def parse_conditions(text: str) -> Optional[str]:
    """ "yes", "no" or "unsure" to "do any of these apply to you?"; naming one ("glaucoma") is a yes."""
    return _checklist(text, CONDITIONS)


# --- Alcohol and drugs --------------------------------------------------------------

_STILL = ("still", "now", "currently", "at the moment", "these days", "ongoing", "at present")
_NO_LONGER = ("not now", "not any more", "not anymore", "no longer", "used to", "in the past", "earlier",
              "stopped", "quit", "sober", "in recovery", "clean now", "years ago", "a while ago", "not since")


def parse_substance_use(text: str) -> Optional[str]:
    """ "current", "past", "no" or "unsure" to the alcohol-and-drugs question, or None.

    A yes must say whether it is still going on ("yes, still", "currently")
    or not ("used to", "not any more", "in recovery"); a bare "yes" is None,
    so that the question is asked again with its buttons. A no ("no",
    "never") is "no" unless it says something past ("no, not any more").
    """
    t = _norm(text)
    if not t:
        return None
    if any(_has(t, p) for p in _UNSURE):
        return "unsure"
    taken = [False] * len(t)
    past = current = False
    for phrase in _NO_LONGER:
        for start, end in _find(t, phrase):
            past = True
            taken[start:end] = [True] * (end - start)
    for phrase in _STILL:
        current = current or any(not any(taken[start:end]) for start, end in _find(t, phrase))
    if past and current:
        return None
    if past:
        return "past"
    if current:
        return "current"
    return "no" if parse_yes_no(text) == "no" else None


# --- Frequency (PHQ-2 / GAD-2 items) ----------------------------------------

_FREQUENCY_PHRASES = (
    (0, ("not at all", "never", "not once")),
    (1, ("several days", "some days", "a few days", "few days", "sometimes", "occasionally",
         "a couple of days", "a couple days", "once in a while", "a little", "a bit", "now and then")),
    (2, ("more than half the days", "more than half of the days", "more than half", "over half the days",
         "most days", "most of the time", "often", "frequently", "a lot", "usually")),
    (3, ("nearly every day", "almost every day", "nearly everyday", "almost everyday", "every day",
         "everyday", "daily", "always", "all the time", "constantly", "every single day")),
)
_FREQUENCY_WHOLE = {"no": 0, "nope": 0, "none": 0, "nah": 0}
# The options' numbers (their scores, shown on the buttons): a bare one counts only when shown.
_OPTION_NUMBERS = {"0": 0, "1": 1, "2": 2, "3": 3, "zero": 0, "one": 1, "two": 2, "three": 3}
_COUNT_WORDS = dict(_UNITS, once=1, twice=2)
_COUNT = r"(\d{1,3}|" + "|".join(sorted(_COUNT_WORDS, key=len, reverse=True)) + r")"
# "3 days", "4 times", "5x", "once"; then per week, per day, or out of the two weeks.
_DAY_COUNT = re.compile(
    r"(?<![\w'])" + _COUNT + r"(\s*(?:days?|times?|x))?"
    r"(?:\s+(?:a|per|each|every)\s+(week|day)|(\s+(?:out\s+)?of\s+(?:the\s+(?:last|past)\s+)?(?:14|fourteen)(?:\s+days)?))?"
    r"(?![\w'])"
)


def _days_in_two_weeks(t: str, taken: Sequence[bool]) -> Set[int]:
    """The day counts a text gives outside the ``taken`` characters, as days out of the last 14
    ("4 days a week" is 8, "twice a day" 14)."""
    days = set()
    for m in _DAY_COUNT.finditer(t):
        word, unit, per, out_of_14 = m.groups()
        if any(taken[m.start():m.end()]):
            continue  # inside an option's phrase ("not once")
        if not (unit or per or out_of_14 or word in ("once", "twice")):
            continue  # a bare number is no count of days
        n = int(word) if word.isdigit() else _COUNT_WORDS[word]
        days.add(14 if per == "day" else n * 2 if per == "week" else n)
    return days


def _score_for_days(days: int) -> Optional[int]:
    """Days out of 14 as the option: 0; 1-7 several days; 8-11 more than half; 12-14 nearly every day."""
    if days == 0:
        return 0
    if 1 <= days <= 7:
        return 1
    if 8 <= days <= 11:
        return 2
    if 12 <= days <= 14:
        return 3
    return None


def parse_frequency(text: str, numbered_options: bool = False) -> Optional[int]:
    """A PHQ-2/GAD-2 item score 0..3 from the option's words, a variant or a count of days.

    Counts are days out of the last two weeks: "3 days" is several days (1),
    "8 days" more than half the days (2), "4 days a week" 8 days, "every day"
    nearly every day (3). A bare number ("2") is the option's number only when
    ``numbered_options`` (the buttons showed the numbers); otherwise None. A
    phrase under negation ("not every day", "not often") and a text matching
    two different options give None; "not at all" is the option itself.
    """
    t = _norm(text)
    if not t:
        return None
    if t in _FREQUENCY_WHOLE:
        return _FREQUENCY_WHOLE[t]
    if (text or "").strip().rstrip(".)").strip().lower() in _OPTION_NUMBERS:  # "2", "2.", "two"; not "-1"
        return _OPTION_NUMBERS[t] if numbered_options else None
    phrases = sorted(((p, v) for v, ps in _FREQUENCY_PHRASES for p in ps), key=lambda pv: -len(pv[0]))
    taken = [False] * len(t)
    levels = set()
    for phrase, value in phrases:
        for start, end in _find(t, phrase):
            if any(taken[start:end]):
                continue
            for k in range(start, end):
                taken[k] = True
            if phrase != "not at all" and re.search(r"(?:\bnot|n't)\s+(?:\w+\s+)?$", t[:start]):
                return None
            levels.add(value)
    for days in _days_in_two_weeks(t, taken):
        levels.add(_score_for_days(days))
    if len(levels) != 1:
        return None
    return levels.pop()


# --- Main concern ---------------------------------------------------------

_CONCERN_WORDS = (
    ("depression", (r"depress\w*", r"low mood", r"mood is low", r"feel(?:ing)? (?:so |very |really )?(?:down|low|empty|hopeless)",
                    r"sad(?:ness)?", r"hopeless(?:ness)?", r"mdd", r"unhappy", r"no motivation", r"postpartum")),
    ("anxiety", (r"anxi\w*", r"panic\w*", r"worr(?:y|ied|ying|ies)", r"nervous\w*", r"gad", r"on edge",
                 r"stress(?:ed)?", r"phobia\w*")),
    ("ptsd", (r"c ?ptsd", r"ptsd", r"post ?traumatic\w*", r"trauma\w*", r"flashbacks?", r"nightmares?")),
    ("other", (r"other", r"something else", r"ocd", r"obsessive\w*", r"compulsive\w*", r"bipolar",
               r"chronic pain", r"addiction", r"eating disorder", r"adhd", r"insomnia",
               r"none of (?:these|those|the above)", r"burn ?out")),
)
_NEGATED = re.compile(r"(?:\bnot|\bno|n't|\bnever|\bwithout)\s+(?:\w+\s+){0,1}$")


def parse_concern(text: str) -> Optional[str]:
    """ "depression", "anxiety", "ptsd" or "other", or None.

    With several concerns named, the first one named (not negated) is the
    main one: "anxiety and depression" -> "anxiety"; "not depressed, just
    anxious" -> "anxiety". "Bipolar depression" -> "other".
    """
    t = _norm(text).replace("-", " ")
    if not t:
        return None
    hits: List[Tuple[int, str]] = []
    for concern, patterns in _CONCERN_WORDS:
        for pattern in patterns:
            for m in re.finditer(r"(?<![\w'])" + pattern + r"(?![\w'])", t):
                if not _NEGATED.search(t[: m.start()]):
                    hits.append((m.start(), concern))
    if not hits:
        return None
    return min(hits)[1]


# --- Treatments tried -----------------------------------------------------

_MEDICATION = (r"medications?", r"meds", r"medicines?", r"antidepressants?", r"anti depressants?", r"ssris?",
               r"snris?", r"pills?", r"prescriptions?", r"prozac", r"zoloft", r"lexapro", r"wellbutrin",
               r"celexa", r"paxil", r"cymbalta", r"effexor", r"sertraline", r"fluoxetine", r"escitalopram",
               r"bupropion", r"medicated")
_THERAPY = (r"\w*therap\w*", r"counsell?ing", r"counsell?ors?", r"cbt", r"dbt", r"emdr", r"psychologists?",
            r"talking to someone")
_BOTH = (r"both", r"all of them", r"all of the above", r"all of those", r"each of them")
_NONE = (r"nothing", r"none", r"neither", r"no", r"nope", r"never", r"not yet", r"not really",
         r"haven'?t tried anything", r"have not tried anything", r"nothing yet", r"no treatment")
# A negation up to two words before ("haven't tried therapy"), not across "but".
_TREATMENT_NEGATED = re.compile(
    r"(?:\bno|\bnot|\bnever|n't|\bwithout|\bneither|\bnor|\bexcept)\s+(?:(?!but\b|only\b|just\b|and\b)\w+\s+){0,2}$"
)


def _positive_hit(t: str, patterns: Sequence[str]) -> Tuple[bool, bool]:
    """(named and not negated, named under negation)."""
    positive = negated = False
    for pattern in patterns:
        for m in re.finditer(r"(?<![\w'])" + pattern + r"(?![\w'])", t):
            if _TREATMENT_NEGATED.search(t[: m.start()]):
                negated = True
            else:
                positive = True
    return positive, negated


def parse_treatments(text: str) -> Optional[str]:
    """ "medication", "therapy", "both" or "none", or None.

    "No meds, only therapy" -> "therapy"; "neither meds nor therapy" -> "none".
    """
    t = _norm(text).replace("-", " ")
    if not t:
        return None
    meds, meds_negated = _positive_hit(t, _MEDICATION)
    therapy, therapy_negated = _positive_hit(t, _THERAPY)
    both, _ = _positive_hit(t, _BOTH)
    if (meds and therapy) or (both and not (meds_negated or therapy_negated)):
        return "both"
    if meds:
        return "medication"
    if therapy:
        return "therapy"
    if meds_negated or therapy_negated:
        return "none"
    if any(re.search(r"(?<![\w'])" + p + r"(?![\w'])", t) for p in _NONE):
        return "none"
    return None


# --- Contact details ------------------------------------------------------

_EMAIL = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}"
)


# Words after which an address may follow with just a space ("my email is x@y.z").
_EMAIL_LEAD_INS = {
    "is", "email", "e-mail", "mail", "address", "at", "me", "use", "it's", "its", "try", "to", "meant", "mean",
    "actually", "sorry", "correction", "typo", "oops", "wait", "here", "yes", "sure", "ok", "okay", "please",
    "mine", "reach", "contact", "via", "be", "should",
}


def parse_email(text: str) -> Optional[str]:
    """The one email address in the text, lowercased, or None.

    The address must have a domain with a dot and a top-level part of letters.
    Spaces inside an address are refused: an "@" next to a space
    ("jane @ example.com"), or a bare word just before the address that is
    not a lead-in like "is" or "at" ("jane doe@example.com") gives None, as
    does a text with two addresses.
    """
    raw = (text or "").translate(STRAIGHT_APOSTROPHES).strip()
    if re.search(r"\s@|@\s", raw):
        return None
    tokens = raw.split()
    at = [i for i, tok in enumerate(tokens) if "@" in tok]
    if len(at) != 1:
        return None
    if at[0] > 0:
        before = tokens[at[0] - 1]
        if before[-1].isalnum() and before.lower() not in _EMAIL_LEAD_INS:
            return None
    token = re.sub(r"^mailto:", "", tokens[at[0]].strip("<>()[]{}\"',;:!?"), flags=re.IGNORECASE)
    token = token.rstrip(".").lower()
    return token if _EMAIL.fullmatch(token) and len(token) <= 254 else None


_PHONE_RUN = re.compile(r"\+?\(?\d[\d\s().\-]*\d")


def parse_phone(text: str) -> Optional[str]:
    """A US phone number as "+1 555-010-4477", or None.

    10 digits, or 11 starting with 1, written with any of spaces, dots,
    dashes and parentheses; a leading "+" must be "+1". An area code starting
    with 0 or 1 does not exist in the US and gives None. Words around the
    number are fine; two numbers give None.
    """
    runs = [m.group(0) for m in _PHONE_RUN.finditer(text or "")]
    numbers = [r for r in runs if len(re.sub(r"\D", "", r)) >= 7]
    if len(numbers) != 1:
        return None
    run = numbers[0]
    digits = re.sub(r"\D", "", run)
    if run.startswith("+") and not digits.startswith("1"):
        return None
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10 or digits[0] in "01":
        return None
    return f"+1 {digits[:3]}-{digits[3:6]}-{digits[6:]}"


def contains_email(text: str) -> bool:
    """Whether an e-mail address is anywhere in the text (however many, whatever is around them)."""
    return bool(_EMAIL.search((text or "").lower()))


def contains_phone(text: str) -> bool:
    """Whether the text holds something written like a phone number (a run of 7 digits or more,
    spaces, dots, dashes and parentheses allowed between them)."""
    return any(len(re.sub(r"\D", "", m.group(0))) >= 7 for m in _PHONE_RUN.finditer(text or ""))


# --- Corrections ----------------------------------------------------------

_CORRECTION_CUES = re.compile(
    r"\b(?:actually|i meant|i mean|meant|sorry|correction|wait|mistake|typo|oops|my bad|scratch that)\b",
    re.IGNORECASE,
)
_CUE_WORDS = re.compile(
    r"\b(?:actually|i meant to say|i meant|i mean|meant|sorry|correction|wait|i made a mistake|made a mistake|"
    r"my mistake|mistake|typo|oops|my bad|scratch that|that's wrong|that was wrong)\b",
    re.IGNORECASE,
)
# "not X": up to punctuation, "but", or the end.
_NOT_X = re.compile(r"\bnot\s+(?!sure\b)[^,;!?]*?(?=\s*(?:[,;!?]|\bbut\b|\bi'?m\b|\bi am\b|$))", re.IGNORECASE)


def detect_correction(text: str) -> Optional[Tuple[str, Any]]:
    """(slot, value) when the visitor corrects an earlier answer, else None.

    Needs a cue ("actually", "I meant", "sorry", "correction", "wait",
    "mistake", "typo", or "X not Y") and a value whose kind names the slot:
    an email address ("email"), a phone number ("phone"), a US state
    ("state") or an age ("age"). The part after "not" is the old value and
    is dropped: "wait i'm in CA not NY" -> ("state", "CA"). Values for two
    different slots give None (the caller asks again).
    """
    raw = (text or "").translate(STRAIGHT_APOSTROPHES).strip()
    has_not = re.search(r"\bnot\s+(?!sure\b)\S", raw, re.IGNORECASE) is not None
    if not raw or not (_CORRECTION_CUES.search(raw) or has_not):
        return None
    email = parse_email(raw)
    if email:
        return ("email", email)
    phone = parse_phone(raw)
    if phone:
        return ("phone", phone)
    rest = _NOT_X.sub(" ", raw)
    rest = _CUE_WORDS.sub(" ", rest)
    rest = re.sub(r"^[\s,.:;!\-]+|[\s,.:;!\-]+$", "", re.sub(r"\s+", " ", rest))
    if not rest:
        return None
    found = []
    state = parse_state(rest)
    if state:
        found.append(("state", state))
    age = parse_age(rest)
    if age is not None:
        found.append(("age", age))
    return found[0] if len(found) == 1 else None

"""The crisis safety net: spaCy Matcher patterns, with negation handled.

Recall comes before precision: a message that may express thoughts of
suicide or self-harm, or danger now, must get the crisis resources even when
the classifier misses it. The patterns are token patterns over lower-cased
text, with common misspellings; a match is dropped only when it is negated
in its own clause ("I'm not going to hurt myself", "never had thoughts of
suicide") or when a mere mention of the subject sits in a general question
about treatment ("does ketamine help with suicidal thoughts?").

The patterns are the floor under the safety classifier (``clinic.safety.classifier``):
explicit wording is caught by them whatever the classifier says. Slang and leetspeak
("kms", "unalive", "sewer slide", "k1ll mys3lf"), the clinic's own products as means
("took all my troches", "saving up my lozenges") and Spanish ("me quiero morir") are
written in; words that only look alike are not ("odd", "dye").

Pure functions of a spaCy ``Doc``: the safety layer (``clinic.safety.layer``) and the tests
share them.
"""

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import spacy
from spacy.matcher import Matcher
from spacy.tokens import Doc
from spacy.vocab import Vocab

from clinic.rules.visible_text import STRAIGHT_APOSTROPHES
from clinic.safety.matcher_precheck import MatcherPrecheck

# Kinds of match. STATEMENT: first-person intent, plan, act or danger; only a
# negation in its clause clears it: a crisis, whatever the classifier says. MENTION: the
# subject named ("suicidal", "self-harm", "overdose"): the classifier decides (a therapist's
# client, a brother lost to suicide, a news story are no crisis), and an informational answer
# gets the 988 footer; cleared also inside a general question about treatment.
STATEMENT = "statement"
MENTION = "mention"

SELF = r"myself|myslef|mysef|meself|mself|myselfe|mys3lf|my5elf|mys3lph"
KILL = r"kill|kil|kll|killin|killing|kiling|k1ll|ki11|k!ll|murder|murdering|unalive|unaliving"
DIE = r"die|dead|diee|d1e|ded"
HURT = r"hurt|hurting|harm|harming|cut|cutting|cuttin|burn|burning|burned|burnt|punish|starve|starving"
SUICIDE = (
    r"suicide|suicidal|suicidel|suicdal|suicde|sucide|suicid|suicidl|suicidle|suicidial|"
    r"suiside|suisidal|sucidal|suicidality|suicides|su1c1de|suic1de|su1cide|su1c1dal|sewerslide|sewerslided"
)
# The adjective alone, and what may stand between "i'm" and it ("not" is none of them)
SUICIDAL = r"suicidal|suicidel|suicdal|suicidl|suicidle|suicidial|suisidal|sucidal|su1c1dal"
NOW_ADVERBS = (
    r"actively|really|so|very|kinda|kind|of|sorta|pretty|super|literally|honestly|still|currently|"
    r"feeling|getting|seriously|genuinely|lowkey|constantly|severely|acutely|quite|extremely|just|also|fyi"
)
# ("about to die" is left to the classifier: a phone's battery, laughing, a scare)
WANT = r"want|wanna|wnat|wnt|wamt|whant|wish|wished|going|ready|planning|plan|need|trying|try|tried|decided|decide|thinking"
PILLS = r"pills|pill|meds|medication|medications|tablets|sleeping|oxy|xanax|tylenol"
# The clinic's own products and what holds them, as means: only the plural or whole supply
# ("take the whole troche" is a dosing question; "take all my troches" is not).
SUPPLY = (
    r"pills|meds|medications|tablets|troches|lozenges|rdts|doses|sprays|bottles|bottle|supply|stash|"
    r"ketamine|k|xanax|oxys|tylenol|sleeping|insulin|prescription|prescriptions|script"
)
# What a count of doses would do, asked about: an overdose's question ("... to stop my heart").
LETHAL_EFFECTS = r"kill|die|dead|od|overdose|fatal|lethal|forever"
PARTNER = (
    r"someone|somebody|he|she|they|partner|husband|wife|boyfriend|girlfriend|bf|gf|dad|father|"
    r"mom|mother|stepdad|stepfather|ex|brother|sister|roommate|man|guy"
)

# Each pattern is a line of token regexes (fullmatch on the lower-cased
# token), written for spaCy's tokenizer: "don't" is "do n't", "dont" is
# "do nt", "gonna" is "gon na", "i'm" is "i 'm", "cannot" is "can not",
# "self-harm" is "self - harm" (a word the tokenizer never yields is no use in a list:
# tests/test_crisis_patterns.py has a phrase for every word of every line, caught by that
# line alone). A token written `x?` is optional; `*` stands for up to two other tokens.
PATTERNS: Dict[str, Tuple[str, List[str]]] = {
    "kill_self": (STATEMENT, [
        f"({KILL}) ({SELF})",
        f"({KILL}) my self",
        r"kms|unalive|unalived|unaliving|sewerslide",
        r"k m s",
        r"sewer (slide|sliding|slided)",
        r"(take|taking|took|end|ending) my (own)? (life|lyfe|lif)",
        r"(take|taking|took|end|ending|ended|endin) my own? life",
        r"(end|ending|endin) it all",
        r"(i|me|like) (end|ending) it",
        r"ending it (seems|is|feels|sounds)",
        f"(use|using|used) (it|this|that|a|the|my)? (gun|knife|pills|rope|blade)? on ({SELF})",
        # ("me va a matar", "vas a matarme": someone else will, an idiom as often as not: the classifier's)
        r"(quiero|voy) (a)? (matarme|suicidarme|quitarme|morirme)",
        r"quiero morir",
        r"se (va|van) (a)? (matar|suicidar)",
        r"(va|van) (a)? (matarse|suicidarse)",
        r"(quitarme|quitar) la vida",
        r"me (voy|quiero) (a)? (matar|suicidar)",  # not "me voy a morir de risa"
        r"no (aguanto|puedo|soporto) (más|mas)? * me voy a morir",
        # Portuguese, French, German, Italian: the explicit wording only (the classifier reads the rest)
        r"(quero|vou|em|de|pra|para) me (matar|suicidar)",  # not "vai me matar": someone will, an idiom
        r"(veux|vais) me (tuer|suicider)",
        r"(will|werde|möchte|moechte) mich (umbringen|töten|toeten)",
        r"(uccidermi|ammazzarmi|suicidarmi)",
        r"togliermi la vita",
        r"(end|ending) * it (all|tonight|today|now|forever)",
        r"(want|wanna|going|gon|planning|plan|ready) (to|na)? (end|ending) it",
        # an urge heard from inside ("my brain keeps telling me to end it"): not "my friend told me to"
        r"(brain|head|mind|voice|voices|thoughts) (keeps|keep|kept|is|was)? (telling|tells|told|saying|says) (me)? (to)? (just)? (end|ending) (it|things|everything)",
        r"(end|ending) everything",
        f"(do|doing|did|done) away with ({SELF})",
        f"(put|putting) an end to ({SELF})",
        r"(put|putting) an end to my (own)? life",
        f"(shoot|shot|hang|hanging|hung|drown|poison|stab|suffocate|gas) ({SELF})",
        r"(slit|slitting|cut|cutting) my (wrists|wrist|throat)",
        r"(jump|jumping|jumped) (off|from|in) * (bridge|building|roof|cliff|front|tracks|train|window)",
        r"(drive|driving|crash|crashing) my car (into|off)",
        r"(standing|sitting) (on|at) (the|a) (roof|bridge|ledge|edge)",
        r"(rope|noose|gun) (is|ready)",
        r"(have|got|bought) (the|a) (rope|noose)",
    ]),
    # "im actively suicidal", "i'm feeling kinda suicidal": the visitor's own state, now (a mention
    # after a condition or a reporting verb: CONDITIONAL_STATEMENTS)
    "suicidal_now": (STATEMENT, [
        f"i ('m|m|am) ({NOW_ADVERBS})? ({NOW_ADVERBS})? ({SUICIDAL})",
        f"i ('m|m|am)? (feel|feeling) ({NOW_ADVERBS})? ({SUICIDAL})",
    ]),
    "want_to_die": (STATEMENT, [
        f"({WANT}) (to|na)? ({DIE})",
        f"(want|wanna) (to)? be ({DIE})",
        r"(wish|wished|hope) i (was|were|had|would|could|'d) * (dead|die|died|gone|disappear|never)",
        r"better off (dead|gone)",
        r"better off without me",
        r"better off if i (was|were|'m|m|am|died|disappeared) (gone|dead|not)?",
        r"(better|happier|easier) * without me",
        r"(no|nothing) (reason|point|purpose) (to|in|for) (live|living|life|going|me|being|keep|keeping|stay|staying)",
        r"what (is|'s|s)? the point (of|in) (living|life|going|being|anything|trying)",
        r"(nothing|noone|nobody) (left)? to live for",
        r"why (keep|bother|continue|go) (on)? (breathing|living|existing)",
        r"(nt|n't|no|not) (have|got)? (anything|anyone|anybody|reason|reasons) (left)? to live for",
        r"(nt|n't|no|not|never) (want|wanna|wish) (to)? (live|exist)",
        r"(nt|n't|no|not|never) (want|wanna|wish) (to)? continue (living|on|anymore|existing|life|like)",
        r"(nt|n't|no|not|never) (want|wanna|wish) (to)? be (alive|here|around|living|awake|anymore)",
        r"(nt|n't|no|not|never) (want|wanna|wish) (to)? wake up",
        r"(nt|n't|no|not|never) (want|wanna|wish) (to)? (keep|go|stay) (living|going|on|alive|here)",
        r"(nt|n't|not|no) (see|find|have) (a|any)? (reason|point) (to|in) (live|living|keep|go|be)",
        r"(no|nt|n't|not) * way out",
        r"rather (be|die) (dead|gone)?",
        r"(not|nt|n't) (going|gon) (to|na) be (around|here|alive)",
        r"(ca|can) (nt|n't|not)? (go|keep|carry) on",
        r"(ca|can) (nt|n't) (do|take) (this|it) (anymore|any)",
        r"(done|finished|tired|sick) (with|of) (life|living|existing)",
        r"(done|finished|tired|sick) (with|of) being alive",
        r"life (is|'s) (nt|n't|not)? (worth|pointless|meaningless)",
        r"(not|nt|n't) worth living",
        r"(sleep|sleeping) and never wake up",
        r"never (wake|woke) up (again)?",
        r"(wo|will) (nt|n't|not) (be|being) (around|here|alive)",
        r"final (message|goodbye|note|letter|words)",
        r"last (goodbye|words)",
        r"(is|be|'s) my last (message|note|letter)",  # not "in my last message"
        r"this (is|'s|will) (be)? the last (message|note|letter)",  # not "that's the last message i sent"
        r"(consider|call) this my last",
        r"(writing|wrote|written|left|leaving) (my|a)? last (note|letter|message)",
        r"last (note|letter|notes|letters) (to|for) (my|everyone|everybody|the|all)",
        r"last (message|note) * (bye|goodbye)",
        r"last (message|note|letter|words) from me",
        r"(goodbye|suicide) (note|notes|letter|letters)",
        r"(saying|say) goodbye to (everyone|everybody|my|the|all)",
        r"(nobody|noone) (would|will|'d) (miss|care|notice)",
        r"no one (would|will|'d) (miss|care|notice)",
        r"burden (to|on|for) (everyone|everybody|my|all|the|others|people)",
        r"(want|wanna|need) (the|all|it|this|everything) (pain)? (to)? (all)? (stop|end) (for|forever|permanently)",
        r"(want|wanna|need) it (all)? to (end|stop)",
        r"(ways|way|how) to die",
        r"(ways|way|how) to kill (me|myself|oneself|yourself|urself|ourselves)",  # not "how to kill time"
        r"(want|wanna) to disappear forever",
        r"no (quiero|puedo) (vivir|seguir|despertar|más|mas)",
        r"(ganas|deseo) de (morir|morirme|desaparecer)",
        r"(ganas|deseo) de no (despertar|vivir|existir|seguir)",
        r"me quiero (morir|desaparecer)",
        r"no (tengo|tiene|tienes|hay) (más|mas)? (ganas|razón|razon|razones|motivo|motivos) (de|para) vivir",
        r"nada (por|para) (lo)? (que|qué) vivir",
        r"quero morrer",
        r"(não|nao) quero (mais)? viver",
        r"(veux|voudrais) mourir",
        r"envie de mourir",
        r"(veux|peux) plus vivre",
        r"(will|möchte|moechte) (nicht|nich) mehr leben",
        r"(will|möchte|moechte) sterben",
        r"voglio morire",
        r"non voglio (più|piu) vivere",
        r"voglio farla finita",
        r"do something (stupid|drastic)",
        f"(do|doing) something to ({SELF})",
        r"(give|giving) (away)? (all)? my (stuff|things|belongings)",
    ]),
    "self_harm": (STATEMENT, [
        f"({HURT}) ({SELF})",
        f"({HURT}) my self",
        f"({HURT}) my (arms|arm|legs|leg|wrists|wrist|skin|body|thighs)",
        r"(self|slef) -? (harming|harmed|injuring)",
        r"selfharming",
        r"(started|start|been|keep|keeps) (self) -? (harm|harming)",
        r"(relapsed|relapsing|relapse|started|back) (into|to|with)? (cutting|self|hurting|harming)",
        r"(cutting|cut|hurting|harming) (myself)? again",
        r"(hacerme|haciendome|haciéndome) (daño|dano)",
        r"me (hago|corto) (daño|dano)?",
    ]),
    "overdose": (STATEMENT, [
        f"(took|taken|swallowed|ate|downed|chugged|snorted|sprayed|used) * (bunch|lot|handful|many|whole|bottle|box|all|every|entire|rest) * ({SUPPLY})",
        f"(took|taken|swallowed|ate|downed|chugged) every last (one)? (of)? (my|the|them|these|those)? ({SUPPLY}|{PILLS})",
        # a month's or a week's supply taken ("took my whole month of seroquel"; "took a full week of vacation" is none)
        r"(swallowed|ate|downed|chugged) (my|the|a)? (whole|entire|full) (month|months|week|weeks) (of|worth)",
        r"(took|taken) my (whole|entire|full) (month|months|week|weeks) (of|worth)",
        r"(took|taken|swallowed|ate|downed|chugged) * (most|half) (of)? * (bottle|bottles|box|boxes|supply|stash)",
        f"(going|gon|planning|plan|about|ready|decided|want|wanna) (to|na)? (take|swallow|down) (the|a)? (all|every|everything|whole|rest|entire|bunch|handful) (of)? (my|the|them|these|those)? ({SUPPLY})",
        f"(saving|saved|stockpiling|stockpiled|hoarding|hoarded|collecting|stocking|stashing|stashed) (up)? (my|the|some|all|extra)? ({SUPPLY}|{PILLS})",
        # every one of a thing taken, with how ("used up every lozenge in the pack in one go"): "took every
        # dose this week" alone is adherence
        r"(took|taken|swallowed|ate|downed|chugged|used) (up)? every (single|last)? (troche|lozenge|pill|tablet|capsule|dose) * * at once",
        r"(took|taken|swallowed|ate|downed|chugged|used) (up)? every (single|last)? (troche|lozenge|pill|tablet|capsule|dose) * * in one (go|sitting|gulp|handful|swallow|shot)",
        # with no supply named, what it is kept for says it: "stockpiling for the end", "hoarding for when i'm ready"
        r"(stockpiling|stockpiled|hoarding|hoarded) (them|it|up)? for (the|when|my|an|one) (end|i|day|night|exit|last|right)",
        # a count asked with what it would do: "how many troches would it take to stop my heart"
        # ("how many troches do i take per session", "how many doses would i need for a month" are dosing)
        f"how many ({SUPPLY}|{PILLS}) (would|will|to|does|do) * * * * ({LETHAL_EFFECTS})",
        f"how many ({SUPPLY}|{PILLS}) (would|will|to|does|do) * * * * (stop|stops) * (heart|breathing)",
        f"how many ({SUPPLY}|{PILLS}) (would|will|to|does|do) * * * * (heart|breathing) (stop|stops)",
        f"how many ({SUPPLY}|{PILLS}) (would|will|to|does|do) * * * * (never|not|nt|n't) wake",
        f"how many ({SUPPLY}|{PILLS}) (would|will|to|does|do) * * * * end (it|things|everything|myself)",
        r"(i|just|'ve|ve|gon) (od|od'd|oded|oding|overdose|overdosed)",
    ]),
    "lethal_amount": (STATEMENT, [
        r"(lethal|lethel|leathal|lethol|fatal|deadly|killing) (dose|doses|dosage|amount|amounts|quantity|level)",
        r"how (much|many) * * (would|will|to|does|do|it) * (kill|die|od|overdose|stop)",
        r"enough (to|that)? (would|will)? (kill|die|od|overdose)",
        r"enough to (not|never) wake",
        r"too (many|much) to survive",
    ]),
    "overdose_mention": (MENTION, [
        r"overdose|overdosed|overdosing",
    ]),
    "danger_now": (STATEMENT, [
        f"({PARTNER}) (is|'s|s|are|was|keeps|keep) (hurting|hitting|beating|choking|strangling|attacking|threatening) me",
        f"({PARTNER}) (is|'s|s|are|keeps|keep)? (going|gon|trying|threatening|threatened|wants) (to|na) (kill|hurt|hit|beat|shoot) me",
        r"(threatening|threatened|trying) to (kill|hurt|shoot) me",
        r"(i|'m|m|am) not safe",
        r"not safe (at|in) (home|my)",
        r"(being|been|getting) (abused|beaten|attacked)",
        r"(going|gon|about) (to|na) (hurt|kill) (someone|somebody|him|her|them|people)",
        f"({PARTNER}) (hit|hits|choked|chokes|strangled|strangles|beat|beats|punched|punches|kicked|kicks|slapped|shoved) me",
        r"(afraid|scared|terrified) (of|for) my (life|safety)",
        # Spanish: a threat reported, a partner's blows ("mi jefe me va a matar" alone is an idiom)
        r"(dijo|dice|amenaza|amenazó|amenazo|jura|juró) (que)? me (va|iba|quiere) (a)? matar",
        r"me (amenaza|amenazó|amenazo) con matarme",
        r"(esposo|marido|novio|pareja|ex|esposa|novia|padrastro|padre|papá) me (va|quiere|iba) (a)? matar",
        r"(marido|namorado|ex|esposa|namorada|companheiro|padrasto) (vai|quer) me matar",
        r"miedo por mi vida",
        r"(esposo|marido|novio|pareja|ex|esposa|novia|padrastro) me (pegó|pego|pega|golpeó|golpeo|golpea|ahorcó|ahorco|ahorca)",
    ]),
    "suicide_mention": (MENTION, [
        f"({SUICIDE})",
        r"(self|slef) -? (harm|injury|hurt)",
        r"selfharm",
        r"(thoughts|thinking|thought|ideation|question|questions|asks|ask|asked) (of|about) (dying|death|ending|killing|taking|hurting|harming|being)",
    ]),
}

NEGATIONS = {"not", "n't", "nt", "never", "no", "nor", "without", "none",
             # Spanish, Portuguese, French, Italian, German ("nicht" and "non" are inside their patterns)
             "nunca", "jamás", "jamas", "não", "nao", "pas", "jamais", "mai", "nie", "niemals"}
# A negation followed by one of these does not negate what follows it:
# "not gonna lie, ...", "not sure I want to live", "don't know if I can go on".
NOT_NEGATING_NEXT = {"sure", "know", "lie", "lying", "think", "care", "even", "really", "only", "okay", "ok", "well", "fine"}
CLAUSE_BREAKS = {",", ";", ".", "!", "?", "but", "and", "so", "because", "cause", "cuz", "though", "although", "however", "yet", ":", "-", "—"}
NEGATION_WINDOW = 5
# The verbs that deny a match they follow ("<match> is not", "has never", "was never", "'s not").
DENYING_VERBS = {"is", "'s", "has", "was", "are"}  # not "would": "ending it all would not be hard"
# ... and what undoes the denial: "killing myself isn't off the table anymore", "isn't enough",
# "isn't scary", "cutting myself isn't helping", "... is not even the worst part".
DENIAL_UNDONE = {"anymore", "enough", "longer", "off", "worst", "even", "scary", "helping", "working", "hard", "bad"}
DENIED_RULES = frozenset({"kill_self", "self_harm"})
# A past the visitor says is behind them clears a statement too ("years ago i overdosed, that's
# behind me"), except these: an intent to kill oneself, a lethal amount asked, danger now.
STATEMENTS_NEVER_RESOLVED = frozenset({"kill_self", "lethal_amount", "danger_now", "suicidal_now"})
# Statements that are a mention when their clause, before them, sets a condition ("what happens if
# i'm suicidal", "every time i feel suicidal", "in case"), reports or weighs them ("my therapist
# thinks i'm suicidal", "i don't think i'm suicidal"): the classifier decides those.
CONDITIONAL_STATEMENTS = frozenset({"suicidal_now"})
CONDITIONS = {
    "if", "whether", "when", "whenever", "once", "unless", "case", "time", "times", "everytime", "anytime",
    "think", "thinks", "thought", "say", "says", "said", "saying", "assume", "assumes", "assumed", "believe",
    "believes", "suspect", "suspects", "worried", "worry", "worries", "wonder", "wondering", "sure", "asked", "asks",
}
# The tokenizer splits "i'm", "im", "i've", "ive", "i'd" and "id" after their "i": that token is the subject.
SUBJECTS = {"i"}
QUESTION_STARTS = {"does", "do", "can", "could", "is", "will", "would", "how", "what", "are", "should", "did", "why", "has", "have"}
QUESTION_PAIRS = {("how", "do"), ("how", "does"), ("do", "you"), ("does", "it"), ("can", "it"), ("what", "if")}
FIRST_PERSON = {"i", "me", "my", "myself", "mine"}
# "I had suicidal thoughts years ago, but that's long behind me": a mention
# of the past that the visitor says is resolved.
AGE_WORDS = r"twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty"
PAST = re.compile(
    r"\b(years? ago|decades? ago|used to|as a (teen|teenager|kid|child)|in the past|"
    rf"when i was (younger|a teen|a kid|in (high )?school|\d+|{AGE_WORDS})|long time ago|in college|"
    r"in my (teens|twenties|20s|thirties|30s)|back in (\d{4}|the day)|in \d{4}|in (high|middle|junior high) school|"
    rf"at (age )?\d\d(?!:| ?[ap]\.?m)|from (about )?(\d\d|{AGE_WORDS}) to (\d\d|{AGE_WORDS}))\b"
)
RESOLVED = re.compile(
    r"\b(behind me|(that'?s|that is|it'?s) (long|all) gone|have ?n[o']?t (since|in|for)|havent (since|in|for)|no longer|not anymore|"
    r"recovered|clean (for|since)|doing (much )?(better|well|fine)|over it|past that|"
    r"(quit|stopped) .{0,30}(years?|months?) ago|have ?n[o']?t (felt|done|thought|been) (like )?(that|it|this)|"
    r"been (well|stable|sober|clean|fine)|sober (for|since)|\d+ years (sober|clean)|proud of|"
    r"have ?n[o']?t (had|felt|done|thought|tried|cut|used|hurt|harmed|self-harmed|relapsed|attempted|touched)\b.{0,60}\b"
    r"(since|in (well )?(over |almost |nearly |about |more than )?(a |[a-z]+ )?(years?|decades?))|"
    r"(not|nothing|none|never) since(?= *($|[.,;!)]))|(that'?s|that is|it'?s|it is|it was|that was) (all )?a long time ago)\b"
)

# An overdose rule's words in a sentence about the routine of a treatment ("took all my meds this
# morning like i'm supposed to", "used the whole supply, when does the next shipment come"): a
# mention, left to the classifier, which reads the whole sentence (a check-in where it is unsure).
ROUTINE_CLEARED = frozenset({"overdose"})
ROUTINE = re.compile(
    r"\b(as (prescribed|directed|instructed|scheduled)|(like|as) (usual|always|normal)|(like|as) (i'?m|i am) supposed to|"
    r"on schedule|refills?|re-?order|shipments?|deliver(y|ies)|next (box|order|batch|package|month)|"
    r"per (day|week|month|session)|on ((my|the|a) )?(vacation|holiday|flight)|in my (bag|luggage|suitcase)|"
    r"(ran|run|running) out(?! of (reasons|time|hope|options|everything|energy|strength|will|ways|patience))|"
    r"for (\S+ ){0,2}(session|appointment)|order more|"
    r"(regular|usual|normal|daily|morning|evening|nightly|bedtime|everyday|other) (meds|medications|pills|tablets))\b"
)
# ... unless the same sentence says it was meant ("took all my pills at once, need more").
MEANT = re.compile(
    r"\b(at once|at the same time|together|in one go|on purpose|intentionally|deliberately|to die|not wake|"
    r"never wake|not supposed|more than|times what|nobody finds|no one finds|forever)\b"
)
# An overdose rule's words in a sentence that says it was a mistake ("I misread the label and took 2
# whole tablets instead of half", "took my dose twice by accident"): an accidental extra dose, urgent
# and not a crisis: a mention the classifier reads; unless the sentence also says it was meant. ("instead
# of" says nothing either way: "saving my troches instead of taking them" is stockpiling.)
ACCIDENTAL = re.compile(
    r"\b(by (mistake|accident)|accidentally|mistakenly|misread|misreading|mixed up|mix-up|"
    r"forgot (i|that i) (already|had))\b"
)
INTENDED = re.compile(
    r"\b(on purpose|intentionally|deliberately|to die|not wake|never wake|meant (it|to)|"
    r"(not|no|was ?n[o']?t|is ?n[o']?t) (by |an? )?(accident|mistake))\b"
)
# Only what was taken, or a count asked, can be routine: a plan to take it all ("going to take all my
# troches on my trip") never is, and stockpiling ("saving my meds from every refill") is only when it
# is kept for a session ("saving this week's dose for saturday's session").
ROUTINE_TAKEN = frozenset({"took", "taken", "swallowed", "ate", "downed", "chugged", "snorted", "sprayed", "used", "how"})
STOCKPILING = frozenset({"saving", "saved", "stockpiling", "stockpiled", "hoarding", "hoarded", "collecting",
                         "stocking", "stashing", "stashed"})
KEPT_FOR_A_SESSION = re.compile(r"\bfor (\S+ ){0,2}(session|appointment)\b")
SENTENCE_ENDS = frozenset(".!?")

# "the gun is ...", "rope is ...": means at hand, unless its sentence says it is put away ("my
# husband's gun is locked in a safe at his brother's": a safety answer, a mention the classifier
# reads) or the rope is a skipping rope.
MEANS_WORDS = frozenset({"gun", "rope", "noose"})
PUT_AWAY = re.compile(
    r"\b(locked (up|away|in|inside)|lock ?box|(in|into|inside) (a|the|his|her|my|our|their) (gun )?safe|unloaded|"
    r"trigger lock|cable lock|in storage|got rid|gave (it|them) away)\b"
)
SKIPPING = frozenset({"jump", "jumping", "skip", "skipping"})

# A questionnaire's item copied with its answer: "thoughts that you would be better off dead: not
# at all", "self-harm - never", "...better off dead or of hurting yourself = 0": a form answer, a
# mention the classifier reads. The answer ends the match's sentence, after a colon, a dash or an
# equals sign, with at most a few words of the item between, none of them the visitor's own.
ANSWERED_NO = re.compile(
    r"^(?P<item>[^.!?]{0,60}?)(:|(?:^|\s)[=\-\u2013\u2014]+)\s*(not at all|no|never|nope|none|0|zero)\s*[.,;!)]*\s*$"
)
# "how many people does he kill", "how many brain cells does it kill": a count of lives or cells,
# not of doses.
COUNTED_LIVES = frozenset({"people", "persons", "men", "women", "guys", "kids", "children", "enemies", "zombies",
                           "monsters", "bosses", "players", "characters", "soldiers", "villains", "animals", "birds",
                           "bugs", "weeds", "cells", "neurons"})
# "i'd rather die than fill out another form": a hyperbole, a mention the classifier reads, unless what
# it would rather die than do is go on living so ("rather be dead than keep doing this to him").
RATHER_THAN_LIVING = re.compile(
    r"^than (to )?(keep|go on|going on|live|living|continue|feel|feeling|be (like this|a burden|alive|here)|"
    r"spend another|wake up|face (another|this)|deal with (this|it)|exist|stay|put (them|him|her|my)|do (this|that) to)\b"
)
# "this week has been trying to kill me", "the heat is trying to kill me": no one is (unless a person
# is named too: "this week my ex has been trying to kill me").
PEOPLE = frozenset(PARTNER.split("|")) | {"boss", "son", "daughter", "neighbor", "neighbour", "uncle", "cousin", "i"}
IDIOM_SUBJECTS = frozenset({"week", "day", "month", "year", "job", "work", "shift", "heat", "weather", "cold",
                            "humidity", "traffic", "commute", "semester", "exam", "exams", "homework", "allergies",
                            "back", "knees", "diet", "workout", "deadline", "project", "paperwork", "bills", "taxes",
                            "insurance", "schedule", "hangover", "migraine", "flu"})


@dataclass(frozen=True)
class CrisisMatch:
    rule: str
    kind: str
    text: str


def _token_specs(line: str) -> List[dict]:
    specs: List[dict] = []
    for word in line.split():
        if word == "*":
            specs.extend([{"OP": "?"}, {"OP": "?"}])
            continue
        optional = word.endswith("?") and len(word) > 1 and not word.endswith("\\?")
        if optional:
            word = word[:-1]
        spec: dict = {"LOWER": {"REGEX": f"^(?:{word})$"}}
        if optional:
            spec["OP"] = "?"
        specs.append(spec)
    return specs


def build_matcher(vocab: Vocab) -> Matcher:
    matcher = Matcher(vocab)
    for rule, (_kind, lines) in PATTERNS.items():
        matcher.add(rule, [_token_specs(line) for line in lines])
    return matcher


def _clause_before(doc: Doc, start: int) -> Sequence:
    tokens = []
    i = start - 1
    while i >= 0 and len(tokens) < NEGATION_WINDOW:
        tok = doc[i]
        if tok.lower_ in CLAUSE_BREAKS:
            break
        tokens.append(tok)
        i -= 1
    return list(reversed(tokens))


def _routine(first_word: str, sentence: str) -> bool:
    if MEANT.search(sentence):
        return False
    if first_word in STOCKPILING:
        return bool(KEPT_FOR_A_SESSION.search(sentence))
    return first_word in ROUTINE_TAKEN and bool(ROUTINE.search(sentence))


def _accidental(sentence: str) -> bool:
    return bool(ACCIDENTAL.search(sentence)) and not INTENDED.search(sentence)


def _ends_sentence(tok: Any) -> bool:
    return "\n" in tok.text or (tok.is_punct and tok.text[-1] in SENTENCE_ENDS)


def _sentence(doc: Doc, start: int, end: int) -> str:
    """The lower-cased text of the sentence that holds the tokens start..end."""
    first, last = start, end
    while first > 0 and not _ends_sentence(doc[first - 1]):
        first -= 1
    while last < len(doc) and not _ends_sentence(doc[last]):
        last += 1
    return doc[first:last].text.lower()


def _denied_after(doc: Doc, start: int, end: int) -> bool:
    """The match is the subject its clause denies: "hurting myself has never been on the table",
    "killing myself isn't an option" (a mention: the classifier reads the rest, "isn't off the
    table anymore")."""
    if any(t.lower_ in SUBJECTS for t in _clause_before(doc, start)):
        return False
    after = [t.lower_ for t in doc[end:end + 2]]
    if not (len(after) == 2 and after[0] in DENYING_VERBS and after[1] in NEGATIONS):
        return False
    rest = _sentence(doc, end, end).split()
    return not DENIAL_UNDONE.intersection(rest)


def _not_a_risk(rule: str, doc: Doc, start: int) -> bool:
    """A match whose words name no risk here: a skipping rope, a count of people in a film, a week
    "trying to kill me" (the constants above)."""
    first = doc[start].lower_
    if rule == "kill_self" and first in MEANS_WORDS:
        return start > 0 and doc[start - 1].lower_ in SKIPPING
    if rule == "lethal_amount" and first == "how":
        return start + 2 < len(doc) and doc[start + 2].lower_ in COUNTED_LIVES
    if rule == "danger_now" and first in {"trying", "threatening", "threatened"}:
        before = {t.lower_ for t in _clause_before(doc, start)}
        return bool(before & IDIOM_SUBJECTS) and not before & PEOPLE
    return False


def _hyperbole(rule: str, doc: Doc, start: int, end: int) -> bool:
    if rule != "want_to_die" or doc[start].lower_ != "rather":
        return False
    if end < len(doc) and doc[end].lower_ in {"dead", "gone"}:  # the pattern's optional last word, left out of the match
        end += 1
    if end >= len(doc) or doc[end].lower_ != "than":
        return False
    return not RATHER_THAN_LIVING.search(doc[end:end + 6].text.lower())


def _answered_no(doc: Doc, end: int) -> bool:
    """The match is a questionnaire's item whose answer, after it, is no (``ANSWERED_NO``)."""
    last = end
    while last < len(doc) and not _ends_sentence(doc[last]):
        last += 1
    answered = ANSWERED_NO.match(doc[end:last].text.lower())
    return answered is not None and not FIRST_PERSON.intersection(re.findall(r"[a-z']+", answered["item"]))


def _put_away(rule: str, doc: Doc, start: int, sentence: str) -> bool:
    return rule == "kill_self" and doc[start].lower_ in MEANS_WORDS and bool(PUT_AWAY.search(sentence))


def _is_negated(doc: Doc, start: int) -> bool:
    """A negation in the match's clause negates it, unless the word after it says it does
    not ("not gonna lie", "not sure") or a first-person subject stands between the two or
    starts the match: the negation then belongs to another clause ("no one knows i want to die",
    "i'm not okay i want to end it", "no matter what i want to die", "nobody knows i'm suicidal")."""
    before = _clause_before(doc, start)
    for idx, tok in enumerate(before):
        if tok.lower_ not in NEGATIONS:
            continue
        after = list(before[idx + 1:]) + [doc[start]]  # up to the match's first word
        if after[0].lower_ in NOT_NEGATING_NEXT:
            continue
        if any(t.lower_ in SUBJECTS for t in after):
            continue  # a subject, the match's own "i" included, starts another clause ("no one knows i'm suicidal")
        return True
    return False


# Phones and Macs type a curly apostrophe ("i’m", "don’t"), some keyboards a modifier letter or a
# backtick ("donʼt", "don`t"): the tokenizer splits only some of them like the straight one, and the
# patterns, negations and past words are written with the straight one.
def plain_apostrophes(doc: Doc, tokenizer: Any) -> Doc:
    """The doc's text with straight apostrophes, tokenized again (the doc itself when it has none)."""
    text = doc.text.translate(STRAIGHT_APOSTROPHES)
    return doc if text == doc.text else tokenizer(text)


def _is_question(doc: Doc) -> bool:
    words = [t.lower_ for t in doc if not t.is_punct]
    return "?" in doc.text or bool(QUESTION_STARTS.intersection(words[:1])) or any(
        (x, y) in QUESTION_PAIRS for x, y in zip(words, words[1:])
    )


def _about_the_visitor(doc: Doc) -> bool:
    return any(t.lower_ in FIRST_PERSON for t in doc)


def _past_and_resolved(doc: Doc) -> bool:
    text = doc.text.lower()
    return bool(PAST.search(text) and RESOLVED.search(text))


class CrisisDetector:
    """Finds crisis language in spaCy docs that share one vocab."""

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab
        self.tokenizer = spacy.blank("en", vocab=vocab).tokenizer  # the English rules the model's docs have
        self.matcher = build_matcher(vocab)
        self.precheck = MatcherPrecheck(self.matcher, PATTERNS)

    def _matches(self, doc: Doc) -> List[Tuple[int, int, int]]:
        found = self.matcher(doc) if self.precheck.may_match(doc) else []
        return sorted(found, key=lambda m: m[1])

    def find(self, doc: Doc) -> Optional[CrisisMatch]:
        """The first match that stands (a statement before any mention): not negated in its
        clause, not a mere mention in a general question, not a past the visitor says is
        behind them."""
        doc = plain_apostrophes(doc, self.tokenizer)
        matches = self._matches(doc)
        if not matches:
            return None
        general_question = _is_question(doc) and not _about_the_visitor(doc)
        resolved = _past_and_resolved(doc)
        mention: Optional[CrisisMatch] = None
        # a statement inside a mention, or right after it ("thoughts of ending my life", "the question
        # about being better off dead"), is that mention
        mention_spans = [(s, e) for m, s, e in matches if PATTERNS[self.vocab.strings[m]][0] == MENTION]
        for match_id, start, end in matches:
            rule = self.vocab.strings[match_id]
            kind = PATTERNS[rule][0]
            if kind == STATEMENT and any(s <= start <= e for s, e in mention_spans):
                kind = MENTION
            if rule in CONDITIONAL_STATEMENTS and any(t.lower_ in CONDITIONS for t in _clause_before(doc, start)):
                kind = MENTION
            sentence = _sentence(doc, start, end)
            if rule in ROUTINE_CLEARED and (_routine(doc[start].lower_, sentence) or _accidental(sentence)):
                kind = MENTION
            if rule in DENIED_RULES and _denied_after(doc, start, end):
                kind = MENTION
            if _put_away(rule, doc, start, sentence) or _hyperbole(rule, doc, start, end) or _answered_no(doc, end):
                kind = MENTION
            if _not_a_risk(rule, doc, start):
                continue
            if _is_negated(doc, start):
                continue
            if kind == MENTION and general_question:
                continue
            if resolved and (kind == MENTION or rule not in STATEMENTS_NEVER_RESOLVED):
                continue
            if kind == STATEMENT:
                return CrisisMatch(rule=rule, kind=kind, text=doc[start:end].text)
            mention = mention or CrisisMatch(rule=rule, kind=kind, text=doc[start:end].text)
        return mention

    def mentions(self, doc: Doc) -> bool:
        """Whether any pattern matches at all, cleared or not (the message is about suicide,
        overdose or self-harm: an informational answer gets the 988 footer)."""
        return bool(self._matches(plain_apostrophes(doc, self.tokenizer)))

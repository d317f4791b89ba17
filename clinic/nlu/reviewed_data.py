"""Training data from the corrections staff accept in the console (clinic.console.corrections).

Where an accepted correction goes (all under the training data folder, ``data/`` by default,
``TRAINING_DATA_DIR``; Rasa reads ``data/`` recursively and the Makefile's TRAINING_INPUT
lists every ``*.yml`` under it, so the next ``make train`` uses them):

- an FAQ topic or another intent: ``reviewed/<intent>.yml`` (``faq/pricing`` ->
  ``reviewed/faq_pricing.yml``), Rasa NLU data (``version: "3.1"``, ``nlu:``, the examples
  under the intent);
- ``crisis`` or ``urgent_medical``: ``safety/reviewed.yml``, Rasa NLU data of those intents
  with the category ``staff_reviewed`` (the safety layer trains on every example of the risk
  intents: ``clinic/nlu/safety_layer.py``);
- "not a crisis" (and any other label given to a message the assistant took over as a crisis
  or urgent problem): ``safety/hard_negatives_reviewed.yml``, a hard negative of the kind
  ``staff_reviewed`` (``clinic.safety.bank`` reads ``hard_negatives*.yml``).

No personal data, as far as ``personal_data`` sees: it refuses a text that still holds an e-mail
address, a phone number, a full date (a date of birth), a street address, or a name after "my name
is" / "I'm" (the person accepting edits it out first); it finds these only, and the person accepting
is responsible for anything else that could identify someone (the texts are kept in clear text). No
duplicate: a text already an example of the same intent (or kind) anywhere in the training
data is skipped; one that is an example of another intent is refused (Rasa's validation fails
on an example given two intents). The safety banks never contradict themselves: a hard negative
whose text is a crisis or urgent_medical example (``data/safety/``, ``data/nlu/``) is refused, and
so is a crisis or urgent_medical example whose text is a hard negative. Nor a text of an
evaluation set (``tests/nlu/*.yml``, ``tests/safety/*.yml``: held out of training,
``scripts/heldout_overlap.py``), when the writer is given them (the console does). Two accepts at once are safe: the writes hold a file lock
(``.reviewed.lock`` in the folder, and a lock per process) and re-read the files under it;
each file is replaced whole (written beside it, then renamed).
"""

import fcntl
import os
import re
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import yaml

from clinic.rules.answer_parsing import contains_email, contains_phone
from clinic.rules.visible_text import visible_text
from clinic.safety.bank import CRISIS, RISK_INTENTS, URGENT_MEDICAL, file_examples, normalised, read_yaml

NOT_CRISIS = "not_crisis"
NEW_TOPIC = "new_topic"
REVIEWED_CATEGORY = "staff_reviewed"  # the category (risk) or kind (hard negative) of what staff reviewed
REVIEWED_DIR = "reviewed"
SAFETY_FILE = Path("safety") / "reviewed.yml"
NEGATIVES_FILE = Path("safety") / "hard_negatives_reviewed.yml"
LOCK_FILE = ".reviewed.lock"
PROJECT = Path(__file__).resolve().parents[2]
EVALUATION_SETS = ("tests/nlu/*.yml", "tests/safety/*.yml")  # held out of training (scripts/heldout_overlap.py)
MAX_CHARS = 500
_INTENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}(/[a-z0-9_]{1,64})?$")
_HEADER = ("# Written by the staff console from corrections a person reviewed and accepted "
           "(clinic/nlu/reviewed_data.py).\n# Edit or remove examples freely; the console never writes one twice.\n")

# "my name is Dana", "I'm Dana", "this is Dana Reyes": the words after these cues.
_NAME_ALWAYS = re.compile(r"\b(?:my name(?:'s| is)|call me|name here is)\s+([A-Za-z][\w'-]*)", re.IGNORECASE)
_NAME_CAPITALISED = re.compile(r"(?i:\b(?:i'm|i’m|i am|im|this is|it's|it’s))\s+([A-Z][a-z'-]+)")
# Words that follow "I'm" capitalised without being a name (a sentence in Title Case says
# "I'm Pregnant": those are not names, and a Title Case text is checked with "my name is" only).
_NOT_NAMES = frozenset({
    "a", "an", "the", "not", "so", "very", "just", "still", "also", "really", "currently", "here", "in", "on",
    "on", "at", "from", "with", "over", "under", "interested", "looking", "wondering", "curious", "asking",
    "trying", "thinking", "worried", "scared", "afraid", "pregnant", "breastfeeding", "taking", "on", "sorry",
    "sure", "ok", "okay", "fine", "good", "new", "ready", "able", "allowed", "eligible", "depressed", "anxious",
    "tired", "done", "going", "getting", "having", "feeling", "struggling", "calling", "writing", "back",
})


# A full date (a date of birth, most often): 03/14/1988, 3-14-88, 1988-03-14, March 14, 1988.
_MONTHS = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*"
_DATE = re.compile(r"\b(?:\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})|(?:19|20)\d{2}[/.-]\d{1,2}[/.-]\d{1,2}"
                   rf"|{_MONTHS}\.? \d{{1,2}}(?:st|nd|rd|th)?,? (?:19|20)\d{{2}}|\d{{1,2}} {_MONTHS},? (?:19|20)\d{{2}})\b",
                   re.IGNORECASE)
# A street address: a house number, one to three words, a street type ("42 elm street", "1200 NW Main St").
# Words that are also ordinary words in a question ("drive", "way", "place", "court") are left out.
_ADDRESS = re.compile(r"\b\d{1,6}\s+(?:[a-z][a-z'.-]*\s+){1,3}(?:street|st|avenue|ave|road|rd|lane|ln|boulevard|blvd"
                      r"|terrace|highway|hwy|parkway|pkwy)\b\.?", re.IGNORECASE)


def personal_data(text: str) -> Optional[str]:
    """What personal data ``text`` still holds ("an e-mail address", "a phone number", "a full date", "a
    street address", "a name"), or None. It finds these only: anything else that could identify
    someone is for the person accepting to edit out."""
    if contains_email(text):
        return "an e-mail address"
    if _DATE.search(text):
        return "a full date"
    if contains_phone(text):
        return "a phone number"
    if _ADDRESS.search(text):
        return "a street address"
    if _NAME_ALWAYS.search(text):
        return "a name"
    words = re.findall(r"[A-Za-z][\w'’-]*", text)
    title_case = len(words) >= 3 and sum(w[0].isupper() for w in words) > len(words) / 2
    if not title_case:
        for match in _NAME_CAPITALISED.finditer(text):
            if match.group(1).lower() not in _NOT_NAMES:
                return "a name"
    return None


class RefusedExample(ValueError):
    """A text that cannot be written as training data (the message says why, never the text)."""


def clean_text(text: str) -> str:
    """The text as one training example: one line, spaces collapsed, no entity brackets (Rasa reads
    ``[word](entity)`` as an annotation), no control or format characters (``visible_text``: YAML
    cannot hold them; a newline or tab becomes a space). RefusedExample when empty, too long,
    personal data, or in Rasa's ``/intent`` syntax."""
    line = " ".join(visible_text(text or "").replace("[", "(").replace("]", ")").split())
    if not line:
        raise RefusedExample("the text is empty")
    if len(line) > MAX_CHARS:
        raise RefusedExample(f"the text is longer than {MAX_CHARS} characters: shorten it to the question")
    if line.startswith("/"):
        raise RefusedExample("a text starting with '/' is read by Rasa as an intent")
    found = personal_data(line)
    if found:
        raise RefusedExample(f"the text still holds {found}: edit it out before accepting")
    return line


def evaluation_files(project: Path = PROJECT) -> List[Path]:
    """The evaluation sets: the NLU's held-out and validation sets, the safety layer's banks."""
    return [p for pattern in EVALUATION_SETS for p in sorted(Path(project).glob(pattern))]


def file_for(label: str) -> Path:
    """Where examples of ``label`` go, relative to the training data folder."""
    if label in RISK_INTENTS:
        return SAFETY_FILE
    if label == NOT_CRISIS:
        return NEGATIVES_FILE
    if not _INTENT_NAME.match(label or ""):
        raise RefusedExample(f"{label!r} is no intent name")
    return Path(REVIEWED_DIR) / (label.replace("/", "_") + ".yml")


@dataclass
class Written:
    """What one ``add`` did: texts written, skipped as already there, written as hard negatives
    besides, and the files changed."""

    written: List[str] = field(default_factory=list)
    negatives: List[str] = field(default_factory=list)
    duplicates: List[str] = field(default_factory=list)
    files: List[str] = field(default_factory=list)


_process_lock = threading.Lock()


class ReviewedData:
    """The reviewed training data under ``root`` (the training data folder); a text of one of the
    ``evaluation`` files (``evaluation_files()``: the console passes the project's) is refused."""

    def __init__(self, root: Path, evaluation: Sequence[Path] = ()) -> None:
        self.root = Path(root)
        self.evaluation = [Path(p) for p in evaluation]

    def _check_unseen(self, lines: Sequence[str]) -> None:
        """RefusedExample when a text is in an evaluation set (training on it would spoil the held-out
        figures, and the overlap check in CI would fail)."""
        wanted = {normalised(line) for line in lines}
        for path in self.evaluation:
            if wanted & {normalised(t) for t in file_examples(path)}:
                name = path.relative_to(PROJECT) if path.is_relative_to(PROJECT) else path.name
                raise RefusedExample(f"that text is in an evaluation set ({name}), which must stay unseen by "
                                     "training: reword it, or reject it")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with _process_lock, open(self.root / LOCK_FILE, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # --- reading ------------------------------------------------------------------

    def known_examples(self) -> Tuple[Dict[str, str], Dict[str, str]]:
        """Every example of the training data: normalised text -> intent, and normalised text ->
        hard negative kind."""
        intents: Dict[str, str] = {}
        negatives: Dict[str, str] = {}
        for path in sorted(self.root.rglob("*.yml")):
            try:
                doc = read_yaml(path)
            except yaml.YAMLError:
                continue
            if not isinstance(doc, dict):
                continue
            for block in doc.get("nlu") or []:
                if isinstance(block, dict) and "intent" in block:
                    for text in _lines(block.get("examples")):
                        intents.setdefault(normalised(text), str(block["intent"]))
            for block in doc.get("safety_negatives") or []:
                if isinstance(block, dict):
                    for text in _lines(block.get("examples")):
                        negatives.setdefault(normalised(text), str(block.get("kind")))
        return intents, negatives

    def examples_in(self, relative: Path) -> Dict[str, List[str]]:
        """One reviewed file's blocks: intent (or kind) -> its examples, in order."""
        path = self.root / relative
        if not path.exists():
            return {}
        doc = read_yaml(path)
        blocks: Dict[str, List[str]] = {}
        for block in doc.get("nlu") or []:
            blocks.setdefault(str(block["intent"]), []).extend(_lines(block.get("examples")))
        for block in doc.get("safety_negatives") or []:
            blocks.setdefault(str(block["kind"]), []).extend(_lines(block.get("examples")))
        return blocks

    def count(self) -> Dict[str, int]:
        """Reviewed examples per file (relative path) now on disk."""
        files = sorted((self.root / REVIEWED_DIR).glob("*.yml")) + [self.root / SAFETY_FILE, self.root / NEGATIVES_FILE]
        found = {}
        for path in files:
            if path.exists():
                found[str(path.relative_to(self.root))] = sum(len(v) for v in self.examples_in(path.relative_to(self.root)).values())
        return found

    # --- writing ------------------------------------------------------------------

    def check(self, label: str, texts: Sequence[str], also_negative: Union[bool, Sequence[bool]] = False) -> None:
        """RefusedExample when ``add`` would refuse these texts as the files are now (nothing is
        written; ``add`` checks again under the lock)."""
        self.add(label, texts, also_negative, write=False)

    def add(self, label: str, texts: Sequence[str], also_negative: Union[bool, Sequence[bool]] = False,
            write: bool = True) -> Written:
        """Writes ``texts`` (each checked by ``clean_text``) as examples of ``label`` (module
        docstring); ``also_negative`` (for all texts, or one flag per text): as hard negatives too (a
        message the assistant took over as a crisis that was none). All or nothing: a refused text
        raises RefusedExample and nothing is written. ``write`` False: the checks only (``check``)."""
        if label == NEW_TOPIC:
            raise RefusedExample("a new topic has no intent yet: nothing to write until it is made")
        lines = [clean_text(t) for t in texts]
        self._check_unseen(lines)
        flags = [also_negative] * len(lines) if isinstance(also_negative, bool) else [bool(f) for f in also_negative]
        if len(flags) != len(lines):
            raise ValueError("also_negative: one flag per text")
        targets = [(file_for(label), label if label != NOT_CRISIS else REVIEWED_CATEGORY, lines)]
        if label not in RISK_INTENTS and label != NOT_CRISIS and any(flags):
            targets.append((NEGATIVES_FILE, REVIEWED_CATEGORY, [t for t, f in zip(lines, flags) if f]))
        result = Written()
        with self._locked():
            intents, negatives = self.known_examples()
            plan = []  # every text checked before any file is written (all or nothing)
            for relative, key, chosen in targets:
                negative = relative == NEGATIVES_FILE
                known = negatives if negative else intents
                new: List[str] = []
                for line in chosen:
                    norm = normalised(line)
                    if negative and intents.get(norm) in RISK_INTENTS:
                        raise RefusedExample(f"that text is a training example of {intents[norm]!r}: it cannot be "
                                             "taught as not a crisis (change it in data/safety/ first, or edit it)")
                    if not negative and key in RISK_INTENTS and norm in negatives:
                        raise RefusedExample("that text is a hard negative (taught as not a crisis): it cannot be taught "
                                             f"as {key!r} too (remove it from data/safety/hard_negatives*.yml first, or edit it)")
                    there = known.get(norm)
                    if there is None:
                        known[norm] = key
                        new.append(line)
                    elif negative or there == key:
                        if not negative or label == NOT_CRISIS:
                            result.duplicates.append(line)
                    else:
                        raise RefusedExample(f"that text is already an example of {there!r}: change it there, or edit it")
                plan.append((relative, key, negative, new))
            for relative, key, negative, new in plan if write else []:
                if new:
                    blocks = self.examples_in(relative)
                    blocks.setdefault(key, []).extend(new)
                    self._write(relative, blocks, negative)
                    (result.negatives if negative and label != NOT_CRISIS else result.written).extend(new)
                    result.files.append(str(relative))
        return result

    def _write(self, relative: Path, blocks: Dict[str, List[str]], negative: bool) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        out = [_HEADER]
        if negative:
            out.append("safety_negatives:\n")
            for kind, examples in blocks.items():
                out.append(f"- kind: {kind}\n  examples: |\n" + "".join(f"    - {e}\n" for e in examples))
        else:
            out.append('version: "3.1"\nnlu:\n')
            for intent, examples in blocks.items():
                meta = f"  metadata:\n    category: {REVIEWED_CATEGORY}\n" if intent in (CRISIS, URGENT_MEDICAL) else ""
                out.append(f"- intent: {intent}\n{meta}  examples: |\n" + "".join(f"    - {e}\n" for e in examples))
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False, suffix=".part") as tmp:
            tmp.write("".join(out))
        os.replace(tmp.name, path)


def _lines(block: object) -> List[str]:
    return [line.strip()[2:].strip() for line in str(block or "").splitlines() if line.strip().startswith("- ")]

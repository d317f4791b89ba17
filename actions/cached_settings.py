"""The clinic's settings files the actions read on every turn, parsed again only when they change.

Every turn of the pre-screen asks for the eligibility rules (which questions remain, what an
answer means), and every new conversation for the public facts. Parsing
settings/eligibility.yml each time was most of the action server's work per call (README,
"Performance"); the parsed value is kept while the file's modification time and size stay the
same, so an edit still takes effect without a restart.
"""

from functools import lru_cache
from pathlib import Path
from typing import Dict, Tuple

from clinic.eligibility import Rules
from clinic.settings import get_settings, load_yaml, public_facts

FileKey = Tuple[str, int, int]


def _eligibility_file() -> FileKey:
    path = get_settings().settings_dir / "eligibility.yml"
    stat = path.stat()
    return str(path), stat.st_mtime_ns, stat.st_size


def eligibility_rules() -> Rules:
    return _rules(*_eligibility_file())


def facts() -> Dict[str, str]:
    """``clinic.settings.public_facts``: the values the answers may quote (slot -> text)."""
    return dict(_facts(*_eligibility_file()))


@lru_cache(maxsize=8)
def _rules(path: str, mtime_ns: int, size: int) -> Rules:
    return Rules.from_dict(load_yaml(Path(path)))


@lru_cache(maxsize=8)
def _facts(path: str, mtime_ns: int, size: int) -> Tuple[Tuple[str, str], ...]:
    return tuple(public_facts(get_settings()).items())

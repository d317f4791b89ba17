"""The clinic's settings files the actions read on every turn, parsed again only when they change.

Every turn of the pre-screen asks for the eligibility rules (which questions remain, what an
answer means), and every new conversation for the public facts. Parsing
settings/eligibility.yml each time was most of the action server's work per call (docs/PERFORMANCE.md); the parsed value is kept while the file's modification time and size stay the
same, so an edit still takes effect without a restart. The public facts come from three files
(clinic.yml, eligibility.yml and staffing.yml, whose hours the answers quote): an edit of any of them counts.
"""

from functools import lru_cache
from pathlib import Path
from typing import Dict, Optional, Tuple

from clinic.rules.eligibility import Rules
from clinic.settings import Settings, get_settings, load_yaml, public_facts
from clinic.rules.staffing import staffing_file

FileKey = Tuple[str, int, int]


def _file_key(path: Path) -> FileKey:
    stat = path.stat()
    return str(path), stat.st_mtime_ns, stat.st_size


def _eligibility_file() -> FileKey:
    return _file_key(get_settings().settings_dir / "eligibility.yml")


def eligibility_rules() -> Rules:
    return _rules(*_eligibility_file())


def facts() -> Dict[str, Optional[str]]:
    """``clinic.settings.public_facts``: the values the answers may quote (slot -> text, None: not set)."""
    settings = get_settings()  # RETENTION_DAYS, and where the files are
    files = (_eligibility_file(), _file_key(settings.settings_dir / "clinic.yml"), _file_key(staffing_file()))
    return dict(_facts(settings, *files))


@lru_cache(maxsize=8)
def _rules(path: str, mtime_ns: int, size: int) -> Rules:
    return Rules.from_dict(load_yaml(Path(path)))


@lru_cache(maxsize=8)
def _facts(settings: Settings, *files: FileKey) -> Tuple[Tuple[str, Optional[str]], ...]:
    return tuple(public_facts(settings).items())

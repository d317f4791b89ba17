"""Canned replies for the live chat: kept in ``settings/canned_replies.yml`` (or the file
``CANNED_REPLIES_FILE`` names, as ``STAFFING_FILE`` does for the hours), read again when it changes, edited by admins on ``/replies``
(which rewrites the file atomically; audited as ``canned_replies_edit``). On a chat page each
reply is a button that puts its text in the reply box, to be edited and sent (static/live.js).
"""

import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import List, Sequence, Tuple
from urllib.parse import parse_qs

import yaml
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, redirect

from clinic.console import auth
from clinic.console.pages import render

bp = Blueprint("console_canned_replies")

FILE = "canned_replies.yml"
MAX_REPLIES = 30
MAX_TITLE = 60
MAX_TEXT = 2000  # as a live chat reply (clinic.console.live_chat.MAX_REPLY_CHARS)
HEADER = (
    "# Canned replies: ready-made answers a staff member inserts into a live chat with one click (and\n"
    "# edits before sending). Admins edit this list on the console's \"Canned replies\" page, which\n"
    "# rewrites this file; the console reads it again when it changes. Short, kind, no promises.\n"
)


@dataclass(frozen=True)
class Reply:
    title: str
    text: str


class CannedError(ValueError):
    pass


def path_of(settings_dir: Path) -> Path:
    named = os.environ.get("CANNED_REPLIES_FILE", "").strip()
    return Path(named) if named else Path(settings_dir) / FILE


def check(pairs: Sequence[Tuple[str, str]]) -> List[Reply]:
    """The replies from (title, text) pairs: blank pairs left out; CannedError on anything else wrong."""
    replies = []
    for number, (title, text) in enumerate(pairs, 1):
        title, text = (title or "").strip(), (text or "").strip()
        if not title and not text:
            continue
        if not title or not text:
            raise CannedError(f"reply {number} needs both a title and a text")
        if len(title) > MAX_TITLE or len(text) > MAX_TEXT:
            raise CannedError(f"reply {number}: a title is at most {MAX_TITLE} characters, a text {MAX_TEXT}")
        replies.append(Reply(title, text))
    if len(replies) > MAX_REPLIES:
        raise CannedError(f"at most {MAX_REPLIES} replies")
    if len({r.title.lower() for r in replies}) != len(replies):
        raise CannedError("two replies have the same title")
    return replies


@lru_cache(maxsize=4)
def _read(path: str, mtime_ns: int) -> Tuple[Reply, ...]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    items = data.get("replies") or [] if isinstance(data, dict) else []
    return tuple(check([(str(i.get("title") or ""), str(i.get("text") or "")) for i in items if isinstance(i, dict)]))


def load(settings_dir: Path) -> List[Reply]:
    """The canned replies (none when the file is missing)."""
    path = path_of(settings_dir)
    try:
        return list(_read(str(path), path.stat().st_mtime_ns))
    except FileNotFoundError:
        return []


def save(settings_dir: Path, replies: Sequence[Reply]) -> None:
    """Rewrite the file at once (a reader sees the old list or the new one, never half of one)."""
    path = path_of(settings_dir)
    body = HEADER + yaml.safe_dump(
        {"replies": [{"title": r.title, "text": r.text} for r in replies]}, sort_keys=False, allow_unicode=True, width=1000)
    fd, tmp = tempfile.mkstemp(prefix=".canned-", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(body)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _page(request: Request, status: int = 200, error: str = "", notice: str = "", draft: Sequence[Reply] = ()) -> HTTPResponse:
    replies = list(draft) or load(request.app.ctx.settings.settings_dir)
    return render(request, "canned_replies.html", status=status, replies=replies, error=error, notice=notice,
                  max_title=MAX_TITLE, max_text=MAX_TEXT, max_replies=MAX_REPLIES)


@bp.get("/replies")
@auth.require("admin")
async def replies_page(request: Request) -> HTTPResponse:
    return _page(request, notice="Canned replies saved." if request.args.get("done") == "saved" else "")


@bp.post("/replies")
@auth.require("admin")
async def replies_save(request: Request) -> HTTPResponse:
    # the form's own fields, blank ones kept (Sanic's request.form drops them): row i is (title i, text i)
    fields = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
    titles, texts = fields.get("title", []), fields.get("text", [])
    if len(titles) != len(texts) or len(titles) > MAX_REPLIES + 1:
        return _page(request, status=400, error="Not saved: the form was incomplete. Reload the page and try again.")
    try:
        replies = check(list(zip(titles, texts)))
    except CannedError as exc:
        draft = [Reply((t or "").strip(), (x or "").strip()) for t, x in zip(titles, texts) if (t or "").strip() or (x or "").strip()]
        return _page(request, status=400, error=f"Not saved: {exc}.", draft=draft)
    try:
        save(request.app.ctx.settings.settings_dir, replies)
    except OSError as exc:  # a read-only settings folder, a full disk: said, nothing half-written
        return _page(request, status=503, draft=replies,
                     error=f"Not saved: the settings file could not be written ({type(exc).__name__}). Ask whoever runs the console.")
    auth.audit(request.app.ctx.engine, request.ctx.user, "canned_replies_edit", "settings", FILE, f"{len(replies)} replies")
    return redirect("/replies?done=saved", status=303)

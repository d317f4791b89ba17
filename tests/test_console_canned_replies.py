"""Console: canned replies, kept in settings and edited by admins, offered on a live chat's page."""

import shutil
from pathlib import Path

import pytest
import yaml
from sanic import Sanic

from clinic.rules import handoff
from clinic.console import canned_replies
from tests.test_console_referrals import XSS, Console, console  # noqa: F401  (fixture)

Sanic.test_mode = True
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def replies_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "canned_replies.yml"
    shutil.copy(ROOT / "settings" / "canned_replies.yml", path)
    monkeypatch.setenv("CANNED_REPLIES_FILE", str(path))
    return path


def test_the_shipped_replies_are_valid_and_short() -> None:
    replies = canned_replies.load(ROOT / "settings")
    assert len(replies) >= 3
    assert any("988" in r.text for r in replies)
    for r in replies:
        assert len(r.text.split()) <= 60 and not r.text.lower().startswith(("yes", "no"))


def test_an_admin_edits_them_and_the_file_is_rewritten(console: Console, replies_file: Path) -> None:
    page = console.get("/replies", as_="admin")
    assert page.status == 200 and "Crisis resources" in page.text
    form = {"title": ["Hello", "Evaluation", ""], "text": ["Hi, I'm " + XSS[0], "The evaluation is free.", ""]}
    resp = console.post("/replies", form, as_="admin")
    assert resp.status == 303 and resp.headers["location"] == "/replies?done=saved"
    saved = yaml.safe_load(replies_file.read_text())["replies"]
    assert saved == [{"title": "Hello", "text": "Hi, I'm " + XSS[0]}, {"title": "Evaluation", "text": "The evaluation is free."}]
    assert replies_file.read_text().startswith("# Canned replies")
    [entry] = console.audits("canned_replies_edit")
    assert (entry["username"], entry["detail"]) == ("admin", "2 replies")
    shown = console.get("/replies?done=saved", as_="admin").text
    assert "Canned replies saved." in shown and XSS[0] not in shown


@pytest.mark.parametrize("form, reason", [
    ({"title": ["Hello"], "text": [""]}, "reply 1 needs both a title and a text"),
    ({"title": ["x" * 61], "text": ["t"]}, "a title is at most 60 characters"),
    ({"title": ["A", "a"], "text": ["one", "two"]}, "two replies have the same title"),
    ({"title": ["A", "B"], "text": ["one"]}, "the form was incomplete"),
])
def test_a_bad_edit_is_refused_and_nothing_is_written(console: Console, replies_file: Path, form: dict, reason: str) -> None:
    before = replies_file.read_text()
    resp = console.post("/replies", form, as_="admin")
    assert resp.status == 400 and reason in resp.text
    assert replies_file.read_text() == before and console.audits("canned_replies_edit") == []


def test_only_admins_edit_them(console: Console, replies_file: Path) -> None:
    before = replies_file.read_text()
    for role in ("support", "clinician"):
        assert console.get("/replies", as_=role).status == 403
        assert console.post("/replies", {"title": ["X"], "text": ["Y"]}, as_=role).status == 403
    assert replies_file.read_text() == before


def test_a_live_chat_page_offers_them(console: Console, replies_file: Path) -> None:
    console.post("/replies", {"title": ["Hello", "Quote"], "text": ["Hi, I'm here.", 'She said "<b>hi</b>"']}, as_="admin")
    row = handoff.request_live(console.engine, "c-canned", "visitor_request", urgent=False)
    handoff.change(console.engine, row["id"], "claim", handoff.WAITING, console.users["support"]["id"], "Sam")
    html = console.get(f"/live/{row['id']}", as_="support").text
    assert '<button type="button" class="secondary" data-action="canned" data-text="Hi, I&#39;m here."' in html
    assert 'data-text="She said &#34;&lt;b&gt;hi&lt;/b&gt;&#34;"' in html and "<b>hi</b>" not in html


def test_a_settings_file_that_cannot_be_written_is_said(console: Console, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "no-such-folder" / "canned_replies.yml"
    monkeypatch.setenv("CANNED_REPLIES_FILE", str(missing))
    resp = console.post("/replies", {"title": ["Hello"], "text": ["Hi."]}, as_="admin")
    assert resp.status == 503 and "could not be written" in resp.text and 'value="Hello"' in resp.text
    assert not missing.exists() and console.audits("canned_replies_edit") == []

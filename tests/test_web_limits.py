"""The visitor API's limits behind a proxy, its cookie, its caching and the requests it refuses
(issue 19, findings 4 and 5), with Rasa replaced by a recorder."""

import asyncio
import json
import socket
import time
from typing import Any, Dict, Optional

import pytest
from sanic import Sanic

from clinic import settings as clinic_settings
from clinic.http import client_address
from clinic.web import signing
from clinic.web.app import create_app
from tests.test_web_app import FakeRasa

Sanic.test_mode = True


def make_app(monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    clinic_settings.get_settings.cache_clear()
    rasa = FakeRasa(replies=[{"recipient_id": "x", "text": "Hi.", "buttons": [{"title": "Yes", "payload": "/affirm"}]}])
    app = create_app(clinic_settings.get_settings(), rasa=rasa, name=f"limits_{id(rasa)}")
    app.ctx.fake_rasa = rasa
    return app


def chat(app: Any, body: Any, cookie: Optional[str] = None, headers: Optional[Dict[str, str]] = None) -> Any:
    _, resp = app.test_client.post("/api/chat", data=json.dumps(body), cookies={"cid": cookie} if cookie else {},
                                   headers={"content-type": "application/json", **(headers or {})})
    return resp


# --- the client's address -------------------------------------------------------------


def test_the_forwarded_address_is_read_only_from_a_trusted_proxy() -> None:
    import ipaddress

    proxies = (ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_network("::1/128"))
    assert client_address.client_address("203.0.113.9", "198.51.100.1", proxies) == "203.0.113.9"  # not a proxy
    assert client_address.client_address("10.0.0.5", "198.51.100.1", proxies) == "198.51.100.1"
    # what the client wrote itself, left of what the proxy appended, is ignored
    assert client_address.client_address("10.0.0.5", "1.2.3.4, 198.51.100.1", proxies) == "198.51.100.1"
    assert client_address.client_address("10.0.0.5", "198.51.100.1, 10.0.0.7", proxies) == "198.51.100.1"  # two proxies
    assert client_address.client_address("10.0.0.5", "", proxies) == "10.0.0.5"
    assert client_address.client_address("10.0.0.5", "not-an-address", proxies) == "10.0.0.5"
    assert client_address.client_address("10.0.0.5", "198.51.100.1", ()) == "10.0.0.5"  # no proxy trusted


def test_behind_a_trusted_proxy_each_visitor_has_their_own_new_visitor_limit(clinic_env, monkeypatch) -> None:
    app = make_app(monkeypatch, TRUSTED_PROXIES="127.0.0.1", RATE_LIMIT_NEW_VISITORS="2/0.001")
    one = {"x-forwarded-for": "198.51.100.1"}
    assert [chat(app, {"message": "hi"}, headers=one).status for _ in range(3)] == [200, 200, 429]
    # another visitor behind the same proxy is not held up by the first
    assert chat(app, {"message": "hi"}, headers={"x-forwarded-for": "198.51.100.2"}).status == 200
    # a visitor cannot pick a fresh address by writing one before the proxy's
    assert chat(app, {"message": "hi"}, headers={"x-forwarded-for": "1.2.3.4, 198.51.100.1"}).status == 429


def test_an_untrusted_peers_forwarded_header_is_ignored(clinic_env, monkeypatch) -> None:
    app = make_app(monkeypatch, RATE_LIMIT_NEW_VISITORS="2/0.001")
    statuses = [chat(app, {"message": "hi"}, headers={"x-forwarded-for": f"198.51.100.{n}"}).status for n in range(3)]
    assert statuses == [200, 200, 429]


def test_a_forged_button_is_refused_before_any_limit_is_charged(clinic_env, monkeypatch) -> None:
    app = make_app(monkeypatch, RATE_LIMIT_NEW_VISITORS="2/0.001", RATE_LIMIT_MESSAGES="2/0.001")
    for _ in range(20):  # forged buttons, from new visitors and from a conversation
        assert chat(app, {"button": {"payload": "/affirm", "sig": "x", "title": "Yes"}}).status == 403
    first = chat(app, {"message": "hi"})
    assert first.status == 200
    cookie = first.cookies["cid"]
    for _ in range(20):
        assert chat(app, {"button": {"payload": "/affirm", "sig": "x", "title": "Yes"}}, cookie).status == 403
    assert chat(app, {"message": "still here"}, cookie).status == 200  # the conversation's own limit is intact
    assert chat(app, {"message": "hi"}).status == 200  # and the address's


# --- limits on history, updates, reset; the 988 in every 429 -------------------------------


def assert_limited(resp: Any) -> None:
    assert resp.status == 429 and int(resp.headers["retry-after"]) >= 1
    assert "988" in resp.json["detail"] and "911" in resp.json["detail"]


def test_history_is_limited_per_conversation_and_per_address(clinic_env, monkeypatch) -> None:
    app = make_app(monkeypatch, RATE_LIMIT_READS="3/0.001", RATE_LIMIT_ADDRESS="10/0.001")
    cookie = chat(app, {"message": "hi"}).cookies["cid"]
    seen = [app.test_client.get("/api/history", cookies={"cid": cookie})[1] for _ in range(4)]
    assert [r.status for r in seen] == [200, 200, 200, 429]
    assert_limited(seen[-1])
    other = chat(app, {"message": "hi"}).cookies["cid"]  # another conversation from this address
    statuses = [app.test_client.get("/api/history", cookies={"cid": other})[1].status for _ in range(6)]
    assert statuses[:3] == [200, 200, 200] and statuses[-1] == 429  # the conversation's, then the address's
    _, anonymous = app.test_client.get("/api/history")
    assert_limited(anonymous)  # the address has had its 10


def test_reset_is_limited_per_address_and_refused_from_another_sites_page(clinic_env, monkeypatch) -> None:
    app = make_app(monkeypatch, RATE_LIMIT_NEW_VISITORS="3/0.001", COOKIE_SAMESITE="None", COOKIE_SECURE="true",
                   WIDGET_ALLOWED_ORIGINS="https://www.clinic.example")
    _, foreign = app.test_client.post("/api/reset", headers={"origin": "https://evil.example"})
    assert foreign.status == 403 and foreign.json["error"] == "foreign_origin"
    _, cancel = app.test_client.post("/api/handoff/cancel", headers={"origin": "https://evil.example"})
    assert cancel.status == 403
    _, null = app.test_client.post("/api/reset", headers={"origin": "null"})  # a sandboxed page
    assert null.status == 403
    statuses = [app.test_client.post("/api/reset", headers={"origin": "https://www.clinic.example"})[1].status
                for _ in range(3)]
    assert statuses == [200, 200, 200]
    _, limited = app.test_client.post("/api/reset")  # no Origin (not a browser page): the limit still holds
    assert_limited(limited)


def test_reset_is_limited_per_conversation(clinic_env, monkeypatch) -> None:
    app = make_app(monkeypatch, RATE_LIMIT_READS="2/0.001")
    cookie = chat(app, {"message": "hi"}).cookies["cid"]
    statuses = [app.test_client.post("/api/reset", cookies={"cid": cookie})[1].status for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert app.test_client.post("/api/reset")[1].status == 200  # another (new) visitor from here is not held up


def test_same_site_reset_and_cancel_need_no_allow_list(clinic_env, monkeypatch) -> None:
    app = make_app(monkeypatch)
    _, reset = app.test_client.post("/api/reset", headers={"origin": "http://127.0.0.1:" + "1", "host": "127.0.0.1:1"})
    assert reset.status == 200


def open_poll(stack: Any, cookie: str) -> socket.socket:
    """A long poll sent on a raw connection and left waiting."""
    host, port = stack.web_url.rsplit("/", 1)[-1].rsplit(":", 1)
    conn = socket.create_connection((host, int(port)), timeout=10)
    conn.sendall(f"GET /api/updates?after=0&version=0 HTTP/1.1\r\nHost: {host}\r\nCookie: cid={cookie}\r\n\r\n".encode())
    return conn


def answered_within(conn: socket.socket, seconds: float) -> bytes:
    conn.settimeout(seconds)
    try:
        return conn.recv(65536)
    except socket.timeout:
        return b""


def test_one_long_poll_at_a_time_per_conversation(stack: Any) -> None:
    import requests

    from tests.stack import say

    s = requests.Session()
    assert say(s, stack, "hello").status_code == 200
    cookie = s.cookies.get("cid")
    first = open_poll(stack, cookie)
    try:
        assert answered_within(first, 1.0) == b""  # waiting, as a long poll does
        for _ in range(3):
            second = requests.get(f"{stack.web_url}/api/updates", params={"after": 0, "version": 0},
                                  cookies={"cid": cookie}, timeout=10)
            assert second.status_code == 429 and second.json()["error"] == "already_waiting"
            assert "988" in second.json()["detail"] and int(second.headers["retry-after"]) >= 1
        other = requests.Session()  # another visitor's poll is not held up
        assert say(other, stack, "hello").status_code == 200
        third = open_poll(stack, other.cookies.get("cid"))
        assert answered_within(third, 1.0) == b""
        third.close()
    finally:
        first.close()  # the page went away: its poll ends
    time.sleep(0.5)
    again = open_poll(stack, cookie)
    try:
        assert answered_within(again, 1.0) == b""  # waiting again, not refused
    finally:
        again.close()


def test_limit_messages_all_name_988() -> None:
    from clinic.web import visitor_api

    for text in (visitor_api.TOO_FAST, visitor_api.TOO_MANY, visitor_api.ALREADY_WAITING):
        assert "988" in text and "911" in text


# --- the cookie, caching, odd requests -------------------------------------------------


def test_api_answers_are_never_cached(clinic_env, monkeypatch) -> None:
    app = make_app(monkeypatch)
    resp = chat(app, {"message": "hi"})
    assert resp.headers["cache-control"] == "no-store"
    for path in ("/api/history", "/api/updates?after=0&version=0"):
        assert app.test_client.get(path)[1].headers["cache-control"] == "no-store", path
    assert app.test_client.post("/api/reset")[1].headers["cache-control"] == "no-store"
    assert "no-store" not in app.test_client.get("/widget.js")[1].headers.get("cache-control", "")


def test_in_production_the_cookie_is_host_only_and_secure(clinic_env, monkeypatch) -> None:
    app = make_app(monkeypatch, COOKIE_SECURE="true")
    resp = chat(app, {"message": "hi"})
    set_cookie = resp.headers["set-cookie"]
    assert set_cookie.startswith("__Host-cid=") and "Secure" in set_cookie and "Path=/" in set_cookie
    assert "Domain" not in set_cookie and "HttpOnly" in set_cookie
    cookie = resp.cookies["__Host-cid"]
    _, again = app.test_client.post("/api/chat", data=json.dumps({"message": "and again"}),
                                    cookies={"__Host-cid": cookie}, headers={"content-type": "application/json"})
    sent = app.ctx.fake_rasa.sent
    assert again.status == 200 and sent[0][0] == sent[1][0]
    _, plain = app.test_client.post("/api/chat", data=json.dumps({"message": "x"}), cookies={"cid": cookie},
                                    headers={"content-type": "application/json"})
    assert app.ctx.fake_rasa.sent[2][0] != sent[0][0]  # the unprefixed name is not read in production


def test_a_stale_or_duplicated_cookie_starts_a_new_conversation(clinic_env, monkeypatch) -> None:
    app = make_app(monkeypatch, VISITOR_IDLE_DAYS="1")
    secret = clinic_settings.get_settings().secret_key
    cid = signing.new_conversation_id()
    stale = signing.sign_conversation_id(secret, cid, issued=int(time.time()) - 2 * 86400)
    chat(app, {"message": "hi"}, stale)
    assert app.ctx.fake_rasa.sent[-1][0] != cid
    fresh = signing.sign_conversation_id(secret, cid)
    chat(app, {"message": "hi"}, fresh)
    assert app.ctx.fake_rasa.sent[-1][0] == cid
    other = signing.sign_conversation_id(secret, signing.new_conversation_id())
    _, resp = app.test_client.post("/api/chat", data=json.dumps({"message": "hi"}),
                                   headers={"content-type": "application/json", "cookie": f"cid={fresh}; cid={other}"})
    assert resp.status == 200 and app.ctx.fake_rasa.sent[-1][0] not in (cid, other[:32])


def test_static_paths_that_name_no_file_are_404(clinic_env, monkeypatch) -> None:
    from clinic.console.app import create_console_app

    app = make_app(monkeypatch)
    console = create_console_app(clinic_settings.get_settings(), name=f"console_static_{id(app)}", rasa=FakeRasa())
    for client in (app.test_client, console.test_client):
        for path in ("/static/", "/static/x%00", "/static/x%00.js", "/static/sub/"):
            _, resp = client.get(path)
            assert resp.status == 404, path
            assert "Traceback" not in resp.text


def raw(url: str, request: bytes) -> bytes:
    host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk


def test_both_transfer_encoding_and_content_length_are_refused(stack: Any) -> None:
    smuggled = (b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"0\r\n\r\nGET /api/history HTTP/1.1\r\nHost: x\r\n\r\n")
    for url in (stack.web_url, stack.start_console()):
        answer = raw(url, smuggled)
        assert answer.startswith(b"HTTP/1.1 400"), answer[:100]
        assert answer.count(b"HTTP/1.1 ") == 1  # what followed was not read as a second request

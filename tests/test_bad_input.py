"""Bad input, through the real web app (the session ``stack``: Rasa, action server, web app) and,
where a visitor or staff member would see it, through the widget and the console in a browser;
then property-based tests (hypothesis) of the visitor input checks, the visitor API, the
eligibility rules and the answer parsers.

Each refusal is a 4xx with a reason (``error`` and ``detail``), never a 500; after the worst of
it the server answers the next request at once; nothing a visitor types is ever run as Rasa's
``/intent`` syntax, as HTML or as SQL.
"""

import asyncio
import concurrent.futures
import csv
import io
import json
import select
import socket
import sqlite3
import threading
import time
import unicodedata
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import pytest
import requests

from clinic.storage import db, referrals
from clinic.settings import load_encryption_key, load_secret
from clinic.web import signing
from tests import encrypted_db
from tests import fault_tools as ft
from tests.stack import Stack, conversation_id, say

SLOW_CLIENT_DEADLINE_S = 10  # clinic.web.app.REQUEST_TIMEOUT_S


# --- a raw HTTP client ----------------------------------------------------------------------------


def raw_exchange(stack: Stack, request: bytes, body_chunks: Optional[Iterable[bytes]] = None, timeout: float = 20,
                 source: str = "127.0.0.1") -> Tuple[int, Dict[str, str], bytes]:
    """Sends a request as bytes (the body in chunks, stopping when the server hangs up), then reads
    the response: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", stack.web_port), timeout=timeout, source_address=(source, 0)) as c:
        c.sendall(request)
        try:
            for chunk in body_chunks or ():
                c.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server refused the rest: its answer is waiting
        return read_response(c)


def read_response(c: socket.socket) -> Tuple[int, Dict[str, str], bytes]:
    """(status, headers, body) of the response on the socket; status 0 when the server hung up
    without one."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            more = c.recv(65536)
            if not more:
                break
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        while len(body) < int(headers.get("content-length", "0")):
            more = c.recv(65536)
            if not more:
                break
            body += more
    except (ConnectionResetError, socket.timeout):
        head, _, body = data.partition(b"\r\n\r\n")
        lines, headers = head.decode("latin-1").split("\r\n"), {}
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
    return status, headers, body


def post_bytes(stack: Stack, body: bytes, content_type: Optional[str] = "application/json",
               cookies: Optional[Dict[str, str]] = None) -> requests.Response:
    headers = {"content-type": content_type} if content_type is not None else {}
    return requests.post(f"{stack.web_url}/api/chat", data=body, headers=headers, cookies=cookies or {}, timeout=60)


def assert_refused(response: requests.Response, status: int, code: Optional[str] = None) -> Dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text[:300])
    data = response.json()
    assert isinstance(data.get("detail"), str) and data["detail"], data
    if code is not None:
        assert data["error"] == code, data
    assert "cid" not in response.cookies  # nothing was opened
    return data


def answers_quickly(stack: Stack, limit_s: float = 2.0) -> None:
    started = time.monotonic()
    assert requests.get(f"{stack.web_url}/health", timeout=limit_s).status_code == 200
    s = requests.Session()
    reply = say(s, stack, "what is ketamine therapy")
    assert reply.status_code == 200 and reply.json()["messages"], reply.text
    assert time.monotonic() - started < limit_s + 3, "the server was slow after bad input"


@pytest.fixture
def web_log(stack: Stack) -> Iterator[None]:
    """Fails the test if the web app logged an unhandled error meanwhile (a 500 in disguise)."""
    log = stack.workdir / "web.log"
    start = log.stat().st_size if log.exists() else 0
    yield
    new = log.read_bytes()[start:].decode("utf-8", "replace")
    assert "Traceback" not in new and "Exception occurred" not in new, new[-3000:]


# --- sizes and shapes of the body ---------------------------------------------------------------


@pytest.mark.parametrize(
    "body, status, code",
    [
        (b"", 400, "invalid_json"),
        (b"   \r\n\t  ", 400, "invalid_json"),
        (json.dumps({"message": ""}).encode(), 422, "empty_message"),
        (json.dumps({"message": " \n\t "}).encode(), 422, "empty_message"),
        (b'{"message": "\\u0000"}', 422, "empty_message"),
        (json.dumps({"message": "\u200b\u200c\u200d\ufeff\u2060"}).encode(), 422, "empty_message"),
        (json.dumps({"message": "\u202e\u202d\u2066\u2069"}).encode(), 422, "empty_message"),
        (b'{"message": "\\ud800\\udfff"}', 422, "empty_message"),
    ],
    ids=["empty", "whitespace", "empty-message", "whitespace-message", "nul", "zero-width", "bidi", "lone-surrogates"],
)
def test_empty_and_invisible_messages_get_a_reason(stack, web_log, body, status, code):
    assert_refused(post_bytes(stack, body), status, code)


@pytest.mark.parametrize("size", [1_000_000, 10_000_000], ids=["1MB", "10MB"])
def test_a_huge_body_gets_413_with_a_reason_and_the_server_answers_the_next_request_at_once(stack, web_log, size):
    head = (f"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()
    prefix = b'{"message": "'
    chunks = (prefix + b"x" * (65536 - len(prefix)) if i == 0 else b"x" * 65536 for i in range(size // 65536))
    started = time.monotonic()
    status, headers, body = raw_exchange(stack, head, chunks)
    assert status == 413, (status, body[:200])
    data = json.loads(body)
    assert data["error"] == "message_too_long" and "too long" in data["detail"]
    assert time.monotonic() - started < 5, "the body should be refused, not read"
    answers_quickly(stack)


def test_a_huge_chunked_body_without_a_length_gets_413(stack, web_log):
    head = (b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    chunks = (b"10000\r\n" + b"x" * 65536 + b"\r\n" for _ in range(40))  # 2.5 MB, no end
    status, _, body = raw_exchange(stack, head, chunks)
    assert status == 413 and json.loads(body)["error"] == "message_too_long"
    answers_quickly(stack)


@pytest.mark.parametrize(
    "body",
    [
        b"{oops",
        b'{"message": "hi"',
        b'{"message": "hi"}}',
        b"[" * 30_000 + b"]" * 30_000,  # nested deeper than the parser's recursion
        b'{"message":' + b'{"a":' * 9_000 + b"1" + b"}" * 9_001,  # (under the 64 KB body limit)
        b'{"message": "caf\xe9"}',  # Latin-1, not UTF-8
        b'{"message": "\xed\xa0\x80"}',  # a surrogate encoded in UTF-8: invalid
        b'\xff\xfe{\x00"\x00',  # UTF-16
        '{"message": "hi"}'.encode("utf-16"),
        b"\xef\xbb\xbf" + b'{"message": "hi"}',  # a byte-order mark
        b"\x00" * 64,
        b'{"message": "hi", "id": ' + b"9" * 5000 + b"}",  # an integer longer than Python parses
    ],
    ids=["broken", "unclosed", "trailing", "deep-list", "deep-object", "latin-1", "utf8-surrogate", "utf-16-bytes",
         "utf-16", "bom", "nul-bytes", "huge-int"],
)
def test_malformed_json_gets_400_never_a_500(stack, web_log, body):
    assert_refused(post_bytes(stack, body), 400, "invalid_json")


@pytest.mark.parametrize(
    "body, code",
    [
        (b"[]", "invalid_body"),
        (b'"hello"', "invalid_body"),
        (b"42", "invalid_body"),
        (b"null", "invalid_body"),
        (b'{"text": "hi"}', "invalid_body"),
        (b'{"message": 5}', "invalid_body"),
        (b'{"message": ["hi"]}', "invalid_body"),
        (b'{"message": {"$gt": ""}}', "invalid_body"),
        (b'{"message": null}', "invalid_body"),
        (b'{"button": "yes"}', "invalid_button"),
        (b'{"button": {"payload": 1, "sig": "x"}}', "invalid_button"),
        (b'{"button": {"payload": "/affirm"}}', "invalid_button"),
        (b'{"button": {"payload": "\\ud800", "sig": "x"}}', "invalid_button"),
        (b'{"button": {"payload": "/affirm", "sig": "\\udfff"}}', "invalid_button"),
        (b'{"message": "hi", "id": "../../etc"}', "invalid_id"),
        (b'{"message": "hi", "id": "\\ud800"}', "invalid_id"),
        (b'{"message": "hi", "id": NaN}', "invalid_id"),
    ],
)
def test_json_that_is_not_a_message_gets_400_with_a_reason(stack, web_log, body, code):
    assert_refused(post_bytes(stack, body), 400, code)


def test_a_button_with_a_lone_surrogate_from_a_known_visitor_gets_400_not_500(stack, web_log):
    """The signature check encodes the payload: a lone surrogate used to raise there (a 500)."""
    s = requests.Session()
    assert say(s, stack, "hello").status_code == 200
    for body in (b'{"button": {"payload": "\\ud800", "sig": "x"}}', b'{"button": {"payload": "/affirm", "sig": "\\ud800"}}'):
        r = s.post(f"{stack.web_url}/api/chat", data=body, headers={"content-type": "application/json"}, timeout=30)
        assert r.status_code == 400 and r.json()["error"] == "invalid_button", r.text


@pytest.mark.parametrize(
    "content_type",
    [None, "", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
     "application/xml", "application/jsonp", "text/json", "application/json-patch+json", "*/*"],
)
def test_a_wrong_content_type_gets_415(stack, web_log, content_type):
    assert_refused(post_bytes(stack, b'{"message": "hello"}', content_type), 415, "unsupported_media_type")


def test_json_with_a_charset_parameter_is_accepted(stack, web_log):
    r = post_bytes(stack, '{"message": "what does it cost"}'.encode(), "Application/JSON; charset=UTF-8")
    assert r.status_code == 200 and r.json()["messages"]


# --- slow clients -----------------------------------------------------------------------------------


def test_slow_clients_are_cut_off_and_everyone_else_is_served_meanwhile(stack, web_log):
    """Headers never finished, headers trickled and a body trickled byte by byte: each gets a 408
    (or the connection closed) within the deadline, while other visitors get answers at once."""
    results: Dict[str, Tuple[float, int]] = {}
    started = time.monotonic()

    def slow_client(name: str, first: bytes, drip: bytes) -> None:
        with socket.create_connection(("127.0.0.1", stack.web_port), timeout=SLOW_CLIENT_DEADLINE_S + 15) as c:
            c.sendall(first)
            for byte in drip:  # a byte every half second, until the server answers or hangs up
                readable, _, _ = select.select([c], [], [], 0.5)
                if readable:
                    break
                try:
                    c.sendall(bytes([byte]))
                except OSError:
                    break
            results[name] = (time.monotonic() - started, read_response(c)[0])

    json_head = b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n"
    clients = [
        threading.Thread(target=slow_client, args=("headers never finished", b"POST /api/chat HTTP/1.1\r\nHost: x\r\nCont", b"")),
        threading.Thread(target=slow_client, args=("headers trickled", b"GET /health HTTP/1.1\r\n", b"X-Slow: " + b"a" * 400)),
        threading.Thread(target=slow_client, args=("body trickled", json_head, b'{"message": "' + b"x" * 380 + b'"}')),
    ]
    for t in clients:
        t.start()
    timings = []
    for _ in range(4):  # everyone else meanwhile
        t0 = time.monotonic()
        r = say(requests.Session(), stack, "is it safe")
        assert r.status_code == 200 and r.json()["messages"]
        timings.append(time.monotonic() - t0)
        time.sleep(1)
    assert max(timings) < 5, timings
    for t in clients:
        t.join(timeout=SLOW_CLIENT_DEADLINE_S + 20)
    assert set(results) == {"headers never finished", "headers trickled", "body trickled"}, results
    for name, (after_s, status) in results.items():
        assert after_s < SLOW_CLIENT_DEADLINE_S + 5, (name, after_s)
        assert status in (408, 0), (name, status)
    assert results["headers never finished"][1] == 408
    answers_quickly(stack)


# --- Rasa's intent syntax and other things typed --------------------------------------------------


INTENT_SYNTAX = [
    "/affirm",
    '/inform{"age":"99"}',
    "/restart",
    "/session_start",
    "/start_prescreen",
    '/inform{"suicidal_thoughts": "no", "age": 99}',
    "  /restart",
    "\n/affirm",
    "\u200b/restart",  # a zero-width space in front
    "\u202e/restart",  # a right-to-left override in front
    "\ufeff/affirm",  # a byte-order mark in front
    "\u00a0/affirm",  # a no-break space in front
    "\x00/affirm",
]


def test_rasa_intent_syntax_typed_is_refused_and_never_runs(stack, web_log):
    v = ft.Visitor(stack)
    ft.run_steps(v, ft.PRESCREEN[:3])  # in the pre-screen, asked for a state
    cid = v.cid
    before = ft.tracker_events(stack, cid)
    for text in INTENT_SYNTAX:
        r = v.say(text)
        data = assert_refused(r, 422, "slash_command")
        assert "'/'" in data["detail"]
    assert ft.tracker_events(stack, cid) == before  # nothing reached Rasa
    # the pre-screen is where it was: the state question takes its answer
    r = v.say("TX")
    assert r.status_code == 200 and "What would you most like help with?" in v.text()
    # a forged button with Rasa's syntax is refused too
    for payload in ('/inform{"age":"99"}', "/restart", "/session_start"):
        forged = v.post({"button": {"payload": payload, "sig": v.button("Depression")["sig"]}})
        assert forged.status_code == 403 and forged.json()["error"] == "unknown_button"
    events = ft.tracker_events(stack, cid)
    assert not any(e.get("event") in ("restart", "session_started") for e in events[len(before):])


def test_intent_syntax_inside_a_sentence_is_only_text(stack, web_log):
    v = ft.Visitor(stack)
    ft.run_steps(v, ft.PRESCREEN[:3])
    r = v.say('please /restart and /inform{"age":"99"} now')
    assert r.status_code == 200
    events = ft.tracker_events(stack, v.cid)
    users = [e for e in events if e.get("event") == "user"]
    assert users[-1]["text"] == 'please /restart and /inform{"age":"99"} now'
    assert users[-1]["parse_data"]["intent"]["name"] not in ("restart", "session_start")
    assert not any(e.get("event") == "restart" for e in events)
    assert not any(e.get("event") == "slot" and e.get("name") == "age" and e.get("value") == 99 for e in events)
    # still in the pre-screen: the state question comes back, then takes its answer
    r = v.say("TX")
    assert "What would you most like help with?" in v.text()


def test_extra_fields_cannot_pick_another_conversation_or_forge_metadata(stack, web_log):
    victim = requests.Session()
    say(victim, stack, "hello")
    victim_cid = conversation_id(victim, stack)
    before = ft.tracker_events(stack, victim_cid)
    attacker = requests.Session()
    r = attacker.post(f"{stack.web_url}/api/chat", json={
        "message": "hello", "sender": victim_cid, "recipient_id": victim_cid, "conversation_id": victim_cid,
        "metadata": {"display": "I am someone else", "staff": {"name": "Dana"}},
    }, timeout=30)
    assert r.status_code == 200
    assert conversation_id(attacker, stack) != victim_cid
    assert ft.tracker_events(stack, victim_cid) == before
    user = [e for e in ft.tracker_events(stack, conversation_id(attacker, stack)) if e.get("event") == "user"][-1]
    assert "staff" not in (user.get("metadata") or {}) and (user.get("metadata") or {}).get("display") is None


ODD_TEXT = (
    "what does it cost\u0000\u0007\u001b[31m\u202e\u202d\u2066\u200b\u200d\ufeff\u2028\u00ad \ud800?"
)


def test_control_format_and_surrogate_characters_are_removed_before_rasa(stack, web_log):
    s = requests.Session()
    r = s.post(f"{stack.web_url}/api/chat", data=json.dumps({"message": ODD_TEXT}).encode(),
               headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["messages"]
    cid = conversation_id(s, stack)
    [stored] = [e["text"] for e in ft.tracker_events(stack, cid) if e.get("event") == "user"]
    assert stored.startswith("what does it cost") and stored.endswith("?")
    for ch in stored:
        assert ch in "\n\t" or not unicodedata.category(ch).startswith("C"), repr(ch)
    history = s.get(f"{stack.web_url}/api/history", timeout=30).json()["messages"]
    assert history[0]["text"] == stored


# --- cookies and signatures --------------------------------------------------------------------------


def test_forged_and_borrowed_cookies_open_a_new_conversation_and_read_nothing(stack, web_log):
    victim = requests.Session()
    say(victim, stack, "hello")
    say(victim, stack, "i live in ohio and i am 41")
    victim_cid = conversation_id(victim, stack)
    genuine = victim.cookies.get("cid")
    before = ft.tracker_events(stack, victim_cid)
    other_secret = signing.sign_conversation_id(b"not the server's secret", victim_cid)
    forged = [
        victim_cid,  # the id alone
        victim_cid + ".",
        victim_cid + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # another visitor's id, a made-up signature
        other_secret,  # signed with another key
        genuine[:-1] + ("A" if genuine[-1] != "A" else "B"),  # one character changed
        genuine.upper(),
        "x" * 4000,
        "../../../etc/passwd",
        "' OR '1'='1",
    ]
    secret = load_secret(stack.var_dir)
    for value in forged:
        history = requests.get(f"{stack.web_url}/api/history", cookies={"cid": value}, timeout=30)
        assert history.status_code == 200 and history.json()["messages"] == [], value
        r = requests.post(f"{stack.web_url}/api/chat", json={"message": "what did i tell you"}, cookies={"cid": value},
                          timeout=30)
        assert r.status_code == 200, (value, r.text)
        given = signing.read_conversation_id(secret, r.cookies.get("cid"))  # a new conversation, a new cookie
        assert given is not None and given != victim_cid, value
    # raw cookies a browser would not send: quoted, escaped, Latin-1, two of them
    for cookie in (b'cid="' + victim_cid.encode() + b'.\\351\\351"', b"cid=" + victim_cid.encode() + b".\xe9",
                   b"cid=" + victim_cid.encode() + b".bad; cid=" + victim_cid.encode() + b".worse",
                   b"cid=" + victim_cid.encode() + b"." + b"\x00" * 8):
        body = b'{"message": "hello"}'
        status, headers, _ = raw_exchange(stack, b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                          b"Cookie: " + cookie + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                                          % len(body) + body)
        assert status == 200, cookie
    assert ft.tracker_events(stack, victim_cid) == before  # nobody wrote to the victim's conversation


def test_a_button_signed_for_another_conversation_is_refused(stack, web_log):
    alice, bob = requests.Session(), requests.Session()
    a = say(alice, stack, "hello")
    say(bob, stack, "hello")
    offered = a.json()["messages"][0]["buttons"][0]
    stolen = bob.post(f"{stack.web_url}/api/chat", json={"button": offered},
                      timeout=30)
    assert stolen.status_code == 403 and stolen.json()["error"] == "unknown_button"
    assert "expired" in stolen.json()["detail"]
    fresh = requests.Session()  # no conversation at all
    r = fresh.post(f"{stack.web_url}/api/chat", json={"button": offered},
                   timeout=30)
    assert r.status_code == 403
    mine = alice.post(f"{stack.web_url}/api/chat", json={"button": offered},
                      timeout=30)
    assert mine.status_code == 200


# --- rate limits -----------------------------------------------------------------------------------


def test_fifty_messages_a_second_from_one_visitor_get_429_and_another_visitor_is_unaffected(stack, web_log):
    flood = requests.Session()
    assert say(flood, stack, "hello").status_code == 200
    cookie = flood.cookies.get("cid")

    def one(i: int) -> requests.Response:
        return requests.post(f"{stack.web_url}/api/chat", json={"message": f"is it safe {i}"}, cookies={"cid": cookie},
                             timeout=60)

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        futures = []
        for i in range(50):
            futures.append(pool.submit(one, i))
            time.sleep(0.02)  # 50 a second
        # meanwhile another visitor
        other = requests.Session()
        t0 = time.monotonic()
        theirs = say(other, stack, "what does it cost")
        other_s = time.monotonic() - t0
        results = [f.result() for f in futures]
    assert theirs.status_code == 200 and theirs.json()["messages"]
    refused = [r for r in results if r.status_code == 429]
    assert refused, "50 messages a second must be slowed down"
    assert all(r.status_code in (200, 429) for r in results), [r.status_code for r in results]
    body = refused[0].json()
    assert body["error"] == "rate_limited" and "faster than I can answer" in body["detail"]
    assert int(refused[0].headers["retry-after"]) >= 1
    assert other_s < 10, other_s
    accepted = sum(r.status_code == 200 for r in results)
    users = [e for e in ft.tracker_events(stack, conversation_id(flood, stack)) if e.get("event") == "user"]
    assert len(users) == accepted + 1  # refused messages never reached the assistant
    assert time.monotonic() - started < 60


def test_many_new_visitors_from_one_address_get_429_and_other_addresses_are_unaffected(stack, web_log):
    """From 127.0.0.2, so that the rest of the session (from 127.0.0.1) keeps its allowance. Each
    request without a cookie opens a new conversation; the first 20 talk to the assistant, then
    "start over" opens more (each a new conversation, no Rasa turn), so that the burst is spent
    faster than it refills whatever the machine's speed. Forged buttons are refused before the
    count: they spend nothing."""
    address = "127.0.0.2"

    def request(path: bytes, body: Dict[str, Any]) -> Tuple[int, bytes]:
        data = json.dumps(body).encode()
        status, _, answer = raw_exchange(stack, b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                         b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(data) + data,
                                         source=address)
        return status, answer

    def new_visitor(body: Dict[str, Any]) -> Tuple[int, bytes]:
        return request(b"/api/chat", body)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        talking = list(pool.map(new_visitor, [{"message": "hi"}] * 20))
    assert [s for s, _ in talking] == [200] * 20
    pressing = [new_visitor({"button": {"payload": "/affirm", "sig": "x"}}) for _ in range(80)]
    assert {s for s, _ in pressing} == {403}  # refused before the count
    starting_over = [request(b"/api/reset", {})[0] for _ in range(80)]
    assert set(starting_over) <= {200, 429} and 429 in starting_over, starting_over
    status, body = new_visitor({"message": "hi"})
    assert status == 429
    refused = json.loads(body)
    assert refused["error"] == "rate_limited" and "988" in refused["detail"]
    # another address is unaffected
    assert say(requests.Session(), stack, "hello").status_code == 200


# --- markup, SQL and JSON typed: shown as text everywhere ---------------------------------------------

MUTATION_XSS = [
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"> noscriptmx',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(2)> mathmx",
    '<iframe srcdoc="<script>parent.alert(3)</script>"></iframe> iframemx',
    "<details open ontoggle=alert(4)> detailsmx",
    "![pic](javascript:alert(5)) mdimagemx",
    "[click](JaVaScRiPt:alert(6)) mdlinkmx",
    "[data](data:text/html,<script>alert(7)</script>) datamx",
    '<a href="jav&#x09;ascript:alert(8)">x</a> entitymx',
    "<svg><animate onbegin=alert(9) attributeName=x dur=1s> svgmx",
    "`<img src=x onerror=alert(10)>` **<b onmouseover=alert(11)>bold</b>** mdmx",
]


def test_mutation_xss_typed_in_the_widget_is_shown_as_text_before_and_after_a_reload(stack, browser):
    from playwright.sync_api import expect

    from tests.widget_driver import Widget

    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        dialogs: List[str] = []
        errors: List[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(stack.web_url + "/")
        w = Widget(page)
        w.open()
        for text in MUTATION_XSS:
            w.say(text)
        for reload in (False, True):
            if reload:
                page.reload()
                w = Widget(page)
                w.wait_ready()
            assert w.visitor_texts() == MUTATION_XSS
            log = page.locator(".ccw-log")
            assert log.locator("img, script, svg:not(.ccw-icon), iframe, math, noscript, details, style, b, object").count() == 0
            assert page.locator(".ccw-visitor a").count() == 0
            page.wait_for_timeout(300)
            assert dialogs == [] and errors == []
        expect(page.locator(".ccw-visitor .ccw-body").first).to_have_text(MUTATION_XSS[0])
    finally:
        ctx.close()


def test_bot_text_with_mutation_xss_and_tricky_links_is_shown_as_text(stack, browser):
    """Bot text is rendered with a little markdown: links only to the widget's own origin or tel:/sms:."""
    from playwright.sync_api import Route

    from tests.widget_driver import Widget

    base = stack.web_url
    host = base.split("//", 1)[1]
    crafted = "\n\n".join(MUTATION_XSS) + (
        f"\n\n[userinfo](http://{host}@evil.example/) [dots](http://{host}.evil.example/) [slashes](//evil.example/x) "
        f"[backslash](/\\evil.example) [tab](java\tscript:alert(12)) [tel](tel:988\"onmouseover=\"alert(13)) "
        f"[ok]({base}/#faq)"
    )

    def fake_chat(route: Route) -> None:
        body = {"messages": [{"text": crafted, "buttons": [], "ts": 1_700_000_000.0}],
                "handoff": {"mode": "assistant", "agent": None, "position": None, "version": 0}}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        dialogs: List[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.route("**/api/chat", fake_chat)
        page.goto(base + "/")
        w = Widget(page)
        w.open()
        w.say("show me")
        msg = page.locator(".ccw-bot").last
        assert msg.locator("img, script, svg:not(.ccw-icon), iframe, math, noscript, details, style, b, object").count() == 0
        hrefs = msg.locator("a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
        assert hrefs == [f"{base}/#faq"], hrefs
        text = msg.locator(".ccw-body").inner_text()
        assert "<noscript><p title=" in text and "onerror=alert(2)" in text
        page.wait_for_timeout(300)
        assert dialogs == []
    finally:
        ctx.close()


SQL_NAME = "Robert'); DROP TABLE referrals;--"
SQL_TIME = "evenings'; DELETE FROM referrals WHERE '1'='1"
NOSQL_STATE = '{"$gt": ""}'


def _sql_steps() -> List[ft.Step]:
    steps = list(ft.PRESCREEN)
    i = next(i for i, s in enumerate(steps) if s[1] == ft.CONTACT["name"])
    steps[i] = ("say", SQL_NAME, "email")
    j = next(i for i, s in enumerate(steps) if s[1] == "Evenings")
    steps[j] = ("say", SQL_TIME, "May the")
    return steps


@pytest.fixture(scope="module")
def sql_referral(stack: Stack) -> Dict[str, str]:
    """A pre-screen whose answers look like SQL and JSON, to a referral."""
    v = ft.Visitor(stack)
    steps = _sql_steps()
    ft.run_steps(v, steps[:3])
    r = v.say(NOSQL_STATE)  # a JSON "query" as the state: not a state, asked again
    assert r.status_code == 200 and "What would you most like help with?" not in v.text()
    ft.run_steps(v, steps[3:])
    reference = ft.referral_rows(stack, v.cid)[0][0]
    return {"cid": v.cid, "reference": reference}


def test_sql_and_json_looking_answers_are_stored_as_text_and_the_tables_are_intact(stack, sql_referral):
    cid = sql_referral["cid"]
    engine = stack.clinic_engine()
    row = referrals.referral_for_conversation(engine, cid)
    clear = referrals.decrypt_referral(row, load_encryption_key(stack.var_dir))
    assert clear["contact"]["name"] == SQL_NAME
    assert clear["contact"]["preferred_time"] == SQL_TIME
    assert clear["answers"]["state"] == "TX"
    with encrypted_db.connect(stack.var_dir / "clinic.db") as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")}
        assert {"referrals", "handoff_requests", "waitlist"} <= tables
        assert conn.execute("select count(*) from referrals").fetchone()[0] >= 1
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with encrypted_db.connect(stack.var_dir / "tracker.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert NOSQL_STATE in ft.user_texts(stack, cid) and SQL_NAME in ft.user_texts(stack, cid)


@pytest.fixture(scope="module")
def console_session(stack: Stack, browser: Any) -> Iterator[Any]:
    """A clinician signed in to the console, in a browser page that records dialogs."""
    from tests import console_driver as cd

    console_url = stack.start_console()
    cd.make_staff(stack)
    ctx = browser.new_context(accept_downloads=True)
    page = ctx.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    cd.sign_in(page, console_url, "clinician")
    yield page, console_url
    ctx.close()


@pytest.fixture(scope="module")
def markup_conversation(stack: Stack) -> str:
    s = requests.Session()
    for text in MUTATION_XSS:
        assert say(s, stack, text).status_code == 200
    return conversation_id(s, stack)


def _no_live_markup(page: Any, where: str = "main") -> None:
    scope = page.locator(where)
    for selector in ("img", "script", "iframe", "math", "noscript", "details", "svg", "style", "b"):
        assert scope.locator(selector).count() == 0, (where, selector)
    main = page.locator("main")
    for selector in ("[onerror]", "[onload]", "[ontoggle]", "[onbegin]", "[onmouseover]", "a[href^='javascript' i]",
                     "a[href^='data' i]", "iframe", "script:not([src])"):
        assert main.locator(selector).count() == 0, selector


def test_mutation_xss_in_the_console_transcript_and_exports_is_text(console_session, markup_conversation):
    from urllib.parse import quote

    page, console_url = console_session
    cid = markup_conversation
    page.goto(f"{console_url}/conversations/{quote(cid, safe='')}")
    shown = page.locator("li.msg-visitor p.visitor-text").all_inner_texts()
    assert [t.strip() for t in shown] == MUTATION_XSS
    # the visitor's words, and the console's own "Should have been..." form that quotes them
    _no_live_markup(page, "li.msg-visitor .visitor-text")
    _no_live_markup(page, "li.msg-visitor details.correct form")
    page.wait_for_timeout(300)
    assert page.dialogs == []
    csv_body = page.request.get(f"{console_url}/conversations/{quote(cid, safe='')}/export.csv").text()
    rows = list(csv.reader(io.StringIO(csv_body)))
    said = [r[3] for r in rows[1:] if r[2] == "visitor"]
    assert said == MUTATION_XSS
    exported = page.request.get(f"{console_url}/conversations/{quote(cid, safe='')}/export.json").json()
    assert [m["text"] for m in exported["conversations"][0]["messages"] if m["speaker"] == "visitor"] == MUTATION_XSS


def test_sql_looking_contact_details_show_as_text_in_the_console(console_session, sql_referral):
    page, console_url = console_session
    page.goto(f"{console_url}/referrals/{sql_referral['reference']}")
    main = page.locator("main")
    assert SQL_NAME in main.inner_text() and SQL_TIME in main.inner_text()
    _no_live_markup(page, "main dl")
    assert page.dialogs == []


# --- property-based tests ------------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from clinic.rules import answer_parsing, eligibility  # noqa: E402
from clinic.rules.us_states import STATE_NAMES  # noqa: E402
from clinic.web import visitor_input  # noqa: E402

# any character (surrogates and controls included), with the troublesome ones often
EDGE_CHARS = st.sampled_from(["\ud800", "\udfff", "\x00", "\x1b", "\u202e", "\u2066", "\u200b", "\ufeff", "\u2028",
                              "/", "{", "\"", "\\", "\n", " ", "\u00a0", "é", "\U0001f642"])
ANY_CHAR = st.one_of(EDGE_CHARS, st.characters(exclude_categories=()))
ANY_TEXT = st.lists(ANY_CHAR, max_size=120).map("".join)  # (st.text would merge the alphabets, edges diluted)
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | ANY_TEXT
ANY_JSON = st.recursive(JSON_SCALARS, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(ANY_TEXT, kids, max_size=4),
                        max_leaves=12)
MESSAGE_LIKE = st.fixed_dictionaries(
    {}, optional={"message": ANY_JSON | ANY_TEXT, "id": ANY_JSON | st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
                  "button": ANY_JSON | st.fixed_dictionaries({}, optional={"payload": ANY_JSON | ANY_TEXT,
                                                                           "sig": ANY_JSON | ANY_TEXT,
                                                                           "title": ANY_JSON | ANY_TEXT})}
)
# the shapes a widget sends, with any text in them
TYPED = st.fixed_dictionaries({"message": ANY_TEXT}, optional={"id": ANY_JSON | st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)})
PRESSED = st.fixed_dictionaries({"button": st.fixed_dictionaries({"payload": ANY_TEXT, "sig": ANY_TEXT},
                                                                 optional={"title": ANY_JSON | ANY_TEXT})})
NESTED = st.integers(1, 40_000).map(lambda n: b"[" * n + b"]" * n) | st.integers(1, 20_000).map(
    lambda n: b'{"message": ' + b'{"a": ' * n + b"1" + b"}" * (n + 1))
BODIES = (TYPED.map(lambda v: json.dumps(v).encode()) | PRESSED.map(lambda v: json.dumps(v).encode())
          | MESSAGE_LIKE.map(lambda v: json.dumps(v).encode()) | ANY_JSON.map(lambda v: json.dumps(v).encode())
          | NESTED | st.binary(max_size=400))
CONTENT_TYPES = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", "", None,
                                 "APPLICATION/JSON", "application/x-www-form-urlencoded"])
FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _encode(value: Any) -> bytes:
    return json.dumps(value).encode()  # ensure_ascii: lone surrogates become "\ud800" escapes


@FUZZ
@given(body=BODIES, content_type=CONTENT_TYPES)
def test_visitor_input_accepts_a_clean_message_or_refuses_with_a_4xx_reason(body, content_type):
    try:
        data = visitor_input.parse_body(body, content_type)
        parsed = visitor_input.chat_message(data, 2000)
    except visitor_input.Refusal as refusal:
        assert 400 <= refusal.status < 500 and refusal.code and refusal.detail
        return
    if isinstance(parsed, visitor_input.Button):
        for part in (parsed.payload, parsed.signature, parsed.title):
            part.encode("utf-8")
        return
    assert isinstance(parsed, str) and parsed and len(parsed) <= 2000 and not parsed.startswith("/")
    parsed.encode("utf-8")
    assert parsed == parsed.strip()
    assert all(ch in "\n\t" or not unicodedata.category(ch).startswith("C") for ch in parsed)


class _FuzzRasa:
    """Rasa's REST channel, replaced: echoes one reply with a button, keeps no tracker."""

    def __init__(self) -> None:
        self.sent: List[Tuple[str, str]] = []

    async def send(self, conversation_id: str, text: str, metadata: Optional[dict] = None) -> List[Dict[str, Any]]:
        self.sent.append((conversation_id, text))
        return [{"recipient_id": conversation_id, "text": "ok", "buttons": [{"title": "Yes", "payload": "/affirm"}]}]

    async def events(self, conversation_id: str) -> List[Dict[str, Any]]:
        return []

    async def parse(self, text: str) -> Dict[str, Any]:
        return {"intent": {"name": "faq"}}

    async def append_events(self, conversation_id: str, events: List[Dict[str, Any]]) -> None:
        pass


class _InThread:
    """Sanic's reusable test client, driven from a thread of its own: its calls run an event loop,
    which cannot be done in this thread while Playwright's sync API keeps one running here."""

    def __init__(self, make: Any) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self.client = self.pool.submit(make).result()
        self.pool.submit(self.client.run).result()

    def __getattr__(self, method: str) -> Any:
        call = getattr(self.client, method)
        return lambda *args, **kwargs: self.pool.submit(call, *args, **kwargs).result()

    def close(self) -> None:
        self.pool.submit(self.client.stop).result()
        self.pool.shutdown()


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[Any, Dict[str, str], str]]:
    """The web app on Sanic's reusable test client with a fake Rasa, rate limits off; a signed
    cookie of a conversation it knows and a button signature of that conversation."""
    from sanic import Sanic
    from sanic_testing.reusable import ReusableClient

    from clinic import settings as settings_module
    from clinic.web.app import create_app
    from tests.stack import free_port

    var = tmp_path_factory.mktemp("fuzz") / "var"
    mp = pytest.MonkeyPatch()
    mp.setenv("CLINIC_VAR_DIR", str(var))
    mp.setenv("CLINIC_DB_URL", f"sqlite:///{var / 'clinic.db'}")
    mp.setenv("RATE_LIMIT_MESSAGES", "off")
    mp.setenv("RATE_LIMIT_NEW_VISITORS", "off")
    mp.setenv("RATE_LIMIT_READS", "off")
    mp.setenv("RATE_LIMIT_ADDRESS", "off")  # hypothesis's many requests all come from one address
    settings_module.get_settings.cache_clear()
    Sanic.test_mode = True
    loop = asyncio.new_event_loop()
    client = None
    try:
        app = create_app(settings_module.get_settings(), rasa=_FuzzRasa(), name="web_fuzz")
        # its own loop, never made the current one
        client = _InThread(lambda: ReusableClient(app, port=free_port(), loop=loop))
        _, first = client.post("/api/chat", content=json.dumps({"message": "hello"}),
                               headers={"content-type": "application/json"})
        cookie = {"cid": first.cookies["cid"]}
        sig = first.json["messages"][0]["buttons"][0]["sig"]
        yield client, cookie, sig
    finally:
        if client is not None:
            client.close()
        loop.close()
        mp.undo()
        settings_module.get_settings.cache_clear()
        db.get_engine.cache_clear()


@FUZZ
@given(body=BODIES, content_type=CONTENT_TYPES | st.just("application/json"),
       with_cookie=st.booleans(), genuine_sig=st.booleans())
def test_the_visitor_api_never_answers_500_whatever_the_body(fuzz_client, body, content_type, with_cookie, genuine_sig):
    client, cookie, sig = fuzz_client
    if genuine_sig and body.startswith(b"{"):
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict) and isinstance(data.get("button"), dict):
            data["button"]["sig"] = sig
            body = _encode(data)
    headers = {"content-type": content_type} if content_type is not None else {}
    _, response = client.post("/api/chat", content=body, headers=headers, cookies=cookie if with_cookie else {})
    assert response.status < 500, (response.status, response.text[:300])
    payload = response.json
    if response.status == 200:
        assert isinstance(payload["messages"], list) and payload["handoff"]["mode"] == "assistant"
    else:
        assert 400 <= response.status < 500
        assert isinstance(payload["error"], str) and isinstance(payload["detail"], str) and payload["detail"]


@FUZZ
@given(cookie=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=';",\\'), max_size=120))
def test_any_cookie_value_is_a_conversation_or_none_never_an_error(fuzz_client, cookie):
    client, _, _ = fuzz_client
    _, response = client.get("/api/history", cookies={"cid": cookie})
    assert response.status == 200 and response.json["messages"] == []


# eligibility: any rules a clinic may write, any answers in their domains

RULES = st.builds(
    lambda min_age, states, split: eligibility.Rules.from_dict({
        "min_age": min_age, "states_served": sorted(states),
        "exclude": [r for r, where in zip(eligibility.CONFIGURABLE_REASONS, split) if where == "exclude"],
        "review": [r for r, where in zip(eligibility.CONFIGURABLE_REASONS, split) if where == "review"],
    }),
    st.integers(1, 120),
    st.sets(st.sampled_from(sorted(STATE_NAMES))),
    st.lists(st.sampled_from(["exclude", "review", "neither"]), min_size=len(eligibility.CONFIGURABLE_REASONS),
             max_size=len(eligibility.CONFIGURABLE_REASONS)),
)


def _domain(name: str) -> Any:
    if name == "age":
        return st.integers(-10, 200)
    if name == "state":
        return st.sampled_from(sorted(STATE_NAMES)) | st.sampled_from(sorted(STATE_NAMES)).map(str.lower)
    if name in eligibility.SCREEN_ITEMS:
        return st.integers(0, 3)
    return st.sampled_from(eligibility.CHOICES[name])


ANSWERS = st.fixed_dictionaries({}, optional={name: st.none() | _domain(name) for name in eligibility.QUESTIONS})


@settings(max_examples=600, deadline=None, database=None)
@given(answers=ANSWERS, rules=RULES)
def test_assess_over_any_answers_in_their_domains(answers, rules):
    result = eligibility.assess(answers, rules)
    assert result.outcome in eligibility.OUTCOMES
    known = set(eligibility.FIXED_REASONS) | set(eligibility.CONFIGURABLE_REASONS)
    assert set(result.reasons) <= known and len(set(result.reasons)) == len(result.reasons)
    age = answers.get("age")
    thoughts = answers.get("suicidal_thoughts") in ("yes", "unsure")
    risk = any(answers.get(q) in ("yes", "unsure") for q in eligibility.SUICIDE_FOLLOW_UPS)
    if risk:
        assert result.outcome == eligibility.CRISIS and result.urgent
    elif age is not None and age < rules.min_age:
        assert result.outcome == eligibility.NOT_ELIGIBLE and eligibility.UNDER_MIN_AGE in result.reasons
    elif thoughts and result.outcome != eligibility.OUT_OF_AREA:
        # thoughts of ending one's life never end in a dead end, whatever else is found
        assert result.outcome == eligibility.CLINICIAN_REVIEW and result.urgent
    if result.outcome == eligibility.ELIGIBLE:
        assert result.reasons == () and not result.urgent
        assert age is None or age >= rules.min_age
        assert not thoughts and not risk
        assert answers.get("state") is None or answers["state"].upper() in rules.states_served
    if any(answers.get(q) == "yes" and q in rules.exclude for q in eligibility.SAFETY_QUESTIONS) and not thoughts:
        assert result.outcome in (eligibility.CRISIS, eligibility.NOT_ELIGIBLE, eligibility.OUT_OF_AREA)
    remaining = eligibility.remaining_questions(answers, rules)
    if result.outcome in eligibility.FINAL_OUTCOMES:
        assert remaining == []
    if not thoughts:
        assert not set(remaining) & set(eligibility.SUICIDE_FOLLOW_UPS)
    number, total = eligibility.progress(answers, rules)
    assert (number == 0) is (remaining == []) and total >= number
    # answering more can never turn a crisis into anything else
    if result.outcome == eligibility.CRISIS:
        everything = dict(zip(eligibility.QUESTIONS, [30, "TX", "depression", "both", 3, 3, 3, 3, "no", "no", "no",
                                                      "no", "no", "no", "no", "no", "no", "yes"]))
        fuller = {q: answers.get(q) or v for q, v in everything.items()}
        assert eligibility.assess(fuller, rules).outcome == eligibility.CRISIS


@settings(max_examples=300, deadline=None, database=None)
@given(answers=st.dictionaries(st.sampled_from(eligibility.QUESTIONS + ("other", "")), ANY_JSON, max_size=8), rules=RULES)
def test_assess_over_any_values_decides_or_says_which_answer_is_wrong(answers, rules):
    """Outside their domains (answers are parsed before they get here) only ValueError, naming
    the question and never the value (health data)."""
    try:
        result = eligibility.assess(answers, rules)
    except ValueError as exc:
        assert str(exc).split(":")[0] in eligibility.QUESTIONS
        return
    assert result.outcome in eligibility.OUTCOMES


# answer parsers: never raise, always a value of their domain

PARSER_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=300) | st.sampled_from(["", " ", "25", "TX", "yes", "nope", "not sure", "I'm 25, not 52",
                                          "actually I'm in CA not NY", "j@x.io", "+1 (212) 555-0199"])


@settings(max_examples=300, deadline=None, database=None)
@given(text=PARSER_TEXT, entities=st.lists(ANY_TEXT, max_size=3))
def test_answer_parsers_never_raise_and_answer_in_their_domain(text, entities):
    from actions.referral import parse_contact_time, parse_name

    age = answer_parsing.parse_age(text)
    assert age is None or (isinstance(age, int) and 1 <= age <= 120)
    state = answer_parsing.parse_state(text, entities)
    assert state is None or state in STATE_NAMES
    assert answer_parsing.parse_yes_no(text) in (None, "yes", "no", "unsure")
    for question in eligibility.SUICIDE_QUESTIONS:
        assert answer_parsing.parse_suicide_answer(text, question) in (None, "yes", "no", "unsure")
    assert answer_parsing.parse_medications(text) in (None, "yes", "no", "unsure")
    assert answer_parsing.parse_conditions(text) in (None, "yes", "no", "unsure")
    assert answer_parsing.parse_substance_use(text) in (None,) + eligibility.SUBSTANCE_USE
    for numbered in (False, True):
        frequency = answer_parsing.parse_frequency(text, numbered)
        assert frequency is None or frequency in (0, 1, 2, 3)
    assert answer_parsing.parse_concern(text) in (None,) + eligibility.CONCERNS
    assert answer_parsing.parse_treatments(text) in (None,) + eligibility.TREATMENTS
    email = answer_parsing.parse_email(text)
    assert email is None or ("@" in email and len(email) <= 254)
    phone = answer_parsing.parse_phone(text)
    assert phone is None or isinstance(phone, str)
    correction = answer_parsing.detect_correction(text)
    assert correction is None or (isinstance(correction, tuple) and correction[0] in ("email", "phone", "state", "age"))
    name = parse_name(text)
    assert name is None or 1 <= len(name) <= 100
    when = parse_contact_time(text)
    assert when is None or 1 <= len(when) <= 100

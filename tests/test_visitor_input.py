"""What a visitor may send: each refusal has a status and a clear reason."""

import json

import pytest

from clinic.web import signing, visitor_input
from clinic.web.visitor_input import Button, Refusal

JSON = "application/json"


def message(text, max_chars=2000):
    return visitor_input.chat_message({"message": text}, max_chars)


def refusal_of(fn, *args):
    with pytest.raises(Refusal) as info:
        fn(*args)
    return info.value


def test_plain_text_passes_trimmed():
    assert message("  how much does it cost?  ") == "how much does it cost?"


@pytest.mark.parametrize("text", ["", "   ", "\n\t ", "\u200b\u200b", "\x00"])
def test_empty_or_invisible_messages_are_refused(text):
    r = refusal_of(message, text)
    assert (r.status, r.code) == (422, "empty_message")


def test_a_long_message_is_refused_with_the_limit_named():
    r = refusal_of(message, "a" * 50_000)
    assert (r.status, r.code) == (413, "message_too_long")
    assert "2,000" in r.detail


@pytest.mark.parametrize("text", ["/affirm", '/inform{"age":"99"}', "  /start_prescreen", "\u200b/greet"])
def test_rasa_intent_syntax_is_refused(text):
    r = refusal_of(message, text)
    assert (r.status, r.code) == (422, "slash_command")


def test_control_and_bidi_characters_are_removed():
    assert message("hi\u202ethere\x07 \ud800ok") == "hithere ok"


def test_emoji_only_is_a_message():
    assert message("🙂🙏") == "🙂🙏"


@pytest.mark.parametrize("body", [b"{", b"not json", b"\xff\xfe{}", b""])
def test_malformed_json_is_refused(body):
    r = refusal_of(visitor_input.parse_body, body, JSON)
    assert (r.status, r.code) == (400, "invalid_json")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_refused(content_type):
    r = refusal_of(visitor_input.parse_body, b'{"message": "hi"}', content_type)
    assert r.status == 415


@pytest.mark.parametrize("data", [[], "hi", 3, {}, {"message": 5}, {"message": None}, {"button": "x"}, {"button": {"payload": "/x"}}])
def test_bodies_of_the_wrong_shape_are_refused(data):
    r = refusal_of(message_from, data)
    assert r.status == 400


def message_from(data):
    return visitor_input.chat_message(data, 2000)


def test_a_button_is_returned_for_signature_checking():
    assert message_from({"button": {"payload": "/affirm", "sig": "abc"}}) == Button("/affirm", "abc")


def test_conversation_cookie_round_trip_and_forgery():
    secret = b"s" * 32
    cid = signing.new_conversation_id()
    cookie = signing.sign_conversation_id(secret, cid)
    assert signing.read_conversation_id(secret, cookie) == cid
    assert signing.read_conversation_id(b"other" * 8, cookie) is None
    other = signing.new_conversation_id()
    assert signing.read_conversation_id(secret, other + cookie[len(cid):]) is None
    assert signing.read_conversation_id(secret, "garbage") is None
    assert signing.read_conversation_id(secret, None) is None


def test_button_signatures_are_bound_to_conversation_and_payload():
    secret = b"s" * 32
    sig = signing.sign_payload(secret, "a" * 32, "/affirm", "Yes")
    assert signing.payload_is_genuine(secret, "a" * 32, "/affirm", "Yes", sig)
    assert not signing.payload_is_genuine(secret, "b" * 32, "/affirm", "Yes", sig)
    assert not signing.payload_is_genuine(secret, "a" * 32, '/inform{"age":"99"}', "Yes", sig)
    assert not signing.payload_is_genuine(secret, "a" * 32, "/affirm", "No", sig)  # the title is signed too
    assert not signing.payload_is_genuine(secret, "a" * 32, "/affirm", "Yes", "")


def test_a_cookie_carries_its_issue_time_in_its_signature_and_goes_stale():
    secret = b"s" * 32
    cid = signing.new_conversation_id()
    cookie = signing.sign_conversation_id(secret, cid, issued=1_000_000)
    assert signing.read_cookie(secret, cookie, now=1_000_000 + 3600) == (cid, 1_000_000)
    assert signing.read_cookie(secret, cookie, max_idle_s=3000, now=1_000_000 + 3600) is None  # idle too long
    assert signing.read_cookie(secret, cookie, max_idle_s=3000, now=1_000_000 + 2000) == (cid, 1_000_000)
    later = cookie.replace(".1000000.", ".1000500.")  # the time moved on, the signature not
    assert signing.read_cookie(secret, later, now=1_000_600) is None
    future = signing.sign_conversation_id(secret, cid, issued=2_000_000)
    assert signing.read_cookie(secret, future, now=1_000_000) is None
    assert signing.read_cookie(secret, f"{cid}.{signing._mac(secret, 'cid', cid)}") is None  # the old format


def _clean_text_char_by_char(text):
    """clean_text without its shortcut for plain ASCII: what every message went through before."""
    import unicodedata

    text = unicodedata.normalize("NFC", text)
    return "".join(ch for ch in text if ch in "\n\t" or not unicodedata.category(ch).startswith("C")).strip()


def test_clean_text_gives_what_the_character_by_character_cleaning_gives():
    """On the bench's visitor texts (the held-out NLU set) and on every ASCII character around a
    word, the shortcut for plain text changes nothing."""
    from scripts.bench_visitors import load_phrasings

    texts = [t for examples in load_phrasings().values() for t in examples]
    texts += [f" a{chr(c)}b{chr(c)} " for c in range(128)] + [chr(c) for c in range(128)]
    texts += ["caf\u00e9", "cafe\u0301", " \u00a0hi\u00a0 ", "hi\u202e", "\u2028x\u2029", "x\u200by", "\U0001f600 ok"]
    assert len(texts) > 300
    assert [visitor_input.clean_text(t) for t in texts] == [_clean_text_char_by_char(t) for t in texts]

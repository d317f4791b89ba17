"""No visitor text in logs, even when an action fails."""

import logging

from clinic.log_privacy import PrivacyFilter

SECRET = "i feel hopeless, my email is jane@example.com"


def record(msg, args=(), exc=None):
    exc_info = (type(exc), exc, None) if exc else None
    return logging.LogRecord("rasa.core.processor", logging.ERROR, __file__, 1, msg, args, exc_info)


def test_an_exception_keeps_only_its_class_name():
    r = record("Encountered an exception while running action '%s'.", ("prescreen_form",), ValueError(SECRET))
    assert PrivacyFilter().filter(r)
    out = logging.Formatter("%(message)s").format(r)
    assert out == "Encountered an exception while running action 'prescreen_form'. [ValueError]"
    assert r.exc_info is None


def test_an_echoed_request_body_is_withheld():
    r = record("500, Internal Server Error, body='{\"request_body\": {\"tracker\": {\"text\": \"%s\"}}}'" % SECRET)
    PrivacyFilter().filter(r)
    out = logging.Formatter("%(message)s").format(r)
    assert SECRET not in out and "jane@" not in out
    assert out.endswith("[body withheld]")


def test_ordinary_records_pass_unchanged():
    r = record("Starting Rasa server on %s", ("http://127.0.0.1:5005",))
    PrivacyFilter().filter(r)
    assert r.getMessage() == "Starting Rasa server on http://127.0.0.1:5005"


def test_a_structured_rasa_line_keeps_its_event_and_withholds_the_visitor_text():
    line = '{"text": "%s", "event": "rest.message.received.failure", "level": "error", "exception": [{"exc_value": "%s"}]}' % (SECRET, SECRET)
    r = record(line, exc=RuntimeError(SECRET))
    PrivacyFilter().filter(r)
    out = logging.Formatter("%(message)s").format(r)
    assert SECRET not in out and "jane@" not in out
    assert '"event": "rest.message.received.failure"' in out and '"withheld": ["exception", "text"]' in out
    assert out.endswith("[RuntimeError]")


def test_json_that_is_not_a_structured_line_is_left_alone():
    for line in ('{"status": "ok"}', "{not json", "[1, 2]"):
        r = record(line)
        PrivacyFilter().filter(r)
        assert r.getMessage() == line

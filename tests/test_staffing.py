"""Staffed hours of the live chat (clinic.rules.staffing)."""

import datetime as dt
import os
import time

import pytest

from clinic.rules import staffing
from clinic.rules.staffing import StaffingError, describe_opening, is_staffed, next_opening, parse_staffing

WEEK = {
    "time_zone": "America/New_York",
    "hours": {
        "monday": ["09:00-12:00", "13:00-17:00"],
        "tuesday": ["09:00-17:00"],
        "wednesday": ["09:00-17:00"],
        "thursday": ["09:00-17:00"],
        "friday": ["09:00-24:00"],
        "saturday": [],
    },
    "holidays": ["2026-12-25"],
}


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.timezone.utc)


@pytest.fixture
def week():
    return parse_staffing(WEEK)


@pytest.mark.parametrize(
    "when,staffed",
    [
        (utc(2026, 11, 30, 14, 0), True),  # Monday 9:00 EST: opening minute
        (utc(2026, 11, 30, 13, 59), False),  # Monday 8:59 EST
        (utc(2026, 11, 30, 17, 30), False),  # Monday 12:30 EST: lunch
        (utc(2026, 11, 30, 21, 59), True),  # Monday 16:59 EST
        (utc(2026, 11, 30, 22, 0), False),  # Monday 17:00 EST: closed
        (utc(2026, 12, 5, 4, 59), True),  # Friday 23:59 EST ("24:00" ends at midnight)
        (utc(2026, 12, 5, 5, 0), False),  # Saturday 00:00 EST
        (utc(2026, 12, 6, 16, 0), False),  # Sunday: not listed
        (utc(2026, 12, 25, 16, 0), False),  # Friday, a holiday
        (utc(2026, 7, 6, 13, 0), True),  # Monday 9:00 EDT (summer time)
        (utc(2026, 7, 6, 12, 59), False),  # Monday 8:59 EDT
    ],
)
def test_staffed_hours_in_the_clinic_time_zone(week, when, staffed):
    assert is_staffed(week, when) is staffed


def test_naive_times_are_utc(week):
    assert is_staffed(week, dt.datetime(2026, 11, 30, 14, 0)) is True
    assert is_staffed(week, dt.datetime(2026, 11, 30, 13, 0)) is False


def test_next_opening_and_its_description(week):
    friday_night = utc(2026, 11, 28, 3, 0)  # Friday 22:00 EST: open till midnight, then the weekend
    opening = next_opening(week, utc(2026, 11, 29, 3, 0))  # Saturday 22:00 EST
    assert opening.isoformat() == "2026-11-30T09:00:00-05:00"
    assert describe_opening(opening, utc(2026, 11, 29, 3, 0)) == "on Monday, November 30 at 9:00 AM EST"
    lunch = next_opening(week, utc(2026, 11, 30, 17, 30))
    assert describe_opening(lunch, utc(2026, 11, 30, 17, 30)) == "today at 1:00 PM EST"
    evening = next_opening(week, utc(2026, 12, 1, 23, 0))  # Tuesday 18:00 EST
    assert describe_opening(evening, utc(2026, 12, 1, 23, 0)) == "tomorrow at 9:00 AM EST"
    # Christmas (a Friday) is skipped: Monday the 28th
    assert next_opening(week, utc(2026, 12, 25, 3, 0)).date() == dt.date(2026, 12, 28)
    assert next_opening(week, friday_night).date() == dt.date(2026, 11, 30)


def test_never_staffed_has_no_opening():
    closed = parse_staffing({"time_zone": "UTC", "hours": {}})
    assert not is_staffed(closed, utc(2026, 11, 30, 12, 0))
    assert next_opening(closed, utc(2026, 11, 30, 12, 0)) is None
    assert describe_opening(None) == "as soon as they can"


@pytest.mark.parametrize(
    "data,message",
    [
        ({"time_zone": "Mars/Olympus", "hours": {}}, "unknown time_zone"),
        ({"time_zone": "UTC", "hours": {"funday": []}}, "unknown weekday"),
        ({"time_zone": "UTC", "hours": {"monday": ["9-5"]}}, "expected HH:MM"),
        ({"time_zone": "UTC", "hours": {"monday": ["09:00"]}}, "expected HH:MM-HH:MM"),
        ({"time_zone": "UTC", "hours": {"monday": ["17:00-09:00"]}}, "ends before it starts"),
        ({"time_zone": "UTC", "hours": ["monday"]}, "hours must map"),
        ({"time_zone": "UTC", "hours": {}, "holidays": ["Christmas"]}, "not YYYY-MM-DD"),
    ],
)
def test_a_bad_file_is_an_error_that_names_the_entry(data, message):
    with pytest.raises(StaffingError, match=message):
        parse_staffing(data)


def test_the_shipped_file_is_valid():
    shipped = staffing.load_staffing(staffing.ROOT / "settings" / "staffing.yml")
    assert shipped.hours[0] and not shipped.hours[6]


def test_the_file_is_read_again_when_it_changes(tmp_path, monkeypatch):
    from tests.stack import write_staffing

    path = tmp_path / "staffing.yml"
    monkeypatch.setenv("STAFFING_FILE", str(path))
    write_staffing(path, True)
    assert is_staffed(staffing.load_staffing())
    write_staffing(path, False)
    assert not is_staffed(staffing.load_staffing())
    stamp = time.time() + 5
    os.utime(path, (stamp, stamp))
    assert not is_staffed(staffing.load_staffing())

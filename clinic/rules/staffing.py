"""Staffed hours of the live chat (``settings/staffing.yml``, or the file ``STAFFING_FILE`` names).

    staffing = load_staffing(path)
    is_staffed(staffing, now)     # a person can be asked for now
    next_opening(staffing, now)   # when the team is next in (local time), for a callback's "what next"
    describe_hours(staffing)      # "Monday to Friday, 9 am to 5 pm Eastern": the hours the assistant quotes

Times are in the file's ``time_zone`` (pytz, which Rasa already pins, so no
system time zone data is needed). A bad file is an error at load, with the
file and the entry named, never a silent "closed".
"""

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, FrozenSet, Optional, Tuple

import pytz

from clinic.settings import ROOT, load_yaml

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
Range = Tuple[dt.time, Optional[dt.time]]  # end None = midnight ("24:00")


@dataclass(frozen=True)
class Staffing:
    time_zone: Any  # a pytz time zone
    hours: Dict[int, Tuple[Range, ...]]  # weekday (Monday 0) -> ranges
    holidays: FrozenSet[dt.date]


class StaffingError(ValueError):
    pass


def _time(text: str, where: str) -> Optional[dt.time]:
    if text == "24:00":
        return None
    try:
        return dt.datetime.strptime(text, "%H:%M").time()
    except ValueError:
        raise StaffingError(f"{where}: expected HH:MM, got {text!r}") from None


def parse_staffing(data: Dict[str, Any], where: str = "staffing") -> Staffing:
    try:
        zone = pytz.timezone(str(data.get("time_zone", "")))
    except pytz.UnknownTimeZoneError:
        raise StaffingError(f"{where}: unknown time_zone {data.get('time_zone')!r}") from None
    hours_data = data.get("hours") or {}
    if not isinstance(hours_data, dict):
        raise StaffingError(f"{where}: hours must map weekdays to lists of ranges")
    unknown = set(str(k).lower() for k in hours_data) - set(WEEKDAYS)
    if unknown:
        raise StaffingError(f"{where}: unknown weekday {sorted(unknown)[0]!r}")
    hours: Dict[int, Tuple[Range, ...]] = {}
    for index, day in enumerate(WEEKDAYS):
        ranges = []
        for item in hours_data.get(day) or []:
            parts = str(item).replace(" ", "").split("-")
            if len(parts) != 2:
                raise StaffingError(f"{where}: {day}: expected HH:MM-HH:MM, got {item!r}")
            start = _time(parts[0], f"{where}: {day}")
            end = _time(parts[1], f"{where}: {day}")
            if start is None or (end is not None and end <= start):
                raise StaffingError(f"{where}: {day}: {item!r} ends before it starts")
            ranges.append((start, end))
        hours[index] = tuple(ranges)
    holidays = set()
    for item in data.get("holidays") or []:
        if isinstance(item, dt.date):
            holidays.add(item)
            continue
        try:
            holidays.add(dt.date.fromisoformat(str(item)))
        except ValueError:
            raise StaffingError(f"{where}: holiday {item!r} is not YYYY-MM-DD") from None
    return Staffing(zone, hours, frozenset(holidays))


def staffing_file() -> Path:
    return Path(os.environ.get("STAFFING_FILE", "").strip() or ROOT / "settings" / "staffing.yml")


_cache: Dict[Path, Tuple[float, Staffing]] = {}


def load_staffing(path: Optional[Path] = None) -> Staffing:
    """The file's staffing, read again when the file changes."""
    path = path or staffing_file()
    mtime = path.stat().st_mtime
    cached = _cache.get(path)
    if cached is None or cached[0] != mtime:
        cached = (mtime, parse_staffing(load_yaml(path), str(path)))
        _cache[path] = cached
    return cached[1]


def _local(staffing: Staffing, now: Optional[dt.datetime]) -> dt.datetime:
    now = now or dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)
    return now.astimezone(staffing.time_zone)


def _open_at(staffing: Staffing, local: dt.datetime) -> bool:
    if local.date() in staffing.holidays:
        return False
    t = local.time().replace(tzinfo=None)
    return any(start <= t and (end is None or t < end) for start, end in staffing.hours.get(local.weekday(), ()))


def is_staffed(staffing: Staffing, now: Optional[dt.datetime] = None) -> bool:
    """Whether ``now`` (aware, or naive UTC; default the present) is inside staffed hours."""
    return _open_at(staffing, _local(staffing, now))


def next_opening(staffing: Staffing, now: Optional[dt.datetime] = None) -> Optional[dt.datetime]:
    """The next start of staffed hours after ``now`` (local time), within two weeks; None if never."""
    local = _local(staffing, now)
    for days in range(15):
        day = (local + dt.timedelta(days=days)).date()
        if day in staffing.holidays:
            continue
        for start, _end in sorted(staffing.hours.get(day.weekday(), ())):
            candidate = staffing.time_zone.localize(dt.datetime.combine(day, start))
            if candidate > local:
                return candidate
    return None


def describe_opening(opening: Optional[dt.datetime], now: Optional[dt.datetime] = None) -> str:
    """ "today at 9:00 AM", "tomorrow at 9:00 AM", "on Monday, December 28 at 9:00 AM" (local time)."""
    if opening is None:
        return "as soon as they can"
    today = _local_date(opening, now)
    clock = opening.strftime("%I:%M %p").lstrip("0") + " " + (opening.tzname() or "")
    if opening.date() == today:
        return f"today at {clock.strip()}"
    if opening.date() == today + dt.timedelta(days=1):
        return f"tomorrow at {clock.strip()}"
    return f"on {opening.strftime('%A, %B')} {opening.day} at {clock.strip()}"


def _local_date(opening: dt.datetime, now: Optional[dt.datetime]) -> dt.date:
    now = now or dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)
    return now.astimezone(opening.tzinfo).date()


# How the hours are said for the zones a US clinic is likely to use; any other zone is named as it is.
ZONE_WORDS = {
    "America/New_York": "Eastern", "US/Eastern": "Eastern", "America/Detroit": "Eastern",
    "America/Chicago": "Central", "US/Central": "Central",
    "America/Denver": "Mountain", "US/Mountain": "Mountain", "America/Phoenix": "Arizona time",
    "America/Los_Angeles": "Pacific", "US/Pacific": "Pacific",
    "America/Anchorage": "Alaska time", "Pacific/Honolulu": "Hawaii time",
}


def _clock(t: Optional[dt.time]) -> str:
    """ "9 am", "12:30 pm", "noon", "midnight"."""
    if t is None or t == dt.time(0, 0):
        return "midnight"
    if t == dt.time(12, 0):
        return "noon"
    hour = t.hour % 12 or 12
    minutes = f":{t.minute:02d}" if t.minute else ""
    return f"{hour}{minutes} {'am' if t.hour < 12 else 'pm'}"


def _day_hours(ranges: Tuple[Range, ...]) -> str:
    return " and ".join(f"{_clock(start)} to {_clock(end)}" for start, end in sorted(ranges, key=lambda r: r[0]))


def describe_hours(staffing: Staffing) -> str:
    """The staffed hours in words, days with the same hours run together:
    "Monday to Friday, 9 am to 5 pm Eastern"; "Monday to Thursday, 9 am to 5 pm, and Friday,
    9 am to noon Eastern". Holidays are not listed (the callback offer says when the team is back)."""
    groups = []  # [first day, last day, hours text]
    for index, day in enumerate(WEEKDAYS):
        ranges = staffing.hours.get(index, ())
        if not ranges:
            continue
        text = _day_hours(ranges)
        if groups and groups[-1][2] == text and WEEKDAYS.index(groups[-1][1]) == index - 1:
            groups[-1][1] = day
        else:
            groups.append([day, day, text])
    if not groups:
        return "no staffed hours at the moment"
    parts = []
    for first, last, text in groups:
        days = first.capitalize() if first == last else f"{first.capitalize()} to {last.capitalize()}"
        if WEEKDAYS.index(last) == WEEKDAYS.index(first) + 1:
            days = f"{first.capitalize()} and {last.capitalize()}"
        parts.append(f"{days}, {text}")
    joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + ", and " + parts[-1]
    zone = getattr(staffing.time_zone, "zone", str(staffing.time_zone))
    return f"{joined} {ZONE_WORDS.get(zone, zone)}"

"""Times as the console shows them: in the clinic's time zone (``time_zone`` of
``settings/staffing.yml``, the one place it is set; read again when the file changes), with the
zone's abbreviation, so that "10:42 EST" on a list is the time on the clinic's wall clock.

Stored times stay UTC (naive ``datetime`` in the clinic DB, epoch seconds in the tracker store);
the audit log and exports keep UTC.
"""

import datetime as dt
from typing import Any, Optional, Union

import pytz

from clinic.rules import staffing


def clinic_zone() -> Any:
    """The clinic's time zone (pytz); UTC when the staffing file cannot be read."""
    try:
        return staffing.load_staffing().time_zone
    except (OSError, staffing.StaffingError):
        return pytz.utc


def localize(value: Union[dt.datetime, float, int, None]) -> Optional[dt.datetime]:
    """A stored time (naive UTC datetime, or epoch seconds) in the clinic's time zone."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    else:
        moment = dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
    return moment.astimezone(clinic_zone())


def local(value: Union[dt.datetime, float, int, None], seconds: bool = False) -> str:
    """ "2026-12-06 10:42 EST" (with ``seconds``: "10:42:07"); "" for no time."""
    moment = localize(value)
    if moment is None:
        return ""
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def day_start(day: dt.date) -> dt.datetime:
    """The first moment of ``day`` on the clinic's wall clock, as a stored time (naive UTC), so that
    a filter "from 2026-12-06 to 2026-12-06" holds every row the console shows with that date."""
    zone = clinic_zone()
    midnight = zone.localize(dt.datetime.combine(day, dt.time.min))
    return midnight.astimezone(dt.timezone.utc).replace(tzinfo=None)


def zone_name() -> str:
    """The zone's name for a heading, e.g. "America/New_York"."""
    return str(getattr(clinic_zone(), "zone", "UTC"))

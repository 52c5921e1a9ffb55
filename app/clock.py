"""The one source of "now" and "today" (UTC), so tests can move time."""

import datetime as dt


def now() -> dt.datetime:
    """The current UTC time, timezone-aware."""
    return dt.datetime.now(dt.UTC)


def today() -> dt.date:
    """Today's calendar date in UTC."""
    return now().date()

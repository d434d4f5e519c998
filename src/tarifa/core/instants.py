"""One reading of a date-time typed at any door (back-office forms, API query, CLI options).

Why one helper: ``9999-12-31T23:59:59-23:59`` is a valid ISO 8601 text whose UTC time falls after
year 9999; Python then raises ``OverflowError`` the moment anything converts it to UTC (a query, a
comparison with a stored time), which became a 500 or a traceback at every door (attack report L3).
Here such a value is refused up front, naming the field, the value and the rule.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo

__all__ = ["RULE", "MomentRefused", "day_rule", "parse_moment", "utc_moment"]

#: What a date-time must be, as said in every refusal.
RULE = "must be an ISO 8601 date or date-time whose UTC time lies between 0001-01-01 and 9999-12-31"


_DAY_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}")


def day_rule(text: str) -> str:
    """The rule a day typed as YYYY-MM-DD broke (``date.fromisoformat`` refused it): the format,
    or, for a well-formed text such as ``2027-02-30``, the calendar."""
    if _DAY_SHAPE.fullmatch(text.strip()):
        return "is not a day of the calendar"
    return "must be a date as YYYY-MM-DD"


class MomentRefused(ValueError):
    """A date-time refused at input; the message names field, value and rule."""

    def __init__(self, field: str, value: object) -> None:
        self.field, self.value = field, value
        super().__init__(f"{field} {str(value)!r} is refused: {RULE}")


def utc_moment(value: datetime, field: str, *, default_zone: tzinfo = UTC) -> datetime:
    """``value`` as an aware UTC datetime (a naive one is read in ``default_zone``), or
    :class:`MomentRefused` when its UTC time is outside what a datetime can hold."""
    aware = value if value.tzinfo is not None and value.utcoffset() is not None else value.replace(tzinfo=default_zone)
    try:
        return aware.astimezone(UTC)
    except (OverflowError, ValueError):
        raise MomentRefused(field, value.isoformat()) from None


def parse_moment(text: str, field: str, *, default_zone: tzinfo = UTC) -> datetime:
    """An ISO 8601 date or date-time text (``Z`` accepted) as an aware UTC datetime."""
    raw = text.strip()
    try:
        moment = datetime.fromisoformat(raw[:-1] + "+00:00" if raw[-1:] in "zZ" and raw else raw)
    except ValueError:
        raise MomentRefused(field, text) from None
    return utc_moment(moment, field, default_zone=default_zone)

"""The one reading of typed date-times: overflowing UTC conversions are refusals, not OverflowError."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tarifa.core.instants import MomentRefused, parse_moment, utc_moment


def test_ordinary_values_become_aware_utc() -> None:
    assert parse_moment("2026-03-01T01:00:00+01:00", "--at") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_moment("2026-03-01T00:00:00Z", "--at") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_moment("2026-03-01", "--at") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_moment("9999-12-31T23:59:59+00:00", "--at").year == 9999


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "", "x", "2026-13-01"])
def test_refusals_name_field_value_and_rule(text: str) -> None:
    with pytest.raises(MomentRefused) as caught:
        parse_moment(text, "--from")
    assert str(caught.value) == (
        f"--from {text!r} is refused: must be an ISO 8601 date or date-time whose UTC time lies between "
        "0001-01-01 and 9999-12-31"
    )


def test_an_already_parsed_value_is_checked_too() -> None:
    late = datetime(9999, 12, 31, 23, 59, tzinfo=timezone(-timedelta(hours=23, minutes=59)))
    with pytest.raises(MomentRefused, match="since '9999-12-31T23:59:00-23:59' is refused"):
        utc_moment(late, "since")


def test_a_well_formed_day_not_in_the_calendar_is_told_apart_from_a_bad_format() -> None:
    from tarifa.core.instants import day_rule

    assert day_rule("2027-02-30") == "is not a day of the calendar"
    assert day_rule(" 2026-13-01 ") == "is not a day of the calendar"
    assert day_rule("11/01/2026") == "must be a date as YYYY-MM-DD"
    assert day_rule("yesterday") == "must be a date as YYYY-MM-DD"

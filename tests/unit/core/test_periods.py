"""Time periods on rates: parsing, matching, time zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tarifa.core.periods import ALWAYS, PeriodSyntaxError, local_time, parse_period

# 2024-03-04 is a Monday.
MON = datetime(2024, 3, 4)


def at(day: int, hh: int, mm: int = 0) -> datetime:
    """A naive wall-clock time on the week starting Monday 2024-03-04 (day 0 = Monday)."""
    return MON + timedelta(days=day, hours=hh, minutes=mm)


@pytest.mark.parametrize("text", ["", "   ", None, "always", "ALWAYS"])
def test_empty_is_always(text: str | None) -> None:
    period = parse_period(text)
    assert period.is_always
    assert all(period.contains(at(d, h)) for d in range(7) for h in range(24))
    assert period == ALWAYS


def test_weekday_hours() -> None:
    p = parse_period("mon-fri 08:00-18:00")
    assert p.contains(at(0, 8, 0))  # start inclusive
    assert p.contains(at(4, 17, 59))
    assert not p.contains(at(0, 18, 0))  # end exclusive
    assert not p.contains(at(0, 7, 59))
    assert not p.contains(at(5, 12))  # Saturday
    assert p.contains(at(2, 12).replace(second=59, microsecond=999_999))


def test_whole_days_and_lists() -> None:
    weekend = parse_period("sat-sun")
    assert [weekend.contains(at(d, 12)) for d in range(7)] == [False] * 5 + [True] * 2
    assert parse_period("weekends") == weekend
    mwf = parse_period("mon,wed,fri")
    assert [mwf.contains(at(d, 0)) for d in range(7)] == [True, False, True, False, True, False, False]
    assert parse_period("weekdays") == parse_period("mon-fri")
    assert parse_period("Monday-Friday") == parse_period("mon-fri")


def test_wrapping_day_range() -> None:
    p = parse_period("fri-mon")
    assert [p.contains(at(d, 12)) for d in range(7)] == [True, False, False, False, True, True, True]
    assert str(p) == "fri-mon"


def test_crossing_midnight_belongs_to_start_day() -> None:
    p = parse_period("fri 22:00-06:00")
    assert p.contains(at(4, 22))
    assert p.contains(at(5, 5, 59))  # Saturday morning belongs to Friday's night
    assert not p.contains(at(5, 6))
    assert not p.contains(at(4, 5))  # Friday morning belongs to Thursday night: not included
    sunday_night = parse_period("sun 23:00-01:00")
    assert sunday_night.contains(at(0, 0, 30))  # wraps into Monday


def test_daily_evening() -> None:
    p = parse_period("daily 19:00-07:00")
    for d in range(7):
        assert p.contains(at(d, 19)) and p.contains(at(d, 6, 59)) and p.contains(at(d, 0))
        assert not p.contains(at(d, 7)) and not p.contains(at(d, 18, 59))
    assert parse_period("19:00-07:00") == p  # no days means every day


def test_multiple_clauses_and_ranges() -> None:
    p = parse_period("mon-fri 08:00-12:00,14:00-18:00; sat 09:00-12:00")
    assert p.contains(at(1, 9)) and p.contains(at(1, 15))
    assert not p.contains(at(1, 13))
    assert p.contains(at(5, 10)) and not p.contains(at(5, 13))
    assert not p.contains(at(6, 10))
    assert str(p) == "mon-fri 08:00-12:00,14:00-18:00; sat 09:00-12:00"


def test_end_of_day_24_00() -> None:
    p = parse_period("sat 18:00-24:00")
    assert p.contains(at(5, 23, 59)) and not p.contains(at(6, 0))
    assert parse_period("00:00-24:00").contains(at(3, 23, 59))


def test_case_and_spacing() -> None:
    assert parse_period(" MON - FRI   8:00 - 18:00 ") == parse_period("mon-fri 08:00-18:00")


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("mon-xyz 08:00-10:00", 5, "unknown day 'xyz'"),
        ("mon 25:00-26:00", 5, "hour must be 00-23"),
        ("mon 08:61-09:00", 5, "minutes must be 00-59"),
        ("mon 24:00-09:00", 5, "24:00 only as an end"),
        ("mon 08:00", 10, "expected '-'"),
        ("mon 08:00-", 11, "expected an end time"),
        ("mon 08:00-08:00", 5, "empty time range"),
        ("mon;", 5, "expected days or a time range"),
        ("mon 08:00-09:00 tue", 17, "unexpected 'tue'"),
        ("mon # 1", 5, "unexpected character '#'"),
        ("daily,mon", 6, "unexpected ','"),
        ("mon,daily", 5, "cannot be combined"),
        ("mon-", 5, "expected a day name after '-'"),
        ("always; mon", 1, "unknown day 'always'"),
        ("- mon", 1, "expected days or a time range"),
    ],
)
def test_syntax_errors_name_text_and_column(text: str, column: int, fragment: str) -> None:
    with pytest.raises(PeriodSyntaxError) as info:
        parse_period(text)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.text == text
    assert err.position + 1 == column
    assert fragment in str(err)
    assert repr(text) in str(err) and f"column {column}" in str(err)


def test_time_zone_helper() -> None:
    p = parse_period("mon-fri 08:00-18:00")
    # 13:00 UTC on a Monday is 08:00 in New York in winter (EST) ...
    winter = datetime(2024, 3, 4, 13, 0, tzinfo=UTC)
    assert p.contains_at(winter, "America/New_York")
    assert not p.contains_at(winter - timedelta(minutes=1), "America/New_York")
    # ... and 12:00 UTC is 08:00 after the DST change (EDT, UTC-4).
    summer = datetime(2024, 3, 11, 12, 0, tzinfo=UTC)
    assert local_time(summer, "America/New_York").hour == 8
    assert p.contains_at(summer, "America/New_York")
    # An instant in another offset converts correctly.
    tokyo = datetime(2024, 3, 4, 22, 0, tzinfo=timezone(timedelta(hours=9)))  # 13:00 UTC
    assert p.contains_at(tokyo, "America/New_York")


def test_naive_and_unknown_zone_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        local_time(datetime(2024, 1, 1), "UTC")
    with pytest.raises(ValueError, match="unknown time zone"):
        local_time(datetime(2024, 1, 1, tzinfo=UTC), "Mars/Olympus")


_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@st.composite
def period_texts(draw: st.DrawFn) -> str:
    clauses = []
    for _ in range(draw(st.integers(1, 3))):
        d1, d2 = draw(st.sampled_from(_DAYS)), draw(st.sampled_from(_DAYS))
        start = draw(st.integers(0, 1439))
        end = (start + draw(st.integers(1, 1439))) % 1440 or draw(st.sampled_from([0, 1440]))
        clauses.append(f"{d1}-{d2} {start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}")
    return "; ".join(clauses)


def _reference_contains(text: str, moment: datetime) -> bool:
    """A slow, obviously-correct reading of the same rules, for comparison."""
    minute = moment.hour * 60 + moment.minute
    wd = moment.weekday()
    for clause in text.split("; "):
        days_txt, times = clause.split(" ")
        a, b = (_DAYS.index(x) for x in days_txt.split("-"))
        days = {(a + k) % 7 for k in range((b - a) % 7 + 1)}
        s_txt, e_txt = times.split("-")
        s = int(s_txt[:2]) * 60 + int(s_txt[3:])
        e = int(e_txt[:2]) * 60 + int(e_txt[3:])
        if s < e:
            if wd in days and s <= minute < e:
                return True
        elif (wd in days and minute >= s) or ((wd - 1) % 7 in days and minute < e):
            return True
    return False


@given(period_texts(), st.integers(0, 7 * 1440 - 1))
def test_bitmap_agrees_with_rules(text: str, minute_of_week: int) -> None:
    moment = MON + timedelta(minutes=minute_of_week)
    period = parse_period(text)
    assert period.contains(moment) == _reference_contains(text, moment)
    assert parse_period(str(period)) == period  # canonical text round-trips


@pytest.mark.parametrize(
    ("at", "tz", "day", "month"),
    [
        # New York in summer time (UTC-4): the day began at 04:00 UTC
        ("2026-05-04T12:00:00+00:00", "America/New_York", "2026-05-04T04:00:00+00:00", "2026-05-01T04:00:00+00:00"),
        # 03:00 UTC is still the evening before in New York
        ("2026-05-04T03:00:00+00:00", "America/New_York", "2026-05-03T04:00:00+00:00", "2026-05-01T04:00:00+00:00"),
        # Tokyo is ahead: 20:00 UTC is already the next day there
        ("2026-05-31T20:00:00+00:00", "Asia/Tokyo", "2026-05-31T15:00:00+00:00", "2026-05-31T15:00:00+00:00"),
        ("2026-03-15T10:30:00+00:00", "UTC", "2026-03-15T00:00:00+00:00", "2026-03-01T00:00:00+00:00"),
        # Santiago moved its clocks forward at midnight: the day began when they jumped (04:00 UTC)
        ("2025-09-07T12:00:00+00:00", "America/Santiago", "2025-09-07T04:00:00+00:00", "2025-09-01T04:00:00+00:00"),
    ],
)
def test_local_day_and_month_start(at: str, tz: str, day: str, month: str) -> None:
    from datetime import datetime

    from tarifa.core.periods import day_start, month_start

    moment = datetime.fromisoformat(at)
    assert day_start(moment, tz) == datetime.fromisoformat(day)
    assert month_start(moment, tz) == datetime.fromisoformat(month)
    assert day_start(moment, tz) <= moment and day_start(moment, tz).utcoffset().total_seconds() == 0

"""The notice rules without a database: low balance (once a day, re-armed by money), card expiry
windows, retry back-off, safe addresses and headers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tarifa.core.notices import (
    MAX_ATTEMPTS,
    LowBalance,
    below_threshold,
    card_expires_on,
    card_expiry_key,
    expiry_months,
    expiry_window,
    header_text,
    low_balance_due,
    low_balance_key,
    money_text,
    parse_windows,
    recipients,
    retry_delay,
)

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
D = Decimal


def state(funds: str = "4", threshold: str | None = "10", last: datetime | None = None, armed: datetime | None = None):  # type: ignore[no-untyped-def]
    return LowBalance(D(funds), D(threshold) if threshold is not None else None, last, armed)


def test_below_threshold_is_strict_and_needs_a_threshold() -> None:
    assert below_threshold(D("9.99"), D("10"))
    assert not below_threshold(D("10"), D("10"))
    assert not below_threshold(D("-50"), None)


def test_first_notice_when_below_and_never_sent() -> None:
    assert low_balance_due(state(), NOW)
    assert not low_balance_due(state(funds="10"), NOW)
    assert not low_balance_due(state(threshold=None), NOW)


def test_once_a_day_while_below() -> None:
    sent = NOW - timedelta(hours=9)  # 01:00 the same day
    assert not low_balance_due(state(last=sent), NOW)
    assert low_balance_due(state(last=sent), NOW + timedelta(days=1))
    assert low_balance_due(state(last=NOW - timedelta(hours=11)), NOW)  # 23:00 the day before


def test_money_added_rearms_and_a_new_crossing_notifies_at_once() -> None:
    sent = NOW - timedelta(hours=2)
    assert not low_balance_due(state(last=sent, armed=sent - timedelta(minutes=1)), NOW)
    assert low_balance_due(state(last=sent, armed=sent + timedelta(minutes=1)), NOW)
    # money added and funds now above the threshold: nothing (the reminders stop)
    assert not low_balance_due(state(funds="50", last=sent, armed=sent + timedelta(minutes=1)), NOW)


def test_the_day_is_the_customers_local_day() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    sent = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)  # 23:00 in Tokyo
    later = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)  # 01:00 the next day in Tokyo, same UTC day
    assert not low_balance_due(state(last=sent), later)
    assert low_balance_due(state(last=sent), later, lambda moment: moment.astimezone(tokyo).date())


def test_low_balance_key_is_the_same_for_the_same_decision() -> None:
    armed = datetime(2026, 12, 1, tzinfo=UTC)
    key = low_balance_key("customer:7", date(2026, 12, 7), armed)
    assert key == low_balance_key("customer:7", date(2026, 12, 7), armed)
    assert key != low_balance_key("customer:7", date(2026, 12, 8), armed)
    assert key != low_balance_key("customer:7", date(2026, 12, 7), armed + timedelta(seconds=5))
    assert key != low_balance_key("account:7", date(2026, 12, 7), armed)


@pytest.mark.parametrize(
    ("today", "window"),
    [
        (date(2026, 11, 30), None),  # 31 days left
        (date(2026, 12, 1), 30),
        (date(2026, 12, 23), 30),  # 8 days left
        (date(2026, 12, 24), 7),
        (date(2026, 12, 31), 7),  # last valid day
        (date(2027, 1, 1), None),  # expired
    ],
)
def test_expiry_windows(today: date, window: int | None) -> None:
    assert card_expires_on(2026, 12) == date(2026, 12, 31)
    assert expiry_window(2026, 12, today, (30, 7)) == window


def test_a_card_expiring_in_february_of_a_leap_year() -> None:
    assert card_expires_on(2028, 2) == date(2028, 2, 29)


def test_expiry_months_cover_the_horizon_across_a_year_end() -> None:
    assert expiry_months(date(2026, 12, 7), 30) == [(2026, 12), (2027, 1)]
    assert expiry_months(date(2026, 12, 1), 30) == [(2026, 12)]
    assert card_expiry_key(5, 2027, 1, 7) == "card_expiry:5:2027-01:7"


@pytest.mark.parametrize("raw", ["", "30,soon", "0", "400", "-7"])
def test_windows_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="day counts from 1 to 365"):
        parse_windows(raw)


def test_windows_parsed_widest_first_without_repeats() -> None:
    assert parse_windows(" 7, 30 ,7") == (30, 7)


def test_retry_back_off_doubles_up_to_a_cap_then_gives_up() -> None:
    assert retry_delay(1) == timedelta(minutes=1)
    assert retry_delay(2) == timedelta(minutes=2)
    assert retry_delay(5) == timedelta(minutes=16)
    assert retry_delay(MAX_ATTEMPTS - 1) is not None
    assert retry_delay(MAX_ATTEMPTS - 1) <= timedelta(hours=6)  # type: ignore[operator]
    assert retry_delay(MAX_ATTEMPTS) is None


def test_recipients_take_the_first_list_set_and_refuse_injection() -> None:
    assert recipients("", "jane@doe.example").good == ("jane@doe.example",)
    both = recipients("a@x.example, b@y.example,a@x.example", "jane@doe.example")
    assert both.good == ("a@x.example", "b@y.example")
    bad = recipients("a@x.example\r\nBcc: victim@evil.example, Eve <e@x.example>, plain")
    assert bad.good == ()
    assert len(bad.refused) == 3
    assert recipients("", "").good == ()


def test_header_text_flattens_line_breaks_and_drops_control_characters() -> None:
    assert header_text("Invoice for Evil\r\nBcc: x@evil.example\x00") == "Invoice for Evil Bcc: x@evil.example"
    assert len(header_text("x" * 500)) == 200


def test_money_text() -> None:
    assert money_text(D("5")) == "5.00"
    assert money_text(D("5.100000")) == "5.10"
    assert money_text(D("0.012500")) == "0.0125"
    assert money_text(D("-3.5")) == "-3.50"

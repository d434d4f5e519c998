"""The reference rating engine: terms, cost, max duration, rate selection, rate_call."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tarifa.core.periods import parse_period
from tarifa.core.rating import (
    RateEntry,
    RateTable,
    RateTerms,
    RatingStatus,
    Rounding,
    UnratedReason,
    billed_seconds,
    call_cost,
    cost_units,
    duration_from_seconds,
    max_duration,
    quantize,
    rate_call,
)

D = Decimal
T0 = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)  # a Monday, noon UTC


def terms(p1: str = "0.10", pn: str | None = None, i1: int = 60, i_n: int = 60, **kw: object) -> RateTerms:
    return RateTerms(D(p1), D(pn if pn is not None else p1), i1, i_n, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- RateTerms


def test_terms_coerce_and_validate() -> None:
    t = RateTerms("0.1", 2, 30, 6, connect_fee="0.05")  # type: ignore[arg-type]
    assert t.price_1 == D("0.1") and isinstance(t.price_n, Decimal) and t.connect_fee == D("0.05")
    with pytest.raises(TypeError, match="never float"):
        RateTerms(0.1, D(1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 0"):
        RateTerms(D("-0.1"), D(1))
    with pytest.raises(ValueError, match="finite"):
        RateTerms(D("NaN"), D(1))
    with pytest.raises(ValueError, match="interval_1 must be >= 1"):
        RateTerms(D(1), D(1), 0, 60)
    with pytest.raises(ValueError, match="grace_period"):
        RateTerms(D(1), D(1), grace_period=-1)
    with pytest.raises(TypeError, match="interval_n"):
        RateTerms(D(1), D(1), 60, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a number"):
        RateTerms("abc", D(1))  # type: ignore[arg-type]


def test_terms_are_hashable_values() -> None:
    assert terms("0.10") == RateTerms(D("0.10"), D("0.10"))
    assert len({terms("0.10"), terms("0.10")}) == 1


# --------------------------------------------------------------------------- billed seconds


@pytest.mark.parametrize(
    ("kw", "duration", "billed"),
    [
        ({}, 0, 0),
        ({}, 1, 60),
        ({}, 60, 60),
        ({}, 61, 120),
        ({"i1": 30, "i_n": 6}, 29, 30),
        ({"i1": 30, "i_n": 6}, 31, 36),
        ({"i1": 30, "i_n": 6}, 36, 36),
        ({"i1": 30, "i_n": 6}, 37, 42),
        ({"i1": 1, "i_n": 1}, 47, 47),
        ({"grace_period": 5}, 5, 0),
        ({"grace_period": 5}, 6, 60),
        ({"free_seconds": 30}, 30, 0),
        ({"free_seconds": 30}, 31, 60),
        ({"free_seconds": 30, "i1": 1, "i_n": 1}, 100, 70),
        ({"i1": 60, "i_n": 1}, 61, 61),
    ],
)
def test_billed_seconds(kw: dict[str, int], duration: int, billed: int) -> None:
    extra: dict[str, object] = {k: v for k, v in kw.items() if k not in ("i1", "i_n")}
    t = RateTerms(D("0.10"), D("0.10"), kw.get("i1", 60), kw.get("i_n", 60), **extra)  # type: ignore[arg-type]
    assert billed_seconds(t, duration) == billed


# --------------------------------------------------------------------------- call cost


def test_cost_has_exact_places() -> None:
    t = terms("0.10")
    assert str(call_cost(t, 60, 2, "half_up")) == "0.10"
    assert str(call_cost(t, 0, 4, "half_up")) == "0.0000"
    assert str(call_cost(t, 60, 0, "up")) == "1"
    assert str(call_cost(terms("12"), 600, 0, "down")) == "120"


def test_rounding_modes() -> None:
    t = terms("0.05", i1=1, i_n=1)  # 15 s = 0.0125
    assert call_cost(t, 15, 2, Rounding.HALF_UP) == D("0.01")
    assert call_cost(t, 15, 3, Rounding.HALF_UP) == D("0.013")
    assert call_cost(t, 15, 2, Rounding.UP) == D("0.02")
    assert call_cost(t, 15, 3, Rounding.DOWN) == D("0.012")
    assert call_cost(t, 12, 2, "up") == D("0.01")  # exactly 0.01: nothing to round


def test_exact_arithmetic_beats_decimal_division() -> None:
    """7.48 * 1025 / 60 * 3 is exactly 383.35; 28-digit Decimal division gives 383.3499..."""
    t = terms("7.48", i1=1, i_n=1, post_call_surcharge=D(200))
    naive = (D("7.48") * 1025 / 60 * (1 + D(200) / 100)).quantize(D("0.01"), rounding="ROUND_DOWN")
    assert naive == D("383.34")
    assert call_cost(t, 1025, 2, "down") == D("383.35")
    # The same trap upwards: exactly 668.360 must not become 668.361 with "up".
    t = terms("3.92", i1=1, i_n=1, post_call_surcharge=D(200))
    assert call_cost(t, 3410, 3, "up") == D("668.360")


def test_connect_fee_min_charge_and_surcharge_order() -> None:
    t = terms("0.01", connect_fee=D("0.02"), min_charge=D("0.25"), post_call_surcharge=D(10))
    assert call_cost(t, 90, 3, "half_up") == D("0.275")  # max(0.02 + 0.02, 0.25) * 1.1
    t = terms("0.10", connect_fee=D("0.05"), post_call_surcharge=D(10))
    assert call_cost(t, 120, 3, "half_up") == D("0.275")  # (0.05 + 0.20) * 1.1


def test_forbidden_terms_still_have_a_price() -> None:
    assert call_cost(terms("0.10", forbidden=True), 60, 2, "half_up") == D("0.10")


def test_call_cost_argument_checks() -> None:
    t = terms()
    with pytest.raises(ValueError, match="decimals"):
        call_cost(t, 60, -1, "half_up")
    with pytest.raises(ValueError, match="decimals"):
        call_cost(t, 60, 13, "half_up")
    with pytest.raises(ValueError, match="rounding"):
        call_cost(t, 60, 2, "bankers")
    with pytest.raises(ValueError, match=">= 0"):
        call_cost(t, -1, 2, "half_up")
    with pytest.raises(TypeError, match="duration_from_seconds"):
        call_cost(t, D("1.5"), 2, "half_up")  # type: ignore[arg-type]


def test_huge_values_stay_exact() -> None:
    t = terms("999999.999999", connect_fee=D("0.000001"), post_call_surcharge=D("33.333333"))
    expected = (Fraction(1, 10**6) + Fraction(D("999999.999999")) * 86_400 / 60) * (1 + Fraction(D("33.333333")) / 100)
    assert call_cost(t, 86_400, 6, "down") == D(math.floor(expected * 10**6)).scaleb(-6)


def test_quantize() -> None:
    assert quantize(D("0.125"), 2, "half_up") == D("0.13")
    assert quantize(D("0.121"), 2, "up") == D("0.13")
    assert quantize(D("0.129"), 2, "down") == D("0.12")


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(0, 0), (5, 5), (D("1.2"), 2), ("1.2", 2), (" 3 ", 3), ("0.0001", 1), (D("7.000"), 7), (1.1, 2), (2.0, 2)],
)
def test_duration_from_seconds(value: object, seconds: int) -> None:
    assert duration_from_seconds(value) == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [-1, "-0.5", "abc", "inf", D("NaN"), True, None])
def test_duration_from_seconds_refuses(value: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        duration_from_seconds(value)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- properties

prices = st.decimals(min_value=0, max_value=1000, places=6)
small_money = st.decimals(min_value=0, max_value=5, places=4)
roundings = st.sampled_from(list(Rounding))


@st.composite
def rate_terms(draw: st.DrawFn) -> RateTerms:
    return RateTerms(
        price_1=draw(prices),
        price_n=draw(prices),
        interval_1=draw(st.integers(1, 120)),
        interval_n=draw(st.integers(1, 120)),
        connect_fee=draw(small_money),
        free_seconds=draw(st.integers(0, 120)),
        grace_period=draw(st.integers(0, 30)),
        post_call_surcharge=draw(st.decimals(min_value=0, max_value=100, places=3)),
        min_charge=draw(small_money),
    )


def oracle(t: RateTerms, d: int, decimals: int, rounding: str) -> Decimal:
    """DESIGN section 3 with Fractions, written as plainly as possible."""
    if d == 0 or d <= t.grace_period:
        return D(0).scaleb(-decimals)
    b = max(0, d - t.free_seconds)
    if b == 0:
        billed = 0
    elif b <= t.interval_1:
        billed = t.interval_1
    else:
        billed = t.interval_1 + math.ceil(Fraction(b - t.interval_1, t.interval_n)) * t.interval_n
    amount = (
        Fraction(t.connect_fee)
        + Fraction(t.price_1) * min(billed, t.interval_1) / 60
        + Fraction(t.price_n) * max(0, billed - t.interval_1) / 60
    )
    amount = max(amount, Fraction(t.min_charge))
    amount *= 1 + Fraction(t.post_call_surcharge) / 100
    scaled = amount * 10**decimals
    if rounding == "down":
        units = math.floor(scaled)
    elif rounding == "up":
        units = math.ceil(scaled)
    else:
        units = math.floor(scaled + Fraction(1, 2))
    return D(units).scaleb(-decimals)


@given(rate_terms(), st.integers(0, 20_000), st.integers(0, 6), roundings)
def test_cost_matches_fraction_oracle(t: RateTerms, d: int, decimals: int, rounding: Rounding) -> None:
    assert call_cost(t, d, decimals, rounding) == oracle(t, d, decimals, rounding)


@given(rate_terms(), st.integers(0, 20_000), st.integers(1, 600), st.integers(0, 6), roundings)
def test_cost_is_monotonic(t: RateTerms, d: int, extra: int, decimals: int, rounding: Rounding) -> None:
    assert call_cost(t, d, decimals, rounding) <= call_cost(t, d + extra, decimals, rounding)


@given(rate_terms(), st.data())
def test_zero_within_grace(t: RateTerms, data: st.DataObject) -> None:
    d = data.draw(st.integers(0, t.grace_period))
    assert call_cost(t, d, 2, "up") == 0
    assert billed_seconds(t, d) == 0


@given(rate_terms(), st.integers(1, 20_000), st.integers(0, 6), roundings)
def test_never_below_min_charge(t: RateTerms, d: int, decimals: int, rounding: Rounding) -> None:
    assume(d > t.grace_period)
    cost = call_cost(t, d, decimals, rounding)
    assert cost >= quantize(t.min_charge, decimals, rounding)
    if t.min_charge == quantize(t.min_charge, decimals, rounding):
        assert cost >= t.min_charge


@settings(max_examples=300)
@given(
    rate_terms(),
    st.decimals(min_value=-1, max_value=500, places=4),
    st.integers(0, 6),
    roundings,
    st.integers(0, 100_000),
)
def test_max_duration_consistent_with_cost(
    t: RateTerms, available: Decimal, decimals: int, rounding: Rounding, cap: int
) -> None:
    m = max_duration(t, available, decimals, rounding, cap)
    assert 0 <= m <= cap
    if m > 0:
        assert call_cost(t, m, decimals, rounding) <= available
        if m < cap:  # one more second (the next billed interval) is unaffordable
            assert call_cost(t, m + 1, decimals, rounding) > available
    else:
        first = min(t.grace_period + 1, cap)
        assert cap == 0 or call_cost(t, first, decimals, rounding) > available


def test_max_duration_examples() -> None:
    t = terms("0.10")
    assert max_duration(t, D("1.00"), 2, "half_up", 86_400) == 600
    assert max_duration(t, D("1.00"), 2, "half_up", 300) == 300  # capped
    assert max_duration(t, D("0.09"), 2, "half_up", 86_400) == 0  # first minute unaffordable
    assert max_duration(t, D("0.10"), 2, "half_up", 86_400) == 60
    assert max_duration(terms("0.10", forbidden=True), D(100), 2, "half_up", 3600) == 0
    assert max_duration(t, D(100), 2, "half_up", 0) == 0
    assert max_duration(terms("0"), D(0), 2, "half_up", 3600) == 3600  # free destination
    # Negative balance: even a call inside the grace period is refused.
    assert max_duration(terms("0.10", grace_period=5), D("-0.01"), 2, "half_up", 3600) == 0
    # Grace longer than the cap: the whole capped call is free.
    assert max_duration(terms("0.10", grace_period=10), D(0), 2, "half_up", 8) == 8
    # 30/6 with a connect fee: 0.05 + 0.06 * (30 + 6k) / 60 <= 0.50 -> k = 70 -> 450 s
    t = terms("0.06", i1=30, i_n=6, connect_fee=D("0.05"))
    assert max_duration(t, D("0.50"), 2, "half_up", 86_400) == 450
    assert max_duration(t, "0.50", 2, "half_up", 86_400) == 450  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        max_duration(t, 0.5, 2, "half_up", 60)  # type: ignore[arg-type]


def test_max_duration_is_logarithmic(monkeypatch: pytest.MonkeyPatch) -> None:
    import tarifa.core.rating as rating

    calls = 0
    real = rating.cost_units

    def counting(*args: object) -> int:
        nonlocal calls
        calls += 1
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(rating, "cost_units", counting)
    # 6,000,059 s cost 1000.0098..., which "down" bills as 1000.00.
    assert rating.max_duration(terms("0.01", i1=1, i_n=1), D("1000"), 2, "down", 10**9) == 6_000_059
    assert calls <= 40


def test_cost_units_agrees_with_call_cost() -> None:
    t = terms("0.0123", i1=30, i_n=6, post_call_surcharge=D("7.5"))
    assert D(cost_units(t, 95, 4, "up")).scaleb(-4) == call_cost(t, 95, 4, "up")


# --------------------------------------------------------------------------- rate entries


def test_rate_entry_validation() -> None:
    t = terms()
    with pytest.raises(ValueError, match="prefix"):
        RateEntry("", "x", t)
    with pytest.raises(ValueError, match="prefix"):
        RateEntry("1" * 16, "x", t)
    with pytest.raises(ValueError, match="prefix"):
        RateEntry("44a", "x", t)
    with pytest.raises(ValueError, match="timezone-aware"):
        RateEntry("44", "x", t, effective_from=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="must be after"):
        RateEntry("44", "x", t, effective_from=T0, effective_to=T0)
    e = RateEntry("44", "x", t, period="mon-fri 08:00-18:00")  # type: ignore[arg-type]
    assert e.period == parse_period("mon-fri 08:00-18:00")
    assert RateEntry("44", "x", t, period="").period is None  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid period"):
        RateEntry("44", "x", t, period="mon-xyz")  # type: ignore[arg-type]


def test_longest_prefix_wins() -> None:
    table = RateTable(
        [RateEntry("4", "four", terms()), RateEntry("44", "UK", terms()), RateEntry("4420", "London", terms())]
    )
    assert table.find("442071234567", T0).destination == "London"  # type: ignore[union-attr]
    assert table.find("447700900123", T0).destination == "UK"  # type: ignore[union-attr]
    assert table.find("49", T0).destination == "four"  # type: ignore[union-attr]
    assert table.find("442", T0).destination == "UK"  # type: ignore[union-attr]  # shorter than 4420
    assert table.find("33", T0) is None
    assert table.find("", T0) is None


def test_effective_dates() -> None:
    jan, jul = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC)
    old = RateEntry("44", "old", terms("0.02"), effective_from=jan, effective_to=jul)
    new = RateEntry("44", "new", terms("0.018"), effective_from=jul)
    base = RateEntry("4", "base", terms("0.5"))
    table = RateTable([new, old, base])
    assert table.find("4420", jan - timedelta(seconds=1)) is base  # no 44 yet: shorter prefix
    assert table.find("4420", jan) is old  # from is inclusive
    assert table.find("4420", jul - timedelta(microseconds=1)) is old
    assert table.find("4420", jul) is new  # to is exclusive
    # Overlapping versions: the latest effective_from wins.
    newer = RateEntry("44", "newer", terms("0.01"), effective_from=jan + timedelta(days=10))
    table = RateTable([old, newer])
    assert table.find("4420", jan + timedelta(days=20)) is newer
    assert table.find("4420", jan + timedelta(days=5)) is old


def test_period_selection_in_table_time_zone() -> None:
    peak = RateEntry("447", "peak", terms("0.08"), period=parse_period("mon-fri 08:00-18:00"))
    offpeak = RateEntry("447", "offpeak", terms("0.04"))
    table = RateTable([offpeak, peak], "Asia/Tokyo")  # UTC+9, no DST
    monday_9_tokyo = datetime(2024, 3, 4, 0, 0, tzinfo=UTC)  # 09:00 Monday in Tokyo
    assert table.find("447700", monday_9_tokyo) is peak
    assert table.find("447700", monday_9_tokyo + timedelta(hours=9)) is offpeak  # 18:00 Tokyo
    assert table.find("447700", monday_9_tokyo - timedelta(hours=2)) is offpeak  # 07:00 Tokyo
    assert table.has_periods and table.tz_name == "Asia/Tokyo"
    # Only-period prefix: outside the period the shorter prefix applies.
    table = RateTable([peak, RateEntry("44", "uk", terms())], "Asia/Tokyo")
    assert table.find("447700", monday_9_tokyo).destination == "peak"  # type: ignore[union-attr]
    assert table.find("447700", monday_9_tokyo + timedelta(days=5)).destination == "uk"  # type: ignore[union-attr]


def test_table_checks() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        RateTable([], "Nowhere/Land")
    with pytest.raises(ValueError, match="timezone-aware"):
        RateTable([RateEntry("1", "x", terms())]).find("1", datetime(2024, 1, 1))
    table = RateTable([RateEntry("1", "x", terms()), RateEntry("1", "y", terms())])
    assert len(table) == 2 and [e.destination for e in table] == ["x", "y"]
    assert table.find("1", T0).destination == "x"  # type: ignore[union-attr]  # first listed wins a tie
    assert [e.destination for e in table.versions("1")] == ["x", "y"]


# --------------------------------------------------------------------------- rate_call


def _table() -> RateTable:
    return RateTable(
        [
            RateEntry("1", "NANP", terms("0.01")),
            RateEntry("1900", "premium", terms("1.00", forbidden=True)),
            RateEntry("44", "UK", terms("0.02", i1=1, i_n=1, grace_period=3)),
        ]
    )


def test_rate_call_rated() -> None:
    r = rate_call(_table(), "442071234567", T0, D("90.2"), 4, "half_up")
    assert r.status == RatingStatus.RATED and r.reason is None
    assert (r.prefix, r.destination, r.duration, r.billed_seconds) == ("44", "UK", 91, 91)
    assert r.cost == D("0.0303")  # 0.02 * 91 / 60 = 0.030333...
    assert r.entry is not None and r.entry.prefix == "44"


def test_rate_call_grace_and_zero() -> None:
    r = rate_call(_table(), "442071234567", T0, 3, 2, "up")
    assert r.status == RatingStatus.RATED and r.cost == D("0.00") and r.billed_seconds == 0


def test_rate_call_forbidden_unrated_invalid() -> None:
    table = _table()
    r = rate_call(table, "19005550000", T0, 60, 2, "half_up")
    assert r.status == RatingStatus.FORBIDDEN and r.cost is None and r.prefix == "1900"
    r = rate_call(table, "861380013800", T0, 60, 2, "half_up")
    assert r.status == RatingStatus.UNRATED and r.reason == UnratedReason.NO_RATE and r.cost is None
    for bad in ("", "12a", "0044207", "1234567890123456"):
        r = rate_call(table, bad, T0, 60, 2, "half_up")
        assert r.status == RatingStatus.UNRATED and r.reason == UnratedReason.INVALID_NUMBER
        assert r.number == bad and r.detail


def test_rate_call_with_dialing_mode() -> None:
    table = _table()
    r = rate_call(table, "(212) 555-1234", T0, 60, 2, "half_up", dialing_mode="nanp")
    assert r.status == RatingStatus.RATED and r.number == "12125551234" and r.prefix == "1"
    r = rate_call(table, "011 44 20 7123 4567", T0, 60, 2, "half_up", dialing_mode="nanp")
    assert r.prefix == "44"
    r = rate_call(table, "555-1234", T0, 60, 2, "half_up", dialing_mode="nanp")
    assert r.reason == UnratedReason.INVALID_NUMBER and r.detail and "7 digits" in r.detail


def test_rate_call_argument_checks() -> None:
    with pytest.raises(ValueError, match="rounding"):
        rate_call(_table(), "1", T0, 60, 2, "nearest")
    with pytest.raises(ValueError, match="duration"):
        rate_call(_table(), "1", T0, -5, 2, "up")

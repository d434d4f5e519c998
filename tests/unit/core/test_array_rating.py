"""The NumPy batch path must give exactly what the reference path gives."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tarifa.core.array_rating import (
    FORBIDDEN,
    INVALID_NUMBER,
    NO_RATE,
    RATED,
    FastDeck,
    FastPathUnsupported,
    numbers_to_int64,
    rate_batch,
)
from tarifa.core.rating import (
    RateEntry,
    RateTable,
    RateTerms,
    RatingStatus,
    Rounding,
    call_cost,
    rate_call,
)

T0 = datetime(2024, 5, 15, 12, 0, tzinfo=UTC)
D = Decimal


def _random_terms(rng: random.Random) -> RateTerms:
    def money(high: int) -> Decimal:
        return D(rng.randint(0, high)).scaleb(-rng.choice([0, 2, 4, 6]))

    return RateTerms(
        price_1=money(2_000_000),
        price_n=money(2_000_000),
        interval_1=rng.choice([1, 6, 30, 60, 60, 45]),
        interval_n=rng.choice([1, 6, 60, 60, 7]),
        connect_fee=rng.choice([D(0), D(0), money(50_000)]),
        free_seconds=rng.choice([0, 0, 0, 10, 30]),
        grace_period=rng.choice([0, 0, 3, 6]),
        post_call_surcharge=rng.choice([D(0), D(0), D(10), D("12.5"), D("3.333333"), D(200), D("0.000001")]),
        min_charge=rng.choice([D(0), D(0), D("0.01"), money(100_000)]),
        forbidden=rng.random() < 0.02,
    )


def _random_deck(rng: random.Random, size: int) -> list[RateEntry]:
    prefixes: set[str] = set()
    while len(prefixes) < size:
        if prefixes and rng.random() < 0.4:  # extend an existing prefix: nested prefixes
            base = rng.choice(sorted(prefixes)) if len(prefixes) < 50 else rng.choice(tuple(prefixes))
            candidate = base + str(rng.randint(0, 9)) * rng.randint(1, 3)
        else:
            length = rng.randint(1, 8)
            # No prefix starts with 6 or 8, so some numbers find no rate at all.
            candidate = rng.choice("1234579") + "".join(str(rng.randint(0, 9)) for _ in range(length - 1))
        if len(candidate) <= 15:
            prefixes.add(candidate)
    return [RateEntry(p, f"dest {p}", _random_terms(rng)) for p in sorted(prefixes)]


def _random_number(rng: random.Random, prefixes: list[str]) -> str:
    roll = rng.random()
    if roll < 0.75:
        p = rng.choice(prefixes)
        return (p + "".join(str(rng.randint(0, 9)) for _ in range(rng.randint(0, 12))))[:15]
    if roll < 0.85:
        return str(rng.randint(1, 10 ** rng.randint(1, 15) - 1))
    if roll < 0.9:  # a number shorter than the prefixes it starts like
        p = max(prefixes, key=len) if rng.random() < 0.5 else rng.choice(prefixes)
        return p[: rng.randint(1, len(p))]
    return rng.choice(["", "0", "0044207", "12a4", " 123", "+4420", "1_2", "1" * 16, "٣٣", "9" * 15, "1"])


def _random_duration(rng: random.Random) -> int:
    if rng.random() < 0.3:
        return rng.choice([0, 1, 2, 3, 5, 6, 7, 10, 11, 29, 30, 31, 59, 60, 61, 3600, 86_400])
    return rng.randint(0, 7_200)


def test_100k_cdrs_identical_to_reference() -> None:
    """100,000 generated CDRs, every decimals 0..6 x rounding mode, fast == reference."""
    rng = random.Random(20240515)
    entries = _random_deck(rng, 3_000)
    table = RateTable(entries)
    deck = FastDeck.for_window(table, T0, T0 + timedelta(days=31))
    prefixes = [e.prefix for e in entries]
    combos = [(dec, rnd) for dec in range(7) for rnd in Rounding]
    per_combo = 100_000 // len(combos) + 1
    checked = 0
    statuses: set[int] = set()
    for decimals, rounding in combos:
        numbers = [_random_number(rng, prefixes) for _ in range(per_combo)]
        durations = [_random_duration(rng) for _ in range(per_combo)]
        fast = rate_batch(deck, numbers, np.array(durations, dtype=np.int64), decimals, rounding)
        fast_costs = fast.costs()
        for i, (number, duration) in enumerate(zip(numbers, durations, strict=True)):
            ref = rate_call(table, number, T0, duration, decimals, rounding)
            status, reason = fast.outcome(i)
            assert (status, reason) == (ref.status, ref.reason), (number, duration)
            assert fast_costs[i] == ref.cost, (number, duration, decimals, rounding)
            assert fast.prefix(i) == ref.prefix, number
            assert int(fast.billed_seconds[i]) == ref.billed_seconds, (number, duration)
        statuses.update(fast.status.tolist())
        checked += per_combo
    assert checked >= 100_000
    assert statuses == {RATED, NO_RATE, INVALID_NUMBER, FORBIDDEN}


money6 = st.decimals(min_value=0, max_value=1000, places=6)


@st.composite
def fast_terms(draw: st.DrawFn) -> RateTerms:
    return RateTerms(
        price_1=draw(money6),
        price_n=draw(money6),
        interval_1=draw(st.integers(1, 300)),
        interval_n=draw(st.integers(1, 300)),
        connect_fee=draw(money6),
        free_seconds=draw(st.integers(0, 100)),
        grace_period=draw(st.integers(0, 30)),
        post_call_surcharge=draw(st.decimals(min_value=0, max_value=500, places=6)),
        min_charge=draw(money6),
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(fast_terms(), min_size=1, max_size=4),
    st.lists(st.integers(0, 86_400), min_size=1, max_size=30),
    st.integers(0, 6),
    st.sampled_from(list(Rounding)),
)
def test_fast_matches_reference_for_any_terms(
    all_terms: list[RateTerms], durations: list[int], decimals: int, rounding: Rounding
) -> None:
    """Including huge numerators that take the exact Python-int fallback."""
    entries = [RateEntry(str(i + 1), "x", t) for i, t in enumerate(all_terms)]
    deck = FastDeck(entries)
    numbers = [str(i % len(entries) + 1) + "5550000" for i in range(len(durations))]
    fast = rate_batch(deck, numbers, durations, decimals, rounding)
    for i, d in enumerate(durations):
        terms = all_terms[i % len(entries)]
        assert fast.cost(i) == call_cost(terms, d, decimals, rounding)


def test_overflow_rows_are_exact() -> None:
    terms = RateTerms(D("999.999999"), D("999.999999"), 1, 1, post_call_surcharge=D("33.333333"))
    deck = FastDeck([RateEntry("1", "x", terms)])
    fast = rate_batch(deck, np.array([15551234567, 15551234567]), [86_400, 1], 6, "up")
    assert fast.cost(0) == call_cost(terms, 86_400, 6, "up")
    assert fast.cost(1) == call_cost(terms, 1, 6, "up")


def test_int64_and_string_inputs_agree() -> None:
    entries = [
        RateEntry("44", "UK", RateTerms(D("0.02"), D("0.02"))),
        RateEntry("4420", "London", RateTerms(D("0.01"), D("0.01"))),
    ]
    deck = FastDeck(entries)
    ints = np.array([442071234567, 447700900123, 33123456789, 44, 4420, 442], dtype=np.int64)
    strs = [str(x) for x in ints.tolist()]
    a = rate_batch(deck, ints, [60] * 6, 2, "half_up")
    b = rate_batch(deck, strs, [60] * 6, 2, "half_up")
    c = rate_batch(deck, np.array(strs), [60] * 6, 2, "half_up")
    d = rate_batch(deck, np.array(strs, dtype="S"), [60] * 6, 2, "half_up")
    for r in (a, b, c, d):
        assert [r.prefix(i) for i in range(6)] == ["4420", "44", None, "44", "4420", "44"]
        assert r.costs() == [D("0.01"), D("0.02"), None, D("0.02"), D("0.01"), D("0.02")]


def test_numbers_to_int64_marks_invalid_rows() -> None:
    raw = ["442071234567", "", "0044", " 44", "+44", "4_4", "44a", "1" * 16, "٤٤", "9" * 15, None, 44]
    values, lengths = numbers_to_int64(raw)  # type: ignore[arg-type]
    assert values[0] == 442071234567 and lengths[0] == 12
    assert values[9] == int("9" * 15) and lengths[9] == 15
    assert lengths.tolist()[1:9] == [0] * 8
    assert lengths.tolist()[10:] == [0, 0]
    values, lengths = numbers_to_int64(np.array([0, -5, 10**15, 10**15 - 1, 7]))
    assert lengths.tolist() == [0, 0, 0, 15, 1]


def test_deck_refuses_what_it_cannot_do() -> None:
    t = RateTerms(D("0.01"), D("0.01"))
    with pytest.raises(FastPathUnsupported, match="more than one version"):
        FastDeck([RateEntry("44", "a", t), RateEntry("44", "b", t)])
    with pytest.raises(FastPathUnsupported, match="time period"):
        FastDeck([RateEntry("44", "a", t, period="sat-sun")])  # type: ignore[arg-type]
    with pytest.raises(FastPathUnsupported, match="more than 6 decimal places"):
        FastDeck([RateEntry("44", "a", RateTerms(D("0.0000001"), D(0)))])
    deck = FastDeck([RateEntry("44", "a", t)])
    with pytest.raises(FastPathUnsupported, match="decimals"):
        rate_batch(deck, ["44"], [1], 7, "up")
    with pytest.raises(ValueError, match="rounding"):
        rate_batch(deck, ["44"], [1], 2, "nearest")
    with pytest.raises(ValueError, match=">= 0"):
        rate_batch(deck, ["44"], [-1], 2, "up")
    with pytest.raises(TypeError, match="whole seconds"):
        rate_batch(deck, ["44"], [1.5], 2, "up")  # type: ignore[list-item]
    with pytest.raises(ValueError, match="1 numbers but 2 durations"):
        rate_batch(deck, ["44"], [1, 2], 2, "up")
    big = FastDeck([RateEntry("44", "a", RateTerms(D("50000000"), D("50000000")))])
    with pytest.raises(FastPathUnsupported, match="too large"):
        rate_batch(big, ["44"], [10**9], 2, "up")


def test_empty_deck_and_batch() -> None:
    empty = FastDeck([])
    r = rate_batch(empty, ["44", "x"], [60, 60], 2, "up")
    assert r.status.tolist() == [NO_RATE, INVALID_NUMBER] and r.costs() == [None, None]
    deck = FastDeck([RateEntry("44", "a", RateTerms(D("0.01"), D("0.01")))])
    r = rate_batch(deck, [], np.array([], dtype=np.int64), 2, "up")
    assert len(r) == 0


def test_zero_prefixes_never_match() -> None:
    t = RateTerms(D("0.01"), D("0.01"))
    deck = FastDeck([RateEntry("0", "zero", t), RateEntry("1", "one", t)])
    table = RateTable([RateEntry("0", "zero", t), RateEntry("1", "one", t)])
    r = rate_batch(deck, ["0123", "123"], [60, 60], 2, "up")
    assert [r.outcome(i)[0] for i in range(2)] == [rate_call(table, n, T0, 60, 2, "up").status for n in ("0123", "123")]


def test_for_window() -> None:
    t1, t2 = RateTerms(D("0.02"), D("0.02")), RateTerms(D("0.01"), D("0.01"))
    jan, jul = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC)
    old = RateEntry("44", "old", t1, effective_from=jan, effective_to=jul)
    new = RateEntry("44", "new", t2, effective_from=jul)
    ancient = RateEntry("1", "always", t1)
    newer_always = RateEntry("1", "newer", t2, effective_from=datetime(2023, 1, 1, tzinfo=UTC))
    table = RateTable([old, new, ancient, newer_always])
    march = FastDeck.for_window(table, datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC))
    assert {e.destination for e in march.entries} == {"old", "newer"}
    august = FastDeck.for_window(table, datetime(2024, 8, 1, tzinfo=UTC), datetime(2024, 9, 1, tzinfo=UTC))
    assert {e.destination for e in august.entries} == {"new", "newer"}
    with pytest.raises(FastPathUnsupported, match="inside the window"):
        FastDeck.for_window(table, datetime(2024, 6, 15, tzinfo=UTC), datetime(2024, 7, 15, tzinfo=UTC))
    with_period = RateTable([RateEntry("44", "peak", t1, period="mon-fri 08:00-18:00")])  # type: ignore[arg-type]
    with pytest.raises(FastPathUnsupported, match="time period"):
        FastDeck.for_window(with_period, jan, jul)
    with pytest.raises(ValueError, match="after its start"):
        FastDeck.for_window(table, jul, jan)
    with pytest.raises(ValueError, match="aware"):
        FastDeck.for_window(table, datetime(2024, 1, 1), datetime(2024, 2, 1))
    # A deck for a window agrees with the reference at any instant inside it.
    r = rate_batch(march, ["442071234567", "15551234567"], [60, 60], 2, "half_up")
    for i, number in enumerate(["442071234567", "15551234567"]):
        ref = rate_call(table, number, datetime(2024, 3, 31, 23, 59, tzinfo=UTC), 60, 2, "half_up")
        assert ref.status == RatingStatus.RATED
        assert (r.prefix(i), r.cost(i)) == (ref.prefix, ref.cost)

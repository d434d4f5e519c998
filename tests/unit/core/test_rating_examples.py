"""Every worked example in docs/rating.md, read from the page itself and re-computed.

Reading the tables (rather than copying their numbers here) keeps the documentation and
the engine from drifting apart: a wrong number in either fails this test.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tarifa.core.array_rating import FastDeck, rate_batch
from tarifa.core.numbering import normalize
from tarifa.core.rating import (
    RateEntry,
    RateTable,
    RateTerms,
    billed_seconds,
    call_cost,
    max_duration,
    rate_call,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "rating.md"
_TERM_KEYS = {
    "grace": "grace_period",
    "free": "free_seconds",
    "connect": "connect_fee",
    "min": "min_charge",
    "surcharge": "post_call_surcharge",
}


def _table(marker: str) -> list[dict[str, str]]:
    """Rows of the markdown table that follows ``<!-- examples:marker -->``."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"<!-- examples:{marker} -->") + 1
    rows: list[list[str]] = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    header, _rule, *body = rows
    return [dict(zip(header, row, strict=True)) for row in body]


def _terms(text: str) -> RateTerms:
    prices, intervals, *extras = text.split()
    p1, pn = prices.split("/")
    i1, i_n = intervals.split("/")
    kwargs: dict[str, object] = {}
    for extra in extras:
        key, value = extra.split("=")
        field = _TERM_KEYS[key]
        kwargs[field] = int(value) if field in ("grace_period", "free_seconds") else Decimal(value)
    return RateTerms(Decimal(p1), Decimal(pn), int(i1), int(i_n), **kwargs)  # type: ignore[arg-type]


def _when(text: str) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


COST_EXAMPLES = _table("cost")
CALL_EXAMPLES = _table("calls")


def test_doc_has_enough_examples() -> None:
    assert len(COST_EXAMPLES) + len(CALL_EXAMPLES) >= 15
    assert {r["rounding"] for r in COST_EXAMPLES} == {"half_up", "up", "down"}


@pytest.mark.parametrize("row", COST_EXAMPLES, ids=[r["#"] for r in COST_EXAMPLES])
def test_cost_example(row: dict[str, str]) -> None:
    terms = _terms(row["terms"])
    duration = int(row["duration (s)"])
    decimals = int(row["decimals"])
    expected = Decimal(row["cost"])
    cost = call_cost(terms, duration, decimals, row["rounding"])
    assert billed_seconds(terms, duration) == int(row["billed (s)"])
    assert cost == expected
    assert str(cost) == row["cost"], "the doc shows the cost with exactly `decimals` places"
    # The fast path must agree on every documented example too.
    deck = FastDeck([RateEntry("1", "any", terms)])
    fast = rate_batch(deck, ["1555"], [duration], decimals, row["rounding"])
    assert fast.cost(0) == expected


def _deck() -> RateTable:
    entries = []
    for r in _table("deck"):
        price = Decimal(r["price"])
        i1, i_n = (int(x) for x in r["intervals"].split("/"))
        entries.append(
            RateEntry(
                prefix=r["prefix"],
                destination=r["destination"],
                terms=RateTerms(price, price, i1, i_n, forbidden=r["forbidden"] == "yes"),
                effective_from=_when(r["effective_from"]),
                effective_to=_when(r["effective_to"]),
                period=r["period"] or None,  # type: ignore[arg-type]
            )
        )
    return RateTable(entries, "Europe/London")


@pytest.mark.parametrize("row", CALL_EXAMPLES, ids=[r["#"] for r in CALL_EXAMPLES])
def test_call_example(row: dict[str, str]) -> None:
    table = _deck()
    at = _when(row["connect time (UTC)"])
    assert at is not None
    result = rate_call(table, row["number"], at, int(row["duration (s)"]), 4, "half_up")
    status, _, reason = row["status"].partition("/")
    assert result.status == status
    assert (result.reason or "") == reason
    assert (result.prefix or "") == row["prefix"]
    assert result.billed_seconds == int(row["billed (s)"])
    assert (str(result.cost) if result.cost is not None else "") == row["cost"]


def test_max_duration_example() -> None:
    """Section 6: 0.10/0.10 60/60 with 1.00 available allows exactly ten minutes."""
    terms = _terms("0.10/0.10 60/60")
    assert max_duration(terms, Decimal("1.00"), 2, "half_up", 86_400) == 600
    assert call_cost(terms, 601, 2, "half_up") == Decimal("1.10")


@pytest.mark.parametrize("row", _table("numbers"), ids=lambda r: f"{r['mode']}:{r['input']}")
def test_number_example(row: dict[str, str]) -> None:
    assert normalize(row["input"].strip("`"), row["mode"].strip("`")) == row["result"].split("`")[1]

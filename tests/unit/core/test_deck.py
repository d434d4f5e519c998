"""Deck row validation reads its limits from core.rate_rules (no database)."""

from __future__ import annotations

import pytest

from tarifa.core.deck import DeckError, parse_deck
from tarifa.core.rate_rules import AMOUNTS, WHOLES, column_max, control_character


def _errors(**cells: str) -> list[tuple[str, str, str]]:
    values = {"prefix": "44", "price_1": "0.01", **cells}
    _, errors = parse_deck(list(values), [(2, list(values.values()))])
    return [(e.field, e.value, e.rule) for e in errors]


def test_limits_come_from_the_rules_table() -> None:
    assert AMOUNTS["price_1"].high == column_max(6) == AMOUNTS["min_charge"].high
    assert _errors(post_call_surcharge="20000") == [("post_call_surcharge", "20000", "must be between 0 and 10000 %")]
    assert _errors(price_1="99999999999999") == [
        ("price_1", "99999999999999", "must be between 0 and 9223372036854.775807"),
    ]
    assert _errors(interval_n="86401") == [("interval_n", "86401", WHOLES["interval_n"].rule)]
    assert _errors(free_seconds="-1") == [("free_seconds", "-1", "must be between 0 and 86400")]
    assert _errors(price_1="9223372036854.775807", post_call_surcharge="10000") == []


@pytest.mark.parametrize("column", ["destination", "period", "prefix", "price_1", "effective_from", "forbidden"])
def test_control_characters_are_refused_in_every_column(column: str) -> None:
    value = {
        "destination": "U\x00K",
        "period": "mon\x1b",
        "prefix": "4\x004",
        "price_1": "0.\x001",
        "effective_from": "2026-01\x85-01",
        "forbidden": "1\x7f",
    }[column]
    found = _errors(**{column: value})
    assert [(field, v) for field, v, _rule in found] == [(column, value)]
    assert found[0][2] == control_character(value)


def test_white_space_around_a_cell_is_dropped_not_refused() -> None:
    assert _errors(destination="\tUK\r\n", price_1=" 0.01\x85") == []


def test_a_refusal_names_a_long_value_by_its_start() -> None:
    error = DeckError(2, "destination", "x" * 5000, "at most 100 characters (it has 5000)")
    assert (
        str(error)
        == f"line 2: destination '{'x' * 80}... (5000 characters)' is refused: at most 100 characters (it has 5000)"
    )

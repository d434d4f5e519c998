"""The DID inventory's pure rules: statuses, transitions, quarantine, numbers, patterns, file rows."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest

from tarifa.core.dids import (
    TRANSITIONS,
    DidState,
    NumberRefused,
    effective_status,
    parse_inventory,
    parse_number,
    pattern_regex,
    quarantine_end,
    transition_problem,
    unavailable_reason,
)

D = date(2026, 3, 10)


def test_the_django_choices_have_the_core_values() -> None:
    from tarifa.dids.choices import DidStatus

    assert set(DidStatus.values) == {s.value for s in DidState}


def test_quarantine_reads_as_available_from_its_last_day_on() -> None:
    assert effective_status("quarantined", date(2026, 3, 11), D) is DidState.QUARANTINED
    assert effective_status("quarantined", D, D) is DidState.AVAILABLE
    assert effective_status("quarantined", date(2026, 3, 9), D) is DidState.AVAILABLE
    assert effective_status("assigned", None, D) is DidState.ASSIGNED


def test_quarantine_end_counts_days_and_refuses_out_of_range() -> None:
    assert quarantine_end(D, 90) == date(2026, 6, 8)
    assert quarantine_end(D, 0) == D
    with pytest.raises(ValueError, match="0 to 3650"):
        quarantine_end(D, -1)


def test_transitions() -> None:
    assert transition_problem("available", "assigned") is None
    assert transition_problem("assigned", "quarantined") is None
    assert transition_problem("assigned", "assigned") is None
    problem = transition_problem("assigned", "available")
    assert problem == "a DID that is assigned can only become disabled, porting, quarantined"
    assert transition_problem("disabled", "porting") is not None
    for state, nexts in TRANSITIONS.items():
        assert state not in nexts


def test_why_a_number_is_not_available() -> None:
    assert unavailable_reason("available", None, D) is None
    assert unavailable_reason("reserved", None, D) is None
    assert unavailable_reason("quarantined", date(2026, 3, 1), D) is None
    assert unavailable_reason("quarantined", date(2026, 4, 1), D) == (
        "it is quarantined after release until 2026-04-01 (available from that day)"
    )
    assert unavailable_reason("assigned", None, D, "Acme main") == "it is assigned to Acme main"
    assert "ported" in (unavailable_reason("porting", None, D) or "")
    assert "disabled" in (unavailable_reason("disabled", None, D) or "")


@pytest.mark.parametrize(
    ("typed", "number", "country", "area", "local"),
    [
        ("+1 212 555 1234", "12125551234", "US", "212", "5551234"),
        ("12015550000", "12015550000", "US", "201", "5550000"),
        ("+44 20 7946 0958", "442079460958", "GB", "20", "79460958"),
        ("+1 800 555 1234", "18005551234", "US", "800", "5551234"),  # toll-free: its code as area code
        ("+33 1 42 68 53 00", "33142685300", "FR", "1", "42685300"),
    ],
)
def test_parse_number(typed: str, number: str, country: str, area: str, local: str) -> None:
    parts = parse_number(typed)
    assert (parts.number, parts.country, parts.area_code, parts.local_number) == (number, country, area, local)


@pytest.mark.parametrize("typed", ["12", "abc", "+1 212 555", "1212555123456789", "+999 1234 5678", "=1+1"])
def test_invalid_numbers_are_refused(typed: str) -> None:
    with pytest.raises(NumberRefused):
        parse_number(typed)


def test_pattern_regex() -> None:
    assert re.fullmatch(pattern_regex("555*"), "5551234")
    assert not re.fullmatch(pattern_regex("555*"), "4555123")
    assert re.fullmatch(pattern_regex("*1234"), "5551234")
    assert re.fullmatch(pattern_regex("555?234"), "5551234")
    assert not re.fullmatch(pattern_regex("555?"), "5551234")
    for bad in ["", "55a", ".*", "5" * 16, "555[0-9]"]:
        with pytest.raises(ValueError, match="pattern"):
            pattern_regex(bad)


def _rows(*lines: str) -> list[tuple[int, list[str]]]:
    return [(n, line.split(",")) for n, line in enumerate(lines, start=2)]


def test_parse_inventory_good_rows() -> None:
    good, errors = parse_inventory(
        "n.csv",
        ["number", "vendor", "monthly_cost", "plan", "status"],
        _rows("+12125551234,Carrier,0.35,US local,", "442079460958,,,,porting", ",,,,"),
        vendors=["Carrier"],
        plans=["US local"],
        stored=[],
    )
    assert errors == []
    assert [(r.line, r.parts.number, r.vendor, r.monthly_cost, r.plan, r.status) for r in good] == [
        (2, "12125551234", "Carrier", Decimal("0.35"), "US local", DidState.AVAILABLE),
        (3, "442079460958", "", Decimal(0), "", DidState.PORTING),
    ]


def test_parse_inventory_names_file_row_field_and_rule_for_every_bad_row() -> None:
    good, errors = parse_inventory(
        "bad.csv",
        ["number", "vendor", "monthly_cost", "plan", "status"],
        _rows(
            "12125551234,,,,",  # line 2: good
            "+1 212 555 1234,,,,",  # line 3: the same number again
            "12125550000,,,,",  # line 4: in the inventory already
            "12345,,,,",  # line 5: invalid
            "12125551111,Nobody,,,",  # line 6: unknown vendor
            "12125552222,,,Gold,",  # line 7: unknown plan
            "12125553333,,-1,,",  # line 8: negative cost
            "12125554444,,,,assigned",  # line 9: status not importable
        ),
        vendors=[],
        plans=[],
        stored=["12125550000"],
    )
    assert [r.line for r in good] == [2]
    assert [(e.file, e.line, e.field) for e in errors] == [
        ("bad.csv", 3, "number"),
        ("bad.csv", 4, "number"),
        ("bad.csv", 5, "number"),
        ("bad.csv", 6, "vendor"),
        ("bad.csv", 7, "plan"),
        ("bad.csv", 8, "monthly_cost"),
        ("bad.csv", 9, "status"),
    ]
    assert (
        str(errors[0])
        == "bad.csv line 3: number '+1 212 555 1234' is refused: is a duplicate: the same number is on line 2"
    )
    assert "already in the inventory" in errors[1].rule
    assert "libphonenumber" in errors[2].rule or "digits" in errors[2].rule


def test_parse_inventory_refuses_unknown_and_missing_columns() -> None:
    _, errors = parse_inventory("h.csv", ["numbr", "vendor", "vendor"], [], vendors=[], plans=[], stored=[])
    assert [(e.line, e.field, e.value) for e in errors] == [
        (1, "column 1", "numbr"),
        (1, "column 3", "vendor"),
        (1, "number", ""),
    ]


def test_pattern_regex_agrees_with_shell_wildcards_on_digits() -> None:
    import fnmatch

    from hypothesis import given
    from hypothesis import strategies as st

    @given(st.text("0123456789*?", min_size=1, max_size=15), st.text("0123456789", max_size=12))
    def agree(pattern: str, local: str) -> None:
        assert bool(re.fullmatch(pattern_regex(pattern), local)) == fnmatch.fnmatchcase(local, pattern)

    agree()

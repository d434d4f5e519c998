"""Formula guard of text exports and string cells of XLSX (tarifa.spreadsheets)."""

from __future__ import annotations

import io
from decimal import Decimal

import openpyxl
from hypothesis import given
from hypothesis import strategies as st

from tarifa.spreadsheets import guard, unguard, write_xlsx


def test_formula_leading_text_is_guarded_and_numbers_are_not() -> None:
    assert guard('=HYPERLINK("http://evil.example/","x")') == '\'=HYPERLINK("http://evil.example/","x")'
    assert [guard(v) for v in ("+1+1", "-x", "@SUM(A1)", "\tx", "\rx")] == ["'+1+1", "'-x", "'@SUM(A1)", "'\tx", "'\rx"]
    assert [guard(v) for v in ("-5", "+1.25", "-0.500000", "1e3", "UK", "", "'s-Hertogenbosch")] == [
        "-5",
        "+1.25",
        "-0.500000",
        "1e3",
        "UK",
        "",
        "'s-Hertogenbosch",
    ]
    assert guard("'=x") == "''=x" and unguard("''=x") == "'=x" and unguard("'=x") == "=x"
    assert guard(Decimal("-1")) == Decimal("-1") and guard(None) is None


@given(st.text(alphabet=st.sampled_from("'=+-@\t\rab1.e "), max_size=8) | st.text(max_size=8))
def test_unguard_inverts_guard(value: str) -> None:
    assert unguard(guard(value)) == value
    assert guard(value)[:1] not in ("=", "+", "-", "@", "\t", "\r") or guard(value) == value.strip() == value


def test_xlsx_text_is_never_a_formula() -> None:
    data = write_xlsx(["a", "b"], [["=1+1", Decimal("-2.5")], ["@x", 3]])
    rows = list(openpyxl.load_workbook(io.BytesIO(data)).active.iter_rows())
    assert [(c.value, c.data_type) for c in rows[1]] == [("=1+1", "s"), (-2.5, "n")]
    assert [(c.value, c.data_type) for c in rows[2]] == [("@x", "s"), (3, "n")]

"""Cells a spreadsheet never runs as formulas, for every export (listings, decks, reports).

Why: caller IDs come from outside and destinations from vendors' decks; a value such as
``=HYPERLINK("http://evil.example/","x")`` opened in Excel or LibreOffice would run as a formula
(CSV injection, OWASP). So:

* **XLSX**: text is written as a *string* cell, never a formula cell, whatever it starts with;
  the value is kept exactly (decks round-trip).
* **CSV / TSV / TXT**: a text starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
  gets a leading apostrophe (``'=HYPERLINK(...)``), the guard spreadsheets understand as "text".
  A plain number (``-5``, ``+1.25``, ``1e3``) is left alone: a spreadsheet reads it as a number,
  never as a formula, and a negative amount must stay a negative amount.
  :func:`unguard` removes the guard exactly: a text that already starts with apostrophes before
  a formula character gets one more, so ``unguard(guard(x)) == x`` for every ``x`` and a deck
  exported as CSV imports back unchanged. A hand-written ``'=x`` is read as ``=x``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, time
from typing import Any, Final

__all__ = ["FORMULA_START", "guard", "guarded_rows", "unguard", "write_xlsx"]

#: The characters that make a spreadsheet read a cell as a formula (OWASP CSV injection).
FORMULA_START: Final = frozenset("=+-@\t\r")
_NUMBER: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _formula_like(text: str) -> bool:
    return text[:1] in FORMULA_START and _NUMBER.fullmatch(text) is None


def guard(value: Any) -> Any:
    """``value`` as a CSV cell no spreadsheet runs; non-text values pass unchanged."""
    if isinstance(value, str) and _formula_like(value.lstrip("'")):
        return "'" + value
    return value


def unguard(text: str) -> str:
    """The inverse of :func:`guard` for text read back from a CSV file."""
    if text[:1] == "'" and _formula_like(text.lstrip("'")):
        return text[1:]
    return text


def guarded_rows(rows: Iterable[Sequence[Any]]) -> Iterable[list[Any]]:
    for row in rows:
        yield [guard(value) for value in row]


def write_xlsx(header: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "Sheet1") -> bytes:
    """A one-sheet workbook whose text cells are strings, never formulas.

    Numbers, dates and booleans keep their native cell types. Characters XML cannot hold
    (control characters) raise ``openpyxl``'s ``IllegalCharacterError``; callers either refuse such
    values at the door (decks) or replace them (listings).
    """
    import io

    import openpyxl
    from openpyxl.cell import WriteOnlyCell

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet(title[:31] or "Sheet1")

    def cells(values: Sequence[Any]) -> list[Any]:
        out = []
        for value in values:
            if isinstance(value, (datetime, time)) and value.tzinfo is not None:
                value = str(value)  # Excel has no time zones: the ISO text keeps the offset
            try:
                cell = WriteOnlyCell(sheet, value=value)
            except (TypeError, ValueError):  # a type no cell holds (a list, an aware time): its text
                value = str(value)
                cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # openpyxl would make "=..." a formula
            out.append(cell)
        return out

    sheet.append(cells(list(header)))
    for row in rows:
        sheet.append(cells(row))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()

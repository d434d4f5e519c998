"""Cells a spreadsheet never runs as formulas, for every export (listings, decks, reports); and the
one reader of imported CSV and XLSX files (rate decks, DID inventories).

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

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, time
from typing import Any, Final

__all__ = [
    "CELL_MAX",
    "FORMULA_START",
    "XLSX_CELLS_PER_ROW_MAX",
    "XLSX_SHARED_STRINGS_MAX",
    "XLSX_UNPACKED_MAX",
    "TableRefused",
    "guard",
    "guarded_rows",
    "read_table",
    "unguard",
    "write_xlsx",
]

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


# --- reading CSV and XLSX files (rate decks, DID inventories) ------------------------------------------

#: The largest cell a file may hold: every imported field's own limit is far below it; Python's
#: csv module stops at the same size.
CELL_MAX: Final = 128 * 1024

#: Cells one XLSX row may hold: an imported file has a few columns; spreadsheet programs may add a
#: few empty formatted cells, never hundreds. A row with more is refused before it is read: one
#: row of millions of empty cells would otherwise hold the server for minutes (L6).
XLSX_CELLS_PER_ROW_MAX: Final = 256

#: What an XLSX file may unpack to, as its zip directory declares it (the reader stops at the
#: declared size, so the check holds): a workbook is XML compressed about tenfold, and a 2 MB
#: "zip bomb" of shared strings grew a worker to 4 GB. Checked before anything is unpacked.
XLSX_UNPACKED_MAX: Final = 256 * 1024 * 1024
#: The shared-strings table openpyxl holds in memory whole: a deck's or inventory's texts are a
#: few megabytes.
XLSX_SHARED_STRINGS_MAX: Final = 32 * 1024 * 1024

_SHEET_NS: Final = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def _refuse_zip_bomb(data: bytes, filename: str, unpacked_max: int) -> None:
    """Refuse an XLSX whose members would unpack beyond the limits, from the zip directory alone.
    A file that is not a zip is left to ``load_workbook``, which refuses it."""
    import zipfile

    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return
    total = sum(m.file_size for m in members)
    if total > unpacked_max:
        raise TableRefused(
            0, filename, f"unpacks to {total:,} bytes; an XLSX file may unpack to at most {unpacked_max:,} bytes"
        )
    for member in members:
        if member.filename.lower().endswith("sharedstrings.xml") and member.file_size > XLSX_SHARED_STRINGS_MAX:
            raise TableRefused(
                0,
                filename,
                f"has a shared-strings table of {member.file_size:,} bytes; at most {XLSX_SHARED_STRINGS_MAX:,}",
            )


class TableRefused(Exception):
    """The file (or one of its lines) cannot be read; nothing of it may be imported.

    ``line`` 0 means the whole file; ``value`` is the file name or the start of the bad cell;
    ``field`` the column (its header name) when one cell is refused, else ``file``."""

    def __init__(self, line: int, value: str, rule: str, field: str = "file") -> None:
        super().__init__(f"line {line}: {field} {value!r} is refused: {rule}")
        self.line, self.value, self.rule, self.field = line, value, rule, field


def read_table(
    data: bytes,
    filename: str,
    *,
    columns: int,
    noun: str = "file",
    rows_noun: str = "rows",
    rows_max: int | None = None,
    unpacked_max: int = XLSX_UNPACKED_MAX,
) -> tuple[list[str], Iterator[tuple[int, Sequence[str]]]]:
    """Header and (line, cells) rows of a CSV or XLSX file, by its extension.

    ``columns`` is how many columns the kind of file has (``noun``, e.g. "deck", names it in
    refusals): an XLSX row is read that wide plus one, so an extra column is still reported. A
    broken file, a workbook without a worksheet, an XLSX cell holding a formula (its cached value
    may be missing, read as empty, or stale) or a cell over :data:`CELL_MAX` characters is
    refused with :class:`TableRefused` (raised while the rows are read), never an exception of
    the reading library. CSV cells lose the formula guard an export adds (``'=x`` -> ``=x``).
    ``rows_max`` refuses a file with more lines after the header; an XLSX file that would unpack
    beyond ``unpacked_max`` bytes is refused before it is unpacked.
    """

    def too_many(line: int) -> None:
        if rows_max is not None and line > rows_max + 1:
            raise TableRefused(
                line, filename, f"has more than {rows_max:,} {rows_noun}; a {noun} has at most that many"
            )

    if filename.lower().endswith((".xlsx", ".xlsm")):
        import openpyxl

        _refuse_zip_bomb(data, filename, unpacked_max)

        # before openpyxl, which scans the whole sheet on opening
        used = _scan_sheet(data, filename, columns, noun, rows_max, too_many)
        try:
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception:  # noqa: BLE001 - openpyxl raises many types for a broken file; its message means nothing to a user
            raise TableRefused(0, filename, "is not a readable XLSX workbook") from None
        if not book.worksheets:
            raise TableRefused(
                0, filename, f"the workbook has no worksheet: the {rows_noun} are read from the first one"
            )
        sheet = book.worksheets[0]
        # Only the columns the file can have, plus one so that an extra column is still reported
        # (openpyxl pads every row to max_col: never more than the sheet's own width).
        width = min(used or sheet.max_column or columns + 1, columns + 1)
        rows = sheet.iter_rows(values_only=True, max_col=width)

        def cells() -> Iterator[tuple[int, Sequence[str]]]:
            line = 1
            try:
                header = next(rows, ())
                yield 1, [_xlsx_cell(c) for c in header]
                for line, row in enumerate(rows, start=2):
                    too_many(line)
                    yield line, [_checked(line, _xlsx_cell(c), noun) for c in row]
            except TableRefused:
                raise
            except Exception:  # noqa: BLE001 - a broken sheet inside a readable zip
                raise TableRefused(line, filename, "is not a readable XLSX worksheet") from None

        table = cells()
        _, first = next(table)
        return [str(c).strip() for c in first], table
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TableRefused(0, filename, f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))

    def csv_cells() -> Iterator[tuple[int, Sequence[str]]]:
        try:
            for row in reader:
                too_many(reader.line_num)
                yield reader.line_num, [unguard(cell) for cell in row]
        except csv.Error as exc:
            raise TableRefused(reader.line_num + 1, filename, _csv_problem(exc, noun)) from None

    table = csv_cells()
    _, header = next(table, (1, []))
    return list(header), table


def _scan_sheet(
    data: bytes,
    filename: str,
    columns: int,
    noun: str,
    rows_max: int | None = None,
    too_many: Callable[[int], None] | None = None,
) -> int | None:
    """Stream the first worksheet's XML; stop at the first row with too many cells (and at the
    first row beyond ``rows_max``), and refuse a sheet with formula cells, naming the first (row,
    column by its header name, cell).

    Why formulas are refused: openpyxl reads a formula's cached value, which a file written by a
    program (not Excel) does not have: the cell read as empty, so a number was silently skipped
    and an amount read as 0. Even a cached value may be stale. Values are typed, not computed.

    Why a pass of our own: openpyxl scans a whole sheet for its size when it opens it, and builds
    a whole row before it yields it, whatever ``max_col`` says; only a streaming count can stop a
    3,000,000-cell row after its first few hundred. A file that is not a readable workbook is left
    to ``load_workbook``, which refuses it. Returns the sheet's width (its last used column), which
    openpyxl does not know when the file leaves out its ``<dimension>``."""
    from xml.etree.ElementTree import ParseError, iterparse

    from openpyxl.reader.excel import ExcelReader

    try:
        reader = ExcelReader(io.BytesIO(data), read_only=True, data_only=True)
        reader.read_manifest()
        reader.read_workbook()
        targets = [
            rel.target
            for _sheet, rel in reader.parser.find_sheets()
            if rel.target in reader.valid_files and "chartsheet" not in rel.Type
        ]
    except Exception:  # noqa: BLE001 - not a workbook: load_workbook names the refusal
        return None
    if not targets:
        return None

    cell_tag, row_tag, formula_tag = f"{{{_SHEET_NS}}}c", f"{{{_SHEET_NS}}}row", f"{{{_SHEET_NS}}}f"
    count, line, column, width = 0, 0, 0, 0
    header: dict[int, Any] = {}  # column -> its first-row cell, read only to name a refused cell
    formula: tuple[int, int, str] | None = None  # the first formula cell: line, column, formula
    formulas = 0
    try:
        source = reader.archive.open(targets[0])
        try:
            for _event, element in iterparse(source, events=("end",)):
                if element.tag == cell_tag:
                    count += 1
                    reference = element.get("r")
                    column = _column_number(reference) if reference else column + 1
                    width = max(width, column)
                    found = element.find(formula_tag)
                    if found is not None:
                        formulas += 1
                        if formula is None:
                            formula = (line + 1, column, "=" + found.text if found.text else "(a shared formula)")
                    if line == 0:
                        header[column] = element
                    if count > XLSX_CELLS_PER_ROW_MAX:
                        raise TableRefused(
                            line + 1,
                            filename,
                            f"has a row with more than {XLSX_CELLS_PER_ROW_MAX} cells; a {noun} has at most {columns} columns",
                        )
                elif element.tag == row_tag:
                    line += 1
                    if too_many is not None and rows_max is not None and line > rows_max + 1:
                        too_many(line)  # stop here, not after streaming the rest of the sheet
                    count = column = 0
                    element.clear()
        finally:
            source.close()
    except TableRefused:
        raise
    except (ParseError, OSError, KeyError, AttributeError, ValueError):
        raise TableRefused(line + 1, filename, "is not a readable XLSX worksheet") from None
    if formula is not None:
        at, column, text = formula
        letters = _column_letters(column)
        more = f" ({formulas} formula cells in the sheet)" if formulas > 1 else ""
        raise TableRefused(
            at,
            text,
            f"cell {letters}{at} holds a formula{more}; formulas are not imported: type the values "
            "themselves (or paste them as values)",
            field=_header_name(reader, header.get(column)) or f"column {letters}",
        )
    return width


def _column_letters(number: int) -> str:
    """3 -> ``C``: the inverse of :func:`_column_number`."""
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _header_name(reader: Any, cell: Any) -> str:
    """The text of a first-row cell of the streamed sheet (a shared string, an inline string or
    a plain value); empty when it has none or cannot be read."""
    if cell is None:
        return ""
    ns = f"{{{_SHEET_NS}}}"
    try:
        if cell.get("t") == "inlineStr":
            return "".join(t.text or "" for t in cell.iter(f"{ns}t")).strip()
        value = cell.find(f"{ns}v")
        if value is None or value.text is None:
            return ""
        if cell.get("t") == "s":
            reader.read_strings()  # only now: a sheet without formulas never needs them here
            return str(reader.shared_strings[int(value.text)]).strip()
        return str(value.text).strip()
    except Exception:  # noqa: BLE001 - a name for a message only; the column letter does without
        return ""


def _column_number(reference: str) -> int:
    """``C7`` -> 3: the column of a cell reference (letters are base-26 digits)."""
    number = 0
    for char in reference:
        if not char.isalpha():
            break
        number = number * 26 + (ord(char.upper()) - 64)
    return number


def _csv_problem(exc: csv.Error, noun: str) -> str:
    if "field larger than field limit" in str(exc):
        return f"has a cell over {CELL_MAX} characters (128 KiB); no {noun} field is that long"
    return f"is not a readable CSV file ({exc})"


def _checked(line: int, value: str, noun: str) -> str:
    if len(value) > CELL_MAX:
        raise TableRefused(
            line, value[:80], f"has a cell over {CELL_MAX} characters (128 KiB); no {noun} field is that long"
        )
    return value


def _xlsx_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        # Spreadsheets store numbers as binary floats; repr gives the shortest decimal that
        # reads back as the same float, which is what the operator typed.
        return repr(value) if not value.is_integer() else str(int(value))  # float-ok: text of a cell
    return str(value)

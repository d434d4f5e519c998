"""Rate decks in and out of the database: import (add or replace, history kept), export, diff.

A deck targets a Tariff (selling) or a Destination Set (buying); both hold ``RateFields`` rows
through a reverse relation named ``rates``, so one implementation serves both without naming the
routing app, which builds on this one (docs/architecture.md, "Layers"). Validation is
:mod:`tarifa.core.deck`'s: a deck with any error imports nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from django.db import transaction
from django.utils import timezone

from tarifa.core.deck import COLUMNS, SINCE_EVER, DeckError, DeckRow, format_money, parse_deck, row_cells
from tarifa.core.deckplan import ImportPlan, Mode, StoredVersion, in_force, plan_import
from tarifa.core.rate_rules import control_character
from tarifa.db import bulk_insert, bulk_update
from tarifa.rating.models import RateFields
from tarifa.rating.signals import rates_written
from tarifa.spreadsheets import guarded_rows, unguard, write_xlsx


class Target(Protocol):
    """What a deck goes into: a ``Tariff`` or a routing ``DestinationSet``."""

    pk: Any
    name: str
    time_zone: str
    rates: Any  # the reverse manager of its RateFields rows (``.model``, ``.field``)


TERM_FIELDS = (
    "destination", "price_1", "price_n", "interval_1", "interval_n", "connect_fee", "free_seconds",
    "grace_period", "post_call_surcharge", "min_charge", "effective_to", "forbidden",
)


class DeckRejected(Exception):
    """The deck has errors; nothing was imported. ``errors`` lists every one."""

    def __init__(self, errors: list[DeckError]) -> None:
        super().__init__(f"{len(errors)} error(s) in the deck; nothing was imported")
        self.errors = errors


ImportResult = ImportPlan  # what an import did: counts, one line per change, the moment


@dataclass
class DeckDiff:
    added: list[DeckRow] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    changed: list[tuple[dict[str, Any], DeckRow, list[str]]] = field(default_factory=list)
    unchanged: int = 0


# --- reading files ------------------------------------------------------------------------------


#: The largest cell a deck may hold: every field's own limit is far below it (a destination is
#: at most 100 characters); Python's csv module stops at the same size.
CELL_MAX = 128 * 1024


def read_table(data: bytes, filename: str) -> tuple[list[str], Iterator[tuple[int, Sequence[str]]]]:
    """Header and (line, cells) rows of a CSV or XLSX file, by its extension.

    A broken file, a workbook without a worksheet or a cell over :data:`CELL_MAX` characters is
    refused with :class:`DeckRejected` (raised while the rows are read), never an exception of
    the reading library. CSV cells lose the formula guard an export adds (``'=x`` -> ``=x``).
    """
    if filename.lower().endswith((".xlsx", ".xlsm")):
        import openpyxl

        used = _refuse_wide_rows(data, filename)  # before openpyxl, which scans the whole sheet on opening
        try:
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception:  # noqa: BLE001 - openpyxl raises many types for a broken file; its message means nothing to a user
            raise DeckRejected([DeckError(0, "file", filename, "is not a readable XLSX workbook")]) from None
        if not book.worksheets:
            raise DeckRejected([DeckError(0, "file", filename, "the workbook has no worksheet: the rates are read from the first one")])
        sheet = book.worksheets[0]
        # Only the columns a deck can have, plus one so that an extra column is still reported
        # (openpyxl pads every row to max_col: never more than the sheet's own width).
        width = min(used or sheet.max_column or len(COLUMNS) + 1, len(COLUMNS) + 1)
        rows = sheet.iter_rows(values_only=True, max_col=width)

        def cells() -> Iterator[tuple[int, Sequence[str]]]:
            line = 1
            try:
                header = next(rows, ())
                yield 1, [_xlsx_cell(c) for c in header]
                for line, row in enumerate(rows, start=2):
                    yield line, [_checked(line, _xlsx_cell(c)) for c in row]
            except DeckRejected:
                raise
            except Exception:  # noqa: BLE001 - a broken sheet inside a readable zip
                raise DeckRejected([DeckError(line, "file", filename, "is not a readable XLSX worksheet")]) from None

        table = cells()
        _, first = next(table)
        return [str(c).strip() for c in first], table
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DeckRejected([DeckError(0, "file", filename, f"is not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
    reader = csv.reader(io.StringIO(text, newline=""))

    def csv_cells() -> Iterator[tuple[int, Sequence[str]]]:
        try:
            for row in reader:
                yield reader.line_num, [unguard(cell) for cell in row]
        except csv.Error as exc:
            raise DeckRejected([DeckError(reader.line_num + 1, "file", filename, _csv_problem(exc))]) from None

    table = csv_cells()
    _, header = next(table, (1, []))
    return list(header), table


#: Cells one XLSX row may hold: a deck has at most ``len(COLUMNS)`` columns; spreadsheet programs
#: may add a few empty formatted cells, never hundreds. A row with more is refused before it is
#: read: one row of millions of empty cells would otherwise hold the server for minutes (L6).
XLSX_CELLS_PER_ROW_MAX = 256


def _refuse_wide_rows(data: bytes, filename: str) -> int | None:
    """Stream the first worksheet's XML and stop at the first row with too many cells.

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
        targets = [rel.target for _sheet, rel in reader.parser.find_sheets()
                   if rel.target in reader.valid_files and "chartsheet" not in rel.Type]
    except Exception:  # noqa: BLE001 - not a workbook: load_workbook names the refusal
        return None
    if not targets:
        return None

    cell_tag, row_tag = f"{{{_SHEET_NS}}}c", f"{{{_SHEET_NS}}}row"
    count, line, column, width = 0, 0, 0, 0
    try:
        source = reader.archive.open(targets[0])
        try:
            for _event, element in iterparse(source, events=("end",)):
                if element.tag == cell_tag:
                    count += 1
                    reference = element.get("r")
                    column = _column_number(reference) if reference else column + 1
                    width = max(width, column)
                    if count > XLSX_CELLS_PER_ROW_MAX:
                        raise DeckRejected([DeckError(
                            line + 1, "file", filename,
                            f"has a row with more than {XLSX_CELLS_PER_ROW_MAX} cells; "
                            f"a deck has at most {len(COLUMNS)} columns",
                        )])
                elif element.tag == row_tag:
                    line += 1
                    count = column = 0
                    element.clear()
        finally:
            source.close()
    except DeckRejected:
        raise
    except (ParseError, OSError, KeyError, AttributeError, ValueError):
        raise DeckRejected([DeckError(line + 1, "file", filename, "is not a readable XLSX worksheet")]) from None
    return width


def _column_number(reference: str) -> int:
    """``C7`` -> 3: the column of a cell reference (letters are base-26 digits)."""
    number = 0
    for char in reference:
        if not char.isalpha():
            break
        number = number * 26 + (ord(char.upper()) - 64)
    return number


_SHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def _csv_problem(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return f"has a cell over {CELL_MAX} characters (128 KiB); no deck field is that long"
    return f"is not a readable CSV file ({exc})"


def _checked(line: int, value: str) -> str:
    if len(value) > CELL_MAX:
        raise DeckRejected([DeckError(line, "file", value[:80], f"has a cell over {CELL_MAX} characters (128 KiB); no deck field is that long")])
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


def parse_file(data: bytes, filename: str, tz_name: str = "UTC") -> list[DeckRow]:
    header, rows = read_table(data, filename)
    parsed, errors = parse_deck(header, rows, tz_name)
    if errors:
        raise DeckRejected(errors)
    if not parsed:
        raise DeckRejected([DeckError(2, "file", filename, "has no rate rows")])
    return parsed


# --- the database side --------------------------------------------------------------------------


def _owner(target: Target) -> tuple[type[RateFields], str]:
    """The rate model of ``target`` and the name of its foreign key to ``target``."""
    manager = target.rates
    return manager.model, manager.field.name


def _values(row: DeckRow) -> dict[str, Any]:
    return {
        "prefix": row.prefix, "destination": row.destination, "price_1": row.price_1, "price_n": row.price_n,
        "interval_1": row.interval_1, "interval_n": row.interval_n, "connect_fee": row.connect_fee,
        "free_seconds": row.free_seconds, "grace_period": row.grace_period,
        "post_call_surcharge": row.post_call_surcharge, "min_charge": row.min_charge,
        "effective_from": row.effective_from or SINCE_EVER, "effective_to": row.effective_to, "period": row.period,
        "forbidden": row.forbidden,
    }


@transaction.atomic
def import_rows(target: Target, rows: list[DeckRow], mode: Mode = "add", at: datetime | None = None) -> ImportResult:
    """Apply validated rows in one transaction, keeping history (:mod:`tarifa.core.deckplan`).

    A price change ends the version in force and adds one from ``at`` (default now); an unchanged
    row changes nothing in either mode; *replace* also ends, at ``at``, the rates the deck lacks.
    Raises :class:`DeckRejected` (nothing written) when a row would rewrite a price before ``at``.
    """
    if mode not in ("add", "replace"):
        raise ValueError(f"mode {mode!r} is refused: must be add or replace")
    model, owner = _owner(target)
    when = (at or timezone.now()).astimezone(UTC)
    fields = ["id", "prefix", *TERM_FIELDS, "effective_from", "period"]
    # Two imports into one target run one after the other (PostgreSQL: the target's row lock;
    # SQLite: one writer at a time), each planning against the versions the other stored.
    target_model = target.rates.field.related_model  # Tariff or DestinationSet
    list(target_model._default_manager.select_for_update().filter(pk=target.pk).values_list("pk", flat=True))
    stored = [
        StoredVersion(r.pop("id"), DeckRow(line=0, **r))
        for r in model._default_manager.filter(**{owner: target}).values(*fields)
    ]
    plan = plan_import(stored, rows, mode, when, at_given=at is not None)
    if plan.errors:
        raise DeckRejected(plan.errors)
    _bulk_insert(model, owner, target, [_values(row) for row in plan.inserts])
    now = timezone.now()
    updates = [(pk, _values(row)) for pk, row in plan.updates]
    bulk_update(model, [*TERM_FIELDS, "updated_at"], [[*(v[n] for n in TERM_FIELDS), now, pk] for pk, v in updates])
    bulk_update(model, ["effective_to", "updated_at"], [[end, now, pk] for pk, end in plan.ends])
    if plan.inserts or plan.updates or plan.ends:
        # raw bulk writes send no post_save: say so, so that every process's rate tables go stale
        rates_written.send(sender=model)
    return plan


def _bulk_insert(model: type[RateFields], owner: str, target: Target, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    now = timezone.now()
    names = [*rows[0].keys(), "created_at", "updated_at", owner]
    bulk_insert(model, names, [[*row.values(), now, now, target.pk] for row in rows])


def import_file(target: Target, data: bytes, filename: str, mode: Mode = "add", at: datetime | None = None) -> ImportResult:
    return import_rows(target, parse_file(data, filename, target.time_zone), mode, at)


def stored_rows(target: Target) -> list[DeckRow]:
    model, owner = _owner(target)
    fields = ["prefix", *TERM_FIELDS, "effective_from", "period"]
    return [
        DeckRow(line=0, **{name: r[name] for name in fields})
        for r in model._default_manager.filter(**{owner: target}).order_by("prefix", "period", "effective_from").values(*fields)
    ]


def export_deck(target: Target, fmt: Literal["csv", "xlsx"] = "csv") -> bytes:
    """Every version of every rate, in the import layout: importing it back changes nothing.

    No cell runs as a formula (:mod:`tarifa.spreadsheets`): XLSX cells are strings, kept exactly;
    in CSV a destination such as ``=cmd`` is written ``'=cmd`` and :func:`read_table` removes that
    guard again. Raises ``ValueError`` naming the rate when a stored value holds a control
    character (refused at import since; older rows are fixed in the back office).
    """
    if fmt not in ("csv", "xlsx"):
        raise ValueError(f"format {fmt!r} is refused: must be csv or xlsx")
    stored = stored_rows(target)
    for row in stored:
        for name in ("destination", "period"):
            rule = control_character(getattr(row, name))
            if rule:
                raise ValueError(
                    f"rate {row.prefix} from {row.effective_from.isoformat() if row.effective_from else 'since ever'}: "
                    f"{name} {getattr(row, name)!r} is refused: {rule}; correct it before exporting"
                )
    rows = [row_cells(row, SINCE_EVER) for row in stored]
    if fmt == "csv":
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(guarded_rows(rows))
        return out.getvalue().encode()
    return write_xlsx(COLUMNS, rows, "rates")  # text cells: amounts keep every decimal exactly


def _in_force(rows: list[DeckRow], at: datetime) -> dict[tuple[str, str], DeckRow]:
    """For each (prefix, period), the version in force at ``at`` (:func:`~tarifa.core.deckplan.in_force`)."""
    by_key: dict[tuple[str, str], list[DeckRow]] = {}
    for row in rows:
        by_key.setdefault((row.prefix, row.period), []).append(row)
    return {key: found for key, group in by_key.items() if (found := in_force(group, at)) is not None}


def diff_deck(target: Target, rows: list[DeckRow], at: datetime | None = None) -> DeckDiff:
    """What would change for calls at ``at`` (default now) if the file replaced the stored deck."""
    when = (at or timezone.now()).astimezone(UTC)
    old = _in_force(stored_rows(target), when)
    new = _in_force(rows, when)
    result = DeckDiff()
    for key, row in sorted(new.items()):
        before = old.get(key)
        if before is None:
            result.added.append(row)
            continue
        changes = [name for name in TERM_FIELDS if name != "effective_to" and getattr(before, name) != getattr(row, name)]
        if changes:
            result.changed.append((_as_dict(before), row, changes))
        else:
            result.unchanged += 1
    result.removed = [_as_dict(row) for key, row in sorted(old.items()) if key not in new]
    return result


def _as_dict(row: DeckRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in ("prefix", "period", *TERM_FIELDS)}


def describe_change(before: dict[str, Any], after: DeckRow, names: list[str]) -> str:
    parts = []
    for name in names:
        a, b = before[name], getattr(after, name)
        shown = (format_money(a), format_money(b)) if isinstance(a, Decimal) else (str(a), str(b))
        parts.append(f"{name} {shown[0]} -> {shown[1]}")
    return ", ".join(parts)


__all__ = [
    "DeckDiff", "DeckRejected", "ImportResult", "Mode", "Target", "describe_change", "diff_deck", "export_deck",
    "import_file", "import_rows", "parse_file", "read_table", "stored_rows",
]

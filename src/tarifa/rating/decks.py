"""Rate decks in and out of the database: import (add/update or replace at a date), export, diff.

A deck targets a Tariff (selling) or a Destination Set (buying); both hold ``RateFields`` rows,
so one implementation serves both. Validation is :mod:`tarifa.core.deck`'s: a deck with any
error imports nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tarifa.db import bulk_insert, bulk_update
from tarifa.core.deck import COLUMNS, DeckError, DeckRow, format_money, parse_deck, row_cells
from tarifa.rating.models import SINCE_EVER, RateFields, Tariff
from tarifa.routing.models import DestinationSet

Target = Tariff | DestinationSet
Mode = Literal["add", "replace"]
TERM_FIELDS = (
    "destination", "price_1", "price_n", "interval_1", "interval_n", "connect_fee", "free_seconds",
    "grace_period", "post_call_surcharge", "min_charge", "effective_to", "forbidden",
)


class DeckRejected(Exception):
    """The deck has errors; nothing was imported. ``errors`` lists every one."""

    def __init__(self, errors: list[DeckError]) -> None:
        super().__init__(f"{len(errors)} error(s) in the deck; nothing was imported")
        self.errors = errors


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    end_dated: int = 0

    def __str__(self) -> str:
        return (f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.end_dated} end-dated")


@dataclass
class DeckDiff:
    added: list[DeckRow] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    changed: list[tuple[dict[str, Any], DeckRow, list[str]]] = field(default_factory=list)
    unchanged: int = 0


# --- reading files ------------------------------------------------------------------------------


def read_table(data: bytes, filename: str) -> tuple[list[str], Iterator[tuple[int, Sequence[str]]]]:
    """Header and (line, cells) rows of a CSV or XLSX file, by its extension."""
    if filename.lower().endswith((".xlsx", ".xlsm")):
        import openpyxl

        try:
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a broken file
            raise DeckRejected([DeckError(0, "file", filename, f"is not a readable XLSX workbook ({exc})")]) from None
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = [str(c or "").strip() for c in next(rows, ())]

        def cells() -> Iterator[tuple[int, Sequence[str]]]:
            for line, row in enumerate(rows, start=2):
                yield line, [_xlsx_cell(c) for c in row]

        return header, cells()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DeckRejected([DeckError(0, "file", filename, f"is not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, [])

    def csv_cells() -> Iterator[tuple[int, Sequence[str]]]:
        for row in reader:
            yield reader.line_num, row

    return header, csv_cells()


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
    if isinstance(target, Tariff):
        from tarifa.rating.models import Rate

        return Rate, "tariff"
    from tarifa.routing.models import DestinationRate

    return DestinationRate, "destination_set"


def _values(row: DeckRow, effective_from: datetime) -> dict[str, Any]:
    return {
        "prefix": row.prefix, "destination": row.destination, "price_1": row.price_1, "price_n": row.price_n,
        "interval_1": row.interval_1, "interval_n": row.interval_n, "connect_fee": row.connect_fee,
        "free_seconds": row.free_seconds, "grace_period": row.grace_period,
        "post_call_surcharge": row.post_call_surcharge, "min_charge": row.min_charge,
        "effective_from": effective_from, "effective_to": row.effective_to, "period": row.period,
        "forbidden": row.forbidden,
    }


def _same(stored: dict[str, Any], new: dict[str, Any]) -> bool:
    for name in TERM_FIELDS:
        a, b = stored[name], new[name]
        if isinstance(a, Decimal) or isinstance(b, Decimal):
            if Decimal(a) != Decimal(b):
                return False
        elif a != b:
            return False
    return True


@transaction.atomic
def import_rows(target: Target, rows: list[DeckRow], mode: Mode = "add", at: datetime | None = None) -> ImportResult:
    """Apply validated rows in one transaction.

    *add*: each row is a rate version keyed by (prefix, period, effective_from); an existing
    version with that key is updated, any other is added, older versions stay (history).
    Rows without ``effective_from`` are versions "since ever".
    *replace*: rows without ``effective_from`` take effect at ``at``; every version open at
    ``at`` whose (prefix, period) is absent from the deck is end-dated at ``at``.
    """
    if mode not in ("add", "replace"):
        raise ValueError(f"mode {mode!r} is refused: must be add or replace")
    model, owner = _owner(target)
    when = (at or timezone.now()).astimezone(UTC)
    default_start = when if mode == "replace" else SINCE_EVER
    existing = {
        (r["prefix"], r["period"], r["effective_from"]): r
        for r in model.objects.filter(**{owner: target}).values("id", *TERM_FIELDS, "prefix", "period", "effective_from")
    }
    result = ImportResult()
    creates: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for row in rows:
        values = _values(row, row.effective_from or default_start)
        stored = existing.get((row.prefix, row.period, values["effective_from"]))
        if stored is None:
            creates.append(values)
        elif _same(stored, values):
            result.unchanged += 1
        else:
            updates.append({"id": stored["id"], **values})
    _bulk_insert(model, owner, target, creates)
    result.added = len(creates)
    _bulk_update(model, updates)
    result.updated = len(updates)
    from tarifa.calls.cache import bump

    bump()  # raw bulk writes send no signals: tell every process its rate tables are stale
    if mode == "replace":
        present = {(row.prefix, row.period) for row in rows}
        open_at = model.objects.filter(**{owner: target}, effective_from__lt=when).filter(
            Q(effective_to__isnull=True) | Q(effective_to__gt=when)
        ).values_list("id", "prefix", "period")
        to_close = [pk for pk, prefix, period in open_at if (prefix, period) not in present]
        for start in range(0, len(to_close), 500):
            result.end_dated += model.objects.filter(id__in=to_close[start:start + 500]).update(
                effective_to=when, updated_at=timezone.now()
            )
    return result


def _bulk_insert(model: type[RateFields], owner: str, target: Target, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    now = timezone.now()
    names = [*rows[0].keys(), "created_at", "updated_at", owner]
    bulk_insert(model, names, [[*row.values(), now, now, target.pk] for row in rows])


def _bulk_update(model: type[RateFields], updates: list[dict[str, Any]]) -> None:
    now = timezone.now()
    bulk_update(model, [*TERM_FIELDS, "updated_at"], [[*(u[n] for n in TERM_FIELDS), now, u["id"]] for u in updates])


def import_file(target: Target, data: bytes, filename: str, mode: Mode = "add", at: datetime | None = None) -> ImportResult:
    return import_rows(target, parse_file(data, filename, target.time_zone), mode, at)


def stored_rows(target: Target) -> list[DeckRow]:
    model, owner = _owner(target)
    fields = ["prefix", *TERM_FIELDS, "effective_from", "period"]
    return [
        DeckRow(line=0, **{name: r[name] for name in fields})
        for r in model.objects.filter(**{owner: target}).order_by("prefix", "period", "effective_from").values(*fields)
    ]


def export_deck(target: Target, fmt: Literal["csv", "xlsx"] = "csv") -> bytes:
    """Every version of every rate, in the import layout: importing it back changes nothing."""
    rows = [row_cells(row, SINCE_EVER) for row in stored_rows(target)]
    if fmt == "csv":
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
        return out.getvalue().encode()
    if fmt == "xlsx":
        import openpyxl

        book = openpyxl.Workbook(write_only=True)
        sheet = book.create_sheet("rates")
        sheet.append(list(COLUMNS))
        for cells in rows:
            sheet.append(cells)  # text cells: amounts keep every decimal exactly
        buffer = io.BytesIO()
        book.save(buffer)
        return buffer.getvalue()
    raise ValueError(f"format {fmt!r} is refused: must be csv or xlsx")


def _in_force(rows: list[DeckRow], at: datetime) -> dict[tuple[str, str], DeckRow]:
    """For each (prefix, period), the version in force at ``at`` (latest effective_from wins)."""
    chosen: dict[tuple[str, str], DeckRow] = {}
    for row in rows:
        start = row.effective_from or SINCE_EVER
        if start > at or (row.effective_to is not None and row.effective_to <= at):
            continue
        key = (row.prefix, row.period)
        held = chosen.get(key)
        if held is None or (held.effective_from or SINCE_EVER) < start:
            chosen[key] = row
    return chosen


def diff_deck(target: Target, rows: list[DeckRow], at: datetime | None = None) -> DeckDiff:
    """What would change for calls at ``at`` (default now) if the file replaced the stored deck."""
    when = (at or timezone.now()).astimezone(UTC)
    old = _in_force(stored_rows(target), when)
    new = _in_force([r if r.effective_from else _with_start(r, SINCE_EVER) for r in rows], when)
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


def _with_start(row: DeckRow, start: datetime) -> DeckRow:
    from dataclasses import replace

    return replace(row, effective_from=start)


def _as_dict(row: DeckRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in ("prefix", "period", *TERM_FIELDS)}


def describe_change(before: dict[str, Any], after: DeckRow, names: list[str]) -> str:
    parts = []
    for name in names:
        a, b = before[name], getattr(after, name)
        shown = (format_money(a), format_money(b)) if isinstance(a, Decimal) else (str(a), str(b))
        parts.append(f"{name} {shown[0]} -> {shown[1]}")
    return ", ".join(parts)


def find_target(tariff: str | None = None, destination_set: str | None = None) -> Target:
    if bool(tariff) == bool(destination_set):
        raise ValueError("name exactly one of a tariff or a destination set")
    if tariff:
        found = Tariff.objects.filter(name=tariff).first()
        if found is None:
            raise ValueError(f"tariff {tariff!r} does not exist")
        return found
    found_set = DestinationSet.objects.filter(name=destination_set).first()
    if found_set is None:
        raise ValueError(f"destination set {destination_set!r} does not exist")
    return found_set


__all__ = [
    "DeckDiff", "DeckRejected", "ImportResult", "Mode", "Target", "describe_change", "diff_deck", "export_deck",
    "find_target", "import_file", "import_rows", "parse_file", "read_table", "stored_rows",
]

"""Bulk import of DID inventory from CSV or XLSX: all or nothing.

Reading is :func:`tarifa.spreadsheets.read_table`'s (the rate decks' reader), validation is
:func:`tarifa.core.dids.parse_inventory`'s; this module only brings the database's side (known
vendors and plans, numbers already stored) and writes the rows in one transaction. A file with
any error writes nothing and every error names the file, the row, the field and the rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from tarifa import spreadsheets
from tarifa.core.dids import (
    IMPORT_COLUMNS,
    IMPORT_ERRORS_LISTED,
    IMPORT_ROWS_MAX,
    InventoryRow,
    RowError,
    parse_inventory,
)
from tarifa.dids.models import Did, DidPlan
from tarifa.routing.models import Vendor

#: What an inventory XLSX may unpack to (100,000 rows of five columns are a few megabytes of XML).
IMPORT_UNPACKED_MAX = 64 * 1024 * 1024


class ImportRejected(Exception):
    """The file has errors; nothing was imported. ``errors`` lists every one."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} error(s) in the file; nothing was imported")
        self.count = len(errors)  # every error found; only the first IMPORT_ERRORS_LISTED are kept
        self.errors = errors[:IMPORT_ERRORS_LISTED]
        self.more = self.count - len(self.errors)


@dataclass(frozen=True, slots=True)
class ImportResult:
    added: int

    def __str__(self) -> str:
        return f"{self.added} DID{'s' if self.added != 1 else ''} added"


def parse_file(data: bytes, filename: str) -> list[InventoryRow]:
    """Every row of the file validated against the stored vendors, plans and numbers."""
    try:
        header, table = spreadsheets.read_table(
            data,
            filename,
            columns=len(IMPORT_COLUMNS),
            noun="DID inventory file",
            rows_noun="numbers",
            rows_max=IMPORT_ROWS_MAX,
            unpacked_max=IMPORT_UNPACKED_MAX,
        )
        rows = list(table)
    except spreadsheets.TableRefused as exc:
        raise ImportRejected([RowError(filename, exc.line, exc.field, exc.value, exc.rule)]) from None
    if not any(str(c).strip() for c in header) and not any(any(str(c).strip() for c in r) for _l, r in rows):
        raise ImportRejected([_no_rows(filename)])  # an empty file: no header to complain about
    stored = _stored_numbers_of(rows, header)
    good, errors = parse_inventory(
        filename,
        header,
        rows,
        vendors=Vendor.objects.values_list("name", flat=True),
        plans=DidPlan.objects.values_list("name", flat=True),
        stored=stored,
    )
    if errors:
        raise ImportRejected(errors)
    if not good:
        raise ImportRejected([_no_rows(filename)])
    return good


def _no_rows(filename: str) -> RowError:
    """A file without a single number (empty, or the header alone): no line to point at."""
    return RowError(
        filename,
        0,
        "file",
        filename,
        f"has no rows: the first row names the columns ({', '.join(IMPORT_COLUMNS)}), one number per row follows",
    )


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _stored_numbers_of(rows: list[tuple[int, Sequence[str]]], header: list[str]) -> set[str]:
    """The file's numbers that the inventory holds already (the number column wherever it is)."""
    names = [h.strip().lower() for h in header]
    if "number" not in names:
        return set()
    at = names.index("number")
    return _stored_numbers({_digits(str(cells[at])) for _line, cells in rows if len(cells) > at})


def _stored_numbers(numbers: set[str]) -> set[str]:
    found: set[str] = set()
    wanted = sorted(n for n in numbers if n)
    for start in range(0, len(wanted), 500):  # bounded IN lists for every database
        found.update(Did.objects.filter(number__in=wanted[start : start + 500]).values_list("number", flat=True))
    return found


def import_rows(filename: str, rows: list[InventoryRow]) -> ImportResult:
    """Write validated rows in one transaction. A number another import stored meanwhile is
    refused like a duplicate (the unique index), and the whole file is rolled back."""
    vendors = dict(Vendor.objects.values_list("name", "pk"))
    plans = dict(DidPlan.objects.values_list("name", "pk"))
    now = timezone.now()
    dids = [
        Did(
            number=row.parts.number,
            country=row.parts.country,
            area_code=row.parts.area_code,
            local_number=row.parts.local_number,
            vendor_id=vendors.get(row.vendor),
            monthly_cost=row.monthly_cost,
            plan_id=plans.get(row.plan),
            status=row.status.value,
            created_at=now,
            updated_at=now,
        )
        for row in rows
    ]
    try:
        with transaction.atomic():
            Did.objects.bulk_create(dids, batch_size=500)
    except IntegrityError:
        taken = _stored_numbers({row.parts.number for row in rows})
        raise ImportRejected(
            [
                RowError(
                    filename, row.line, "number", row.parts.number, "is already in the inventory (stored meanwhile)"
                )
                for row in rows
                if row.parts.number in taken
            ]
            or [RowError(filename, 0, "file", filename, "could not be stored; nothing was imported")]
        ) from None
    return ImportResult(added=len(dids))


def import_file(data: bytes, filename: str) -> ImportResult:
    """Validate and store an inventory file; :class:`ImportRejected` (nothing written) on any error."""
    return import_rows(filename, parse_file(data, filename))


__all__ = ["ImportRejected", "ImportResult", "import_file", "import_rows", "parse_file"]

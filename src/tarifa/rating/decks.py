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

from tarifa import spreadsheets
from tarifa.core.deck import COLUMNS, SINCE_EVER, DeckError, DeckRow, format_money, parse_deck, row_cells
from tarifa.core.deckplan import ImportPlan, Mode, StoredVersion, in_force, plan_import
from tarifa.core.rate_rules import control_character
from tarifa.db import bulk_insert, bulk_update
from tarifa.rating.models import RateFields
from tarifa.rating.signals import rates_written
from tarifa.spreadsheets import guarded_rows, write_xlsx


class Target(Protocol):
    """What a deck goes into: a ``Tariff`` or a routing ``DestinationSet``."""

    pk: Any
    name: str
    time_zone: str
    rates: Any  # the reverse manager of its RateFields rows (``.model``, ``.field``)


TERM_FIELDS = (
    "destination",
    "price_1",
    "price_n",
    "interval_1",
    "interval_n",
    "connect_fee",
    "free_seconds",
    "grace_period",
    "post_call_surcharge",
    "min_charge",
    "effective_to",
    "forbidden",
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
CELL_MAX = spreadsheets.CELL_MAX
#: Cells one XLSX row may hold (:data:`tarifa.spreadsheets.XLSX_CELLS_PER_ROW_MAX`).
XLSX_CELLS_PER_ROW_MAX = spreadsheets.XLSX_CELLS_PER_ROW_MAX


def read_table(data: bytes, filename: str) -> tuple[list[str], Iterator[tuple[int, Sequence[str]]]]:
    """Header and (line, cells) rows of a CSV or XLSX deck (:func:`tarifa.spreadsheets.read_table`),
    its refusals as :class:`DeckRejected`, raised while the rows are read."""
    try:
        header, rows = spreadsheets.read_table(data, filename, columns=len(COLUMNS), noun="deck", rows_noun="rates")
    except spreadsheets.TableRefused as exc:
        raise _rejected(exc) from None

    def checked() -> Iterator[tuple[int, Sequence[str]]]:
        try:
            yield from rows
        except spreadsheets.TableRefused as exc:
            raise _rejected(exc) from None

    return header, checked()


def _rejected(exc: spreadsheets.TableRefused) -> DeckRejected:
    return DeckRejected([DeckError(exc.line, exc.field, exc.value, exc.rule)])


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
        "prefix": row.prefix,
        "destination": row.destination,
        "price_1": row.price_1,
        "price_n": row.price_n,
        "interval_1": row.interval_1,
        "interval_n": row.interval_n,
        "connect_fee": row.connect_fee,
        "free_seconds": row.free_seconds,
        "grace_period": row.grace_period,
        "post_call_surcharge": row.post_call_surcharge,
        "min_charge": row.min_charge,
        "effective_from": row.effective_from or SINCE_EVER,
        "effective_to": row.effective_to,
        "period": row.period,
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


def _bulk_insert(
    model: type[RateFields], owner: str, target: Target, rows: list[dict[str, Any]], *, keep_stored: bool = False
) -> None:
    if not rows:
        return
    now = timezone.now()
    names = [*rows[0].keys(), "created_at", "updated_at", owner]
    bulk_insert(model, names, [[*row.values(), now, now, target.pk] for row in rows], ignore_conflicts=keep_stored)


@transaction.atomic
def add_missing(target: Target, rows: list[DeckRow]) -> int:
    """Store the rows whose version (prefix, period, effective from) ``target`` lacks and leave the
    versions it has as they are (the demo's reload keeps an operator's later prices); the number of
    ``target``'s rates afterwards. The rows are trusted (built by code, not read from a file)."""
    model, owner = _owner(target)
    _bulk_insert(model, owner, target, [_values(row) for row in rows], keep_stored=True)
    rates_written.send(sender=model)
    return int(model._default_manager.filter(**{owner: target}).count())


def export_filename(target: Target, fmt: str) -> str:
    """The download name of ``target``'s deck: ASCII letters and digits of its name (a header with
    other characters is MIME-encoded and browsers drop the name), ``deck`` when none is left."""
    safe = "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in str(target)).strip("-") or "deck"
    return f"{safe}.{fmt}"


def import_file(
    target: Target, data: bytes, filename: str, mode: Mode = "add", at: datetime | None = None
) -> ImportResult:
    return import_rows(target, parse_file(data, filename, target.time_zone), mode, at)


def stored_rows(target: Target) -> list[DeckRow]:
    model, owner = _owner(target)
    fields = ["prefix", *TERM_FIELDS, "effective_from", "period"]
    return [
        DeckRow(line=0, **{name: r[name] for name in fields})
        for r in model._default_manager.filter(**{owner: target})
        .order_by("prefix", "period", "effective_from")
        .values(*fields)
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
        changes = [
            name for name in TERM_FIELDS if name != "effective_to" and getattr(before, name) != getattr(row, name)
        ]
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
    "DeckDiff",
    "DeckRejected",
    "ImportResult",
    "Mode",
    "Target",
    "describe_change",
    "diff_deck",
    "export_deck",
    "import_file",
    "import_rows",
    "parse_file",
    "read_table",
    "stored_rows",
]

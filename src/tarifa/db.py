"""Fast bulk writes that keep Django's column mapping: executemany on SQLite, COPY on PostgreSQL.

Used where rows come by the tens of thousands (rate decks, CDRs, their Transactions); the ORM's
``bulk_create`` spends most of its time preparing each value through generic field code.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import connection, models

from tarifa.fields import ExactDecimalField

Adapter = Callable[[Any], Any]


def _units(field: ExactDecimalField) -> Adapter:
    places = field.places

    def adapt(value: Any) -> Any:
        if type(value) is Decimal:
            units = value.scaleb(places)
            whole = int(units)
            if whole == units:
                return whole
        return field.get_prep_value(value)

    return adapt


def _sqlite_datetime(value: datetime | str | None) -> str | None:
    """What Django stores in SQLite for an aware datetime (naive UTC text), without its overhead.
    A string is taken as already prepared (see :func:`prepared_datetime`)."""
    if value is None or type(value) is str:
        return value  # type: ignore[return-value]
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value} cannot be stored; times are aware UTC")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")


def prepared_datetime(value: datetime) -> Any:
    """A datetime prepared once for many rows of a bulk write (e.g. the batch's ``now``)."""
    return _sqlite_datetime(value) if connection.vendor == "sqlite" else value


def adapter(field: models.Field) -> Adapter:
    """Python value -> database parameter for the field types our bulk tables use."""
    if isinstance(field, ExactDecimalField):
        return _units(field)
    if isinstance(field, models.DateTimeField):
        return _sqlite_datetime if connection.vendor == "sqlite" else connection.ops.adapt_datetimefield_value
    if isinstance(field, models.DateField):
        return connection.ops.adapt_datefield_value
    if isinstance(field, models.GenericIPAddressField):
        return lambda value: value or None
    return lambda value: value


def columns(model: type[models.Model], names: Sequence[str]) -> tuple[list[models.Field], list[Adapter]]:
    fields = [model._meta.get_field(name) for name in names]
    return fields, [adapter(f) for f in fields]


def _preparer(fields: list[models.Field], adapters: list[Adapter]) -> Callable[[Sequence[Any]], list[Any]]:
    """Adapt only the columns that need it (money, times): most values pass through as they are."""
    special = [
        (i, adapt) for i, (f, adapt) in enumerate(zip(fields, adapters))
        if isinstance(f, (ExactDecimalField, models.DateTimeField, models.DateField, models.GenericIPAddressField))
    ]

    def prepare(row: Sequence[Any]) -> list[Any]:
        out = list(row)
        for i, adapt in special:
            out[i] = adapt(out[i])
        return out

    return prepare


def any_of(column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """``column IN (...)`` as one array parameter on PostgreSQL, a placeholder list elsewhere."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(values)]
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


def bulk_insert(
    model: type[models.Model], names: Sequence[str], rows: Sequence[Sequence[Any]], *, ignore_conflicts: bool = False
) -> None:
    """Insert ``rows`` (values in the order of ``names``, Python values) into ``model``'s table.

    With ``ignore_conflicts`` rows that break a unique constraint are skipped silently
    (``ON CONFLICT DO NOTHING``); callers find out which rows went in by a marker column.
    Must run inside the caller's transaction.
    """
    if not rows:
        return
    fields, adapters = columns(model, names)
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    column_list = ", ".join(quote(f.column) for f in fields)
    prepare = _preparer(fields, adapters)
    prepared = [prepare(row) for row in rows]
    conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            raw = cursor.cursor
            if ignore_conflicts:
                stage = quote(f"stage_{model._meta.db_table}_{zlib.crc32(column_list.encode())}")
                raw.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
                    f"SELECT {column_list} FROM {table} WITH NO DATA"
                )
                target = stage
            else:
                target = table
            with raw.copy(f"COPY {target} ({column_list}) FROM STDIN") as copy:
                for row in prepared:
                    copy.write_row(row)
            if ignore_conflicts:
                raw.execute(
                    f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {target}{conflict}"
                )
                raw.execute(f"TRUNCATE {target}")
            return
        placeholders = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {table} ({column_list}) VALUES ({placeholders}){conflict}"
        for start in range(0, len(prepared), 5000):
            cursor.executemany(sql, prepared[start:start + 5000])


def bulk_update(model: type[models.Model], names: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """``UPDATE ... SET names = values WHERE id = row[-1]`` for each row (values then id)."""
    if not rows:
        return
    fields, adapters = columns(model, names)
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    prepare = _preparer(fields, adapters)
    prepared = [prepare(row[:-1]) + [row[-1]] for row in rows]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(prepared) > 1:
            # One statement for the whole set: UPDATE ... FROM (VALUES ...).
            casts = [f.db_type(connection) for f in fields]
            for start in range(0, len(prepared), 2000):
                chunk = prepared[start:start + 2000]
                values = ", ".join(
                    "(" + ", ".join(["%s::bigint"] + [f"%s::{cast}" for cast in casts]) + ")" for _ in chunk
                )
                assignments = ", ".join(f"{quote(f.column)} = v.c{i}" for i, f in enumerate(fields))
                names_sql = ", ".join(["id"] + [f"c{i}" for i in range(len(fields))])
                params = [value for row in chunk for value in [row[-1], *row[:-1]]]
                cursor.execute(
                    f"UPDATE {table} SET {assignments} FROM (VALUES {values}) AS v({names_sql}) WHERE {table}.id = v.id",
                    params,
                )
            return
        assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
        sql = f"UPDATE {table} SET {assignments} WHERE id = %s"
        for start in range(0, len(prepared), 5000):
            cursor.executemany(sql, prepared[start:start + 5000])

"""Fast bulk writes that keep Django's column mapping: executemany on SQLite, COPY on PostgreSQL.

Used where rows come by the tens of thousands (rate decks, CDRs, their Transactions); the ORM's
``bulk_create`` spends most of its time preparing each value through generic field code.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection, models

from tarifa.fields import ExactDecimalField

Adapter = Callable[[Any], Any]


def adapter(field: models.Field) -> Adapter:
    """Python value -> database parameter for the field types our bulk tables use."""
    if isinstance(field, ExactDecimalField):
        return field.get_prep_value
    if isinstance(field, models.DateTimeField):
        return connection.ops.adapt_datetimefield_value
    if isinstance(field, models.DateField):
        return connection.ops.adapt_datefield_value
    if isinstance(field, models.GenericIPAddressField):
        return lambda value: value or None
    return lambda value: value


def columns(model: type[models.Model], names: Sequence[str]) -> tuple[list[models.Field], list[Adapter]]:
    fields = [model._meta.get_field(name) for name in names]
    return fields, [adapter(f) for f in fields]


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
    prepared = [[adapt(value) for adapt, value in zip(adapters, row)] for row in rows]
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
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    sql = f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE id = %s"
    prepared = [[adapt(value) for adapt, value in zip(adapters, row[:-1])] + [row[-1]] for row in rows]
    with connection.cursor() as cursor:
        for start in range(0, len(prepared), 5000):
            cursor.executemany(sql, prepared[start:start + 5000])

"""Fast bulk writes that keep Django's column mapping: executemany on SQLite, COPY on PostgreSQL.

Used where rows come by the tens of thousands (rate decks, CDRs, their Transactions); the ORM's
``bulk_create`` spends most of its time preparing each value through generic field code.
"""

from __future__ import annotations

import functools
import time
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models

from tarifa.core.rate_rules import UNITS_MAX
from tarifa.fields import ExactDecimalField

Adapter = Callable[[Any], Any]


def _units(field: ExactDecimalField) -> Adapter:
    places = field.places

    def adapt(value: Any) -> Any:
        if type(value) is Decimal:
            units = value.scaleb(places)
            whole = int(units)
            if whole == units and -UNITS_MAX <= whole <= UNITS_MAX:
                return whole
        # Anything else, e.g. beyond the column: a ValueError naming field, value and limit,
        # never the driver's OverflowError.
        return field.get_prep_value(value)

    return adapt


def _sqlite_datetime(value: datetime | str | None) -> str | None:
    """What Django stores in SQLite for an aware datetime (naive UTC text), without its overhead.
    A string is taken as already prepared (see :func:`prepared_datetime`)."""
    if value is None or isinstance(value, str):
        return value
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
    fields = [_concrete(model, name) for name in names]
    return fields, [adapter(f) for f in fields]


def _concrete(model: type[models.Model], name: str) -> models.Field:
    """The field of ``model`` called ``name`` that has a column (a reverse relation has none)."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or field.column is None:
        raise TypeError(f"{model.__name__}.{name} has no column of its own")
    return field


def _column(field: models.Field) -> str:
    """The column name of a concrete field (checked by :func:`_concrete`)."""
    return field.column or field.get_attname()


def _preparer(fields: list[models.Field], adapters: list[Adapter]) -> Callable[[Sequence[Any]], list[Any]]:
    """Adapt only the columns that need it (money, times): most values pass through as they are."""
    special = [
        (i, adapt)
        for i, (f, adapt) in enumerate(zip(fields, adapters, strict=True))
        if isinstance(f, (ExactDecimalField, models.DateTimeField, models.DateField, models.GenericIPAddressField))
    ]

    def prepare(row: Sequence[Any]) -> list[Any]:
        out = list(row)
        for i, adapt in special:
            out[i] = adapt(out[i])
        return out

    return prepare


def _stage_table(model: type[models.Model], column_list: str) -> str:
    """A session-private PostgreSQL table with ``column_list`` of ``model``'s table, emptied at
    commit: rows are copied there, then inserted with ``ON CONFLICT DO NOTHING``."""
    quote = connection.ops.quote_name
    stage = quote(f"stage_{model._meta.db_table}_{zlib.crc32(column_list.encode())}")
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
            f"SELECT {column_list} FROM {quote(model._meta.db_table)} WITH NO DATA"
        )
    return stage


class _Prepared:
    """The statements ``call_prepared`` prepared on one database connection, and the psycopg
    loader that turns their results into Python values."""

    __slots__ = ("loader", "names", "raw")

    def __init__(self, raw: Any) -> None:
        from psycopg.adapt import Transformer

        self.raw = raw
        self.names: dict[str, bytes] = {}
        self.loader = Transformer(raw)


def call_prepared(sql: str, params: Sequence[str | None]) -> tuple[Any, ...] | None:
    """Run one statement on Django's PostgreSQL connection as a prepared statement and return its
    first row.

    Django's cursors bind parameters on the client side, so a statement travels as text and is
    parsed and planned on every call; this one is prepared once per connection and then sent
    with its parameters only. ``sql`` has ``%s`` placeholders, each cast to its type in the SQL
    (``%s::bigint[]``); ``params`` are their values as text (or None). The statement goes to
    libpq directly (psycopg's ``pgconn``: the interpreter lock is released while it waits),
    without a cursor's adaptation and wait loop: on the switches' hot path they cost more than
    the round trip itself. The result is loaded by psycopg's loaders. Database errors come out as
    Django's; ``connection.execute_wrapper`` hooks and the debug query log
    (``CaptureQueriesContext``) see it as any other statement."""
    db = connections[DEFAULT_DB_ALIAS]  # this thread's connection, looked up once
    raw = db.connection
    if raw is None or raw.closed:
        db.ensure_connection()
        raw = db.connection
    kept = db.__dict__.get("_tarifa_prepared")
    if kept is None or kept.raw is not raw:
        kept = db.__dict__["_tarifa_prepared"] = _Prepared(raw)
    with db.wrap_database_errors:
        if not db.execute_wrappers and not db.queries_logged:
            return _run_prepared(kept, sql, params)

        def execute(sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
            return _run_prepared(kept, sql, params)

        executor: Callable[..., Any] = execute
        for wrapper in reversed(db.execute_wrappers):
            executor = functools.partial(wrapper, executor)
        started = time.monotonic()
        row = executor(sql, params, False, {"connection": db, "cursor": None})
        if db.queries_logged:
            db.queries_log.append({"sql": f"{sql} -- {list(params)!r}", "time": f"{time.monotonic() - started:.3f}"})
    return row


def _run_prepared(kept: _Prepared, sql: str, params: Sequence[str | None]) -> tuple[Any, ...] | None:
    from psycopg.pq import ExecStatus

    pgconn = kept.raw.pgconn
    name = kept.names.get(sql)
    if name is None:
        name = f"tarifa_{zlib.crc32(sql.encode()):08x}_{len(kept.names)}".encode()
        _check(kept, pgconn.prepare(name, _numbered(sql).encode()), ExecStatus.COMMAND_OK)
        kept.names[sql] = name
    result = pgconn.exec_prepared(name, [None if p is None else p.encode() for p in params])
    _check(kept, result, ExecStatus.TUPLES_OK)
    if result.ntuples == 0:
        return None
    kept.loader.set_pgresult(result)
    return kept.loader.load_row(0, tuple)


def _numbered(sql: str) -> str:
    """``%s`` placeholders as PostgreSQL's ``$1``, ``$2``, ..."""
    parts = sql.split("%s")
    return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], start=1)) + parts[-1]


def _check(kept: _Prepared, result: Any, expected: int) -> None:
    """Raise the server's error (psycopg's class for its SQLSTATE) unless ``result`` is ``expected``."""
    if result.status != expected:
        from psycopg import errors

        raise errors.error_from_result(result, encoding=kept.raw.info.encoding)


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
    column_list = ", ".join(quote(_column(f)) for f in fields)
    prepare = _preparer(fields, adapters)
    prepared = [prepare(row) for row in rows]
    conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            raw = cursor.cursor
            target = _stage_table(model, column_list) if ignore_conflicts else table
            with raw.copy(f"COPY {target} ({column_list}) FROM STDIN") as copy:
                for row in prepared:
                    copy.write_row(row)
            if ignore_conflicts:
                raw.execute(f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {target}{conflict}")
                raw.execute(f"TRUNCATE {target}")
            return
        placeholders = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {table} ({column_list}) VALUES ({placeholders}){conflict}"
        for start in range(0, len(prepared), 5000):
            cursor.executemany(sql, prepared[start : start + 5000])


def insert_new(
    model: type[models.Model], names: Sequence[str], rows: Sequence[Sequence[Any]], returning: str
) -> list[Any]:
    """Insert ``rows`` (Python values in the order of ``names``), skipping those that break a unique
    constraint, and return the ``returning`` column of the rows inserted: the caller learns which
    went in without a marker column. COPY through a staging table on PostgreSQL (one statement
    with a value list per row costs more in the driver than in the server); multi-row VALUES on
    SQLite. Must run inside the caller's transaction."""
    if not rows:
        return []
    fields, adapters = columns(model, names)
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    column_list = ", ".join(quote(_column(f)) for f in fields)
    back = quote(_column(_concrete(model, returning)))
    prepare = _preparer(fields, adapters)
    prepared = [prepare(row) for row in rows]
    inserted: list[Any] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            stage = _stage_table(model, column_list)
            raw = cursor.cursor
            with raw.copy(f"COPY {stage} ({column_list}) FROM STDIN") as copy:
                for row in prepared:
                    copy.write_row(row)
            raw.execute(
                f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {stage} "
                f"ON CONFLICT DO NOTHING RETURNING {back}"
            )
            inserted = [r[0] for r in raw.fetchall()]
            raw.execute(f"TRUNCATE {stage}")
            return inserted
        per = max(1, 30000 // len(fields))  # SQLite's limit on a statement's parameters
        for start in range(0, len(prepared), per):
            part = prepared[start : start + per]
            values = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(part))
            cursor.execute(
                f"INSERT INTO {table} ({column_list}) VALUES {values} ON CONFLICT DO NOTHING RETURNING {back}",
                [value for row in part for value in row],
            )
            inserted.extend(r[0] for r in cursor.fetchall())
    return inserted


def bulk_update(model: type[models.Model], names: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """``UPDATE ... SET names = values WHERE id = row[-1]`` for each row (values then id)."""
    if not rows:
        return
    fields, adapters = columns(model, names)
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    prepare = _preparer(fields, adapters)
    prepared = [[*prepare(row[:-1]), row[-1]] for row in rows]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(prepared) > 1:
            # One statement for the whole set: UPDATE ... FROM (VALUES ...).
            casts = [f.db_type(connection) for f in fields]
            for start in range(0, len(prepared), 2000):
                chunk = prepared[start : start + 2000]
                values = ", ".join(
                    "(" + ", ".join(["%s::bigint"] + [f"%s::{cast}" for cast in casts]) + ")" for _ in chunk
                )
                assignments = ", ".join(f"{quote(_column(f))} = v.c{i}" for i, f in enumerate(fields))
                names_sql = ", ".join(["id"] + [f"c{i}" for i in range(len(fields))])
                params = [value for row in chunk for value in [row[-1], *row[:-1]]]
                cursor.execute(
                    f"UPDATE {table} SET {assignments} FROM (VALUES {values}) AS v({names_sql}) WHERE {table}.id = v.id",
                    params,
                )
            return
        assignments = ", ".join(f"{quote(_column(f))} = %s" for f in fields)
        sql = f"UPDATE {table} SET {assignments} WHERE id = %s"
        for start in range(0, len(prepared), 5000):
            cursor.executemany(sql, prepared[start : start + 5000])


# ---------------------------------------------------------------------------------------------
# Column-wise writes (polars frames), for bulk ingestion


def datetime_text(us: Any) -> Any:
    """polars expression: UTC microseconds since 1970 -> the text the database column takes.

    SQLite: Django's own format (naive UTC, ``YYYY-MM-DD HH:MM:SS[.ffffff]``), so that its
    text comparisons keep working; PostgreSQL: ISO 8601 with ``+00``.
    """
    import polars as pl

    moment = pl.from_epoch(us, time_unit="us")
    if connection.vendor == "sqlite":
        return (
            pl.when(us % 1_000_000 == 0)
            .then(moment.dt.strftime("%Y-%m-%d %H:%M:%S"))
            .otherwise(moment.dt.strftime("%Y-%m-%d %H:%M:%S%.6f"))
        )
    return moment.dt.strftime("%Y-%m-%d %H:%M:%S%.6f+00")


def next_ids(model: type[models.Model], count: int) -> Any:
    """``count`` fresh primary keys for ``model``, taken in one statement."""
    import polars as pl

    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count]
            )
            return pl.Series("id", [row[0] for row in cursor.fetchall()], dtype=pl.Int64)
        # SQLite has one writer at a time and the caller's transaction holds the write lock
        # (IMMEDIATE), so the next ids are those after the largest ever used.
        cursor.execute(
            f"SELECT max(coalesce((SELECT max(id) FROM {connection.ops.quote_name(table)}), 0), "
            f"coalesce((SELECT seq FROM sqlite_sequence WHERE name = %s), 0))",
            [table],
        )
        first = cursor.fetchone()[0] + 1
        return pl.int_range(first, first + count, eager=True, dtype=pl.Int64).alias("id")


def _write(table: str, column_list: str, frame: Any, conflict: str = "") -> None:
    """Rows of ``frame`` into ``table``: COPY on PostgreSQL, executemany on SQLite."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            data = frame.write_csv(include_header=False, null_value="\\N", quote_style="non_numeric")
            with cursor.cursor.copy(f"COPY {table} ({column_list}) FROM STDIN (FORMAT csv, NULL '\\N')") as copy:
                copy.write(data)
        else:
            placeholders = ", ".join(["%s"] * frame.width)
            cursor.executemany(f"INSERT INTO {table} ({column_list}) VALUES ({placeholders}){conflict}", frame.rows())


def insert_frame(model: type[models.Model], frame: Any) -> Any:
    """Insert a polars frame whose columns are ``model`` field names holding database values
    (money as integer units, times as :func:`datetime_text`); COPY on PostgreSQL.

    Rows that break a unique constraint (a call already stored) are skipped; the result is the
    new ids aligned with the frame's rows (null where skipped). Runs in the caller's transaction.
    """
    import polars as pl

    if frame.height == 0:
        return pl.Series("id", [], dtype=pl.Int64)
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    ids = next_ids(model, frame.height)
    frame = frame.insert_column(0, ids)
    column_list = ", ".join(quote(_column(_concrete(model, n))) for n in frame.columns)
    if connection.vendor == "sqlite":
        _write(table, column_list, frame, " ON CONFLICT DO NOTHING")
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {table} WHERE id >= %s AND id <= %s", [ids.min(), ids.max()])
            stored = [row[0] for row in cursor.fetchall()]
    else:
        import psycopg
        from django.db import transaction

        try:  # the common case, nothing stored yet: straight COPY, no staging
            with transaction.atomic():
                _write(table, column_list, frame)
            return ids
        except psycopg.errors.UniqueViolation:
            pass
        stage = _stage_table(model, column_list)
        with connection.cursor() as cursor:
            _write(stage, column_list, frame)
            cursor.execute(
                f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {stage} ON CONFLICT DO NOTHING RETURNING id"
            )
            stored = [row[0] for row in cursor.fetchall()]
            cursor.execute(f"TRUNCATE {stage}")
    if len(stored) == frame.height:
        return ids
    return ids.set(~ids.is_in(pl.Series(stored, dtype=pl.Int64).implode()), None)

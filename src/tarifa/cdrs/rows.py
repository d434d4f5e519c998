"""The CDR row both ingestion writers store: its columns, their order and their types, once.

The row-by-row writer builds :class:`CdrRow` tuples (Python values: ``Decimal`` money, aware
``datetime``) for :func:`tarifa.db.bulk_insert`; the frame writer builds a polars frame with the
same columns and hands :func:`frame_columns` of it to :func:`tarifa.db.insert_frame` (money as
integer micro-units, times as the database's text, :func:`tarifa.db.datetime_text`). Both take
the column names and their order from here, and the frame's dtypes follow from the annotations.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Final, NamedTuple, cast, get_args, get_type_hints

import polars as pl


class CdrRow(NamedTuple):
    """One ``cdrs.Cdr`` row as ingestion inserts it (field names are the model's)."""

    switch: str
    call_id: str
    leg: str
    direction: str
    account: int | None
    customer: int | None
    caller: str
    callee: str
    number: str
    source_ip: str | None
    sip_user: str
    trunk: str
    did: str
    extension: str
    account_code: str
    connection_name: str
    start_time: datetime
    connect_time: datetime | None
    end_time: datetime | None
    duration: int
    disposition: str
    sip_code: int | None
    connection: int | None
    prefix: str
    destination: str
    billed_seconds: int
    price: Decimal
    cost: Decimal
    margin: Decimal
    rating_status: str
    unrated_reason: str
    rated_at: datetime | None
    received_at: datetime
    pool_key: str
    pool_seconds: int
    out_payment: Decimal
    batch: int
    ingest_run: int
    transaction: int | None


COLUMNS: Final = CdrRow._fields
# a frame's column types: money in micro-units and times as the database's text (tarifa.db)
_FRAME_TYPES: Final[dict[type, type[pl.DataType]]] = {
    str: pl.String,
    int: pl.Int64,
    Decimal: pl.Int64,
    datetime: pl.String,
}


def _value_type(hint: object) -> type:
    """``int`` of ``int | None``."""
    kinds: list[type] = [kind for kind in get_args(hint) if kind is not type(None)] or [cast(type, hint)]
    return kinds[0]


FRAME_SCHEMA: Final = {name: _FRAME_TYPES[_value_type(hint)] for name, hint in get_type_hints(CdrRow).items()}


def frame_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame``'s CDR columns in :data:`COLUMNS` order with :data:`FRAME_SCHEMA` types (a
    missing or misnamed column is a ``ColumnNotFoundError`` here, not a wrong insert)."""
    return frame.select(pl.col(name).cast(FRAME_SCHEMA[name]) for name in COLUMNS)


__all__ = ["COLUMNS", "FRAME_SCHEMA", "CdrRow", "frame_columns"]

"""``tarifa rate``: standalone batch rating of a CDR file against a deck file (no database).

An operator checks a vendor's invoice against their own rate deck::

    tarifa rate --deck DECK.csv --cdrs CDRS.csv --out RATED.csv [--decimals N]
                [--rounding half_up|up|down] [--dialing-mode e164|nanp] [--tz ZONE]

The modules, in pipeline order (docs/batch-rating.md has the user's view):

* :mod:`~tarifa.batchrate.readers` — the deck (CSV or XLSX, validated by
  :func:`tarifa.core.deck.parse_deck`) and the CDR file (polars, converted by the shared
  vectorised converters of :mod:`tarifa.core.converters`, with the one-value reference parsers
  for what they leave open); malformed input raises :class:`InputError` listing every line;
* :mod:`~tarifa.batchrate.rating` — the deck read while the CDRs load in a second thread, the
  fast path (:func:`tarifa.core.array_rating.rate_batch`) or the reference path
  (:func:`tarifa.core.rating.rate_call`), and the atomic write of the output;
* :mod:`~tarifa.batchrate.command` — the typer command.

Nothing here uses the database, and nothing outside ``tarifa rate`` needs this package: the
converters CDR ingestion shares with it live in :mod:`tarifa.core.converters`.
"""

from __future__ import annotations

from tarifa.batchrate.command import register
from tarifa.batchrate.rating import OUTPUT_COLUMNS, RateSummary, fast_deck_for_window, rate_file
from tarifa.batchrate.readers import (
    CDR_COLUMNS,
    MAX_DURATION,
    CdrBatch,
    InputError,
    check_cdr_header,
    connect_times,
    durations,
    load_cdrs,
    load_deck,
    parse_connect_time,
    parse_duration,
)

__all__ = [
    "CDR_COLUMNS",
    "MAX_DURATION",
    "OUTPUT_COLUMNS",
    "CdrBatch",
    "InputError",
    "RateSummary",
    "check_cdr_header",
    "connect_times",
    "durations",
    "fast_deck_for_window",
    "load_cdrs",
    "load_deck",
    "parse_connect_time",
    "parse_duration",
    "rate_file",
    "register",
]

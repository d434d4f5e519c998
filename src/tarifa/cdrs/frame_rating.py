"""Matching and rating a CDR frame with vectorised code: the bulk path of ingestion.

:class:`FrameRater` takes a CDR frame (:mod:`tarifa.cdrs.columns`) and returns the rows it
rated, with their database values, and the rows it leaves to the row-by-row
:class:`~tarifa.cdrs.row_rating.Rater`. It covers what most traffic is:

* inbound calls to a DID whose plan includes no minutes, rated by
  :mod:`tarifa.cdrs.frame_origination` (the origination rules, once per distinct combination);
* outbound calls without a PBX extension (extensions and virtual numbers go row by row), matched by SIP user, trunk, account code or source IP in the one matching
  order of :mod:`tarifa.core.identity`; a call with an identity that names several accounts
  goes row by row (where the other identities may settle it); calls matching no account are
  stored unratable (``no_account``) here too, and calls through a POP their account may not
  use (``pop_not_allowed``) with their account but no price;
* accounts without included minutes (their pools are used in call order, row by row);
* numbers that normalise in the account's dialing mode;
* tariffs and vendor destination sets that compile to a :class:`~tarifa.core.array_rating.FastDeck`
  for the batch's time window, with at most 6 billing decimals.

The costs are those of :func:`tarifa.core.rating.rate_call` (``array_rating`` is tested equal to
it), and what a CDR keeps of them is decided by the Rater's charging rule,
:func:`tarifa.core.charging.verdict`, evaluated once per distinct combination of its facts in a
batch and joined to the rows; ``tests/integration/test_ingest_bulk.py``
ingests the same calls both ways and compares every row.
"""

from __future__ import annotations

import bisect
from typing import Any, Final

import numpy as np
import polars as pl

from tarifa.cdrs.frame_origination import FrameOrigination
from tarifa.cdrs.matching import Directory, Tables
from tarifa.core.array_rating import (
    FORBIDDEN,
    INVALID_NUMBER,
    NO_RATE,
    RATED,
    FastDeck,
    FastPathUnsupported,
    rate_batch,
)
from tarifa.core.cdr import Direction, Disposition
from tarifa.core.charging import CallFacts, verdict
from tarifa.core.converters import MICRO_DECIMALS, normalize_numbers, units_to_micros
from tarifa.core.identity import NO_ACCOUNT, ORDER
from tarifa.core.rating import RateTable, RatingStatus

MICRO = MICRO_DECIMALS
# polars dtypes of the values FrameRater adds
OUT_SCHEMA = {
    "account": pl.Int64,
    "customer": pl.Int64,
    "own_balance": pl.Boolean,
    "number": pl.String,
    "connection_id": pl.Int64,
    "prefix": pl.String,
    "destination": pl.String,
    "billed_seconds": pl.Int64,
    "price": pl.Int64,
    "price_decimals": pl.Int64,
    "cost": pl.Int64,
    "rating_status": pl.String,
    "unrated_reason": pl.String,
    "out_payment": pl.Int64,
}


# the facts the charging rule decides on (core.charging.CallFacts), as frame columns
_FACTS: Final = {
    "_unmatched": pl.String,
    "_pop_allowed": pl.Boolean,
    "_inbound": pl.Boolean,
    "_rating": pl.Int8,
    "_answered": pl.Boolean,
    "_a_leg": pl.Boolean,
}
_VERDICT: Final = {
    "_status": pl.String,
    "_reason": pl.String,
    "_keeps_number": pl.Boolean,
    "_bills": pl.Boolean,
    "_charges": pl.Boolean,
    "_pays_vendor": pl.Boolean,
    "_keeps_connection": pl.Boolean,
}
#: the "no value" of an object array built by np.where (a prefix or destination the deck does not know)
_NONE: Final = np.array(None, dtype=object)

_RATING: Final = {
    RATED: RatingStatus.RATED,
    NO_RATE: RatingStatus.UNRATED,
    FORBIDDEN: RatingStatus.FORBIDDEN,
    INVALID_NUMBER: RatingStatus.UNRATED,
}


def _verdicts(facts: pl.DataFrame) -> pl.DataFrame:
    """:func:`tarifa.core.charging.verdict` of each distinct row of ``facts`` (a handful per batch)."""
    rows = []
    for unmatched, pop_ok, inbound, code, answered, a_leg in facts.unique().iter_rows():
        decided = verdict(
            CallFacts(
                unmatched=unmatched,
                pop_allowed=pop_ok,
                inbound=inbound,
                number_valid=code != INVALID_NUMBER,
                rating=_RATING[code],
                answered=answered,
                a_leg=a_leg,
            )
        )
        rows.append(
            (
                unmatched,
                pop_ok,
                inbound,
                code,
                answered,
                a_leg,
                decided.status.value,
                decided.reason,
                decided.keeps_number,
                decided.bills,
                decided.charges,
                decided.pays_vendor,
                decided.keeps_connection,
            )
        )
    return pl.DataFrame(rows, schema={**_FACTS, **_VERDICT}, orient="row")


class FrameRater:
    """Vectorised matching and rating for one import run (built on the run's Directory and Tables)."""

    def __init__(self, directory: Directory, tables: Tables) -> None:
        self.tables = tables
        self._inbound = FrameOrigination(directory)  # inbound DID calls (core.origination)
        valid = directory.accounts
        # The identities in the one matching order (core.identity), as lookups of the values that
        # name exactly one account. Rows with an extension go row by row; so does a row with any
        # value naming several accounts (the row path narrows by the other identities).
        index = directory.index
        self._maps: list[tuple[str, dict[str, int]]] = [
            (column, index.unique(column)) for column in ORDER if column != "extension"
        ]
        self._ambiguous: list[tuple[str, list[str]]] = [
            (column, sorted(keys)) for column, _ in self._maps if (keys := index.ambiguous(column))
        ]
        # POP restriction: (account, allowed POP) pairs of the accounts that have one
        self._restricted = sorted(a.account_id for a in valid.values() if a.pops)
        self._allowed_pops = pl.DataFrame(
            [(a.account_id, pop) for a in valid.values() for pop in sorted(a.pops)],
            schema={"account": pl.Int64, "switch": pl.String},
            orient="row",
        ).with_columns(_pop_ok=pl.lit(True))
        infos = list(valid.values())
        self._accounts = pl.DataFrame(
            {
                "account": [i.account_id for i in infos],
                "customer": [i.customer_id for i in infos],
                "own_balance": [i.own_balance for i in infos],
                "mode": [i.dialing_mode for i in infos],
                "tariff": [i.tariff_id for i in infos],
                "decimals": [i.decimals for i in infos],
                "has_pools": [bool(i.pools) for i in infos],
            },
            schema={
                "account": pl.Int64,
                "customer": pl.Int64,
                "own_balance": pl.Boolean,
                "mode": pl.String,
                "tariff": pl.Int64,
                "decimals": pl.Int64,
                "has_pools": pl.Boolean,
            },
        )
        self._static: dict[tuple[tuple[str, Any], int], FastDeck | None] = {}
        self._changes: dict[tuple[str, Any], list[Any]] = {}
        self._names: dict[int, tuple[FastDeck, np.ndarray, np.ndarray]] = {}

    # --- decks ------------------------------------------------------------------------------

    def _deck(self, key: tuple[str, Any], table: RateTable, start_us: int, end_us: int) -> FastDeck | None:
        """The FastDeck for calls connected in [start, end], or None (row by row).

        A deck is valid between two consecutive instants where some rate version starts or
        ends, so it is built once per such stretch of time and kept for the run.
        """
        from tarifa.core.periods import moment

        if key not in self._changes:
            self._changes[key] = sorted(
                {e.effective_from for e in table.entries if e.effective_from is not None}
                | {e.effective_to for e in table.entries if e.effective_to is not None}
            )
        changes = self._changes[key]
        start, end = moment(start_us), moment(end_us + 1)
        stretch = bisect.bisect_right(changes, start)
        if stretch < len(changes) and changes[stretch] < end:
            stretch = -1  # the batch spans a change: build for this window only
        elif (key, stretch) in self._static:
            return self._static[(key, stretch)]
        try:
            deck: FastDeck | None = FastDeck.for_window(table, start, end)
        except FastPathUnsupported:
            deck = None
        if stretch >= 0:
            self._static[(key, stretch)] = deck
        return deck

    def _labels(self, deck: FastDeck) -> tuple[np.ndarray, np.ndarray]:
        """Prefix and destination (as stored: at most 100 characters) of each deck entry."""
        known = self._names.get(id(deck))
        if known is None or known[0] is not deck:  # an id can be reused once a deck is gone
            known = self._names[id(deck)] = (
                deck,
                np.array(deck.prefixes, dtype=object),
                np.array([(e.destination or "")[:100] for e in deck.entries], dtype=object),
            )
        return known[1], known[2]

    # --- the split --------------------------------------------------------------------------

    def _match(self, frame: pl.DataFrame) -> pl.DataFrame:
        candidates = []
        for column, mapping in self._maps:
            if mapping:
                candidates.append(
                    pl.when(pl.col(column) != "").then(
                        pl.col(column).replace_strict(mapping, default=None, return_dtype=pl.Int64)
                    )
                )
        account = pl.coalesce(candidates) if candidates else pl.lit(None, pl.Int64)
        ambiguous = pl.any_horizontal(
            [pl.col(column).is_in(keys) for column, keys in self._ambiguous] or [pl.lit(False)]
        )
        matched = frame.with_row_index("i")
        dids = self._inbound.account_of()
        if dids and (frame["direction"] == "inbound").any():  # inbound DID calls: the DID's account
            matched = matched.with_columns(_did=self._inbound.did_column(frame))
            did_account = pl.col("_did").replace_strict(dids, default=None, return_dtype=pl.Int64)
            inbound = pl.col("_did").is_not_null()
            account = pl.when(inbound).then(did_account).otherwise(account)
            ambiguous = ambiguous & ~inbound
        else:
            matched = matched.with_columns(_did=pl.lit(None, pl.String))
        matched = matched.with_columns(account=account, _ambiguous=ambiguous)
        matched = matched.join(self._accounts, on="account", how="left", maintain_order="left")
        if self._restricted:  # a call through a POP its account may not use: kept, never charged
            matched = matched.join(self._allowed_pops, on=["account", "switch"], how="left", maintain_order="left")
            return matched.with_columns(
                _pop_refused=pl.col("account").is_in(self._restricted) & pl.col("_pop_ok").is_null()
            ).drop("_pop_ok")
        return matched.with_columns(_pop_refused=pl.lit(False))

    def split(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(rows rated here: the frame's columns plus :data:`OUT_SCHEMA`, rows for the Rater)."""
        f = self._match(frame)
        col = pl.col
        inbound = col("_did").is_not_null()  # an inbound call to a DID rated here (frame_origination)
        row_by_row = ~inbound & (
            (col("direction") != Direction.OUTBOUND.value)
            | (col("extension") != "")
            | col("has_pools").fill_null(False)
            | col("_ambiguous")
        )
        numbers = [
            pl.when(col("mode") == mode).then(normalize_numbers(f["callee"], mode))
            for mode in f["mode"].drop_nulls().unique().to_list()
        ]
        f = f.with_columns(
            number=pl.when(inbound)
            .then(col("callee").str.strip_chars_start("+").str.slice(0, 15))
            .otherwise(pl.coalesce(numbers) if numbers else pl.lit(None, pl.String)),
            at_us=pl.coalesce("connect_us", "start_us"),
        )
        row_by_row = row_by_row | (col("account").is_not_null() & col("number").is_null()) | (col("decimals") > MICRO)
        f = f.with_columns(_slow=row_by_row.fill_null(False))
        results: list[pl.DataFrame] = []
        slow_rows: list[np.ndarray] = []
        rateable = f.filter(~col("_slow") & col("account").is_not_null() & ~col("_pop_refused") & ~inbound)
        for (tariff_id, decimals), group in rateable.group_by(["tariff", "decimals"]):
            part = self._rate_customer(group, int(tariff_id), int(decimals))
            if part is None:
                slow_rows.append(group["i"].to_numpy())
            else:
                results.append(part)
        rated = pl.concat(results) if results else None
        if rated is not None:
            rated, slow_vendor = self._rate_vendor(f, rated)
            slow_rows.extend(slow_vendor)
        calls_in = f.filter(~col("_slow") & inbound & ~col("_pop_refused"))
        if calls_in.height:  # no vendor side: added after it
            origination = self._inbound.rate(
                calls_in.select(
                    "i",
                    "_did",
                    "caller",
                    "mode",
                    "decimals",
                    "duration",
                    _charged=(col("disposition") == "answered") & (col("duration") > 0) & (col("leg") == "a"),
                )
            ).with_columns(
                status=pl.lit(RATED, pl.Int8), connection_id=pl.lit(None, pl.Int64), vcost=pl.lit(0, pl.Int64)
            )
            rated = origination if rated is None else pl.concat([rated, origination], how="diagonal_relaxed")
        slow_index = np.concatenate(slow_rows) if slow_rows else np.zeros(0, dtype=np.uint32)
        in_slow = col("_slow") | col("i").is_in(pl.Series(slow_index, dtype=pl.UInt32).implode())
        slow = f.filter(in_slow)
        fast = f.filter(~in_slow)
        empty_rating = pl.DataFrame(
            schema={
                "i": pl.UInt32,
                "status": pl.Int8,
                "prefix": pl.String,
                "destination": pl.String,
                "billed": pl.Int64,
                "units": pl.Int64,
                "connection_id": pl.Int64,
                "vcost": pl.Int64,
                "out_units": pl.Int64,
            }
        )
        fast = fast.join(rated if rated is not None else empty_rating, on="i", how="left", maintain_order="left")
        # The charging rule (core.charging), evaluated once per distinct combination of facts.
        fast = fast.with_columns(
            _unmatched=pl.when(col("account").is_null()).then(pl.lit(NO_ACCOUNT)).otherwise(pl.lit("")),
            _pop_allowed=~col("_pop_refused").fill_null(False),  # null: no account (decided first)
            _inbound=col("_did").is_not_null(),
            _rating=col("status").fill_null(RATED),  # not rated (no account, POP refused): decided before
            _answered=(col("disposition") == Disposition.ANSWERED.value) & (col("duration") > 0),
            _a_leg=col("leg") == "a",
        )
        fast = fast.join(_verdicts(fast.select(*_FACTS)), on=list(_FACTS), how="left", maintain_order="left")
        out = fast.with_columns(
            number=pl.when(col("_keeps_number")).then(col("number").fill_null("")).otherwise(pl.lit("")),
            prefix=pl.when(col("_keeps_number")).then(col("prefix").fill_null("")).otherwise(pl.lit("")),
            destination=col("destination").fill_null(""),
            billed_seconds=pl.when(col("_bills")).then(col("billed")).otherwise(0),
            price=pl.when(col("_charges")).then(units_to_micros(col("units"), col("decimals"))).otherwise(0),
            # decimals the price was computed with (0 when not priced): the report's precision
            price_decimals=pl.when(col("_charges")).then(col("decimals")).otherwise(0),
            cost=pl.when(col("_pays_vendor")).then(col("vcost")).otherwise(0).fill_null(0),
            connection_id=pl.when(col("_keeps_connection")).then(col("connection_id")),
            rating_status=col("_status"),
            unrated_reason=col("_reason"),
            out_payment=(
                pl.when(col("_charges"))
                .then(units_to_micros(col("out_units"), col("decimals")))
                .otherwise(0)
                .fill_null(0)
                if "out_units" in fast.columns
                else pl.lit(0, pl.Int64)
            ),
        )
        keep = [c for c in frame.columns] + list(OUT_SCHEMA)
        return out.select(keep), slow.select(frame.columns)

    def _rate_customer(self, group: pl.DataFrame, tariff_id: int, decimals: int) -> pl.DataFrame | None:
        table, rounding = self.tables.tariff(tariff_id)
        at = group["at_us"]
        deck = self._deck(("tariff", tariff_id), table, int(at.min()), int(at.max()))  # type: ignore[arg-type]
        if deck is None:
            return None
        try:
            result = rate_batch(
                deck, group["number"].cast(pl.Int64).to_numpy(), group["duration"].to_numpy(), decimals, rounding
            )
        except FastPathUnsupported:
            return None
        prefixes, destinations = self._labels(deck)
        label = result.entry_index
        known = label >= 0
        safe = np.maximum(label, 0)
        return pl.DataFrame(
            {
                "i": group["i"],
                "status": pl.Series(result.status, dtype=pl.Int8),
                "prefix": pl.Series(
                    np.where(known, prefixes[safe], _NONE).tolist() if len(prefixes) else [None] * len(label),
                    dtype=pl.String,
                ),
                "destination": pl.Series(
                    np.where(known, destinations[safe], _NONE).tolist() if len(prefixes) else [None] * len(label),
                    dtype=pl.String,
                ),
                "billed": pl.Series(result.billed_seconds, dtype=pl.Int64),
                "units": pl.Series(result.cost_units, dtype=pl.Int64),
            }
        )

    def _rate_vendor(self, f: pl.DataFrame, rated: pl.DataFrame) -> tuple[pl.DataFrame, list[np.ndarray]]:
        """Add ``connection_id`` and ``vcost`` (10**-6 units) for rated rows with a known connection."""
        rows = rated.join(f.select("i", "connection", "number", "duration", "at_us"), on="i", how="left")
        with_conn = rows.filter((pl.col("status") == RATED) & (pl.col("connection") != ""))
        parts = [
            rows.filter(~pl.col("i").is_in(with_conn["i"].implode())).with_columns(
                connection_id=pl.lit(None, pl.Int64), vcost=pl.lit(0, pl.Int64)
            )
        ]
        slow: list[np.ndarray] = []
        for (name,), group in with_conn.group_by(["connection"]):
            vendor = self.tables.vendor(str(name))
            if vendor is None:
                parts.append(group.with_columns(connection_id=pl.lit(None, pl.Int64), vcost=pl.lit(0, pl.Int64)))
                continue
            connection_id, table, vdecimals, vrounding = vendor
            at = group["at_us"]
            deck = self._deck(("vendor", name), table, int(at.min()), int(at.max()))  # type: ignore[arg-type]
            result = None
            if deck is not None and vdecimals <= MICRO:
                try:
                    result = rate_batch(
                        deck,
                        group["number"].cast(pl.Int64).to_numpy(),
                        group["duration"].to_numpy(),
                        vdecimals,
                        vrounding,
                    )
                except FastPathUnsupported:
                    result = None
            if result is None:
                slow.append(group["i"].to_numpy())
                continue
            units = np.where(result.status == RATED, result.cost_units, 0) * 10 ** (
                MICRO - vdecimals
            )  # as units_to_micros
            parts.append(
                group.with_columns(
                    connection_id=pl.lit(connection_id, pl.Int64), vcost=pl.Series(units, dtype=pl.Int64)
                )
            )
        out = pl.concat(parts, how="vertical_relaxed").select(
            "i", "status", "prefix", "destination", "billed", "units", "connection_id", "vcost"
        )
        return out, slow

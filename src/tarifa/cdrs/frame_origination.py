"""Inbound DID calls of a CDR frame, rated with the origination rules a frame at a time.

The vectorised path's counterpart of :meth:`tarifa.cdrs.row_rating.Rater._rate_inbound`. It
covers inbound calls to a DID (``did``, else the callee) whose plan includes no minutes (a pool
is used in call order: row by row), and leaves the others (virtual numbers, numbers we do not
hold, DIDs with included minutes) to the row path. The rules are those of
:mod:`tarifa.core.origination` and :mod:`tarifa.core.rating`, called once per distinct
combination of their inputs in the batch (callers, rates and durations repeat) and joined to the
rows: the rules are written once, and ``tests/integration/test_origination.py`` ingests the
same calls both ways and compares every row, Transaction and balance.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

import polars as pl

from tarifa.cdrs.matching import Directory, Match
from tarifa.core.classify import is_toll_free
from tarifa.core.dids import active_from
from tarifa.core.numbering import InvalidNumber, normalize
from tarifa.core.origination import (
    INBOUND_DESTINATION,
    inbound_destination,
    origination_rate,
    out_payment,
    payphone_surcharge,
)
from tarifa.core.periods import micros
from tarifa.core.rating import billed_seconds, cost_units

#: What :meth:`FrameOrigination.rate` returns, per row ``i`` (money in units of 10**-decimals).
RATED_SCHEMA: Final = {
    "i": pl.UInt32,
    "prefix": pl.String,
    "destination": pl.String,
    "billed": pl.Int64,
    "units": pl.Int64,
    "out_units": pl.Int64,
}


class FrameOrigination:
    """The DIDs an inbound call can be rated for here, and the rating of a frame of such calls."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self._matches: dict[str, Match] = {}
        for number in directory.dids:
            match = directory.did_match(number)
            if match is not None and not match.pools and match.origination is not None:
                self._matches[number] = match
        self._accounts = dict(sorted((n, m.account.account_id) for n, m in self._matches.items()))
        # calls before a DID's activation are the row path's (unrated there, core.dids.active_on)
        self._active_from = {
            n: micros(start)
            for n in self._accounts
            if (start := active_from(directory.dids[n].activation_date)) is not None
        }

    def did_column(self, frame: pl.DataFrame) -> pl.Series:
        """The DID each inbound row is priced as (null: not here, the row path decides), in the
        order the row path tries: ``did``, then the callee, a leading ``+`` ignored."""
        if not self._accounts:
            return pl.Series("_did", [None] * frame.height, dtype=pl.String)
        known = pl.Series(list(self._accounts), dtype=pl.String).implode()
        by_did = pl.col("did").str.strip_chars_start("+")
        by_callee = pl.col("callee").str.strip_chars_start("+")
        did: pl.Expr = (
            pl.when((pl.col("direction") == "inbound") & (pl.col("did") != "") & by_did.is_in(known))
            .then(by_did)
            .when((pl.col("direction") == "inbound") & by_callee.is_in(known))
            .then(by_callee)
        )
        if self._active_from:
            start = did.replace_strict(self._active_from, default=None, return_dtype=pl.Int64)
            early = start.is_not_null() & (pl.coalesce("connect_us", "start_us") < start)
            did = pl.when(early).then(pl.lit(None, pl.String)).otherwise(did)
        return frame.select(did.alias("_did")).to_series()

    def account_of(self) -> dict[str, int]:
        """DID number -> account charged."""
        return self._accounts

    def rate(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Rate inbound rows (columns ``i``, ``_did``, ``caller``, ``mode``, ``decimals``,
        ``duration``, ``_charged``): :data:`RATED_SCHEMA`. Uncharged rows (unanswered, B legs)
        keep the plain inbound destination and no amounts, as on the row path."""
        col = pl.col
        charged = rows.filter(col("_charged"))
        # 1. the caller in E.164 digits, per distinct (caller, dialing mode): "" when unknown
        callers = charged.select("caller", "mode").unique()
        e164 = [_e164(caller, mode) for caller, mode in callers.iter_rows()]
        charged = charged.join(
            callers.with_columns(_caller=pl.Series(e164, dtype=pl.String)), on=["caller", "mode"], how="left"
        )
        # 2. the rate and the payphone surcharge, per distinct (DID, caller, decimals)
        choices = charged.select("_did", "_caller", "decimals").unique()
        chosen = []
        for did, caller, decimals in choices.iter_rows():
            plan = self._matches[did].origination
            assert plan is not None
            pick = origination_rate(plan, caller, did, toll_free=is_toll_free(did), lata=self.directory.lata)
            surcharge = payphone_surcharge(plan, caller, self.directory.payphone_prefixes, decimals)
            destination = inbound_destination(pick.basis)
            chosen.append(
                (did, caller, decimals, str(pick.rate), pick.prefix, destination, int(surcharge.scaleb(decimals)))
            )
        charged = charged.join(
            pl.DataFrame(
                chosen,
                orient="row",
                schema={
                    "_did": pl.String,
                    "_caller": pl.String,
                    "decimals": pl.Int64,
                    "_rate": pl.String,
                    "prefix": pl.String,
                    "destination": pl.String,
                    "_surcharge": pl.Int64,
                },
            ),
            on=["_did", "_caller", "decimals"],
            how="left",
        )
        # 3. billed seconds, price and out-payment, per distinct (DID, rate, decimals, duration)
        costs = charged.select("_did", "_rate", "decimals", "duration").unique()
        priced = []
        for did, rate, decimals, duration in costs.iter_rows():
            match = self._matches[did]
            plan = match.origination
            assert plan is not None
            terms = plan.terms(Decimal(rate))
            credit = out_payment(match.out_payment_rate, plan.interval_1, plan.interval_n, duration, decimals)
            priced.append(
                (
                    did,
                    rate,
                    decimals,
                    duration,
                    billed_seconds(terms, duration),
                    cost_units(terms, duration, decimals, "half_up"),
                    int(credit.scaleb(decimals)),
                )
            )
        charged = charged.join(
            pl.DataFrame(
                priced,
                orient="row",
                schema={
                    "_did": pl.String,
                    "_rate": pl.String,
                    "decimals": pl.Int64,
                    "duration": pl.Int64,
                    "billed": pl.Int64,
                    "_units": pl.Int64,
                    "out_units": pl.Int64,
                },
            ),
            on=["_did", "_rate", "decimals", "duration"],
            how="left",
        )
        charged = charged.select(
            "i", "prefix", "destination", "billed", (col("_units") + col("_surcharge")).alias("units"), "out_units"
        )
        uncharged = rows.filter(~col("_charged")).select(
            "i",
            prefix=pl.lit(""),
            destination=pl.lit(INBOUND_DESTINATION),
            billed=pl.lit(0, pl.Int64),
            units=pl.lit(0, pl.Int64),
            out_units=pl.lit(0, pl.Int64),
        )
        return pl.concat([charged.cast(RATED_SCHEMA), uncharged.cast(RATED_SCHEMA)])  # type: ignore[arg-type]


def _e164(caller: str, mode: str) -> str:
    """The caller as the row path reads it: E.164 digits in the account's dialing mode, ""
    for an empty or unusable number (no origin: the blended rate)."""
    if not caller:
        return ""
    try:
        return normalize(caller, mode)
    except InvalidNumber:
        return ""


__all__ = ["RATED_SCHEMA", "FrameOrigination"]

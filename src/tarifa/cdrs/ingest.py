"""CDR ingestion: match, rate both sides, store and post each call exactly once.

Each batch is one database transaction holding the CDR rows, their Transactions, the balance
updates and the included-minutes usage. The idempotency key (switch, call id, leg) is a unique
constraint: rows are inserted with ``ON CONFLICT DO NOTHING`` and tagged with a batch token,
and the batch charges exactly the rows that carry its token. Should another importer insert
one of the same calls between our duplicate check and our insert, the counts disagree and the
batch is rolled back and retried, so a call is never charged twice nor skipped.
"""

from __future__ import annotations

import time
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from tarifa.billing import ledger
from tarifa.billing.models import MinutePoolUsage
from tarifa.calls.reservations import release_calls
from tarifa.cdrs.matching import Directory, Match, Tables
from tarifa.cdrs.models import Cdr, IngestRun
from tarifa.core.cdr import CanonicalCdr, LineError
from tarifa.core.numbering import InvalidNumber, normalize
from tarifa.core.pools import price_with_pool
from tarifa.core.rating import RatingStatus, rate_call
from tarifa.db import any_of, bulk_insert, prepared_datetime

CDR_COLUMNS = (
    "switch", "call_id", "leg", "direction", "account", "customer", "caller", "callee", "number", "source_ip",
    "sip_user", "trunk", "did", "extension", "account_code", "connection_name",
    "start_time", "connect_time", "end_time", "duration", "disposition", "sip_code", "connection", "prefix",
    "destination", "billed_seconds", "price", "cost", "margin", "rating_status", "unrated_reason", "rated_at",
    "received_at", "pool_key", "pool_seconds", "batch", "ingest_run",
)
LIMITS = {
    "switch": 64, "call_id": 255, "leg": 16, "caller": 64, "callee": 64, "connection": 100, "sip_user": 64,
    "trunk": 64, "did": 20, "extension": 20, "account_code": 64,
}
ZERO = Decimal(0)


class _Raced(Exception):
    """Another writer stored one of this batch's calls meanwhile: roll back and retry."""


@dataclass
class IngestReport:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    unrated: int = 0
    charged: Decimal = ZERO
    rejected: list[LineError] = field(default_factory=list)
    run_id: int | None = None

    def summary(self) -> str:
        return (f"{self.received} received, {self.stored} stored, {self.duplicates} duplicates, "
                f"{len(self.rejected)} rejected, {self.unrated} unratable, {self.charged} charged")


def _month(moment: datetime) -> date:
    return date(moment.year, moment.month, 1)


def _check(cdr: CanonicalCdr) -> str | None:
    if len(cdr.call_id) > 255 or max(
        len(cdr.switch), len(cdr.leg), len(cdr.caller), len(cdr.callee), len(cdr.sip_user), len(cdr.trunk),
        len(cdr.did), len(cdr.extension), len(cdr.account_code), len(cdr.connection),
    ) > 16:
        for name, limit in LIMITS.items():
            value = getattr(cdr, name)
            if len(value) > limit:
                return f"{name} is longer than {limit} characters"
    if cdr.duration > 7 * 86400:
        return f"duration {cdr.duration} is more than a week"
    return None


@dataclass
class Rated:
    """A CDR's database row values and what posting it moves."""

    values: dict[str, Any]
    match: Match | None


class Rater:
    """Matches and rates CDRs for one run; holds the included-minutes usage of the current
    database transaction (:meth:`begin` it per transaction, :meth:`flush_pools` before commit)."""

    def __init__(self) -> None:
        self.directory = Directory()
        self.tables = Tables()
        self._pool_used: dict[tuple[int, str, date], int] = {}
        self._pool_touched: set[tuple[int, str, date]] = set()

    def begin(self) -> None:
        self._pool_used = {}
        self._pool_touched = set()

    def _pool_load(self, slot: tuple[int, str, date]) -> int:
        if slot not in self._pool_used:
            account_id, key, period = slot
            # Make sure the row exists before locking it: a missing row cannot be locked, and two
            # writers would both start from 0 for the month's first calls.
            MinutePoolUsage.objects.get_or_create(
                account_id=account_id, pool_key=key, period_start=period, defaults={"seconds_used": 0}
            )
            self._pool_used[slot] = (
                MinutePoolUsage.objects.select_for_update()
                .filter(account_id=account_id, pool_key=key, period_start=period)
                .values_list("seconds_used", flat=True)
                .get()
            )
        return self._pool_used[slot]

    def _pool_remaining(self, account_id: int, key: str, period: date, allowance: int) -> int:
        return max(0, allowance - self._pool_load((account_id, key, period)))

    def pool_change(self, slot: tuple[int, str, date], seconds: int) -> None:
        """Use (positive) or give back (negative) pool seconds."""
        self._pool_used[slot] = max(0, self._pool_load(slot) + seconds)
        self._pool_touched.add(slot)

    def flush_pools(self) -> None:
        for slot in self._pool_touched:
            account_id, key, period = slot
            MinutePoolUsage.objects.update_or_create(
                account_id=account_id, pool_key=key, period_start=period,
                defaults={"seconds_used": self._pool_used[slot]},
            )
        self._pool_touched = set()

    def rate(self, cdr: CanonicalCdr) -> Rated:
        match = self.directory.match(cdr)
        at = cdr.connect_time or cdr.start_time
        values: dict[str, Any] = {
            "prefix": "", "destination": "", "billed_seconds": 0, "price": ZERO, "cost": ZERO, "margin": ZERO,
            "rating_status": RatingStatus.RATED, "unrated_reason": "", "pool_key": "", "pool_seconds": 0,
            "number": "", "connection": None,
        }
        if match is None:
            values.update(rating_status=RatingStatus.UNRATED, unrated_reason="no_account")
            return Rated(values, None)
        account = match.account
        # A switch's B leg (e.g. FreeSWITCH log-b-leg) is the same call towards the carrier: kept
        # for its vendor cost, never charged nor counted against included minutes a second time.
        charged = cdr.leg == "a"
        answered = cdr.disposition == "answered" and cdr.duration > 0
        if match.inbound_terms is not None:
            values["number"] = cdr.callee.lstrip("+")[:15]
            values["destination"] = "DID inbound"
            if answered and charged:
                pool = match.pools[0] if match.pools else None
                remaining = self._pool_remaining(account.account_id, pool.key, _month(at), pool.seconds) if pool else 0
                price, billed, used = price_with_pool(match.inbound_terms, cdr.duration, account.decimals, "half_up", remaining)
                values.update(price=price, billed_seconds=billed)
                if used:
                    self.pool_change((account.account_id, pool.key, _month(at)), used)  # type: ignore[union-attr]
                    values.update(pool_key=pool.key, pool_seconds=used)  # type: ignore[union-attr]
            return Rated(values, match)
        try:
            number = normalize(cdr.callee, account.dialing_mode)
        except InvalidNumber as exc:
            values.update(rating_status=RatingStatus.UNRATED, unrated_reason="invalid_number",
                          destination=exc.reason[:100])
            return Rated(values, match)
        values["number"] = number
        table, rounding = self.tables.tariff(match.tariff_id or account.tariff_id)
        result = rate_call(table, number, at, cdr.duration, account.decimals, rounding)
        values.update(prefix=result.prefix or "", destination=(result.destination or "")[:100])
        if result.status == RatingStatus.UNRATED:
            values.update(rating_status=RatingStatus.UNRATED, unrated_reason=str(result.reason or "no_rate"))
            return Rated(values, match)
        if result.status == RatingStatus.FORBIDDEN:
            values.update(rating_status=RatingStatus.FORBIDDEN, unrated_reason="forbidden")
            return Rated(values, match)
        price = result.cost or ZERO
        values["billed_seconds"] = result.billed_seconds if answered else 0
        if not answered or not charged:
            price = ZERO
        elif match.pools and result.entry is not None:
            for pool in match.pools:
                if pool.prefixes and not number.startswith(pool.prefixes):
                    continue
                remaining = self._pool_remaining(account.account_id, pool.key, _month(at), pool.seconds)
                if remaining > 0:
                    price, _billed, used = price_with_pool(result.entry.terms, cdr.duration, account.decimals, rounding, remaining)
                    self.pool_change((account.account_id, pool.key, _month(at)), used)
                    values.update(pool_key=pool.key, pool_seconds=used)
                    break
        values["price"] = price
        vendor = self.tables.vendor(cdr.connection)
        if vendor is not None:
            connection_id, vtable, vdecimals, vrounding = vendor
            values["connection"] = connection_id
            if answered:
                vresult = rate_call(vtable, number, at, cdr.duration, vdecimals, vrounding)
                values["cost"] = vresult.cost or ZERO
        values["margin"] = values["price"] - values["cost"]
        return Rated(values, match)



class Ingestor:
    """One import run: call :meth:`feed` with records, then :meth:`finish`."""

    def __init__(self, *, source: str, fmt: str, switch: str = "", started_by: str = "", batch_size: int = 2000) -> None:
        self.switch = switch
        self.batch_size = batch_size
        self.rater = Rater()
        self.run = IngestRun.objects.create(source=source[:255], format=fmt, switch=switch, started_by=started_by[:150])
        self.report = IngestReport(run_id=self.run.pk)

    # --- storing and posting ------------------------------------------------------------------

    def _existing(self, cdrs: list[CanonicalCdr]) -> set[tuple[str, str, str]]:
        found: set[tuple[str, str, str]] = set()
        by_switch: dict[str, list[str]] = {}
        for c in cdrs:
            by_switch.setdefault(c.switch or self.switch, []).append(c.call_id)
        table = connection.ops.quote_name(Cdr._meta.db_table)
        with connection.cursor() as cursor:
            for switch, ids in by_switch.items():
                for start in range(0, len(ids), 5000):
                    condition, params = any_of("call_id", ids[start:start + 5000])
                    cursor.execute(f"SELECT switch, call_id, leg FROM {table} WHERE switch = %s AND {condition}",
                                   [switch, *params])
                    found.update(cursor.fetchall())
        return found

    def _inserted(self, new: list[CanonicalCdr], token: int) -> dict[tuple[str, str, str], int]:
        """Ids of the rows this batch inserted: looked up by the unique key, kept if they carry our token."""
        by_switch: dict[str, list[str]] = {}
        for c in new:
            by_switch.setdefault(c.switch or self.switch, []).append(c.call_id)
        table = connection.ops.quote_name(Cdr._meta.db_table)
        ids: dict[tuple[str, str, str], int] = {}
        with connection.cursor() as cursor:
            for switch, call_ids in by_switch.items():
                for start in range(0, len(call_ids), 5000):
                    condition, params = any_of("call_id", call_ids[start:start + 5000])
                    cursor.execute(
                        f"SELECT id, switch, call_id, leg FROM {table} WHERE switch = %s AND {condition} AND batch = %s",
                        [switch, *params, token],
                    )
                    ids.update({(s, c, leg): pk for pk, s, c, leg in cursor.fetchall()})
        return ids

    def _post_once(self, cdrs: list[CanonicalCdr]) -> tuple[int, int, int, Decimal]:
        self.rater.begin()
        existing = self._existing(cdrs)
        new = [c for c in cdrs if (c.switch or self.switch, c.call_id, c.leg) not in existing]
        if not new:
            return 0, len(cdrs), 0, ZERO
        token = secrets.randbits(62)
        now = prepared_datetime(timezone.now())
        rated = [self.rater.rate(c) for c in new]
        rows = []
        for cdr, r in zip(new, rated):
            v = r.values
            info = r.match.account if r.match else None
            rows.append([
                cdr.switch or self.switch, cdr.call_id, cdr.leg, cdr.direction, info.account_id if info else None,
                info.customer_id if info else None, cdr.caller, cdr.callee, v["number"], cdr.source_ip or None,
                cdr.sip_user, cdr.trunk, cdr.did, cdr.extension, cdr.account_code, cdr.connection,
                cdr.start_time, cdr.connect_time, cdr.end_time, cdr.duration, cdr.disposition, cdr.sip_code,
                v["connection"], v["prefix"], v["destination"], v["billed_seconds"], v["price"], v["cost"], v["margin"],
                v["rating_status"], v["unrated_reason"], now if v["rating_status"] == RatingStatus.RATED else None,
                now, v["pool_key"], v["pool_seconds"], token, self.run.pk,
            ])
        bulk_insert(Cdr, CDR_COLUMNS, rows, ignore_conflicts=True)
        ids = self._inserted(new, token)
        if len(ids) != len(new):
            raise _Raced()
        postings = []
        for cdr, r in zip(new, rated):
            price = r.values["price"]
            if r.match is None or price == 0:
                continue
            info = r.match.account
            postings.append(ledger.Posting(
                customer_id=info.customer_id, account_id=info.account_id if info.own_balance else None,
                amount=-price, kind="call_charge", reference=None,
                description=f"Call to {cdr.callee} ({r.values['billed_seconds']} s)"[:200],
                cdr_id=ids[(cdr.switch or self.switch, cdr.call_id, cdr.leg)],
            ))
        ledger.post(postings)
        self.rater.flush_pools()
        release_calls([(cdr.switch or self.switch, cdr.call_id) for cdr in new])
        unrated = sum(1 for r in rated if r.values["rating_status"] != RatingStatus.RATED)
        charged = sum((r.values["price"] for r in rated), ZERO)
        return len(new), len(cdrs) - len(new), unrated, charged

    def _post(self, cdrs: list[CanonicalCdr]) -> None:
        for attempt in range(20):
            try:
                with transaction.atomic():
                    stored, duplicates, unrated, charged = self._post_once(cdrs)
                break
            except (_Raced, IntegrityError):
                time.sleep(0.05 * (attempt + 1))
            except OperationalError as exc:  # SQLite "database is locked" under a long writer
                if "locked" not in str(exc) or attempt == 19:
                    raise
                time.sleep(0.1 * (attempt + 1))
        else:
            raise RuntimeError("could not store a CDR batch after 20 attempts")
        self.report.stored += stored
        self.report.duplicates += duplicates
        self.report.unrated += unrated
        self.report.charged += charged

    def feed(self, items: Iterable[CanonicalCdr | LineError], progress: Callable[[int], None] | None = None) -> IngestReport:
        batch: list[CanonicalCdr] = []
        keys: set[tuple[str, str, str]] = set()
        for item in items:
            self.report.received += 1
            if isinstance(item, LineError):
                self.report.rejected.append(item)
                continue
            problem = _check(item)
            if problem:
                self.report.rejected.append(LineError(0, f"call {item.call_id[:60]!r}: {problem}"))
                continue
            key = (item.switch or self.switch, item.call_id, item.leg)
            if key in keys:  # the same call twice in one batch: the second is a duplicate
                self.report.duplicates += 1
                continue
            keys.add(key)
            batch.append(item)
            if len(batch) >= self.batch_size:
                self._post(batch)
                if progress:
                    progress(len(batch))
                batch, keys = [], set()
        if batch:
            self._post(batch)
            if progress:
                progress(len(batch))
        return self.report

    def finish(self) -> IngestReport:
        IngestRun.objects.filter(pk=self.run.pk).update(
            finished_at=timezone.now(), received=self.report.received, stored=self.report.stored,
            duplicates=self.report.duplicates, rejected=len(self.report.rejected), unrated=self.report.unrated,
            charged=self.report.charged,
        )
        return self.report


def ingest(items: Iterable[CanonicalCdr | LineError], *, source: str, fmt: str, switch: str = "",
           started_by: str = "", progress: Callable[[int], None] | None = None, batch_size: int = 2000) -> IngestReport:
    ingestor = Ingestor(source=source, fmt=fmt, switch=switch, started_by=started_by, batch_size=batch_size)
    ingestor.feed(items, progress)
    return ingestor.finish()


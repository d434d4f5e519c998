"""CDR ingestion: match, rate both sides, store and post each call exactly once.

Each batch is one database transaction holding the CDR rows, their Transactions, the balance
updates and the included-minutes usage. The idempotency key (switch, call id, leg) is a unique
constraint: rows are inserted with ``ON CONFLICT DO NOTHING`` and tagged with a batch token,
and the batch charges exactly the rows that carry its token. Should another importer insert
one of the same calls between our duplicate check and our insert, the counts disagree and the
batch is rolled back and retried, so a call is never charged twice nor skipped.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import polars as pl
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from tarifa.billing import ledger
from tarifa.billing.models import IncludedMinutes, MinutePoolUsage
from tarifa.calls.reservations import release_calls
from tarifa.cdrs.frame_rating import FrameRater
from tarifa.cdrs.columns import from_cdrs, to_cdrs
from tarifa.cdrs.matching import POP_NOT_ALLOWED, AccountInfo, Directory, Match, Tables, Unmatched, pop_allowed
from tarifa.cdrs.models import Cdr, IngestRun
from tarifa.core.cdr import FIELD_LIMITS, MAX_DURATION, CanonicalCdr, LineError, too_long
from tarifa.core.periods import micros, moment
from tarifa.customers.models import Account, Customer
from tarifa.routing.models import Connection as RoutingConnection
from tarifa.core.numbering import InvalidNumber, normalize
from tarifa.core.pools import price_with_pool
from tarifa.core.rating import RatingStatus, rate_call
from tarifa.db import any_of, bulk_insert, datetime_text, insert_frame, prepared_datetime

CDR_COLUMNS = (
    "switch", "call_id", "leg", "direction", "account", "customer", "caller", "callee", "number", "source_ip",
    "sip_user", "trunk", "did", "extension", "account_code", "connection_name",
    "start_time", "connect_time", "end_time", "duration", "disposition", "sip_code", "connection", "prefix",
    "destination", "billed_seconds", "price", "cost", "margin", "rating_status", "unrated_reason", "rated_at",
    "received_at", "pool_key", "pool_seconds", "batch", "ingest_run", "transaction",
)
# where a CDR row (in CDR_COLUMNS order) holds the rows it refers to
_ACCOUNT, _CUSTOMER, _CONNECTION = (CDR_COLUMNS.index(name) for name in ("account", "customer", "connection"))
ZERO = Decimal(0)
BATCH_SIZE = 20_000  # CDRs per database transaction


def _writers() -> int:
    """Batches written at once by a file import on PostgreSQL (TARIFA_INGEST_WRITERS, default 2)."""
    value = os.environ.get("TARIFA_INGEST_WRITERS", "2").strip()
    if not value.isdigit() or not 1 <= int(value) <= 16:
        raise ValueError(f"TARIFA_INGEST_WRITERS {value!r} is refused: a whole number from 1 to 16")
    return int(value)


class _Raced(Exception):
    """Another writer stored one of this batch's calls meanwhile: roll back and retry."""


class _Stale(Exception):
    """An account, customer or connection this run loaded is gone: reload and retry."""


def _pools_in_play() -> bool:
    """Whether any plan includes minutes (two small queries; no need to load the directory)."""
    from tarifa.dids.models import DidPlan

    return IncludedMinutes.objects.exists() or DidPlan.objects.filter(included_minutes__gt=0).exists()


def _retryable(exc: BaseException) -> bool:
    """A conflict with another writer that a retry of the batch resolves."""
    if isinstance(exc, OperationalError):
        return "locked" in str(exc) or "deadlock" in str(exc)
    if connection.vendor == "postgresql":
        import psycopg

        # COPY runs on psycopg's own cursor: its errors come unwrapped.
        return isinstance(exc, (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure))
    return False


def _hold_references(accounts: Iterable[int | None], customers: Iterable[int | None],
                     connections: Iterable[int | None]) -> None:
    """Make sure the rows a batch's CDRs refer to exist until it commits.

    The CDR table has no database-level foreign keys (a per-row check would cost more than the
    insert itself): instead each referenced row is locked once per batch, ``FOR KEY SHARE`` on
    PostgreSQL (no one can delete it until we commit; SQLite's writer lock does the same).
    """
    for model, ids in ((Account, accounts), (Customer, customers), (RoutingConnection, connections)):
        wanted = sorted({pk for pk in ids if pk is not None})
        if not wanted:
            continue
        table = connection.ops.quote_name(model._meta.db_table)
        condition, params = any_of("id", wanted)
        lock = " FOR KEY SHARE" if connection.vendor == "postgresql" else ""
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM (SELECT id FROM {table} WHERE {condition}{lock}) AS held", params)
            if cursor.fetchone()[0] != len(wanted):
                raise _Stale()


@dataclass
class IngestReport:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    unrated: int = 0
    charged: Decimal = ZERO
    rejected: list[LineError] = field(default_factory=list)
    run_id: int | None = None
    vectorised: int = 0  # CDRs matched and rated by the vectorised path (the rest row by row)

    def summary(self) -> str:
        return (f"{self.received} received, {self.stored} stored, {self.duplicates} duplicates, "
                f"{len(self.rejected)} rejected, {self.unrated} unratable, {self.charged} charged")


def _month(at: datetime) -> date:
    return date(at.year, at.month, 1)


def _check(row: dict[str, Any]) -> str | None:
    """Why a record (a CDR frame's row) cannot be stored: a field longer than its column, or a
    duration over :data:`MAX_DURATION` (the vectorised CSV reader reads up to 12 digits)."""
    for name, limit in FIELD_LIMITS.items():
        if len(row[name]) > limit:
            return too_long(name, row[name], limit)
    if row["duration"] > MAX_DURATION:
        return f"duration {row['duration']} is more than a week ({MAX_DURATION} seconds)"
    return None


@dataclass
class Charges:
    """The call charges of one database transaction, per balance: posted as one Transaction each
    (kind ``call_charge``), whose id the charged CDRs carry (``Cdr.transaction``)."""

    ids: ledger.NextIds = field(default_factory=ledger.NextIds)
    # owner ("c", customer id) / ("a", own-balance account id) -> [customer id, micro-units, calls, first, last]
    totals: dict[tuple[str, int], list[Any]] = field(default_factory=dict)

    def add(self, owner: tuple[str, int], customer_id: int, micro: int, calls: int, first_us: int, last_us: int) -> None:
        total = self.totals.setdefault(owner, [customer_id, 0, 0, first_us, last_us])
        total[1] += micro
        total[2] += calls
        total[3] = min(total[3], first_us)
        total[4] = max(total[4], last_us)

    def post(self) -> None:
        postings = []
        for owner, (customer_id, micro, calls, first_us, last_us) in sorted(self.totals.items()):
            if micro == 0:
                continue
            first, last = moment(first_us), moment(last_us)
            postings.append(ledger.Posting(
                id=self.ids[owner], customer_id=customer_id, account_id=owner[1] if owner[0] == "a" else None,
                amount=-Decimal(micro).scaleb(-6), kind="call_charge", reference=None,
                description=f"{calls} call{'s' if calls != 1 else ''} started {first:%Y-%m-%d %H:%M:%S}"
                            f" to {last:%Y-%m-%d %H:%M:%S} UTC",
            ))
        ledger.post(postings)


def _owner(info: AccountInfo) -> tuple[str, int]:
    return ("a", info.account_id) if info.own_balance else ("c", info.customer_id)


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
        if match is None or isinstance(match, Unmatched):
            values.update(rating_status=RatingStatus.UNRATED,
                          unrated_reason=match.reason if match is not None else "no_account")
            return Rated(values, None)
        account = match.account
        if not pop_allowed(account, cdr.switch):
            # kept with its account, never charged: the account may not call through this POP
            values.update(rating_status=RatingStatus.UNRATED, unrated_reason=POP_NOT_ALLOWED)
            return Rated(values, match)
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

    def __init__(self, *, source: str, fmt: str, switch: str = "", started_by: str = "", batch_size: int = BATCH_SIZE,
                 vectorised: bool = True, parallel: bool = False) -> None:
        self.switch = switch
        self.batch_size = batch_size
        self._local = threading.local()  # a Rater per writer thread: it holds per-transaction state
        self._lock = threading.Lock()
        self.vectorised = vectorised  # False: every CDR row by row (the reference the tests compare with)
        self.parallel = parallel  # several batches at once (PostgreSQL; large imports, not API calls)
        # A handful of calls (an API push) is quicker row by row than through the column machinery.
        self.row_by_row_below = 50 if vectorised else 0
        # a file name with invalid UTF-8 (Linux allows it) must not stop the import: shown escaped
        source = source.encode("utf-8", "backslashreplace").decode("utf-8")
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

    def _post_once(self, cdrs: list[CanonicalCdr], charges: Charges) -> tuple[int, int, int, Decimal]:
        """Row by row: store the calls not stored yet and add their charges to ``charges``."""
        self.rater.begin()
        existing = self._existing(cdrs)
        new = [c for c in cdrs if (c.switch or self.switch, c.call_id, c.leg) not in existing]
        if not new:
            return 0, len(cdrs), 0, ZERO
        token = secrets.randbits(62)
        now = prepared_datetime(timezone.now())
        rated = [self.rater.rate(c) for c in new]
        charged_by = [_owner(r.match.account) if r.match and r.values["price"] else None for r in rated]
        charges.ids.prepare(owner for owner in charged_by if owner)
        rows = []
        for cdr, r, owner in zip(new, rated, charged_by):
            v = r.values
            info = r.match.account if r.match else None
            rows.append([
                cdr.switch or self.switch, cdr.call_id, cdr.leg, cdr.direction, info.account_id if info else None,
                info.customer_id if info else None, cdr.caller, cdr.callee, v["number"], cdr.source_ip or None,
                cdr.sip_user, cdr.trunk, cdr.did, cdr.extension, cdr.account_code, cdr.connection,
                cdr.start_time, cdr.connect_time, cdr.end_time, cdr.duration, cdr.disposition, cdr.sip_code,
                v["connection"], v["prefix"], v["destination"], v["billed_seconds"], v["price"], v["cost"], v["margin"],
                v["rating_status"], v["unrated_reason"], now if v["rating_status"] == RatingStatus.RATED else None,
                now, v["pool_key"], v["pool_seconds"], token, self.run.pk, charges.ids[owner] if owner else None,
            ])
        _hold_references((row[_ACCOUNT] for row in rows), (row[_CUSTOMER] for row in rows),
                         (row[_CONNECTION] for row in rows))
        bulk_insert(Cdr, CDR_COLUMNS, rows, ignore_conflicts=True)
        ids = self._inserted(new, token)
        if len(ids) != len(new):
            raise _Raced()
        for cdr, r, owner in zip(new, rated, charged_by):
            if owner:
                at = micros(cdr.start_time)
                charges.add(owner, r.match.account.customer_id, int(r.values["price"].scaleb(6)), 1, at, at)  # type: ignore[union-attr]
        self.rater.flush_pools()
        release_calls([(cdr.switch or self.switch, cdr.call_id) for cdr in new])
        unrated = sum(1 for r in rated if r.values["rating_status"] != RatingStatus.RATED)
        charged = sum((r.values["price"] for r in rated), ZERO)
        return len(new), len(cdrs) - len(new), unrated, charged

    # --- the bulk path: a CDR frame per batch ----------------------------------------------

    def _checked(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Refuse rows with over-long fields or absurd durations (reported with their line)."""
        col = pl.col
        shortest = min(FIELD_LIMITS.values())  # a cheap pre-filter: _check decides
        suspect = pl.any_horizontal([col(name).str.len_chars() > shortest for name in FIELD_LIMITS]) \
            | (col("duration") > MAX_DURATION)
        flagged = frame.with_row_index("_n").filter(suspect)
        if flagged.height == 0:
            return frame
        keep = [True] * frame.height
        for row in flagged.iter_rows(named=True):
            problem = _check(row)
            if problem:
                with self._lock:
                    self.report.rejected.append(LineError(row["line"], f"call {row['call_id'][:60]!r}: {problem}"))
                keep[row["_n"]] = False
        return frame.filter(pl.Series(keep))

    @property
    def rater(self) -> Rater:
        if getattr(self._local, "rater", None) is None:
            self._local.rater = Rater()
        return self._local.rater  # type: ignore[no-any-return]

    def _frames(self) -> FrameRater:
        if getattr(self._local, "frames", None) is None:
            self._local.frames = FrameRater(self.rater.directory, self.rater.tables)
        return self._local.frames  # type: ignore[no-any-return]

    def _split(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        if not self.vectorised or frame.height < self.row_by_row_below:
            return frame.head(0), frame
        return self._frames().split(frame)

    def _post_fast(self, fast: pl.DataFrame, charges: Charges) -> tuple[int, int, int, Decimal]:
        """Store the vectorised rows (skipping calls already stored) and add their charges."""
        if fast.height == 0:
            return 0, 0, 0, ZERO
        col = pl.col
        fast = fast.with_columns(
            o_kind=pl.when(col("price") == 0).then(None).when(col("own_balance")).then(pl.lit("a")).otherwise(pl.lit("c")),
            o_id=pl.when(col("own_balance")).then(col("account")).otherwise(col("customer")),
        )
        owners = fast.filter(col("o_kind").is_not_null()).select("o_kind", "o_id").unique().rows()
        charges.ids.prepare(owners)
        known = pl.DataFrame(
            [(kind, pk, tx) for (kind, pk), tx in charges.ids.items()],
            schema={"o_kind": pl.String, "o_id": pl.Int64, "transaction": pl.Int64}, orient="row",
        )
        fast = fast.join(known, on=["o_kind", "o_id"], how="left", maintain_order="left")
        now = datetime_text(pl.lit(micros(timezone.now()), pl.Int64))
        rows = fast.select(
            "switch", "call_id", "leg", "direction", "account", "customer", "caller", "callee", "number",
            source_ip=pl.when(col("source_ip") != "").then(col("source_ip")),
            sip_user="sip_user", trunk="trunk", did="did", extension="extension", account_code="account_code",
            connection_name="connection",
            start_time=datetime_text(col("start_us")), connect_time=datetime_text(col("connect_us")),
            end_time=datetime_text(col("end_us")), duration="duration", disposition="disposition",
            sip_code="sip_code", connection=col("connection_id"), prefix="prefix", destination="destination",
            billed_seconds="billed_seconds", price="price", cost="cost", margin=col("price") - col("cost"),
            rating_status="rating_status", unrated_reason="unrated_reason",
            rated_at=pl.when(col("rating_status") == "rated").then(now), received_at=now,
            pool_key=pl.lit(""), pool_seconds=pl.lit(0), batch=pl.lit(secrets.randbits(62), pl.Int64),
            ingest_run=pl.lit(self.run.pk, pl.Int64), transaction="transaction",
        )
        _hold_references(*(rows[name].unique().to_list() for name in ("account", "customer", "connection")))
        ids = insert_frame(Cdr, rows)
        new = fast.with_columns(cdr_id=ids).filter(col("cdr_id").is_not_null())
        totals = new.filter(col("o_kind").is_not_null()).group_by("o_kind", "o_id").agg(
            col("customer").first(), col("price").sum(), pl.len().alias("calls"),
            col("start_us").min().alias("first"), col("start_us").max().alias("last"),
        )
        for kind, pk, customer_id, micro, calls, first, last in totals.iter_rows():
            charges.add((kind, pk), customer_id, micro, calls, first, last)
        release_calls(new.select("switch", "call_id").rows())
        unrated = new.filter(col("rating_status") != "rated").height
        places = int(new["price_decimals"].max() or 0)  # as a sum of the Decimal prices would show
        charged = Decimal(int(new["price"].sum())).scaleb(-6).quantize(Decimal(1).scaleb(-places))
        return new.height, fast.height - new.height, unrated, charged

    def _post_frame(self, frame: pl.DataFrame) -> None:
        """One batch: dedupe, split into vectorised and row-by-row rows, store both in one transaction."""
        if self.switch:  # a record without its own switch belongs to the run's (part of the key)
            frame = frame.with_columns(
                switch=pl.when(pl.col("switch") == "").then(pl.lit(self.switch)).otherwise(pl.col("switch"))
            )
        frame = self._checked(frame)
        first = frame.select(pl.struct("switch", "call_id", "leg").is_first_distinct()).to_series()
        with self._lock:
            self.report.duplicates += frame.height - int(first.sum())
        frame = frame.filter(first)
        if frame.height == 0:
            return
        fast, slow = self._split(frame)
        slow_cdrs = to_cdrs(slow)
        reload = False
        for attempt in range(20):
            if reload:  # what this run loaded changed under it: match again
                self._local.rater = self._local.frames = None
                reload = False
                fast, slow = self._split(frame)
                slow_cdrs = to_cdrs(slow)
            try:
                with transaction.atomic():
                    charges = Charges()
                    s_stored, s_dups, s_unrated, s_charged = (
                        self._post_once(slow_cdrs, charges) if slow_cdrs else (0, 0, 0, ZERO)
                    )
                    f_stored, f_dups, f_unrated, f_charged = self._post_fast(fast, charges)
                    charges.post()
                break
            except (_Raced, IntegrityError):
                time.sleep(0.05 * (attempt + 1))
            except _Stale:
                reload = True
            except Exception as exc:  # SQLite "database is locked"; a PostgreSQL deadlock (also from COPY)
                if not _retryable(exc) or attempt == 19:
                    raise
                time.sleep(0.1 * (attempt + 1))
        else:
            raise RuntimeError("could not store a CDR batch after 20 attempts")
        with self._lock:
            self.report.vectorised += fast.height
            self.report.stored += s_stored + f_stored
            self.report.duplicates += s_dups + f_dups
            self.report.unrated += s_unrated + f_unrated
            self.report.charged += s_charged + f_charged

    def feed_frames(self, chunks: Iterable[tuple[pl.DataFrame, list[LineError]]],
                    progress: Callable[[int], None] | None = None) -> IngestReport:
        """Ingest CDR frames (e.g. :func:`tarifa.cdrs.columns.read_canonical_csv`), one batch each.

        ``chunks`` is read in a second thread, a couple of frames ahead, while batches are
        written: it must not use the database itself. With ``parallel``, on PostgreSQL and outside
        a caller's transaction, ``TARIFA_INGEST_WRITERS`` batches are written at once, each in its own
        connection and database transaction (the unique key and the balance locks keep them exact).
        """
        self._write(self._received(_read_ahead(chunks)), progress)
        self.report.rejected.sort(key=lambda e: e.line)
        return self.report

    def _write(self, frames: Iterator[pl.DataFrame], progress: Callable[[int], None] | None) -> None:
        """Post each frame as a batch: in parallel on PostgreSQL outside a caller's transaction."""
        # Included minutes are used in call order: with pools in play, batches go one after the other.
        parallel = (self.parallel and connection.vendor == "postgresql" and not connection.in_atomic_block
                    and _writers() > 1 and not _pools_in_play())
        try:
            if parallel:
                self._write_in_parallel(frames, progress)
            else:
                for frame in frames:
                    self._post_frame(frame)
                    if progress:
                        progress(frame.height)
        finally:
            if hasattr(frames, "close"):
                frames.close()  # stops a reader thread when leaving early

    def _received(self, chunks: Iterable[tuple[pl.DataFrame, list[LineError]]]) -> Iterator[pl.DataFrame]:
        for frame, refused in chunks:
            with self._lock:
                self.report.received += frame.height + len(refused)
                self.report.rejected.extend(refused)
            yield frame

    def _write_in_parallel(self, frames: Iterable[pl.DataFrame], progress: Callable[[int], None] | None) -> None:
        from django.db import connections

        writers = _writers()
        work: queue.Queue[pl.DataFrame | None] = queue.Queue(maxsize=writers)
        failures: list[BaseException] = []

        def writer() -> None:
            try:
                while (frame := work.get()) is not None:
                    if failures:
                        continue
                    try:
                        self._post_frame(frame)
                    except BaseException as exc:  # handed to the caller below
                        failures.append(exc)
                        continue
                    if progress:
                        with self._lock:
                            progress(frame.height)
            finally:
                connections.close_all()  # this thread's connections

        threads = [threading.Thread(target=writer, name=f"cdr-writer-{n}", daemon=True) for n in range(writers)]
        for thread in threads:
            thread.start()
        try:
            for frame in frames:
                if failures:
                    break
                work.put(frame)
        finally:
            for _ in threads:
                work.put(None)
            for thread in threads:
                thread.join()
        if failures:
            raise failures[0]

    def feed(self, items: Iterable[CanonicalCdr | LineError], progress: Callable[[int], None] | None = None) -> IngestReport:
        """Ingest CDR objects (and the refusals of their parser), ``batch_size`` per transaction."""
        self._write(self._batches(items), progress)
        return self.report

    def _batches(self, items: Iterable[CanonicalCdr | LineError]) -> Iterator[pl.DataFrame]:
        """Frames of ``batch_size`` records; each record's ``line`` is its 1-based position among
        ``items`` (an API batch's index), the line a refusal found later is reported with."""
        batch: list[CanonicalCdr] = []
        lines: list[int] = []
        for position, item in enumerate(items, start=1):
            with self._lock:
                self.report.received += 1
                if isinstance(item, LineError):
                    self.report.rejected.append(item)
                    continue
            batch.append(item)
            lines.append(position)
            if len(batch) >= self.batch_size:
                yield from_cdrs(batch, lines)
                batch, lines = [], []
        if batch:
            yield from_cdrs(batch, lines)

    def finish(self) -> IngestReport:
        IngestRun.objects.filter(pk=self.run.pk).update(
            finished_at=timezone.now(), received=self.report.received, stored=self.report.stored,
            duplicates=self.report.duplicates, rejected=len(self.report.rejected), unrated=self.report.unrated,
            charged=self.report.charged,
        )
        return self.report


def _finish_anyway(ingestor: Ingestor) -> None:
    """The run records what its committed batches stored, even when something stopped it
    (the error that did is what the caller sees)."""
    try:
        ingestor.finish()
    except Exception:
        logging.getLogger("tarifa.cdrs").exception("ingest run %s: could not record its end", ingestor.run.pk)


def ingest(items: Iterable[CanonicalCdr | LineError], *, source: str, fmt: str, switch: str = "",
           started_by: str = "", progress: Callable[[int], None] | None = None,
           batch_size: int = BATCH_SIZE, vectorised: bool = True, parallel: bool = False) -> IngestReport:
    """Ingest CDR objects (any adapter's output, the API's records); ``parallel`` for large imports."""
    ingestor = Ingestor(source=source, fmt=fmt, switch=switch, started_by=started_by, batch_size=batch_size,
                        vectorised=vectorised, parallel=parallel)
    try:
        ingestor.feed(items, progress)
    except BaseException:
        _finish_anyway(ingestor)
        raise
    return ingestor.finish()


def ingest_frames(chunks: Iterable[tuple[pl.DataFrame, list[LineError]]], *, source: str, fmt: str,
                  switch: str = "", started_by: str = "",
                  progress: Callable[[int], None] | None = None) -> IngestReport:
    """Ingest CDR frames (a file), one batch (one database transaction) per frame, in parallel."""
    ingestor = Ingestor(source=source, fmt=fmt, switch=switch, started_by=started_by, parallel=True)
    try:
        ingestor.feed_frames(chunks, progress)
    except BaseException:
        _finish_anyway(ingestor)
        raise
    return ingestor.finish()


def _read_ahead(items: Iterable[Any], depth: int = 2) -> Iterator[Any]:
    """The items of ``items``, produced by a second thread up to ``depth`` ahead of the consumer.

    Parsing (polars, which releases the GIL) then overlaps with the database writes. An
    exception in the producer is raised here; leaving early stops the producer.
    """
    pending: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def hand_over(entry: tuple[bool, Any]) -> bool:
        """Queue ``entry`` unless the consumer has left; False when it has."""
        while not stop.is_set():
            try:
                pending.put(entry, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand_over((True, item)):
                    return
            hand_over((True, done))
        except BaseException as exc:  # handed to the consumer
            hand_over((False, exc))

    worker = threading.Thread(target=produce, name="cdr-reader", daemon=True)
    worker.start()
    try:
        while True:
            ok, item = pending.get()
            if not ok:
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()

"""CDR ingestion: match, rate both sides, store and post each call exactly once.

The service of an import run (:class:`Ingestor`, :func:`ingest`, :func:`ingest_frames`). The
rules it applies live elsewhere: matching in :mod:`tarifa.cdrs.matching` and
:mod:`tarifa.core.identity`, rating one CDR at a time in :mod:`tarifa.cdrs.row_rating` or a frame
at a time in :mod:`tarifa.cdrs.frame_rating`, both through the one charging rule
:mod:`tarifa.core.charging` and the pools of :mod:`tarifa.core.pools`; the row they store is
:class:`tarifa.cdrs.rows.CdrRow`; the database queries are :mod:`tarifa.cdrs.store`; the reader
and writer threads :mod:`tarifa.cdrs.pipeline`.

Each batch is one database transaction holding the CDR rows, their Transactions, the balance
updates and the included-minutes usage. The idempotency key (switch, call id, leg) is a unique
constraint: rows are inserted with ``ON CONFLICT DO NOTHING`` and tagged with a batch token,
and the batch charges exactly the rows that carry its token. Should another importer insert
one of the same calls between our duplicate check and our insert, the counts disagree and the
batch is rolled back and retried, so a call is never charged twice nor skipped.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import polars as pl
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from tarifa.calls.reservations import release_calls
from tarifa.cdrs.columns import from_cdrs, to_cdrs
from tarifa.cdrs.frame_rating import FrameRater
from tarifa.cdrs.models import Cdr, IngestRun
from tarifa.cdrs.pipeline import read_ahead, write_in_parallel, writers
from tarifa.cdrs.row_rating import Rater
from tarifa.cdrs.rows import COLUMNS, CdrRow, frame_columns
from tarifa.cdrs.store import (
    Charges,
    Raced,
    Stale,
    hold_references,
    inserted_ids,
    pools_in_play,
    retryable,
    stored_keys,
)
from tarifa.core.cdr import FIELD_LIMITS, MAX_DURATION, CanonicalCdr, LineError, too_long
from tarifa.core.charging import ACCOUNT_BALANCE, CUSTOMER_BALANCE, BalanceOwner, balance_owner
from tarifa.core.periods import micros
from tarifa.core.rating import RatingStatus
from tarifa.db import bulk_insert, datetime_text, insert_frame, prepared_datetime

ZERO = Decimal(0)
BATCH_SIZE = 20_000  # CDRs per database transaction


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
        return (
            f"{self.received} received, {self.stored} stored, {self.duplicates} duplicates, "
            f"{len(self.rejected)} rejected, {self.unrated} unratable, {self.charged} charged"
        )


def _check(row: dict[str, Any]) -> str | None:
    """Why a record (a CDR frame's row) cannot be stored: a field longer than its column, or a
    duration over :data:`MAX_DURATION` (the vectorised CSV reader reads up to 12 digits)."""
    for name, limit in FIELD_LIMITS.items():
        if len(row[name]) > limit:
            return too_long(name, row[name], limit)
    if row["duration"] > MAX_DURATION:
        return f"duration {row['duration']} is more than a week ({MAX_DURATION} seconds)"
    return None


class Ingestor:
    """One import run: call :meth:`feed` with records, then :meth:`finish`."""

    def __init__(
        self,
        *,
        source: str,
        fmt: str,
        switch: str = "",
        started_by: str = "",
        batch_size: int = BATCH_SIZE,
        vectorised: bool = True,
        parallel: bool = False,
    ) -> None:
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

    def _post_once(self, cdrs: list[CanonicalCdr], charges: Charges) -> tuple[int, int, int, Decimal]:
        """Row by row: store the calls not stored yet and add their charges to ``charges``."""
        self.rater.begin()
        keys = [(c.switch or self.switch, c.call_id, c.leg) for c in cdrs]
        existing = stored_keys(keys)
        new = [(key, c) for key, c in zip(keys, cdrs, strict=True) if key not in existing]
        if not new:
            return 0, len(cdrs), 0, ZERO
        token = secrets.randbits(62)
        now = prepared_datetime(timezone.now())
        rated = [self.rater.rate(c) for _key, c in new]
        owners: dict[int, BalanceOwner] = {}  # by account
        charged_by: list[BalanceOwner | None] = []
        for r in rated:
            if r.match is None or not r.rating.price:
                charged_by.append(None)
                continue
            info = r.match.account
            owner = owners.get(info.account_id)
            if owner is None:
                owner = owners[info.account_id] = balance_owner(
                    own_balance=info.own_balance, account_id=info.account_id, customer_id=info.customer_id
                )
            charged_by.append(owner)
        charges.ids.prepare(owner for owner in charged_by if owner)
        rows = []
        for ((switch, _call_id, _leg), cdr), r, owner in zip(new, rated, charged_by, strict=True):
            v = r.rating
            matched = r.match.account if r.match else None
            rows.append(
                CdrRow(
                    switch=switch,
                    call_id=cdr.call_id,
                    leg=cdr.leg,
                    direction=cdr.direction,
                    account=matched.account_id if matched else None,
                    customer=matched.customer_id if matched else None,
                    caller=cdr.caller,
                    callee=cdr.callee,
                    number=v.number,
                    source_ip=cdr.source_ip or None,
                    sip_user=cdr.sip_user,
                    trunk=cdr.trunk,
                    did=cdr.did,
                    extension=cdr.extension,
                    account_code=cdr.account_code,
                    connection_name=cdr.connection,
                    start_time=cdr.start_time,
                    connect_time=cdr.connect_time,
                    end_time=cdr.end_time,
                    duration=cdr.duration,
                    disposition=cdr.disposition,
                    sip_code=cdr.sip_code,
                    connection=v.connection,
                    prefix=v.prefix,
                    destination=v.destination,
                    billed_seconds=v.billed_seconds,
                    price=v.price,
                    cost=v.cost,
                    margin=v.margin,
                    rating_status=v.rating_status,
                    unrated_reason=v.unrated_reason,
                    rated_at=now if v.rating_status == RatingStatus.RATED else None,
                    received_at=now,
                    pool_key=v.pool_key,
                    pool_seconds=v.pool_seconds,
                    out_payment=r.out_payment,
                    batch=token,
                    ingest_run=self.run.pk,
                    transaction=charges.ids[owner] if owner else None,
                )
            )
        hold_references((row.account for row in rows), (row.customer for row in rows), (row.connection for row in rows))
        bulk_insert(Cdr, COLUMNS, rows, ignore_conflicts=True)
        if len(inserted_ids([key for key, _c in new], token)) != len(new):
            raise Raced()
        for (_key, cdr), r, owner in zip(new, rated, charged_by, strict=True):
            if owner and r.match:
                at = micros(cdr.start_time)
                charges.add(owner, r.match.account.customer_id, int(r.rating.price.scaleb(6)), 1, at, at)
            if r.out_payment and r.match:  # a revenue-share DID credits its owner (docs/origination.md)
                info = r.match.account
                at = micros(cdr.start_time)
                payee = balance_owner(
                    own_balance=info.own_balance, account_id=info.account_id, customer_id=info.customer_id
                )
                charges.out_payments.add(payee, info.customer_id, int(r.out_payment.scaleb(6)), 1, at, at)
        self.rater.flush_pools()
        release_calls([(switch, cdr.call_id) for (switch, _call_id, _leg), cdr in new])
        unrated = sum(1 for r in rated if r.rating.rating_status != RatingStatus.RATED)
        charged = sum((r.rating.price for r in rated), ZERO)
        return len(new), len(cdrs) - len(new), unrated, charged

    # --- the bulk path: a CDR frame per batch ----------------------------------------------

    def _checked(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Refuse rows with over-long fields or absurd durations (reported with their line)."""
        col = pl.col
        shortest = min(FIELD_LIMITS.values())  # a cheap pre-filter: _check decides
        suspect = pl.any_horizontal([col(name).str.len_chars() > shortest for name in FIELD_LIMITS]) | (
            col("duration") > MAX_DURATION
        )
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
        rater: Rater = self._local.rater
        return rater

    def _frames(self) -> FrameRater:
        if getattr(self._local, "frames", None) is None:
            self._local.frames = FrameRater(self.rater.directory, self.rater.tables)
        frames: FrameRater = self._local.frames
        return frames

    def _split(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        if not self.vectorised or frame.height < self.row_by_row_below:
            return frame.head(0), frame
        return self._frames().split(frame)

    def _post_fast(self, fast: pl.DataFrame, charges: Charges) -> tuple[int, int, int, Decimal]:
        """Store the vectorised rows (skipping calls already stored) and add their charges."""
        if fast.height == 0:
            return 0, 0, 0, ZERO
        col = pl.col
        # the balance each account's charged calls go to (core.charging.balance_owner)
        payers = fast.filter(col("price") != 0).select("account", "customer", "own_balance").unique()
        owners = {
            account: balance_owner(own_balance=own, account_id=account, customer_id=customer)
            for account, customer, own in payers.iter_rows()
        }
        charges.ids.prepare(owners.values())
        paid_by = pl.DataFrame(
            [(account, owner.kind, owner.id, charges.ids[owner]) for account, owner in owners.items()],
            schema={"account": pl.Int64, "o_kind": pl.String, "o_id": pl.Int64, "transaction": pl.Int64},
            orient="row",
        )
        fast = fast.join(paid_by, on="account", how="left", maintain_order="left").with_columns(
            [pl.when(col("price") != 0).then(col(name)).alias(name) for name in ("o_kind", "o_id", "transaction")]
        )
        now = datetime_text(pl.lit(micros(timezone.now()), pl.Int64))
        rows = frame_columns(
            fast.with_columns(
                source_ip=pl.when(col("source_ip") != "").then(col("source_ip")),
                connection_name="connection",
                start_time=datetime_text(col("start_us")),
                connect_time=datetime_text(col("connect_us")),
                end_time=datetime_text(col("end_us")),
                connection=col("connection_id"),
                margin=col("price") - col("cost"),
                rated_at=pl.when(col("rating_status") == RatingStatus.RATED.value).then(now),
                received_at=now,
                pool_key=pl.lit(""),
                pool_seconds=pl.lit(0),
                batch=pl.lit(secrets.randbits(62), pl.Int64),
                ingest_run=pl.lit(self.run.pk, pl.Int64),
            )
        )
        hold_references(*(rows[name].unique().to_list() for name in ("account", "customer", "connection")))
        ids = insert_frame(Cdr, rows)
        new = fast.with_columns(cdr_id=ids).filter(col("cdr_id").is_not_null())
        totals = (
            new.filter(col("o_kind").is_not_null())
            .group_by("o_kind", "o_id")
            .agg(
                col("customer").first(),
                col("price").sum(),
                pl.len().alias("calls"),
                col("start_us").min().alias("first"),
                col("start_us").max().alias("last"),
            )
        )
        for kind, pk, customer_id, micro, calls, first, last in totals.iter_rows():
            charges.add(BalanceOwner(kind, pk), customer_id, micro, calls, first, last)
        # out-payments of revenue-share DIDs: credited to the balance the call is charged to
        credits = (
            new.filter(col("out_payment") != 0)
            .with_columns(
                o_kind=pl.when(col("own_balance")).then(pl.lit(ACCOUNT_BALANCE)).otherwise(pl.lit(CUSTOMER_BALANCE)),
                o_id=pl.when(col("own_balance")).then(col("account")).otherwise(col("customer")),
            )
            .group_by("o_kind", "o_id")
            .agg(
                col("customer").first(),
                col("out_payment").sum(),
                pl.len().alias("calls"),
                col("start_us").min().alias("first"),
                col("start_us").max().alias("last"),
            )
        )
        for kind, pk, customer_id, micro, calls, first, last in credits.iter_rows():
            charges.out_payments.add(BalanceOwner(kind, pk), customer_id, micro, calls, first, last)
        release_calls(new.select("switch", "call_id").rows())
        unrated = new.filter(col("rating_status") != RatingStatus.RATED.value).height
        top = new["price_decimals"].max()  # an integer column: None when empty
        places = top if isinstance(top, int) else 0  # as a sum of the Decimal prices would show
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
            except (Raced, IntegrityError):
                time.sleep(0.05 * (attempt + 1))
            except Stale:
                reload = True
            except Exception as exc:  # SQLite "database is locked"; a PostgreSQL deadlock (also from COPY)
                if not retryable(exc) or attempt == 19:
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

    def feed_frames(
        self, chunks: Iterable[tuple[pl.DataFrame, list[LineError]]], progress: Callable[[int], None] | None = None
    ) -> IngestReport:
        """Ingest CDR frames (e.g. :func:`tarifa.cdrs.columns.read_canonical_csv`), one batch each.

        ``chunks`` is read in a second thread, a couple of frames ahead, while batches are
        written: it must not use the database itself. With ``parallel``, on PostgreSQL and outside
        a caller's transaction, ``TARIFA_INGEST_WRITERS`` batches are written at once, each in its own
        connection and database transaction (the unique key and the balance locks keep them exact).
        """
        self._write(self._received(read_ahead(chunks)), progress)
        self.report.rejected.sort(key=lambda e: e.line)
        return self.report

    def _write(self, frames: Iterator[pl.DataFrame], progress: Callable[[int], None] | None) -> None:
        """Post each frame as a batch: in parallel on PostgreSQL outside a caller's transaction."""
        # Included minutes are used in call order: with pools in play, batches go one after the other.
        parallel = (
            self.parallel
            and connection.vendor == "postgresql"
            and not connection.in_atomic_block
            and writers() > 1
            and not pools_in_play()
        )
        try:
            if parallel:
                write_in_parallel(frames, self._post_frame, writers(), self._progressed(progress))
            else:
                for frame in frames:
                    self._post_frame(frame)
                    if progress:
                        progress(frame.height)
        finally:
            if hasattr(frames, "close"):
                frames.close()  # stops a reader thread when leaving early

    def _progressed(self, progress: Callable[[int], None] | None) -> Callable[[pl.DataFrame], None] | None:
        """``progress`` called from the writer threads, one at a time."""
        if progress is None:
            return None

        def done(frame: pl.DataFrame) -> None:
            with self._lock:
                progress(frame.height)

        return done

    def _received(self, chunks: Iterable[tuple[pl.DataFrame, list[LineError]]]) -> Iterator[pl.DataFrame]:
        for frame, refused in chunks:
            with self._lock:
                self.report.received += frame.height + len(refused)
                self.report.rejected.extend(refused)
            yield frame

    def feed(
        self, items: Iterable[CanonicalCdr | LineError], progress: Callable[[int], None] | None = None
    ) -> IngestReport:
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
            finished_at=timezone.now(),
            received=self.report.received,
            stored=self.report.stored,
            duplicates=self.report.duplicates,
            rejected=len(self.report.rejected),
            unrated=self.report.unrated,
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


def ingest(
    items: Iterable[CanonicalCdr | LineError],
    *,
    source: str,
    fmt: str,
    switch: str = "",
    started_by: str = "",
    progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
    vectorised: bool = True,
    parallel: bool = False,
) -> IngestReport:
    """Ingest CDR objects (any adapter's output, the API's records); ``parallel`` for large imports."""
    ingestor = Ingestor(
        source=source,
        fmt=fmt,
        switch=switch,
        started_by=started_by,
        batch_size=batch_size,
        vectorised=vectorised,
        parallel=parallel,
    )
    try:
        ingestor.feed(items, progress)
    except BaseException:
        _finish_anyway(ingestor)
        raise
    return ingestor.finish()


def ingest_frames(
    chunks: Iterable[tuple[pl.DataFrame, list[LineError]]],
    *,
    source: str,
    fmt: str,
    switch: str = "",
    started_by: str = "",
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Ingest CDR frames (a file), one batch (one database transaction) per frame, in parallel."""
    ingestor = Ingestor(source=source, fmt=fmt, switch=switch, started_by=started_by, parallel=True)
    try:
        ingestor.feed_frames(chunks, progress)
    except BaseException:
        _finish_anyway(ingestor)
        raise
    return ingestor.finish()

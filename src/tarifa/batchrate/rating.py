"""``tarifa rate``'s rating and output: the fast path, the reference path, the atomic write.

Fast path: when the deck is valid for the whole time window of the file (the rule of
:meth:`tarifa.core.array_rating.FastDeck.for_window`: every rate version overlapping the window
covers all of it and has no period), the calls are rated with
:func:`tarifa.core.array_rating.rate_batch` in integer micro-units. Otherwise (or with more than 6
decimals, or amounts too large for ``int64``) every call is rated with the reference
:func:`tarifa.core.rating.rate_call`: exact as well, but slower, and the summary says so.

The result is written to a temporary file next to ``--out`` and renamed over it at the end, so
a failed run never leaves a partial output behind. Money never passes through ``float``: costs
are integer units of ``10**-decimals``, formatted with integer ``//`` and ``%``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

from tarifa.batchrate.readers import CdrBatch, InputError, load_cdrs, load_deck
from tarifa.core.deck import DeckRow
from tarifa.core.numbering import DialingMode
from tarifa.core.periods import EPOCH, moment
from tarifa.core.rating import MAX_DECIMALS, RateTable, RatingStatus, Rounding, rate_call

if TYPE_CHECKING:  # numpy and polars are imported when the command runs, not with the CLI
    import polars as pl

    from tarifa.core.array_rating import FastDeck

__all__ = ["OUTPUT_COLUMNS", "RateSummary", "fast_deck_for_window", "rate_file"]

OUTPUT_COLUMNS: Final = (
    "call_id",
    "callee",
    "prefix",
    "destination",
    "billed_seconds",
    "cost",
    "status",
    "reason",
)
_CHUNK: Final = 1 << 17  # rows per rate_batch call
_MICROSECOND: Final = timedelta(microseconds=1)


class _FastEntry:
    """A validated deck row in the shape :class:`FastDeck` reads (``prefix``, ``period``,
    ``terms.*``). ``terms`` is the :class:`DeckRow` itself: it has every field of
    :class:`~tarifa.core.rating.RateTerms` under the same name, already validated by
    ``parse_deck``; building 60,000 real ``RateTerms`` would cost about a second."""

    __slots__ = ("destination", "line", "period", "prefix", "terms")

    def __init__(self, row: DeckRow) -> None:
        self.prefix = row.prefix
        self.destination = row.destination
        self.line = row.line
        self.period = None
        self.terms = row


def fast_deck_for_window(rows: Sequence[DeckRow], start: datetime, end: datetime) -> FastDeck:
    """The :class:`FastDeck` for calls connected in ``[start, end)``, or FastPathUnsupported.

    The same rule and the same choice of version as :meth:`FastDeck.for_window` on the
    :class:`RateTable` of ``rows`` (tests check both agree), without building that table.
    """
    from tarifa.core.array_rating import FastDeck, FastPathUnsupported

    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    if end <= start:
        raise ValueError("window end must be after its start")
    for row in rows:
        if row.effective_from is not None and row.effective_from >= end:
            continue
        if row.effective_to is not None and row.effective_to <= start:
            continue
        if row.period:  # parse_deck stores the canonical text; "" is the always-period
            raise FastPathUnsupported(f"prefix {row.prefix} has a time period ({row.period})")
        if (row.effective_from is not None and row.effective_from > start) or (
            row.effective_to is not None and row.effective_to < end
        ):
            raise FastPathUnsupported(f"prefix {row.prefix}: a version starts or ends inside the window")
    if not any(row.effective_from or row.effective_to or row.period for row in rows):
        # The common deck without dates or periods: parse_deck refuses a second row with the
        # same (prefix, period, effective_from), so every prefix has exactly one version.
        return FastDeck(cast(Any, [_FastEntry(row) for row in rows]))
    # Per prefix, the version the reference prefers at `start`: latest effective_from, then
    # (at equal dates) one with a period, then the first listed. None of the rows effective
    # at `start` has a period (it would overlap the window and have raised above).
    beginning = datetime.min.replace(tzinfo=UTC)
    chosen: dict[str, tuple[tuple[datetime, bool, int], DeckRow]] = {}
    for order, row in enumerate(rows):
        if row.effective_from is not None and start < row.effective_from:
            continue
        if row.effective_to is not None and start >= row.effective_to:
            continue
        rank = (row.effective_from or beginning, bool(row.period), -order)
        best = chosen.get(row.prefix)
        if best is None or rank > best[0]:
            chosen[row.prefix] = (rank, row)
    order_of_prefix: dict[str, int] = {}
    for row in rows:
        order_of_prefix.setdefault(row.prefix, len(order_of_prefix))
    picked = sorted(chosen.items(), key=lambda item: order_of_prefix[item[0]])  # table order
    return FastDeck(cast(Any, [_FastEntry(row) for _, (_, row) in picked]))


# ---------------------------------------------------------------------------------------
# CDR values, one at a time (the reference) and vectorised


# ---------------------------------------------------------------------------------------
# Rating and output


@dataclass
class RateSummary:
    """What a run did; ``line()`` is the one-line summary the command prints."""

    rows: int = 0
    rated: int = 0
    unrated: int = 0
    forbidden: int = 0
    total_units: int = 0
    decimals: int = 4
    seconds: float = 0.0  # float-ok: elapsed wall time, not money
    fast_path: bool = True
    fallback_reason: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def total_cost(self) -> str:
        from tarifa.core.converters import format_units_int

        return format_units_int(self.total_units, self.decimals)

    @property
    def cdr_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        path = "fast path" if self.fast_path else f"reference path, slower: {self.fallback_reason}"
        return (
            f"rows {self.rows}, rated {self.rated}, unrated {self.unrated}, "
            f"forbidden {self.forbidden}, total cost {self.total_cost}, "
            f"{self.cdr_per_second:,.0f} CDR/s ({path})"
        )


class _Progress:
    """A rich progress bar on stderr, or nothing when stderr is not a terminal."""

    def __init__(self, enabled: bool) -> None:
        self._bar: Any = None
        self._task: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("reading deck and CDRs", total=None)

    def stage(self, description: str, total: int | None = None) -> None:
        """Start the next step; ``total`` rows, or None for a step without a count."""
        if self._bar is not None:
            self._bar.remove_task(self._task)
            self._task = self._bar.add_task(description, total=total)

    def advance(self, rows: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, rows)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_atomically(write: Callable[[str], None], out: Path, mode: int) -> None:
    """Call ``write(temp_path)``, then rename the temp file to ``out``; no partial file."""
    out = Path(out)
    fd, temp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    os.close(fd)
    try:
        write(temp)
        os.chmod(temp, mode)
        os.replace(temp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def _rate_fast(
    deck: FastDeck,
    batch: CdrBatch,
    decimals: int,
    rounding: str,
    progress: _Progress,
) -> tuple[pl.DataFrame, RateSummary]:
    import numpy as np
    import polars as pl

    from tarifa.core.array_rating import FORBIDDEN, INVALID_NUMBER, NO_RATE, RATED, rate_batch
    from tarifa.core.converters import format_units_expr

    n = len(batch)
    status = np.empty(n, dtype=np.int8)
    label = np.empty(n, dtype=np.int32)
    billed = np.empty(n, dtype=np.int64)
    units = np.empty(n, dtype=np.int64)
    progress.stage("rating (fast path)", n)

    def rate_chunk(lo: int) -> int:
        hi = min(lo + _CHUNK, n)
        result = rate_batch(deck, batch.numbers[lo:hi], batch.seconds[lo:hi], decimals, rounding)
        status[lo:hi] = result.status
        label[lo:hi] = result.entry_index
        billed[lo:hi] = result.billed_seconds
        units[lo:hi] = result.cost_units
        return hi - lo

    # NumPy releases the GIL in its array loops: chunks rated by two threads use two cores
    # (and chunks of ~100k rows stay in cache better than one pass over a million).
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done in pool.map(rate_chunk, range(0, n, _CHUNK)):
            progress.advance(done)

    rated = status == RATED
    rated_units = units[rated]
    if rated_units.size and int(rated_units.max()) <= np.iinfo(np.int64).max // rated_units.size:
        total = int(rated_units.sum())  # cannot overflow
    else:
        total = sum(rated_units.tolist())
    summary = RateSummary(
        rows=n,
        rated=int(rated.sum()),
        forbidden=int((status == FORBIDDEN).sum()),
        total_units=total,
        decimals=decimals,
    )
    summary.unrated = n - summary.rated - summary.forbidden

    entries = cast(Sequence[Any], deck.entries)
    missing = len(entries)  # index of the null appended below
    index = pl.Series(np.where(label < 0, missing, label).astype(np.int64))
    prefixes = pl.Series([*deck.prefixes, None], dtype=pl.String)
    destinations = pl.Series([*(e.destination for e in entries), None], dtype=pl.String)
    codes = pl.Series(status)
    frame = pl.DataFrame(
        {
            "call_id": batch.call_id,
            "callee": batch.callee,
            "prefix": prefixes.gather(index),
            "destination": destinations.gather(index),
            "billed_seconds": pl.Series(billed),
            "cost": pl.Series(np.where(rated, units, -1)),
            "status": codes.replace_strict(
                {
                    RATED: RatingStatus.RATED.value,
                    NO_RATE: RatingStatus.UNRATED.value,
                    INVALID_NUMBER: RatingStatus.UNRATED.value,
                    FORBIDDEN: RatingStatus.FORBIDDEN.value,
                },
                return_dtype=pl.String,
            ),
            "reason": codes.replace_strict(
                {RATED: None, NO_RATE: "no_rate", INVALID_NUMBER: "invalid_number", FORBIDDEN: None},
                return_dtype=pl.String,
            ),
        }
    ).with_columns(cost=pl.when(pl.col("cost") >= 0).then(format_units_expr(pl.col("cost"), decimals)))
    return frame, summary


def _rate_reference(
    rows: Sequence[DeckRow],
    tz_name: str,
    batch: CdrBatch,
    decimals: int,
    rounding: str,
    dialing_mode: str,
    progress: _Progress,
) -> tuple[pl.DataFrame, RateSummary]:
    import polars as pl

    from tarifa.core.converters import format_units_int

    progress.stage("building the rate table")
    table = RateTable([row.entry() for row in rows], tz_name)
    n = len(batch)
    progress.stage("rating (reference path)", n)
    prefix: list[str | None] = [None] * n
    destination: list[str | None] = [None] * n
    billed: list[int] = [0] * n
    cost: list[str | None] = [None] * n
    status: list[str] = [""] * n
    reason: list[str | None] = [None] * n
    summary = RateSummary(rows=n, decimals=decimals)
    epoch = EPOCH
    total = 0
    callees = batch.callee.to_list()
    moments = batch.connect_us.tolist()
    durations = batch.seconds.tolist()
    step = 10_000
    for i in range(n):
        result = rate_call(
            table,
            callees[i] or "",
            epoch + timedelta(microseconds=moments[i]),
            durations[i],
            decimals,
            rounding,
            dialing_mode=dialing_mode,
        )
        status[i] = result.status.value
        prefix[i] = result.prefix
        destination[i] = result.destination
        billed[i] = result.billed_seconds
        if result.reason is not None:
            reason[i] = result.reason.value
        if result.cost is not None:
            units = int(result.cost.scaleb(decimals))  # exact: the cost has `decimals` places
            total += units
            cost[i] = format_units_int(units, decimals)
        if i % step == step - 1:
            progress.advance(step)
    progress.advance(n % step)
    summary.rated = status.count(RatingStatus.RATED)
    summary.forbidden = status.count(RatingStatus.FORBIDDEN)
    summary.unrated = n - summary.rated - summary.forbidden
    summary.total_units = total
    frame = pl.DataFrame(
        {
            "call_id": batch.call_id,
            "callee": batch.callee,
            "prefix": prefix,
            "destination": destination,
            "billed_seconds": billed,
            "cost": cost,
            "status": status,
            "reason": reason,
        },
        schema={
            "call_id": pl.String,
            "callee": pl.String,
            "prefix": pl.String,
            "destination": pl.String,
            "billed_seconds": pl.Int64,
            "cost": pl.String,
            "status": pl.String,
            "reason": pl.String,
        },
    )
    return frame, summary


def _dated(rows: Sequence[DeckRow]) -> bool:
    """Whether any row has an effective date or a time period."""
    return any(row.effective_from or row.effective_to or row.period for row in rows)


def _compile(
    rows: Sequence[DeckRow],
    window: tuple[datetime, datetime] | None,
) -> tuple[FastDeck | None, str]:
    """(the fast deck, "") or (None, why the reference path must rate this file)."""
    from tarifa.core.array_rating import FastPathUnsupported

    if window is None:  # an undated deck: any window gives the same deck
        window = (EPOCH, EPOCH + _MICROSECOND)
    try:
        return fast_deck_for_window(rows, *window), ""
    except FastPathUnsupported as exc:
        return None, str(exc)


def rate_file(
    deck_path: Path,
    cdrs_path: Path,
    out_path: Path,
    *,
    decimals: int = 4,
    rounding: str = Rounding.HALF_UP,
    dialing_mode: str = DialingMode.E164,
    tz_name: str = "UTC",
    progress: bool = False,
) -> RateSummary:
    """Rate a CDR file against a deck and write the result (see the module docstring).

    Raises :class:`InputError` (nothing written) when the deck or the CDRs are malformed.
    """
    started = time.perf_counter()
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= MAX_DECIMALS:
        raise ValueError(f"decimals must be 0..{MAX_DECIMALS}, got {decimals!r}")
    rounding = Rounding(rounding).value
    if dialing_mode not in tuple(DialingMode):
        raise ValueError(f"dialing mode must be e164 or nanp, got {dialing_mode!r}")
    file_mode = 0o666 & ~_umask()
    bar = _Progress(progress)
    # The run builds a few million long-lived objects and no reference cycles; the cyclic
    # collector would only walk them again and again (a third of the deck compile time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        timings: dict[str, float] = {}
        fast: FastDeck | None = None
        fallback_reason = ""
        # The deck is pure-Python work; polars reads and converts the CDRs meanwhile in
        # another thread (it releases the GIL), so the two overlap on two cores.
        with ThreadPoolExecutor(max_workers=1) as pool:
            cdr_job = pool.submit(load_cdrs, Path(cdrs_path), dialing_mode)
            from tarifa.core.array_rating import MAX_FAST_DECIMALS, FastPathUnsupported

            deck_rows, deck_errors = load_deck(Path(deck_path), tz_name)
            timings["deck"] = time.perf_counter() - started
            if decimals > MAX_FAST_DECIMALS:
                fallback_reason = f"{decimals} decimals (the fast path does 0-{MAX_FAST_DECIMALS})"
            elif not deck_errors and not _dated(deck_rows):
                # Without dates or periods the compiled deck does not depend on the CDRs'
                # time window: compile it while the CDRs are still being read.
                fast, fallback_reason = _compile(deck_rows, None)
                timings["compiled"] = time.perf_counter() - started
            try:
                batch: CdrBatch | None = cdr_job.result()
                cdr_errors: list[str] = []
            except InputError as exc:
                batch, cdr_errors = None, exc.messages
            timings["cdrs"] = time.perf_counter() - started
        messages = [f"deck {deck_path}: {error}" for error in deck_errors]
        messages += [f"cdrs {cdrs_path}: {message}" for message in cdr_errors]
        if messages:
            raise InputError(messages)
        assert batch is not None

        frame: pl.DataFrame | None = None
        summary: RateSummary | None = None
        if len(batch) and not fallback_reason:
            if fast is None:
                bar.stage("compiling the deck")
                start = moment(int(batch.connect_us.min()))
                end = moment(int(batch.connect_us.max()) + 1)
                fast, fallback_reason = _compile(deck_rows, (start, end))
                timings["compiled"] = time.perf_counter() - started
            if fast is not None:
                try:
                    frame, summary = _rate_fast(fast, batch, decimals, rounding, bar)
                except FastPathUnsupported as exc:  # amounts too large for int64
                    fallback_reason = str(exc)
        if frame is None or summary is None:
            if len(batch):
                frame, summary = _rate_reference(
                    deck_rows,
                    tz_name,
                    batch,
                    decimals,
                    rounding,
                    dialing_mode,
                    bar,
                )
                summary.fast_path = False
                summary.fallback_reason = fallback_reason
            else:
                import polars as pl

                frame = pl.DataFrame(schema=dict.fromkeys(OUTPUT_COLUMNS, pl.String))
                summary = RateSummary(decimals=decimals)
        timings["rated"] = time.perf_counter() - started
        bar.stage("writing")
        output = _formula_guarded(frame.select(OUTPUT_COLUMNS))
        _write_atomically(lambda temp: output.write_csv(temp), Path(out_path), file_mode)
        timings["written"] = time.perf_counter() - started
        summary.seconds = time.perf_counter() - started
        summary.timings = timings
        return summary
    finally:
        if collecting:
            gc.enable()
        bar.stop()


# ---------------------------------------------------------------------------------------


def _formula_guarded(frame: Any) -> Any:
    """``frame`` with every text cell a spreadsheet would run as a formula guarded as
    :func:`tarifa.spreadsheets.guard` does (a leading ``'``), vectorised: call ids and numbers come
    from switches, destinations from vendors' decks (issue 12 item 5)."""
    import polars as pl

    from tarifa.spreadsheets import FORMULA_START

    numeric = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
    guarded = []
    for name, dtype in frame.schema.items():
        if dtype != pl.String:
            continue
        bare = pl.col(name).str.strip_chars_start("'")
        runs = bare.str.slice(0, 1).is_in(sorted(FORMULA_START)) & ~bare.str.contains(numeric)
        guarded.append(pl.when(runs).then(pl.lit("'") + pl.col(name)).otherwise(pl.col(name)).alias(name))
    return frame.with_columns(guarded) if guarded else frame
